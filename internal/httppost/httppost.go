// Package httppost sends small POST requests to one URL over kept-alive HTTP/1.1
// connections, each request written and its response read on the caller's goroutine.
//
// It exists for webhook delivery, where a worker sends one short signed request after another
// to the same receiver. net/http's Transport runs a reader and a writer goroutine per
// connection and hands every request and response between them and the caller; on a busy
// 2-core machine those handoffs cost as much as the exchange itself. Here a request is one
// write (the constant header lines rendered once, at New), the response is read with
// net/http's own parser (http.ReadResponse), and nothing else runs per connection.
//
// What it does as the Transport does, and is tested against it (httppost_test.go): the same
// request line, Host, Content-Length and header fields on the wire; 1xx answers skipped
// (101 is final); a response body read to its end (up to a limit) so that the connection is kept,
// and the connection dropped instead when the body is longer, the answer says
// `Connection: close` (or is HTTP/1.0 without keep-alive), or anything fails; TLS for https
// URLs (HTTP/1.1 offered by ALPN); basic auth from the URL's user info. What it does not: no
// proxy (callers use net/http when one is configured), no redirects (a 3xx is an answer like
// any other), no compression asked for (no Accept-Encoding: the body is not read), no
// pipelining (one request in flight per connection), no HTTP/2.
//
// A connection kept idle is checked before it is reused: when the server has closed it, or
// has sent anything while it was idle (a 408 as it times the connection out, a stray second
// answer), the connection is closed instead, so that no request ever gets another's answer.
// The server may still close it between that check and the request; that shows as an error
// before any byte of the answer, and such a request is sent once more on a new connection:
// the server may have processed it, so callers must accept a repeat — webhooks are at least
// once, with the same id.
package httppost

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"
)

// Field is one request header field.
type Field struct {
	Name, Value string
}

// Options configure a Client.
type Options struct {
	// Header holds fields sent with every request (after Host), rendered once.
	Header []Field
	// MaxIdle bounds the connections kept idle (at least 1): one per concurrent sender.
	MaxIdle int
	// IdleTimeout drops a connection idle for longer (90 s, as net/http's default, when 0).
	IdleTimeout time.Duration
	// TLS is the configuration for https URLs (a default one for the URL's host when nil).
	TLS *tls.Config
	// MaxBody is how much of a response body is read to keep its connection (64 KiB when
	// 0); a longer body is not read and its connection is closed.
	MaxBody int64
}

// Client posts to one URL. It is safe for concurrent use; each Post uses a connection of
// its own.
type Client struct {
	addr    string // host:port to dial
	tls     *tls.Config
	prefix  []byte // request line, Host and the constant fields
	maxIdle int
	idleFor time.Duration
	maxBody int64
	dialer  net.Dialer

	bufs sync.Pool // *[]byte: requests being rendered

	mu   sync.Mutex
	idle []*conn // most recently used last
}

// conn is one connection and its read buffer, which reads through lr: an exchange may read
// at most maxHeaderBytes plus MaxBody from the server (a server that sends header lines
// without end would otherwise grow http.ReadResponse's header map until the deadline).
type conn struct {
	net.Conn
	raw  net.Conn // the TCP connection under TLS (Conn itself without)
	lr   io.LimitedReader
	br   *bufio.Reader
	used time.Time
}

const (
	defaultMaxBody     = 64 << 10
	defaultIdleTimeout = 90 * time.Second
	max1xx             = 32 // net/http bounds their total header size instead
	// maxHeaderBytes bounds the header blocks of one exchange's answers (1xx ones included);
	// net/http's Transport allows 10 MB; a webhook receiver says a few hundred bytes, and
	// parsing a header block costs many times its size in memory.
	maxHeaderBytes    = 1 << 20
	userAgentFallback = "Go-http-client/1.1"
)

