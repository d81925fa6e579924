package solo_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/m4sh/backend/internal/blob"
	"github.com/m4sh/backend/internal/chunkstore"
	"github.com/m4sh/backend/internal/dbtest"
	"github.com/m4sh/backend/internal/solo"
)

// seedScale stores n sessions (one user each) of old+keep committed 100-byte revisions,
// with their blob files, and accounts them. Chunked revisions each refer to a chunk of their
// own and to one chunk all revisions of the session share; whole-blob ones (from before
// chunking) each have a blob.
func seedScale(b *testing.B, pool *pgxpool.Pool, dir string, n, old, keep int, chunked bool) {
	b.Helper()
	ctx := context.Background()
	total := old + keep
	if chunked {
		seedChunked(b, pool, dir, n, total)
		return
	}
	for _, sql := range []string{
		`INSERT INTO users (id) SELECT 'u' || g FROM generate_series(1, $1::int) g WHERE $2::int > 0`,
		`INSERT INTO solo_user_storage (user_id, used_bytes, quota_bytes) SELECT 'u' || g, $2::int * 100, 1000000000000 FROM generate_series(1, $1::int) g`,
		`INSERT INTO solo_sessions (id, user_id, last_revision) SELECT md5('s' || g)::uuid, 'u' || g, $2::int FROM generate_series(1, $1::int) g`,
		`INSERT INTO solo_snapshots (id, session_id, user_id, status, revision, size_bytes, sha256, content_type, blob_key, committed_at)
		 SELECT gen_random_uuid(), md5('s' || g)::uuid, 'u' || g, 'committed', r, 100, repeat('a', 64), 'application/json',
		        'solo/' || md5('s' || g)::uuid || '/' || r, now()
		 FROM generate_series(1, $1::int) g, generate_series(1, $2::int) r`,
	} {
		if _, err := pool.Exec(ctx, sql, n, total); err != nil {
			b.Fatal(err)
		}
	}
	rows, err := pool.Query(ctx, `SELECT blob_key FROM solo_snapshots`)
	if err != nil {
		b.Fatal(err)
	}
	keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		b.Fatal(err)
	}
	body := make([]byte, 100)
	for _, k := range keys {
		p := filepath.Join(dir, filepath.FromSlash(k))
		if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(p, body, 0o640); err != nil {
			b.Fatal(err)
		}
	}
	// Flush the seeded files and rows so that writeback of the setup does not land in the
	// timed part.
	syscall.Sync()
	if _, err := pool.Exec(ctx, `CHECKPOINT`); err != nil {
		b.Fatal(err)
	}
}

