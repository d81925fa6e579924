package chunkstore

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"slices"
	"testing"

	cdc "github.com/PlakarKorp/go-cdc-chunkers"
	"github.com/klauspost/compress/zstd"
)

// libraryCuts is the reference: the chunk lengths the chunkers library cuts data into.
func libraryCuts(t testing.TB, data []byte) []int {
	t.Helper()
	ch, err := cdc.NewChunker(algorithm, bytes.NewReader(data), &cdc.ChunkerOpts{
		MinSize: MinChunkSize, NormalSize: AvgChunkSize, MaxSize: MaxChunkSize,
	})
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for {
		c, err := ch.Next()
		if len(c) > 0 {
			out = append(out, len(c))
		}
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

func cuts(data []byte) []int {
	var out []int
	for len(data) > 0 {
		n := cut(data)
		out = append(out, n)
		data = data[n:]
	}
	return out
}

func TestCutMatchesLibrary(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	cases := map[string][]byte{
		"empty":                     nil,
		"one byte":                  {7},
		"min":                       random(MinChunkSize),
		"min+1":                     random(MinChunkSize + 1),
		"normal":                    random(AvgChunkSize),
		"normal+1":                  random(AvgChunkSize + 1),
		"max":                       random(MaxChunkSize),
		"max+1":                     random(MaxChunkSize + 1),
		"zeros (no cut before max)": make([]byte, 5*MaxChunkSize+123),
		"text":                      bytes.Repeat([]byte("the quick brown fox jumps over the lazy dog. "), 40000),
		"scene":                     sceneLike(rng),
	}
	for i := range 40 {
		cases["random "+string(rune('a'+i%26))+string(rune('0'+i/26))] = random(rng.IntN(3 << 20))
	}
	for name, data := range cases {
		want, got := libraryCuts(t, data), cuts(data)
		if len(want) == 0 && len(got) == 0 {
			continue
		}
		if !slices.Equal(want, got) {
			t.Errorf("%s (%d bytes): cut into %v, the library into %v", name, len(data), got, want)
		}
	}
}

// sceneLike is JSON-ish bytes with long repeated runs, where boundaries fall at the
// limits as often as inside.
func sceneLike(rng *rand.Rand) []byte {
	var b bytes.Buffer
	for b.Len() < 1<<20 {
		if rng.IntN(4) == 0 {
			b.Write(make([]byte, rng.IntN(3*MaxChunkSize)))
		}
		b.WriteString(`{"id":"shape:`)
		for range rng.IntN(200) {
			b.WriteByte(byte('a' + rng.IntN(26)))
		}
		b.WriteString(`","x":12.5,"y":-3},`)
	}
	return b.Bytes()
}

// BenchmarkCut: finding the boundaries of 1 MiB of random bytes, beside the library doing
// the same from a reader, in the same run.
func BenchmarkCut(b *testing.B) {
	data := make([]byte, 1<<20)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	b.Run("library", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			libraryCuts(b, data)
		}
	})
	b.Run("cut", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			cuts(data)
		}
	})
}

// TestSplitBytesMatchesSplitPlain: the in-memory split hands out the chunks (hash, size,
// bytes) and the summary the streaming split does.
func TestSplitBytesMatchesSplitPlain(t *testing.T) {
	c, err := NewCodec(zstd.SpeedFastest)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rng := rand.New(rand.NewPCG(5, 6))
	for _, data := range [][]byte{{1}, sceneLike(rng), make([]byte, 3*MaxChunkSize)} {
		var want, got []Chunk
		collect := func(to *[]Chunk) func(*Chunk) error {
			return func(ch *Chunk) error {
				*to = append(*to, Chunk{Ref: ch.Ref, Data: bytes.Clone(ch.Data)})
				return nil
			}
		}
		wantSum, err := c.SplitPlain(bytes.NewReader(data), collect(&want))
		if err != nil {
			t.Fatal(err)
		}
		gotSum, err := c.SplitBytes(data, collect(&got))
		if err != nil {
			t.Fatal(err)
		}
		if gotSum != wantSum || len(got) != len(want) {
			t.Fatalf("summary %+v (%d chunks), want %+v (%d)", gotSum, len(got), wantSum, len(want))
		}
		for i := range want {
			if got[i].Ref != want[i].Ref || !bytes.Equal(got[i].Data, want[i].Data) {
				t.Fatalf("chunk %d: %+v, want %+v", i, got[i].Ref, want[i].Ref)
			}
		}
	}
}
