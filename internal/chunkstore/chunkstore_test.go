package chunkstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/m4sh/backend/internal/blob"
)

type testBundle struct {
	codec *Codec
	blobs *blob.Local
	dir   string
	store *Store
}

func setup(t testing.TB) *testBundle {
	t.Helper()
	codec, err := NewCodec(zstd.SpeedFastest)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(codec.Close)
	dir := t.TempDir()
	blobs, err := blob.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	return &testBundle{codec: codec, blobs: blobs, dir: dir, store: NewStore(blobs, codec)}
}

// owners plays the part of the snapshot_chunks table for one test: per owner, the chunks
// stored so far by hash, and the next chunk id.
type owners struct {
	chunks map[string]map[Hash]Ref
	nextID int64
}

func newOwners() *owners { return &owners{chunks: map[string]map[Hash]Ref{}} }

// upload stores body for owner as the lifecycle code will: split, reuse the owner's
// existing chunks, write only new ones. It returns the manifest, the stored bytes the
// upload added, and the split summary.
func (b *testBundle) upload(t testing.TB, o *owners, owner string, body io.Reader) (Manifest, int64, Summary) {
	t.Helper()
	if o.chunks[owner] == nil {
		o.chunks[owner] = map[Hash]Ref{}
	}
	known := o.chunks[owner]
	var m Manifest
	var added int64
	sum, err := b.codec.Split(body, func(c *Chunk) error {
		if ref, ok := known[c.Ref.Hash]; ok {
			m.Refs = append(m.Refs, ref)
			return nil
		}
		o.nextID++
		ref := c.Ref
		ref.ChunkID = o.nextID
		if err := b.store.Put(context.Background(), owner, ref.ChunkID, c); err != nil {
			return err
		}
		known[ref.Hash] = ref
		added += ref.StoredSize
		m.Refs = append(m.Refs, ref)
		return nil
	})
	if err != nil {
		t.Fatalf("Split: %v", err)
	}
	return m, added, sum
}

func (b *testBundle) read(t *testing.T, owner string, m Manifest) []byte {
	t.Helper()
	// Through the encoded form, as a revision row holds it.
	enc, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var back Manifest
	if err := back.UnmarshalBinary(enc); err != nil {
		t.Fatalf("UnmarshalBinary: %v", err)
	}
	var out bytes.Buffer
	if _, err := io.Copy(&out, b.store.Open(context.Background(), owner, back)); err != nil {
		t.Fatalf("reading revision: %v", err)
	}
	return out.Bytes()
}

func randomBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// TestRoundTrip: for random, structured and repetitive inputs of sizes around every chunk
// bound, the bytes read back through the manifest are the input, the summary's SHA-256 is
// the input's, chunk sizes keep to their bounds, and the manifest's size is the input's.
func TestRoundTrip(t *testing.T) {
	t.Parallel()
	b := setup(t)
	o := newOwners()
	r := rand.New(rand.NewPCG(1, 2))
	scene := autosaves(7, 1)[0]
	sizes := []int{1, 2, MinChunkSize - 1, MinChunkSize, MinChunkSize + 1, AvgChunkSize, MaxChunkSize - 1, MaxChunkSize,
		MaxChunkSize + 1, 2*MaxChunkSize + 3, 300_001}
	for range 6 {
		sizes = append(sizes, 1+r.IntN(512<<10))
	}
	kinds := map[string]func(n int) []byte{
		"random": func(n int) []byte { return randomBytes(r, n) },
		"scene":  func(n int) []byte { return bytes.Repeat(scene, n/len(scene)+1)[:n] },
		"zeros":  func(n int) []byte { return make([]byte, n) },
		"text":   func(n int) []byte { return []byte(strings.Repeat("integral of x dx = x^2/2 + C; ", n/30+1)[:n]) },
	}
	for kind, gen := range kinds {
		for _, n := range sizes {
			in := gen(n)
			owner := fmt.Sprintf("user-%s-%d", kind, n)
			m, _, sum := b.upload(t, o, owner, bytes.NewReader(in))
			if sum.Size != int64(n) || sum.SHA256 != sha256.Sum256(in) || m.Size() != int64(n) || sum.Chunks != len(m.Refs) {
				t.Fatalf("%s %d: summary %+v, manifest size %d", kind, n, sum, m.Size())
			}
			for i, ref := range m.Refs {
				if ref.Size > MaxChunkSize || (ref.Size < MinChunkSize && i != len(m.Refs)-1) {
					t.Fatalf("%s %d: chunk %d of %d has %d bytes", kind, n, i, len(m.Refs), ref.Size)
				}
			}
			if got := b.read(t, owner, m); !bytes.Equal(got, in) {
				t.Fatalf("%s %d: read back %d bytes that differ from the input", kind, n, len(got))
			}
		}
	}
}

