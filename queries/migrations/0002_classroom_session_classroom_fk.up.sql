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
-- primary key (batches sized by time, see internal/postgres: $1 the last id of the previous
-- batch, $2 how many sessions to take). A page is taken whole and filtered afterwards, so a
-- batch costs the same however much of the table is already linked. Walks repeat until one
-- links nothing (catching sessions old code inserted behind the cursor meanwhile). Scoring
-- (rule 2) sees memberships as they were before this migration, because phase 2 only starts
-- once phase 1 is complete.
-- m4sh:batched repeat
WITH page AS MATERIALIZED (
    SELECT id, tutor_id, started_at, classroom_id FROM classroom_sessions
    WHERE id > coalesce($1::uuid, '00000000-0000-0000-0000-000000000000') ORDER BY id LIMIT $2::int
), batch AS MATERIALIZED (
    -- The sessions of the page still to link. Written as a CASE because the planner has no
    -- statistics for a CTE's columns and would guess that "classroom_id IS NULL" keeps 0.5 %
    -- of the page; on that guess it joins the later steps by nested loops, quadratic in the
    -- batch size (4x the CPU at 1,000 sessions). It guesses half of the page for a CASE.
    SELECT id, tutor_id, started_at FROM page WHERE CASE WHEN classroom_id IS NULL THEN true END
), cands AS (
    -- Rules 1 and 2: the tutor's regular classrooms, and how many there are.
    SELECT b.id, c.id AS classroom_id, c.created_at, count(*) OVER (PARTITION BY b.id) AS n
    FROM batch b JOIN classrooms c ON c.tutor_id = b.tutor_id AND c.kind = 'regular'
), overlap AS (
    -- Counted only where there is a choice to make.
    SELECT x.id, x.classroom_id, count(*) AS n
    FROM cands x
    JOIN classroom_session_participants p ON p.session_id = x.id
    JOIN classroom_members m ON m.classroom_id = x.classroom_id AND m.user_id = p.user_id
    WHERE x.n > 1
    GROUP BY x.id, x.classroom_id
), picked AS (
    SELECT DISTINCT ON (x.id) x.id, x.classroom_id
    FROM cands x LEFT JOIN overlap o ON o.id = x.id AND o.classroom_id = x.classroom_id
    WHERE x.n = 1 OR o.n > 0
    ORDER BY x.id, o.n DESC NULLS LAST, x.created_at, x.classroom_id
), orphans AS (
    -- Rule 3: the tutor's "Imported sessions" classroom, made by the first batch that needs it.
    SELECT b.tutor_id, min(b.started_at) AS first_started FROM batch b
    WHERE NOT EXISTS (SELECT 1 FROM picked p WHERE p.id = b.id)
    GROUP BY b.tutor_id
), created AS (
    INSERT INTO classrooms (title, tutor_id, kind, created_at)
    SELECT 'Imported sessions', tutor_id, 'imported', first_started FROM orphans
    ON CONFLICT (tutor_id) WHERE kind = 'imported' DO NOTHING
    RETURNING id, tutor_id
), imported AS (
    SELECT id, tutor_id FROM created
    UNION ALL
    SELECT c.id, c.tutor_id FROM classrooms c JOIN orphans o ON o.tutor_id = c.tutor_id WHERE c.kind = 'imported'
), linked AS (
    UPDATE classroom_sessions s SET classroom_id = coalesce(p.classroom_id, i.id)
    FROM batch b
    LEFT JOIN picked p ON p.id = b.id
    LEFT JOIN imported i ON i.tutor_id = b.tutor_id
    WHERE s.id = b.id AND s.classroom_id IS NULL
    RETURNING 1
)
SELECT (SELECT id FROM page ORDER BY id DESC LIMIT 1)::text, (SELECT count(*) FROM page)::int, (SELECT count(*) FROM linked)::int;
-- m4sh:split
-- The index sessions are listed by; phase 2 walks it too.
CREATE INDEX CONCURRENTLY IF NOT EXISTS classroom_sessions_classroom_id_idx
    ON classroom_sessions (classroom_id, started_at DESC, id DESC);
-- m4sh:split
-- Phase 2: memberships for legacy participants, a committed batch of classrooms at a time
-- ($1 the last classroom id of the previous batch, $2 how many classrooms to take), so each
-- (classroom, user) pair is written once, by the batch that owns its classroom.
-- m4sh:batched
WITH page AS MATERIALIZED (
    SELECT id FROM classrooms
    WHERE id > coalesce($1::uuid, '00000000-0000-0000-0000-000000000000') ORDER BY id LIMIT $2::int
), added AS (
    INSERT INTO classroom_members AS m (classroom_id, user_id, joined_at)
    SELECT s.classroom_id, p.user_id, min(s.started_at)
    FROM classroom_sessions s
    JOIN classroom_session_participants p ON p.session_id = s.id
    WHERE s.classroom_id > coalesce($1::uuid, '00000000-0000-0000-0000-000000000000')
      AND s.classroom_id <= (SELECT id FROM page ORDER BY id DESC LIMIT 1) AND p.user_id <> s.tutor_id
    GROUP BY s.classroom_id, p.user_id
    ON CONFLICT (classroom_id, user_id) DO UPDATE SET joined_at = EXCLUDED.joined_at
    WHERE EXCLUDED.joined_at < m.joined_at
    RETURNING 1
)
SELECT (SELECT id FROM page ORDER BY id DESC LIMIT 1)::text, (SELECT count(*) FROM page)::int, (SELECT count(*) FROM added)::int;
-- m4sh:split
-- Left behind by an earlier version of this migration (batches in procedures) interrupted mid-way.
DROP PROCEDURE IF EXISTS m4sh_backfill_session_classrooms(integer);
DROP PROCEDURE IF EXISTS m4sh_backfill_session_members(integer);
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
