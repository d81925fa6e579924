/** Thrown by the helpers below for an answer that is not a success; `problem` is its body. */
export class SnapshotRequestError extends Error {
    status;
    problem;
    constructor(status, problem) {
        super(problem?.detail ?? problem?.title ?? `HTTP ${status}`);
        this.status = status;
        this.problem = problem;
        this.name = "SnapshotRequestError";
    }
}
function unwrap(r) {
    if (r.data === undefined)
        throw new SnapshotRequestError(r.response.status, r.error);
    return r.data;
}
/** Every revision of a session, newest first (all pages). */
export async function listSnapshots(client, sessionId) {
    const out = [];
    let cursor;
    do {
        const page = unwrap(await client.GET("/api/v1/solo/sessions/{session_id}/snapshots/", {
            params: { path: { session_id: sessionId }, query: { limit: 100, cursor } },
        }));
        out.push(...page.items);
        cursor = page.next_cursor;
    } while (cursor);
    return out;
}
/** Pins a revision so retention keeps it; a label names it (pinning again replaces the label). At most 50 per session. */
export async function pinSnapshot(client, sessionId, revision, label) {
    return unwrap(await client.POST("/api/v1/solo/sessions/{session_id}/snapshots/{revision}/pin/", {
        params: { path: { session_id: sessionId, revision } },
        body: label === undefined ? {} : { label },
    }));
}
/** Unpins a revision (its label goes too). */
export async function unpinSnapshot(client, sessionId, revision) {
    return unwrap(await client.DELETE("/api/v1/solo/sessions/{session_id}/snapshots/{revision}/pin/", {
        params: { path: { session_id: sessionId, revision } },
    }));
}
/**
 * Makes a revision's content the newest revision (`restored_from` set; the previous newest
 * stays, so a restore is undone by restoring that one). `created` is false when the newest
 * revision already had this content.
 */
export async function restoreSnapshot(client, sessionId, revision) {
    const r = await client.POST("/api/v1/solo/sessions/{session_id}/snapshots/{revision}/restore/", {
        params: { path: { session_id: sessionId, revision } },
    });
    return { revision: unwrap(r), created: r.response.status === 201 };
}
