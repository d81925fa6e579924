// Hand-written: the typed REST client over the generated OpenAPI types (src/gen/openapi.ts).
import createClient from "../openapi-fetch.js";
/**
 * Creates a typed client for every route of openapi/openapi.yaml. Every call answers
 * `{ data, error, response }` where `data` is the typed success body and `error` the typed
 * problem+json body.
 */
export function createM4shClient(opts = {}) {
    const client = createClient({ baseUrl: opts.baseUrl ?? "", fetch: opts.fetch });
    if (opts.token !== undefined) {
        const source = opts.token;
        const auth = {
            async onRequest({ request }) {
                const tok = typeof source === "function" ? await source() : source;
                if (tok)
                    request.headers.set("Authorization", `Bearer ${tok}`);
                return request;
            },
        };
        client.use(auth);
    }
    return client;
}
/** Body options for `SoloSnapshotCreate`: the snapshot document is sent byte for byte. */
export function snapshotBody(body, contentType = "application/json") {
    return {
        body: body,
        bodySerializer: (b) => b,
        headers: { "Content-Type": contentType },
    };
}
