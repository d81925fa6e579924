-- Telemetry events (README: Telemetry): an append-only log written in batches with COPY, natively
-- partitioned by receive day (UTC) so that retention is DROP TABLE of whole partitions
-- instead of DELETE + vacuum. Rows are partitioned by received_at (server time), never by the
-- client's ts, whose clock may be anywhere.
--
-- No primary key and no indexes: the table is write-optimised; partition pruning on
-- received_at serves time-bounded reads. The client address is only ever stored as a salted
-- hash (client_hash); user_agent is truncated by the writer.
CREATE TABLE telemetry_events (
    received_at timestamptz NOT NULL,
    name        text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    ts          timestamptz NOT NULL,
    level       text        CHECK (level IN ('debug', 'info', 'warn', 'error')),
    user_id     text,
    session_id  text,
    props       jsonb,
    user_agent  text        NOT NULL DEFAULT '',
    client_hash bytea       NOT NULL
) PARTITION BY RANGE (received_at);

-- Partition DDL needs identifiers computed from dates, which query parameters cannot be, so
-- it lives in these two functions (called by the River job telemetry.maintain_partitions and
-- by the writer when a row finds no partition). Partitions are named
-- telemetry_events_pYYYYMMDD and cover one UTC day. An advisory lock serialises concurrent
-- callers (several nodes, the job and the writer).
CREATE FUNCTION telemetry_events_ensure_partitions(first_day date, days integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    d       date;
    part    text;
    created integer := 0;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('telemetry_events_partitions'));
    FOR i IN 0 .. days - 1 LOOP
        d := first_day + i;
        part := 'telemetry_events_p' || to_char(d, 'YYYYMMDD');
        IF to_regclass(quote_ident(part)) IS NULL THEN
            EXECUTE format('CREATE TABLE %I PARTITION OF telemetry_events FOR VALUES FROM (%L) TO (%L)',
                part, d::timestamp AT TIME ZONE 'UTC', (d + 1)::timestamp AT TIME ZONE 'UTC');
            created := created + 1;
        END IF;
    END LOOP;
    RETURN created;
END
$$;

-- Drops the partitions of days before before_day. lock_timeout bounds how long a drop may
-- queue behind a running COPY (it needs an exclusive lock on the parent); the job retries.
CREATE FUNCTION telemetry_events_drop_partitions(before_day date) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    part    record;
    dropped integer := 0;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('telemetry_events_partitions'));
    SET LOCAL lock_timeout = '10s';
    FOR part IN
        SELECT n.nspname, c.relname
        FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE i.inhparent = 'telemetry_events'::regclass
          AND c.relname ~ '^telemetry_events_p[0-9]{8}$'
          AND to_date(substr(c.relname, 19), 'YYYYMMDD') < before_day
        ORDER BY c.relname
    LOOP
        EXECUTE format('DROP TABLE %I.%I', part.nspname, part.relname);
        dropped := dropped + 1;
    END LOOP;
    RETURN dropped;
END
$$;

-- Partitions around the migration date, so that a fresh deployment can store at once; the
-- periodic job keeps creating them ahead from then on.
SELECT telemetry_events_ensure_partitions((now() AT TIME ZONE 'UTC')::date - 1, 5);
