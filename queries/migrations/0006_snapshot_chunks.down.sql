-- Chunked revisions cannot be turned back into whole blobs here: rolling back deletes
-- them with their chunks (the blobs stay behind for the orphan sweep of chunks/ to find, or
-- an operator to remove), and used_bytes goes back to the whole-blob sum.
DELETE FROM solo_snapshots WHERE manifest IS NOT NULL;
UPDATE solo_user_storage st
SET used_bytes = coalesce((SELECT sum(size_bytes) FROM solo_snapshots s WHERE s.user_id = st.user_id), 0),
    updated_at = now();
DROP INDEX solo_snapshots_pinned_idx;
ALTER TABLE solo_snapshots
    DROP CONSTRAINT solo_snapshots_label_pinned_check,
    DROP CONSTRAINT solo_snapshots_manifest_chunk_ids_check,
    DROP COLUMN restored_from,
    DROP COLUMN label,
    DROP COLUMN pinned,
    DROP COLUMN stored_bytes,
    DROP COLUMN chunk_ids,
    DROP COLUMN manifest;
DROP TABLE snapshot_uploads;
DROP TABLE snapshot_chunks;
