package chunkstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/m4sh/backend/internal/blob"
)

// KeyPrefix starts the blob key of every chunk stored as an object of its own (before
// packs), PackPrefix that of every pack; the orphan sweep lists both.
const (
	KeyPrefix  = "chunks/"
	PackPrefix = "packs/"
)

// PackKey is the blob key of one pack, an object holding the stored bytes of the chunks one
// upload added, one after another:
//
//	packs/<owner prefix>/<pack id>
//
// The pack id (the snapshot_packs row, from its sequence) is never reused, so a key is
// written once.
func PackKey(owner string, packID int64) string {
	return PackPrefix + OwnerPrefix(owner) + "/" + strconv.FormatInt(packID, 10)
}

// ParsePackKey gives the pack id of a pack key.
func ParsePackKey(key string) (int64, error) {
	parts := strings.Split(key, "/")
	if len(parts) != 3 || parts[0]+"/" != PackPrefix || len(parts[1]) != 32 {
		return 0, fmt.Errorf("%w: pack key %q", ErrCorrupt, key)
	}
	id, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil || id <= 0 || strconv.FormatInt(id, 10) != parts[2] {
		return 0, fmt.Errorf("%w: pack key %q", ErrCorrupt, key)
	}
	return id, nil
}

// OwnerPrefix is the key segment for an owner: 32 hex digits of a SHA-256 of the user id,
// so any user id (which may hold characters keys do not allow) maps to a valid segment and
// keys do not show who owns them.
func OwnerPrefix(owner string) string {
	h := sha256.Sum256([]byte("m4sh chunk owner\x00" + owner))
	return hex.EncodeToString(h[:16])
}

// Key is the blob key of one stored chunk:
//
//	chunks/<owner prefix>/<hash>-<chunk id>
//
// The chunk id (the snapshot_chunks row, from its sequence) makes every key written once:
// when GC frees a chunk and a later upload stores the same bytes again, the new row has a
// new id and so a new key, and the pending deletion of the old key cannot touch it. All of
// an owner's chunks share one directory of the local store: an upload or a GC batch then
// fsyncs that directory once per owner, not once per chunk (measured in BENCHMARKS.md: a
// fan-out by hash prefix made GC of 100k chunked revisions fsync ~100k directories).
func Key(owner string, h Hash, chunkID int64) string {
	return KeyPrefix + OwnerPrefix(owner) + "/" + h.String() + "-" + strconv.FormatInt(chunkID, 10)
}

// ParseKey splits a chunk key into its owner prefix, hash and chunk id.
func ParseKey(key string) (ownerPrefix string, h Hash, chunkID int64, err error) {
	parts := strings.Split(key, "/")
	bad := fmt.Errorf("%w: chunk key %q", ErrCorrupt, key)
	if len(parts) != 3 || parts[0]+"/" != KeyPrefix || len(parts[1]) != 32 {
		return "", h, 0, bad
	}
	hs, ids, ok := strings.Cut(parts[2], "-")
	if !ok {
		return "", h, 0, bad
	}
	if h, err = ParseHash(hs); err != nil {
		return "", h, 0, bad
	}
	if chunkID, err = strconv.ParseInt(ids, 10, 64); err != nil || chunkID <= 0 || strconv.FormatInt(chunkID, 10) != ids {
		return "", h, 0, bad
	}
	return parts[1], h, chunkID, nil
}

// Store writes and reads one owner's chunks in a blob.Store.
type Store struct {
	blobs blob.Store
	codec *Codec
}

// NewStore returns a Store over blobs using codec.
func NewStore(blobs blob.Store, codec *Codec) *Store {
	return &Store{blobs: blobs, codec: codec}
}

// contentType of chunk objects: the bytes mean something only with their manifest.
const contentType = "application/octet-stream"

// Put writes a chunk's stored bytes under Key(owner, c.Ref.Hash, chunkID). The key is new
// for every chunk id, so an existing object there can only be this chunk written by an
// earlier attempt of the same upload: that is success, not a conflict.
func (s *Store) Put(ctx context.Context, owner string, chunkID int64, c *Chunk) error {
	key := Key(owner, c.Ref.Hash, chunkID)
	err := s.blobs.Put(ctx, key, bytes.NewReader(c.Stored), int64(len(c.Stored)), contentType)
	if err != nil && !errors.Is(err, blob.ErrExists) {
		return fmt.Errorf("storing chunk: %w", err)
	}
	return nil
}