// New returns a Client for rawURL (http or https).
func New(rawURL string, opts Options) (*Client, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("httppost: %w", err)
	}
	port := u.Port()
	switch u.Scheme {
	case "http":
		if port == "" {
			port = "80"
		}
	case "https":
		if port == "" {
			port = "443"
		}
	default:
		return nil, fmt.Errorf("httppost: unsupported scheme %q", u.Scheme)
	}
	if !isASCII(u.Host) {
		// net/http converts such a host to its ASCII form (IDNA) for DNS, TLS and Host; this
		// client does not: callers use net/http for it.
		return nil, fmt.Errorf("httppost: non-ASCII host in %q", rawURL)
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("httppost: no host in %q", rawURL)
	}
	c := &Client{
		addr: net.JoinHostPort(u.Hostname(), port), maxIdle: max(opts.MaxIdle, 1),
		idleFor: opts.IdleTimeout, maxBody: opts.MaxBody,
		dialer: net.Dialer{KeepAlive: 30 * time.Second},
	}
	c.bufs.New = func() any { return new([]byte) }
	if c.idleFor <= 0 {
		c.idleFor = defaultIdleTimeout
	}
	if c.maxBody <= 0 {
		c.maxBody = defaultMaxBody
	}
	if u.Scheme == "https" {
		cfg := &tls.Config{}
		if opts.TLS != nil {
			cfg = opts.TLS.Clone()
		}
		if cfg.ServerName == "" {
			cfg.ServerName = u.Hostname()
		}
		cfg.NextProtos = []string{"http/1.1"}
		c.tls = cfg
	}
	p := append([]byte("POST "), u.RequestURI()...)
	p = append(p, " HTTP/1.1\r\nHost: "...)
	p = append(p, u.Host...)
	p = append(p, "\r\n"...)
	header := opts.Header
	if !hasField(header, "User-Agent") { // as net/http, which names itself when not told
		header = append([]Field{{"User-Agent", userAgentFallback}}, header...)
	}
	if u.User != nil && !hasField(header, "Authorization") { // as http.Client does
		pw, _ := u.User.Password()
		header = append(header, Field{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte(u.User.Username()+":"+pw))})
	}
	for _, f := range header {
		if p, err = appendField(p, f); err != nil {
			return nil, err
		}
	}
	c.prefix = p
	return c, nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func hasField(fs []Field, name string) bool {
	for _, f := range fs {
		if http.CanonicalHeaderKey(f.Name) == name {
			return true
		}
	}
	return false
}

// appendField renders "Name: Value\r\n", refusing what would break the request's framing
// (net/http refuses the same: a name that is not a token, a value with control bytes).
func appendField(p []byte, f Field) ([]byte, error) {
	if f.Name == "" {
		return p, errors.New("httppost: empty header field name")
	}
	for i := 0; i < len(f.Name); i++ {
		if !isTokenByte(f.Name[i]) {
			return p, fmt.Errorf("httppost: invalid header field name %q", f.Name)
		}
	}
	for i := 0; i < len(f.Value); i++ {
		if b := f.Value[i]; (b < ' ' && b != '\t') || b == 0x7f {
			return p, fmt.Errorf("httppost: invalid header field value for %q", f.Name)
		}
	}
	p = append(p, f.Name...)
	p = append(p, ": "...)
	p = append(p, f.Value...)
	return append(p, "\r\n"...), nil
}

// isTokenByte reports whether b may appear in a field name (RFC 9110 tchar).
func isTokenByte(b byte) bool {
	switch {
	case b >= 'a' && b <= 'z', b >= 'A' && b <= 'Z', b >= '0' && b <= '9':
		return true
	}
	switch b {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}

// Post sends body with the constant fields and header, and returns the response's status
// (its body read and discarded). ctx bounds the whole exchange (its deadline is the
// connection's deadline; cancelling it aborts the exchange).
func (c *Client) Post(ctx context.Context, header []Field, body []byte) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	bp := c.bufs.Get().(*[]byte)
	defer c.bufs.Put(bp)
	b, err := c.render(*bp, header, body)
	*bp = b[:0]
	if err != nil {
		return 0, err
	}
	for retried := false; ; retried = true {
		pc, reused, err := c.get(ctx, retried)
		if err != nil {
			return 0, err
		}
		status, keep, answered, err := c.exchange(ctx, pc, b)
		if err == nil {
			if keep {
				c.put(pc)
			} else {
				_ = pc.Close()
			}
			return status, nil
		}
		_ = pc.Close()
		if reused && !answered && !retried && ctx.Err() == nil && isClosedByPeer(err) {
			continue
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			return 0, fmt.Errorf("httppost: %w (%w)", ctxErr, err)
		}
		return 0, fmt.Errorf("httppost: %w", err)
	}
}

// render renders the request into b: the constant prefix, Content-Length, header, body.
func (c *Client) render(b []byte, header []Field, body []byte) ([]byte, error) {
	b = append(b[:0], c.prefix...)
	b = append(b, "Content-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\n"...)
	for _, f := range header {
		var err error
		if b, err = appendField(b, f); err != nil {
			return b, err
		}
	}
	b = append(b, "\r\n"...)
	return append(b, body...), nil
}

