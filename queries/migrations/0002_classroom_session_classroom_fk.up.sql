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
-- Phase 1 runs in two walks, so that the transactions that lock sessions do nothing but
-- update them. The first decides each session's classroom (rules 1–3) and writes the decision
-- into this private work table; it only reads the legacy tables (no row locks on them; it
-- creates the imported classrooms, new rows nobody else can be waiting for), so its batches
-- may run for longer. Unlogged: it is rebuilt by a re-run if a crash empties it.
CREATE UNLOGGED TABLE IF NOT EXISTS m4sh_backfill_0002_links (
    session_id   uuid PRIMARY KEY,
    classroom_id uuid -- NULL: rule 3, the tutor's imported classroom
);
-- m4sh:split
-- What the rules need of each tutor, computed once (proportional to classrooms and their
-- members, not to sessions) into private tables with statistics, so that each batch of the
-- first walk joins them by hash with estimates the planner can trust: tutors with exactly one
-- regular classroom (rule 1), and the members of the classrooms of tutors with several (rule 2).
-- A classroom old code adds meanwhile is not seen by the sessions decided in this run.
DROP TABLE IF EXISTS m4sh_backfill_0002_only, m4sh_backfill_0002_choice;
CREATE UNLOGGED TABLE m4sh_backfill_0002_only AS
    SELECT tutor_id, (array_agg(id))[1] AS classroom_id FROM classrooms
    WHERE kind = 'regular' GROUP BY tutor_id HAVING count(*) = 1;
CREATE UNLOGGED TABLE m4sh_backfill_0002_choice AS
    SELECT c.tutor_id, m.user_id, c.id AS classroom_id, c.created_at
    FROM classrooms c JOIN classroom_members m ON m.classroom_id = c.id
    WHERE c.kind = 'regular'
      AND EXISTS (SELECT 1 FROM classrooms o WHERE o.tutor_id = c.tutor_id AND o.kind = 'regular' AND o.id <> c.id);
