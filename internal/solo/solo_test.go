package solo_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/m4sh/backend/internal/apperr"
	"github.com/m4sh/backend/internal/blob"
	"github.com/m4sh/backend/internal/chunkstore"
	"github.com/m4sh/backend/internal/dbtest"
	"github.com/m4sh/backend/internal/solo"
)

type testBundle struct {
	pool  *pgxpool.Pool
	blobs *blob.Local
	dir   string // the blob store's directory
	svc   *solo.Service
	user  string
	sess  solo.Session
}

var errCrash = errors.New("injected crash")

// setup returns a service on a fresh database and blob directory, with user "u1" and one
// session of theirs. crashAfter, when set, makes uploads stop dead after that step.
func setup(t *testing.T, crashAfter solo.Step) *testBundle {
	t.Helper()
	ctx := context.Background()
	pool := dbtest.New(t)
	dir := t.TempDir()
	blobs, err := blob.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	opts := solo.Options{DefaultQuota: 1 << 20, MaxSnapshotBytes: 1 << 16, UploadsInFlight: 64, DeletionGrace: -1, SweepMinAge: -1}
	if crashAfter != "" {
		opts.AfterStep = func(_ context.Context, st solo.Step) error {
			if st == crashAfter {
				return errCrash
			}
			return nil
		}
	}
	svc := solo.New(pool, blobs, slog.New(slog.NewTextHandler(io.Discard, nil)), nil, opts)
	if _, err := pool.Exec(ctx, "INSERT INTO users (id, name) VALUES ('u1', 'U1')"); err != nil {
		t.Fatal(err)
	}
	sess, err := svc.SessionCreate(ctx, "u1", "scene")
	if err != nil {
		t.Fatal(err)
	}
	return &testBundle{pool: pool, blobs: blobs, dir: dir, svc: svc, user: "u1", sess: sess}
}

func (b *testBundle) upload(body string, key string) (solo.CreateResult, error) {
	return b.svc.SnapshotCreate(context.Background(), solo.Upload{
		UserID: b.user, SessionID: b.sess.ID, ContentType: "text/plain",
		ContentLength: int64(len(body)), Body: strings.NewReader(body), IdempotencyKey: key,
	})
}

// checkInvariant asserts checkStore and that the user's used_bytes is wantUsed (-1: any),
// returning the committed revisions in order.
func (b *testBundle) checkInvariant(t *testing.T, wantUsed int64) []int32 {
	t.Helper()
	used := checkStore(t, b.pool, b.blobs, b.svc)[b.user]
	if wantUsed >= 0 && used != wantUsed {
		t.Errorf("used_bytes = %d, want %d", used, wantUsed)
	}
	rows, _ := b.pool.Query(context.Background(), "SELECT revision FROM solo_snapshots WHERE revision IS NOT NULL ORDER BY revision")
	revs, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		t.Fatal(err)
	}
	return revs
}

