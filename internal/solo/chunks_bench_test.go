package solo_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/m4sh/backend/internal/blob"
	"github.com/m4sh/backend/internal/chunkstore/scenetest"
	"github.com/m4sh/backend/internal/dbtest"
	"github.com/m4sh/backend/internal/solo"
)

// BenchmarkAutosaves20 stores 20 autosaves of a 1 MiB whiteboard scene, about 1 % of it
// changed each time (scenetest.Autosaves), one scene (seed) per iteration: "chunked" through
// SnapshotCreate on the local store, reporting what the user's storage holds afterwards
// beside what whole snapshots take (stored-MiB, whole-MiB); "baseline", in the same run, the
// same bodies each written whole to a temporary file, fsynced and renamed, plus one INSERT.
// ms/autosave is the time per autosave after the first.
func BenchmarkAutosaves20(b *testing.B) {
	pool := dbtest.New(b)
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `CREATE TABLE bench_blobs (id bigserial PRIMARY KEY, blob_key text NOT NULL, size_bytes bigint NOT NULL)`); err != nil {
		b.Fatal(err)
	}
	scenes := map[uint64][][]byte{}
	autosaves := func(seed uint64) [][]byte {
		if scenes[seed] == nil {
			scenes[seed] = scenetest.Autosaves(seed, 20)
		}
		return scenes[seed]
	}
	b.Run("baseline", func(b *testing.B) {
		dir := b.TempDir()
		var later time.Duration
		seed := uint64(0)
		for b.Loop() {
			b.StopTimer()
			seed++
			revs := autosaves(seed)
			b.StartTimer()
			for i, body := range revs {
				start := time.Now()
				f, err := os.CreateTemp(dir, ".tmp-*")
				if err != nil {
					b.Fatal(err)
				}
				if _, err := f.Write(body); err != nil {
					b.Fatal(err)
				}
				if err := f.Sync(); err != nil {
					b.Fatal(err)
				}
				if err := f.Close(); err != nil {
					b.Fatal(err)
				}
				final := filepath.Join(dir, fmt.Sprintf("%d-%d", seed, i))
				if err := os.Rename(f.Name(), final); err != nil {
					b.Fatal(err)
				}
				if _, err := pool.Exec(ctx, "INSERT INTO bench_blobs (blob_key, size_bytes) VALUES ($1, $2)", final, len(body)); err != nil {
					b.Fatal(err)
				}
				if i > 0 {
					later += time.Since(start)
				}
			}
		}
		b.ReportMetric(float64(later.Microseconds())/1000/float64(b.N)/19, "ms/autosave")
	})
	users := 0 // a sub-benchmark's function runs more than once on the same database
	b.Run("chunked", func(b *testing.B) {
		store, err := blob.NewLocal(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		svc := solo.New(pool, store, slog.New(slog.NewTextHandler(io.Discard, nil)), nil,
			solo.Options{DefaultQuota: 1 << 40, MaxSnapshotBytes: 5 << 20})
		var stored, whole int64
		var later time.Duration
		seed := uint64(0)
		for b.Loop() {
			b.StopTimer()
			seed++
			users++
			user := fmt.Sprintf("u%d", users)
			if _, err := pool.Exec(ctx, "INSERT INTO users (id) VALUES ($1)", user); err != nil {
				b.Fatal(err)
			}
			sess, err := svc.SessionCreate(ctx, user, "scene")
			if err != nil {
				b.Fatal(err)
			}
			revs := autosaves(seed)
			b.StartTimer()
			var res solo.CreateResult
			for i, body := range revs {
				start := time.Now()
				res, err = svc.SnapshotCreate(ctx, solo.Upload{UserID: user, SessionID: sess.ID, ContentType: "application/json",
					ContentLength: int64(len(body)), Body: bytes.NewReader(body)})
				if err != nil {
					b.Fatal(err)
				}
				if i > 0 {
					later += time.Since(start)
				}
				whole += int64(len(body))
			}
			stored += res.Storage.Used
		}
		n := float64(b.N)
		b.ReportMetric(float64(stored)/n/(1<<20), "stored-MiB")
		b.ReportMetric(float64(whole)/n/(1<<20), "whole-MiB")
		b.ReportMetric(float64(later.Microseconds())/1000/n/19, "ms/autosave")
	})
}
