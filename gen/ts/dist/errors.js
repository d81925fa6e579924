/**
 * An answer with an error status. The problem+json members are copied onto the error;
 * `code` is `"unknown"` when the body was not a problem of this service (a proxy's HTML page,
 * say), `retryAfter` the `Retry-After` delay in seconds when the answer had one.
 */
export class M4shError extends Error {
    name = "M4shError";
    status;
    code;
    title;
    type;
    detail;
    instance;
    requestId;
    /** For `validation_error`: the offending fields (`body.title`, `query.limit`, …). */
    errors;
    /** Seconds the service asked the caller to wait (`Retry-After`), when it said. */
    retryAfter;
    /** The whole body as parsed: problem members beyond the standard ones (`used`, `quota`, `remaining` of `quota_exceeded`) are here. */
    problem;
    response;
    constructor(response, body) {
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
    name = "NetworkError";
    /** The method and URL of the request that failed. */
    method;
    url;
    constructor(request, cause) {
        super(`${request.method} ${request.url}: no answer (${cause instanceof Error ? cause.message : String(cause)})`, { cause });
        this.method = request.method;
        this.url = request.url;
    }
}
function isProblem(b) {
    return typeof b === "object" && b !== null && typeof b.code === "string" && typeof b.status === "number";
}
/**
 * Parses a Retry-After header into seconds: delta-seconds, or an HTTP date (seconds from now,
 * at least 0). Anything else is undefined.
 */
export function retryAfterSeconds(h, now = Date.now()) {
    if (h === null)
        return undefined;
    const v = h.trim();
    if (/^\d+$/.test(v))
        return Number(v);
    if (!/^[A-Za-z]{3}, /.test(v))
        return undefined; // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
    const t = Date.parse(v);
    return Number.isNaN(t) ? undefined : Math.max(0, Math.ceil((t - now) / 1000));
}
