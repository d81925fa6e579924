-- Chunked snapshot storage : chunk rows with reference counts, uploads in
-- flight, and the revision side of manifests. See migration 0006 for the accounting
-- invariant and internal/chunkstore's package doc for the transactions that use these.
--
-- Lock order, in every transaction: session row -> snapshot_uploads / solo_snapshots rows ->
-- snapshot_chunks rows in ascending id (every statement that changes chunk rows locks them
-- through a SELECT ... ORDER BY id FOR UPDATE first; new rows are inserted in ascending
-- sha256) -> solo_user_storage row. A deadlock is still possible in one narrow case (see
-- ChunkInsert); it aborts one transaction, which the caller retries.

-- name: SnapshotUploadCreate :one
-- Starts a chunked upload. A unique violation: its Idempotency-Key is held by another
-- upload of the session still in flight.
INSERT INTO snapshot_uploads (id, session_id, user_id, idempotency_key)
VALUES (@id, @session_id, @user_id, @idempotency_key)
RETURNING *;

-- name: SnapshotUploadLock :one
-- Every later step of an upload starts here. No row: the reaper rolled the upload back.
SELECT * FROM snapshot_uploads WHERE id = @id FOR UPDATE;

-- name: ChunkReferenceLive :many
-- Takes one more reference on each of the owner's live chunks with these hashes (the ones
-- found; the rest are new). A chunk that GC turned into a tombstone while this statement
-- waited for its lock no longer matches state = 'live' when the lock is granted (READ
-- COMMITTED re-checks the row), so it is reported missing and the upload stores the bytes
-- again under a new chunk id: a tombstone is never referenced.
--
-- Each hash is one probe of snapshot_chunks_live_idx (owner, hash), however many chunks
-- the planner believes the owner has: a subquery with LIMIT runs once per hash and its two
-- equalities match that index exactly (on a table of a few pages, a scan per hash may be
-- chosen instead, as cheap there). Written as "owner = $1 AND hash = ANY($2)", a plan made while
-- the owner stored little (or with no statistics yet) scanned all of the owner's live chunks
-- and filtered them against the hashes, on every upload, ever slower as the owner stored
-- more. The probes find ids; the rows are then locked one by one in ascending id.
WITH found AS MATERIALIZED (
    SELECT f.id FROM unnest(@hashes::bytea[]) AS h(sha256)
    CROSS JOIN LATERAL (
        SELECT c.id FROM snapshot_chunks c
        WHERE c.user_id = @user_id AND c.sha256 = h.sha256 AND c.state = 'live'
        LIMIT 1
    ) f
    ORDER BY f.id
), locked AS (
    SELECT l.id FROM found
    CROSS JOIN LATERAL (
        SELECT c.id FROM snapshot_chunks c WHERE c.id = found.id AND c.state = 'live'
        FOR UPDATE
    ) l
)
UPDATE snapshot_chunks c SET refcount = c.refcount + 1
FROM locked
WHERE c.id = locked.id
RETURNING c.id, c.sha256, c.size_bytes, c.stored_bytes, c.encoding, c.pack_id, c.pack_offset;

