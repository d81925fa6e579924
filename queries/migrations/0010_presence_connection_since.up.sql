-- When each presence row was first written (README "Attendance"): attendance spans are
-- written after the presence change, by a writer that batches them, so a crash can lose a
-- queued span start; the sweep reopens such a span from the rows, at the time they date.
ALTER TABLE presence_connections ADD COLUMN since timestamptz NOT NULL DEFAULT now();
