package solo_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/m4sh/backend/internal/apperr"
	"github.com/m4sh/backend/internal/blob"
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
	opts := solo.Options{DefaultQuota: 1 << 20, MaxSnapshotBytes: 1 << 16, UploadsInFlight: 64}
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

// checkInvariant asserts the quota invariant and that blobs and rows match one to one:
// used_bytes == sum of the user's revision sizes, nothing pending, every row has its blob
// and every blob its row. It returns the committed revisions in order.
func (b *testBundle) checkInvariant(t *testing.T, wantUsed int64) []int32 {
	t.Helper()
	ctx := context.Background()
	var used, sum, pending int64
	if err := b.pool.QueryRow(ctx, `
		SELECT COALESCE((SELECT used_bytes FROM solo_user_storage WHERE user_id = $1), 0),
		       COALESCE((SELECT SUM(size_bytes) FROM solo_snapshots WHERE user_id = $1), 0),
		       (SELECT count(*) FROM solo_snapshots WHERE status = 'pending')`, b.user).Scan(&used, &sum, &pending); err != nil {
		t.Fatal(err)
	}
	if used != sum || used != wantUsed || pending != 0 {
		t.Errorf("used_bytes = %d, sum of sizes = %d, pending = %d; want %d, %d, 0", used, sum, pending, wantUsed, wantUsed)
	}
	rows, err := b.pool.Query(ctx, "SELECT blob_key, revision FROM solo_snapshots ORDER BY revision")
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	var revs []int32
	for rows.Next() {
		var k string
		var r int32
		if err := rows.Scan(&k, &r); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
		revs = append(revs, r)
	}
	var stored []string
	for obj, err := range b.blobs.List(ctx, "", time.Time{}) {
		if err != nil {
			t.Fatal(err)
		}
		stored = append(stored, obj.Key)
	}
	slices.Sort(keys)
	slices.Sort(stored)
	if !slices.Equal(keys, stored) {
		t.Errorf("blobs %v do not match rows %v", stored, keys)
	}
	return revs
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
		// Reserved, nothing written: rolled back, bytes released.
		{solo.StepReserve, solo.ReapSummary{RolledBack: 1}, nil, 0, true},
		// Blob complete but never committed: the reaper finishes the upload.
		{solo.StepBlobWrite, solo.ReapSummary{Finished: 1}, []int32{1}, 5, true},
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
			sum, err = b.svc.ReapPending(context.Background(), 0)
			if err != nil {
				t.Fatal(err)
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

// TestReapSweepsOrphanBlobs: a blob without a row (its rollback died between deleting the row
// and deleting the blob) is deleted once older than the grace period, never before.
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
	if sum, err := b.svc.ReapPending(ctx, time.Hour); err != nil || sum.OrphanBlobs != 0 {
		t.Errorf("reap with a grace of 1h = %+v, %v; want the young orphan kept", sum, err)
	}
	if sum, err := b.svc.ReapPending(ctx, 0); err != nil || sum != (solo.ReapSummary{OrphanBlobs: 1}) {
		t.Errorf("reap = %+v, %v; want one orphan deleted", sum, err)
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
	dir := filepath.Join(b.dir, "solo", b.sess.ID.String())
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

// TestReapRollsBackCorruptBlob: a pending upload whose blob does not hash to its recorded
// SHA-256 is rolled back, never committed.
func TestReapRollsBackCorruptBlob(t *testing.T) {
	t.Parallel()
	b := setup(t, solo.StepReserve)
	ctx := context.Background()
	if _, err := b.upload("right", ""); !errors.Is(err, errCrash) {
		t.Fatal(err)
	}
	var key string
	if err := b.pool.QueryRow(ctx, "SELECT blob_key FROM solo_snapshots").Scan(&key); err != nil {
		t.Fatal(err)
	}
	if err := b.blobs.Put(ctx, key, bytes.NewReader([]byte("wrong")), 5, "application/octet-stream"); err != nil {
		t.Fatal(err)
	}
	if sum, err := b.svc.ReapPending(ctx, 0); err != nil || sum != (solo.ReapSummary{RolledBack: 1}) {
		t.Errorf("reap = %+v, %v; want one rollback", sum, err)
	}
	b.checkInvariant(t, 0)
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
	svc := solo.New(b.pool, failingStore{b.blobs}, slog.New(slog.NewTextHandler(io.Discard, nil)), nil, solo.Options{DefaultQuota: 1 << 20, MaxSnapshotBytes: 1 << 16})
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
