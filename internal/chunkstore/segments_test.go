package chunkstore

import (
	"bytes"
	"encoding/base64"
	"io"
	"math/rand/v2"
	"testing"
)

// TestSegmentReader reads, copies and seeks a stream of segments (some empty) and gets the
// bytes of their concatenation from every position.
func TestSegmentReader(t *testing.T) {
	segs := [][]byte{nil, []byte("abc"), {}, []byte("d"), []byte("efgh"), {}}
	want := []byte("abcdefgh")
	for pos := int64(0); pos <= int64(len(want)); pos++ {
		r := newSegmentReader(segs)
		if got, err := r.Seek(pos, io.SeekStart); err != nil || got != pos {
			t.Fatalf("Seek(%d) = %d, %v", pos, got, err)
		}
		var out bytes.Buffer
		if _, err := io.Copy(&out, r); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out.Bytes(), want[pos:]) {
			t.Fatalf("from %d: WriteTo gave %q, want %q", pos, out.Bytes(), want[pos:])
		}
		if _, err := r.Seek(pos-int64(len(want)), io.SeekEnd); err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(io.LimitReader(struct{ io.Reader }{r}, 100)) // Read only: the wrapper hides WriteTo
		if err != nil || !bytes.Equal(got, want[pos:]) {
			t.Fatalf("from %d: Read gave %q, %v; want %q", pos, got, err, want[pos:])
		}
	}
	r := newSegmentReader(segs)
	if _, err := r.Seek(9, io.SeekStart); err == nil {
		t.Fatal("Seek past the end succeeded")
	}
	if _, err := r.Seek(-1, io.SeekCurrent); err == nil {
		t.Fatal("Seek before the start succeeded")
	}
}

// TestIncompressible: random bytes are recognised (and stored raw without compressing);
// the scene's chunks, base64 and text are not, and compress as before.
func TestIncompressible(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, MaxChunkSize)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	for _, n := range []int{entropySamples, 4 << 10, 16 << 10, MaxChunkSize} {
		if !Incompressible(random[:n]) {
			t.Errorf("%d random bytes: not recognised as incompressible", n)
		}
	}
	if Incompressible(random[:entropySamples-1]) {
		t.Error("a chunk shorter than the sample is not tried")
	}
	b64 := []byte(base64.StdEncoding.EncodeToString(random))
	text := bytes.Repeat([]byte("the quick brown fox jumps over the lazy dog. "), 400)
	for name, data := range map[string][]byte{"base64": b64[:16<<10], "text": text} {
		if Incompressible(data) {
			t.Errorf("%s: called incompressible", name)
		}
	}
	b := setup(t)
	scene := autosaves(1, 1)[0]
	var chunks, zstd int
	if _, err := b.codec.Split(bytes.NewReader(scene), func(c *Chunk) error {
		chunks++
		if Incompressible(c.Data) {
			t.Errorf("a scene chunk of %d bytes called incompressible", len(c.Data))
		}
		if c.Ref.Encoding == EncodingZstd {
			zstd++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if zstd != chunks {
		t.Errorf("%d of the scene's %d chunks compressed, want all", zstd, chunks)
	}
	stored, enc := b.codec.Encode(nil, random)
	if enc != EncodingRaw || &stored[0] != &random[0] {
		t.Errorf("random chunk: encoding %v, stored its own bytes: %v", enc, &stored[0] == &random[0])
	}
}
