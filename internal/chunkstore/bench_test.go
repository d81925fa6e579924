package chunkstore

import (
	"bytes"
	"context"
	"io"
	"testing"
)

// BenchmarkSplitScene: chunking, hashing and compressing a 1 MiB scene (what an upload
// spends in CPU before its writes).
func BenchmarkSplitScene(b *testing.B) {
	tb := setup(b)
	scene := autosaves(42, 1)[0]
	b.SetBytes(int64(len(scene)))
	for b.Loop() {
		if _, err := tb.codec.Split(bytes.NewReader(scene), func(*Chunk) error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadScene: reading a 1 MiB scene back from the local blob store through its
// manifest (one Get and one decode per chunk, in order).
func BenchmarkReadScene(b *testing.B) {
	tb := setup(b)
	scene := autosaves(42, 1)[0]
	m, _, _ := tb.upload(b, newOwners(), "bench", bytes.NewReader(scene))
	b.SetBytes(int64(len(scene)))
	for b.Loop() {
		if _, err := io.Copy(io.Discard, tb.store.Open(context.Background(), "bench", m)); err != nil {
			b.Fatal(err)
		}
	}
}
