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
-- The planner needs statistics on the new columns: without them it guesses that
-- kind = 'regular' and classroom_id IS NULL keep 0.5 % of the rows (all do), and joins phase
-- 1's working sets by nested loops. (ANALYZE reads a sample and blocks no reads or writes.)
ANALYZE classrooms, classroom_sessions;
-- m4sh:split
-- Phase 1 runs in two walks, so that the transactions that lock sessions do nothing but
-- update them. The first decides each session's classroom (rules 1–3) and writes the decision
-- into this private work table; it only reads the legacy tables (no row locks on them; it
-- creates the imported classrooms, new rows nobody else can be waiting for), so its batches
-- may run for longer. Unlogged: it is rebuilt by a re-run if a crash empties it.
CREATE UNLOGGED TABLE IF NOT EXISTS m4sh_backfill_0002_links (
    session_id   uuid PRIMARY KEY,
    classroom_id uuid NOT NULL
);
-- m4sh:split
-- Phase 1a: decide, a batch of tutors at a time walking their index ($1 the last tutor of the
-- previous batch, $2 how many tutors to take), for all their sessions still to link. Walking
-- tutors keeps every batch's work in proportion to its size: the classrooms and members rule
-- 2 counts are those of the batch's tutors, hashed once per batch and matched against all the
-- participants of the batch's sessions at once, rather than looked up session by session.
-- Scoring (rule 2) sees memberships as they were before this migration: phase 2 starts once
-- phase 1 is complete.
-- m4sh:batched target=400ms
WITH tutors AS MATERIALIZED (
    SELECT DISTINCT tutor_id FROM classroom_sessions
    WHERE tutor_id > coalesce($1::text, '') ORDER BY tutor_id LIMIT $2::int
), todo AS MATERIALIZED (
    SELECT s.id, s.tutor_id, s.started_at
    FROM tutors t JOIN classroom_sessions s ON s.tutor_id = t.tutor_id
    WHERE s.classroom_id IS NULL
), mine AS MATERIALIZED (
    -- The tutors' regular classrooms, each with how many its tutor has.
    SELECT c.id, c.tutor_id, c.created_at, count(*) OVER (PARTITION BY c.tutor_id) AS n
    FROM tutors t JOIN classrooms c ON c.tutor_id = t.tutor_id AND c.kind = 'regular'
), choice AS MATERIALIZED (
    -- The members of the classrooms of tutors who have several: what rule 2 counts.
    SELECT c.tutor_id, m.user_id, c.id AS classroom_id
    FROM mine c JOIN classroom_members m ON m.classroom_id = c.id WHERE c.n > 1
), hits AS (
    SELECT t.id, x.classroom_id, count(*) AS n
    FROM todo t
    JOIN classroom_session_participants p ON p.session_id = t.id
    JOIN choice x ON x.tutor_id = t.tutor_id AND x.user_id = p.user_id
    GROUP BY t.id, x.classroom_id
), picked AS (
    -- Rule 1: the tutor's only classroom.
    SELECT t.id, c.id AS classroom_id FROM todo t JOIN mine c ON c.tutor_id = t.tutor_id AND c.n = 1
    UNION ALL
    -- Rule 2: the most participants as members, then the oldest, then the smallest id.
    (SELECT DISTINCT ON (h.id) h.id, h.classroom_id FROM hits h JOIN mine c ON c.id = h.classroom_id
     ORDER BY h.id, h.n DESC, c.created_at, c.id)
), orphans AS (
    -- Rule 3: the tutor's "Imported sessions" classroom, made by the first batch that needs it.
    SELECT t.tutor_id, min(t.started_at) AS first_started FROM todo t
    WHERE NOT EXISTS (SELECT 1 FROM picked p WHERE p.id = t.id)
    GROUP BY t.tutor_id
), created AS (
    INSERT INTO classrooms (title, tutor_id, kind, created_at)
    SELECT 'Imported sessions', tutor_id, 'imported', first_started FROM orphans
    ON CONFLICT (tutor_id) WHERE kind = 'imported' DO NOTHING
    RETURNING id, tutor_id
), imported AS (
    SELECT id, tutor_id FROM created
    UNION ALL
    SELECT c.id, c.tutor_id FROM classrooms c JOIN orphans o ON o.tutor_id = c.tutor_id WHERE c.kind = 'imported'
), decided AS (
    INSERT INTO m4sh_backfill_0002_links (session_id, classroom_id)
    SELECT id, classroom_id FROM picked
    UNION ALL
    SELECT t.id, i.id FROM todo t JOIN imported i ON i.tutor_id = t.tutor_id
    WHERE NOT EXISTS (SELECT 1 FROM picked p WHERE p.id = t.id)
    -- Decided by an earlier, interrupted run: that decision stands.
    ON CONFLICT (session_id) DO NOTHING
    RETURNING 1
)
SELECT (SELECT max(tutor_id) FROM tutors), (SELECT count(*) FROM tutors)::int, (SELECT count(*) FROM decided)::int;
-- m4sh:split
-- Phase 1b: link, walking the table in physical order, a range of $2 heap pages at a time
-- from page $1, so that a batch updates whole pages (each page dirtied, and logged in full
-- after a checkpoint, once) instead of one row on each of thousands of pages. Locking: a
-- batch is one statement in its own transaction and row-locks only the sessions of its pages,
-- for one batch (sized to about 150 ms); readers are never blocked, and a writer of one of
-- those sessions waits at most that long. Each decision is fetched by the work table's key
-- (the OFFSET keeps that a lookup rather than a hash of the whole work table), and each row
-- updated by its ctid as just read; a session another transaction updated in between is left
-- for the next walk. Walks repeat, each after another decision walk (repeat-with-previous),
-- until one links nothing: sessions old code inserted meanwhile are decided, then linked.
-- m4sh:batched repeat-with-previous
WITH todo AS MATERIALIZED (
    SELECT s.ctid AS tid, s.id, l.classroom_id
    FROM classroom_sessions s
    CROSS JOIN LATERAL (
        SELECT l.classroom_id FROM m4sh_backfill_0002_links l WHERE l.session_id = s.id OFFSET 0
    ) l
    WHERE s.ctid >= ('(' || coalesce($1::text::int, 0)::text || ',0)')::tid
      AND s.ctid < ('(' || (coalesce($1::text::int, 0) + $2::int)::text || ',0)')::tid
      AND s.classroom_id IS NULL
), linked AS (
    UPDATE classroom_sessions s SET classroom_id = t.classroom_id
    FROM todo t WHERE s.ctid = t.tid AND s.id = t.id AND s.classroom_id IS NULL
    RETURNING 1
), size AS (
    SELECT pg_relation_size('classroom_sessions') / current_setting('block_size')::int AS pages
)
SELECT CASE WHEN coalesce($1::text::int, 0) + $2::int < pages THEN (coalesce($1::text::int, 0) + $2::int)::text END,
       greatest(0, least($2::int, pages - coalesce($1::text::int, 0)))::int,
       (SELECT count(*) FROM linked)::int
FROM size;
-- m4sh:split
DROP TABLE IF EXISTS m4sh_backfill_0002_links;
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
