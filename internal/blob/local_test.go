package blob_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/m4sh/backend/internal/blob"
)

func setup(t *testing.T) (*blob.Local, string) {
	t.Helper()
	dir := t.TempDir()
	s, err := blob.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s, dir
}

func put(t *testing.T, s blob.Store, key, body string) {
	t.Helper()
	if err := s.Put(context.Background(), key, bytes.NewReader([]byte(body)), int64(len(body)), "application/octet-stream"); err != nil {
		t.Fatalf("Put(%q) = %v", key, err)
	}
}

func TestLocalPutGetDelete(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	ctx := context.Background()
	put(t, s, "solo/a/1", "hello")
	rc, obj, err := s.Get(ctx, "solo/a/1")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "hello" || obj.Size != 5 || obj.Key != "solo/a/1" {
		t.Errorf("Get = %q, %+v; want hello, size 5", b, obj)
	}
	if err := s.Put(ctx, "solo/a/1", bytes.NewReader([]byte("other")), 5, "application/octet-stream"); !errors.Is(err, blob.ErrExists) {
		t.Errorf("Put on an existing key = %v, want ErrExists", err)
	}
	rc, _, _ = s.Get(ctx, "solo/a/1")
	b, _ = io.ReadAll(rc)
	rc.Close()
	if string(b) != "hello" {
		t.Errorf("object overwritten: %q", b)
	}
	if err := s.Delete(ctx, "solo/a/1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "solo/a/1"); err != nil {
		t.Errorf("second Delete = %v, want nil", err)
	}
	if _, _, err := s.Get(ctx, "solo/a/1"); !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("Get after Delete = %v, want ErrNotFound", err)
	}
}

func TestLocalPutShortReadLeavesNothing(t *testing.T) {
	t.Parallel()
	s, dir := setup(t)
	err := s.Put(context.Background(), "k/x", bytes.NewReader([]byte("abc")), 4, "application/octet-stream")
	if err == nil {
		t.Fatal("Put with a short reader succeeded")
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "k"))
	if len(entries) != 0 {
		t.Errorf("files left after a failed Put: %v", entries)
	}
}

func TestValidKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		key  string
		want bool
	}{
		{"solo/0f/1", true},
		{"a.b-c_d", true},
		{"", false},
		{"/abs", false},
		{"a//b", false},
		{"a/../b", false},
		{"a/.tmp-1", false},
		{"a/b c", false},
		{"a/b/", false},
	}
	for _, tt := range tests {
		if got := blob.ValidKey(tt.key) == nil; got != tt.want {
			t.Errorf("ValidKey(%q) ok = %v, want %v", tt.key, got, tt.want)
		}
	}
}

func TestLocalConcurrentPutsOneWins(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	const n = 16
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := bytes.Repeat([]byte{byte('a' + i)}, 4096)
			errs[i] = s.Put(context.Background(), "race/key", bytes.NewReader(body), int64(len(body)), "application/octet-stream")
		}()
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, blob.ErrExists):
			t.Errorf("Put = %v, want nil or ErrExists", err)
		}
	}
	if ok != 1 {
		t.Errorf("%d concurrent Puts succeeded, want exactly 1", ok)
	}
}

