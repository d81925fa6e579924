package solo_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/m4sh/backend/internal/apperr"
	"github.com/m4sh/backend/internal/blob"
	"github.com/m4sh/backend/internal/chunkstore"
	"github.com/m4sh/backend/internal/chunkstore/scenetest"
	"github.com/m4sh/backend/internal/dbtest"
	"github.com/m4sh/backend/internal/s3test"
	"github.com/m4sh/backend/internal/solo"
)

type chunkBundle struct {
	pool  *pgxpool.Pool
	store blob.Store
	svc   *solo.Service
	log   *slog.Logger
}

// backends are the blob stores every lifecycle test runs on.
var backends = []struct {
	name string
	open func(t *testing.T) blob.Store
}{
	{"local", func(t *testing.T) blob.Store {
		s, err := blob.NewLocal(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return s
	}},
	{"s3", func(t *testing.T) blob.Store {
		s, err := blob.NewS3(context.Background(), s3test.Bucket(t))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}},
}

// setupChunks is a service over store with room for 1 MiB scenes and users u1 and u2.
func setupChunks(t *testing.T, store blob.Store) *chunkBundle {
	t.Helper()
	pool := dbtest.New(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	b := &chunkBundle{pool: pool, store: store, log: log, svc: b0(pool, store, log, nil)}
	if _, err := pool.Exec(context.Background(), "INSERT INTO users (id, name) VALUES ('u1', 'U1'), ('u2', 'U2')"); err != nil {
		t.Fatal(err)
	}
	return b
}

func b0(pool *pgxpool.Pool, store blob.Store, log *slog.Logger, after func(context.Context, solo.Step) error) *solo.Service {
	return solo.New(pool, store, log, nil, solo.Options{DefaultQuota: 100 << 20, MaxSnapshotBytes: 5 << 20, UploadsInFlight: 64, AfterStep: after, DeletionGrace: -1, SweepMinAge: -1})
}

func (b *chunkBundle) session(t *testing.T, user string) solo.Session {
	t.Helper()
	s, err := b.svc.SessionCreate(context.Background(), user, "scene")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (b *chunkBundle) upload(t *testing.T, svc *solo.Service, user string, sess solo.Session, body []byte) solo.CreateResult {
	t.Helper()
	res, err := svc.SnapshotCreate(context.Background(), solo.Upload{
		UserID: user, SessionID: sess.ID, ContentType: "application/json", ContentLength: int64(len(body)), Body: bytes.NewReader(body),
	})
	if err != nil {
		t.Fatalf("upload of %d bytes: %v", len(body), err)
	}
	return res
}

// TestChunkedLifecycle, on both blob backends: autosaves of a 1 MiB scene cost what changed;
// the same bytes in another session of the user cost nothing, and another user pays for
// them in full (dedup never crosses users); GC keeping one revision frees exactly the chunks
// nothing else refers to; the invariants hold after each stage and every revision reads back.
func TestChunkedLifecycle(t *testing.T) {
	t.Parallel()
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			b := setupChunks(t, be.open(t))
			ctx := context.Background()
			revs := scenetest.Autosaves(5, 6)
			s1 := b.session(t, "u1")
			var first, rest int64
			for i, body := range revs {
				res := b.upload(t, b.svc, "u1", s1, body)
				if !res.Created || res.Snapshot.Revision != int32(i+1) || res.Snapshot.SizeBytes != int64(len(body)) {
					t.Fatalf("autosave %d: %+v", i, res.Snapshot)
				}
				if i == 0 {
					first = res.Snapshot.StoredBytes
				} else {
					rest += res.Snapshot.StoredBytes
				}
				if res.Storage.Used != first+rest {
					t.Errorf("autosave %d: used %d, want the revisions' stored bytes %d", i, res.Storage.Used, first+rest)
				}
			}
			if first <= 0 || first >= int64(len(revs[0]))/2 || rest > first*5/4 {
				t.Errorf("first revision stored %d of %d bytes, the 5 autosaves after it %d (each should add under a quarter of the first)", first, len(revs[0]), rest)
			}
			used := checkStore(t, b.pool, b.store, b.svc)

			// The user's other session: nothing added. Another user: everything.
			if res := b.upload(t, b.svc, "u1", b.session(t, "u1"), revs[0]); !res.Created || res.Snapshot.StoredBytes != 0 || res.Storage.Used != used["u1"] {
				t.Errorf("same bytes in another session: stored %d, used %d -> %d", res.Snapshot.StoredBytes, used["u1"], res.Storage.Used)
			}
			if res := b.upload(t, b.svc, "u2", b.session(t, "u2"), revs[0]); res.Snapshot.StoredBytes != first || res.Storage.Used != first {
				t.Errorf("another user's copy: stored %d, used %d; want %d", res.Snapshot.StoredBytes, res.Storage.Used, first)
			}
			checkStore(t, b.pool, b.store, b.svc)

			client := startedRiverClient(t, b.pool, b.svc, b.log)
			sum, err := b.svc.Cleanup(ctx, client, 1, &s1.ID)
			if err != nil || sum.RevisionsDeleted != 5 || sum.BytesFreed <= 0 {
				t.Fatalf("cleanup keeping 1 = %+v, %v", sum, err)
			}
			if err := solo.AwaitBlobDeletes(ctx, client, 20*time.Millisecond); err != nil {
				t.Fatal(err)
			}
			after := checkStore(t, b.pool, b.store, b.svc)
			if after["u1"] != used["u1"]-sum.BytesFreed || after["u2"] != first {
				t.Errorf("after GC: used %v, before %v, freed %d", after, used, sum.BytesFreed)
			}
		})
	}
}

