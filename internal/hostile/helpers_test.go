package hostile_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/m4sh/backend/internal/apptest"
)

// rawConn is a client that writes requests byte by byte as a test decides.
type rawConn struct {
	t    testing.TB
	conn net.Conn
	br   *bufio.Reader
}

func dial(t testing.TB, env *apptest.Env) *rawConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", env.Server.Listener.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{t: t, conn: c, br: bufio.NewReader(c)}
}

// head writes a request line and headers (and the blank line), with Content-Length n
// (omitted when n < 0) and a bearer token when tok is set.
func (c *rawConn) head(method, path, tok string, n int, extra ...string) {
	c.t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: test\r\n", method, path)
	if tok != "" {
		fmt.Fprintf(&b, "Authorization: Bearer %s\r\n", tok)
	}
	if n >= 0 {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", n)
	}
	for _, h := range extra {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n")
	c.write(b.String())
}

func (c *rawConn) write(s string) error {
	_ = c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err := io.WriteString(c.conn, s)
	return err
}

// response reads one response within d.
func (c *rawConn) response(d time.Duration) (*http.Response, []byte, error) {
	_ = c.conn.SetReadDeadline(time.Now().Add(d))
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

// closedByServer reports whether the server closed the connection within d: end of
// stream, or a reset (a socket closed with unread bytes in it is reset rather than shut).
func (c *rawConn) closedByServer(d time.Duration) bool {
	_ = c.conn.SetReadDeadline(time.Now().Add(d))
	var b [1]byte
	_, err := c.br.Read(b[:])
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

// code returns the problem code of a problem+json body.
func code(b []byte) string {
	const key = `"code":"`
	s := string(b)
	i := strings.Index(s, key)
	if i < 0 {
		return ""
	}
	s = s[i+len(key):]
	return s[:strings.IndexByte(s, '"')]
}