func seedChunked(b *testing.B, pool *pgxpool.Pool, dir string, n, total int) {
	b.Helper()
	ctx := context.Background()
	for _, sql := range []string{
		`INSERT INTO users (id) SELECT 'u' || g FROM generate_series(1, $1::int) g WHERE $2::int > 0`,
		`INSERT INTO solo_user_storage (user_id, used_bytes, quota_bytes) SELECT 'u' || g, ($2::int + 1) * 100, 1000000000000 FROM generate_series(1, $1::int) g`,
		`INSERT INTO solo_sessions (id, user_id, last_revision) SELECT md5('s' || g)::uuid, 'u' || g, $2::int FROM generate_series(1, $1::int) g`,
		// Chunk g*1000 is session g's shared chunk, g*1000+r revision r's own.
		// Each chunk in a pack of its own, as the upload that stored it wrote it (an upload
		// adding one chunk writes a pack of one).
		`INSERT INTO snapshot_packs (id, user_id, stored_bytes, live_chunks)
		 SELECT g * 1000 + r, 'u' || g, 100, 1
		 FROM generate_series(1, $1::int) g, generate_series(0, $2::int) r`,
		`INSERT INTO snapshot_chunks (id, user_id, sha256, size_bytes, stored_bytes, encoding, refcount, pack_id, pack_offset)
		 SELECT g * 1000 + r, 'u' || g, sha256(('c' || (g * 1000 + r))::bytea), 100, 100, 0, CASE WHEN r = 0 THEN $2::int ELSE 1 END,
		        g * 1000 + r, 0
		 FROM generate_series(1, $1::int) g, generate_series(0, $2::int) r`,
		`INSERT INTO solo_snapshots (id, session_id, user_id, status, revision, size_bytes, sha256, content_type, blob_key, committed_at,
		                             manifest, chunk_ids, stored_bytes)
		 SELECT gen_random_uuid(), md5('s' || g)::uuid, 'u' || g, 'committed', r, 200, repeat('a', 64), 'application/json',
		        'solo/' || md5('s' || g)::uuid || '/' || r, now(), '\x01'::bytea, ARRAY[g * 1000, g * 1000 + r]::bigint[],
		        CASE WHEN r = 1 THEN 200 ELSE 100 END
		 FROM generate_series(1, $1::int) g, generate_series(1, $2::int) r`,
	} {
		if _, err := pool.Exec(ctx, sql, n, total); err != nil {
			b.Fatalf("%s: %v", sql, err)
		}
	}
	rows, err := pool.Query(ctx, `SELECT user_id, sha256, id FROM snapshot_chunks`)
	if err != nil {
		b.Fatal(err)
	}
	type chunk struct {
		User string
		Sha  []byte
		ID   int64
	}
	chunks, err := pgx.CollectRows(rows, pgx.RowToStructByPos[chunk])
	if err != nil {
		b.Fatal(err)
	}
	body := make([]byte, 100)
	for _, c := range chunks {
		p := filepath.Join(dir, filepath.FromSlash(chunkstore.PackKey(c.User, c.ID)))
		if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(p, body, 0o640); err != nil {
			b.Fatal(err)
		}
	}
	syscall.Sync()
	if _, err := pool.Exec(ctx, `CHECKPOINT`); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkRetention measures solo.cleanup_snapshots end to end (the job through River, its
// batched blob deletions drained) on the local store, for 10k and 100k old revisions and for
// 2 or 20 kept per session, beside a baseline in the same run: one DELETE … RETURNING over
// every session, one UPDATE of the accounting, and an unlink per file — no batching, no
// locks per session, no River.
func BenchmarkRetention(b *testing.B) {
	cases := []struct {
		name                string
		sessions, old, keep int
		chunked             bool
	}{
		{"baseline", 5000, 20, 2, false},
		{"10k-deleted-keep2", 500, 20, 2, false},
		{"100k-deleted-keep2", 5000, 20, 2, false},
		{"100k-deleted-keep20", 5000, 20, 20, false},
		// Chunked revisions: 100k revisions' references dropped, 100k chunks freed.
		{"100k-chunked-keep2", 5000, 20, 2, true},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			var deleted int
			for b.Loop() {
				b.StopTimer()
				pool := dbtest.New(b)
				dir := b.TempDir()
				seedScale(b, pool, dir, tc.sessions, tc.old, tc.keep, tc.chunked)
				cpu := dbtest.ServerCPU(b, pool)
				b.StartTimer()
				if tc.name == "baseline" {
					deleted = rawCleanup(b, pool, dir, tc.keep)
				} else {
					deleted = runtimeCleanup(b, pool, dir, tc.keep)
				}
				b.StopTimer()
				b.ReportMetric(cpu().Seconds(), "pg-cpu-s")
				if want := tc.sessions * tc.old; deleted != want {
					b.Fatalf("deleted %d revisions, want %d", deleted, want)
				}
				pool.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(deleted)/b.Elapsed().Seconds()*float64(b.N), "revisions/s")
		})
	}
}

func rawCleanup(b *testing.B, pool *pgxpool.Pool, dir string, keep int) int {
	ctx := context.Background()
	var keys []string
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `DELETE FROM solo_snapshots s USING solo_sessions ss
			WHERE s.session_id = ss.id AND s.revision <= ss.last_revision - $1 RETURNING s.blob_key`, keep)
		if err != nil {
			return err
		}
		if keys, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE solo_user_storage u SET used_bytes = t.sum FROM (
			SELECT user_id, coalesce(sum(size_bytes), 0) AS sum FROM solo_snapshots GROUP BY user_id) t WHERE t.user_id = u.user_id`)
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	for _, k := range keys {
		if err := os.Remove(filepath.Join(dir, filepath.FromSlash(k))); err != nil {
			b.Fatal(err)
		}
	}
	return len(keys)
}

func runtimeCleanup(b *testing.B, pool *pgxpool.Pool, dir string, keep int) int {
	ctx := context.Background()
	store, err := blob.NewLocal(dir)
	if err != nil {
		b.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc := solo.New(pool, store, log, nil, solo.Options{KeepLast: keep, DeletionGrace: -1})
	client := riverClient(b, pool, svc, log)
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := client.Start(cctx); err != nil {
		b.Fatal(err)
	}
	defer func() {
		sctx, c := context.WithTimeout(ctx, 10*time.Second)
		defer c()
		_ = client.Stop(sctx)
	}()
	res, err := client.Insert(ctx, solo.CleanupArgs{KeepLast: &keep}, nil)
	if err != nil {
		b.Fatal(err)
	}
	// Waits longer than the tests do: a slow run is a figure to report, not a failure.
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Minute)
	defer wcancel()
	job, err := solo.Await(wctx, client, res.Job.ID, 20*time.Millisecond)
	if err != nil {
		b.Fatal(err)
	}
	return summaryOf(b, job).RevisionsDeleted
}
