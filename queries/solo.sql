-- Solo workspace: sessions, snapshot revisions, idempotency keys and storage quota.
-- Bytes move in and out of solo_user_storage.used_bytes only together with a solo_snapshots
-- row, in the same transaction, each movement through one query (see internal/solo).

-- name: SoloSessionCreate :one
INSERT INTO solo_sessions (user_id, title) VALUES (@user_id, @title)
RETURNING *;

-- name: SoloSessionGetOwned :one
-- A session as its owner sees it; another user's session is indistinguishable from none.
SELECT * FROM solo_sessions WHERE id = @id AND user_id = @user_id;

-- name: SoloSessionListOwned :many
SELECT * FROM solo_sessions
WHERE user_id = @user_id
  AND (created_at, id) < (@before_time::timestamptz, @before_id::uuid)
ORDER BY created_at DESC, id DESC
LIMIT @fetch_limit;

-- name: SoloSessionUploadState :one
-- Everything an upload checks before reading its body, in one round trip: ownership, the
-- owner's storage (the default quota when no row exists yet) and the newest revision's hash.
SELECT s.id,
       COALESCE((SELECT st.used_bytes FROM solo_user_storage st WHERE st.user_id = s.user_id), 0)::bigint AS used_bytes,
       COALESCE((SELECT st.quota_bytes FROM solo_user_storage st WHERE st.user_id = s.user_id), @default_quota::bigint)::bigint AS quota_bytes,
       COALESCE(s.newest_sha256, '')::text AS newest_sha256
FROM solo_sessions s
WHERE s.id = @id AND s.user_id = @user_id;

-- name: QuotaGet :one
SELECT * FROM solo_user_storage WHERE user_id = @user_id;

-- name: QuotaEnsure :exec
INSERT INTO solo_user_storage (user_id, quota_bytes) VALUES (@user_id, @quota_bytes)
ON CONFLICT (user_id) DO NOTHING;

-- name: QuotaRelease :exec
-- Gives back the bytes of deleted rows (a rolled-back upload, or revisions removed by
-- retention), exactly, in the transaction that deleted them.
UPDATE solo_user_storage
SET used_bytes = used_bytes - @size_bytes::bigint, updated_at = now()
WHERE user_id = @user_id;

-- name: QuotaLock :one
-- Locks one user's accounting row; reservations take the same lock, so a sum of the user's
-- rows read after it is consistent with used_bytes.
SELECT used_bytes FROM solo_user_storage WHERE user_id = @user_id FOR UPDATE;

-- name: QuotaLockUsers :exec
-- Locks several users' accounting rows, in user_id order (the lock order of internal/solo).
SELECT user_id FROM solo_user_storage WHERE user_id = ANY(@user_ids::text[])
ORDER BY user_id
FOR UPDATE;

-- name: QuotaUsageFromRows :one
-- What used_bytes must be (the invariant): every row of the user, pending uploads included
-- (they hold a reservation until committed or rolled back).
SELECT COALESCE(SUM(size_bytes), 0)::bigint AS size_bytes FROM solo_snapshots WHERE user_id = @user_id;

-- name: QuotaRepair :exec
-- Reconciliation's one write: sets used_bytes to QuotaUsageFromRows under QuotaLock.
UPDATE solo_user_storage SET used_bytes = @used_bytes, updated_at = now() WHERE user_id = @user_id;

-- name: QuotaUsersPage :many
SELECT user_id FROM solo_user_storage WHERE user_id > @after::text ORDER BY user_id LIMIT @lim;

-- name: QuotaSet :one
INSERT INTO solo_user_storage (user_id, quota_bytes) VALUES (@user_id, @quota_bytes)
ON CONFLICT (user_id) DO UPDATE SET quota_bytes = EXCLUDED.quota_bytes, updated_at = now()
RETURNING *;

-- name: SnapshotReserve :one
-- Reserves an upload's bytes and records it as pending, in one statement (so one
-- transaction): the conditional UPDATE takes size_bytes from the quota only if they fit — its
-- row lock serialises a user's reservations and each re-checks the condition against the
-- committed usage, so no interleaving can exceed the quota — and the pending row (with its
-- Idempotency-Key, when one is given) is inserted only if it did. No row: nothing reserved
-- (over quota, or no storage row yet). A unique violation: the key is taken.
WITH reserved AS (
    UPDATE solo_user_storage
    SET used_bytes = used_bytes + @size_bytes::bigint, updated_at = now()
    WHERE user_id = @user_id::text AND used_bytes + @size_bytes::bigint <= quota_bytes
    RETURNING used_bytes, quota_bytes
), pending AS (
    INSERT INTO solo_snapshots (id, session_id, user_id, status, size_bytes, sha256, content_type, blob_key)
    SELECT @id::uuid, @session_id::uuid, @user_id::text, 'pending', @size_bytes::bigint,
           @sha256::text, @content_type::text, @blob_key::text
    FROM reserved
    RETURNING id
), keyed AS (
    INSERT INTO solo_snapshot_idempotency_keys (session_id, idempotency_key, snapshot_id)
    SELECT @session_id::uuid, @idempotency_key::text, pending.id FROM pending
    WHERE @idempotency_key::text <> ''
)
SELECT used_bytes, quota_bytes FROM reserved;

