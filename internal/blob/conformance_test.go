package blob_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/m4sh/backend/internal/blob"
	"github.com/m4sh/backend/internal/s3test"
)

// backends are the Store implementations every conformance case runs against: the local
// directory and a real S3-compatible server.
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

// onlyReader hides every method but Read, so Put sees a plain stream.
type onlyReader struct{ io.Reader }

func get(t *testing.T, s blob.Store, key string) ([]byte, blob.Object, error) {
	t.Helper()
	rc, obj, err := s.Get(context.Background(), key)
	if err != nil {
		return nil, obj, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	return b, obj, err
}

func listKeys(t *testing.T, s blob.Store, prefix string, olderThan time.Time) []string {
	t.Helper()
	var keys []string
	for o, err := range s.List(context.Background(), prefix, olderThan) {
		if err != nil {
			t.Fatalf("List(%q): %v", prefix, err)
		}
		keys = append(keys, o.Key)
	}
	slices.Sort(keys)
	return keys
}

func TestConformance(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		run  func(t *testing.T, s blob.Store)
	}{
		{"put then get returns the bytes", func(t *testing.T, s blob.Store) {
			put(t, s, "solo/u1/r1", "hello")
			b, obj, err := get(t, s, "solo/u1/r1")
			if err != nil || string(b) != "hello" || obj.Size != 5 || obj.Key != "solo/u1/r1" {
				t.Errorf("Get = %q, %+v, %v; want hello size 5", b, obj, err)
			}
		}},
		{"a key is never overwritten", func(t *testing.T, s blob.Store) {
			put(t, s, "k", "first")
			err := s.Put(context.Background(), "k", bytes.NewReader([]byte("second")), 6, "application/octet-stream")
			if !errors.Is(err, blob.ErrExists) {
				t.Errorf("second Put = %v, want ErrExists", err)
			}
			if b, _, _ := get(t, s, "k"); string(b) != "first" {
				t.Errorf("object = %q after a refused overwrite, want first", b)
			}
		}},
		{"missing key is ErrNotFound", func(t *testing.T, s blob.Store) {
			if _, _, err := get(t, s, "nope/x"); !errors.Is(err, blob.ErrNotFound) {
				t.Errorf("Get(missing) = %v, want ErrNotFound", err)
			}
		}},
		{"deleting a missing key is done already", func(t *testing.T, s blob.Store) {
			if err := s.Delete(context.Background(), "nope/x"); err != nil {
				t.Errorf("Delete(missing) = %v, want nil", err)
			}
		}},
		{"invalid keys are refused", func(t *testing.T, s blob.Store) {
			for _, k := range []string{"", "../x", "a//b", ".hidden", "a b"} {
				if err := s.Put(context.Background(), k, bytes.NewReader(nil), 0, "application/octet-stream"); !errors.Is(err, blob.ErrInvalidKey) {
					t.Errorf("Put(%q) = %v, want ErrInvalidKey", k, err)
				}
			}
		}},
		{"empty object", func(t *testing.T, s blob.Store) {
			put(t, s, "empty", "")
			if b, obj, err := get(t, s, "empty"); err != nil || len(b) != 0 || obj.Size != 0 {
				t.Errorf("Get(empty) = %q, %+v, %v", b, obj, err)
			}
		}},
		{"large object through a plain stream", func(t *testing.T, s blob.Store) {
			data := make([]byte, 6<<20+123)
			_, _ = rand.Read(data)
			if err := s.Put(context.Background(), "big/1", onlyReader{bytes.NewReader(data)}, int64(len(data)), "application/octet-stream"); err != nil {
				t.Fatal(err)
			}
			if b, obj, err := get(t, s, "big/1"); err != nil || !bytes.Equal(b, data) || obj.Size != int64(len(data)) {
				t.Errorf("Get(big) = %d bytes (equal %v), %+v, %v", len(b), bytes.Equal(b, data), obj, err)
			}
		}},
		{"list by prefix, and after deletes", func(t *testing.T, s blob.Store) {
			for _, k := range []string{"solo/a/1", "solo/a/2", "solo/b/1", "other/1"} {
				put(t, s, k, k)
			}
			if got := listKeys(t, s, "solo/a/", time.Time{}); !slices.Equal(got, []string{"solo/a/1", "solo/a/2"}) {
				t.Errorf("List(solo/a/) = %v", got)
			}
			if got := listKeys(t, s, "solo/", time.Time{}); len(got) != 3 {
				t.Errorf("List(solo/) = %v, want 3 keys", got)
			}
			if err := s.Delete(context.Background(), "solo/a/1"); err != nil {
				t.Fatal(err)
			}
			if got := listKeys(t, s, "solo/", time.Time{}); !slices.Equal(got, []string{"solo/a/2", "solo/b/1"}) {
				t.Errorf("List after delete = %v", got)
			}
			if _, _, err := get(t, s, "solo/a/1"); !errors.Is(err, blob.ErrNotFound) {
				t.Errorf("Get after delete = %v, want ErrNotFound", err)
			}
		}},
		{"list honours olderThan", func(t *testing.T, s blob.Store) {
			put(t, s, "age/old", "x")
			if got := listKeys(t, s, "age/", time.Now().Add(-time.Hour)); len(got) != 0 {
				t.Errorf("List(olderThan an hour ago) = %v, want none", got)
			}
			if got := listKeys(t, s, "age/", time.Now().Add(time.Hour)); !slices.Equal(got, []string{"age/old"}) {
				t.Errorf("List(olderThan in an hour) = %v, want age/old", got)
			}
		}},
		{"concurrent puts of distinct keys", func(t *testing.T, s blob.Store) {
			var wg sync.WaitGroup
			errs := make(chan error, 20)
			for i := range 20 {
				wg.Go(func() {
					body := fmt.Sprintf("body-%d", i)
					errs <- s.Put(context.Background(), fmt.Sprintf("conc/%02d", i), bytes.NewReader([]byte(body)), int64(len(body)), "application/octet-stream")
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Error(err)
				}
			}
			if got := listKeys(t, s, "conc/", time.Time{}); len(got) != 20 {
				t.Errorf("List(conc/) = %d keys, want 20", len(got))
			}
			for i := range 20 {
				if b, _, err := get(t, s, fmt.Sprintf("conc/%02d", i)); err != nil || string(b) != fmt.Sprintf("body-%d", i) {
					t.Errorf("conc/%02d = %q, %v", i, b, err)
				}
			}
		}},
	}
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					tc.run(t, be.open(t))
				})
			}
		})
	}
}

func TestS3UnreachableBucketIsAClearError(t *testing.T) {
	t.Parallel()
	o := s3test.Bucket(t)
	o.Bucket = "no-such-bucket"
	_, err := blob.NewS3(context.Background(), o)
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("S3_BUCKET")) {
		t.Errorf("NewS3(missing bucket) = %v, want an error naming S3_BUCKET", err)
	}
}
