package httpx

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/m4sh/backend/internal/apperr"
)

// BodyGuard is every request body as handlers see it (README: Hostile input and load). The body must arrive
// within the deadline set on the connection when the request started (HTTP_BODY_TIMEOUT);
// a read past it fails with a request_timeout error, and the answer — whatever layer writes
// it — is 408 with the connection closed (WriteError, and the API's access-log layer). Reaching the end of
// the body clears the deadline, so a handler may take its time after reading (and the
// server's background read of the idle connection is not cut by it). It also remembers
// whether the body was read to its end: an answer sent before that carries
// `Connection: close`, so that net/http neither drains an unwanted body nor waits for a
// slow one.
type BodyGuard struct {
	body     io.ReadCloser
	ctl      *http.ResponseController
	timeout  time.Duration
	eof      atomic.Bool
	timedOut atomic.Bool
}

// GuardBody wraps r's body, when it has one, under a read deadline of timeout from now; nil
// when there is no body.
func GuardBody(w http.ResponseWriter, r *http.Request, timeout time.Duration) *BodyGuard {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return nil
	}
	g := &BodyGuard{body: r.Body, ctl: http.NewResponseController(w), timeout: timeout}
	// Not every connection supports deadlines (HTTP/2 streams do, httptest recorders do
	// not); without one the server's own timeouts are all there is.
	_ = g.ctl.SetReadDeadline(time.Now().Add(timeout))
	r.Body = g
	return g
}

// errTimeout is what reading a body past its deadline returns.
func (g *BodyGuard) errTimeout(cause error) error {
	return &apperr.Error{Kind: apperr.RequestTimeout, Err: cause,
		Message: fmt.Sprintf("the request body did not arrive within %s", g.timeout)}
}

func (g *BodyGuard) Read(p []byte) (int, error) {
	if g.timedOut.Load() {
		return 0, g.errTimeout(os.ErrDeadlineExceeded)
	}
	n, err := g.body.Read(p)
	switch {
	case err == nil:
	case errors.Is(err, io.EOF):
		if g.eof.CompareAndSwap(false, true) {
			_ = g.ctl.SetReadDeadline(time.Time{})
		}
	case errors.Is(err, os.ErrDeadlineExceeded):
		g.timedOut.Store(true)
		return n, g.errTimeout(err)
	}
	return n, err
}

func (g *BodyGuard) Close() error { return g.body.Close() }

// Abandon gives up on a body the handler did not read to its end, once the answer is
// written: net/http would otherwise read and discard up to 256 KiB of it before closing
// the connection, at whatever pace the client sends. A deadline in the past fails that read
// at once, so the connection closes right after the answer.
func (g *BodyGuard) Abandon() {
	if g.Unread() {
		_ = g.ctl.SetReadDeadline(time.Unix(1, 0))
	}
}

// Unread reports whether the client may still be sending a body nobody read.
func (g *BodyGuard) Unread() bool { return g != nil && !g.eof.Load() }

// Expired reports whether the body's deadline passed while it was read.
func (g *BodyGuard) Expired() bool { return g != nil && g.timedOut.Load() }