func TestLocalList(t *testing.T) {
	t.Parallel()
	s, dir := setup(t)
	ctx := context.Background()
	put(t, s, "solo/s1/a", "1")
	put(t, s, "solo/s1/b", "22")
	put(t, s, "solo/s2/c", "333")
	put(t, s, "other/d", "4")
	// A temporary file of an interrupted Put is not an object.
	if err := os.WriteFile(filepath.Join(dir, "solo", "s1", ".tmp-123"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(filepath.Join(dir, "solo", "s1", "a"), old, old); err != nil {
		t.Fatal(err)
	}
	keys := func(prefix string, olderThan time.Time) []string {
		var out []string
		for obj, err := range s.List(ctx, prefix, olderThan) {
			if err != nil {
				t.Fatalf("List(%q) = %v", prefix, err)
			}
			out = append(out, obj.Key)
		}
		slices.Sort(out)
		return out
	}
	tests := []struct {
		prefix    string
		olderThan time.Time
		want      []string
	}{
		{"solo/", time.Time{}, []string{"solo/s1/a", "solo/s1/b", "solo/s2/c"}},
		{"solo/s1/", time.Time{}, []string{"solo/s1/a", "solo/s1/b"}},
		{"solo/s", time.Time{}, []string{"solo/s1/a", "solo/s1/b", "solo/s2/c"}},
		{"", time.Time{}, []string{"other/d", "solo/s1/a", "solo/s1/b", "solo/s2/c"}},
		{"solo/", time.Now().Add(-time.Minute), []string{"solo/s1/a"}},
		{"missing/", time.Time{}, nil},
	}
	for _, tt := range tests {
		if got := keys(tt.prefix, tt.olderThan); !slices.Equal(got, tt.want) {
			t.Errorf("List(%q, %v) = %v, want %v", tt.prefix, tt.olderThan, got, tt.want)
		}
	}
	for _, err := range s.List(ctx, "../x", time.Time{}) {
		if !errors.Is(err, blob.ErrInvalidKey) {
			t.Errorf("List(../x) error = %v, want ErrInvalidKey", err)
		}
	}
}

func TestLocalDeleteMany(t *testing.T) {
	t.Parallel()
	s, dir := setup(t)
	ctx := context.Background()
	for _, d := range []string{"a", "b", "c"} {
		for _, r := range []string{"1", "2", "3"} {
			put(t, s, "solo/"+d+"/"+r, d+r)
		}
	}
	// Two directories emptied, one kept in part; a key never stored and one in a directory
	// that never existed are no error.
	doomed := []string{"solo/a/1", "solo/a/2", "solo/a/3", "solo/b/1", "solo/b/2", "solo/b/3", "solo/c/1", "solo/c/9", "solo/zz/1"}
	if err := blob.DeleteAll(ctx, s, doomed); err != nil {
		t.Fatalf("DeleteAll = %v", err)
	}
	var left []string
	for obj, err := range s.List(ctx, "", time.Time{}) {
		if err != nil {
			t.Fatal(err)
		}
		left = append(left, obj.Key)
	}
	slices.Sort(left)
	if want := []string{"solo/c/2", "solo/c/3"}; !slices.Equal(left, want) {
		t.Errorf("left after DeleteMany: %v, want %v", left, want)
	}
	if _, err := os.Stat(filepath.Join(dir, "solo", "a")); err != nil {
		t.Errorf("emptied directory removed: %v", err)
	}
	if err := s.DeleteMany(ctx, []string{"solo/c/2", "../x"}); !errors.Is(err, blob.ErrInvalidKey) {
		t.Errorf("DeleteMany with an invalid key = %v, want ErrInvalidKey", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "solo", "c", "2")); err != nil {
		t.Errorf("a batch with an invalid key deleted something: %v", err)
	}
}

// TestLocalPutMany: a batch lands whole and readable; a key that already holds an object
// keeps it and counts as written; a bad key fails the batch.
func TestLocalPutMany(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := blob.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "c/o/x", bytes.NewReader([]byte("old")), 3, ""); err != nil {
		t.Fatal(err)
	}
	items := []blob.PutItem{{Key: "c/o/a", Data: []byte("aa")}, {Key: "c/o/b", Data: []byte("bbb")}, {Key: "c/o/x", Data: []byte("new")}, {Key: "c/p/a", Data: []byte("p")}}
	if err := s.PutMany(ctx, items); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{"c/o/a": "aa", "c/o/b": "bbb", "c/o/x": "old", "c/p/a": "p"} {
		rc, _, err := s.Get(ctx, key)
		if err != nil {
			t.Fatalf("Get(%q) = %v", key, err)
		}
		got, _ := io.ReadAll(rc)
		rc.Close()
		if string(got) != want {
			t.Errorf("Get(%q) = %q, want %q", key, got, want)
		}
	}
	if err := s.PutMany(ctx, []blob.PutItem{{Key: "c/o/ok", Data: []byte("1")}, {Key: "../escape", Data: []byte("1")}}); !errors.Is(err, blob.ErrInvalidKey) {
		t.Errorf("PutMany with a bad key = %v, want blob.ErrInvalidKey", err)
	}
}
