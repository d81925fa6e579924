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
-- Scoring (rule 2) must see memberships as they were before this migration, not the ones it
-- creates as it goes, or the outcome would depend on batch order. Keep a copy; a re-run after
-- a crash finds the copy made by the first attempt, which is the one it needs.
CREATE UNLOGGED TABLE IF NOT EXISTS m4sh_backfill_members_before AS
    SELECT classroom_id, user_id FROM classroom_members;
-- m4sh:split
CREATE UNIQUE INDEX IF NOT EXISTS m4sh_backfill_members_before_idx ON m4sh_backfill_members_before (classroom_id, user_id);
-- m4sh:split
-- One keyset pass over the sessions' primary key links a batch and creates its memberships in
-- the same short transaction; passes repeat until one finds nothing left (a later pass catches
-- sessions that old code inserted behind the cursor meanwhile).
CREATE OR REPLACE PROCEDURE m4sh_backfill_session_classrooms(batch_size integer)
LANGUAGE plpgsql AS $$
DECLARE
    last_id  uuid;
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
            INSERT INTO m4sh_backfill_batch (id, tutor_id, started_at)
            SELECT s.id, s.tutor_id, s.started_at FROM classroom_sessions s
            WHERE s.id > last_id AND s.classroom_id IS NULL
            ORDER BY s.id
            LIMIT batch_size;
            GET DIAGNOSTICS n = ROW_COUNT;
            EXIT WHEN n = 0;
            -- (uuid has no max() in PostgreSQL 15; its text form sorts the same way.)
            SELECT max(id::text)::uuid INTO last_id FROM m4sh_backfill_batch;

            -- Rules 1 and 2 (overlap is only counted where there is a choice to make).
            UPDATE m4sh_backfill_batch b SET classroom_id = pick.classroom_id
            FROM (
                SELECT DISTINCT ON (b2.id) b2.id, c.id AS classroom_id, cand.n AS candidates,
                       CASE WHEN cand.n = 1 THEN 0 ELSE
                           (SELECT count(*) FROM classroom_session_participants p
                              JOIN m4sh_backfill_members_before m ON m.classroom_id = c.id AND m.user_id = p.user_id
                             WHERE p.session_id = b2.id) END AS overlap
                FROM m4sh_backfill_batch b2
                JOIN classrooms c ON c.tutor_id = b2.tutor_id AND c.kind = 'regular'
                JOIN LATERAL (SELECT count(*) AS n FROM classrooms c2
                              WHERE c2.tutor_id = b2.tutor_id AND c2.kind = 'regular') cand ON true
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

            -- Memberships: every participant but the tutor (a session's classroom always has
            -- the session's tutor), joined at their earliest session there.
            INSERT INTO classroom_members AS m (classroom_id, user_id, joined_at)
            SELECT b.classroom_id, p.user_id, min(b.started_at)
            FROM m4sh_backfill_batch b
            JOIN classroom_session_participants p ON p.session_id = b.id
            WHERE p.user_id <> b.tutor_id
            GROUP BY b.classroom_id, p.user_id
            ON CONFLICT (classroom_id, user_id) DO UPDATE SET joined_at = EXCLUDED.joined_at
            WHERE EXCLUDED.joined_at < m.joined_at;

            linked := linked + n;
            RAISE NOTICE 'm4sh backfill: linked % sessions in % ms', n,
                round(extract(epoch FROM clock_timestamp() - started) * 1000);
            COMMIT;
        END LOOP;
        EXIT WHEN linked = 0;
    END LOOP;
END $$;
-- m4sh:split
CALL m4sh_backfill_session_classrooms(5000);
-- m4sh:split
DROP PROCEDURE m4sh_backfill_session_classrooms(integer);
-- m4sh:split
DROP TABLE m4sh_backfill_members_before;
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
-- m4sh:split
CREATE INDEX CONCURRENTLY IF NOT EXISTS classroom_sessions_classroom_id_idx
    ON classroom_sessions (classroom_id, started_at DESC, id DESC);
