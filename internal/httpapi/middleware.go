package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"time"

	"github.com/m4sh/backend/internal/apperr"
	"github.com/m4sh/backend/internal/auth"
	"github.com/m4sh/backend/internal/httpx"
)

var validRequestID = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// statusRecorder remembers the status written so the access log and metrics can report it,
// and closes the connection after an answer sent before the request body was read to its
// end (README: Hostile input and load): net/http would otherwise drain an unwanted body, or wait for a slow
// one, before reading the next request.
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int64
	body   *httpx.BodyGuard
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
		s.beforeHeader(code)
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) beforeHeader(code int) {
	if code >= 200 && s.body.Unread() {
		s.Header().Set("Connection", "close")
	}
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
		s.beforeHeader(http.StatusOK)
	}
	n, err := s.ResponseWriter.Write(b)
	s.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the real writer (flush, hijack for WebSocket).
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// responseStarted reports whether a status line was already written on w (its
// statusRecorder found through Unwrap).
func responseStarted(w http.ResponseWriter) bool {
	for {
		if s, ok := w.(*statusRecorder); ok {
			return s.status != 0
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return false
		}
		w = u.Unwrap()
	}
}

// observe is the outermost layer: request id, panic recovery, access log and metrics.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ri := &httpx.Info{ID: r.Header.Get("X-Request-Id"), Route: "unmatched"}
		if !validRequestID.MatchString(ri.ID) {
			var b [8]byte
			_, _ = rand.Read(b[:])
			ri.ID = hex.EncodeToString(b[:])
		}
		w.Header().Set("X-Request-Id", ri.ID)
		// No answer of this service is meant to be sniffed into another type.
		w.Header().Set("X-Content-Type-Options", "nosniff")
		ri.Body = httpx.GuardBody(w, r, s.bodyTimeout)
		r = r.WithContext(httpx.WithInfo(r.Context(), ri))
		rec := &statusRecorder{ResponseWriter: w, body: ri.Body}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				if rec.status == 0 {
					writeError(rec, r, s.log, fmt.Errorf("panic: %v", p))
				} else {
					s.log.ErrorContext(r.Context(), "panic after response started", "panic", fmt.Sprint(p))
				}
			}
			if rec.status == 0 {
				rec.status = http.StatusOK
			}
			if ri.Body != nil {
				ri.Body.Abandon()
			}
			d := time.Since(start)
			// Route is a template of the document or one of our patterns, never the path;
			// ObserveHTTP reduces the method to a fixed set.
			s.metrics.ObserveHTTP(ri.Route, r.Method, rec.status, d)
			s.log.LogAttrs(r.Context(), slog.LevelInfo, "http request",
				slog.String("request_id", ri.ID),
				slog.String("method", r.Method),
				slog.String("route", ri.Route),
				slog.String("path", r.URL.Path),
				slog.Int("status", rec.status),
				slog.Int64("bytes", rec.bytes),
				slog.Duration("duration", d),
				slog.String("user_id", ri.UserID),
			)
		}()
		next.ServeHTTP(rec, r)
	})
}

// authenticate verifies a bearer token when one is sent and puts the principal in the
// context. It never rejects by itself: whether an operation requires a principal is the
// OpenAPI document's business (see validate), and public routes ignore bad tokens.
// Tokens are taken from the Authorization header only, never from the query string.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return s.authenticateWith(next, true)
}

// bestEffortSeenTimeout bounds recording the user on best-effort routes, which must not
// wait on a database that does not answer.
const bestEffortSeenTimeout = 500 * time.Millisecond

// authenticateWith is authenticate; with userStoreRequired false (public best-effort routes
// such as telemetry) a failure to record the user is logged and the request goes on.
func (s *Server) authenticateWith(next http.Handler, userStoreRequired bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Get("Authorization")
		if h == "" {
			next.ServeHTTP(w, r)
			return
		}
		ri := httpx.InfoFrom(r.Context())
		tok, ok := auth.BearerToken(h)
		if !ok {
			ri.AuthErr = errors.New("authorization header is not a bearer token")
			next.ServeHTTP(w, r)
			return
		}
		p, err := s.verifier.Verify(tok)
		if err != nil {
			ri.AuthErr = err
			next.ServeHTTP(w, r)
			return
		}
		seenCtx, cancel := r.Context(), context.CancelFunc(func() {})
		if !userStoreRequired {
			seenCtx, cancel = context.WithTimeout(seenCtx, bestEffortSeenTimeout)
		}
		err = s.users.Seen(seenCtx, p.UserID, p.Name)
		cancel()
		if err != nil {
			if userStoreRequired {
				writeError(w, r, s.log, apperr.Wrap(apperr.Unavailable, err, "user store unavailable"))
				return
			}
			s.log.WarnContext(r.Context(), "recording user failed; going on", "request_id", ri.ID, "err", err)
		}
		ri.UserID = p.UserID
		next.ServeHTTP(w, r.WithContext(auth.WithPrincipal(r.Context(), p)))
	})
}