// exchange writes the rendered request b on pc and reads its answer. answered reports
// whether any byte of an answer arrived; keep whether pc may carry another request.
func (c *Client) exchange(ctx context.Context, pc *conn, b []byte) (status int, keep, answered bool, err error) {
	if d, ok := ctx.Deadline(); ok {
		_ = pc.SetDeadline(d)
	} else {
		_ = pc.SetDeadline(time.Time{})
	}
	// A cancelled ctx (shutdown) interrupts a blocked write or read by moving the deadline;
	// a connection whose deadline it may have moved is not kept.
	stop := context.AfterFunc(ctx, func() { _ = pc.SetDeadline(time.Unix(1, 0)) })
	status, keep, answered, err = c.roundTrip(pc, b)
	if !stop() {
		keep = false
	}
	return status, keep, answered, err
}

// roundTrip writes the rendered request b on pc and reads the answer (see exchange).
func (c *Client) roundTrip(pc *conn, b []byte) (status int, keep, answered bool, err error) {
	pc.lr.N = maxHeaderBytes + c.maxBody + 1 // past it, reads end as at EOF
	if _, err = pc.Write(b); err != nil {
		return 0, false, false, err
	}
	for n1xx := 0; ; n1xx++ {
		if _, err := pc.br.Peek(1); err != nil {
			return 0, false, n1xx > 0, err
		}
		resp, err := http.ReadResponse(pc.br, nil)
		if err != nil {
			return 0, false, true, err
		}
		if resp.StatusCode == http.StatusSwitchingProtocols { // final; the connection is not HTTP now
			return resp.StatusCode, false, true, nil
		}
		if resp.StatusCode >= 100 && resp.StatusCode < 200 {
			if n1xx == max1xx {
				return 0, false, true, errors.New("too many 1xx informational responses")
			}
			continue
		}
		// Kept only when the body was read to its end within MaxBody (CopyN stops at EOF
		// before the limit), nothing follows it unasked, and the server keeps the connection.
		_, rerr := io.CopyN(io.Discard, resp.Body, c.maxBody+1)
		_ = resp.Body.Close()
		keep = rerr == io.EOF && !resp.Close && pc.br.Buffered() == 0
		return resp.StatusCode, keep, true, nil
	}
}

// isClosedByPeer reports whether err is what a write to or read from a connection the server
// had closed gives.
func isClosedByPeer(err error) bool {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) {
		return true
	}
	var op *net.OpError
	return errors.As(err, &op) && !op.Timeout() // ECONNRESET, EPIPE
}

// get returns an idle connection (reused) or a new one; fresh asks for a new one. Idle
// connections past IdleTimeout, closed by the server or holding bytes nobody asked for are
// closed on the way.
func (c *Client) get(ctx context.Context, fresh bool) (*conn, bool, error) {
	if !fresh {
		for {
			pc := c.takeIdle()
			if pc == nil {
				break
			}
			if !unusable(pc.raw) {
				return pc, true, nil
			}
			_ = pc.Close()
		}
	}
	nc, err := c.dialer.DialContext(ctx, "tcp", c.addr)
	if err != nil {
		return nil, false, fmt.Errorf("httppost: %w", err)
	}
	raw := nc
	if c.tls != nil {
		tc := tls.Client(nc, c.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = nc.Close()
			return nil, false, fmt.Errorf("httppost: %w", err)
		}
		nc = tc
	}
	pc := &conn{Conn: nc, raw: raw, lr: io.LimitedReader{R: nc}}
	pc.br = bufio.NewReaderSize(&pc.lr, 4<<10)
	return pc, false, nil
}

// put keeps pc idle, or closes it when MaxIdle are idle already.
func (c *Client) put(pc *conn) {
	pc.used = time.Now()
	c.mu.Lock()
	if len(c.idle) < c.maxIdle {
		c.idle = append(c.idle, pc)
		pc = nil
	}
	c.mu.Unlock()
	if pc != nil {
		_ = pc.Close()
	}
}

// takeIdle removes the most recently used idle connection from the list and returns it
// (nil when none is left), closing the ones past IdleTimeout from the oldest on.
func (c *Client) takeIdle() *conn {
	cutoff := time.Now().Add(-c.idleFor)
	c.mu.Lock()
	var expired []*conn
	for len(c.idle) > 0 && c.idle[0].used.Before(cutoff) {
		expired = append(expired, c.idle[0])
		c.idle = c.idle[1:]
	}
	var pc *conn
	if n := len(c.idle); n > 0 {
		pc = c.idle[n-1]
		c.idle = c.idle[:n-1]
	}
	c.mu.Unlock()
	for _, e := range expired {
		_ = e.Close()
	}
	return pc
}

// CloseIdle closes the idle connections (the Client stays usable).
func (c *Client) CloseIdle() {
	c.mu.Lock()
	idle := c.idle
	c.idle = nil
	c.mu.Unlock()
	for _, pc := range idle {
		_ = pc.Close()
	}
}
