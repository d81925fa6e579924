DROP FUNCTION IF EXISTS telemetry_events_drop_partitions(date);
DROP FUNCTION IF EXISTS telemetry_events_ensure_partitions(date, integer);
-- Dropping the partitioned table drops every partition with it.
DROP TABLE IF EXISTS telemetry_events;
