package classroom_test

import (
	"context"
	"maps"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/m4sh/backend/internal/dbtest"
)

// legacyFixture is pre-v0.31 data covering every backfill rule; t0 anchors its times.
type legacyFixture struct {
	t0 time.Time
}

func exec(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) {
	t.Helper()
	if _, err := pool.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func seedLegacy(t *testing.T, pool *pgxpool.Pool) legacyFixture {
	t.Helper()
	f := legacyFixture{t0: time.Date(2025, 1, 1, 9, 0, 0, 0, time.UTC)}
	at := func(h int) time.Time { return f.t0.Add(time.Duration(h) * time.Hour) }
	for _, u := range []string{"t1", "t2", "t3", "t4", "s1", "s2", "s3", "s4", "s5", "s6"} {
		exec(t, pool, `INSERT INTO users (id, name) VALUES ($1, upper($1))`, u)
	}
	classrooms := []struct {
		id, tutor string
		created   time.Time
	}{
		{"c1000000-0000-0000-0000-000000000001", "t1", at(0)},
		{"c2a00000-0000-0000-0000-000000000001", "t2", at(0)}, // older of t2's two
		{"c2b00000-0000-0000-0000-000000000001", "t2", at(1)},
		{"c4a00000-0000-0000-0000-000000000001", "t4", at(0)},
		{"c4b00000-0000-0000-0000-000000000001", "t4", at(1)},
	}
	for _, c := range classrooms {
		exec(t, pool, `INSERT INTO classrooms (id, title, tutor_id, created_at) VALUES ($1, 'Class', $2, $3)`, c.id, c.tutor, c.created)
	}
	for _, m := range [][2]string{{"c2a00000-0000-0000-0000-000000000001", "s1"}, {"c2b00000-0000-0000-0000-000000000001", "s2"}, {"c2b00000-0000-0000-0000-000000000001", "s3"}} {
		exec(t, pool, `INSERT INTO classroom_members (classroom_id, user_id, joined_at) VALUES ($1, $2, $3)`, m[0], m[1], at(-100))
	}
	sessions := []struct {
		id, tutor    string
		started      time.Time
		participants []string
	}{
		{"50000000-0000-0000-0000-000000000001", "t1", at(10), []string{"s1", "s4"}},       // rule 1
		{"50000000-0000-0000-0000-000000000002", "t2", at(11), []string{"s2", "s3", "s1"}}, // rule 2: c2b has 2
		{"50000000-0000-0000-0000-000000000003", "t2", at(12), []string{"s1"}},             // rule 2: c2a has 1
		{"50000000-0000-0000-0000-000000000004", "t2", at(13), []string{"s1", "s2"}},       // rule 2 tie → older c2a
		{"50000000-0000-0000-0000-000000000005", "t3", at(14), []string{"s5"}},             // rule 3: no classroom
		{"50000000-0000-0000-0000-000000000006", "t3", at(9), []string{"s6"}},              // rule 3: same imported
		{"50000000-0000-0000-0000-000000000007", "t4", at(15), []string{"s6"}},             // rule 3: no overlap
		{"50000000-0000-0000-0000-000000000008", "t2", at(16), nil},                        // rule 3: nobody
		{"50000000-0000-0000-0000-000000000009", "t1", at(8), []string{"t1", "s5", "s4"}},  // tutor listed as participant
	}
	for _, s := range sessions {
		exec(t, pool, `INSERT INTO classroom_sessions (id, tutor_id, started_at) VALUES ($1, $2, $3)`, s.id, s.tutor, s.started)
		for _, p := range s.participants {
			exec(t, pool, `INSERT INTO classroom_session_participants (session_id, user_id) VALUES ($1, $2)`, s.id, p)
		}
	}
	return f
}

// state reads what the backfill decides: each session's classroom (imported classrooms named
// by their tutor, since their ids are generated) and every membership with its joined_at.
func state(t *testing.T, pool *pgxpool.Pool) (sessions map[string]string, members map[string]time.Time) {
	t.Helper()
	ctx := context.Background()
	rows, err := pool.Query(ctx, `SELECT s.id::text, CASE WHEN c.kind = 'imported' THEN 'imported:' || c.tutor_id ELSE c.id::text END
		FROM classroom_sessions s JOIN classrooms c ON c.id = s.classroom_id`)
	if err != nil {
		t.Fatal(err)
	}
	sessions = map[string]string{}
	for rows.Next() {
		var s, c string
		if err := rows.Scan(&s, &c); err != nil {
			t.Fatal(err)
		}
		sessions[s] = c
	}
	rows, err = pool.Query(ctx, `SELECT CASE WHEN c.kind = 'imported' THEN 'imported:' || c.tutor_id ELSE c.id::text END, m.user_id, m.joined_at
		FROM classroom_members m JOIN classrooms c ON c.id = m.classroom_id`)
	if err != nil {
		t.Fatal(err)
	}
	members = map[string]time.Time{}
	for rows.Next() {
		var c, u string
		var j time.Time
		if err := rows.Scan(&c, &u, &j); err != nil {
			t.Fatal(err)
		}
		members[c+"/"+u] = j.UTC()
	}
	return sessions, members
}

func TestClassroomFKBackfill(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.Pool(t, dbtest.NewEmptyURL(t))
	m, err := dbtest.Migrator(pool)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.UpTo(ctx, 1); err != nil {
		t.Fatal(err)
	}
	f := seedLegacy(t, pool)
	at := func(h int) time.Time { return f.t0.Add(time.Duration(h) * time.Hour) }
	// Two sessions per deciding batch (two heap pages per linking one, two classrooms per
	// membership one): a tutor's sessions land in different batches, and later batches find
	// the imported classroom an earlier one made.
	m.BatchMax = 2
	if _, err := m.UpTo(ctx, 2); err != nil {
		t.Fatal(err)
	}

	const (
		c1  = "c1000000-0000-0000-0000-000000000001"
		c2a = "c2a00000-0000-0000-0000-000000000001"
		c2b = "c2b00000-0000-0000-0000-000000000001"
	)
	wantSessions := map[string]string{
		"50000000-0000-0000-0000-000000000001": c1,
		"50000000-0000-0000-0000-000000000002": c2b,
		"50000000-0000-0000-0000-000000000003": c2a,
		"50000000-0000-0000-0000-000000000004": c2a,
		"50000000-0000-0000-0000-000000000005": "imported:t3",
		"50000000-0000-0000-0000-000000000006": "imported:t3",
		"50000000-0000-0000-0000-000000000007": "imported:t4",
		"50000000-0000-0000-0000-000000000008": "imported:t2",
		"50000000-0000-0000-0000-000000000009": c1,
	}
	wantMembers := map[string]time.Time{
		// pre-existing
		c2a + "/s1": at(-100), c2b + "/s2": at(-100), c2b + "/s3": at(-100),
		// backfilled, joined at their earliest session in that classroom
		c1 + "/s1": at(10), c1 + "/s4": at(8), c1 + "/s5": at(8),
		c2b + "/s1":      at(11),
		c2a + "/s2":      at(13),
		"imported:t3/s5": at(14),
		"imported:t3/s6": at(9),
		"imported:t4/s6": at(15),
	}
	check := func(stage string) {
		t.Helper()
		gotS, gotM := state(t, pool)
		if !maps.Equal(gotS, wantSessions) {
			t.Errorf("%s: session classrooms =\n%v\nwant\n%v", stage, gotS, wantSessions)
		}
		if !maps.EqualFunc(gotM, wantMembers, func(a, b time.Time) bool { return a.Equal(b) }) {
			t.Errorf("%s: memberships =\n%v\nwant\n%v", stage, gotM, wantMembers)
		}
	}
	check("after migrate up")

	var notNull bool
	if err := pool.QueryRow(ctx, `SELECT attnotnull FROM pg_attribute WHERE attrelid = 'classroom_sessions'::regclass AND attname = 'classroom_id'`).Scan(&notNull); err != nil || !notNull {
		t.Errorf("classroom_id NOT NULL = %v, %v; want true", notNull, err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO classroom_sessions (tutor_id) VALUES ('t1')`); err == nil {
		t.Error("a session without a classroom was accepted after the migration")
	}
	if _, err := pool.Exec(ctx, `INSERT INTO classroom_sessions (tutor_id, classroom_id) VALUES ('t1', gen_random_uuid())`); err == nil {
		t.Error("a session with a dangling classroom_id was accepted after the migration")
	}

	if err := m.Reapply(ctx, 2); err != nil {
		t.Fatalf("running the backfill again: %v", err)
	}
	check("after running the backfill twice")
	var imported int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM classrooms WHERE kind = 'imported'`).Scan(&imported); err != nil || imported != 3 {
		t.Errorf("imported classrooms = %d, %v; want 3 (t2, t3, t4)", imported, err)
	}

	if _, err := m.Down(ctx, 1); err != nil {
		t.Fatalf("down: %v", err)
	}
	var hasColumn bool
	if err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_name = 'classroom_sessions' AND column_name = 'classroom_id')`).Scan(&hasColumn); err != nil || hasColumn {
		t.Fatalf("classroom_id still there after down (%v)", err)
	}
	// Legacy code keeps working on the old shape.
	exec(t, pool, `INSERT INTO classroom_sessions (id, tutor_id, started_at) VALUES ('50000000-0000-0000-0000-00000000000a', 't4', $1)`, at(20))
	if _, err := m.UpTo(ctx, 2); err != nil {
		t.Fatalf("up again: %v", err)
	}
	wantSessions["50000000-0000-0000-0000-00000000000a"] = "imported:t4"
	check("after down and up again")
}

// TestBackfillResumesAfterPartialRun starts from the state an interrupted earlier attempt
// leaves (column added, some sessions linked, nothing recorded) and checks the migration
// finishes the job.
func TestBackfillResumesAfterPartialRun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.Pool(t, dbtest.NewEmptyURL(t))
	m, err := dbtest.Migrator(pool)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.UpTo(ctx, 1); err != nil {
		t.Fatal(err)
	}
	seedLegacy(t, pool)
	// A previous attempt got as far as adding the column and linking one session by hand.
	exec(t, pool, `ALTER TABLE classroom_sessions ADD COLUMN classroom_id uuid`)
	exec(t, pool, `UPDATE classroom_sessions SET classroom_id = 'c1000000-0000-0000-0000-000000000001' WHERE id = '50000000-0000-0000-0000-000000000001'`)
	if _, err := m.UpTo(ctx, 2); err != nil {
		t.Fatal(err)
	}
	got, _ := state(t, pool)
	if len(got) != 9 {
		t.Fatalf("linked %d sessions, want 9: %v", len(got), got)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM classroom_sessions WHERE classroom_id IS NULL`).Scan(&n); err != nil || n != 0 {
		t.Errorf("%d sessions without classroom (%v)", n, err)
	}
}
