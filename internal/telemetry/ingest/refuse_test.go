package ingest_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/m4sh/backend/internal/apptest"
)

// rawAnswer is what a raw TCP client read back: the status line exactly, the headers, and
// whether the server closed the connection after the answer.
type rawAnswer struct {
	statusLine string
	header     textproto.MIMEHeader
	closed     bool
}

// rawPost writes head (request line and headers, without the blank line) and then body — which
// may be only part of the body the headers announce — over a fresh TCP connection, never
// completing the body, and reads the answer within a few seconds.
func rawPost(t *testing.T, addr, head string, body []byte) rawAnswer {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, strings.ReplaceAll(head, "\n", "\r\n")+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write(body); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	tp := textproto.NewReader(bufio.NewReader(conn))
	line, err := tp.ReadLine()
	if err != nil {
		t.Fatalf("no answer while the body is incomplete: %v", err)
	}
	hdr, err := tp.ReadMIMEHeader()
	if err != nil {
		t.Fatalf("reading the answer's headers: %v", err)
	}
	n := 0 // a 204 has no Content-Length
	if cl := hdr.Get("Content-Length"); cl != "" {
		if n, err = strconv.Atoi(cl); err != nil {
			t.Fatalf("Content-Length %q", cl)
		}
	}
	if _, err := io.CopyN(io.Discard, tp.R, int64(n)); err != nil {
		t.Fatalf("reading the answer's body: %v", err)
	}
	// A closed connection reads EOF, or a reset when the server closed with our body unread;
	// an open one times out.
	_ = conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	_, err = tp.R.ReadByte()
	var ne net.Error
	timedOut := errors.As(err, &ne) && ne.Timeout()
	return rawAnswer{statusLine: line, header: hdr, closed: err != nil && !timedOut}
}

// TestCheapRefusalsBeforeTheBody: the throttle (429), the encoding (415) and the declared
// length (413) answer from the headers alone — here while the body is still incomplete on the
// wire — and such an answer says Connection: close and closes; a 413 found while reading a
// chunked body does the same. A complete body keeps the connection open.
func TestCheapRefusalsBeforeTheBody(t *testing.T) {
	t.Parallel()
	env := apptest.New(t, map[string]string{"TELEMETRY_RATE_PER_MIN": "1", "TRUSTED_PROXIES": "127.0.0.1"})
	addr := strings.TrimPrefix(env.Server.URL, "http://")
	head := func(client string, headers ...string) string {
		return strings.Join(append([]string{
			"POST /api/v1/logs/telemetry/ HTTP/1.1", "Host: m4sh.test", "X-Forwarded-For: " + client,
		}, headers...), "\n")
	}
	event := []byte(`{"name":"a"}`)
	chunk := func(b []byte) []byte { return append(append(fmt.Appendf(nil, "%x\r\n", len(b)), b...), "\r\n"...) }
	tests := []struct {
		name       string
		head       string
		body       []byte
		statusLine string
		close      bool
	}{
		{"a complete body", head("192.0.2.1", "Content-Type: application/json", "Content-Length: 12"), event,
			"HTTP/1.1 204 No Content", false},
		{"throttled, 10 of 1000 bytes sent", head("192.0.2.1", "Content-Type: application/json", "Content-Length: 1000"), event[:10],
			"HTTP/1.1 429 Too Many Requests", true},
		{"throttled, chunked", head("192.0.2.1", "Content-Type: application/json", "Transfer-Encoding: chunked"), chunk(event[:10]),
			"HTTP/1.1 429 Too Many Requests", true},
		{"brotli, 10 of 1000 bytes sent", head("192.0.2.2", "Content-Type: application/json", "Content-Encoding: br", "Content-Length: 1000"), event[:10],
			"HTTP/1.1 415 Unsupported Media Type", true},
		{"XML, 10 of 1000 bytes sent", head("192.0.2.3", "Content-Type: application/xml", "Content-Length: 1000"), event[:10],
			"HTTP/1.1 415 Unsupported Media Type", true},
		{"40000 bytes declared, 10 sent", head("192.0.2.4", "Content-Type: application/json", "Content-Length: 40000"), event[:10],
			"HTTP/1.1 413 Request Entity Too Large", true},
		{"chunked, 33000 bytes sent and more to come", head("192.0.2.5", "Content-Type: application/json", "Transfer-Encoding: chunked"),
			chunk([]byte(`{"name":"a","props":{"p":"` + strings.Repeat("x", 33000) + `"`)),
			"HTTP/1.1 413 Request Entity Too Large", true},
	}
	for _, tt := range tests { // in order: the first uses 192.0.2.1's one request a minute
		got := rawPost(t, addr, tt.head, tt.body)
		if got.statusLine != tt.statusLine {
			t.Errorf("%s: status line %q, want %q (%v)", tt.name, got.statusLine, tt.statusLine, got.header)
		}
		if c := got.header.Get("Connection"); (c == "close") != tt.close {
			t.Errorf("%s: Connection: %q, want close %t", tt.name, c, tt.close)
		}
		if got.closed != tt.close {
			t.Errorf("%s: connection closed %t, want %t", tt.name, got.closed, tt.close)
		}
		if tt.close && got.header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: Content-Type %q, want a problem", tt.name, got.header.Get("Content-Type"))
		}
		if tt.statusLine == "HTTP/1.1 429 Too Many Requests" && got.header.Get("Retry-After") == "" {
			t.Errorf("%s: no Retry-After", tt.name)
		}
	}
}
