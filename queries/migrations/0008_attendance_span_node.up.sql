-- The process that opened an attendance span, for a node alone (README "Attendance"): it ends
-- only its own spans at shutdown, and the spans of a node alone that died are ended at its
-- last heartbeat (presence_nodes) by the next node's sweep. Null for spans a cluster opens
-- (presence rows decide those) and for spans opened before this migration.
ALTER TABLE attendance_spans ADD COLUMN node_id uuid;

CREATE INDEX attendance_spans_node_open_idx ON attendance_spans (node_id) WHERE left_at IS NULL AND node_id IS NOT NULL;
