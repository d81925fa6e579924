import { type Client } from "openapi-fetch";
import type { components, paths } from "./gen/openapi.js";
/** Schemas of the OpenAPI document, by name: `Schemas["Classroom"]`. */
export type Schemas = components["schemas"];
export type { components, paths, operations } from "./gen/openapi.js";
/**
 * A bearer token, or a function returning the current one. The function is called before
 * every request with `"request"`, and with `"refresh"` once after a `401` (an expired token):
 * the request is then sent again with the token it returns.
 */
export type TokenSource = string | ((why: "request" | "refresh") => string | undefined | Promise<string | undefined>);
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
export declare function createM4shClient(opts?: RestOptions): M4shClient;
/**
 * The data of a call's result, or a thrown M4shError for an error answer:
 * `const cls = ok(await api.POST("/api/v1/classrooms/", { body }))`.
 */
export declare function ok<T>(result: {
    data?: T;
    error?: unknown;
    response: Response;
}): T;
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
export declare function snapshotBody(input: SnapshotInput, contentType?: string): {
    body: string;
    bodySerializer: (b: unknown) => BodyInit;
    headers: {
        "Content-Type": string;
    };
};
