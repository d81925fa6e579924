package solo_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/klauspost/compress/zstd"

	"github.com/m4sh/backend/internal/apperr"
	"github.com/m4sh/backend/internal/chunkstore"
	"github.com/m4sh/backend/internal/solo"
)

// clientError reports whether err is an answer the contract gives a client (4xx), as
// opposed to a failure of the service (5xx: no kind, Internal or Unavailable).
func clientError(err error) bool {
	switch apperr.KindOf(err) {
	case "", apperr.Internal, apperr.Unavailable:
		return false
	}
	return true
}

// TestConcurrentIdenticalUploadsMixedKeys sends, ten times over, 30 identical uploads at once,
// half of them sharing an Idempotency-Key, a quarter with a key of their own and the rest
// with none: no upload fails for a reason of the service's (a deadlock used to surface as a
// 500 and leave pending rows holding quota), each round stores exactly one revision, and
// used_bytes is exactly the sum of the stored sizes.
func TestConcurrentIdenticalUploadsMixedKeys(t *testing.T) {
	t.Parallel()
	b := setup(t, "")
	codec, err := chunkstore.NewCodec(zstd.SpeedFastest)
	if err != nil {
		t.Fatal(err)
	}
	defer codec.Close()
	var want int64 // the stored (compressed) size of the ten distinct bodies
	for round := range 10 {
		body := strings.Repeat(fmt.Sprintf("round %d;", round), 10+round)
		if _, err := codec.Split(strings.NewReader(body), func(c *chunkstore.Chunk) error { want += c.Ref.StoredSize; return nil }); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make(chan error, 30)
		for i := range 30 {
			key := ""
			switch i % 4 {
			case 0, 2:
				key = fmt.Sprintf("shared-%d", round)
			case 1:
				key = fmt.Sprintf("own-%d-%d", round, i)
			}
			wg.Go(func() {
				if _, err := b.upload(body, key); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			// 409 while the shared key's first upload is in flight is the contract's answer.
			if !clientError(err) || !apperr.Is(err, apperr.Conflict) {
				t.Errorf("round %d: upload failed: %v (kind %q)", round, err, apperr.KindOf(err))
			}
		}
	}
	revs := b.checkInvariant(t, want)
	if len(revs) != 10 || revs[0] != 1 || revs[9] != 10 {
		t.Errorf("revisions %v, want 1..10", revs)
	}
}

// TestUploadsDuringGC uploads distinct snapshots to four sessions from eight goroutines while
// retention runs again and again: no upload fails for a reason of the service's, and
// afterwards used_bytes is exactly the sum of the stored sizes and blobs match rows.
func TestUploadsDuringGC(t *testing.T) {
	t.Parallel()
	b := setup(t, "")
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	client := startedRiverClient(t, b.pool, b.svc, log)
	sessions := []uuid.UUID{b.sess.ID}
	for range 3 {
		s, err := b.svc.SessionCreate(ctx, b.user, "more")
		if err != nil {
			t.Fatal(err)
		}
		sessions = append(sessions, s.ID)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 7))
			for i := range 30 {
				body := fmt.Sprintf("g%d i%d %s", g, i, strings.Repeat("x", 100+r.IntN(900)))
				_, err := b.svc.SnapshotCreate(ctx, solo.Upload{
					UserID: b.user, SessionID: sessions[(g+i)%len(sessions)], ContentType: "text/plain",
					ContentLength: int64(len(body)), Body: strings.NewReader(body),
				})
				if err != nil {
					t.Errorf("upload g%d i%d: %v (kind %q)", g, i, err, apperr.KindOf(err))
				}
			}
		})
	}
	go func() { wg.Wait(); close(done) }()
	runs := 0
	for gc := true; gc; runs++ {
		select {
		case <-done:
			gc = false
		default:
		}
		if _, err := b.svc.Cleanup(ctx, client, 2+runs%2, nil); err != nil {
			t.Errorf("cleanup %d: %v", runs, err)
		}
	}
	if err := solo.AwaitBlobDeletes(ctx, client, 20*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	used := b.checkInvariant(t, -1)
	t.Logf("%d cleanups ran beside 240 uploads; %d revisions, %d bytes stored", runs, len(used), b.storedSum(t))
}

