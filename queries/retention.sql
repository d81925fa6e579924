-- Snapshot retention (GC): keep the newest N committed revisions of every solo session and
-- give the bytes back (QuotaRelease). See internal/solo/retention.go.

-- name: RetentionSessionsPage :many
-- Sessions that may hold more than keep_last committed revisions, in id order after @after.
-- Revisions are numbered without gaps, so a session whose last_revision is at most keep_last
-- cannot have anything to delete.
SELECT s.id FROM solo_sessions s
WHERE s.id > @after::uuid AND s.last_revision > @keep_last::int
ORDER BY s.id
LIMIT @lim;

-- name: RetentionLockSessions :many
-- Locks a page of sessions in id order and returns their owners, so that the caller can lock
-- those users' accounting rows next (QuotaLockUsers) — the lock order of internal/solo.
-- FOR NO KEY UPDATE, the lock a committing upload takes on its session: "the newest N" cannot
-- shift mid-batch, while the key-share lock of an upload's row insert never waits on it.
SELECT DISTINCT ON (s.user_id) s.user_id FROM (
    SELECT id, user_id FROM solo_sessions
    WHERE id = ANY(@session_ids::uuid[])
    ORDER BY id
    FOR NO KEY UPDATE
) s
ORDER BY s.user_id;

-- name: RetentionDeleteOldest :many
-- For a page of sessions, deletes oldest first up to @lim committed revisions (and about
-- @max_refs chunk references) older than each
-- session's newest @keep_last, returning what the caller must free and delete. The caller
-- locked the sessions (RetentionLockSessions) and their owners' rows in this transaction.
-- Pending rows are the reaper's business and never touched; a session with fewer than
-- keep_last revisions has no cutoff and loses nothing. Pinned revisions are neither deleted
-- nor counted among the kept ones. A chunked revision (whole_blob false) hands back its
-- chunk references (the caller releases them, ChunkRelease); a whole-blob one from before
-- chunking its size and blob key.
--
-- The plan is fixed by the query's shape, not by statistics: per session, one backward scan
-- of solo_snapshots_session_revision_idx finds the cutoff and one forward range scan below it
-- the candidates (the cutoffs are materialised and each range scan is fenced by its LIMIT).
-- Written as a join of the cutoffs with solo_snapshots, the planner, misled by the statistics
-- of a table that grew since it was last analysed, scanned the whole table for every batch
-- and evaluated the cutoff subquery once per row: 93 to 316 ms a batch for 100k old
-- revisions, most of the GC's time. Such a plan depends on when the table was last analysed,
-- the likely cause of the GC's times swinging between runs of the same code.
WITH cut AS MATERIALIZED (
    SELECT s.id AS session_id,
           (SELECT c.revision FROM solo_snapshots c
            WHERE c.session_id = s.id AND c.status = 'committed' AND NOT c.pinned
            ORDER BY c.revision DESC
            OFFSET sqlc.arg(keep_last)::int - 1
            LIMIT 1) AS revision
    FROM solo_sessions s
    WHERE s.id = ANY(@session_ids::uuid[])
), candidates AS (
    SELECT k.id,
           sum(coalesce(cardinality(k.chunk_ids), 0)) OVER (ORDER BY k.session_id, k.revision ROWS UNBOUNDED PRECEDING)
             - coalesce(cardinality(k.chunk_ids), 0) AS refs_before
    FROM cut
    CROSS JOIN LATERAL (
        SELECT o.id, o.session_id, o.revision, o.chunk_ids FROM solo_snapshots o
        WHERE o.session_id = cut.session_id AND o.revision < cut.revision
          AND o.status = 'committed' AND NOT o.pinned
        ORDER BY o.revision
        LIMIT @lim
    ) k
    ORDER BY k.session_id, k.revision
    LIMIT @lim
), doomed AS (
    -- Bounded in chunk references too (@max_refs, plus one revision's): the batch's
    -- ChunkRelease and the rows it locks stay bounded whatever the revisions' sizes. The
    -- first revision always goes, so every batch makes progress.
    SELECT c.id FROM candidates c WHERE c.refs_before < @max_refs::bigint
)
DELETE FROM solo_snapshots d
USING doomed
WHERE d.id = doomed.id
RETURNING d.id, d.session_id, d.user_id, d.revision, d.size_bytes, d.blob_key,
          coalesce(d.chunk_ids, '{}')::bigint[] AS chunk_ids, (d.manifest IS NULL)::boolean AS whole_blob;
