package classroom_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/m4sh/backend/internal/dbtest"
	"github.com/m4sh/backend/internal/postgres"
	"github.com/m4sh/backend/queries"
)

// legacyAtScale fills a pre-v0.31 database with 1,000,000 sessions of 5 participants each:
// 20,000 tutors with 0–3 classrooms (so every backfill rule fires), 100,000 students, each
// tutor drawing classroom members and session participants from a pool of 10 students.
const legacyAtScale = `
INSERT INTO users (id) SELECT 't' || g FROM generate_series(1, 20000) g;
INSERT INTO users (id) SELECT 's' || g FROM generate_series(1, 100000) g;
INSERT INTO classrooms (title, tutor_id, created_at)
SELECT 'Class ' || k, 't' || t, now() - make_interval(days => k)
FROM generate_series(1, 20000) t, generate_series(1, 3) k WHERE k <= t % 4;
INSERT INTO classroom_members (classroom_id, user_id)
SELECT c.id, 's' || ((substr(c.tutor_id, 2)::int * 7 + (c.created_at::date - current_date + 3) * 3 + j) % 100000 + 1)
FROM classrooms c, generate_series(0, 4) j
ON CONFLICT DO NOTHING;
INSERT INTO classroom_sessions (tutor_id, started_at)
SELECT 't' || (g % 20000 + 1), now() - make_interval(secs => g)
FROM generate_series(1, 1000000) g;
INSERT INTO classroom_session_participants (session_id, user_id)
SELECT s.id, 's' || ((substr(s.tutor_id, 2)::int * 7 + (abs(hashtext(s.id::text)) + k * 2) % 10) % 100000 + 1)
FROM classroom_sessions s, generate_series(0, 4) k
ON CONFLICT DO NOTHING;
ANALYZE;
`

// BenchmarkClassroomBackfill measures migration 0002 on 1M legacy sessions: wall time, the
// longest batch transaction of the steps that lock legacy rows (sized to BatchTarget; the
// longest any row lock is held) and the longest other statement (a step of its own, or a
// batch of a step that holds no such locks and is sized to a longer target=). The baseline is the naive migration on the same data: one UPDATE that
// links every session to its tutor's oldest classroom, holding its locks throughout.
func BenchmarkClassroomBackfill(b *testing.B) {
	ctx := context.Background()
	schema, err := fs.ReadFile(queries.Migrations, "migrations/0001_legacy_classrooms.up.sql")
	if err != nil {
		b.Fatal(err)
	}
	// Generating the data takes minutes on a durable cluster: it is kept between runs.
	legacy := dbtest.CachedURL(b, string(schema)+legacyAtScale, func(ctx context.Context, url string) error {
		pool, err := pgxpool.New(ctx, url)
		if err != nil {
			return err
		}
		defer pool.Close()
		m, err := dbtest.Migrator(pool)
		if err != nil {
			return err
		}
		if _, err := m.UpTo(ctx, 1); err != nil {
			return err
		}
		start := time.Now()
		if _, err := pool.Exec(ctx, legacyAtScale); err != nil {
			return err
		}
		b.Logf("legacy data generated in %v", time.Since(start))
		return nil
	})

	b.Run("baseline", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			pool := dbtest.Pool(b, dbtest.CloneURL(b, legacy))
			cpu := dbtest.ServerCPU(b, pool)
			b.StartTimer()
			if _, err := pool.Exec(ctx, `ALTER TABLE classroom_sessions ADD COLUMN classroom_id uuid;
				UPDATE classroom_sessions s SET classroom_id = (
					SELECT c.id FROM classrooms c WHERE c.tutor_id = s.tutor_id ORDER BY c.created_at LIMIT 1)`); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			b.ReportMetric(cpu().Seconds(), "pg-cpu-s")
			b.StartTimer()
		}
		b.ReportMetric(1_000_000/b.Elapsed().Seconds()*float64(b.N), "sessions/s")
	})

	b.Run("migration", func(b *testing.B) {
		var maxBatch, maxStmt time.Duration
		for b.Loop() {
			b.StopTimer()
			url := dbtest.CloneURL(b, legacy)
			pool, err := pgxpool.New(ctx, url)
			if err != nil {
				b.Fatal(err)
			}
			var logs bytes.Buffer
			cpu := dbtest.ServerCPU(b, pool)
			m, err := postgres.NewSchemaMigrator(pool, slog.New(&stepCPU{Handler: slog.NewJSONHandler(&logs, nil), cpu: cpu}))
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			if _, err := m.UpTo(ctx, 2); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			b.ReportMetric(cpu().Seconds(), "pg-cpu-s")
			for _, line := range bytes.Split(logs.Bytes(), []byte("\n")) {
				var e struct {
					Msg       string         `json:"msg"`
					Step      int            `json:"step"`
					Statement string         `json:"statement"`
					Duration  time.Duration  `json:"duration"`
					MaxBatch  *time.Duration `json:"max_batch"`
					Target    time.Duration  `json:"target"`
					Batches   int            `json:"batches"`
					Walks     int            `json:"walks"`
					CPU       time.Duration  `json:"pg_cpu"`
				}
				if json.Unmarshal(line, &e) != nil || e.Msg != "migration step" {
					continue
				}
				if e.MaxBatch != nil { // a batched step: each batch is a statement of its own
					if e.Target <= postgres.BatchTarget {
						maxBatch = max(maxBatch, *e.MaxBatch)
					} else {
						maxStmt = max(maxStmt, *e.MaxBatch)
					}
					b.Logf("step %d (%d batches in %d walks, target %v, longest %v): %v, pg-cpu %v", e.Step, e.Batches, e.Walks, e.Target, *e.MaxBatch, e.Duration, e.CPU)
				} else {
					maxStmt = max(maxStmt, e.Duration)
					b.Logf("step %d (%.40s): %v, pg-cpu %v", e.Step, e.Statement, e.Duration, e.CPU)
				}
			}
			var unlinked int
			if err := pool.QueryRow(ctx, `SELECT count(*) FROM classroom_sessions WHERE classroom_id IS NULL`).Scan(&unlinked); err != nil || unlinked != 0 {
				b.Fatalf("%d sessions left unlinked (%v)", unlinked, err)
			}
			pool.Close()
			b.StartTimer()
		}
		b.ReportMetric(1_000_000/b.Elapsed().Seconds()*float64(b.N), "sessions/s")
		b.ReportMetric(float64(maxBatch.Milliseconds()), "max-batch-ms")
		b.ReportMetric(float64(maxStmt.Milliseconds()), "max-stmt-ms")
	})
}

// stepCPU adds to each "migration step" record the PostgreSQL CPU used since the previous one
// (pg_cpu): where a migration's server time goes, step by step.
type stepCPU struct {
	slog.Handler
	cpu  func() time.Duration
	last time.Duration
}

func (h *stepCPU) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "migration step" {
		now := h.cpu()
		r.AddAttrs(slog.Duration("pg_cpu", now-h.last))
		h.last = now
	}
	return h.Handler.Handle(ctx, r)
}
