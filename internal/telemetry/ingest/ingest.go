// Package ingest is the HTTP side of the public telemetry ingest (README: Telemetry): one
// http.Handler serving POST /api/v1/logs/telemetry/ and its CORS preflight.
//
// It is a plain http.Handler rather than a method of the generated strict server because the
// route's first checks — throttle, then Content-Encoding/Content-Type, then the declared
// Content-Length — must answer before any body byte is read, and the body is then read as a
// stream under one limit as sent and once inflated; a strict handler only runs after the
// generated code has read and decoded the body. The operation stays in openapi/openapi.yaml
// (clients and docs are generated from it, and the events are validated against its
// TelemetryEvent / TelemetryBatch schemas here, whose limits are read from it at start-up).
// The generated strict interface therefore still has a TelemetryIngest method; httpapi mounts
// this handler in front of the generated routes and keeps that method as a stub that never
// runs (excluding the operation from generation would also drop it from the embedded
// document, which routes, validates and documents the API).
//
// A request goes: throttle (429) → encoding (415) → Content-Length (413) → authentication
// (a valid token attaches its user; nothing is refused) → the body, read into a pooled buffer
// (413 once the limit is crossed as sent or inflated, 400 for corrupt gzip) → decode (400) →
// queue (204). A refusal that leaves a body unread says Connection: close and does not wait
// for the rest of it (see refuse).
package ingest

import (
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/m4sh/backend/internal/apperr"
	"github.com/m4sh/backend/internal/auth"
	"github.com/m4sh/backend/internal/httpx"
	"github.com/m4sh/backend/internal/telemetry"
)

// Path is the route served, as the OpenAPI document spells it (the metrics route label).
const Path = "/api/v1/logs/telemetry/"

// Sink receives validated events; telemetry.Writer is the production one.
type Sink interface {
	// Submit queues events without blocking and returns how many were dropped.
	Submit(events []telemetry.Event) (dropped int)
}

// Options are the ingest's collaborators and limits, from the service's configuration.
type Options struct {
	Sink     Sink
	Limiter  *telemetry.Limiter
	Proxies  httpx.Proxies
	Hasher   *telemetry.Hasher
	MaxBytes int64            // body limit as sent and inflated
	Now      func() time.Time // receive clock, default time.Now
}

// Transport is what the HTTP layer around the handler provides.
type Transport struct {
	Doc        *openapi3.T           // the event schemas and their limits
	Log        *slog.Logger          // refusals and failures
	Registerer prometheus.Registerer // m4sh_telemetry_body_bytes; nil registers nothing
	// Authenticate wraps the stage that reads the body: it puts the caller's principal in the
	// request context (auth.WithPrincipal) when a valid bearer token is sent. It must neither
	// refuse nor read the body. Nil leaves every request anonymous.
	Authenticate func(http.Handler) http.Handler
}

// Handler serves the ingest route; see the package comment.
type Handler struct {
	Options
	log       *slog.Logger
	ref       *reference
	fast      *fastPath
	accept    http.Handler // authentication, then readAndSubmit
	sentBytes prometheus.Observer
	inflated  prometheus.Observer
	bufs      sync.Pool // *[]byte of MaxBytes+1
	gzips     sync.Pool // *inflater
}

// New builds the handler; it fails when the document lacks the telemetry schemas or they
// changed shape beyond what the decoders know (see schemas).
func New(o Options, t Transport) (*Handler, error) {
	if o.Sink == nil || o.Limiter == nil || o.Hasher == nil || o.MaxBytes <= 0 || t.Doc == nil || t.Log == nil {
		return nil, errors.New("telemetry ingest: needs a sink, a limiter, a hasher, a size limit, the OpenAPI document and a logger")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	ref, fast, err := schemasFrom(t.Doc)
	if err != nil {
		return nil, fmt.Errorf("telemetry ingest: %w", err)
	}
	h := &Handler{Options: o, log: t.Log, ref: ref, fast: fast}
	bodyBytes := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "m4sh_telemetry_body_bytes",
		Help:    "Telemetry request bodies read, in bytes: as sent, and inflated (gzip bodies); reading stops just past the limit.",
		Buckets: prometheus.ExponentialBuckets(256, 2, 10),
	}, []string{"form"})
	if t.Registerer != nil {
		if err := t.Registerer.Register(bodyBytes); err != nil {
			return nil, fmt.Errorf("telemetry ingest: %w", err)
		}
	}
	h.sentBytes, h.inflated = bodyBytes.WithLabelValues("sent"), bodyBytes.WithLabelValues("inflated")
	n := int(o.MaxBytes) + 1
	h.bufs.New = func() any { b := make([]byte, n); return &b }
	h.accept = http.HandlerFunc(h.readAndSubmit)
	if t.Authenticate != nil {
		h.accept = t.Authenticate(h.accept)
	}
	return h, nil
}

