// Hand-written: snapshot history helpers over the typed REST client (rest.ts): the
// revisions of a solo session with their pins and restores, each call answering the typed
// body or throwing the problem+json it got.
import type { M4shClient, Schemas } from "./rest.js";

/** A revision as the listing shows it (`size_bytes`, `stored_bytes`, `pinned`, `label`, `restored_from`). */
export type SnapshotRevision = Schemas["Snapshot"];
/** The answer to an upload or a restore, with the storage usage after it. */
export type SnapshotCreated = Schemas["SnapshotCreated"];

/** Thrown by the helpers below for an answer that is not a success; `problem` is its body. */
export class SnapshotRequestError extends Error {
  constructor(
    readonly status: number,
    readonly problem: Schemas["Problem"] | undefined,
  ) {
    super(problem?.detail ?? problem?.title ?? `HTTP ${status}`);
    this.name = "SnapshotRequestError";
  }
}

function unwrap<T>(r: { data?: T; error?: unknown; response: Response }): T {
  if (r.data === undefined) throw new SnapshotRequestError(r.response.status, r.error as Schemas["Problem"] | undefined);
  return r.data;
}

/** Every revision of a session, newest first (all pages). */
export async function listSnapshots(client: M4shClient, sessionId: string): Promise<SnapshotRevision[]> {
  const out: SnapshotRevision[] = [];
  let cursor: string | undefined;
  do {
    const page = unwrap(
      await client.GET("/api/v1/solo/sessions/{session_id}/snapshots/", {
        params: { path: { session_id: sessionId }, query: { limit: 100, cursor } },
      }),
    );
    out.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor);
  return out;
}

/** Pins a revision so retention keeps it; a label names it (pinning again replaces the label). At most 50 per session. */
export async function pinSnapshot(client: M4shClient, sessionId: string, revision: number, label?: string): Promise<SnapshotRevision> {
  return unwrap(
    await client.POST("/api/v1/solo/sessions/{session_id}/snapshots/{revision}/pin/", {
      params: { path: { session_id: sessionId, revision } },
      body: label === undefined ? {} : { label },
    }),
  );
}

/** Unpins a revision (its label goes too). */
export async function unpinSnapshot(client: M4shClient, sessionId: string, revision: number): Promise<SnapshotRevision> {
  return unwrap(
    await client.DELETE("/api/v1/solo/sessions/{session_id}/snapshots/{revision}/pin/", {
      params: { path: { session_id: sessionId, revision } },
    }),
  );
}

/**
 * Makes a revision's content the newest revision (`restored_from` set; the previous newest
 * stays, so a restore is undone by restoring that one). `created` is false when the newest
 * revision already had this content.
 */
export async function restoreSnapshot(
  client: M4shClient,
  sessionId: string,
  revision: number,
): Promise<{ revision: SnapshotCreated; created: boolean }> {
  const r = await client.POST("/api/v1/solo/sessions/{session_id}/snapshots/{revision}/restore/", {
    params: { path: { session_id: sessionId, revision } },
  });
  return { revision: unwrap(r), created: r.response.status === 201 };
}
