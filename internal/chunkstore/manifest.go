package chunkstore

import (
	"encoding/binary"
	"fmt"
)

// Ref is one entry of a manifest: a chunk of the revision, in order. StoredSize and
// Encoding repeat what the chunk's row says (they never change while a revision refers to
// it), so a read needs no query per chunk.
type Ref struct {
	Hash       Hash
	ChunkID    int64 // the snapshot_chunks row, part of the blob key
	Size       int64 // logical bytes
	StoredSize int64 // bytes in the blob store
	Encoding   Encoding
	// Pack is the pack object holding the stored bytes at Offset (PackKey); 0: the chunk is
	// an object of its own (Key), as every chunk stored before packs is.
	Pack   int64
	Offset int64
}

// Manifest is a revision as the ordered chunks that make it up.
type Manifest struct {
	Refs []Ref
}

// Size is the revision's logical size.
func (m Manifest) Size() int64 {
	var n int64
	for _, r := range m.Refs {
		n += r.Size
	}
	return n
}

// ChunkIDs returns the distinct chunk ids in first-use order: the references the revision
// holds (a chunk used twice by one revision is referenced once).
func (m Manifest) ChunkIDs() []int64 {
	seen := make(map[int64]bool, len(m.Refs))
	ids := make([]int64, 0, len(m.Refs))
	for _, r := range m.Refs {
		if !seen[r.ChunkID] {
			seen[r.ChunkID] = true
			ids = append(ids, r.ChunkID)
		}
	}
	return ids
}

// manifestV1 is the first byte of a version-1 manifest. Version 1 is that byte followed by
// records until the end, each:
//
//	32 bytes  SHA-256 of the logical bytes
//	uvarint   chunk id
//	uvarint   logical size
//	uvarint   stored size
//	1 byte    encoding
//
// There is no count, so appending records (in Go with AppendRef, in SQL with ||) keeps a
// manifest valid. A 1 MiB revision of 16 KiB chunks takes about 2.5 KiB.
//
// Version 2 (packs) is the same with two more uvarints per record: the pack id (0: an
// object of its own) and the offset of the stored bytes in the pack. Version-1 manifests
// (written before packs) stay readable: their records have pack 0.
const (
	manifestV1 = 1
	manifestV2 = 2
)

// MarshalBinary encodes m in the current version.
func (m Manifest) MarshalBinary() ([]byte, error) {
	b := make([]byte, 1, 1+len(m.Refs)*(32+5*binary.MaxVarintLen32+1))
	b[0] = manifestV2
	for _, r := range m.Refs {
		b = AppendRef(b, r)
	}
	return b, nil
}

// AppendRef appends r's version-2 record to b.
func AppendRef(b []byte, r Ref) []byte {
	b = append(b, r.Hash[:]...)
	b = binary.AppendUvarint(b, uint64(r.ChunkID))
	b = binary.AppendUvarint(b, uint64(r.Size))
	b = binary.AppendUvarint(b, uint64(r.StoredSize))
	b = append(b, byte(r.Encoding))
	b = binary.AppendUvarint(b, uint64(r.Pack))
	return binary.AppendUvarint(b, uint64(r.Offset))
}

// UnmarshalBinary decodes a manifest, checking every record: a known encoding, sizes within
// the chunk bounds, and raw exactly when nothing was saved.
func (m *Manifest) UnmarshalBinary(b []byte) error {
	if len(b) == 0 || (b[0] != manifestV1 && b[0] != manifestV2) {
		return fmt.Errorf("%w: manifest version", ErrCorrupt)
	}
	v2 := b[0] == manifestV2
	refs := m.Refs[:0]
	for p := 1; p < len(b); {
		var r Ref
		if len(b)-p < len(r.Hash) {
			return fmt.Errorf("%w: manifest record %d truncated", ErrCorrupt, len(refs))
		}
		p += copy(r.Hash[:], b[p:])
		var vals [3]uint64
		for i := range vals {
			v, n := binary.Uvarint(b[p:])
			if n <= 0 || v > 1<<62 {
				return fmt.Errorf("%w: manifest record %d truncated", ErrCorrupt, len(refs))
			}
			vals[i] = v
			p += n
		}
		if p >= len(b) {
			return fmt.Errorf("%w: manifest record %d truncated", ErrCorrupt, len(refs))
		}
		r.ChunkID, r.Size, r.StoredSize, r.Encoding = int64(vals[0]), int64(vals[1]), int64(vals[2]), Encoding(b[p])
		p++
		if v2 {
			for i := range 2 {
				v, n := binary.Uvarint(b[p:])
				if n <= 0 || v > 1<<62 {
					return fmt.Errorf("%w: manifest record %d truncated", ErrCorrupt, len(refs))
				}
				vals[i] = v
				p += n
			}
			r.Pack, r.Offset = int64(vals[0]), int64(vals[1])
		}
		if err := r.validate(); err != nil {
			return fmt.Errorf("manifest record %d: %w", len(refs), err)
		}
		refs = append(refs, r)
	}
	m.Refs = refs
	return nil
}

// validate checks what every stored ref satisfies (the snapshot_chunks CHECKs say the same).
func (r Ref) validate() error {
	ok := r.ChunkID > 0 && r.Size >= 1 && r.Size <= MaxChunkSize && r.StoredSize >= 1
	switch r.Encoding {
	case EncodingRaw:
		ok = ok && r.StoredSize == r.Size
	case EncodingZstd:
		ok = ok && r.StoredSize < r.Size
	default:
		ok = false
	}
	if !ok {
		return fmt.Errorf("%w: chunk %s: id %d, size %d, stored %d, %v", ErrCorrupt, r.Hash, r.ChunkID, r.Size, r.StoredSize, r.Encoding)
	}
	return nil
}