-- name: ChunkReferenceByID :execrows
-- Takes one more reference on each chunk (a restore reuses its source's chunks). The source
-- revision is locked first and holds references on all of them, so all are live: fewer
-- rows than ids means corruption.
WITH locked AS (
    SELECT c.id FROM unnest(@chunk_ids::bigint[]) AS x(id) JOIN snapshot_chunks c ON c.id = x.id
    WHERE c.state = 'live'
    ORDER BY c.id
    FOR UPDATE OF c
)
UPDATE snapshot_chunks c SET refcount = c.refcount + 1
FROM locked
WHERE c.id = locked.id;

-- name: SnapshotUploadReserve :one
-- Reserves bytes for chunks the upload is about to write and allocates n chunk ids and the
-- id of the pack they go into (recorded on the upload row: dropping the upload deletes that
-- pack's object), before any blob is written. The conditional UPDATE serialises a user's
-- reservations on the storage row and re-checks the condition against the committed usage,
-- so concurrent uploads never take used_bytes past quota_bytes. No row: over quota (or no
-- storage row yet), nothing reserved, no id taken.
WITH reserved AS (
    UPDATE solo_user_storage
    SET used_bytes = used_bytes + @bytes::bigint, updated_at = now()
    WHERE user_id = @user_id::text AND used_bytes + @bytes::bigint <= quota_bytes
    RETURNING used_bytes, quota_bytes
), pack AS (
    SELECT nextval(pg_get_serial_sequence('snapshot_packs', 'id')) AS id
    FROM reserved
), upload AS (
    UPDATE snapshot_uploads u
    SET reserved_bytes = u.reserved_bytes + @bytes::bigint, pack_id = (SELECT id FROM pack)
    WHERE u.id = @upload_id AND EXISTS (SELECT 1 FROM reserved)
    RETURNING u.id, u.pack_id
)
SELECT r.used_bytes, r.quota_bytes, upload.pack_id::bigint AS pack_id,
       ARRAY(SELECT nextval(pg_get_serial_sequence('snapshot_chunks', 'id'))
             FROM generate_series(1, @n::int))::bigint[] AS chunk_ids
FROM reserved r, upload;

-- name: ChunkInsert :many
-- Records chunks whose blobs the upload has written (under the ids SnapshotUploadReserve
-- gave), each with one reference. When a concurrent upload of the same owner made the same
-- bytes live in the meantime, that row gets the reference instead: a returned id that is
-- not the proposed one means "yours was not needed" — the caller queues the deletion of its
-- own blob and does not count its bytes. Rows go in sha256 order, so two uploads inserting
-- the same new chunks wait for each other in one order. (Taking a reference on a row that
-- appeared since the caller's ChunkReferenceLive can wait out of id order: the rare deadlock
-- with a concurrent ChunkRelease, which the caller retries.)
INSERT INTO snapshot_chunks (id, user_id, sha256, size_bytes, stored_bytes, encoding, refcount, pack_id, pack_offset)
SELECT (@chunk_ids::bigint[])[i], @user_id::text, (@hashes::bytea[])[i], (@sizes::integer[])[i],
       (@stored::integer[])[i], (@encodings::smallint[])[i], 1,
       -- pack 0: chunks stored as objects of their own (tests of the layout before packs)
       nullif(@pack_id::bigint, 0), CASE WHEN @pack_id::bigint <> 0 THEN (@offsets::integer[])[i] END
FROM generate_series(1, cardinality(@chunk_ids::bigint[])) AS i
ORDER BY (@hashes::bytea[])[i]
ON CONFLICT (user_id, sha256) WHERE state = 'live'
DO UPDATE SET refcount = snapshot_chunks.refcount + 1
RETURNING id, sha256, size_bytes, stored_bytes, encoding, pack_id, pack_offset;

-- name: PackInsert :exec
-- Records an upload's pack in the transaction that inserted its live_chunks chunk rows
-- (ChunkInsert rows returned with their proposed ids). Not called when none was inserted:
-- the pack object is then unneeded (never referenced) and deleted at once.
INSERT INTO snapshot_packs (id, user_id, stored_bytes, live_chunks)
VALUES (@id, @user_id, @stored_bytes, @live_chunks);

-- name: PackRelease :many
-- Drops chunks from their packs (a pack id listed k times lost k chunk rows, deleted by
-- ChunkRelease in this transaction). A pack left with none becomes a tombstone in this
-- statement and is returned: the caller queues its object's deletion (DeletionGrace later).
-- Packs are locked in id order, after the chunk rows (the lock order of internal/chunkstore);
-- only the statements that free their chunks ever lock them.
WITH dec AS (
    SELECT x AS id, count(*)::integer AS n FROM unnest(@pack_ids::bigint[]) AS x GROUP BY x
), locked AS (
    -- Carries each pack's count: the update joins only this, by key. Joined with dec as
    -- well, the planner (estimating 10 ids and 1 locked row) rescanned dec for every locked
    -- row: 115 ms a call for 1,000-2,000 packs instead of 16.
    SELECT p.id, dec.n FROM dec JOIN snapshot_packs p ON p.id = dec.id
    WHERE p.state = 'live'
    ORDER BY p.id
    FOR UPDATE OF p
), upd AS (
    UPDATE snapshot_packs p
    SET live_chunks = greatest(p.live_chunks - locked.n, 0),
        state = CASE WHEN p.live_chunks <= locked.n THEN 'deleting' ELSE 'live' END,
        deleting_since = CASE WHEN p.live_chunks <= locked.n THEN now() END
    FROM locked
    WHERE p.id = locked.id
    RETURNING p.id, p.user_id, p.state
)
SELECT id, user_id FROM upd WHERE state = 'deleting' ORDER BY id;

-- name: PackDeleteTombstones :execrows
-- The deletion job (or the reaper), after deleting the pack objects: the rows go last.
-- Joined with the ids, as ChunkDeleteTombstones, so each is looked up by key.
DELETE FROM snapshot_packs p USING unnest(@pack_ids::bigint[]) AS x(id)
WHERE p.id = x.id AND p.state = 'deleting';

-- name: PackTombstonesBefore :many
-- Pack tombstones older than a deletion should take: finished by the reaper.
SELECT id, user_id FROM snapshot_packs
WHERE state = 'deleting' AND deleting_since < now() - make_interval(secs => @grace_seconds::float8)
ORDER BY deleting_since
LIMIT @fetch_limit;

-- name: PackIDsKnown :many
-- Which of these pack ids (parsed from blob keys) are recorded: a pack row, or an upload in
-- flight that reserved it. The orphan sweep of packs/ deletes an object older than its
-- grace only when its id is not among them.
SELECT id FROM snapshot_packs WHERE id = ANY(@pack_ids::bigint[])
UNION
SELECT pack_id FROM snapshot_uploads WHERE pack_id = ANY(@pack_ids::bigint[]);

-- name: SnapshotUploadSettle :one
-- Ends one batch of an upload: of the reserved bytes, the added ones became chunk rows
-- (counted as live chunks from now on) and the unused rest (reserved - added) goes back; the
-- chunks the batch referenced join the upload's references.
WITH released AS (
    UPDATE solo_user_storage
    SET used_bytes = used_bytes - @unused::bigint, updated_at = now()
    WHERE user_id = @user_id::text
    RETURNING used_bytes, quota_bytes
)
UPDATE snapshot_uploads u
SET reserved_bytes = u.reserved_bytes - @reserved::bigint,
    added_bytes = u.added_bytes + @added::bigint,
    chunk_ids = u.chunk_ids || @chunk_ids::bigint[]
FROM released
WHERE u.id = @upload_id
RETURNING u.reserved_bytes, u.added_bytes, released.used_bytes, released.quota_bytes;

-- name: SnapshotUploadAddRefs :exec
-- Records references taken by ChunkReferenceLive, in the same transaction.
UPDATE snapshot_uploads SET chunk_ids = chunk_ids || @chunk_ids::bigint[] WHERE id = @id;

-- name: SnapshotUploadCommit :one
-- Turns a fully settled upload (nothing left reserved) into its session's revision, moving
-- its references to the revision, in one statement. The caller has locked the upload and
-- numbered the revision (SessionRevisionNext) in this transaction.
WITH up AS (
    DELETE FROM snapshot_uploads d WHERE d.id = @upload_id AND d.reserved_bytes = 0
    RETURNING d.*
)
INSERT INTO solo_snapshots (id, session_id, user_id, status, revision, size_bytes, sha256, content_type,
                            blob_key, committed_at, manifest, chunk_ids, stored_bytes, restored_from)
SELECT up.id, up.session_id, up.user_id, 'committed', @revision::integer, @size_bytes::bigint, @sha256::text,
       @content_type::text, @blob_key::text, now(), @manifest::bytea,
       ARRAY(SELECT DISTINCT x FROM unnest(up.chunk_ids) AS x ORDER BY x), up.added_bytes, sqlc.narg(restored_from)::integer
FROM up
RETURNING *;

-- name: SessionRevisionNext :one
-- Numbers a new revision, unless its bytes are the newest revision's (then no row: the
-- upload is a duplicate and is dropped). The session row lock serialises a session's commits.
UPDATE solo_sessions
SET last_revision = last_revision + 1, newest_sha256 = @sha256::text
WHERE id = @id AND newest_sha256 IS DISTINCT FROM @sha256::text
RETURNING last_revision;

-- name: SnapshotUploadDelete :one
-- Drops an upload (failed, over quota, duplicate, or abandoned and found by the reaper):
-- the caller then releases reserved_bytes and ChunkRelease-s chunk_ids in this transaction.
DELETE FROM snapshot_uploads WHERE id = @id RETURNING *;

-- name: SnapshotUploadsAbandoned :many
SELECT id FROM snapshot_uploads
WHERE created_at < now() - make_interval(secs => @grace_seconds::float8)
ORDER BY created_at
LIMIT @fetch_limit;

-- name: ChunkRelease :many
-- Drops references (an id listed k times loses k). Chunks left with none are freed in this
-- same statement and returned: one in a pack is deleted (its bytes go with the pack: the
-- caller PackRelease-s pack_id), one stored as an object of its own (before packs) becomes a
-- tombstone whose blob's deletion the caller queues; the caller releases their stored_bytes,
-- all in this transaction. Rows are locked in id order, the order
-- of every statement that changes chunk rows, so concurrent releases and references never
-- deadlock; a reference taken first keeps the chunk live, one that comes second finds the
-- tombstone and stores the bytes anew (see ChunkReferenceLive).
WITH dec AS (
    SELECT x AS id, count(*)::integer AS n FROM unnest(@chunk_ids::bigint[]) AS x GROUP BY x
), locked AS (
    -- A join with the ids (each looked up by key), not "id IN (...) AND state = 'live'",
    -- which may scan the partial index of all the user's live chunks.
    -- It carries each chunk's count, so the update and the delete join only this, by key
    -- (see PackRelease: a second join with dec can be planned as a rescan per row).
    SELECT c.id, c.refcount, c.pack_id, dec.n FROM dec JOIN snapshot_chunks c ON c.id = dec.id
    WHERE c.state = 'live'
    ORDER BY c.id
    FOR UPDATE OF c
), upd AS (
    UPDATE snapshot_chunks c
    -- GREATEST: a drifted refcount (reconcile repairs it) must not fail the whole batch.
    SET refcount = greatest(c.refcount - locked.n, 0),
        state = CASE WHEN c.refcount <= locked.n THEN 'deleting' ELSE 'live' END,
        deleting_since = CASE WHEN c.refcount <= locked.n THEN now() END
    FROM locked
    WHERE c.id = locked.id AND (locked.pack_id IS NULL OR locked.refcount > locked.n)
    RETURNING c.id, c.user_id, c.sha256, c.stored_bytes, c.state, c.pack_id
), del AS (
    DELETE FROM snapshot_chunks c
    USING locked
    WHERE c.id = locked.id AND locked.pack_id IS NOT NULL AND locked.refcount <= locked.n
    RETURNING c.id, c.user_id, c.sha256, c.stored_bytes, c.pack_id
)
SELECT id, user_id, sha256, stored_bytes, pack_id FROM upd WHERE state = 'deleting'
UNION ALL
SELECT id, user_id, sha256, stored_bytes, pack_id FROM del
ORDER BY id;

-- name: ChunkDeleteTombstones :execrows
-- The deletion job, after deleting the blobs: the rows go last, so a crash in between
-- leaves a tombstone whose deletion is retried, never a blob without a row to find it.
-- Joined with the ids rather than "id = ANY(...) AND state = 'deleting'": with that form the
-- planner scanned the partial index of all tombstones and searched the array for each (GC of
-- 100k chunked revisions spent 29 of its 31 s there); this one looks each id up by key.
DELETE FROM snapshot_chunks c USING unnest(@chunk_ids::bigint[]) AS x(id)
WHERE c.id = x.id AND c.state = 'deleting';

-- name: ChunkTombstonesBefore :many
-- Tombstones older than a deletion should take: re-queued by the sweep (belt and braces).
SELECT id, user_id, sha256 FROM snapshot_chunks
WHERE state = 'deleting' AND deleting_since < now() - make_interval(secs => @grace_seconds::float8)
ORDER BY deleting_since
LIMIT @fetch_limit;

-- name: ChunkIDsKnown :many
-- Which of these chunk ids (parsed from blob keys) have a row, tombstones included: the
-- orphan sweep of chunks/ deletes a blob older than the grace period only when its id is
-- not among them.
SELECT id FROM snapshot_chunks WHERE id = ANY(@chunk_ids::bigint[]);

-- name: SnapshotPin :one
-- Pins a revision (setting or replacing its label), unless the session already has 50
-- pinned others; the caller holds the session row lock so the count cannot race. No row:
-- no such revision, or the limit (the caller tells them apart).
UPDATE solo_snapshots s
SET pinned = true, label = sqlc.narg(label)
WHERE s.session_id = @session_id AND s.revision = @revision::integer
  AND (s.pinned OR (SELECT count(*) FROM solo_snapshots p WHERE p.session_id = @session_id AND p.pinned) < 50)
RETURNING *;

-- name: SnapshotUnpin :one
UPDATE solo_snapshots SET pinned = false, label = NULL
WHERE session_id = @session_id AND revision = @revision::integer
RETURNING *;

-- name: SnapshotSourceLock :one
-- The revision a restore copies, locked so GC cannot drop it (and its references) meanwhile.
SELECT * FROM solo_snapshots WHERE session_id = @session_id AND revision = @revision::integer FOR UPDATE;

-- name: SnapshotRestoreInsert :one
-- The restored revision: the source's manifest and references (taken by ChunkReferenceByID
-- in this transaction), a new number, nothing added.
INSERT INTO solo_snapshots (id, session_id, user_id, status, revision, size_bytes, sha256, content_type,
                            blob_key, committed_at, manifest, chunk_ids, stored_bytes, restored_from)