// TestGCRacesUpload plays the race of internal/chunkstore's doc in both orders: GC drops the
// last revision referring to a scene's chunks while an upload of the same bytes is between
// its steps. Either the upload's reference comes first and GC frees nothing, or GC frees the
// chunks first and the upload stores them anew under new keys, which the queued deletion of
// the old ones never touches. Afterwards every invariant holds and the upload reads back.
func TestGCRacesUpload(t *testing.T) {
	t.Parallel()
	scene := scenetest.Autosaves(9, 1)[0][:300_000]
	other := scenetest.Autosaves(10, 1)[0][:100_000]

	t.Run("upload first", func(t *testing.T) {
		t.Parallel()
		b := setupChunks(t, backends[0].open(t))
		ctx := context.Background()
		s1, s2 := b.session(t, "u1"), b.session(t, "u1")
		first := b.upload(t, b.svc, "u1", s1, scene)
		b.upload(t, b.svc, "u1", s1, other)
		reached, resume := make(chan struct{}), make(chan struct{})
		paused := b0(b.pool, b.store, b.log, func(_ context.Context, st solo.Step) error {
			if st == solo.StepReserve {
				close(reached)
				<-resume
			}
			return nil
		})
		done := make(chan solo.CreateResult, 1)
		go func() { done <- b.upload(t, paused, "u1", s2, scene) }()
		<-reached // the upload holds references on every chunk of the scene
		client := startedRiverClient(t, b.pool, b.svc, b.log)
		sum, err := b.svc.Cleanup(ctx, client, 1, &s1.ID)
		if err != nil || sum.RevisionsDeleted != 1 || sum.BytesFreed != 0 {
			t.Errorf("cleanup racing the upload = %+v, %v; want revision 1 deleted, nothing freed", sum, err)
		}
		close(resume)
		res := <-done
		if res.Snapshot.StoredBytes != 0 || res.Storage.Used != first.Storage.Used+b.storedOf(t, s1, 2) {
			t.Errorf("upload after the race: stored %d, used %d", res.Snapshot.StoredBytes, res.Storage.Used)
		}
		if err := solo.AwaitBlobDeletes(ctx, client, 20*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		checkStore(t, b.pool, b.store, b.svc)
	})

	t.Run("gc first", func(t *testing.T) {
		t.Parallel()
		b := setupChunks(t, backends[0].open(t))
		ctx := context.Background()
		s1, s2 := b.session(t, "u1"), b.session(t, "u1")
		first := b.upload(t, b.svc, "u1", s1, scene)
		b.upload(t, b.svc, "u1", s1, other)
		client := riverClient(t, b.pool, b.svc, b.log) // not started: the deletions wait
		sum, err := b.svc.Cleanup(ctx, client, 1, &s1.ID)
		if err != nil || sum.RevisionsDeleted != 1 || sum.BytesFreed != first.Snapshot.StoredBytes {
			t.Fatalf("cleanup = %+v, %v; want revision 1 deleted, %d bytes freed", sum, err, first.Snapshot.StoredBytes)
		}
		var tombstones int
		if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM snapshot_packs WHERE state = 'deleting'`).Scan(&tombstones); err != nil || tombstones == 0 {
			t.Fatalf("tombstones = %d, %v; want the scene's pack", tombstones, err)
		}
		res := b.upload(t, b.svc, "u1", s2, scene)
		if res.Snapshot.StoredBytes != first.Snapshot.StoredBytes {
			t.Errorf("upload after GC freed its chunks: stored %d, want %d again", res.Snapshot.StoredBytes, first.Snapshot.StoredBytes)
		}
		var shared int
		if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM solo_snapshots a, solo_snapshots z
			WHERE a.session_id = $1 AND z.session_id = $2 AND a.chunk_ids && z.chunk_ids`, s1.ID, s2.ID).Scan(&shared); err != nil || shared != 0 {
			t.Errorf("the new revision shares %d chunk rows with the old session (%v); want new rows", shared, err)
		}
		sctx, cancel := context.WithCancel(ctx)
		defer cancel()
		if err := client.Start(sctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = client.Stop(context.Background()) })
		if err := solo.AwaitBlobDeletes(ctx, client, 20*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		checkStore(t, b.pool, b.store, b.svc)
	})
}

