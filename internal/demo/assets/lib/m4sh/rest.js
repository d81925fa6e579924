// Hand-written: the typed REST client over the generated OpenAPI types (src/gen/openapi.ts).
import createClient from "../openapi-fetch.js";
import { M4shError, NetworkError, retryAfterSeconds } from "./errors.js";
/**
 * Creates a typed client for every route of openapi/openapi.yaml. Every call answers
 * `{ data, error, response }` where `data` is the typed success body and `error` the typed
 * problem+json body; `ok()` turns that into the data or a thrown M4shError. A request that
 * gets no answer rejects with NetworkError.
 */
export function createM4shClient(opts = {}) {
    return createClient({ baseUrl: opts.baseUrl ?? "", fetch: policyFetch(opts) });
}
const idempotentMethods = new Set(["GET", "HEAD", "OPTIONS", "PUT", "DELETE"]);
/**
 * The fetch the client sends through: bearer token, one refresh on 401, opt-in retries, and
 * failures without an answer turned into NetworkError. Retries and the refresh resend a
 * clone of the original request, so bodies are sent whole every time.
 */
function policyFetch(opts) {
    const base = opts.fetch ?? ((r) => globalThis.fetch(r));
    const retry = opts.retry === true ? {} : opts.retry || undefined;
    const retries = retry ? (retry.retries ?? 2) : 0;
    const baseDelay = retry?.baseDelayMs ?? 250;
    const maxDelay = retry?.maxDelayMs ?? 10_000;
    const source = opts.token;
    // A 401 for a request whose token was taken before the latest refresh started is answered
    // by that refresh's token: concurrent 401s share one refresh however late each arrives.
    let refreshes = 0;
    let latest;
    const token = async (why, takenAt = refreshes) => {
        if (typeof source !== "function")
            return source;
        if (why === "request")
            return source("request");
        if (latest && takenAt < refreshes)
            return latest;
        refreshes++;
        const p = Promise.resolve(source("refresh")).catch((err) => {
            if (latest === p)
                latest = undefined; // a failed refresh is not reused
            throw err;
        });
        latest = p;
        return p;
    };
    return async (original) => {
        const idempotent = idempotentMethods.has(original.method) || original.headers.has("Idempotency-Key");
        let refreshed = false;
        const takenAt = refreshes;
        let tok = await token("request");
        for (let attempt = 0;; attempt++) {
            const req = original.clone();
            if (tok)
                req.headers.set("Authorization", `Bearer ${tok}`);
            let res;
            try {
                res = await base(req);
            }
            catch (err) {
                if (isAbort(err, original))
                    throw err;
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
            if (!retryable || attempt >= retries)
                return res;
            const after = retryAfterSeconds(res.headers.get("Retry-After"));
            const wait = after !== undefined ? after * 1000 : backoff(baseDelay, maxDelay, attempt);
            if (wait > maxDelay)
                return res;
            await res.body?.cancel();
            await sleep(wait, original.signal);
        }
    };
}
function backoff(base, max, attempt) {
    const d = Math.min(max, base * 2 ** attempt);
    return d / 2 + Math.random() * (d / 2);
}
function isAbort(err, req) {
    return req.signal.aborted || (err instanceof Error && (err.name === "AbortError" || err.name === "TimeoutError"));
}
function sleep(ms, signal) {
    return new Promise((resolve, reject) => {
        if (signal.aborted)
            return reject(signal.reason);
        const t = setTimeout(() => { signal.removeEventListener("abort", onAbort); resolve(); }, ms);
        const onAbort = () => { clearTimeout(t); reject(signal.reason); };
        signal.addEventListener("abort", onAbort, { once: true });
    });
}
/**
 * The data of a call's result, or a thrown M4shError for an error answer:
 * `const cls = ok(await api.POST("/api/v1/classrooms/", { body }))`.
 */
export function ok(result) {
    if (!result.response.ok)
        throw new M4shError(result.response, result.error);
    return result.data;
}
/**
 * Body options for `SoloSnapshotCreate`: the snapshot document is sent byte for byte, its
 * Content-Type picked from the input unless given: a Blob → its own type (or
 * `application/octet-stream`); bytes (ArrayBuffer, Uint8Array, any typed array or DataView) →
 * `application/octet-stream`; a string → `application/json` when it parses as JSON, else
 * `text/plain; charset=utf-8`; any other value → its JSON text as `application/json`.
 * A JSON content type with a string that is not JSON throws TypeError before anything is sent,
 * so the service never stores a document that cannot be read back as what it claims.
 */
export function snapshotBody(input, contentType) {
    let body;
    let type;
    if (typeof Blob !== "undefined" && input instanceof Blob) {
        body = input;
        type = input.type || "application/octet-stream";
    }
    else if (input instanceof ArrayBuffer) {
        body = input;
        type = "application/octet-stream";
    }
    else if (ArrayBuffer.isView(input)) {
        body = new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
        type = "application/octet-stream";
    }
    else if (typeof input === "string") {
        body = input;
        type = isJSON(input) ? "application/json" : "text/plain; charset=utf-8";
    }
    else {
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
        body: body,
        bodySerializer: (b) => b,
        headers: { "Content-Type": type },
    };
}
function isJSON(s) {
    try {
        JSON.parse(s);
        return true;
    }
    catch {
        return false;
    }
}
