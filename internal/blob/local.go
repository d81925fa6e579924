package blob

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Local is a Store in a directory of the local filesystem: the object under key "a/b" is the
// file dir/a/b.
type Local struct {
	dir string
}

var (
	_ Store        = (*Local)(nil)
	_ BatchDeleter = (*Local)(nil)
	_ BatchPutter  = (*Local)(nil)
)

// tempPrefix starts the names of files being written; ValidKey refuses such names, so they
// are never mistaken for objects.
const tempPrefix = ".tmp-"

// NewLocal returns a Local store rooted at dir. Directories are created by the first Put
// that needs them.
func NewLocal(dir string) (*Local, error) {
	if dir == "" {
		return nil, errors.New("blob: local store needs a directory")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("blob: %w", err)
	}
	return &Local{dir: abs}, nil
}

func (l *Local) path(key string) (string, error) {
	if err := ValidKey(key); err != nil {
		return "", err
	}
	return filepath.Join(l.dir, filepath.FromSlash(key)), nil
}

// Put writes to a temporary file in the target directory, fsyncs it, then links it into
// place — link, unlike rename, fails when the target exists, so an object is never
// overwritten — and fsyncs the directory so the new name survives a crash.
func (l *Local) Put(ctx context.Context, key string, r io.Reader, size int64, _ string) error {
	dir, err := l.link(ctx, key, r, size)
	if err != nil {
		return err
	}
	return syncDir(dir)
}

// PutMany writes new objects as Put does, several at a time, but fsyncs each directory they
// go to once for the whole batch (chunks of one owner share a directory: one directory fsync
// instead of one per chunk). A key that already holds an object is left as it is and counts
// as written: a batch is for keys written once, so such an object can only be the same
// bytes from an earlier attempt of the same writer.
func (l *Local) PutMany(ctx context.Context, items []PutItem) error {
	var (
		mu    sync.Mutex
		dirs  = map[string]struct{}{}
		first error
		wg    sync.WaitGroup
		sem   = make(chan struct{}, dirSyncers)
	)
	for _, it := range items {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			dir, err := l.link(ctx, it.Key, bytes.NewReader(it.Data), int64(len(it.Data)))
			if errors.Is(err, ErrExists) {
				err = nil
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil && first == nil {
				first = err
			}
			if dir != "" {
				dirs[dir] = struct{}{}
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return first
	}
	for dir := range dirs {
		if err := syncDir(dir); err != nil {
			return err
		}
	}
	return nil
}

// link writes r to a temporary file in key's directory, fsyncs it and links it into place,
// returning the directory (to fsync, which makes the new name durable).
func (l *Local) link(ctx context.Context, key string, r io.Reader, size int64) (dir string, err error) {
	p, err := l.path(key)
	if err != nil {
		return "", err
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	dir = filepath.Dir(p)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", fmt.Errorf("blob: %w", err)
	}
	if _, err := os.Lstat(p); err == nil {
		return dir, ErrExists
	}
	f, err := os.CreateTemp(dir, tempPrefix+"*")
	if err != nil {
		return "", fmt.Errorf("blob: %w", err)
	}
	tmp := f.Name()
	defer func() {
		if f != nil {
			_ = f.Close()
		}
		_ = os.Remove(tmp)
	}()
	n, err := io.Copy(f, r)
	if err != nil {
		return "", fmt.Errorf("blob: writing %s: %w", key, err)
	}
	if n != size {
		return "", fmt.Errorf("blob: writing %s: got %d bytes, want %d", key, n, size)
	}
	if err := f.Sync(); err != nil {
		return "", fmt.Errorf("blob: syncing %s: %w", key, err)
	}
	cerr := f.Close()
	f = nil
	if cerr != nil {
		return "", fmt.Errorf("blob: closing %s: %w", key, cerr)
	}
	if err := os.Link(tmp, p); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return dir, ErrExists
		}
		return "", fmt.Errorf("blob: %w", err)
	}
	return dir, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("blob: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("blob: syncing %s: %w", dir, err)
	}
	return nil
}

