package ws_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestHeartbeat: the server pings every WS_PING_INTERVAL and answers the peer's pings while
// the connection is idle; a peer that answers stays, one that does not is dropped after
// WS_PONG_TIMEOUT.
func TestHeartbeat(t *testing.T) {
	t.Parallel()
	f := setup(t, map[string]string{"WS_PING_INTERVAL": "50ms", "WS_PONG_TIMEOUT": "400ms"})

	t.Run("a peer that answers stays and is answered", func(t *testing.T) {
		c := dial(t, f.sessionURL(), f.Tina)
		if fr := read(t, c); fr.Type != "presence.snapshot" {
			t.Fatalf("first frame %+v, want the snapshot", fr)
		}
		// From here the client only reads control frames: it answers the server's pings
		// and sees the pongs to its own.
		ctx := c.CloseRead(context.Background())
		for i := range 15 { // 1.5 s: the server pinged ≈ 30 times meanwhile
			pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			err := c.Ping(pctx)
			cancel()
			if err != nil {
				t.Fatalf("ping %d: %v", i, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
			t.Fatalf("close handshake: %v", err)
		}
	})

	t.Run("a silent peer is dropped", func(t *testing.T) {
		nc, br := rawDial(t, f.sessionURL(), f.Mia)
		start := time.Now()
		_ = nc.SetReadDeadline(start.Add(10 * time.Second))
		var ops []byte
		for {
			op, err := readServerFrame(br)
			if err != nil {
				if !errors.Is(err, io.EOF) {
					t.Fatalf("after frames %x: %v, want the server to drop the connection", ops, err)
				}
				break
			}
			ops = append(ops, op)
		}
		// The snapshot, one ping, then nothing: the next heartbeat finds it unanswered.
		if len(ops) != 2 || ops[0] != 0x1 || ops[1] != 0x9 {
			t.Fatalf("frames (opcodes) %x, want 1 9 (snapshot, ping)", ops)
		}
		if d := time.Since(start); d < 400*time.Millisecond || d > 3*time.Second {
			t.Fatalf("dropped after %v, want WS_PING_INTERVAL + WS_PONG_TIMEOUT (≈ 450 ms)", d)
		}
	})
}

// rawDial upgrades a plain TCP connection by hand, so that nothing answers the server's
// pings.
func rawDial(t *testing.T, url, tok string) (net.Conn, *bufio.Reader) {
	t.Helper()
	hostPath := strings.TrimPrefix(url, "ws://")
	host, path, _ := strings.Cut(hostPath, "/")
	nc, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	var key [16]byte
	_, _ = rand.Read(key[:])
	req := "GET /" + path + " HTTP/1.1\r\nHost: " + host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + base64.StdEncoding.EncodeToString(key[:]) + "\r\n" +
		"Authorization: Bearer " + tok + "\r\n\r\n"
	if _, err := io.WriteString(nc, req); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %s", resp.Status)
	}
	return nc, br
}

// readServerFrame reads one unmasked server frame and returns its opcode.
func readServerFrame(br *bufio.Reader) (byte, error) {
	var h [2]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		return 0, err
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var ext [2]byte
		if _, err := io.ReadFull(br, ext[:]); err != nil {
			return 0, err
		}
		n = uint64(binary.BigEndian.Uint16(ext[:]))
	case 127:
		var ext [8]byte
		if _, err := io.ReadFull(br, ext[:]); err != nil {
			return 0, err
		}
		n = binary.BigEndian.Uint64(ext[:])
	}
	if _, err := br.Discard(int(n)); err != nil {
		return 0, err
	}
	return h[0] & 0x0f, nil
}
