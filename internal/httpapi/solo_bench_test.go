package httpapi_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/m4sh/backend/internal/apptest"
)

// BenchmarkSnapshotCreate64KiB and BenchmarkSnapshotCreate1MiB measure snapshot uploads
// through the whole stack (HTTP, auth, validation, quota reservation, blob write with
// fsync, commit), several users at once, beside a baseline in the same run: the same bytes
// written to a temporary file, fsynced and renamed, plus one INSERT — no HTTP. The same
// uploads run against the local backend and against a real S3-compatible server.
func BenchmarkSnapshotCreate64KiB(b *testing.B) { benchmarkSnapshotCreate(b, 64<<10) }

func BenchmarkSnapshotCreate1MiB(b *testing.B) { benchmarkSnapshotCreate(b, 1<<20) }

const benchParallelism = 4 // goroutines per GOMAXPROCS

func benchmarkSnapshotCreate(b *testing.B, size int) {
	env := apptest.New(b, map[string]string{
		"SOLO_QUOTA_BYTES":        "1125899906842624",
		"SOLO_SNAPSHOT_MAX_BYTES": "2097152",
	})
	ctx := context.Background()
	if _, err := env.Pool.Exec(ctx, `CREATE TABLE bench_blobs (
		id uuid PRIMARY KEY, blob_key text NOT NULL, size_bytes bigint NOT NULL, created_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		b.Fatal(err)
	}
	var seq atomic.Int64
	// body returns size incompressible bytes of which every 4 KiB (the smallest chunk)
	// differ from every other call's: no chunk of one upload is found in another, so each
	// upload stores all its bytes, the worst case for chunked storage.
	body := func(buf []byte) []byte {
		n := uint64(seq.Add(1))
		for i := 0; i+8 <= len(buf); i += 4 << 10 {
			binary.BigEndian.PutUint64(buf[i:], n)
		}
		return buf
	}
	newBuf := func() []byte { return noise(uint64(seq.Add(1)), size) }

	b.Run("baseline", func(b *testing.B) {
		dir := b.TempDir()
		lat := newLatencies()
		b.SetBytes(int64(size))
		b.SetParallelism(benchParallelism)
		b.RunParallel(func(pb *testing.PB) {
			buf := newBuf()
			for pb.Next() {
				start := time.Now()
				id := uuid.New()
				final := filepath.Join(dir, id.String())
				f, err := os.CreateTemp(dir, ".tmp-*")
				if err != nil {
					b.Fatal(err)
				}
				if _, err := f.Write(body(buf)); err != nil {
					b.Fatal(err)
				}
				if err := f.Sync(); err != nil {
					b.Fatal(err)
				}
				if err := f.Close(); err != nil {
					b.Fatal(err)
				}
				if err := os.Rename(f.Name(), final); err != nil {
					b.Fatal(err)
				}
				if _, err := env.Pool.Exec(ctx, "INSERT INTO bench_blobs (id, blob_key, size_bytes) VALUES ($1, $2, $3)", id, final, size); err != nil {
					b.Fatal(err)
				}
				lat.add(time.Since(start))
			}
		})
		lat.report(b)
	})

	upload := func(env *apptest.Env) func(b *testing.B) {
		return func(b *testing.B) {
			lat := newLatencies()
			var next atomic.Int64
			b.SetBytes(int64(size))
			b.SetParallelism(benchParallelism)
			b.RunParallel(func(pb *testing.PB) {
				// One user and session per goroutine, as with many users saving at once.
				user := fmt.Sprintf("bench%d", next.Add(1))
				tok := env.Token(user)
				sid := soloEnv{env}.session(b, tok)
				url := env.Server.URL + "/api/v1/solo/sessions/" + sid + "/snapshot/"
				client := env.Server.Client()
				buf := newBuf()
				for pb.Next() {
					start := time.Now()
					req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body(buf)))
					req.Header.Set("Authorization", "Bearer "+tok)
					req.Header.Set("Content-Type", "application/octet-stream")
					resp, err := client.Do(req)
					if err != nil {
						b.Fatal(err)
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusCreated {
						b.Fatalf("status %d", resp.StatusCode)
					}
					lat.add(time.Since(start))
				}
			})
			lat.report(b)
		}
	}
	b.Run("local", upload(env))
	// The same uploads with the blobs in a real S3-compatible server on loopback (issue 10).
	s3vars := apptest.S3Env(b)
	s3vars["SOLO_QUOTA_BYTES"] = "1125899906842624"
	s3vars["SOLO_SNAPSHOT_MAX_BYTES"] = "2097152"
	b.Run("s3", upload(apptest.New(b, s3vars)))
}

// BenchmarkSnapshotLatest1MiB reads the newest revision of a session, 1 MiB of
// incompressible bytes, through the whole stack: stored as chunks (64 or so, each fetched,
// checked against its hash and streamed in order) beside the same bytes stored as one whole
// blob, the way every revision was stored before chunking (a row without a manifest), in
// the same run.
func BenchmarkSnapshotLatest1MiB(b *testing.B) {
	env := apptest.New(b, map[string]string{"SOLO_SNAPSHOT_MAX_BYTES": "2097152"})
	ctx := context.Background()
	tok := env.Token("reader")
	data := noise(77, 1<<20)
	chunked := soloEnv{env}.session(b, tok)
	req, _ := http.NewRequest(http.MethodPost, env.Server.URL+"/api/v1/solo/sessions/"+chunked+"/snapshot/", bytes.NewReader(data))
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := env.Server.Client().Do(req)
	if err != nil || resp.StatusCode != http.StatusCreated {
		b.Fatalf("upload: %v %v", resp, err)
	}
	resp.Body.Close()
	whole := soloEnv{env}.session(b, tok)
	key := "solo/" + whole + "/" + uuid.NewString()
	if err := env.App.Blobs.Put(ctx, key, bytes.NewReader(data), int64(len(data)), "application/octet-stream"); err != nil {
		b.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO solo_snapshots (id, session_id, user_id, status, revision, size_bytes, sha256, content_type, blob_key, committed_at)
		 VALUES (gen_random_uuid(), $1, 'reader', 'committed', 1, $2, $3, 'application/octet-stream', $4, now())`,
		`UPDATE solo_sessions SET last_revision = 1, newest_sha256 = $3 WHERE id = $1 AND $2::bigint > 0 AND $4::text <> ''`,
	} {
		if _, err := env.Pool.Exec(ctx, q, whole, len(data), sha(data), key); err != nil {
			b.Fatal(err)
		}
	}
	read := func(sid string) func(b *testing.B) {
		return func(b *testing.B) {
			lat := newLatencies()
			url := env.Server.URL + "/api/v1/solo/sessions/" + sid + "/snapshot/latest/"
			client := env.Server.Client()
			b.SetBytes(int64(len(data)))
			b.SetParallelism(benchParallelism)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					start := time.Now()
					req, _ := http.NewRequest(http.MethodGet, url, nil)
					req.Header.Set("Authorization", "Bearer "+tok)
					resp, err := client.Do(req)
					if err != nil {
						b.Fatal(err)
					}
					n, _ := io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK || n != int64(len(data)) {
						b.Fatalf("status %d, %d bytes", resp.StatusCode, n)
					}
					lat.add(time.Since(start))
				}
			})
			lat.report(b)
		}
	}
	b.Run("whole_blob", read(whole))
	b.Run("chunked", read(chunked))
}

// latencies collects per-operation durations to report the 99th percentile.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func newLatencies() *latencies { return &latencies{} }

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

func (l *latencies) report(b *testing.B) {
	if len(l.d) == 0 {
		return
	}
	slices.Sort(l.d)
	p99 := l.d[min(len(l.d)-1, len(l.d)*99/100)]
	b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
}
