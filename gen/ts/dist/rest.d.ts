import { type Client } from "openapi-fetch";
import type { components, paths } from "./gen/openapi.js";
/** Schemas of the OpenAPI document, by name: `Schemas["Classroom"]`. */
export type Schemas = components["schemas"];
export type { components, paths, operations } from "./gen/openapi.js";
/** A bearer token, or a function returning the current one (called before every request). */
export type TokenSource = string | (() => string | undefined | Promise<string | undefined>);
export interface RestOptions {
    /** Origin of the service, e.g. `http://localhost:8080` (empty: the page's own origin). */
    baseUrl?: string;
    /** Sent as `Authorization: Bearer …`; omit for the public routes (telemetry, probes). */
    token?: TokenSource;
    /** A fetch implementation (defaults to the global one). */
    fetch?: typeof globalThis.fetch;
}
/** The typed client: `client.GET("/api/v1/classrooms/{class_id}/", { params: { path: { class_id } } })`. */
export type M4shClient = Client<paths>;
/**
 * Creates a typed client for every route of openapi/openapi.yaml. Every call answers
 * `{ data, error, response }` where `data` is the typed success body and `error` the typed
 * problem+json body.
 */
export declare function createM4shClient(opts?: RestOptions): M4shClient;
/** Body options for `SoloSnapshotCreate`: the snapshot document is sent byte for byte. */
export declare function snapshotBody(body: string | Blob | ArrayBuffer | Uint8Array, contentType?: string): {
    body: string;
    bodySerializer: (b: unknown) => BodyInit;
    headers: {
        "Content-Type": string;
    };
};