// TestUploadsInFlightCap holds a user's uploads in flight on bodies that have not arrived:
// one more is refused with TooManyUploads and a Retry-After before a byte of its body is
// read, another user is not affected, and a finished upload frees its slot.
func TestUploadsInFlightCap(t *testing.T) {
	t.Parallel()
	b := setup(t, "")
	ctx := context.Background()
	svc := solo.New(b.pool, b.blobs, slog.New(slog.NewTextHandler(io.Discard, nil)), nil,
		solo.Options{DefaultQuota: 1 << 20, MaxSnapshotBytes: 1 << 16, UploadsInFlight: 2})
	var writers []*io.PipeWriter
	results := make(chan error, 2)
	for i := range 2 {
		r, w := io.Pipe()
		writers = append(writers, w)
		go func() {
			_, err := svc.SnapshotCreate(ctx, solo.Upload{UserID: b.user, SessionID: b.sess.ID, ContentLength: -1, Body: r,
				IdempotencyKey: fmt.Sprintf("slow-%d", i)})
			results <- err
		}()
		if _, err := w.Write([]byte("first bytes ")); err != nil { // the upload is reading its body
			t.Fatal(err)
		}
	}
	unread := readerFunc(func([]byte) (int, error) {
		t.Error("the refused upload's body was read")
		return 0, io.EOF
	})
	_, err := svc.SnapshotCreate(ctx, solo.Upload{UserID: b.user, SessionID: b.sess.ID, ContentLength: 10, Body: unread})
	var e *apperr.Error
	if !errors.As(err, &e) || e.Kind != apperr.TooManyUploads || e.RetryAfter != time.Second {
		t.Fatalf("third upload = %v, want too_many_uploads with Retry-After 1s", err)
	}
	other, err := svc.SessionCreate(ctx, b.user, "other user's")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.pool.Exec(ctx, "INSERT INTO users (id, name) VALUES ('u2', 'U2')"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.pool.Exec(ctx, "UPDATE solo_sessions SET user_id = 'u2' WHERE id = $1", other.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.SnapshotCreate(ctx, solo.Upload{UserID: "u2", SessionID: other.ID, ContentLength: 2, Body: strings.NewReader("ok")}); err != nil {
		t.Errorf("another user's upload = %v, want it stored", err)
	}
	writers[0].Close()
	if err := <-results; err != nil {
		t.Fatalf("first upload = %v", err)
	}
	if _, err := svc.SnapshotCreate(ctx, solo.Upload{UserID: b.user, SessionID: b.sess.ID, ContentLength: 5, Body: strings.NewReader("later")}); err != nil {
		t.Errorf("an upload after one finished = %v, want it stored", err)
	}
	writers[1].Close()
	if err := <-results; err != nil {
		t.Fatalf("second upload = %v", err)
	}
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// TestUploadBodyErrorKeepsItsKind: a body reader that fails with a classified error (the HTTP
// layer's read deadline is request_timeout) is answered with that error, not a generic 400.
func TestUploadBodyErrorKeepsItsKind(t *testing.T) {
	t.Parallel()
	b := setup(t, "")
	timeout := apperr.New(apperr.RequestTimeout, "the request body did not arrive in time")
	_, err := b.svc.SnapshotCreate(context.Background(), solo.Upload{UserID: b.user, SessionID: b.sess.ID, ContentLength: -1,
		Body: readerFunc(func([]byte) (int, error) { return 0, timeout })})
	if !errors.Is(err, timeout) {
		t.Errorf("upload = %v, want %v", err, timeout)
	}
	b.checkInvariant(t, 0)
}
