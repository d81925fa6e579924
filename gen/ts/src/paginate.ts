// Hand-written: async iteration over the keyset-paginated list routes (every GET whose
// answer has `items` and `next_cursor`), derived from the generated paths so that a list
// route added to the spec is iterable without a change here.
import type { paths } from "./gen/openapi.js";
import type { M4shClient } from "./rest.js";
import { ok } from "./rest.js";

type GetOp<P extends keyof paths> = paths[P] extends { get: infer O } ? O : never;
type OkBody<O> = O extends { responses: { 200: { content: { "application/json": infer B } } } } ? B : never;
type Params<O> = O extends { parameters: infer Q } ? Q : never;

/** The paths of the list routes: a GET answering `{ items, next_cursor? }`. */
export type ListPath = {
  [P in keyof paths]: OkBody<GetOp<P>> extends { items: unknown[]; next_cursor?: string } ? P : never;
}[keyof paths];

/** One item of a list route's pages: `ListItem<"/api/v1/classrooms/">` is `Schemas["Classroom"]`. */
export type ListItem<P extends ListPath> = OkBody<GetOp<P>> extends { items: (infer I)[] } ? I : never;

/** One page of a list route. */
export type ListPage<P extends ListPath> = OkBody<GetOp<P>>;

type PathParams<P extends ListPath> = Params<GetOp<P>> extends { path: infer X } ? X : never;

/** The path parameters of the route (when it has any) and the page size (`limit`, 1..100). */
export type PaginateInit<P extends ListPath> = ([PathParams<P>] extends [never] | [undefined]
  ? { params?: { path?: never } }
  : { params: { path: PathParams<P> } }) & {
  /** Items per request (the route's `limit`; the service's default when absent). */
  pageSize?: number;
  signal?: AbortSignal;
};

type Args<P extends ListPath> = [PathParams<P>] extends [never] | [undefined]
  ? [init?: PaginateInit<P>]
  : [init: PaginateInit<P>];

/**
 * Every page of a list route, newest first, following `next_cursor` until the last page.
 * An error answer throws M4shError (pages already yielded stay valid).
 *
 *   for await (const page of pages(api, "/api/v1/classrooms/")) render(page.items);
 */
export async function* pages<P extends ListPath>(client: M4shClient, path: P, ...[init]: Args<P>): AsyncGenerator<ListPage<P>, void, undefined> {
  const i = (init ?? {}) as PaginateInit<P> & { params?: { path?: unknown } };
  let cursor: string | undefined;
  do {
    const query: Record<string, unknown> = {};
    if (i.pageSize !== undefined) query.limit = i.pageSize;
    if (cursor !== undefined) query.cursor = cursor;
    // The path is a list route, so this GET is well-typed; the generic cannot show it to tsc.
    const res = await (client.GET as (p: string, o: unknown) => Promise<{ data?: unknown; error?: unknown; response: Response }>)(
      path, { params: { path: i.params?.path, query }, signal: i.signal });
    const page = ok(res) as { next_cursor?: string };
    yield page as Awaited<ListPage<P>>;
    cursor = page.next_cursor;
  } while (cursor !== undefined);
}

/**
 * Every item of a list route, across its pages:
 *
 *   for await (const s of paginate(api, "/api/v1/classrooms/{class_id}/sessions/", { params: { path: { class_id } } })) …
 */
export async function* paginate<P extends ListPath>(client: M4shClient, path: P, ...args: Args<P>): AsyncGenerator<ListItem<P>, void, undefined> {
  for await (const page of pages(client, path, ...args)) {
    yield* (page as { items: ListItem<P>[] }).items;
  }
}
