package chunkstore

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
)

// Reader streams a revision's exact bytes from its manifest, one chunk at a time: it
// fetches a chunk, checks and decodes it, and hands it out before fetching the next, so it
// holds at most one stored and one decoded chunk. A chunk whose bytes do not match its hash
// ends the stream with an error wrapping ErrCorrupt, never with wrong bytes.
type Reader struct {
	ctx    context.Context
	codec  *Codec
	fetch  Fetcher
	refs   []Ref
	stored []byte
	data   []byte // the current chunk's undelivered bytes
	buf    []byte // backing array of data, reused
	err    error
}

// NewReader returns a Reader of m fetching through f.
func NewReader(ctx context.Context, codec *Codec, f Fetcher, m Manifest) *Reader {
	return &Reader{ctx: ctx, codec: codec, fetch: f, refs: m.Refs}
}

// Read implements io.Reader.
func (r *Reader) Read(p []byte) (int, error) {
	for len(r.data) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		if len(r.refs) == 0 {
			r.err = io.EOF
			return 0, io.EOF
		}
		if err := r.next(); err != nil {
			r.err = err
			return 0, err
		}
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

// WriteTo implements io.WriterTo, so io.Copy hands whole chunks to w without another copy.
func (r *Reader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		if len(r.data) == 0 {
			if r.err != nil {
				if r.err == io.EOF {
					return total, nil
				}
				return total, r.err
			}
			if len(r.refs) == 0 {
				r.err = io.EOF
				continue
			}
			if err := r.next(); err != nil {
				r.err = err
				continue
			}
		}
		n, err := w.Write(r.data)
		total += int64(n)
		r.data = r.data[n:]
		if err != nil {
			return total, err
		}
	}
}

func (r *Reader) next() error {
	ref := r.refs[0]
	stored, err := r.fetch.FetchChunk(r.ctx, ref, r.stored)
	if err != nil {
		return err
	}
	r.stored = stored
	data, err := r.codec.Decode(r.buf, stored, ref)
	if err != nil {
		return err
	}
	r.buf, r.data, r.refs = data, data, r.refs[1:]
	return nil
}

// ReadAll appends the revision m of owner to dst and returns it: every chunk fetched,
// checked against its hash and decoded before the caller sends a byte, so a reader never
// answers with a body that ends short (a missing chunk is an error before the first byte).
// Packed chunks are fetched one Get per pack (fetchPacks), a chunk of its own one Get each. A
// missing object is an error wrapping blob.ErrNotFound; bytes that do not match their hash
// or lie outside their pack, one wrapping ErrCorrupt.
func (s *Store) ReadAll(ctx context.Context, owner string, m Manifest, dst []byte) ([]byte, error) {
	packed, err := s.fetchPacks(ctx, owner, m.Refs)
	if err != nil {
		return nil, err
	}
	f := s.Owner(owner)
	var own, data []byte
	for _, ref := range m.Refs {
		stored := packed[span{ref.Pack, ref.Offset}]
		if ref.Pack == 0 {
			if own, err = f.FetchChunk(ctx, ref, own); err != nil {
				return nil, err
			}
			stored = own
		}
		if data, err = s.codec.Decode(data, stored, ref); err != nil {
			return nil, err
		}
		dst = append(dst, data...)
	}
	return dst, nil
}

// span is where a packed chunk's stored bytes are.
type span struct{ pack, off int64 }

// fetchPacks reads the stored bytes of every packed ref, one Get per pack: each range with
// ReadAt when the object allows it (a local file), otherwise by reading the object through
// in offset order, skipping the gaps (S3: one GET per pack).
func (s *Store) fetchPacks(ctx context.Context, owner string, refs []Ref) (map[span][]byte, error) {
	byPack := map[int64][]Ref{}
	var order []int64
	for _, r := range refs {
		if r.Pack == 0 {
			continue
		}
		if _, ok := byPack[r.Pack]; !ok {
			order = append(order, r.Pack)
		}
		byPack[r.Pack] = append(byPack[r.Pack], r)
	}
	out := make(map[span][]byte, len(refs))
	for _, p := range order {
		rs := byPack[p]
		slices.SortFunc(rs, func(a, b Ref) int { return cmp.Compare(a.Offset, b.Offset) })
		rc, obj, err := s.blobs.Get(ctx, PackKey(owner, p))
		if err != nil {
			return nil, fmt.Errorf("opening pack %d: %w", p, err)
		}
		err = readSpans(rc, obj.Size, p, rs, out)
		rc.Close()
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// readSpans reads the stored bytes of refs (sorted by offset) from pack's object rc of size
// bytes into out.
func readSpans(rc io.Reader, size, pack int64, refs []Ref, out map[span][]byte) error {
	at, _ := rc.(io.ReaderAt)
	var pos int64
	for _, r := range refs {
		k := span{pack, r.Offset}
		if _, done := out[k]; done {
			continue
		}
		if r.Offset < pos || r.Offset+r.StoredSize > size {
			return fmt.Errorf("%w: chunk %d at %d+%d of pack %d (%d bytes)", ErrCorrupt, r.ChunkID, r.Offset, r.StoredSize, pack, size)
		}
		buf := make([]byte, r.StoredSize)
		var err error
		if at != nil {
			_, err = at.ReadAt(buf, r.Offset)
		} else {
			if _, err = io.CopyN(io.Discard, rc, r.Offset-pos); err == nil {
				_, err = io.ReadFull(rc, buf)
			}
			pos = r.Offset + r.StoredSize
		}
		if err != nil {
			return fmt.Errorf("reading pack %d: %w", pack, err)
		}
		out[k] = buf
	}
	return nil
}
