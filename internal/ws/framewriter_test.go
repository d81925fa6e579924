package ws

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"testing"
	"time"
)

// frame builds a WebSocket frame with an n-byte payload, masked or not.
func frame(n int, masked bool, fill byte) []byte {
	var b []byte
	b = append(b, 0x81) // FIN, text
	var m byte
	if masked {
		m = 0x80
	}
	switch {
	case n < 126:
		b = append(b, m|byte(n))
	case n <= 0xffff:
		b = append(b, m|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, m|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	if masked {
		b = append(b, 1, 2, 3, 4)
	}
	return append(b, bytes.Repeat([]byte{fill}, n)...)
}

// recorder is the socket: it keeps every write separately.
type recorder struct {
	writes [][]byte
	err    error
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	r.writes = append(r.writes, bytes.Clone(p))
	return len(p), nil
}

// TestFrameWriterWholeFrames writes streams of frames through the same small bufio.Writer
// coder/websocket writes into, cut at every chunk size, and asserts the socket received the
// same bytes with every write made of whole frames and each frame in one write.
func TestFrameWriterWholeFrames(t *testing.T) {
	streams := map[string][][]byte{
		"empty frame":         {frame(0, false, 'a')},
		"tiny frames":         {frame(1, false, 'a'), frame(3, false, 'b'), frame(0, false, 'c')},
		"frame fills buffer":  {frame(hijackWriteBuf-2, false, 'a'), frame(hijackWriteBuf-1, false, 'b')},
		"7-bit max":           {frame(125, false, 'a')},
		"16-bit lengths":      {frame(126, false, 'a'), frame(3000, false, 'b'), frame(0xffff, false, 'c')},
		"64-bit length":       {frame(0x10000, false, 'a'), frame(5, false, 'b')},
		"masked (client) too": {frame(10, true, 'a'), frame(200, true, 'b')},
		"mixed":               {frame(2, false, 'p'), frame(700, false, 'x'), frame(40, false, 'y'), frame(70000, false, 'z')},
	}
	for name, frames := range streams {
		for _, chunk := range []int{1, 2, 3, 7, 64, 100, 4096, 1 << 20} {
			rec := &recorder{}
			fw := &frameWriter{w: rec}
			bw := bufio.NewWriterSize(fw, hijackWriteBuf)
			var want []byte
			for _, f := range frames {
				want = append(want, f...)
				// As coder/websocket does: the frame's bytes in pieces, then a flush.
				for p := f; len(p) > 0; {
					k := min(chunk, len(p))
					if _, err := bw.Write(p[:k]); err != nil {
						t.Fatal(err)
					}
					p = p[k:]
				}
				if err := bw.Flush(); err != nil {
					t.Fatal(err)
				}
			}
			got := bytes.Join(rec.writes, nil)
			if !bytes.Equal(got, want) {
				t.Fatalf("%s/chunk %d: socket got %d bytes, want %d", name, chunk, len(got), len(want))
			}
			// One frame per write here, since each frame was flushed before the next began.
			if len(rec.writes) != len(frames) {
				t.Fatalf("%s/chunk %d: %d writes for %d frames", name, chunk, len(rec.writes), len(frames))
			}
			for i, w := range rec.writes {
				if !bytes.Equal(w, frames[i]) {
					t.Fatalf("%s/chunk %d: write %d is not frame %d", name, chunk, i, i)
				}
			}
			if fw.pend != nil {
				t.Fatalf("%s/chunk %d: a buffer is still held after the last frame", name, chunk)
			}
		}
	}
}

// TestFrameWriterSeveralFramesInOneWrite: bytes holding whole frames and the start of
// another go out as the whole frames; the rest waits for its frame to complete.
func TestFrameWriterSeveralFramesInOneWrite(t *testing.T) {
	a, b, c := frame(5, false, 'a'), frame(6, false, 'b'), frame(300, false, 'c')
	rec := &recorder{}
	fw := &frameWriter{w: rec}
	in := append(append(append([]byte{}, a...), b...), c[:10]...)
	if n, err := fw.Write(in); err != nil || n != len(in) {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if len(rec.writes) != 1 || !bytes.Equal(rec.writes[0], append(append([]byte{}, a...), b...)) {
		t.Fatalf("first write %q, want the two whole frames", rec.writes)
	}
	if _, err := fw.Write(c[10:]); err != nil {
		t.Fatal(err)
	}
	if len(rec.writes) != 2 || !bytes.Equal(rec.writes[1], c) {
		t.Fatalf("second write is not the third frame")
	}
	if fw.pend != nil {
		t.Fatal("a buffer is still held")
	}
}

// TestFrameWriterError: a failed socket write is reported and the pending bytes are dropped.
func TestFrameWriterError(t *testing.T) {
	boom := errors.New("boom")
	rec := &recorder{err: boom}
	fw := &frameWriter{w: rec}
	f := frame(100, false, 'a')
	if n, err := fw.Write(f[:50]); err != nil || n != 50 {
		t.Fatalf("partial frame: Write = %d, %v; want it held", n, err)
	}
	if _, err := fw.Write(f[50:]); !errors.Is(err, boom) {
		t.Fatalf("completing write: err = %v, want boom", err)
	}
	if fw.pend != nil {
		t.Fatal("pending bytes kept after a failed write")
	}
	if _, err := fw.Write(f); !errors.Is(err, boom) {
		t.Fatalf("whole frame: err = %v, want boom", err)
	}
}

// TestFrameWriterWriteText: data frames written whole with the right header for each length
// class, and none after a close frame went out.
func TestFrameWriterWriteText(t *testing.T) {
	for _, n := range []int{0, 1, 125, 126, 127, 0xffff, 0x10000, 70000} {
		rec := &recorder{}
		fw := &frameWriter{w: rec}
		buf := append(make([]byte, frameHeaderRoom), bytes.Repeat([]byte{'x'}, n)...)
		if err := fw.writeText(buf); err != nil {
			t.Fatal(err)
		}
		if len(rec.writes) != 1 || !bytes.Equal(rec.writes[0], frame(n, false, 'x')) {
			t.Fatalf("payload %d: wrote %d writes, first not the expected frame", n, len(rec.writes))
		}
	}
	rec := &recorder{}
	fw := &frameWriter{w: rec}
	closeFrame := []byte{0x88, 2, 0x03, 0xe8} // close, 1000
	if _, err := fw.Write(append(frame(3, false, 'a'), closeFrame...)); err != nil {
		t.Fatal(err)
	}
	if err := fw.writeText(make([]byte, frameHeaderRoom+1)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("data frame after a close frame: err = %v, want net.ErrClosed", err)
	}
}

// TestFrameWriterConcurrentWriters: coder/websocket's control frames (through the bufio
// writer) and the writer's data frames, at once, reach the socket as whole frames only.
func TestFrameWriterConcurrentWriters(t *testing.T) {
	rec := &recorder{}
	fw := &frameWriter{w: rec}
	bw := bufio.NewWriterSize(fw, hijackWriteBuf)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 500 {
			f := frame(100, false, 'c') // split by the 64-byte buffer
			f[0] = 0x8a                 // pong
			_, _ = bw.Write(f)
			_ = bw.Flush()
		}
	}()
	for range 500 {
		if err := fw.writeText(append(make([]byte, frameHeaderRoom), bytes.Repeat([]byte{'d'}, 300)...)); err != nil {
			t.Error(err)
		}
	}
	<-done
	fw.mu.Lock()
	defer fw.mu.Unlock()
	stream := bytes.Join(rec.writes, nil)
	pongs, data := 0, 0
	for len(stream) > 0 {
		l, ok := frameLen(stream)
		if !ok || l > len(stream) {
			t.Fatalf("stream ends inside a frame")
		}
		switch {
		case stream[0] == 0x8a && bytes.Count(stream[2:l], []byte{'c'}) == 100:
			pongs++
		case stream[0] == 0x81 && bytes.Count(stream[4:l], []byte{'d'}) == 300:
			data++
		default:
			t.Fatalf("a frame was interleaved: % x…", stream[:min(l, 16)])
		}
		stream = stream[l:]
	}
	if pongs != 500 || data != 500 {
		t.Fatalf("%d pongs and %d data frames, want 500 each", pongs, data)
	}
}

// TestFrameWriterWriteTimeout over real loopback sockets: after idling past the timeout a
// write still goes through (the deadline is renewed before it), and a write the peer never
// reads fails within the timeout rather than blocking.
func TestFrameWriterWriteTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peer, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const timeout = 200 * time.Millisecond
	fw := &frameWriter{w: c, timeout: timeout}
	small := append(make([]byte, frameHeaderRoom), 'x')
	if err := fw.writeText(small); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * timeout) // the first deadline has passed
	if err := fw.writeText(small); err != nil {
		t.Fatalf("write after idling past the timeout: %v", err)
	}
	big := append(make([]byte, frameHeaderRoom), bytes.Repeat([]byte{'y'}, 1<<20)...)
	start := time.Now()
	for {
		err := fw.writeText(big) // the peer never reads: the socket buffers fill up
		if err == nil {
			if time.Since(start) > 10*time.Second {
				t.Fatal("writes to a peer that never reads kept succeeding")
			}
			continue
		}
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("blocked write: err = %v, want a timeout", err)
		}
		break
	}
	if took := time.Since(start); took > 5*timeout {
		t.Fatalf("blocked write failed after %v, want within about %v", took, timeout)
	}
}
