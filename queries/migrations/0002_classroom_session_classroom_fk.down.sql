-- Restores the pre-v0.31 shape: sessions without a classroom, no classroom kinds. The
-- per-tutor "Imported sessions" classrooms the backfill created are removed with their
-- memberships; memberships it added to regular classrooms stay (they are indistinguishable
-- from ones made by hand, and harmless to the old code).
DROP TABLE IF EXISTS m4sh_backfill_0002_links, m4sh_backfill_0002_only, m4sh_backfill_0002_choice;
DROP INDEX IF EXISTS classroom_sessions_classroom_id_idx;
ALTER TABLE classroom_sessions DROP CONSTRAINT IF EXISTS classroom_sessions_classroom_id_fkey;
ALTER TABLE classroom_sessions DROP COLUMN IF EXISTS classroom_id;
DELETE FROM classrooms WHERE kind = 'imported';
DROP INDEX IF EXISTS classrooms_imported_per_tutor_idx;
ALTER TABLE classrooms DROP COLUMN IF EXISTS kind;
