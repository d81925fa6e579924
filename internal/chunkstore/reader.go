package chunkstore

import (
	"context"
	"io"
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
// A missing object is an error wrapping blob.ErrNotFound; bytes that do not match their
// hash, one wrapping ErrCorrupt.
func (s *Store) ReadAll(ctx context.Context, owner string, m Manifest, dst []byte) ([]byte, error) {
	f := s.Owner(owner)
	var stored, data []byte
	for _, ref := range m.Refs {
		var err error
		if stored, err = f.FetchChunk(ctx, ref, stored); err != nil {
			return nil, err
		}
		if data, err = s.codec.Decode(data, stored, ref); err != nil {
			return nil, err
		}
		dst = append(dst, data...)
	}
	return dst, nil
}
