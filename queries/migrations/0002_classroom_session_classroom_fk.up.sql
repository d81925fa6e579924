-- m4sh:no-transaction
-- v0.31: every classroom session belongs to a classroom.
--
-- Legacy sessions know their tutor and participants but not their classroom. This migration
-- adds classroom_sessions.classroom_id, links every legacy session to a classroom, makes
-- every legacy participant a member of that classroom (RBAC needs it), then enforces the
-- foreign key and NOT NULL. It runs outside a transaction, in batches that each commit, so
-- no statement holds a lock on a large table for long, and every step is safe to re-run from
-- any point (a crash mid-way is finished by running it again).
--
-- Backfill rule for a legacy session (documented in README "Classrooms"):
--   1. its tutor has exactly one classroom → that classroom;
--   2. its tutor has several → the one whose members (as they were before this migration)
--      include the most of the session's participants; ties go to the oldest classroom
--      (then the smallest id); if none of them has any of the participants → rule 3;
--   3. otherwise → the tutor's "Imported sessions" classroom, created once per tutor
--      (classrooms.kind = 'imported'). No session is dropped.
-- Every participant other than the classroom's tutor becomes a member, joined_at being the
-- start of the earliest session they took part in there (an earlier membership is kept).

ALTER TABLE classroom_sessions ADD COLUMN IF NOT EXISTS classroom_id uuid;
-- m4sh:split
ALTER TABLE classrooms ADD COLUMN IF NOT EXISTS kind text NOT NULL DEFAULT 'regular'
    CHECK (kind IN ('regular', 'imported'));
-- m4sh:split
CREATE UNIQUE INDEX IF NOT EXISTS classrooms_imported_per_tutor_idx ON classrooms (tutor_id) WHERE kind = 'imported';
-- m4sh:split
-- Phase 1: link sessions to classrooms, one committed batch of sessions at a time, walking the
-- primary key. Passes repeat until one finds nothing left (a later pass catches sessions
-- that old code inserted behind the cursor meanwhile). Scoring (rule 2) sees memberships as
-- they were before this migration, because phase 2 only starts once phase 1 is complete.
CREATE OR REPLACE PROCEDURE m4sh_backfill_session_classrooms(batch_size integer)
LANGUAGE plpgsql AS $$
DECLARE
    last_id  uuid;
    next_id  uuid;
    n        integer;
    linked   integer;
    started  timestamptz;
BEGIN
    CREATE TEMP TABLE IF NOT EXISTS m4sh_backfill_batch (
        id uuid PRIMARY KEY, tutor_id text NOT NULL, started_at timestamptz NOT NULL, classroom_id uuid
    ) ON COMMIT DELETE ROWS;
    LOOP
        linked := 0;
        last_id := '00000000-0000-0000-0000-000000000000';
        LOOP
            started := clock_timestamp();
            -- The page boundary comes from the primary key alone (an index-only scan), so a
            -- page costs the same however much of the table is already linked.
            SELECT page.id INTO next_id FROM (
                SELECT id FROM classroom_sessions WHERE id > last_id ORDER BY id LIMIT batch_size
            ) page ORDER BY page.id DESC LIMIT 1;
            EXIT WHEN next_id IS NULL;
            INSERT INTO m4sh_backfill_batch (id, tutor_id, started_at)
            SELECT s.id, s.tutor_id, s.started_at FROM classroom_sessions s
            WHERE s.id > last_id AND s.id <= next_id AND s.classroom_id IS NULL;
            GET DIAGNOSTICS n = ROW_COUNT;
            last_id := next_id;
            CONTINUE WHEN n = 0;

            -- Rules 1 and 2 (overlap is only counted where there is a choice to make).
            UPDATE m4sh_backfill_batch b SET classroom_id = pick.classroom_id
            FROM (
                WITH cand AS (
                    SELECT c.tutor_id, count(*) AS n FROM classrooms c
                    WHERE c.kind = 'regular' AND c.tutor_id IN (SELECT tutor_id FROM m4sh_backfill_batch)
                    GROUP BY c.tutor_id
                )
                SELECT DISTINCT ON (b2.id) b2.id, c.id AS classroom_id, cand.n AS candidates,
                       CASE WHEN cand.n = 1 THEN 0 ELSE
                           (SELECT count(*) FROM classroom_session_participants p
                              JOIN classroom_members m ON m.classroom_id = c.id AND m.user_id = p.user_id
                             WHERE p.session_id = b2.id) END AS overlap
                FROM m4sh_backfill_batch b2
                JOIN cand ON cand.tutor_id = b2.tutor_id
                JOIN classrooms c ON c.tutor_id = b2.tutor_id AND c.kind = 'regular'
                ORDER BY b2.id, overlap DESC, c.created_at, c.id
            ) pick
            WHERE b.id = pick.id AND (pick.candidates = 1 OR pick.overlap > 0);

            -- Rule 3.
            INSERT INTO classrooms (title, tutor_id, kind, created_at)
            SELECT 'Imported sessions', b.tutor_id, 'imported', min(b.started_at)
            FROM m4sh_backfill_batch b
            WHERE b.classroom_id IS NULL
            GROUP BY b.tutor_id
            ON CONFLICT (tutor_id) WHERE kind = 'imported' DO NOTHING;
            UPDATE m4sh_backfill_batch b SET classroom_id = c.id
            FROM classrooms c
            WHERE b.classroom_id IS NULL AND c.tutor_id = b.tutor_id AND c.kind = 'imported';

            UPDATE classroom_sessions s SET classroom_id = b.classroom_id
            FROM m4sh_backfill_batch b
            WHERE s.id = b.id AND s.classroom_id IS NULL;

            linked := linked + n;
            RAISE NOTICE 'm4sh backfill: linked % sessions in % ms', n,
                round(extract(epoch FROM clock_timestamp() - started) * 1000);
            COMMIT;
        END LOOP;
        COMMIT;
        EXIT WHEN linked = 0;
    END LOOP;
