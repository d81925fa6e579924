package postgres_test

import (
	"context"
	"slices"
	"testing"
	"testing/fstest"

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
