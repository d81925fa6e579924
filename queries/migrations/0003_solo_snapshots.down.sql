DROP TABLE solo_snapshot_idempotency_keys;
DROP TABLE solo_snapshots;
DROP TABLE solo_sessions;
DROP TABLE solo_user_storage;