END $$;
-- m4sh:split
CALL m4sh_backfill_session_classrooms(5000);
-- m4sh:split
DROP PROCEDURE m4sh_backfill_session_classrooms(integer);
-- m4sh:split
-- The index sessions are listed by; phase 2 walks it too.
CREATE INDEX CONCURRENTLY IF NOT EXISTS classroom_sessions_classroom_id_idx
    ON classroom_sessions (classroom_id, started_at DESC, id DESC);
-- m4sh:split
-- Phase 2: memberships for legacy participants, a committed batch of classrooms at a time, so
-- each (classroom, user) pair is written once, by the batch that owns its classroom.
CREATE OR REPLACE PROCEDURE m4sh_backfill_session_members(batch_size integer)
LANGUAGE plpgsql AS $$
DECLARE
    last_id uuid := '00000000-0000-0000-0000-000000000000';
    next_id uuid;
    started timestamptz;
BEGIN
    LOOP
        started := clock_timestamp();
        SELECT page.id INTO next_id FROM (
            SELECT id FROM classrooms WHERE id > last_id ORDER BY id LIMIT batch_size
        ) page ORDER BY page.id DESC LIMIT 1;
        EXIT WHEN next_id IS NULL;

        INSERT INTO classroom_members AS m (classroom_id, user_id, joined_at)
        SELECT s.classroom_id, p.user_id, min(s.started_at)
        FROM classroom_sessions s
        JOIN classroom_session_participants p ON p.session_id = s.id
        WHERE s.classroom_id > last_id AND s.classroom_id <= next_id AND p.user_id <> s.tutor_id
        GROUP BY s.classroom_id, p.user_id
        ON CONFLICT (classroom_id, user_id) DO UPDATE SET joined_at = EXCLUDED.joined_at
        WHERE EXCLUDED.joined_at < m.joined_at;

        last_id := next_id;
        RAISE NOTICE 'm4sh backfill: memberships of a batch of classrooms in % ms',
            round(extract(epoch FROM clock_timestamp() - started) * 1000);
        COMMIT;
    END LOOP;
END $$;
-- m4sh:split
CALL m4sh_backfill_session_members(200);
-- m4sh:split
DROP PROCEDURE m4sh_backfill_session_members(integer);
-- m4sh:split
-- Enforce without a long exclusive lock: NOT VALID constraints are instant, VALIDATE takes a
-- lock that lets reads and writes go on, and SET NOT NULL skips its scan when a validated
-- CHECK already proves it.
DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'classroom_sessions_classroom_id_fkey') THEN
        ALTER TABLE classroom_sessions ADD CONSTRAINT classroom_sessions_classroom_id_fkey
            FOREIGN KEY (classroom_id) REFERENCES classrooms (id) ON DELETE CASCADE NOT VALID;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'classroom_sessions_classroom_id_not_null') THEN
        ALTER TABLE classroom_sessions ADD CONSTRAINT classroom_sessions_classroom_id_not_null
            CHECK (classroom_id IS NOT NULL) NOT VALID;
    END IF;
END $$;
-- m4sh:split
ALTER TABLE classroom_sessions VALIDATE CONSTRAINT classroom_sessions_classroom_id_fkey;
-- m4sh:split
ALTER TABLE classroom_sessions VALIDATE CONSTRAINT classroom_sessions_classroom_id_not_null;
-- m4sh:split
ALTER TABLE classroom_sessions ALTER COLUMN classroom_id SET NOT NULL;
-- m4sh:split
ALTER TABLE classroom_sessions DROP CONSTRAINT IF EXISTS classroom_sessions_classroom_id_not_null;