// TestSplitEmpty: an empty stream has no chunks and the SHA-256 of nothing.
func TestSplitEmpty(t *testing.T) {
	t.Parallel()
	b := setup(t)
	sum, err := b.codec.Split(bytes.NewReader(nil), func(*Chunk) error { t.Fatal("chunk from an empty stream"); return nil })
	if err != nil || sum.Size != 0 || sum.Chunks != 0 || sum.SHA256 != sha256.Sum256(nil) {
		t.Fatalf("Split(empty) = %+v, %v", sum, err)
	}
}

// TestAutosavesDedup: 20 autosaves of a 1 MiB scene with ~1 % changed each store at most
// 1.5 MiB in all (the storage target), and every revision reads back exactly.
func TestAutosavesDedup(t *testing.T) {
	t.Parallel()
	b := setup(t)
	o := newOwners()
	revs := autosaves(42, 20)
	var logical, stored int64
	var manifests []Manifest
	for i, rev := range revs {
		m, added, _ := b.upload(t, o, "alice", bytes.NewReader(rev))
		logical += int64(len(rev))
		stored += added
		manifests = append(manifests, m)
		if i > 0 && added > 200<<10 {
			t.Errorf("autosave %d added %d stored bytes, want at most 200 KiB", i+1, added)
		}
	}
	t.Logf("20 autosaves: %d logical bytes, %d stored (%.2f %%)", logical, stored, 100*float64(stored)/float64(logical))
	if stored > 3<<19 {
		t.Fatalf("20 autosaves stored %d bytes, want at most 1.5 MiB", stored)
	}
	if got := dirBytes(t, b.dir); got != stored {
		t.Fatalf("blob store holds %d bytes, accounting says %d", got, stored)
	}
	for i, m := range manifests {
		if got := b.read(t, "alice", m); !bytes.Equal(got, revs[i]) {
			t.Fatalf("revision %d reads back different bytes", i+1)
		}
	}
}

// TestDedupNeverAcrossOwners: the same bytes stored by two owners are two sets of chunks
// under different keys; each owner's revision reads back from its own chunks alone.
func TestDedupNeverAcrossOwners(t *testing.T) {
	t.Parallel()
	b := setup(t)
	o := newOwners()
	scene := autosaves(3, 1)[0]
	mA, addedA, _ := b.upload(t, o, "alice", bytes.NewReader(scene))
	mB, addedB, _ := b.upload(t, o, "bob", bytes.NewReader(scene))
	if addedA == 0 || addedA != addedB {
		t.Fatalf("alice added %d, bob added %d: want the same, non-zero", addedA, addedB)
	}
	for i := range mA.Refs {
		ka, kb := Key("alice", mA.Refs[i].Hash, mA.Refs[i].ChunkID), Key("bob", mB.Refs[i].Hash, mB.Refs[i].ChunkID)
		if ka == kb || strings.Split(ka, "/")[1] == strings.Split(kb, "/")[1] {
			t.Fatalf("chunk %d: keys %q and %q share an owner segment", i, ka, kb)
		}
	}
	if err := os.RemoveAll(filepath.Join(b.dir, "chunks", OwnerPrefix("alice"))); err != nil {
		t.Fatal(err)
	}
	if got := b.read(t, "bob", mB); !bytes.Equal(got, scene) {
		t.Fatal("bob's revision changed when alice's chunks were removed")
	}
	_, err := io.Copy(io.Discard, b.store.Open(context.Background(), "alice", mA))
	if !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("reading alice's revision without her chunks: %v, want blob.ErrNotFound", err)
	}
}