SELECT @id::uuid, src.session_id, src.user_id, 'committed', @revision::integer, src.size_bytes, src.sha256,
       src.content_type, @blob_key::text, now(), src.manifest, src.chunk_ids, 0, src.revision
FROM solo_snapshots src
WHERE src.id = @source_id AND src.manifest IS NOT NULL
RETURNING *;

-- name: ChunkRefcountDrift :many
-- Paged by chunk id (after @after_id, @lim rows), so a badly drifted user is repaired in
-- bounded slices.
-- Reconcile: chunks of a user whose refcount differs from the references that revisions and
-- uploads hold (actual 0: nothing refers to it any more; refcount 0 with actual > 0: a
-- revision refers to a tombstone or a missing row, which is corruption to report).
WITH refs AS (
    SELECT r.id, count(*)::integer AS n FROM (
        SELECT unnest(s.chunk_ids) AS id FROM solo_snapshots s WHERE s.user_id = @user_id AND s.chunk_ids IS NOT NULL
        UNION ALL
        SELECT unnest(u.chunk_ids) AS id FROM snapshot_uploads u WHERE u.user_id = @user_id
    ) r
    GROUP BY r.id
), live AS (
    SELECT c.id, c.refcount FROM snapshot_chunks c WHERE c.user_id = @user_id AND c.state = 'live'
)
SELECT coalesce(live.id, refs.id)::bigint AS id,
       coalesce(live.refcount, 0)::integer AS refcount,
       coalesce(refs.n, 0)::integer AS actual