-- name: SnapshotCommit :one
-- Commits a pending revision as its session's next one, in one statement. Its row locks do
-- the work, and READ COMMITTED re-checks each locked row's conditions against the newest
-- version once a lock is granted:
--   pending  locks the upload's row, and only if it is still pending (the reaper may have
--            finished or rolled it back);
--   numbered bumps the session's revision counter (its row lock serialises a session's
--            commits) — only for a pending row, and only if the bytes differ from the newest
--            revision's, so a counter value is never taken without being used: no gaps.
-- No row: the upload is no longer pending, or is identical to the newest revision.
-- Lock order (internal/solo): the session row first, then the upload's row — sess is
-- evaluated before pending's row is locked.
WITH sess AS (
    SELECT ss.id FROM solo_sessions ss WHERE ss.id = @session_id
    FOR NO KEY UPDATE
), pending AS (
    SELECT sn.id FROM solo_snapshots sn
    WHERE sn.id = @id AND sn.status = 'pending' AND EXISTS (SELECT 1 FROM sess)
    FOR UPDATE OF sn
), numbered AS (
    UPDATE solo_sessions s
    SET last_revision = s.last_revision + 1, newest_sha256 = @sha256::text
    WHERE s.id = @session_id
      AND s.newest_sha256 IS DISTINCT FROM @sha256::text
      AND EXISTS (SELECT 1 FROM pending)
    RETURNING s.last_revision
)
UPDATE solo_snapshots sn
SET status = 'committed', revision = numbered.last_revision, committed_at = now()
FROM numbered
WHERE sn.id = @id
RETURNING sn.*;

-- name: SnapshotDeletePending :one
-- Removes a pending revision (its upload failed or was abandoned); the caller releases its
-- bytes in the same transaction.
DELETE FROM solo_snapshots WHERE id = @id AND status = 'pending'
RETURNING *;

-- name: SnapshotGetByID :one
SELECT * FROM solo_snapshots WHERE id = @id;

-- name: SnapshotLatest :one
SELECT * FROM solo_snapshots
WHERE session_id = @session_id AND revision IS NOT NULL
ORDER BY revision DESC
LIMIT 1;

-- name: SnapshotGetByRevision :one
SELECT * FROM solo_snapshots WHERE session_id = @session_id AND revision = @revision::integer;

-- name: SnapshotListBySession :many
SELECT * FROM solo_snapshots
WHERE session_id = @session_id AND revision < @before_revision::bigint
ORDER BY revision DESC
LIMIT @fetch_limit;

-- name: SnapshotListPendingBefore :many
-- Uploads still pending since before cutoff: abandoned by a crashed or stuck request.
SELECT * FROM solo_snapshots
WHERE status = 'pending' AND created_at < now() - make_interval(secs => @grace_seconds::float8)
ORDER BY created_at
LIMIT @fetch_limit;

-- name: SnapshotBlobKeysKnown :many
-- Which of these blob keys still belong to a revision row (pending or committed).
SELECT blob_key FROM solo_snapshots WHERE blob_key = ANY(@blob_keys::text[]);

-- name: SnapshotIdempotencyKeyGet :one
SELECT sn.* FROM solo_snapshot_idempotency_keys k
JOIN solo_snapshots sn ON sn.id = k.snapshot_id
WHERE k.session_id = @session_id AND k.idempotency_key = @idempotency_key;

-- name: SnapshotIdempotencyKeyInsert :execrows
-- Zero rows: the key is taken (possibly by an upload still in flight).
INSERT INTO solo_snapshot_idempotency_keys (session_id, idempotency_key, snapshot_id)
VALUES (@session_id, @idempotency_key, @snapshot_id)
ON CONFLICT (session_id, idempotency_key) DO NOTHING;

-- name: SnapshotIdempotencyKeyRepoint :exec
-- Moves the keys of a deduplicated upload onto the identical revision that answered it.
UPDATE solo_snapshot_idempotency_keys SET snapshot_id = @to_snapshot_id WHERE snapshot_id = @from_snapshot_id;

-- name: SoloSessionLockOwned :one
-- Locks one of the user's sessions (first in the lock order) for a pin or a restore: the
-- pin count and "the newest revision" cannot change under it. No row: not the user's.
SELECT id, newest_sha256 FROM solo_sessions WHERE id = @id AND user_id = @user_id FOR NO KEY UPDATE;
