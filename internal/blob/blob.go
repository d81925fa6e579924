// Package blob stores immutable byte objects under string keys. The Store interface is
// shaped after S3 (put a whole object, get, delete, list by prefix) so that the local
// directory backend here and an S3 backend are interchangeable; keys are never overwritten.
package blob

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"strings"
	"time"
)

// Errors returned by every Store.
var (
	// ErrNotFound: no object under the key.
	ErrNotFound = errors.New("blob: not found")
	// ErrExists: Put on a key that already holds an object; the existing object is kept.
	ErrExists = errors.New("blob: key already exists")
	// ErrInvalidKey: the key is not of the form Store accepts (see ValidKey).
	ErrInvalidKey = errors.New("blob: invalid key")
)

// Object describes a stored object.
type Object struct {
	Key      string
	Size     int64
	Modified time.Time
}

// Store is a blob store.
type Store interface {
	// Put stores the size bytes read from r under key, atomically: readers see the whole
	// object or none. contentType describes the bytes to stores that keep it (S3); the
	// database row stays the record of it. It returns ErrExists when key is taken and
	// ErrInvalidKey for a bad key.
	Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error
	// Get opens the object under key; ErrNotFound when there is none. The caller closes it.
	Get(ctx context.Context, key string) (io.ReadCloser, Object, error)
	// Delete removes the object under key. Deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// List yields the objects whose key starts with prefix and that were last modified
	// before olderThan (the zero time: all of them), in no particular order.
	List(ctx context.Context, prefix string, olderThan time.Time) iter.Seq2[Object, error]
}

// ValidKey reports whether key is acceptable to every backend: 1..512 bytes of
// [A-Za-z0-9._-] in '/'-separated segments, none empty, "." or "..", and none starting
// with '.' (the local backend keeps its temporary files there).
func ValidKey(key string) error {
	if key == "" || len(key) > 512 {
		return fmt.Errorf("%w: length %d", ErrInvalidKey, len(key))
	}
	for _, seg := range strings.Split(key, "/") {
		if seg == "" || seg[0] == '.' {
			return fmt.Errorf("%w: %q", ErrInvalidKey, key)
		}
		for _, c := range []byte(seg) {
			ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
			if !ok {
				return fmt.Errorf("%w: %q", ErrInvalidKey, key)
			}
		}
	}
	return nil
}

// BatchDeleter is a Store that deletes many objects for less than a Delete each (the local
// store fsyncs each directory once per batch rather than once per file).
type BatchDeleter interface {
	// DeleteMany removes the objects under keys; missing keys are not an error.
	DeleteMany(ctx context.Context, keys []string) error
}

// DeleteAll deletes the objects under keys, in one DeleteMany when s has it.
func DeleteAll(ctx context.Context, s Store, keys []string) error {
	if b, ok := s.(BatchDeleter); ok {
		return b.DeleteMany(ctx, keys)
	}
	for _, key := range keys {
		if err := s.Delete(ctx, key); err != nil {
			return err
		}
	}
	return nil
}

// PutItem is one object of a PutMany batch.
type PutItem struct {
	Key  string
	Data []byte
}

// BatchPutter is a Store that writes many new objects for less than a Put each (the local
// store fsyncs each directory once per batch rather than once per file).
type BatchPutter interface {
	// PutMany stores each item under its key; a key that already holds an object is left
	// as it is and counts as written (see Local.PutMany).
	PutMany(ctx context.Context, items []PutItem) error
}

// PutAll stores items, in one PutMany when s has it, otherwise with up to concurrency Puts at
// once; either way a key that already holds an object counts as written.
func PutAll(ctx context.Context, s Store, items []PutItem, contentType string, concurrency int) error {
	if b, ok := s.(BatchPutter); ok {
		return b.PutMany(ctx, items)
	}
	sem := make(chan struct{}, max(concurrency, 1))
	errs := make(chan error, len(items))
	for _, it := range items {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			err := s.Put(ctx, it.Key, bytes.NewReader(it.Data), int64(len(it.Data)), contentType)
			if errors.Is(err, ErrExists) {
				err = nil
			}
			errs <- err
		}()
	}
	var err error
	for range items {
		err = errors.Join(err, <-errs)
	}
	return err
}