FROM live FULL JOIN refs ON refs.id = live.id
WHERE coalesce(live.refcount, 0) <> coalesce(refs.n, 0) AND coalesce(live.id, refs.id) > @after_id::bigint
ORDER BY 1
LIMIT @lim;

-- name: ChunkRefcountSet :exec
-- Reconcile's repair of a live chunk that is still referenced (actual >= 1); one with no
-- reference left goes through ChunkRelease with its whole refcount instead.
UPDATE snapshot_chunks SET refcount = @refcount::integer WHERE id = @id AND state = 'live';

-- name: ChunkUsageActual :one
-- What used_bytes must be (see migration 0006): live chunks, reservations of uploads in
-- flight, and whole-blob revisions from before chunking.
SELECT (coalesce((SELECT sum(c.stored_bytes) FROM snapshot_chunks c WHERE c.user_id = @user_id AND c.state = 'live'), 0)
      + coalesce((SELECT sum(u.reserved_bytes) FROM snapshot_uploads u WHERE u.user_id = @user_id), 0)
      + coalesce((SELECT sum(s.size_bytes) FROM solo_snapshots s WHERE s.user_id = @user_id AND s.manifest IS NULL), 0))::bigint AS used_bytes;

-- name: ChunkLockUser :exec
-- Reconcile's first lock: all of a user's live chunks, in id order (the order of every
-- statement that changes chunk rows), so no reference moves while it counts them.
SELECT id FROM snapshot_chunks WHERE user_id = @user_id AND state = 'live' ORDER BY id FOR UPDATE;

-- name: ChunkTombstonesByID :many
-- The tombstones among these ids (a drop or GC that freed them), for their blob keys.
SELECT id, user_id, sha256 FROM snapshot_chunks WHERE id = ANY(@chunk_ids::bigint[]) AND state = 'deleting';

-- name: SnapshotUploadsOthers :one
-- How many other uploads of the user are in flight: an upload refused for quota waits for
-- them once and retries, as one of them may be storing the very chunks it lacks.
SELECT count(*) FROM snapshot_uploads WHERE user_id = @user_id AND id <> @id;
