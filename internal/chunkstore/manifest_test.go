package chunkstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/m4sh/backend/internal/blob"
)

func sampleManifest(r *rand.Rand, n int) Manifest {
	var m Manifest
	for i := range n {
		size := int64(1 + r.IntN(MaxChunkSize))
		ref := Ref{ChunkID: int64(1 + r.Uint32()), Size: size, StoredSize: size, Encoding: EncodingRaw}
		if i%2 == 0 && size > 1 {
			ref.StoredSize, ref.Encoding = int64(1+r.IntN(int(size-1))), EncodingZstd
		}
		ref.Hash = sha256.Sum256([]byte{byte(i), byte(i >> 8)})
		if i%3 != 0 {
			ref.Pack, ref.Offset = int64(1+r.Uint32()), int64(r.IntN(1<<20))
		}
		m.Refs = append(m.Refs, ref)
	}
	return m
}

// TestManifestRoundTrip: encoding and decoding gives back every ref; appending the records
// of a second manifest to the first (as SQL's || would) decodes as both in order.
func TestManifestRoundTrip(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(20, 21))
	for _, n := range []int{0, 1, 2, 64, 1280} {
		m := sampleManifest(r, n)
		b, err := m.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var got Manifest
		if err := got.UnmarshalBinary(b); err != nil {
			t.Fatalf("UnmarshalBinary(%d refs): %v", n, err)
		}
		if len(got.Refs) != n || (n > 0 && !slices.Equal(got.Refs, m.Refs)) {
			t.Fatalf("%d refs: got %d back, or different ones", n, len(got.Refs))
		}
		if n == 64 && len(b) > 1+64*(32+5+3+3+1+5+3) {
			t.Fatalf("64 refs take %d bytes", len(b))
		}
		tail := sampleManifest(r, 3)
		joined := b
		for _, ref := range tail.Refs {
			joined = AppendRef(joined, ref)
		}
		if err := got.UnmarshalBinary(joined); err != nil || !slices.Equal(got.Refs, append(append([]Ref(nil), m.Refs...), tail.Refs...)) {
			t.Fatalf("appended manifest of %d+3 refs: %v", n, err)
		}
	}
}

// TestManifestRejectsCorrupt: every truncation of a valid manifest, a wrong version and
// refs that break the encoding rules are ErrCorrupt, never a panic or a wrong manifest.
func TestManifestRejectsCorrupt(t *testing.T) {
	t.Parallel()
	m := sampleManifest(rand.New(rand.NewPCG(22, 23)), 5)
	b, _ := m.MarshalBinary()
	record := func(r Ref) []byte { return AppendRef([]byte{manifestV2}, r) }
	h := sha256.Sum256(nil)
	cases := map[string][]byte{
		"empty":             nil,
		"version 3":         append([]byte{3}, b[1:]...),
		"v2 records as v1":  append([]byte{manifestV1}, b[1:]...),
		"unknown encoding":  record(Ref{Hash: h, ChunkID: 1, Size: 10, StoredSize: 5, Encoding: 7}),
		"raw but smaller":   record(Ref{Hash: h, ChunkID: 1, Size: 10, StoredSize: 5, Encoding: EncodingRaw}),
		"zstd but as large": record(Ref{Hash: h, ChunkID: 1, Size: 10, StoredSize: 10, Encoding: EncodingZstd}),
		"chunk too large":   record(Ref{Hash: h, ChunkID: 1, Size: MaxChunkSize + 1, StoredSize: MaxChunkSize + 1}),
		"zero size":         record(Ref{Hash: h, ChunkID: 1}),
		"no chunk id":       record(Ref{Hash: h, Size: 10, StoredSize: 10}),
	}
	for cut := 1; cut < len(b); cut++ {
		var probe Manifest
		err := probe.UnmarshalBinary(b[:cut])
		switch {
		case err == nil && !slices.Equal(probe.Refs, m.Refs[:len(probe.Refs)]):
			// Only a cut exactly between records decodes: a shorter valid manifest.
			t.Fatalf("truncated at %d: decoded %d wrong refs", cut, len(probe.Refs))
		case err != nil && !errors.Is(err, ErrCorrupt):
			t.Fatalf("truncated at %d: %v, want ErrCorrupt", cut, err)
		}
	}
	for name, in := range cases {
		var got Manifest
		if err := got.UnmarshalBinary(in); !errors.Is(err, ErrCorrupt) {
			t.Errorf("UnmarshalBinary(%s) = %v, want ErrCorrupt", name, err)
		}
	}
}