// Get opens the file under key.
func (l *Local) Get(ctx context.Context, key string) (io.ReadCloser, Object, error) {
	p, err := l.path(key)
	if err != nil {
		return nil, Object{}, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, Object{}, ErrNotFound
	}
	if err != nil {
		return nil, Object{}, fmt.Errorf("blob: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, Object{}, fmt.Errorf("blob: %w", err)
	}
	return f, Object{Key: key, Size: st.Size(), Modified: st.ModTime()}, nil
}

// Delete removes the file under key and fsyncs its directory, so that a deletion reported
// done survives a crash. Emptied directories are left in place: removing them would race
// with a concurrent Put into the same directory.
func (l *Local) Delete(ctx context.Context, key string) error {
	return l.DeleteMany(ctx, []string{key})
}

// dirSyncers bounds how many directory fsyncs DeleteMany has in flight. The filesystem's
// journal commits concurrent fsyncs together, so a batch spread over many directories costs
// a few journal commits instead of one per directory.
const dirSyncers = 16

// DeleteMany removes the files under keys, then fsyncs each directory they were in once
// (several at a time): the durable deletion of a batch costs one fsync per directory, not
// one per file. Missing files are not an error.
func (l *Local) DeleteMany(ctx context.Context, keys []string) error {
	paths := make([]string, len(keys))
	for i, key := range keys {
		p, err := l.path(key)
		if err != nil {
			return err // before anything is deleted
		}
		paths[i] = p
	}
	dirs := map[string]struct{}{}
	for _, p := range paths {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("blob: %w", err)
		}
		dirs[filepath.Dir(p)] = struct{}{}
	}
	sem := make(chan struct{}, dirSyncers)
	errs := make(chan error, len(dirs))
	for dir := range dirs {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			err := syncDir(dir)
			if errors.Is(err, fs.ErrNotExist) {
				err = nil // nothing was ever stored there
			}
			errs <- err
		}()
	}
	var err error
	for range dirs {
		err = errors.Join(err, <-errs)
	}
	return err
}

// List walks the directory tree under prefix, skipping temporary files.
func (l *Local) List(ctx context.Context, prefix string, olderThan time.Time) iter.Seq2[Object, error] {
	return func(yield func(Object, error) bool) {
		if prefix != "" {
			if err := ValidKey(strings.TrimSuffix(prefix, "/")); err != nil {
				yield(Object{}, err)
				return
			}
		}
		// Walk from the deepest directory the prefix names, then filter by the full prefix.
		err := l.walkFiles(ctx, prefix, false, func(p string, info fs.FileInfo) error {
			rel, err := filepath.Rel(l.dir, p)
			if err != nil {
				return err
			}
			key := filepath.ToSlash(rel)
			if !strings.HasPrefix(key, prefix) {
				return nil
			}
			if !olderThan.IsZero() && !info.ModTime().Before(olderThan) {
				return nil
			}
			if !yield(Object{Key: key, Size: info.Size(), Modified: info.ModTime()}, nil) {
				return fs.SkipAll
			}
			return nil
		})
		if err != nil {
			yield(Object{}, fmt.Errorf("blob: listing %q: %w", prefix, err))
		}
	}
}

// walkFiles calls visit with every file under the deepest directory that prefix names
// whose name marks it temporary (temp) or not: List walks the blobs, SweepLeftovers the
// temporary files. Missing directories and files removed while walking are skipped; visit
// may return fs.SkipAll.
func (l *Local) walkFiles(ctx context.Context, prefix string, temp bool, visit func(path string, info fs.FileInfo) error) error {
	root := l.dir
	if i := strings.LastIndex(prefix, "/"); i >= 0 {
		root = filepath.Join(l.dir, filepath.FromSlash(prefix[:i]))
	}
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() && p != root {
			// Skip directories no key under prefix can be in (a prefix may end mid-segment).
			rel, err := filepath.Rel(l.dir, p)
			if err != nil {
				return err
			}
			dir := filepath.ToSlash(rel) + "/"
			if !strings.HasPrefix(dir, prefix) && !strings.HasPrefix(prefix, dir) {
				return fs.SkipDir
			}
		}
		if d.IsDir() || strings.HasPrefix(d.Name(), tempPrefix) != temp {
			return nil
		}
		info, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil // removed while walking (a Put finished or failed, a delete ran)
		}
		if err != nil {
			return err
		}
		return visit(p, info)
	})
}
