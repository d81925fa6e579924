package solo_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/m4sh/backend/internal/apperr"
	"github.com/m4sh/backend/internal/blob"
	"github.com/m4sh/backend/internal/chunkstore"
	"github.com/m4sh/backend/internal/chunkstore/scenetest"
	"github.com/m4sh/backend/internal/dbtest"
	"github.com/m4sh/backend/internal/solo"
)

// TestSweepSparesYoungChunks: the orphan sweep never deletes a chunk blob younger than the
// upload finish timeout plus a margin, whatever grace the reaper is given — an upload still
// inside its finish timeout may be about to record it.
func TestSweepSparesYoungChunks(t *testing.T) {
	t.Parallel()
	pool := dbtest.New(t)
	store, err := blob.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	svc := solo.New(pool, store, slog.New(slog.NewTextHandler(io.Discard, nil)), nil, solo.Options{DefaultQuota: 1 << 20, MaxSnapshotBytes: 1 << 16})
	ctx := context.Background()
	key := chunkstore.Key("u1", chunkstore.Hash{1}, 1<<40)
	if err := store.Put(ctx, key, bytes.NewReader([]byte("chunk")), 5, "application/octet-stream"); err != nil {
		t.Fatal(err)
	}
	if sum, err := svc.ReapPending(ctx, 0); err != nil || sum.OrphanBlobs != 0 {
		t.Fatalf("reap with grace 0 = %+v, %v; want the young chunk kept", sum, err)
	}
	if _, _, err := store.Get(ctx, key); err != nil {
		t.Fatalf("young chunk gone: %v", err)
	}
}

// TestReadSurvivesGC: a read that got a revision's row before GC deleted the revision still
// reads every byte: GC schedules the deletion of freed chunks DeletionGrace later.
func TestReadSurvivesGC(t *testing.T) {
	t.Parallel()
	pool := dbtest.New(t)
	store, err := blob.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc := solo.New(pool, store, log, nil, solo.Options{DefaultQuota: 100 << 20, MaxSnapshotBytes: 5 << 20, KeepLast: 1})
	b := &chunkBundle{pool: pool, store: store, svc: svc, log: log}
	ctx := context.Background()
	if _, err := pool.Exec(ctx, "INSERT INTO users (id, name) VALUES ('u1', 'U1')"); err != nil {
		t.Fatal(err)
	}
	sess := b.session(t, "u1")
	old := scenetest.Autosaves(7, 1)[0]
	b.upload(t, svc, "u1", sess, old)
	b.upload(t, svc, "u1", sess, noiseBody(t)) // shares nothing with the first
	snap, err := svc.SnapshotGet(ctx, "u1", sess.ID, 1)
	if err != nil {
		t.Fatal(err)
	}
	client := startedRiverClient(t, pool, svc, log)
	if _, err := svc.Cleanup(ctx, client, 1, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.SnapshotGet(ctx, "u1", sess.ID, 1); !apperr.Is(err, apperr.NotFound) {
		t.Fatalf("revision 1 after GC: %v", err)
	}
	var scheduled time.Time
	if err := pool.QueryRow(ctx, `SELECT min(scheduled_at) FROM river_job WHERE kind = $1`, solo.KindDeleteBlob).Scan(&scheduled); err != nil {
		t.Fatal(err)
	}
	if time.Until(scheduled) < solo.DefaultDeletionGrace/2 {
		t.Errorf("blob deletion scheduled at %v, want about %v from now", scheduled, solo.DefaultDeletionGrace)
	}
	time.Sleep(200 * time.Millisecond) // the River client would have run an unscheduled job by now
	rc, err := svc.SnapshotOpen(ctx, snap)
	if err != nil {
		t.Fatalf("reading a revision GC deleted after its row was read: %v", err)
	}
	got, err := io.ReadAll(rc)
	if err != nil || !bytes.Equal(got, old) {
		t.Fatalf("read %d bytes (%v), want the %d of revision 1", len(got), err, len(old))
	}
}

// TestMissingChunkIsDataLost: a revision whose chunk is missing from the store is answered
// snapshot_data_lost (503), not not_found: the revision exists, its bytes are a server fault.
func TestMissingChunkIsDataLost(t *testing.T) {
	t.Parallel()
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			b := setupChunks(t, be.open(t))
			ctx := context.Background()
			sess := b.session(t, "u1")
			res := b.upload(t, b.svc, "u1", sess, scenetest.Autosaves(3, 1)[0])
			var keys []string
			for obj, err := range b.store.List(ctx, chunkstore.PackPrefix, time.Time{}) {
				if err != nil {
					t.Fatal(err)
				}
				keys = append(keys, obj.Key)
			}
			if len(keys) == 0 {
				t.Fatal("no pack stored")
			}
			if err := b.store.Delete(ctx, keys[len(keys)/2]); err != nil {
				t.Fatal(err)
			}
			_, err := b.svc.SnapshotOpen(ctx, res.Snapshot)
			if !apperr.Is(err, apperr.SnapshotDataLost) {
				t.Fatalf("reading a revision with a chunk missing = %v, want %s", err, apperr.SnapshotDataLost)
			}
		})
	}
}

