-- Rows are written by internal/telemetry with a hand-encoded binary COPY (copy.go): pgx's
-- generated CopyFrom encoded each value through its type map, most of the writer's cost.

-- name: TelemetryPartitionsEnsure :one
-- Creates the missing daily partitions of days first_day .. first_day+days-1; returns how many.
SELECT telemetry_events_ensure_partitions(@first_day::date, @days::integer)::integer AS created;

-- name: TelemetryPartitionsDropBefore :one
-- Drops the daily partitions of days before before_day; returns how many.
SELECT telemetry_events_drop_partitions(@before_day::date)::integer AS dropped;

-- name: TelemetryPartitionList :many
-- The daily partitions that exist, oldest first.
SELECT c.relname::text AS name
FROM pg_catalog.pg_inherits i
JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'telemetry_events'::regclass
ORDER BY c.relname;
