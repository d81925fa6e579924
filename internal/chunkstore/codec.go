package chunkstore

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"

	cdc "github.com/PlakarKorp/go-cdc-chunkers"
	// Registers the "fastcdc-v1.0.0" algorithm with the chunkers package.
	_ "github.com/PlakarKorp/go-cdc-chunkers/chunkers/fastcdc"
	"github.com/klauspost/compress/zstd"
)

// Chunk sizes, in bytes. A chunk ends where the content says (FastCDC with normalisation
// level 2 aims at AvgChunkSize), never before MinChunkSize bytes (except the last chunk of a
// stream) and never after MaxChunkSize bytes.
const (
	MinChunkSize = 4 << 10
	AvgChunkSize = 16 << 10
	MaxChunkSize = 64 << 10
)

// algorithm names the boundary function. The versioned name pins the cut points: a library
// upgrade cannot move them, so chunks written by older code keep deduplicating.
const algorithm = "fastcdc-v1.0.0"

// Encoding says how a chunk's stored bytes relate to its logical bytes. The numbers are
// stored (manifests, the snapshot_chunks table) and never change meaning.
type Encoding uint8

// Encodings.
const (
	// EncodingRaw: stored as is, because compression did not make the chunk smaller.
	EncodingRaw Encoding = 0
	// EncodingZstd: one zstd frame.
	EncodingZstd Encoding = 1
)

// String names the encoding.
func (e Encoding) String() string {
	switch e {
	case EncodingRaw:
		return "raw"
	case EncodingZstd:
		return "zstd"
	}
	return fmt.Sprintf("encoding(%d)", uint8(e))
}

// Hash is the SHA-256 of a chunk's logical (uncompressed) bytes: its address within its
// owner's storage.
type Hash [sha256.Size]byte

// String is the lower-case hex form used in blob keys.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// ParseHash reads the hex form.
func ParseHash(s string) (Hash, error) {
	var h Hash
	if len(s) != 2*len(h) {
		return h, fmt.Errorf("%w: hash %q", ErrCorrupt, s)
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, fmt.Errorf("%w: hash %q", ErrCorrupt, s)
	}
	return h, nil
}

// Errors.
var (
	// ErrCorrupt: stored bytes, a manifest or a key do not decode to what they claim.
	ErrCorrupt = errors.New("chunkstore: corrupt data")
)

// Chunk is one piece of a stream as Split hands it out. Data and Stored alias buffers that
// Split reuses for the next chunk: a caller that keeps them copies them.
type Chunk struct {
	// Ref describes the chunk; its ChunkID is zero (the database assigns it).
	Ref Ref
	// Data is the logical bytes.
	Data []byte
	// Stored is what goes to the blob store: Data itself when Ref.Encoding is raw.
	Stored []byte
}

// Summary describes a whole stream that Split has read.
type Summary struct {
	Size   int64 // logical bytes
	SHA256 Hash  // of all the bytes: the revision's ETag
	Chunks int
}

// Codec splits, compresses and decompresses chunks. It holds one zstd encoder and one
// decoder, both safe for concurrent use (EncodeAll and DecodeAll are stateless calls), so
// one Codec serves the whole process; creating one per chunk would cost more than the
// compression itself.
type Codec struct {
	enc *zstd.Encoder
	dec *zstd.Decoder
	// scan holds the chunkers' read buffers (2 × MaxChunkSize each) between splits.
	scan sync.Pool
}

// NewCodec builds a Codec compressing at level (zstd.SpeedFastest is what the measurements
// in the package doc chose).
func NewCodec(level zstd.EncoderLevel) (*Codec, error) {
	enc, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(level),
		zstd.WithEncoderConcurrency(1),
		// A chunk is at most MaxChunkSize: a larger window buys nothing.
		zstd.WithWindowSize(MaxChunkSize),
		zstd.WithEncoderCRC(false), // the SHA-256 of the decoded bytes is checked instead
		zstd.WithLowerEncoderMem(true),
	)
	if err != nil {
		return nil, fmt.Errorf("creating zstd encoder: %w", err)
	}
	dec, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(0),
		// Refuse frames that would expand past a chunk: a corrupt or hostile blob cannot
		// make a read allocate more than MaxChunkSize.
		zstd.WithDecoderMaxMemory(MaxChunkSize),
		zstd.WithDecoderMaxWindow(MaxChunkSize),
	)
	if err != nil {
		enc.Close()
		return nil, fmt.Errorf("creating zstd decoder: %w", err)
	}
	c := &Codec{enc: enc, dec: dec}
	c.scan.New = func() any { return new([2 * MaxChunkSize]byte) }
	return c, nil
}

// Close releases the decoder's goroutines.
func (c *Codec) Close() {
	c.dec.Close()
	_ = c.enc.Close()
}

// Encode compresses data into dst[:0] and returns the chunk's stored form: the zstd frame
// when it is smaller than data, otherwise data itself (raw), so a chunk never costs more
// than its size. Data whose sampled bytes look uniformly random (Incompressible) is stored
// raw without trying.
func (c *Codec) Encode(dst, data []byte) (stored []byte, enc Encoding) {
	if Incompressible(data) {
		return data, EncodingRaw
	}
	z := c.enc.EncodeAll(data, dst[:0])
	if len(z) < len(data) {
		return z, EncodingZstd
	}
	return data, EncodingRaw
}

// entropySamples is how many bytes of a chunk Incompressible looks at.
const entropySamples = 2048