// TestIncompressibleStoredRaw: random bytes are stored raw and cost exactly their size.
func TestIncompressibleStoredRaw(t *testing.T) {
	t.Parallel()
	b := setup(t)
	in := randomBytes(rand.New(rand.NewPCG(5, 6)), 1<<20+12345)
	m, added, _ := b.upload(t, newOwners(), "carol", bytes.NewReader(in))
	if added != int64(len(in)) {
		t.Fatalf("stored %d bytes for %d incompressible bytes", added, len(in))
	}
	for i, ref := range m.Refs {
		if ref.Encoding != EncodingRaw || ref.StoredSize != ref.Size {
			t.Fatalf("chunk %d: %v, stored %d of %d", i, ref.Encoding, ref.StoredSize, ref.Size)
		}
	}
	if got := dirBytes(t, b.dir); got != int64(len(in)) {
		t.Fatalf("blob store holds %d bytes, want %d", got, len(in))
	}
	if got := b.read(t, "carol", m); !bytes.Equal(got, in) {
		t.Fatal("read back differs")
	}
}

// TestEncodeNeverLarger: a chunk's stored form is zstd only when strictly smaller.
func TestEncodeNeverLarger(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := rand.New(rand.NewPCG(8, 9))
	for _, data := range [][]byte{{0}, {1, 2, 3}, randomBytes(r, 100), make([]byte, 100), randomBytes(r, MaxChunkSize)} {
		stored, enc := b.codec.Encode(nil, data)
		switch {
		case enc == EncodingRaw && !bytes.Equal(stored, data):
			t.Fatalf("raw stored form of %d bytes differs from the data", len(data))
		case enc == EncodingZstd && len(stored) >= len(data):
			t.Fatalf("zstd stored form of %d bytes has %d bytes", len(data), len(stored))
		}
	}
}

// aheadReader counts how far Split has read.
type aheadReader struct {
	r    io.Reader
	read int64
}

func (a *aheadReader) Read(p []byte) (int, error) {
	n, err := a.r.Read(p)
	a.read += int64(n)
	return n, err
}

// TestSplitStreams: Split never reads more than 2*MaxChunkSize ahead of the chunks it has
// handed out, and allocates a bounded amount whatever the stream's length (64 MiB here).
func TestSplitStreams(t *testing.T) {
	b := setup(t)
	const total = 64 << 20
	src := &aheadReader{r: io.LimitReader(rand.NewChaCha8([32]byte{10, 11}), total)}
	var handed int64
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	sum, err := b.codec.Split(src, func(c *Chunk) error {
		handed += c.Ref.Size
		if ahead := src.read - handed; ahead > 2*MaxChunkSize {
			return fmt.Errorf("read %d bytes ahead of the chunks handed out", ahead)
		}
		return nil
	})
	runtime.ReadMemStats(&after)
	if err != nil || sum.Size != total {
		t.Fatalf("Split = %+v, %v", sum, err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 8<<20 {
		t.Fatalf("splitting %d bytes allocated %d bytes", total, alloc)
	}
}

// TestBoundariesStableUnderEdit: a small edit in the middle changes only the chunks around
// it: the chunks before and after it are the same chunks.
func TestBoundariesStableUnderEdit(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := rand.New(rand.NewPCG(12, 13))
	scene := autosaves(11, 1)[0]
	hashes := func(in []byte) []Hash {
		var hs []Hash
		if _, err := b.codec.Split(bytes.NewReader(in), func(c *Chunk) error { hs = append(hs, c.Ref.Hash); return nil }); err != nil {
			t.Fatal(err)
		}
		return hs
	}
	orig := hashes(scene)
	for i := range 50 {
		at := len(scene)/4 + r.IntN(len(scene)/2)
		edited := append(append(append([]byte(nil), scene[:at]...), randomBytes(r, 1+r.IntN(200))...), scene[at+r.IntN(200):]...)
		got := hashes(edited)
		prefix := 0
		for prefix < min(len(orig), len(got)) && orig[prefix] == got[prefix] {
			prefix++
		}
		suffix := 0
		for suffix < min(len(orig), len(got))-prefix && orig[len(orig)-1-suffix] == got[len(got)-1-suffix] {
			suffix++
		}
		if changed := len(got) - prefix - suffix; changed > 3 {
			t.Fatalf("edit %d at %d: %d of %d chunks changed, want at most 3", i, at, changed, len(got))
		}
	}
}

func dirBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	err := filepath.WalkDir(filepath.Join(dir, "chunks"), func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err == nil {
			n += fi.Size()
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}
