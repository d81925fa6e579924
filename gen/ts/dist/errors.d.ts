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
export declare class M4shError extends Error {
    readonly name = "M4shError";
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
    constructor(response: Response, body: unknown);
}
/** The request got no answer: refused connection, DNS failure, reset, CORS refusal, offline. */
export declare class NetworkError extends Error {
    readonly name = "NetworkError";
    /** The method and URL of the request that failed. */
    readonly method: string;
    readonly url: string;
    constructor(request: Request, cause: unknown);
}
/**
 * Parses a Retry-After header into seconds: delta-seconds, or an HTTP date (seconds from now,
 * at least 0). Anything else is undefined.
 */
export declare function retryAfterSeconds(h: string | null, now?: number): number | undefined;
export {};
