import type { M4shClient, Schemas } from "./rest.js";
/** A revision as the listing shows it (`size_bytes`, `stored_bytes`, `pinned`, `label`, `restored_from`). */
export type SnapshotRevision = Schemas["Snapshot"];
/** The answer to an upload or a restore, with the storage usage after it. */
export type SnapshotCreated = Schemas["SnapshotCreated"];
/** Thrown by the helpers below for an answer that is not a success; `problem` is its body. */
export declare class SnapshotRequestError extends Error {
    readonly status: number;
    readonly problem: Schemas["Problem"] | undefined;
    constructor(status: number, problem: Schemas["Problem"] | undefined);
}
/** Every revision of a session, newest first (all pages). */
export declare function listSnapshots(client: M4shClient, sessionId: string): Promise<SnapshotRevision[]>;
/** Pins a revision so retention keeps it; a label names it (pinning again replaces the label). At most 50 per session. */
export declare function pinSnapshot(client: M4shClient, sessionId: string, revision: number, label?: string): Promise<SnapshotRevision>;
/** Unpins a revision (its label goes too). */
export declare function unpinSnapshot(client: M4shClient, sessionId: string, revision: number): Promise<SnapshotRevision>;
/**
 * Makes a revision's content the newest revision (`restored_from` set; the previous newest
 * stays, so a restore is undone by restoring that one). `created` is false when the newest
 * revision already had this content.
 */
export declare function restoreSnapshot(client: M4shClient, sessionId: string, revision: number): Promise<{
    revision: SnapshotCreated;
    created: boolean;
}>;
