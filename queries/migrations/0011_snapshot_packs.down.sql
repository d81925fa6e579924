-- Chunks stored in packs cannot be expressed without them: rolling back deletes the revisions
-- that refer to packed chunks (and those chunks), as 0006's down migration does for chunked
-- revisions; the pack objects stay behind for an operator to remove. used_bytes is
-- recomputed from what remains.
DELETE FROM solo_snapshots s
WHERE EXISTS (SELECT 1 FROM snapshot_chunks c WHERE c.id = ANY(s.chunk_ids) AND c.pack_id IS NOT NULL);
DELETE FROM snapshot_uploads WHERE pack_id IS NOT NULL;
DELETE FROM snapshot_chunks WHERE pack_id IS NOT NULL;
UPDATE solo_user_storage st
SET used_bytes = coalesce((SELECT sum(c.stored_bytes) FROM snapshot_chunks c WHERE c.user_id = st.user_id AND c.state = 'live'), 0)
               + coalesce((SELECT sum(u.reserved_bytes) FROM snapshot_uploads u WHERE u.user_id = st.user_id), 0)
               + coalesce((SELECT sum(s.size_bytes) FROM solo_snapshots s WHERE s.user_id = st.user_id AND s.manifest IS NULL), 0),
    updated_at = now();
ALTER TABLE snapshot_uploads DROP COLUMN pack_id;
ALTER TABLE snapshot_chunks DROP CONSTRAINT snapshot_chunks_pack_check, DROP COLUMN pack_offset, DROP COLUMN pack_id;
DROP TABLE snapshot_packs;
