CREATE INDEX IF NOT EXISTS snapshot_chunks_user_idx ON snapshot_chunks (user_id) WHERE state = 'live';
