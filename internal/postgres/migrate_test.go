package postgres_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/m4sh/backend/internal/dbtest"
	"github.com/m4sh/backend/internal/postgres"
)

// TestMigrationsRoundTrip applies every migration, reverts them all, and applies them again:
// every down restores the previous shape well enough for its up to run again.
func TestMigrationsRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.Pool(t, dbtest.NewEmptyURL(t))
	m, err := dbtest.Migrator(pool)
	if err != nil {
		t.Fatal(err)
	}
	applied, err := m.Up(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(applied) != m.Latest() {
		t.Fatalf("Up applied %v, want %d migrations", applied, m.Latest())
	}
	if again, err := m.Up(ctx); err != nil || len(again) != 0 {
		t.Fatalf("second Up = %v, %v; want nothing applied", again, err)
	}
	reverted, err := m.Down(ctx, m.Latest())
	if err != nil {
		t.Fatal(err)
	}
	want := make([]int, 0, m.Latest())
	for v := m.Latest(); v >= 1; v-- {
		want = append(want, v)
	}
	if !slices.Equal(reverted, want) {
		t.Fatalf("Down reverted %v, want %v", reverted, want)
	}
	var tables int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname = 'public'
		AND tablename NOT LIKE 'river%' AND tablename <> 'm4sh_schema_migrations'`).Scan(&tables); err != nil {
		t.Fatal(err)
	}
	if tables != 0 {
		t.Errorf("%d of our tables left after reverting everything, want 0", tables)
	}
	if _, err := m.Up(ctx); err != nil {
		t.Fatalf("Up after Down: %v", err)
	}
	st, err := m.Status(ctx)
	if err != nil || !st.Current() {
		t.Fatalf("Status after re-Up = %+v, %v; want current", st, err)
	}
}

func TestLoadMigrationsRejectsBadSets(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		files fstest.MapFS
	}{
		{"gap", fstest.MapFS{
			"m/0001_a.up.sql": {Data: []byte("x")}, "m/0001_a.down.sql": {Data: []byte("x")},
			"m/0003_c.up.sql": {Data: []byte("x")}, "m/0003_c.down.sql": {Data: []byte("x")},
		}},
		{"missing down", fstest.MapFS{"m/0001_a.up.sql": {Data: []byte("x")}}},
		{"bad name", fstest.MapFS{"m/first.sql": {Data: []byte("x")}}},
	}
	for _, tt := range tests {
		if _, err := postgres.LoadMigrations(tt.files, "m"); err == nil {
			t.Errorf("LoadMigrations(%s) succeeded, want an error", tt.name)
		}
	}
}

// batchedMigrations is a migration set whose second migration computes in one batched step
// (into work) what the next one applies (to items), the way a backfill with a work table does.
// The applying step also plays another writer: its first batch adds an item behind every
// cursor, which only its next walk finds, and only a new walk of the computing step computes.
func batchedMigrations(t *testing.T, applyOpts string) []postgres.Migration {
	t.Helper()
	const compute = `-- m4sh:batched target=300ms
WITH page AS MATERIALIZED (
    SELECT id, done FROM items WHERE id > coalesce($1::text::int, -1) ORDER BY id LIMIT $2::int
), added AS (
    INSERT INTO work (id) SELECT id FROM page WHERE NOT done ON CONFLICT DO NOTHING RETURNING 1
)
SELECT (SELECT max(id) FROM page)::text, (SELECT count(*) FROM page)::int, (SELECT count(*) FROM added)::int`
	apply := `-- m4sh:batched ` + applyOpts + `
WITH writer AS (
    INSERT INTO items (id, done) SELECT 0, false WHERE NOT EXISTS (SELECT 1 FROM items WHERE id = 0)
), page AS MATERIALIZED (
    SELECT i.id, i.done, w.id IS NOT NULL AS computed FROM items i LEFT JOIN work w ON w.id = i.id
    WHERE i.id > coalesce($1::text::int, -1) ORDER BY i.id LIMIT $2::int
), applied AS (
    UPDATE items i SET done = true FROM page p WHERE i.id = p.id AND p.computed AND NOT i.done RETURNING 1
)
SELECT (SELECT max(id) FROM page)::text, (SELECT count(*) FROM page)::int, (SELECT count(*) FROM applied)::int,
       (SELECT count(*) FROM page WHERE NOT done AND NOT computed)::int`
	files := fstest.MapFS{
		"m/0001_items.up.sql": {Data: []byte(`CREATE TABLE items (id int PRIMARY KEY, done bool NOT NULL);
			CREATE TABLE work (id int PRIMARY KEY);
			INSERT INTO items SELECT g, false FROM generate_series(1, 50) g`)},
		"m/0001_items.down.sql":    {Data: []byte(`DROP TABLE items, work`)},
		"m/0002_backfill.up.sql":   {Data: []byte("-- m4sh:no-transaction\n" + compute + "\n-- m4sh:split\n" + apply)},
		"m/0002_backfill.down.sql": {Data: []byte(`UPDATE items SET done = false`)},
	}
	migs, err := postgres.LoadMigrations(files, "m")
	if err != nil {
		t.Fatal(err)
	}
	return migs
}

func TestBatchedRepeatWithPrevious(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.Pool(t, dbtest.NewEmptyURL(t))
	var logs bytes.Buffer
	m, err := postgres.NewMigrator(pool, batchedMigrations(t, "repeat-with-previous"), slog.New(slog.NewJSONHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	m.BatchMax = 7
	if _, err := m.Up(ctx); err != nil {
		t.Fatal(err)
	}
	var left int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM items WHERE NOT done`).Scan(&left); err != nil || left != 0 {
		t.Fatalf("%d items not done (%v), want 0: the item added during the walk was missed", left, err)
	}
	// Walks of the applying step: 50 items applied; the one added meanwhile found pending;
	// after the computing step walked again, it applied; nothing left.
	var walks []int
	for _, line := range bytes.Split(logs.Bytes(), []byte("\n")) {
		var e struct {
			Msg    string        `json:"msg"`
			Step   int           `json:"step"`
			Walks  int           `json:"walks"`
			Target time.Duration `json:"target"`
		}
		if json.Unmarshal(line, &e) == nil && e.Msg == "migration step" {
			walks = append(walks, e.Step*100+e.Walks)
			if want := map[int]time.Duration{1: 300 * time.Millisecond, 2: postgres.BatchTarget}[e.Step]; e.Target != want {
				t.Errorf("step %d logged target %v, want %v", e.Step, e.Target, want)
			}
		}
	}
	// Step 1 once, then again after the walk of step 2 that found the pending item, logged
	// before step 2's own line (4 walks).
	if want := []int{101, 101, 204}; !slices.Equal(walks, want) {
		t.Errorf("logged step*100+walks %v, want %v", walks, want)
	}
}

func TestBatchedOptionsRejected(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, opts := range []string{"repeat-with-previous target=2s", "repeat-with-previous target=fast", "again"} {
		pool := dbtest.Pool(t, dbtest.NewEmptyURL(t))
		m, err := postgres.NewMigrator(pool, batchedMigrations(t, opts), slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.Up(ctx); err == nil {
			t.Errorf("-- m4sh:batched %s: migrated, want an error", opts)
		}
	}
	migs := batchedMigrations(t, "repeat-with-previous")
	_, apply, _ := strings.Cut(migs[1].Up, "-- m4sh:split\n")
	migs[1].Up = "-- m4sh:no-transaction\n" + apply
	pool := dbtest.Pool(t, dbtest.NewEmptyURL(t))
	m, err := postgres.NewMigrator(pool, migs, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Up(ctx); err == nil || !strings.Contains(err.Error(), "no batched step before it") {
		t.Errorf("repeat-with-previous as the first batched step: %v, want an error", err)
	}
}