// PutBatch writes chunks (stored bytes set) under Key(owner, hash, ids[i]), in one
// blob.PutAll: the local store fsyncs the owner's directory once for the batch. As with Put,
// an object already under a key is this chunk from an earlier attempt: success.
func (s *Store) PutBatch(ctx context.Context, owner string, ids []int64, chunks []*Chunk) error {
	items := make([]blob.PutItem, len(chunks))
	for i, c := range chunks {
		items[i] = blob.PutItem{Key: Key(owner, c.Ref.Hash, ids[i]), Data: c.Stored}
	}
	if err := blob.PutAll(ctx, s.blobs, items, contentType, putConcurrency); err != nil {
		return fmt.Errorf("storing chunks: %w", err)
	}
	return nil
}

// PutPack writes a pack: the stored bytes of chunks, one after another, as the one object
// PackKey(owner, packID), and returns each chunk's offset in it. One object per upload
// instead of one per chunk: the local store writes and fsyncs one file (and its directory
// once), S3 takes one request. An object already under the key is this pack from an earlier
// attempt: success.
func (s *Store) PutPack(ctx context.Context, owner string, packID int64, chunks []*Chunk) ([]int64, error) {
	offsets := make([]int64, len(chunks))
	segs := make([][]byte, len(chunks))
	var n int64
	for i, c := range chunks {
		offsets[i] = n
		segs[i] = c.Stored
		n += int64(len(c.Stored))
	}
	err := s.blobs.Put(ctx, PackKey(owner, packID), newSegmentReader(segs), n, contentType)
	if err != nil && !errors.Is(err, blob.ErrExists) {
		return nil, fmt.Errorf("storing pack: %w", err)
	}
	return offsets, nil
}

// putConcurrency bounds the Puts of a batch on a store without PutMany (S3: one request
// each).
const putConcurrency = 8

// Fetcher gives the stored bytes of a revision's chunks; a Reader asks for them in order.
type Fetcher interface {
	// FetchChunk returns the stored bytes of ref, appended to dst[:0].
	FetchChunk(ctx context.Context, ref Ref, dst []byte) ([]byte, error)
}

// Owner returns the Fetcher for one owner's chunks in s.
func (s *Store) Owner(owner string) Fetcher { return ownerFetcher{s: s, owner: owner} }

type ownerFetcher struct {
	s     *Store
	owner string
}

// FetchChunk reads the object under the chunk's key, refusing one of the wrong size before
// reading it (the size comes from the object's metadata), so a read never buffers more than
// ref.StoredSize bytes.
func (f ownerFetcher) FetchChunk(ctx context.Context, ref Ref, dst []byte) ([]byte, error) {
	if ref.Pack != 0 {
		got, err := f.s.fetchPacks(ctx, f.owner, []Ref{ref})
		if err != nil {
			return nil, err
		}
		return append(dst[:0], got[span{ref.Pack, ref.Offset}]...), nil
	}
	rc, obj, err := f.s.blobs.Get(ctx, Key(f.owner, ref.Hash, ref.ChunkID))
	if err != nil {
		return nil, fmt.Errorf("opening chunk %d: %w", ref.ChunkID, err)
	}
	defer rc.Close()
	if obj.Size != ref.StoredSize {
		return nil, fmt.Errorf("%w: chunk %d has %d bytes, want %d", ErrCorrupt, ref.ChunkID, obj.Size, ref.StoredSize)
	}
	// One read of the size the object has (checked above): no second read to find EOF; the
	// bytes' hash is checked by the decoder anyway.
	buf := slices.Grow(dst[:0], int(ref.StoredSize))[:ref.StoredSize]
	if _, err := io.ReadFull(rc, buf); err != nil {
		return nil, fmt.Errorf("reading chunk %d: %w", ref.ChunkID, err)
	}
	return buf, nil
}

// Open returns a reader of the revision m of owner (see NewReader).
func (s *Store) Open(ctx context.Context, owner string, m Manifest) io.Reader {
	return NewReader(ctx, s.codec, s.Owner(owner), m)
}
