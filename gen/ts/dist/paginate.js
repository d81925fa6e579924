import { ok } from "./rest.js";
/**
 * Every page of a list route, newest first, following `next_cursor` until the last page.
 * An error answer throws M4shError (pages already yielded stay valid).
 *
 *   for await (const page of pages(api, "/api/v1/classrooms/")) render(page.items);
 */
export async function* pages(client, path, ...[init]) {
    const i = (init ?? {});
    let cursor;
    do {
        const query = {};
        if (i.pageSize !== undefined)
            query.limit = i.pageSize;
        if (cursor !== undefined)
            query.cursor = cursor;
        // The path is a list route, so this GET is well-typed; the generic cannot show it to tsc.
        const res = await client.GET(path, { params: { path: i.params?.path, query }, signal: i.signal });
        const page = ok(res);
        yield page;
        cursor = page.next_cursor;
    } while (cursor !== undefined);
}
/**
 * Every item of a list route, across its pages:
 *
 *   for await (const s of paginate(api, "/api/v1/classrooms/{class_id}/sessions/", { params: { path: { class_id } } })) …
 */
export async function* paginate(client, path, ...args) {
    for await (const page of pages(client, path, ...args)) {
        yield* page.items;
    }
}