// storedSum is the sum of the stored_bytes of the user's revisions: used_bytes as long as
// nothing was deleted (each revision added exactly what it reports).
func (b *testBundle) storedSum(t *testing.T) int64 {
	t.Helper()
	var n int64
	if err := b.pool.QueryRow(context.Background(), "SELECT coalesce(sum(stored_bytes), 0) FROM solo_snapshots WHERE user_id = $1", b.user).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestCrashBetweenSteps stops an upload dead after each step, as a crash would, then runs the
// reaper: the invariant holds, no blob is orphaned, and the next upload gets the next
// revision number.
func TestCrashBetweenSteps(t *testing.T) {
	t.Parallel()
	tests := []struct {
		step      solo.Step
		want      solo.ReapSummary
		wantRevs  []int32 // after the reaper
		wantUsed  int64
		replay409 bool // an Idempotency-Key replay before the reaper runs finds it in flight
	}{
		// In flight, bytes reserved, nothing written: dropped, the reservation released.
		{solo.StepReserve, solo.ReapSummary{RolledBack: 1}, nil, 0, true},
		// The pack written but never recorded: dropped, and the pack its row names deleted.
		{solo.StepBlobWrite, solo.ReapSummary{RolledBack: 1}, nil, 0, true},
		// Committed, then the process died before answering: nothing to reap.
		{solo.StepCommit, solo.ReapSummary{}, []int32{1}, 5, false},
	}
	for _, tt := range tests {
		t.Run(string(tt.step), func(t *testing.T) {
			t.Parallel()
			b := setup(t, tt.step)
			if _, err := b.upload("crash", "k1"); !errors.Is(err, errCrash) {
				t.Fatalf("upload = %v, want the injected crash", err)
			}
			_, err := b.upload("crash", "k1")
			if got := apperr.Is(err, apperr.Conflict); got != tt.replay409 {
				t.Errorf("replay before reaping = %v, want conflict %v", err, tt.replay409)
			}
			// A young pending upload is left alone.
			sum, err := b.svc.ReapPending(context.Background(), time.Hour)
			if err != nil || sum != (solo.ReapSummary{}) {
				t.Errorf("reaping with a grace of 1h = %+v, %v; want nothing done", sum, err)
			}
			// Two reapers at once do the work once between them.
			var sums [2]solo.ReapSummary
			var errs [2]error
			var wg sync.WaitGroup
			for i := range 2 {
				wg.Go(func() { sums[i], errs[i] = b.svc.ReapPending(context.Background(), 0) })
			}
			wg.Wait()
			if err := errors.Join(errs[:]...); err != nil {
				t.Fatal(err)
			}
			sum = solo.ReapSummary{
				Finished: sums[0].Finished + sums[1].Finished, RolledBack: sums[0].RolledBack + sums[1].RolledBack,
				OrphanBlobs: sums[0].OrphanBlobs + sums[1].OrphanBlobs, Tombstones: sums[0].Tombstones + sums[1].Tombstones,
				Leftovers: sums[0].Leftovers + sums[1].Leftovers, FailedUpkeep: sums[0].FailedUpkeep + sums[1].FailedUpkeep,
			}
			if sum != tt.want {
				t.Errorf("reap summary = %+v, want %+v", sum, tt.want)
			}
			if revs := b.checkInvariant(t, tt.wantUsed); !slices.Equal(revs, tt.wantRevs) {
				t.Errorf("revisions = %v, want %v", revs, tt.wantRevs)
			}
			// Reaping again changes nothing.
			if sum, err := b.svc.ReapPending(context.Background(), 0); err != nil || sum != (solo.ReapSummary{}) {
				t.Errorf("second reap = %+v, %v; want nothing done", sum, err)
			}
		})
	}
}

func TestReapAfterCrashThenNextUpload(t *testing.T) {
	t.Parallel()
	b := setup(t, "")
	crashing := solo.New(b.pool, b.blobs, slog.New(slog.NewTextHandler(io.Discard, nil)), nil, solo.Options{
		DefaultQuota: 1 << 20, MaxSnapshotBytes: 1 << 16,
		AfterStep: func(_ context.Context, st solo.Step) error {
			if st == solo.StepReserve {
				return errCrash
			}
			return nil
		},
	})
	if _, err := b.upload("one", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := crashing.SnapshotCreate(context.Background(), solo.Upload{UserID: "u1", SessionID: b.sess.ID, ContentLength: -1, Body: strings.NewReader("lost")}); !errors.Is(err, errCrash) {
		t.Fatalf("crashing upload = %v", err)
	}
	res, err := b.upload("two", "")
	if err != nil || res.Snapshot.Revision != 2 || res.Storage.Used != 3+4+3 {
		t.Fatalf("upload beside a pending one = %+v, %v; want revision 2, used 10", res, err)
	}
	if _, err := b.svc.ReapPending(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	if revs := b.checkInvariant(t, 6); !slices.Equal(revs, []int32{1, 2}) {
		t.Errorf("revisions = %v, want [1 2]", revs)
	}
}

// TestReapSweepsOrphanBlobs: blobs without a row — a whole blob whose rollback died between
// deleting the row and the blob, a chunk or a pack an upload wrote under an id it never
// recorded — are
// deleted once older than the grace period, never before.
func TestReapSweepsOrphanBlobs(t *testing.T) {
	t.Parallel()
	b := setup(t, "")
	ctx := context.Background()
	if _, err := b.upload("kept", ""); err != nil {
		t.Fatal(err)
	}
	orphan := solo.BlobKey(b.sess.ID, uuid.New())
	if err := b.blobs.Put(ctx, orphan, bytes.NewReader([]byte("orphan")), 6, "application/octet-stream"); err != nil {
		t.Fatal(err)
	}
	chunk := chunkstore.Key(b.user, chunkstore.Hash{1}, 1<<40)
	if err := b.blobs.Put(ctx, chunk, bytes.NewReader([]byte("chunk")), 5, "application/octet-stream"); err != nil {
		t.Fatal(err)
	}
	pack := chunkstore.PackKey(b.user, 1<<40)
	if err := b.blobs.Put(ctx, pack, bytes.NewReader([]byte("pack")), 4, "application/octet-stream"); err != nil {
		t.Fatal(err)
	}
	if sum, err := b.svc.ReapPending(ctx, time.Hour); err != nil || sum.OrphanBlobs != 0 {
		t.Errorf("reap with a grace of 1h = %+v, %v; want the young orphans kept", sum, err)
	}
	if sum, err := b.svc.ReapPending(ctx, 0); err != nil || sum != (solo.ReapSummary{OrphanBlobs: 3}) {
		t.Errorf("reap = %+v, %v; want three orphans deleted", sum, err)
	}
	b.checkInvariant(t, 4)
}

// TestReapSweepsPartialWrites: a temporary file a crash left in the local store (a Put that
// never linked it into place) is removed once older than the grace period, never before.
func TestReapSweepsPartialWrites(t *testing.T) {
	t.Parallel()
	b := setup(t, "")
	ctx := context.Background()
	if _, err := b.upload("kept", ""); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(b.dir, "chunks", "partial")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	partial := func(name string, age time.Duration) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("half a snap"), 0o600); err != nil {
			t.Fatal(err)
		}
		mod := time.Now().Add(-age)
		if err := os.Chtimes(p, mod, mod); err != nil {
			t.Fatal(err)
		}
		return p
	}
	old := partial(".tmp-crashed", 2*time.Hour)
	young := partial(".tmp-writing", 0)
	if sum, err := b.svc.ReapPending(ctx, time.Hour); err != nil || sum != (solo.ReapSummary{Leftovers: 1}) {
		t.Errorf("reap = %+v, %v; want one leftover removed", sum, err)
	}
	if _, err := os.Stat(old); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the crashed write's file is still there (%v)", err)
	}
	if _, err := os.Stat(young); err != nil {
		t.Errorf("a file younger than the grace period was removed: %v", err)
	}
	if err := os.Remove(young); err != nil {
		t.Fatal(err)
	}
	b.checkInvariant(t, 4)
}

