// Hand-written: the typed REST client over the generated OpenAPI types (src/gen/openapi.ts).
import createClient, { type Client, type Middleware } from "openapi-fetch";
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
export function createM4shClient(opts: RestOptions = {}): M4shClient {
  const client = createClient<paths>({ baseUrl: opts.baseUrl ?? "", fetch: opts.fetch });
  if (opts.token !== undefined) {
    const source = opts.token;
    const auth: Middleware = {
      async onRequest({ request }) {
        const tok = typeof source === "function" ? await source() : source;
        if (tok) request.headers.set("Authorization", `Bearer ${tok}`);
        return request;
      },
    };
    client.use(auth);
  }
  return client;
}

/** Body options for `SoloSnapshotCreate`: the snapshot document is sent byte for byte. */
export function snapshotBody(body: string | Blob | ArrayBuffer | Uint8Array, contentType = "application/json") {
  return {
    body: body as unknown as string,
    bodySerializer: (b: unknown) => b as BodyInit,
    headers: { "Content-Type": contentType },
  };
}
