package solo_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"

	"github.com/m4sh/backend/internal/blob"
	"github.com/m4sh/backend/internal/dbtest"
	"github.com/m4sh/backend/internal/solo"
)

type bundle struct {
	pool   *pgxpool.Pool
	store  *blob.Local
	svc    *solo.Service
	client *river.Client[pgx.Tx]
}

// setup gives a fresh database, a local blob store and a started River client working the
// retention jobs, with batches of 4 so that multi-batch paths run.
func setupGC(t *testing.T, keepLast int) bundle {
	t.Helper()
	pool := dbtest.New(t)
	store, err := blob.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc := solo.New(pool, store, log, nil, solo.Options{KeepLast: keepLast, GCBatch: 4, DeletionGrace: -1, SweepMinAge: -1})
	return bundle{pool: pool, store: store, svc: svc, client: startedRiverClient(t, pool, svc, log)}
}

// startedRiverClient is riverClient, started, and stopped when the test ends.
func startedRiverClient(t *testing.T, pool *pgxpool.Pool, svc *solo.Service, log *slog.Logger) *river.Client[pgx.Tx] {
	t.Helper()
	client := riverClient(t, pool, svc, log)
	ctx, cancel := context.WithCancel(context.Background())
	if err := client.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, c := context.WithTimeout(context.Background(), 10*time.Second)
		defer c()
		_ = client.Stop(sctx)
		cancel()
	})
	return client
}

// riverClient is a River client working svc's jobs (no periodic schedule: tests enqueue),
// polling often so that tests finish fast.
func riverClient(t testing.TB, pool *pgxpool.Pool, svc *solo.Service, log *slog.Logger) *river.Client[pgx.Tx] {
	t.Helper()
	workers := river.NewWorkers()
	for _, add := range svc.Work().Workers {
		if err := add(workers); err != nil {
			t.Fatal(err)
		}
	}
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		Logger: log, Workers: workers, Queues: map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 4}},
		FetchCooldown: 20 * time.Millisecond, FetchPollInterval: 50 * time.Millisecond, TestOnly: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	return client
}

type seeded struct {
	session uuid.UUID
	sizes   map[int]int64 // revision → size
	keys    map[int]string
}

// seedSession stores a session of user with revs committed revisions (revision r is r*10+1
// bytes) and accounts them in used_bytes.
func (b bundle) seedSession(t *testing.T, user string, revs int) seeded {
	t.Helper()
	ctx := context.Background()
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := b.pool.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	exec(`INSERT INTO users (id) VALUES ($1) ON CONFLICT DO NOTHING`, user)
	exec(`INSERT INTO solo_user_storage (user_id, used_bytes, quota_bytes) VALUES ($1, 0, 1000000000) ON CONFLICT DO NOTHING`, user)
	s := seeded{session: uuid.New(), sizes: map[int]int64{}, keys: map[int]string{}}
	exec(`INSERT INTO solo_sessions (id, user_id, last_revision) VALUES ($1, $2, $3)`, s.session, user, revs)
	for r := 1; r <= revs; r++ {
		id := uuid.New()
		size := int64(r*10 + 1)
		key := fmt.Sprintf("solo/%s/%s", s.session, id)
		if err := b.store.Put(ctx, key, bytes.NewReader(make([]byte, size)), size, "application/octet-stream"); err != nil {
			t.Fatal(err)
		}
		exec(`INSERT INTO solo_snapshots (id, session_id, user_id, status, revision, size_bytes, sha256, content_type, blob_key, committed_at)
			VALUES ($1, $2, $3, 'committed', $4, $5, repeat('a', 64), 'application/json', $6, now())`, id, s.session, user, r, size, key)
		exec(`UPDATE solo_user_storage SET used_bytes = used_bytes + $2 WHERE user_id = $1`, user, size)
		s.sizes[r], s.keys[r] = size, key
	}
	return s
}

func (b bundle) revisions(t *testing.T, session uuid.UUID) []int {
	t.Helper()
	rows, _ := b.pool.Query(context.Background(), `SELECT revision FROM solo_snapshots WHERE session_id = $1 ORDER BY revision`, session)
	revs, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		t.Fatal(err)
	}
	return revs
}