// TestKeys: keys are valid blob keys, parse back, differ per owner and per chunk id, and
// malformed keys are refused.
func TestKeys(t *testing.T) {
	t.Parallel()
	h := Hash(sha256.Sum256([]byte("chunk")))
	for _, owner := range []string{"alice", "user|with/odd chars\x00", ""} {
		k := Key(owner, h, 42)
		if err := blob.ValidKey(k); err != nil {
			t.Fatalf("Key(%q) = %q: %v", owner, k, err)
		}
		op, gh, id, err := ParseKey(k)
		if err != nil || op != OwnerPrefix(owner) || gh != h || id != 42 {
			t.Fatalf("ParseKey(%q) = %q, %v, %d, %v", k, op, gh, id, err)
		}
	}
	if Key("alice", h, 1) == Key("bob", h, 1) || Key("alice", h, 1) == Key("alice", h, 2) {
		t.Fatal("keys collide across owners or chunk ids")
	}
	good := Key("alice", h, 7)
	for _, bad := range []string{"", "solo/x/y", good + "x", good[:len(good)-2] + "-0", good[:len(good)-2] + "-07",
		"chunks/" + OwnerPrefix("a") + "/" + h.String()[:2] + "/" + h.String() + "-1", "chunks/short/" + h.String() + "-1",
		"chunks/" + OwnerPrefix("a") + "/" + h.String()[:62] + "-1"} {
		if _, _, _, err := ParseKey(bad); !errors.Is(err, ErrCorrupt) {
			t.Errorf("ParseKey(%q) = %v, want ErrCorrupt", bad, err)
		}
	}
}

// TestReaderRefusesCorruptChunks: a stored chunk that was altered, truncated or replaced
// ends the read with ErrCorrupt; a hostile zstd frame cannot make Decode allocate past a
// chunk.
func TestReaderRefusesCorruptChunks(t *testing.T) {
	t.Parallel()
	b := setup(t)
	o := newOwners()
	scene := autosaves(30, 1)[0][:200_000]
	m, _, _ := b.upload(t, o, "dave", bytes.NewReader(scene))
	ref := m.Refs[1]
	path := filepath.Join(b.dir, filepath.FromSlash(Key("dave", ref.Hash, ref.ChunkID)))
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	flipped := bytes.Clone(orig)
	flipped[len(flipped)/2] ^= 0x40
	other := bytes.Clone(orig)
	other[0] ^= 1
	for name, content := range map[string][]byte{"flipped": flipped, "truncated": orig[:len(orig)-1], "other": other} {
		if err := os.WriteFile(path, content, 0o600); err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(io.Discard, b.store.Open(context.Background(), "dave", m))
		if !errors.Is(err, ErrCorrupt) || n != m.Refs[0].Size {
			t.Fatalf("%s chunk: read %d bytes, %v; want the first chunk's %d bytes, then ErrCorrupt", name, n, err, m.Refs[0].Size)
		}
	}
	// A frame of 4 MiB of zeros (a few hundred bytes stored): refused while decoding.
	bomb := b.codec.enc.EncodeAll(make([]byte, 4<<20), nil)
	_, err = b.codec.Decode(nil, bomb, Ref{Size: MaxChunkSize, StoredSize: int64(len(bomb)), Encoding: EncodingZstd})
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Decode(4 MiB frame) = %v, want ErrCorrupt", err)
	}
}

// TestManifestV1StaysReadable: a manifest written before packs (version 1: no pack, no
// offset) decodes to refs with pack 0 — chunks stored as objects of their own.
func TestManifestV1StaysReadable(t *testing.T) {
	t.Parallel()
	h := sha256.Sum256([]byte("x"))
	want := Ref{Hash: h, ChunkID: 42, Size: 10, StoredSize: 6, Encoding: EncodingZstd}
	b := append([]byte{manifestV1}, h[:]...)
	b = binary.AppendUvarint(b, 42)
	b = binary.AppendUvarint(b, 10)
	b = binary.AppendUvarint(b, 6)
	b = append(b, byte(EncodingZstd))
	var m Manifest
	if err := m.UnmarshalBinary(b); err != nil || len(m.Refs) != 1 || m.Refs[0] != want {
		t.Fatalf("v1 manifest = %+v, %v; want %+v", m.Refs, err, want)
	}
}