// ServeHTTP answers the route's POST and OPTIONS (the caller mounts it for those two methods).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	httpx.InfoFrom(r.Context()).Route = Path
	setCORS(w.Header())
	if r.Method == http.MethodOptions {
		preflight(w)
		return
	}
	// Cheap refusals first, from the request line and headers alone.
	client := h.Proxies.ClientAddr(r.RemoteAddr, r.Header.Values("X-Forwarded-For"))
	if ok, wait := h.Limiter.Allow(telemetry.ThrottleKey(client)); !ok {
		h.refuse(w, r, &apperr.Error{Kind: apperr.RateLimited, RetryAfter: wait,
			Message: "too many telemetry requests from this client; retry later"}, r.ContentLength != 0)
		return
	}
	if _, err := encoding(r.Header); err != nil {
		h.refuse(w, r, err, r.ContentLength != 0)
		return
	}
	if r.ContentLength > h.MaxBytes {
		h.refuse(w, r, tooLarge(h.MaxBytes, "as sent"), true)
		return
	}
	h.accept.ServeHTTP(w, r)
}

// readAndSubmit reads the body, decodes its events and queues them.
func (h *Handler) readAndSubmit(w http.ResponseWriter, r *http.Request) {
	gz, _ := encoding(r.Header) // checked in ServeHTTP
	bufp := h.bufs.Get().(*[]byte)
	defer h.bufs.Put(bufp)
	n, sent, atEOF, err := h.readBody(*bufp, r.Body, gz)
	h.sentBytes.Observe(float64(sent))
	if gz {
		h.inflated.Observe(float64(n))
	}
	if err != nil {
		h.refuse(w, r, err, !atEOF)
		return
	}
	events, err := h.decode((*bufp)[:n])
	if err != nil {
		httpx.WriteError(w, r, h.log, err)
		return
	}
	// The client address is resolved again rather than carried from ServeHTTP: it is cheap,
	// and the request is all that crosses the authentication layer.
	client := h.Proxies.ClientAddr(r.RemoteAddr, r.Header.Values("X-Forwarded-For"))
	dropped := h.submit(r, client, events)
	w.Header().Set("X-Telemetry-Dropped", strconv.Itoa(dropped))
	w.WriteHeader(http.StatusNoContent)
}

// decode returns the body's events: the fast decoder's when it accepts the body, else the
// reference path's, which decides and words every refusal.
func (h *Handler) decode(body []byte) ([]telemetry.Event, error) {
	if events, err := h.fast.decode(body); err == nil {
		return events, nil
	}
	return h.ref.decode(body)
}

// refuse answers err. When bodyLeft, part of the body may still be on the wire: the answer
// says Connection: close, and the connection's read deadline is moved to now so that net/http
// does not read (up to 256 KiB of) the rest before and after answering — a client dripping its
// body would otherwise hold the connection, and the answer, until the body arrived.
func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, err error, bodyLeft bool) {
	if bodyLeft {
		w.Header().Set("Connection", "close")
	}
	httpx.WriteError(w, r, h.log, err)
	if bodyLeft {
		_ = http.NewResponseController(w).SetReadDeadline(time.Now())
	}
}

// submit completes validated events with what the server knows and queues them for storage.
func (h *Handler) submit(r *http.Request, client netip.Addr, events []telemetry.Event) (dropped int) {
	now := h.Now().UTC()
	var userID string
	if p, ok := auth.FromContext(r.Context()); ok {
		userID = p.UserID
	}
	hash := h.Hasher.Hash(client)
	ua := telemetry.TruncateUserAgent(r.UserAgent())
	for i := range events {
		e := &events[i]
		e.ReceivedAt = now
		if e.TS.IsZero() {
			e.TS = now
		}
		e.UserID, e.UserAgent, e.ClientHash = userID, ua, hash
	}
	return h.Sink.Submit(events)
}

// setCORS marks every response of the route readable from any origin. No credentials are
// involved (the token travels in Authorization), so the wildcard is right.
func setCORS(h http.Header) {
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Expose-Headers", "Retry-After, X-Request-Id, X-Telemetry-Dropped")
}

// preflight answers a CORS preflight from any origin. It is transport, not an API operation:
// documenting OPTIONS in the document would only add a dead method to the generated clients;
// the operation's description documents these headers.
func preflight(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Access-Control-Allow-Methods", "POST, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "Content-Type, Content-Encoding, Authorization, X-Request-Id")
	h.Set("Access-Control-Max-Age", "86400")
	h.Set("Allow", "OPTIONS, POST")
	w.WriteHeader(http.StatusNoContent)
}

// inflater is a gzip reader with the buffered reader under it (gzip.Reader.Reset would
// allocate a new bufio.Reader for a source that is not an io.ByteReader, every request).
type inflater struct {
	br bufio.Reader
	zr gzip.Reader
}
