package e2e_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/m4sh/backend/gen/client"
	"github.com/m4sh/backend/internal/apptest"
	"github.com/m4sh/backend/internal/chunkstore"
	"github.com/m4sh/backend/internal/solo"
)

// TestSnapshotLifecycleOnEveryBackend saves revisions, reads them back (ETag/304), runs
// retention through River and checks rows, accounting and the blob store — once with the
// local directory and once against a real S3-compatible server: the quota, revision and GC
// logic must not care which store holds the bytes.
func TestSnapshotLifecycleOnEveryBackend(t *testing.T) {
	t.Parallel()
	backends := map[string]func(t testing.TB) map[string]string{
		"local": func(testing.TB) map[string]string { return map[string]string{} },
		"s3":    apptest.S3Env,
	}
	for name, envFor := range backends {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			vars := envFor(t)
			vars["SOLO_SNAPSHOT_RETENTION_KEEP_LAST"] = "2"
			env := apptest.New(t, vars)
			ctx := context.Background()
			c := newClient(t, env, "sara")

			created, err := c.SoloSessionCreateWithResponse(ctx, client.SoloSessionCreateJSONRequestBody{})
			if err != nil || created.JSON201 == nil {
				t.Fatalf("SoloSessionCreate = %v, %v", created.StatusCode(), err)
			}
			sid := created.JSON201.Id
			var last []byte
			for r := 1; r <= 5; r++ {
				body := incompressible(r, 100*r) // costs exactly its size
				key := fmt.Sprintf("save-%d", r)
				res, err := c.SoloSnapshotCreateWithBodyWithResponse(ctx, sid, &client.SoloSnapshotCreateParams{IdempotencyKey: &key},
					"application/octet-stream", bytes.NewReader(body))
				if err != nil || res.JSON201 == nil || res.JSON201.Revision != int32(r) {
					t.Fatalf("upload %d = %d %s, %v", r, res.StatusCode(), res.Body, err)
				}
				last = body
			}
			// A retry with the same key charges nothing and answers the original revision.
			key := "save-5"
			retry, err := c.SoloSnapshotCreateWithBodyWithResponse(ctx, sid, &client.SoloSnapshotCreateParams{IdempotencyKey: &key},
				"application/octet-stream", bytes.NewReader(last))
			if err != nil || retry.JSON200 == nil || retry.JSON200.Revision != 5 {
				t.Fatalf("retry = %d %s, %v; want 200 revision 5", retry.StatusCode(), retry.Body, err)
			}
			checkUsed(t, c, 100+200+300+400+500)

			latest, err := c.SoloSnapshotLatestWithResponse(ctx, sid, nil)
			if err != nil || latest.StatusCode() != http.StatusOK || !bytes.Equal(latest.Body, last) {
				t.Fatalf("latest = %d (%d bytes), %v", latest.StatusCode(), len(latest.Body), err)
			}
			etag := latest.HTTPResponse.Header.Get("ETag")
			if nm, err := c.SoloSnapshotLatestWithResponse(ctx, sid, &client.SoloSnapshotLatestParams{IfNoneMatch: &etag}); err != nil || nm.StatusCode() != http.StatusNotModified {
				t.Fatalf("latest with If-None-Match = %d, %v; want 304", nm.StatusCode(), err)
			}

			runCleanup(t, env)

			list, err := c.SoloSnapshotListWithResponse(ctx, sid, nil)
			if err != nil || list.JSON200 == nil {
				t.Fatalf("list = %d, %v", list.StatusCode(), err)
			}
			var revs []int32
			for _, s := range list.JSON200.Items {
				revs = append(revs, s.Revision)
			}
			if !slices.Equal(revs, []int32{5, 4}) {
				t.Errorf("revisions after GC = %v, want [5 4]", revs)
			}
			if gone, err := c.SoloSnapshotGetWithResponse(ctx, sid, 1, nil); err != nil || gone.StatusCode() != http.StatusNotFound {
				t.Errorf("revision 1 after GC = %d, %v; want 404", gone.StatusCode(), err)
			}
			if kept, err := c.SoloSnapshotGetWithResponse(ctx, sid, 4, nil); err != nil || kept.StatusCode() != http.StatusOK || len(kept.Body) != 400 {
				t.Errorf("revision 4 after GC = %d (%d bytes), %v", kept.StatusCode(), len(kept.Body), err)
			}
			checkUsed(t, c, 400+500)
			var objects int
			for _, err := range env.App.Blobs.List(ctx, chunkstore.PackPrefix, time.Time{}) {
				if err != nil {
					t.Fatal(err)
				}
				objects++
			}
			if objects != 2 {
				t.Errorf("%d packs stored after GC, want 2 (one per kept upload)", objects)
			}
		})
	}
}

func checkUsed(t *testing.T, c *client.ClientWithResponses, want int64) {
	t.Helper()
	st, err := c.SoloStorageGetWithResponse(context.Background())
	if err != nil || st.JSON200 == nil || st.JSON200.Used != want {
		t.Fatalf("storage = %+v, %v; want used %d", st.JSON200, err, want)
	}
}

// runCleanup runs solo.cleanup_snapshots through the service's own River client and waits
// for it and its blob deletions.
func runCleanup(t *testing.T, env *apptest.Env) {
	t.Helper()
	ctx := context.Background()
	res, err := env.App.River.Insert(ctx, solo.CleanupArgs{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := solo.Await(wctx, env.App.River.Client, res.Job.ID, 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
}

// incompressible is n bytes that compression cannot shrink, different for each seed.
func incompressible(seed, n int) []byte {
	b := make([]byte, n)
	_, _ = rand.NewChaCha8([32]byte{byte(seed), 2}).Read(b)
	return b
}
