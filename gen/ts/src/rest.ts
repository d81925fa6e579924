// Hand-written: the typed REST client over the generated OpenAPI types (src/gen/openapi.ts).
import createClient, { type Client } from "openapi-fetch";
import type { components, paths } from "./gen/openapi.js";
import { M4shError, NetworkError, retryAfterSeconds } from "./errors.js";

/** Schemas of the OpenAPI document, by name: `Schemas["Classroom"]`. */
export type Schemas = components["schemas"];
export type { components, paths, operations } from "./gen/openapi.js";

/**
 * A bearer token, or a function returning the current one. The function is called before
 * every request with `"request"`, and with `"refresh"` once after a `401` (an expired token):
 * the request is then sent again with the token it returns.
 */
export type TokenSource =
  | string
  | ((why: "request" | "refresh") => string | undefined | Promise<string | undefined>);

/** Opt-in retries of answers that say "nothing was done, try again later". */
export interface RetryOptions {
  /** Retries after the first attempt (default 2). */
  retries?: number;
  /** Delay before the first retry when the answer has no `Retry-After` (default 250 ms); doubles, jittered. */
  baseDelayMs?: number;
  /** Longest wait (default 10 s): a `Retry-After` beyond it is not waited for; the M4shError surfaces. */
  maxDelayMs?: number;
}

export interface RestOptions {
  /** Origin of the service, e.g. `http://localhost:8080` (empty: the page's own origin). */
  baseUrl?: string;
  /** Sent as `Authorization: Bearer …`; omit for the public routes (telemetry, probes). */
  token?: TokenSource;
  /** A fetch implementation (defaults to the global one). */
  fetch?: typeof globalThis.fetch;
  /**
   * Off by default. `true` or options: `429` and `503` (the service did nothing) are retried
   * for every method, `409` only for a request with an `Idempotency-Key` (its first upload is
   * still in flight), and a request that got no answer only when it is idempotent (`GET`,
   * `HEAD`, `OPTIONS`, `PUT`, `DELETE`, or an `Idempotency-Key`). The wait is the answer's
   * `Retry-After`, else a jittered exponential back-off.
   */
  retry?: boolean | RetryOptions;
}

/** The typed client: `client.GET("/api/v1/classrooms/{class_id}/", { params: { path: { class_id } } })`. */
export type M4shClient = Client<paths>;

/**
 * Creates a typed client for every route of openapi/openapi.yaml. Every call answers
 * `{ data, error, response }` where `data` is the typed success body and `error` the typed
 * problem+json body; `ok()` turns that into the data or a thrown M4shError. A request that
 * gets no answer rejects with NetworkError.
 */
export function createM4shClient(opts: RestOptions = {}): M4shClient {
  return createClient<paths>({ baseUrl: opts.baseUrl ?? "", fetch: policyFetch(opts) });
}

const idempotentMethods = new Set(["GET", "HEAD", "OPTIONS", "PUT", "DELETE"]);

/**
 * The fetch the client sends through: bearer token, one refresh on 401, opt-in retries, and
 * failures without an answer turned into NetworkError. Retries and the refresh resend a
 * clone of the original request, so bodies are sent whole every time.
 */
