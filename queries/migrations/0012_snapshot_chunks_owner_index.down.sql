-- Down migrations run in a transaction, so the index is built with the table locked
-- against writes for the time it takes.
CREATE INDEX IF NOT EXISTS snapshot_chunks_user_idx ON snapshot_chunks (user_id) WHERE state = 'live';
