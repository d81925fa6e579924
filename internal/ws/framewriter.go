package ws

import (
	"encoding/binary"
	"io"
	"net"
	"sync"
	"time"
)

// frameWriter passes the bytes of server WebSocket frames to w one or more whole frames per
// write, so that every frame still leaves in a single system call while the connection
// holds no write buffer between frames. Bytes that end inside a frame (the small bufio.Writer
// in front flushes when full) are assembled in a pooled buffer, which goes back to the pool
// as soon as the frame is complete.
//
// Two writers share it: coder/websocket (control frames: pongs, pings, close) through the
// bufio.Writer, and the connection's writer, which sends its data frames whole with
// writeText and so skips coder/websocket's per-message locking and the copy into the
// buffer. Only whole frames reach the socket, so the two never interleave inside a frame.
//
// Every write to the socket passes here, so the write timeout lives here too: a deadline on
// the socket, renewed when less than half of the timeout is left (a write then has between
// timeout/2 and timeout to finish). Renewing per frame cost two deadline updates per write.
//
// It is faster than handing coder/websocket a 4 KiB bufio.Writer per connection (memory) or
// a small one alone (two system calls per frame), and than websocket.Conn.Write per message
// (locking, a context and a copy). It leans on how coder/websocket writes, which
// TestFrameWriterContract pins to the version in go.mod: Accept keeps the bufio.Writer of
// the hijacked connection as its only way to the socket, writes nothing but frames into it
// (header, then the unmasked payload) and flushes after every final frame.
type frameWriter struct {
	mu   sync.Mutex
	w    io.Writer // the socket
	pend *[]byte   // an incomplete frame; nil when none
	// closed: a close frame went out, no data frame may follow (RFC 6455 §5.5.1).
	closed bool
	// timeout is the write timeout (0: none; also none when w has no write deadline).
	timeout time.Duration
	renewAt time.Time // when the deadline is next renewed
}

// send writes whole frames to the socket, renewing the write deadline first when due.
func (f *frameWriter) send(b []byte) (int, error) {
	if d, ok := f.w.(interface{ SetWriteDeadline(time.Time) error }); ok && f.timeout > 0 {
		if now := time.Now(); !now.Before(f.renewAt) {
			if err := d.SetWriteDeadline(now.Add(f.timeout)); err != nil {
				return 0, err
			}
			f.renewAt = now.Add(f.timeout / 2)
		}
	}
	return f.w.Write(b)
}

// frameBufs holds buffers for frames being assembled. Buffers that grew past
// maxPooledFrame (a large presence snapshot) are left to the garbage collector.
var frameBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

const maxPooledFrame = 64 << 10

func (f *frameWriter) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.pend == nil {
		if completeFrames(p) == len(p) {
			f.sawClose(p)
			return f.send(p)
		}
		f.pend = frameBufs.Get().(*[]byte)
	}
	b := append(*f.pend, p...)
	*f.pend = b
	n := completeFrames(b)
	if n == 0 {
		return len(p), nil
	}
	f.sawClose(b[:n])
	_, err := f.send(b[:n])
	*f.pend = b[:copy(b, b[n:])]
	if len(*f.pend) == 0 || err != nil {
		f.release()
	}
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

// frameHeaderRoom is the room writeText needs in front of a payload: the longest header of
// an unmasked frame.
const frameHeaderRoom = 10

// writeText sends one text frame in a single write. buf holds frameHeaderRoom bytes of
// room followed by the payload; the header is written into the room.
func (f *frameWriter) writeText(buf []byte) error {
	n := len(buf) - frameHeaderRoom
	var hdr [frameHeaderRoom]byte
	hdr[0] = 0x81 // FIN, text
	h := 2
	switch {
	case n < 126:
		hdr[1] = byte(n)
	case n <= 0xffff:
		hdr[1] = 126
		binary.BigEndian.PutUint16(hdr[2:], uint16(n))
		h = 4
	default:
		hdr[1] = 127
		binary.BigEndian.PutUint64(hdr[2:], uint64(n))
		h = 10
	}
	frame := buf[frameHeaderRoom-h:]
	copy(frame, hdr[:h])
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return net.ErrClosed
	}
	_, err := f.send(frame)
	return err
}

// Opcodes of the control frames the connection's reader answers itself (see waitFrame).
const (
	opPing = 0x9
	opPong = 0xa
)

// writeControl sends a ping or pong frame with payload p (at most 125 bytes) in a single
// write, unless a close frame went out.
func (f *frameWriter) writeControl(op byte, p []byte) error {
	var frame [2 + 125]byte
	frame[0] = 0x80 | op // FIN
	frame[1] = byte(copy(frame[2:], p))
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return net.ErrClosed
	}
	_, err := f.send(frame[:2+int(frame[1])])
	return err
}

// sawClose notes a close frame among whole frames b.
func (f *frameWriter) sawClose(b []byte) {
	for len(b) >= 2 && !f.closed {
		f.closed = b[0]&0x0f == 0x8
		l, _ := frameLen(b)
		b = b[l:]
	}
}

func (f *frameWriter) release() {
	if cap(*f.pend) <= maxPooledFrame {
		*f.pend = (*f.pend)[:0]
		frameBufs.Put(f.pend)
	}
	f.pend = nil
}

// completeFrames returns the length of the longest prefix of b made of whole frames.
func completeFrames(b []byte) int {
	n := 0
	for n < len(b) {
		l, ok := frameLen(b[n:])
		if !ok || l > len(b)-n {
			break
		}
		n += l
	}
	return n
}

// frameLen returns the length of the frame b starts with (RFC 6455 §5.2), or false when b
// is too short to tell.
func frameLen(b []byte) (int, bool) {
	if len(b) < 2 {
		return 0, false
	}
	h, l := 2, uint64(b[1]&0x7f)
	switch l {
	case 126:
		h = 4
		if len(b) < h {
			return 0, false
		}
		l = uint64(binary.BigEndian.Uint16(b[2:]))
	case 127:
		h = 10
		if len(b) < h {
			return 0, false
		}
		l = binary.BigEndian.Uint64(b[2:])
	}
	if b[1]&0x80 != 0 {
		h += 4 // masking key (client frames only)
	}
	// A length no buffer could hold never completes; it cannot overflow the sum either.
	return h + int(min(l, 1<<62)), true
}
