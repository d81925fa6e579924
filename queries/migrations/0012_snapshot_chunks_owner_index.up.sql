-- m4sh:no-transaction
-- snapshot_chunks_user_idx (owner, live chunks) repeated the leading column and predicate of
-- snapshot_chunks_live_idx (owner, hash, live chunks), which serves every lookup by owner as
-- well. With both, the planner could probe an owner's chunks by hash through the narrower
-- index and filter the owner's every live chunk against the hash (ChunkReferenceLive): with
-- one index, an owner-and-hash lookup is one probe of it. Dropped concurrently: uploads and
-- GC keep using the table meanwhile (a plain DROP INDEX would queue every statement on it
-- behind the longest one running). Safe to re-run.
DROP INDEX CONCURRENTLY IF EXISTS snapshot_chunks_user_idx;