// TestIdenticalUploadsTightQuota: two identical uploads at once, with room for one copy of
// their chunks, both succeed: the second, refused at first, waits for the first and finds
// the chunks live.
func TestIdenticalUploadsTightQuota(t *testing.T) {
	t.Parallel()
	pool := dbtest.New(t)
	store, err := blob.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	body := noiseBody(t)
	first := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	svc := solo.New(pool, store, log, nil, solo.Options{DefaultQuota: int64(len(body)) + int64(len(body))/2, MaxSnapshotBytes: 5 << 20,
		DeletionGrace: -1, SweepMinAge: -1,
		AfterStep: func(_ context.Context, st solo.Step) error {
			if st == solo.StepBlobWrite {
				once.Do(func() { close(first); <-release })
			}
			return nil
		}})
	b := &chunkBundle{pool: pool, store: store, svc: svc, log: log}
	if _, err := pool.Exec(ctx, "INSERT INTO users (id, name) VALUES ('u1', 'U1')"); err != nil {
		t.Fatal(err)
	}
	s1, s2 := b.session(t, "u1"), b.session(t, "u1")
	done := make(chan error, 1)
	go func() {
		_, err := svc.SnapshotCreate(ctx, solo.Upload{UserID: "u1", SessionID: s1.ID, ContentLength: -1, Body: bytes.NewReader(body)})
		done <- err
	}()
	<-first // the first holds its reservation, its chunks written but not recorded
	go func() { time.Sleep(300 * time.Millisecond); close(release) }()
	res, err := svc.SnapshotCreate(ctx, solo.Upload{UserID: "u1", SessionID: s2.ID, ContentLength: -1, Body: bytes.NewReader(body)})
	if err != nil {
		t.Fatalf("second identical upload: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("first upload: %v", err)
	}
	if res.Snapshot.StoredBytes != 0 {
		t.Errorf("second upload stored %d bytes, want 0 (all shared)", res.Snapshot.StoredBytes)
	}
	checkStore(t, pool, store, svc)
}

// TestBodyReadHoldsNoTransaction: while an upload's body is still arriving, it holds no
// transaction open (the body is read before the first one begins).
func TestBodyReadHoldsNoTransaction(t *testing.T) {
	t.Parallel()
	b := setup(t, "")
	ctx := context.Background()
	reading := make(chan struct{})
	var once sync.Once
	body := readerFunc(func(p []byte) (int, error) {
		once.Do(func() { close(reading) })
		time.Sleep(300 * time.Millisecond)
		return 0, io.EOF
	})
	done := make(chan error, 1)
	go func() {
		_, err := b.svc.SnapshotCreate(ctx, solo.Upload{UserID: b.user, SessionID: b.sess.ID, ContentLength: -1,
			Body: io.MultiReader(bytes.NewReader([]byte("slow")), body)})
		done <- err
	}()
	<-reading
	var open int
	if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in transaction%'`).Scan(&open); err != nil {
		t.Fatal(err)
	}
	if open != 0 {
		t.Errorf("%d transactions open while the body is read", open)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestRestoreWholeBlobChecksSHA: a whole-blob revision whose bytes no longer match its
// SHA-256 is not restored (snapshot_data_lost), and nothing is stored or charged.
func TestRestoreWholeBlobChecksSHA(t *testing.T) {
	t.Parallel()
	b := setup(t, "")
	ctx := context.Background()
	sum := sha256.Sum256([]byte("legacy"))
	b.seedPending(t, hex.EncodeToString(sum[:]), "legacy")
	if _, err := b.svc.ReapPending(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := b.upload("newer", ""); err != nil {
		t.Fatal(err)
	}
	var key string
	if err := b.pool.QueryRow(ctx, `SELECT blob_key FROM solo_snapshots WHERE revision = 1`).Scan(&key); err != nil {
		t.Fatal(err)
	}
	if err := b.blobs.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	if err := b.blobs.Put(ctx, key, bytes.NewReader([]byte("LEGACY")), 6, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := b.svc.SnapshotRestore(ctx, b.user, b.sess.ID, 1); !apperr.Is(err, apperr.SnapshotDataLost) {
		t.Fatalf("restore of a corrupt whole blob = %v, want %s", err, apperr.SnapshotDataLost)
	}
	var n int
	if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM solo_snapshots`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("%d revisions (%v), want 2", n, err)
	}
}
