package chunkstore

import (
	"math/bits"

	"github.com/PlakarKorp/go-cdc-chunkers/chunkers/fastcdc"
)

// Cut points of a body already in memory. The chunkers library reads a stream through a
// buffer (a copy of every byte) and tests the size limits at every byte; an upload's body is
// in memory already, and its boundary loop runs once per byte of it, so cut finds the same
// boundaries directly in the body, with the loop split at the normal size. It must agree
// with the library's "fastcdc-v1.0.0" (the algorithm constant) exactly — chunks cut
// differently would no longer deduplicate against the ones stored before — which
// TestCutMatchesLibrary checks on random, repetitive and edge-sized inputs.

// Masks of FastCDC's normalised chunking (level 2) for AvgChunkSize, as the library derives
// them: the first 16 (below the normal size) or 12 (above it) of every 4 bits, from the
// top, are set; a hash with all of them clear ends a chunk.
var (
	maskSmall = spacedMask(bits.Len(AvgChunkSize) - 1 + normalLevel)
	maskLarge = spacedMask(bits.Len(AvgChunkSize) - 1 - normalLevel)
)

const normalLevel = 2

// spacedMask spreads ones set bits evenly over a 64-bit word from its top bit.
func spacedMask(ones int) uint64 {
	step := 64 / ones
	var m uint64
	for i := range ones {
		m |= 1 << (63 - i*step)
	}
	return m
}

// cut returns the length of the chunk that starts data, the rest of a stream: at least
// MinChunkSize bytes (unless fewer remain), at most MaxChunkSize.
func cut(data []byte) int {
	n := len(data)
	if n <= MinChunkSize {
		return n
	}
	n = min(n, MaxChunkSize)
	normal := min(n, AvgChunkSize)
	g := &fastcdc.G
	var fp uint64
	for i, b := range data[MinChunkSize:normal] {
		fp = fp<<1 + g[b]
		if fp&maskSmall == 0 {
			return MinChunkSize + i
		}
	}
	for i, b := range data[normal:n] {
		fp = fp<<1 + g[b]
		if fp&maskLarge == 0 {
			return normal + i
		}
	}
	return n
}