ANALYZE m4sh_backfill_0002_only, m4sh_backfill_0002_choice;
-- m4sh:split
-- Phase 1a: decide, a batch of sessions at a time walking the primary key ($1 the last id of
-- the previous batch, $2 how many sessions to take). A page is taken whole and filtered
-- afterwards, so a batch costs the same however much of the table is already linked. Set-based:
-- the page's participants are one range of their primary key, hashed against the tutors'
-- tables, rather than looked up session by session. Every rule offers candidates (rule 1
-- ranked first, rule 2 by its count, rule 3 last) and one sort picks each session's best: no
-- join between two intermediate results, whose sizes the planner cannot know and, guessing
-- them tiny, would join by nested loops, quadratic in the batch. Scoring (rule 2) sees
-- memberships as they were before this migration: phase 2 starts once phase 1 is complete.
-- m4sh:batched target=400ms
WITH page AS MATERIALIZED (
    SELECT id, tutor_id, started_at, classroom_id FROM classroom_sessions
    WHERE id > coalesce($1::uuid, '00000000-0000-0000-0000-000000000000') ORDER BY id LIMIT $2::int
), todo AS MATERIALIZED (
    -- The sessions of the page still to link. Written as a CASE because the planner has no
    -- statistics for a CTE's columns and would guess that "classroom_id IS NULL" keeps 0.5 %
    -- of the page. It guesses half for a CASE.
    SELECT id, tutor_id, started_at FROM page WHERE CASE WHEN classroom_id IS NULL THEN true END
), best AS MATERIALIZED (
    SELECT DISTINCT ON (id) id, tutor_id, started_at, classroom_id FROM (
        -- Rule 1: the tutor's only classroom.
        SELECT t.id, t.tutor_id, t.started_at, o.classroom_id, 2147483647 AS score, NULL::timestamptz AS created_at
        FROM todo t JOIN m4sh_backfill_0002_only o ON o.tutor_id = t.tutor_id
        UNION ALL
        -- Rule 2: the most participants as members, then the oldest, then the smallest id.
        SELECT t.id, t.tutor_id, t.started_at, x.classroom_id, count(*)::int, x.created_at
        FROM todo t
        JOIN classroom_session_participants p ON p.session_id = t.id
        JOIN m4sh_backfill_0002_choice x ON x.tutor_id = t.tutor_id AND x.user_id = p.user_id
        WHERE p.session_id > coalesce($1::uuid, '00000000-0000-0000-0000-000000000000')
          AND p.session_id <= (SELECT id FROM page ORDER BY id DESC LIMIT 1)
        GROUP BY t.id, t.tutor_id, t.started_at, x.classroom_id, x.created_at
        UNION ALL
        -- Rule 3, for a session no other rule placed.
        SELECT id, tutor_id, started_at, NULL, 0, NULL FROM todo
    ) candidates
    ORDER BY id, score DESC, created_at, classroom_id
), orphans AS (
    -- Rule 3: the tutor's "Imported sessions" classroom, made by the first batch that needs it.
    SELECT tutor_id, min(started_at) AS first_started FROM best WHERE classroom_id IS NULL GROUP BY tutor_id
), created AS (
    -- Found by the link walk (these rows are not visible to the rest of this statement).
    INSERT INTO classrooms (title, tutor_id, kind, created_at)
    SELECT 'Imported sessions', tutor_id, 'imported', first_started FROM orphans
    ON CONFLICT (tutor_id) WHERE kind = 'imported' DO NOTHING
), decided AS (
    INSERT INTO m4sh_backfill_0002_links (session_id, classroom_id)
    SELECT id, classroom_id FROM best
    -- Decided by an earlier, interrupted run: that decision stands.
    ON CONFLICT (session_id) DO NOTHING
    RETURNING 1
)
SELECT (SELECT id FROM page ORDER BY id DESC LIMIT 1)::text, (SELECT count(*) FROM page)::int, (SELECT count(*) FROM decided)::int;
-- m4sh:split
-- Phase 1b: link, walking the table in physical order, a range of $2 heap pages at a time
-- from page $1, so that a batch updates whole pages (each page dirtied, and logged in full
-- after a checkpoint, once) instead of one row on each of thousands of pages (a TID range
-- scan: PostgreSQL 14 or later, where older ones would scan the table per batch). Locking: a
-- batch is one statement in its own transaction and row-locks only the sessions of its pages,
-- for one batch (sized to about 100 ms); readers are never blocked, and a writer of one of
-- those sessions waits at most that long. Each decision is fetched by the work table's key
-- (the OFFSET keeps that a lookup rather than a hash of the whole work table), rule 3's
-- imported classroom by its tutor, and each row
-- updated by its ctid as just read; a session another transaction updated in between is left
-- for the next walk. The fourth column counts the sessions found undecided (inserted by old
-- code meanwhile): after a walk that found any, the decision walk runs again
-- (repeat-with-previous); walks repeat until one links and finds nothing.
-- m4sh:batched repeat-with-previous
WITH todo AS MATERIALIZED (
    SELECT s.ctid AS tid, s.id, l.classroom_id
    FROM classroom_sessions s
    LEFT JOIN LATERAL (
        SELECT coalesce(l.classroom_id, (
            SELECT i.id FROM classrooms i WHERE i.tutor_id = s.tutor_id AND i.kind = 'imported'
        )) AS classroom_id
        FROM m4sh_backfill_0002_links l WHERE l.session_id = s.id OFFSET 0
    ) l ON true
    WHERE s.ctid >= ('(' || coalesce($1::text::int, 0)::text || ',0)')::tid
      AND s.ctid < ('(' || (coalesce($1::text::int, 0) + $2::int)::text || ',0)')::tid
      AND s.classroom_id IS NULL
), linked AS (
    -- The page range again, so that the rows are found by it rather than by a scan of the table.
    UPDATE classroom_sessions s SET classroom_id = t.classroom_id
    FROM todo t
    WHERE s.ctid >= ('(' || coalesce($1::text::int, 0)::text || ',0)')::tid
      AND s.ctid < ('(' || (coalesce($1::text::int, 0) + $2::int)::text || ',0)')::tid
      AND s.ctid = t.tid AND s.id = t.id AND s.classroom_id IS NULL AND t.classroom_id IS NOT NULL
    RETURNING 1
), size AS (
    SELECT pg_relation_size('classroom_sessions') / current_setting('block_size')::int AS pages
)
SELECT CASE WHEN coalesce($1::text::int, 0) + $2::int < pages THEN (coalesce($1::text::int, 0) + $2::int)::text END,
       greatest(0, least($2::int, pages - coalesce($1::text::int, 0)))::int,
       (SELECT count(*) FROM linked)::int,
       (SELECT count(*) FROM todo WHERE classroom_id IS NULL)::int
FROM size;
-- m4sh:split
DROP TABLE IF EXISTS m4sh_backfill_0002_links, m4sh_backfill_0002_only, m4sh_backfill_0002_choice;
-- m4sh:split
-- The link walk left a dead version of every session behind. Clearing them first (and
-- setting the visibility map) makes the index build below about a third faster and phase 2's
-- heap visits cheaper, for less than the time it saves; it locks like the index build does
-- (SHARE UPDATE EXCLUSIVE: reads and writes go on).
VACUUM classroom_sessions;
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
