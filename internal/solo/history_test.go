package solo_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/m4sh/backend/internal/apperr"
	"github.com/m4sh/backend/internal/chunkstore/scenetest"
	"github.com/m4sh/backend/internal/page"
	"github.com/m4sh/backend/internal/solo"
)

func ptrTo[T any](v T) *T { return &v }

// TestPinAndRestore: pinned revisions survive GC and do not count toward keep_last; a
// restore is a new revision sharing its source's chunks (nothing stored or charged,
// restored_from set), survives GC of its source, and restoring the newest content creates
// nothing; pin limits and missing revisions answer as the contract says.
func TestPinAndRestore(t *testing.T) {
	t.Parallel()
	b := setupChunks(t, backends[0].open(t))
	ctx := context.Background()
	revs := scenetest.Autosaves(21, 5)
	s := b.session(t, "u1")
	for _, body := range revs {
		b.upload(t, b.svc, "u1", s, body)
	}
	pinned, err := b.svc.SnapshotPin(ctx, "u1", s.ID, 2, ptrTo("before the proof"))
	if err != nil || !pinned.Pinned || pinned.Label != "before the proof" || pinned.Revision != 2 {
		t.Fatalf("pin = %+v, %v", pinned, err)
	}
	if _, err := b.svc.SnapshotPin(ctx, "u1", s.ID, 3, nil); err != nil {
		t.Fatal(err)
	}
	if sn, err := b.svc.SnapshotUnpin(ctx, "u1", s.ID, 3); err != nil || sn.Pinned || sn.Label != "" {
		t.Fatalf("unpin = %+v, %v", sn, err)
	}
	for _, tc := range []struct {
		name string
		err  error
		kind apperr.Kind
	}{
		{"pin of a missing revision", func() error { _, err := b.svc.SnapshotPin(ctx, "u1", s.ID, 99, nil); return err }(), apperr.NotFound},
		{"pin in another user's session", func() error { _, err := b.svc.SnapshotPin(ctx, "u2", s.ID, 1, nil); return err }(), apperr.NotFound},
		{"unpin of a missing revision", func() error { _, err := b.svc.SnapshotUnpin(ctx, "u1", s.ID, 99); return err }(), apperr.NotFound},
		{"restore of a missing revision", func() error { _, err := b.svc.SnapshotRestore(ctx, "u1", s.ID, 99); return err }(), apperr.NotFound},
		{"restore in another user's session", func() error { _, err := b.svc.SnapshotRestore(ctx, "u2", s.ID, 1); return err }(), apperr.NotFound},
	} {
		if !apperr.Is(tc.err, tc.kind) {
			t.Errorf("%s = %v, want %s", tc.name, tc.err, tc.kind)
		}
	}

	before, _ := b.svc.StorageGet(ctx, "u1")
	res, err := b.svc.SnapshotRestore(ctx, "u1", s.ID, 1)
	sum1 := sha256.Sum256(revs[0])
	if err != nil || !res.Created || res.Snapshot.Revision != 6 || res.Snapshot.RestoredFrom != 1 || res.Snapshot.StoredBytes != 0 ||
		res.Snapshot.SHA256 != hex.EncodeToString(sum1[:]) || res.Storage != before {
		t.Fatalf("restore of revision 1 = %+v, %v; want revision 6 from 1, nothing stored, storage %+v", res, err, before)
	}
	if again, err := b.svc.SnapshotRestore(ctx, "u1", s.ID, 1); err != nil || again.Created || again.Snapshot.Revision != 6 {
		t.Errorf("restoring the newest content again = %+v, %v; want revision 6, nothing created", again, err)
	}

	// GC keeping 2: revisions 5 and 6 stay, and pinned revision 2 besides (not counted).
	client := startedRiverClient(t, b.pool, b.svc, b.log)
	if _, err := b.svc.Cleanup(ctx, client, 2, nil); err != nil {
		t.Fatal(err)
	}
	if err := solo.AwaitBlobDeletes(ctx, client, 20*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	list, _, err := b.svc.SnapshotList(ctx, "u1", s.ID, firstPage())
	if err != nil {
		t.Fatal(err)
	}
	var kept []int32
	for _, sn := range list {
		kept = append(kept, sn.Revision)
	}
	if !slices.Equal(kept, []int32{6, 5, 2}) {
		t.Errorf("revisions after GC = %v, want [6 5 2]", kept)
	}
	checkStore(t, b.pool, b.store, b.svc) // revision 6 reads revision 1's bytes, whose row is gone

	// At most 50 pinned: the 51st is a conflict, re-pinning a pinned one is not.
	for range 50 {
		b.upload(t, b.svc, "u1", s, noiseBody(t))
	}
	pins := 1
	for r := int32(7); pins < solo.MaxPinned; r++ {
		if _, err := b.svc.SnapshotPin(ctx, "u1", s.ID, r, nil); err != nil {
			t.Fatalf("pin %d: %v", r, err)
		}
		pins++
	}
	if _, err := b.svc.SnapshotPin(ctx, "u1", s.ID, 56, nil); !apperr.Is(err, apperr.Conflict) {
		t.Errorf("pin beyond %d = %v, want conflict", solo.MaxPinned, err)
	}
	if _, err := b.svc.SnapshotPin(ctx, "u1", s.ID, 2, ptrTo("renamed")); err != nil {
		t.Errorf("re-labelling a pinned revision at the limit = %v", err)
	}
}

// TestRestoreWholeBlob: a revision stored before chunking is restored by storing its bytes as
// chunks, charged like an upload; the result reads back and the invariants hold.
func TestRestoreWholeBlob(t *testing.T) {
	t.Parallel()
	b := setup(t, "")
	ctx := context.Background()
	sum := sha256.Sum256([]byte("legacy"))
	b.seedPending(t, hex.EncodeToString(sum[:]), "legacy")
	if _, err := b.svc.ReapPending(ctx, 0); err != nil { // commits it as revision 1
		t.Fatal(err)
	}
	if _, err := b.upload("newer", ""); err != nil {
		t.Fatal(err)
	}
	// A restore that dies after writing the chunks is dropped by the reaper like an upload.
	crashing := solo.New(b.pool, b.blobs, slog.New(slog.NewTextHandler(io.Discard, nil)), nil, solo.Options{
		DefaultQuota: 1 << 20, MaxSnapshotBytes: 1 << 16,
		AfterStep: func(_ context.Context, st solo.Step) error {
			if st == solo.StepBlobWrite {
				return errCrash
			}
			return nil
		},
	})
	if _, err := crashing.SnapshotRestore(ctx, b.user, b.sess.ID, 1); !errors.Is(err, errCrash) {
		t.Fatalf("crashing restore = %v", err)
	}
	if sum, err := b.svc.ReapPending(ctx, 0); err != nil || sum != (solo.ReapSummary{RolledBack: 1}) {
		t.Errorf("reap after a crashed restore = %+v, %v", sum, err)
	}
	b.checkInvariant(t, 6+5)
	res, err := b.svc.SnapshotRestore(ctx, b.user, b.sess.ID, 1)
	if err != nil || !res.Created || res.Snapshot.Revision != 3 || res.Snapshot.RestoredFrom != 1 || res.Snapshot.StoredBytes != 6 {
		t.Fatalf("restore of a whole-blob revision = %+v, %v", res, err)
	}
	b.checkInvariant(t, 6+5+6)
}

// noiseBody is 200 random bytes: a revision of its own.
func noiseBody(t *testing.T) []byte {
	t.Helper()
	b := make([]byte, 200)
	_, _ = rand.Read(b)
	return b
}

func firstPage() page.Request {
	p, err := page.Parse(nil, nil)
	if err != nil {
		panic(err)
	}
	return p
}