// checkUsage asserts the invariant: used_bytes == the sum of the user's stored sizes, and
// that equals want.
func (b bundle) checkUsage(t *testing.T, user string, want int64) {
	t.Helper()
	var used, actual int64
	if err := b.pool.QueryRow(context.Background(), `SELECT used_bytes, (SELECT coalesce(sum(size_bytes), 0) FROM solo_snapshots WHERE user_id = $1)
		FROM solo_user_storage WHERE user_id = $1`, user).Scan(&used, &actual); err != nil {
		t.Fatal(err)
	}
	if used != actual || used != want {
		t.Errorf("user %s: used_bytes %d, sum of rows %d, want both %d", user, used, actual, want)
	}
}

// run inserts a job and waits for it and every blob deletion to finish.
func (b bundle) run(t testing.TB, args river.JobArgs) *rivertype.JobRow {
	t.Helper()
	ctx := context.Background()
	res, err := b.client.Insert(ctx, args, nil)
	if err != nil {
		t.Fatal(err)
	}
	return b.wait(t, res.Job.ID)
}

func (b bundle) wait(t testing.TB, id int64) *rivertype.JobRow {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	job, err := solo.Await(ctx, b.client, id, 20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	return job
}

func (b bundle) drainBlobDeletes(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := solo.AwaitBlobDeletes(ctx, b.client, 20*time.Millisecond); err != nil {
		t.Fatal(err)
	}
}

func summaryOf(t testing.TB, job *rivertype.JobRow) solo.CleanupSummary {
	t.Helper()
	var s solo.CleanupSummary
	if err := json.Unmarshal(job.Output(), &s); err != nil {
		t.Fatalf("job output %s: %v", job.Output(), err)
	}
	return s
}

func (b bundle) blobExists(t *testing.T, key string) bool {
	t.Helper()
	rc, _, err := b.store.Get(context.Background(), key)
	if errors.Is(err, blob.ErrNotFound) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	rc.Close()
	return true
}

func ptr[T any](v T) *T { return &v }

func TestCleanupKeepsNewestN(t *testing.T) {
	t.Parallel()
	const n = 3
	b := setupGC(t, n)
	counts := []int{0, 1, n, n + 1, 5 * n}
	var sessions []seeded
	for i, c := range counts {
		sessions = append(sessions, b.seedSession(t, fmt.Sprintf("u%d", i), c))
	}
	sum := summaryOf(t, b.run(t, solo.CleanupArgs{}))
	var wantDeleted int
	var wantFreed int64
	for i, c := range counts {
		s := sessions[i]
		var want []int
		var remaining int64
		for r := max(1, c-n+1); r <= c; r++ {
			want = append(want, r)
			remaining += s.sizes[r]
		}
		if got := b.revisions(t, s.session); !slices.Equal(got, want) {
			t.Errorf("%d revisions: kept %v, want %v", c, got, want)
		}
		b.checkUsage(t, fmt.Sprintf("u%d", i), remaining)
		for r := 1; r <= c; r++ {
			kept := r > c-n
			if got := b.blobExists(t, s.keys[r]); got != kept {
				t.Errorf("%d revisions: blob of revision %d exists = %v, want %v", c, r, got, kept)
			}
			if !kept {
				wantDeleted++
				wantFreed += s.sizes[r]
			}
		}
	}
	if want := (solo.CleanupSummary{Sessions: 2, RevisionsDeleted: wantDeleted, BytesFreed: wantFreed}); sum != want {
		t.Errorf("summary = %+v, want %+v", sum, want)
	}
	// A second run finds nothing.
	if sum := summaryOf(t, b.run(t, solo.CleanupArgs{})); sum.RevisionsDeleted != 0 || sum.BytesFreed != 0 {
		t.Errorf("second run = %+v, want nothing deleted", sum)
	}
}

func TestCleanupArgs(t *testing.T) {
	t.Parallel()
	b := setupGC(t, 20)
	one := b.seedSession(t, "alice", 10)
	two := b.seedSession(t, "alice", 10)
	// keep_last per run, scoped to one session.
	sum := summaryOf(t, b.run(t, solo.CleanupArgs{KeepLast: ptr(2), SessionID: &one.session}))
	if sum.RevisionsDeleted != 8 || sum.Sessions != 1 {
		t.Errorf("scoped run = %+v, want 8 revisions of 1 session", sum)
	}
	if got := b.revisions(t, one.session); !slices.Equal(got, []int{9, 10}) {
		t.Errorf("scoped session kept %v, want [9 10]", got)
	}
	if got := b.revisions(t, two.session); len(got) != 10 {
		t.Errorf("other session kept %d revisions, want all 10", len(got))
	}
	b.checkUsage(t, "alice", one.sizes[9]+one.sizes[10]+func() (s int64) {
		for _, v := range two.sizes {
			s += v
		}
		return s
	}())
	// keep_last below 1 is refused at insert.
	for _, k := range []int{0, -1} {
		if _, err := solo.EnqueueCleanup(context.Background(), b.client, solo.CleanupArgs{KeepLast: ptr(k)}); err == nil {
			t.Errorf("Enqueue(keep_last=%d) succeeded, want an error", k)
		}
	}
}

// TestConcurrentCleanups runs two cleanups of the same sessions at once (different
// arguments, so River's uniqueness does not merge them): nothing is decremented twice.
func TestConcurrentCleanups(t *testing.T) {
	t.Parallel()
	b := setupGC(t, 2)
	var seeds []seeded
	for i := range 6 {
		seeds = append(seeds, b.seedSession(t, "bob", 9+i))
	}
	var wg sync.WaitGroup
	for _, args := range []solo.CleanupArgs{{}, {KeepLast: ptr(2)}} {
		wg.Go(func() { b.run(t, args) })
	}
	wg.Wait()
	var want int64
	for _, s := range seeds {
		last := len(s.sizes)
		want += s.sizes[last] + s.sizes[last-1]
		if got := b.revisions(t, s.session); !slices.Equal(got, []int{last - 1, last}) {
			t.Errorf("kept %v, want [%d %d]", got, last-1, last)
		}
	}
	b.checkUsage(t, "bob", want)
}

// TestCleanupDuringUploads keeps committing new revisions while cleanups run: the newest two
// always survive and accounting stays exact.
func TestCleanupDuringUploads(t *testing.T) {
	t.Parallel()
	b := setupGC(t, 2)
	s := b.seedSession(t, "carol", 6)
	ctx := context.Background()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for r := 7; r <= 30; r++ {
			// What an upload's commit does: lock the session, take the next revision, account.
			err := pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, `UPDATE solo_sessions SET last_revision = $2 WHERE id = $1`, s.session, r); err != nil {
					return err
				}
				id := uuid.New()
				key := fmt.Sprintf("solo/%s/%s", s.session, id)
				if err := b.store.Put(ctx, key, bytes.NewReader(make([]byte, 5)), 5, "application/octet-stream"); err != nil {
					return err
				}
				if _, err := tx.Exec(ctx, `INSERT INTO solo_snapshots (id, session_id, user_id, status, revision, size_bytes, sha256, content_type, blob_key, committed_at)
					VALUES ($1, $2, 'carol', 'committed', $3, 5, repeat('b', 64), 'text/plain', $4, now())`, id, s.session, r, key); err != nil {
					return err
				}
				_, err := tx.Exec(ctx, `UPDATE solo_user_storage SET used_bytes = used_bytes + 5 WHERE user_id = 'carol'`)
				return err
			})
			if err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for i := 0; ; i++ {
		select {
		case <-done:
		default:
			b.run(t, solo.CleanupArgs{KeepLast: ptr(2 + i%2)})
			continue
		}
		break
	}
	b.run(t, solo.CleanupArgs{})
	if got := b.revisions(t, s.session); !slices.Equal(got, []int{29, 30}) {
		t.Errorf("kept %v, want [29 30]", got)
	}
	b.checkUsage(t, "carol", 10)
}