// seedPending records a whole-blob upload left pending by a crash of the code before
// chunking (its row and reservation), with blob holding body.
func (b *testBundle) seedPending(t *testing.T, sha, body string) {
	t.Helper()
	ctx := context.Background()
	id := uuid.New()
	key := solo.BlobKey(b.sess.ID, id)
	if err := b.blobs.Put(ctx, key, strings.NewReader(body), int64(len(body)), "text/plain"); err != nil {
		t.Fatal(err)
	}
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO solo_user_storage (user_id, quota_bytes) VALUES ($1, 1048576) ON CONFLICT DO NOTHING`, []any{b.user}},
		{`UPDATE solo_user_storage SET used_bytes = used_bytes + $2 WHERE user_id = $1`, []any{b.user, len(body)}},
		{`INSERT INTO solo_snapshots (id, session_id, user_id, status, size_bytes, sha256, content_type, blob_key, created_at)
		 VALUES ($3, $4, $1, 'pending', $2, $5, 'text/plain', $6, now() - interval '1 hour')`, []any{b.user, len(body), id, b.sess.ID, sha, key}},
	} {
		if _, err := b.pool.Exec(ctx, q.sql, q.args...); err != nil {
			t.Fatalf("%s: %v", q.sql, err)
		}
	}
}

// TestReapLegacyPending: a whole-blob upload pending from before chunking is committed when
// its blob is complete and rolled back when its blob does not hash to its SHA-256; the
// committed one reads back as a whole blob, and GC frees it as one.
func TestReapLegacyPending(t *testing.T) {
	t.Parallel()
	b := setup(t, "")
	ctx := context.Background()
	sum := sha256.Sum256([]byte("right"))
	b.seedPending(t, hex.EncodeToString(sum[:]), "wrong")
	if got, err := b.svc.ReapPending(ctx, 0); err != nil || got != (solo.ReapSummary{RolledBack: 1}) {
		t.Errorf("reap = %+v, %v; want one rollback", got, err)
	}
	b.checkInvariant(t, 0)
	b.seedPending(t, hex.EncodeToString(sum[:]), "right")
	if got, err := b.svc.ReapPending(ctx, 0); err != nil || got != (solo.ReapSummary{Finished: 1}) {
		t.Errorf("reap = %+v, %v; want one finished", got, err)
	}
	if revs := b.checkInvariant(t, 5); !slices.Equal(revs, []int32{1}) {
		t.Errorf("revisions = %v, want [1]", revs)
	}
	// A chunked revision beside it, then GC keeping one: the whole blob goes, its size back.
	if _, err := b.upload("chunked", ""); err != nil {
		t.Fatal(err)
	}
	client := startedRiverClient(t, b.pool, b.svc, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if got, err := b.svc.Cleanup(ctx, client, 1, nil); err != nil || got.RevisionsDeleted != 1 || got.BytesFreed != 5 {
		t.Errorf("cleanup = %+v, %v; want revision 1 deleted, 5 bytes freed", got, err)
	}
	if err := solo.AwaitBlobDeletes(ctx, client, 20*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if revs := b.checkInvariant(t, 7); !slices.Equal(revs, []int32{2}) {
		t.Errorf("revisions = %v, want [2]", revs)
	}
}

func TestQuotaSetBelowUsage(t *testing.T) {
	t.Parallel()
	b := setup(t, "")
	ctx := context.Background()
	if _, err := b.upload("0123456789", ""); err != nil {
		t.Fatal(err)
	}
	st, err := b.svc.QuotaSet(ctx, "u1", 4)
	if err != nil || st != (solo.Storage{Used: 10, Quota: 4}) || st.Remaining() != 0 {
		t.Fatalf("QuotaSet below usage = %+v, %v; want used 10, quota 4", st, err)
	}
	_, err = b.upload("x", "")
	e, ok := apperr.As(err)
	if !ok || e.Kind != apperr.QuotaExceeded || e.Extra["used"] != int64(10) || e.Extra["quota"] != int64(4) || e.Extra["remaining"] != int64(0) {
		t.Errorf("upload over a lowered quota = %v (%+v), want quota_exceeded used 10, quota 4, remaining 0", err, e)
	}
	// A user the service has never seen gets a row (and a quota) anyway.
	if st, err := b.svc.QuotaSet(ctx, "stranger", 99); err != nil || st != (solo.Storage{Quota: 99}) {
		t.Errorf("QuotaSet for a new user = %+v, %v", st, err)
	}
	if _, err := b.svc.QuotaSet(ctx, "u1", -1); !apperr.Is(err, apperr.Invalid) {
		t.Errorf("negative quota = %v, want validation_error", err)
	}
	b.checkInvariant(t, 10)
}

// failingStore refuses every Put, as a full disk would.
type failingStore struct{ blob.Store }

func (failingStore) Put(context.Context, string, io.Reader, int64, string) error {
	return errors.New("disk full")
}

func TestBlobWriteFailureChargesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t, "")
	svc := solo.New(b.pool, failingStore{b.blobs}, slog.New(slog.NewTextHandler(io.Discard, nil)), nil, solo.Options{DefaultQuota: 1 << 20, MaxSnapshotBytes: 1 << 16, DeletionGrace: -1, SweepMinAge: -1})
	_, err := svc.SnapshotCreate(context.Background(), solo.Upload{
		UserID: "u1", SessionID: b.sess.ID, ContentLength: 4, Body: strings.NewReader("data"), IdempotencyKey: "k",
	})
	if !apperr.Is(err, apperr.Unavailable) {
		t.Fatalf("upload with a failing store = %v, want unavailable", err)
	}
	b.checkInvariant(t, 0)
	// The key was released with the rolled-back upload: a retry stores it.
	res, err := b.upload("data", "k")
	if err != nil || !res.Created || res.Snapshot.Revision != 1 {
		t.Errorf("retry = %+v, %v; want revision 1 created", res, err)
	}
	b.checkInvariant(t, 4)
}
