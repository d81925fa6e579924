// Hand-written: the two error classes of the REST client. A request either reached the
// service and was refused (M4shError, carrying the problem+json body) or never got an answer
// (NetworkError); callers tell them apart with instanceof instead of parsing messages.
import type { components } from "./gen/openapi.js";

type Problem = components["schemas"]["Problem"];
type FieldError = components["schemas"]["FieldError"];

/** The stable machine codes of problem+json answers (the `code` enum of the OpenAPI `Problem` schema). */
export type ProblemCode = Problem["code"];

/**
 * An answer with an error status. The problem+json members are copied onto the error;
 * `code` is `"unknown"` when the body was not a problem of this service (a proxy's HTML page,
 * say), `retryAfter` the `Retry-After` delay in seconds when the answer had one.
 */
export class M4shError extends Error {
  override readonly name = "M4shError";
  readonly status: number;
  readonly code: ProblemCode | "unknown";
  readonly title: string;
  readonly type: string | undefined;
  readonly detail: string | undefined;
  readonly instance: string | undefined;
  readonly requestId: string | undefined;
  /** For `validation_error`: the offending fields (`body.title`, `query.limit`, …). */
  readonly errors: FieldError[];
  /** Seconds the service asked the caller to wait (`Retry-After`), when it said. */
  readonly retryAfter: number | undefined;
  /** The whole body as parsed: problem members beyond the standard ones (`used`, `quota`, `remaining` of `quota_exceeded`) are here. */
  readonly problem: Record<string, unknown>;
  readonly response: Response;

  constructor(response: Response, body: unknown) {
    const p = isProblem(body) ? body : undefined;
    const title = p?.title ?? (response.statusText || `HTTP ${response.status}`);
    super(p?.detail ? `${response.status} ${p.code}: ${p.detail}` : `${response.status} ${p?.code ?? title}`);
    this.status = response.status;
    this.code = p?.code ?? "unknown";
    this.title = title;
    this.type = p?.type;
    this.detail = p?.detail;
    this.instance = p?.instance;
    this.requestId = p?.request_id;
    this.errors = p?.errors ?? [];
    this.retryAfter = retryAfterSeconds(response.headers.get("Retry-After"));
    this.problem = p ? { ...p } : {};
    this.response = response;
  }
}

/** The request got no answer: refused connection, DNS failure, reset, CORS refusal, offline. */
export class NetworkError extends Error {
  override readonly name = "NetworkError";
  /** The method and URL of the request that failed. */
  readonly method: string;
  readonly url: string;

  constructor(request: Request, cause: unknown) {
    super(`${request.method} ${request.url}: no answer (${cause instanceof Error ? cause.message : String(cause)})`, { cause });
    this.method = request.method;
    this.url = request.url;
  }
}

function isProblem(b: unknown): b is Problem {
  return typeof b === "object" && b !== null && typeof (b as Problem).code === "string" && typeof (b as Problem).status === "number";
}

/**
 * Parses a Retry-After header into seconds: delta-seconds, or an HTTP date (seconds from now,
 * at least 0). Anything else is undefined.
 */
export function retryAfterSeconds(h: string | null, now = Date.now()): number | undefined {
  if (h === null) return undefined;
  const v = h.trim();
  if (/^\d+$/.test(v)) return Number(v);
  if (!/^[A-Za-z]{3}, /.test(v)) return undefined; // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : Math.max(0, Math.ceil((t - now) / 1000));
}
