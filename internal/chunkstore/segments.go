package chunkstore

import (
	"errors"
	"io"
)

// segmentReader reads byte slices one after another as one stream without joining them: a
// pack goes to the blob store straight from its chunks' buffers (io.Copy into a file takes
// WriteTo, one write per chunk) instead of through a copy the size of the pack. It seeks, so
// a store that reads its body twice (the S3 client checksums a seekable body first) can.
type segmentReader struct {
	segs [][]byte
	size int64
	pos  int64 // absolute position in the stream
	i    int   // the segment holding pos (len(segs) at the end)
	off  int   // pos within segs[i]
}

func newSegmentReader(segs [][]byte) *segmentReader {
	r := &segmentReader{segs: segs}
	for _, s := range segs {
		r.size += int64(len(s))
	}
	r.skipEmpty()
	return r
}

// skipEmpty moves past segments that are exhausted (or empty).
func (r *segmentReader) skipEmpty() {
	for r.i < len(r.segs) && r.off == len(r.segs[r.i]) {
		r.i++
		r.off = 0
	}
}

func (r *segmentReader) Read(p []byte) (int, error) {
	if r.i == len(r.segs) {
		return 0, io.EOF
	}
	n := copy(p, r.segs[r.i][r.off:])
	r.off += n
	r.pos += int64(n)
	r.skipEmpty()
	return n, nil
}

// WriteTo writes the rest of the stream to w, a segment (or what is left of one) per Write.
func (r *segmentReader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for r.i < len(r.segs) {
		n, err := w.Write(r.segs[r.i][r.off:])
		r.off += n
		r.pos += int64(n)
		total += int64(n)
		if err != nil {
			return total, err
		}
		r.skipEmpty()
	}
	return total, nil
}

var errSeek = errors.New("chunkstore: seek outside the pack")

func (r *segmentReader) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekCurrent:
		offset += r.pos
	case io.SeekEnd:
		offset += r.size
	}
	if offset < 0 || offset > r.size {
		return r.pos, errSeek
	}
	r.pos, r.i = offset, 0
	for offset > 0 || (r.i < len(r.segs) && len(r.segs[r.i]) == 0) {
		if r.i == len(r.segs) || offset < int64(len(r.segs[r.i])) {
			break
		}
		offset -= int64(len(r.segs[r.i]))
		r.i++
	}
	r.off = int(offset)
	return r.pos, nil
}
