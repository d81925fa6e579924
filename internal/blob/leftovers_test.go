package blob_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/m4sh/backend/internal/blob"
	"github.com/m4sh/backend/internal/s3test"
)

// TestLocalSweepLeftovers: temporary files older than the cutoff under the prefix go;
// newer ones (a Put perhaps still writing), other prefixes and objects stay.
func TestLocalSweepLeftovers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, dir := setup(t)
	put(t, s, "solo/a/obj", "kept")
	old := time.Now().Add(-time.Hour)
	write := func(rel string, mod time.Time) string {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mod, mod); err != nil {
			t.Fatal(err)
		}
		return p
	}
	stale := write("solo/a/.tmp-123", old)
	staleDeep := write("solo/b/.tmp-456", old)
	fresh := write("solo/a/.tmp-789", time.Now())
	other := write("other/.tmp-1", old)
	n, err := s.SweepLeftovers(ctx, "solo/", time.Now().Add(-time.Minute))
	if err != nil || n != 2 {
		t.Fatalf("SweepLeftovers = %d, %v; want 2, nil", n, err)
	}
	for p, want := range map[string]bool{stale: false, staleDeep: false, fresh: true, other: true, filepath.Join(dir, "solo", "a", "obj"): true} {
		if _, err := os.Stat(p); (err == nil) != want {
			t.Errorf("%s exists = %t, want %t", p, err == nil, want)
		}
	}
}

// TestS3SweepLeftovers aborts an incomplete multipart upload on a real S3-compatible server.
func TestS3SweepLeftovers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := blob.NewS3(ctx, s3test.Bucket(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := blob.StartMultipartUpload(ctx, s, "solo/a/crashed"); err != nil {
		t.Fatal(err)
	}
	if n, err := s.SweepLeftovers(ctx, "solo/", time.Now().Add(-time.Hour)); err != nil || n != 0 {
		t.Fatalf("SweepLeftovers before the cutoff = %d, %v; want 0, nil", n, err)
	}
	if n, err := s.SweepLeftovers(ctx, "solo/", time.Now().Add(time.Minute)); err != nil || n != 1 {
		t.Fatalf("SweepLeftovers = %d, %v; want 1, nil", n, err)
	}
	if n, err := blob.MultipartUploads(ctx, s, "solo/"); err != nil || n != 0 {
		t.Errorf("%d multipart uploads left (%v), want 0", n, err)
	}
}
