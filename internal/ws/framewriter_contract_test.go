package ws

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// frameWriterPinned is the coder/websocket version whose write pattern frameWriter was checked
// against (write.go: writeFrame writes the header and the payload into the hijacked
// bufio.Writer and flushes after a final frame; conn.go: Ping's payload is a counter from 1;
// close.go: the close frame is the code and the reason). A go.mod bump fails
// TestCoderWebsocketVersionPinned until frameWriter and TestFrameWriterContract have been
// checked against the new version's write path and this constant moved.
const frameWriterPinned = "v1.8.15"

// TestCoderWebsocketVersionPinned reads the version from go.mod (test binaries carry no
// dependency versions in their build information) and, when the build information has them,
// checks it too.
func TestCoderWebsocketVersionPinned(t *testing.T) {
	t.Parallel()
	const mod = "github.com/coder/websocket"
	check := func(where, v string) {
		t.Helper()
		if v != frameWriterPinned {
			t.Fatalf("%s: coder/websocket is %s, frameWriter was checked against %s: re-read its write path "+
				"(write.go writeFrame, close.go, conn.go Ping), run TestFrameWriterContract, then move frameWriterPinned",
				where, v, frameWriterPinned)
		}
	}
	gomod, err := os.ReadFile(filepath.Join("..", "..", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, line := range strings.Split(string(gomod), "\n") {
		f := strings.Fields(strings.TrimPrefix(strings.TrimSpace(line), "require "))
		switch {
		case len(f) >= 2 && f[0] == mod:
			check("go.mod", f[1])
			found = true
		case len(f) >= 1 && f[0] == "replace" && slices.Contains(f, mod), len(f) >= 2 && f[0] == mod && f[1] == "=>":
			t.Fatalf("go.mod replaces coder/websocket: check frameWriter against the replacement")
		}
	}
	if !found {
		t.Fatal("coder/websocket is not required in go.mod")
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == mod {
				check("build information", d.Version)
			}
		}
	}
}

// lockedRecorder is a socket that keeps every write separately; the server's reader
// goroutine writes pongs while the test writes data frames.
type lockedRecorder struct {
	mu     sync.Mutex
	w      net.Conn
	writes [][]byte
}

func (r *lockedRecorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	r.writes = append(r.writes, bytes.Clone(p))
	r.mu.Unlock()
	return r.w.Write(p)
}

// TestFrameWriterContract runs the writes the server makes through coder/websocket over a
// real upgraded loopback connection with smallBuffers: a data frame of its own (writeText),
// a message through websocket.Conn.Write (split by the 64-byte buffer), a pong answering the
// peer's ping, a ping of its own and the close. Each must reach the socket as exactly one
// write holding exactly one frame with the bytes RFC 6455 gives, and no data frame may follow
// the close. If coder/websocket stopped writing through the hijacked buffer, wrote anything
// but whole frames into it or stopped flushing after each one, a write would be missing,
// split or different here.
func TestFrameWriterContract(t *testing.T) {
	t.Parallel()
	type accepted struct {
		c   *websocket.Conn
		fw  *frameWriter
		rec *lockedRecorder
	}
	got := make(chan accepted, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sb := &smallBuffers{ResponseWriter: w}
		c, err := websocket.Accept(sb, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
		if err != nil {
			t.Errorf("accept: %v", err)
			return
		}
		sb.fw.mu.Lock()
		rec := &lockedRecorder{w: sb.fw.w.(net.Conn)}
		sb.fw.w = rec
		sb.fw.mu.Unlock()
		got <- accepted{c, sb.fw, rec}
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer client.CloseNow()
	s := <-got
	s.c.CloseRead(ctx) // the server reads control frames (answers pings, sees pongs)
	msgs := make(chan string, 4)
	clientDone := make(chan error, 1)
	go func() {
		for {
			_, b, err := client.Read(ctx)
			if err != nil {
				clientDone <- err
				return
			}
			msgs <- string(b)
		}
	}()
	next := func() string {
		select {
		case m := <-msgs:
			return m
		case <-ctx.Done():
			t.Fatal("the client received nothing")
			return ""
		}
	}

	if err := s.fw.writeText(append(make([]byte, frameHeaderRoom), "hello"...)); err != nil {
		t.Fatal(err)
	}
	if m := next(); m != "hello" {
		t.Fatalf("client read %q, want hello", m)
	}
	long := strings.Repeat("w", 200)
	if err := s.c.Write(ctx, websocket.MessageText, []byte(long)); err != nil {
		t.Fatal(err)
	}
	if m := next(); m != long {
		t.Fatalf("client read %d bytes, want the 200-byte message", len(m))
	}
	if err := client.Ping(ctx); err != nil { // the server answers with a pong
		t.Fatal(err)
	}
	if err := s.c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.c.Close(websocket.StatusCode(4409), "x"); err != nil {
		t.Fatal(err)
	}
	var ce websocket.CloseError
	if err := <-clientDone; !errors.As(err, &ce) || ce.Code != 4409 || ce.Reason != "x" {
		t.Fatalf("client's read ended with %v, want close 4409 x", err)
	}
	if err := s.fw.writeText(append(make([]byte, frameHeaderRoom), 'z')); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("data frame after the close: err = %v, want net.ErrClosed", err)
	}

	want := [][]byte{
		serverFrame(0x1, "hello"),
		serverFrame(0x1, long),
		serverFrame(0xA, "1"), // pong echoing the client's first ping
		serverFrame(0x9, "1"), // the server's first ping
		serverFrame(0x8, "\x11\x39x"),
	}
	s.rec.mu.Lock()
	defer s.rec.mu.Unlock()
	if len(s.rec.writes) != len(want) {
		t.Fatalf("%d writes reached the socket, want %d (one per frame): %s", len(s.rec.writes), len(want), hexWrites(s.rec.writes))
	}
	for i := range want {
		if !bytes.Equal(s.rec.writes[i], want[i]) {
			t.Fatalf("write %d = % x, want % x", i, s.rec.writes[i], want[i])
		}
	}
}

// serverFrame is the reference encoding of a final unmasked server frame (RFC 6455 §5.2).
func serverFrame(opcode byte, payload string) []byte {
	n := len(payload)
	b := []byte{0x80 | opcode}
	switch {
	case n < 126:
		b = append(b, byte(n))
	case n <= 0xffff:
		b = append(b, 126, byte(n>>8), byte(n))
	default:
		panic("not needed here")
	}
	return append(b, payload...)
}

func hexWrites(ws [][]byte) string {
	var b strings.Builder
	for _, w := range ws {
		fmt.Fprintf(&b, "[% x] ", w[:min(len(w), 12)])
	}
	return b.String()
}