// storedOf is the stored_bytes of one revision.
func (b *chunkBundle) storedOf(t *testing.T, sess solo.Session, rev int32) int64 {
	t.Helper()
	snap, err := b.svc.SnapshotGet(context.Background(), sess.UserID, sess.ID, rev)
	if err != nil {
		t.Fatal(err)
	}
	return snap.StoredBytes
}

// TestAutosavesDuringGC: four sessions of one user save the same sequence of autosaves (so
// their revisions share most chunks) from four goroutines while retention keeping one
// revision runs again and again; no upload fails, and afterwards the invariants hold and
// every revision reads back.
func TestAutosavesDuringGC(t *testing.T) {
	t.Parallel()
	b := setupChunks(t, backends[0].open(t))
	ctx := context.Background()
	revs := scenetest.Autosaves(12, 5)
	client := startedRiverClient(t, b.pool, b.svc, b.log)
	var wg sync.WaitGroup
	for range 4 {
		sess := b.session(t, "u1")
		wg.Go(func() {
			for _, body := range revs {
				if _, err := b.svc.SnapshotCreate(ctx, solo.Upload{UserID: "u1", SessionID: sess.ID, ContentLength: -1, Body: bytes.NewReader(body)}); err != nil {
					t.Errorf("upload: %v (kind %q)", err, apperr.KindOf(err))
				}
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	runs := 0
	for gc := true; gc; runs++ {
		select {
		case <-done:
			gc = false
		default:
		}
		if _, err := b.svc.Cleanup(ctx, client, 1, nil); err != nil {
			t.Errorf("cleanup %d: %v", runs, err)
		}
	}
	if err := solo.AwaitBlobDeletes(ctx, client, 20*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	used := checkStore(t, b.pool, b.store, b.svc)
	t.Logf("%d cleanups beside 20 autosaves; %d bytes stored", runs, used["u1"])
}

// TestChunkedGCCrashes stops a chunked GC at each point between its steps: after its
// transaction committed but before its deletion job ran (the node died with its outbox
// queued), after the job deleted the blobs but before it deleted the tombstones (the job is
// retried), and with the job lost altogether (its tombstones are finished by the reaper after
// the grace period). Each time the invariants hold once the survivor is done.
func TestChunkedGCCrashes(t *testing.T) {
	t.Parallel()
	// Three unrelated scenes: GC keeping one frees the first two revisions' packs whole (a
	// pack with a chunk still live stays, by the pack rule).
	scene := [][]byte{scenetest.Autosaves(33, 1)[0], scenetest.Autosaves(34, 1)[0], scenetest.Autosaves(35, 1)[0]}
	seed := func(t *testing.T) (*chunkBundle, solo.Session) {
		b := setupChunks(t, backends[0].open(t))
		s := b.session(t, "u1")
		for _, body := range scene {
			b.upload(t, b.svc, "u1", s, body)
		}
		return b, s
	}
	ctx := context.Background()
	tombstones := func(t *testing.T, b *chunkBundle) int {
		t.Helper()
		var n int
		if err := b.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM snapshot_chunks WHERE state = 'deleting') + (SELECT count(*) FROM snapshot_packs WHERE state = 'deleting')`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	t.Run("outbox queued, then worked", func(t *testing.T) {
		t.Parallel()
		b, s := seed(t)
		idle := riverClient(t, b.pool, b.svc, b.log) // inserts only, as a node that died
		if sum, err := b.svc.Cleanup(ctx, idle, 1, &s.ID); err != nil || sum.RevisionsDeleted != 2 {
			t.Fatalf("cleanup = %+v, %v", sum, err)
		}
		if tombstones(t, b) == 0 {
			t.Fatal("no tombstones after GC freed chunks")
		}
		worker := startedRiverClient(t, b.pool, b.svc, b.log)
		if err := solo.AwaitBlobDeletes(ctx, worker, 20*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		checkStore(t, b.pool, b.store, b.svc)
	})

	t.Run("blobs deleted, tombstones not", func(t *testing.T) {
		t.Parallel()
		b, s := seed(t)
		idle := riverClient(t, b.pool, b.svc, b.log)
		if _, err := b.svc.Cleanup(ctx, idle, 1, &s.ID); err != nil {
			t.Fatal(err)
		}
		// What the job would have deleted, deleted by hand: the tombstones' packs.
		rows, _ := b.pool.Query(ctx, `SELECT user_id, id FROM snapshot_packs WHERE state = 'deleting'`)
		type pack struct {
			User string
			ID   int64
		}
		ps, err := pgx.CollectRows(rows, pgx.RowToStructByPos[pack])
		if err != nil || len(ps) == 0 {
			t.Fatalf("tombstones %v, %v", ps, err)
		}
		for _, p := range ps {
			if err := b.store.Delete(ctx, chunkstore.PackKey(p.User, p.ID)); err != nil {
				t.Fatal(err)
			}
		}
		worker := startedRiverClient(t, b.pool, b.svc, b.log) // the retried job
		if err := solo.AwaitBlobDeletes(ctx, worker, 20*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		checkStore(t, b.pool, b.store, b.svc)
	})

	t.Run("job lost", func(t *testing.T) {
		t.Parallel()
		b, s := seed(t)
		idle := riverClient(t, b.pool, b.svc, b.log)
		if _, err := b.svc.Cleanup(ctx, idle, 1, &s.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := b.pool.Exec(ctx, `DELETE FROM river_job WHERE kind = $1`, solo.KindDeleteBlob); err != nil {
			t.Fatal(err)
		}
		n := tombstones(t, b)
		if sum, err := b.svc.ReapPending(ctx, time.Hour); err != nil || sum.Tombstones != 0 {
			t.Errorf("reap within the grace = %+v, %v; want the young tombstones left to their job", sum, err)
		}
		if sum, err := b.svc.ReapPending(ctx, 0); err != nil || sum.Tombstones != n {
			t.Errorf("reap = %+v, %v; want %d tombstones finished", sum, err, n)
		}
		checkStore(t, b.pool, b.store, b.svc)
	})
}