// Incompressible reports whether data's bytes, sampled evenly (entropySamples of them), are
// spread so evenly over the 256 values that compression would gain next to nothing: their
// collision entropy, -log2 of the sum of the squared byte frequencies, is above 7.5 bits per
// byte. Random, encrypted and already-compressed bytes (images, zip) sample at about 7.8 to 8;
// text, JSON and base64 at 6 or less. Collision entropy is never above Shannon entropy, so
// data it calls incompressible leaves an order-0 coder nothing; only long repeats of
// random-looking bytes within one chunk (which zstd's matches would find) are missed: they
// are stored raw, as if compression had failed. The test reads 2,048 bytes of a chunk where
// zstd reads all of it (in the upload profile, zstd spent ~0.75 ms of CPU on each
// incompressible MiB to store it raw anyway).
func Incompressible(data []byte) bool {
	n := len(data)
	if n < entropySamples {
		return false // small chunks: compression is cheap; try it
	}
	var hist [256]uint32
	step := n / entropySamples
	for i := range entropySamples {
		hist[data[i*step]]++
	}
	var sq uint64
	for _, h := range hist {
		sq += uint64(h) * uint64(h)
	}
	// sum(p²) < 2^-7.5, in integers: sq / samples² < 2^-7.5.
	const samples = entropySamples
	return float64(sq) < samples*samples*0.005524271728019903
}

// Decode returns the logical bytes of a stored chunk described by ref, appended to
// dst[:0], after checking their size and SHA-256 against ref.
func (c *Codec) Decode(dst, stored []byte, ref Ref) ([]byte, error) {
	if int64(len(stored)) != ref.StoredSize {
		return nil, fmt.Errorf("%w: chunk %s has %d stored bytes, want %d", ErrCorrupt, ref.Hash, len(stored), ref.StoredSize)
	}
	var data []byte
	switch ref.Encoding {
	case EncodingRaw:
		data = append(dst[:0], stored...)
	case EncodingZstd:
		var err error
		if data, err = c.dec.DecodeAll(stored, dst[:0]); err != nil {
			return nil, fmt.Errorf("%w: chunk %s: %w", ErrCorrupt, ref.Hash, err)
		}
	default:
		return nil, fmt.Errorf("%w: chunk %s has %v", ErrCorrupt, ref.Hash, ref.Encoding)
	}
	if int64(len(data)) != ref.Size || sha256.Sum256(data) != ref.Hash {
		return nil, fmt.Errorf("%w: chunk %s does not match its hash", ErrCorrupt, ref.Hash)
	}
	return data, nil
}

// SplitBytes is SplitPlain for a body already in memory: the chunks handed to yield have
// their Hash and Size, and Data is a slice of body itself (no copy: body must not change
// while the chunks are in use). The boundaries are the ones Split finds (cut).
func (c *Codec) SplitBytes(body []byte, yield func(*Chunk) error) (Summary, error) {
	sum := Summary{Size: int64(len(body)), SHA256: sha256.Sum256(body)}
	var chunk Chunk
	for rest := body; len(rest) > 0; {
		n := cut(rest)
		data := rest[:n:n]
		rest = rest[n:]
		chunk = Chunk{Ref: Ref{Hash: sha256.Sum256(data), Size: int64(n)}, Data: data}
		sum.Chunks++
		if err := yield(&chunk); err != nil {
			return sum, err
		}
	}
	return sum, nil
}

// SplitPlain is Split without encoding: each chunk handed to yield has its Hash and Size
// and its Data, but no Stored bytes (Ref.StoredSize 0). A caller that stores only the chunks
// its owner lacks encodes just those (Encode), sparing the compression of the rest.
func (c *Codec) SplitPlain(r io.Reader, yield func(*Chunk) error) (Summary, error) {
	return c.split(r, false, yield)
}

// Split reads r to its end, cutting it into content-defined chunks, and calls yield with
// each in order, hashed and encoded. Memory stays bounded by a few MaxChunkSize buffers
// whatever the stream's length; the chunk handed to yield is valid only until yield
// returns. An error from yield stops Split and is returned as is.
func (c *Codec) Split(r io.Reader, yield func(*Chunk) error) (Summary, error) {
	return c.split(r, true, yield)
}

func (c *Codec) split(r io.Reader, encode bool, yield func(*Chunk) error) (Summary, error) {
	var sum Summary
	whole := sha256.New()
	scan := c.scan.Get().(*[2 * MaxChunkSize]byte)
	defer c.scan.Put(scan)
	ch, err := cdc.NewChunkerBuffer(algorithm, r, &cdc.ChunkerOpts{
		MinSize: MinChunkSize, NormalSize: AvgChunkSize, MaxSize: MaxChunkSize,
	}, scan[:])
	if err != nil {
		return sum, fmt.Errorf("creating chunker: %w", err)
	}
	var chunk Chunk
	zbuf := make([]byte, 0, MaxChunkSize)
	for {
		data, err := ch.Next()
		if err != nil && !errors.Is(err, io.EOF) {
			return sum, fmt.Errorf("reading: %w", err)
		}
		if len(data) > 0 {
			whole.Write(data)
			chunk = Chunk{Ref: Ref{Hash: sha256.Sum256(data), Size: int64(len(data))}, Data: data}
			if encode {
				stored, enc := c.Encode(zbuf, data)
				if enc == EncodingZstd {
					zbuf = stored[:0]
				}
				chunk.Stored, chunk.Ref.StoredSize, chunk.Ref.Encoding = stored, int64(len(stored)), enc
			}
			sum.Size += int64(len(data))
			sum.Chunks++
			if yerr := yield(&chunk); yerr != nil {
				return sum, yerr
			}
		}
		if errors.Is(err, io.EOF) {
			copy(sum.SHA256[:], whole.Sum(nil))
			return sum, nil
		}
	}
}