function policyFetch(opts: RestOptions): (input: Request) => Promise<Response> {
  const base = opts.fetch ?? ((r: Request) => globalThis.fetch(r));
  const retry = opts.retry === true ? {} : opts.retry || undefined;
  const retries = retry ? (retry.retries ?? 2) : 0;
  const baseDelay = retry?.baseDelayMs ?? 250;
  const maxDelay = retry?.maxDelayMs ?? 10_000;
  const source = opts.token;
  // A 401 for a request whose token was taken before the latest refresh started is answered
  // by that refresh's token: concurrent 401s share one refresh however late each arrives.
  let refreshes = 0;
  let latest: Promise<string | undefined> | undefined;
  const token = async (why: "request" | "refresh", takenAt = refreshes) => {
    if (typeof source !== "function") return source;
    if (why === "request") return source("request");
    if (latest && takenAt < refreshes) return latest;
    refreshes++;
    const p: Promise<string | undefined> = Promise.resolve(source("refresh")).catch((err) => {
      if (latest === p) latest = undefined; // a failed refresh is not reused
      throw err;
    });
    latest = p;
    return p;
  };

  return async (original: Request) => {
    const idempotent = idempotentMethods.has(original.method) || original.headers.has("Idempotency-Key");
    let refreshed = false;
    const takenAt = refreshes;
    let tok = await token("request");
    for (let attempt = 0; ; attempt++) {
      const req = original.clone();
      if (tok) req.headers.set("Authorization", `Bearer ${tok}`);
      let res: Response;
      try {
        res = await base(req);
      } catch (err) {
        if (isAbort(err, original)) throw err;
        if (attempt < retries && idempotent) {
          await sleep(backoff(baseDelay, maxDelay, attempt), original.signal);
          continue;
        }
        throw new NetworkError(original, err);
      }
      if (res.status === 401 && !refreshed && typeof source === "function") {
        refreshed = true;
        await res.body?.cancel();
        tok = await token("refresh", takenAt);
        attempt--; // the refresh is not one of the retries
        continue;
      }
      const retryable = res.status === 429 || res.status === 503 || (res.status === 409 && original.headers.has("Idempotency-Key"));
      if (!retryable || attempt >= retries) return res;
      const after = retryAfterSeconds(res.headers.get("Retry-After"));
      const wait = after !== undefined ? after * 1000 : backoff(baseDelay, maxDelay, attempt);
      if (wait > maxDelay) return res;
      await res.body?.cancel();
      await sleep(wait, original.signal);
    }
  };
}

function backoff(base: number, max: number, attempt: number): number {
  const d = Math.min(max, base * 2 ** attempt);
  return d / 2 + Math.random() * (d / 2);
}

function isAbort(err: unknown, req: Request): boolean {
  return req.signal.aborted || (err instanceof Error && (err.name === "AbortError" || err.name === "TimeoutError"));
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const t = setTimeout(() => { signal.removeEventListener("abort", onAbort); resolve(); }, ms);
    const onAbort = () => { clearTimeout(t); reject(signal.reason); };
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * The data of a call's result, or a thrown M4shError for an error answer:
 * `const cls = ok(await api.POST("/api/v1/classrooms/", { body }))`.
 */
export function ok<T>(result: { data?: T; error?: unknown; response: Response }): T {
  if (!result.response.ok) throw new M4shError(result.response, result.error);
  return result.data as T;
}

/** What snapshotBody accepts: bytes, text, a Blob (its own type), or any other value (sent as JSON). */
export type SnapshotInput = string | Blob | ArrayBuffer | ArrayBufferView | object | number | boolean | null;

/**
 * Body options for `SoloSnapshotCreate`: the snapshot document is sent byte for byte, its
 * Content-Type picked from the input unless given: a Blob → its own type (or
 * `application/octet-stream`); bytes (ArrayBuffer, Uint8Array, any typed array or DataView) →
 * `application/octet-stream`; a string → `application/json` when it parses as JSON, else
 * `text/plain; charset=utf-8`; any other value → its JSON text as `application/json`.
 * A JSON content type with a string that is not JSON throws TypeError before anything is sent,
 * so the service never stores a document that cannot be read back as what it claims.
 */
export function snapshotBody(input: SnapshotInput, contentType?: string) {
  let body: BodyInit;
  let type: string;
  if (typeof Blob !== "undefined" && input instanceof Blob) {
    body = input;
    type = input.type || "application/octet-stream";
  } else if (input instanceof ArrayBuffer) {
    body = input;
    type = "application/octet-stream";
  } else if (ArrayBuffer.isView(input)) {
    body = new Uint8Array(input.buffer, input.byteOffset, input.byteLength) as Uint8Array<ArrayBuffer>;
    type = "application/octet-stream";
  } else if (typeof input === "string") {
    body = input;
    type = isJSON(input) ? "application/json" : "text/plain; charset=utf-8";
  } else {
    body = JSON.stringify(input);
    type = "application/json";
  }
  if (contentType !== undefined) {
    if (typeof body === "string" && /^application\/(.+\+)?json\b/i.test(contentType) && !isJSON(body)) {
      throw new TypeError(`snapshotBody: the text is not JSON, but the content type is ${contentType}`);
    }
    type = contentType;
  }
  return {
    body: body as unknown as string,
    bodySerializer: (b: unknown) => b as BodyInit,
    headers: { "Content-Type": type },
  };
}

function isJSON(s: string): boolean {
  try {
    JSON.parse(s);
    return true;
  } catch {
    return false;
  }
}