// TestCrashAfterCommitBeforeBlobDelete: a cleanup whose process died after its transaction
// committed leaves queued blob deletions, which any worker finishes later; nothing is lost
// or counted twice, and a second cleanup has nothing to do.
func TestCrashAfterCommitBeforeBlobDelete(t *testing.T) {
	t.Parallel()
	b := setupGC(t, 1)
	s := b.seedSession(t, "dan", 5)
	// Run the pass with a River client that only inserts (no workers), as a node that dies
	// before working its outbox would.
	inserter, err := river.NewClient(riverpgxv5.New(b.pool), &river.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	sum, err := b.svc.Cleanup(context.Background(), inserter, 1, nil)
	if err != nil || sum.RevisionsDeleted != 4 {
		t.Fatalf("Cleanup = %+v, %v; want 4 deleted", sum, err)
	}
	b.checkUsage(t, "dan", s.sizes[5])
	b.drainBlobDeletes(t)
	for r := 1; r <= 5; r++ {
		if got := b.blobExists(t, s.keys[r]); got != (r == 5) {
			t.Errorf("blob of revision %d exists = %v", r, got)
		}
	}
	if sum := summaryOf(t, b.run(t, solo.CleanupArgs{})); sum.RevisionsDeleted != 0 {
		t.Errorf("re-run deleted %d, want 0", sum.RevisionsDeleted)
	}
	b.checkUsage(t, "dan", s.sizes[5])
}

func TestReconcileRepairsDrift(t *testing.T) {
	t.Parallel()
	b := setupGC(t, 20)
	a := b.seedSession(t, "erin", 3)
	b.seedSession(t, "frank", 2)
	if _, err := b.pool.Exec(context.Background(), `UPDATE solo_user_storage SET used_bytes = used_bytes + 1000 WHERE user_id = 'erin'`); err != nil {
		t.Fatal(err)
	}
	job := b.run(t, solo.ReconcileArgs{})
	var sum solo.ReconcileSummary
	if err := json.Unmarshal(job.Output(), &sum); err != nil {
		t.Fatal(err)
	}
	if sum != (solo.ReconcileSummary{Users: 2, Repaired: 1, DriftBytes: 1000}) {
		t.Errorf("reconcile = %+v, want 2 users, 1 repaired, 1000 bytes", sum)
	}
	b.checkUsage(t, "erin", a.sizes[1]+a.sizes[2]+a.sizes[3])
}

// dyingInserter lets the first batch of a cleanup commit, then dies in the middle of the
// second — as a process killed half-way through a run.
type dyingInserter struct {
	inner solo.TxInserter
	calls int
}

func (d *dyingInserter) InsertManyTx(ctx context.Context, tx pgx.Tx, params []river.InsertManyParams) ([]*rivertype.JobInsertResult, error) {
	d.calls++
	if d.calls == 2 {
		return nil, errors.New("killed")
	}
	return d.inner.InsertManyTx(ctx, tx, params)
}

// TestCleanupKilledHalfWay: a run dies after one committed batch; the invariant holds at
// that point, and the next run finishes the job exactly.
func TestCleanupKilledHalfWay(t *testing.T) {
	t.Parallel()
	b := setupGC(t, 2) // batches of 4
	s := b.seedSession(t, "hank", 12)
	_, err := b.svc.Cleanup(context.Background(), &dyingInserter{inner: b.client}, 2, nil)
	if err == nil {
		t.Fatal("the dying run reported success")
	}
	b.drainBlobDeletes(t)
	if got := b.revisions(t, s.session); !slices.Equal(got, []int{5, 6, 7, 8, 9, 10, 11, 12}) {
		t.Errorf("after a run killed in its second batch: revisions %v, want 5..12 (first batch of 4 committed)", got)
	}
	var mid int64
	for r := 5; r <= 12; r++ {
		mid += s.sizes[r]
	}
	b.checkUsage(t, "hank", mid)
	sum := summaryOf(t, b.run(t, solo.CleanupArgs{}))
	if sum.RevisionsDeleted != 6 {
		t.Errorf("re-run deleted %d, want the remaining 6", sum.RevisionsDeleted)
	}
	b.checkUsage(t, "hank", s.sizes[11]+s.sizes[12])
	for r := 1; r <= 12; r++ {
		if got := b.blobExists(t, s.keys[r]); got != (r > 10) {
			t.Errorf("blob of revision %d exists = %v", r, got)
		}
	}
}
