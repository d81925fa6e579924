-- Solo workspace: sessions owned by one user, snapshot revisions stored as immutable blobs,
-- and per-user storage accounting (README: Snapshot and quota decisions).
--
-- Invariant: solo_user_storage.used_bytes == the sum of size_bytes of the user's rows in
-- solo_snapshots, pending ones included. Bytes are reserved together with a pending row, the
-- blob is written, then the row is committed (given its revision); a pending row whose upload
-- crashed is finished or rolled back by the reaper job, so the sum always matches.

CREATE TABLE solo_user_storage (
    user_id     text PRIMARY KEY REFERENCES users (id),
    used_bytes  bigint NOT NULL DEFAULT 0 CHECK (used_bytes >= 0),
    -- No CHECK used_bytes <= quota_bytes: an operator may lower a quota below usage.
    quota_bytes bigint NOT NULL CHECK (quota_bytes >= 0),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE solo_sessions (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id       text NOT NULL REFERENCES users (id),
    title         text NOT NULL DEFAULT '' CHECK (char_length(title) <= 200),
    -- The newest revision number handed out; incremented in the committing transaction, so
    -- revisions count up from 1 without gaps.
    last_revision integer NOT NULL DEFAULT 0 CHECK (last_revision >= 0),
    -- SHA-256 of the newest revision (NULL before the first): the commit compares an upload
    -- with it under the row lock, so identical concurrent uploads store one revision.
    -- Retention never deletes the newest revision, so it stays true.
    newest_sha256 text,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX solo_sessions_user_id_idx ON solo_sessions (user_id, created_at DESC, id DESC);

CREATE TABLE solo_snapshots (
    id           uuid PRIMARY KEY,
    session_id   uuid NOT NULL REFERENCES solo_sessions (id) ON DELETE CASCADE,
    -- Denormalised owner: quota accounting and GC work per user without a join.
    user_id      text NOT NULL REFERENCES users (id),
    status       text NOT NULL CHECK (status IN ('pending', 'committed')),
    revision     integer CHECK (revision >= 1),
    size_bytes   bigint NOT NULL CHECK (size_bytes > 0),
    sha256       text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    content_type text NOT NULL CHECK (char_length(content_type) BETWEEN 1 AND 255),
    blob_key     text NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    committed_at timestamptz,
    CHECK ((status = 'committed') = (revision IS NOT NULL)),
    CHECK ((status = 'committed') = (committed_at IS NOT NULL))
);
-- Revisions are unique per session; pending rows (revision NULL) do not take part.
CREATE UNIQUE INDEX solo_snapshots_session_revision_idx ON solo_snapshots (session_id, revision);
-- The reaper's scan for abandoned uploads.
CREATE INDEX solo_snapshots_pending_idx ON solo_snapshots (created_at) WHERE status = 'pending';

-- Idempotency-Key of snapshot uploads, scoped to the session. A key points at the revision
-- that answered it: the one its upload created, or the identical newest revision it was
-- deduplicated to. Deleting a revision (GC, a rolled-back upload) forgets its keys.
CREATE TABLE solo_snapshot_idempotency_keys (
    session_id      uuid NOT NULL REFERENCES solo_sessions (id) ON DELETE CASCADE,
    idempotency_key text NOT NULL CHECK (char_length(idempotency_key) BETWEEN 1 AND 255),
    snapshot_id     uuid NOT NULL REFERENCES solo_snapshots (id) ON DELETE CASCADE,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (session_id, idempotency_key)
);
CREATE INDEX solo_snapshot_idempotency_keys_snapshot_id_idx ON solo_snapshot_idempotency_keys (snapshot_id);
