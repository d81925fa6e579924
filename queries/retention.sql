-- Snapshot retention (GC): keep the newest N committed revisions of every solo session and
-- give the bytes back. See internal/retention.

-- name: RetentionSessionsPage :many
-- Sessions that may hold more than keep_last committed revisions, in id order after @after.
-- Revisions are numbered without gaps, so a session whose last_revision is at most keep_last
-- cannot have anything to delete.
SELECT s.id FROM solo_sessions s
WHERE s.id > @after::uuid AND s.last_revision > @keep_last::int
ORDER BY s.id
LIMIT @lim;

-- name: RetentionSessionLock :one
-- Serialises GC of one session with other GC runs and with uploads committing a revision
-- (they update the session row too), so "the newest N" cannot shift under a batch.
SELECT id, user_id FROM solo_sessions WHERE id = @id FOR UPDATE;

-- name: RetentionDeleteOldest :many
-- Deletes, oldest first, up to @lim committed revisions older than the newest @keep_last,
-- returning what the caller must free and delete. Pending rows are the reaper's business and
-- never touched; with fewer than keep_last revisions the cutoff is NULL and nothing matches.
DELETE FROM solo_snapshots d
USING (
    SELECT k.id FROM solo_snapshots k
    WHERE k.session_id = @session_id::uuid AND k.status = 'committed'
      AND k.revision < (
          SELECT c.revision FROM solo_snapshots c
          WHERE c.session_id = @session_id::uuid AND c.status = 'committed'
          ORDER BY c.revision DESC
          OFFSET sqlc.arg(keep_last)::int - 1
          LIMIT 1)
    ORDER BY k.revision
    LIMIT @lim
) doomed
WHERE d.id = doomed.id
RETURNING d.id, d.user_id, d.revision, d.size_bytes, d.blob_key;

-- name: RetentionUsageRelease :exec
-- Gives freed bytes back, exactly, in the transaction that deleted their rows.
UPDATE solo_user_storage SET used_bytes = used_bytes - @freed::bigint, updated_at = now()
WHERE user_id = @user_id;

-- name: RetentionUsersPage :many
SELECT user_id FROM solo_user_storage WHERE user_id > @after::text ORDER BY user_id LIMIT @lim;

-- name: RetentionUsageLock :one
-- Locks one user's accounting row; uploads reserving bytes take the same lock, so the sum
-- read after it is consistent with used_bytes.
SELECT used_bytes FROM solo_user_storage WHERE user_id = @user_id FOR UPDATE;

-- name: RetentionUsageActual :one
-- What used_bytes must be: every row of the user, pending uploads included (they hold a
-- reservation until committed or rolled back).
SELECT coalesce(sum(size_bytes), 0)::bigint FROM solo_snapshots WHERE user_id = @user_id;

-- name: RetentionUsageSet :exec
UPDATE solo_user_storage SET used_bytes = @used_bytes, updated_at = now() WHERE user_id = @user_id;
