ALTER TABLE attendance_spans DROP COLUMN node_id;
