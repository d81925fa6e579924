package httpapi

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/m4sh/backend/gen/api"
	"github.com/m4sh/backend/internal/apperr"
	"github.com/m4sh/backend/internal/auth"
	"github.com/m4sh/backend/internal/telemetry"
)

// The telemetry ingest (CONTRACT §5) is the one route whose first checks must run before the
// body is read, before authentication and before OpenAPI validation: throttle → encoding →
// size (streaming, gzip inflated under the same limit). They live in telemetryGate, an http
// middleware mounted on that route only, in front of the usual authenticate → validate →
// strict handler chain. The gate leaves the inflated body in the request (for the generated
// decoder) and in the context (for TelemetryIngest), which decodes it once more strictly and
// validates it against the document's TelemetryEvent / TelemetryBatch schemas, so that the
// contract stays the source of truth for the event shape. In front of the strict handler,
// telemetryFast first tries fastDecode (telemetry_fast.go), a single-pass decoder of the same
// language that the fuzz target checks against that reference path; what it declines takes
// the reference path, which words every refusal.
//
// CORS preflight is answered by telemetryPreflight, also in front of validation: a preflight
// is a transport concern, and documenting OPTIONS as an operation would only add a dead
// method to the generated interface and clients. The operation's description documents it.

const telemetryPath = "/api/v1/logs/telemetry/"

// Limits on event content that the OpenAPI schema cannot express.
const (
	maxPropsDepth = 32
)

// TelemetrySink receives validated events; telemetry.Writer is the production one.
type TelemetrySink interface {
	// Submit queues events without blocking and returns how many were dropped.
	Submit(events []telemetry.Event) (dropped int)
}

// Telemetry are the ingest's collaborators and limits.
type Telemetry struct {
	Sink     TelemetrySink
	Limiter  *telemetry.Limiter
	Proxies  telemetry.Proxies
	Hasher   *telemetry.Hasher
	MaxBytes int64            // body limit as sent and inflated
	Now      func() time.Time // receive clock, default time.Now
}

// telemetryIngest is the Server's telemetry state.
type telemetryIngest struct {
	Telemetry
	event, batch *openapi3.Schema
	bodyBytes    *prometheus.HistogramVec
	sentBytes    prometheus.Observer // bodyBytes{form="sent"}
	inflated     prometheus.Observer // bodyBytes{form="inflated"}
	bufs         sync.Pool           // *[]byte of MaxBytes+1
	gzips        sync.Pool           // *inflater
}

func newTelemetryIngest(t Telemetry, doc *openapi3.T, reg prometheus.Registerer) (*telemetryIngest, error) {
	if t.Sink == nil || t.Limiter == nil || t.Hasher == nil || t.MaxBytes <= 0 {
		return nil, errors.New("httpapi: telemetry needs a sink, a limiter, a hasher and a size limit")
	}
	if t.Now == nil {
		t.Now = time.Now
	}
	ti := &telemetryIngest{Telemetry: t}
	for name, dst := range map[string]**openapi3.Schema{"TelemetryEvent": &ti.event, "TelemetryBatch": &ti.batch} {
		ref := doc.Components.Schemas[name]
		if ref == nil || ref.Value == nil {
			return nil, fmt.Errorf("httpapi: schema %s missing from the OpenAPI document", name)
		}
		*dst = ref.Value
	}
	ti.bodyBytes = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "m4sh_telemetry_body_bytes",
		Help:    "Telemetry request bodies read, in bytes: as sent, and inflated (gzip bodies); reading stops just past the limit.",
		Buckets: prometheus.ExponentialBuckets(256, 2, 10),
	}, []string{"form"})
	if reg != nil {
		reg.MustRegister(ti.bodyBytes)
	}
	ti.sentBytes, ti.inflated = ti.bodyBytes.WithLabelValues("sent"), ti.bodyBytes.WithLabelValues("inflated")
	n := int(t.MaxBytes) + 1
	ti.bufs.New = func() any { b := make([]byte, n); return &b }
	return ti, nil
}

// telemetryReq is what the gate hands to TelemetryIngest through the context.
type telemetryReq struct {
	body      []byte
	client    netip.Addr
	userAgent string
}

type telemetryReqKey struct{}

// setCORS marks every response of the route readable from any origin. No credentials are
// involved (the token travels in Authorization), so the wildcard is right.
func setCORS(h http.Header) {
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Expose-Headers", "Retry-After, X-Request-Id, X-Telemetry-Dropped")
}

// telemetryPreflight answers CORS preflight requests for the ingest route from any origin.
func (s *Server) telemetryPreflight(w http.ResponseWriter, r *http.Request) {
	infoFrom(r.Context()).route = telemetryPath
	h := w.Header()
	setCORS(h)
	h.Set("Access-Control-Allow-Methods", "POST, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "Content-Type, Content-Encoding, Authorization, X-Request-Id")
	h.Set("Access-Control-Max-Age", "86400")
	h.Set("Allow", "OPTIONS, POST")
	w.WriteHeader(http.StatusNoContent)
}

// telemetryGate runs the ingest's cheap checks in order — throttle, encoding, size — and
// reads the body (inflated when gzip) into a pooled buffer of at most MaxBytes.
func (s *Server) telemetryGate(next http.Handler) http.Handler {
	t := s.telemetry
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		infoFrom(r.Context()).route = telemetryPath
		setCORS(w.Header())

		client := t.Proxies.ClientAddr(r.RemoteAddr, r.Header.Values("X-Forwarded-For"))
		if ok, wait := t.Limiter.Allow(telemetry.ThrottleKey(client)); !ok {
			writeError(w, r, s.log, &apperr.Error{Kind: apperr.RateLimited, RetryAfter: wait,
				Message: "too many telemetry requests from this client; retry later"})
			return
		}
		gz, err := telemetryEncoding(r.Header)
		if err != nil {
			writeError(w, r, s.log, err)
			return
		}
		if r.ContentLength > t.MaxBytes {
			writeError(w, r, s.log, tooLarge(t.MaxBytes, "as sent"))
			return
		}
		bufp := t.bufs.Get().(*[]byte)
		defer t.bufs.Put(bufp)
		n, sent, err := t.readBody(*bufp, r.Body, gz)
		t.sentBytes.Observe(float64(sent))
		if gz {
			t.inflated.Observe(float64(n))
		}
		if err != nil {
			writeError(w, r, s.log, err)
			return
		}
		body := (*bufp)[:n]
		tr := &telemetryReq{body: body, client: client, userAgent: r.UserAgent()}
		r = r.WithContext(context.WithValue(r.Context(), telemetryReqKey{}, tr))
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(n)
		r.Header.Del("Content-Encoding")
		next.ServeHTTP(w, r)
	})
}

// telemetryEncoding accepts Content-Encoding gzip or none and Content-Type application/json
// or text/plain (sendBeacon); anything else is 415. It reports whether the body is gzip.
func telemetryEncoding(h http.Header) (gz bool, err error) {
	for _, v := range h.Values("Content-Encoding") {
		for _, enc := range strings.Split(v, ",") {
			switch strings.ToLower(strings.TrimSpace(enc)) {
			case "", "identity":
			case "gzip", "x-gzip":
				if gz {
					return false, unsupportedEncoding("gzip applied twice")
				}
				gz = true
			default:
				return false, unsupportedEncoding(fmt.Sprintf("%q", strings.TrimSpace(enc)))
			}
		}
	}
	ct := h.Get("Content-Type")
	mt, _, _ := strings.Cut(ct, ";")
	mt = strings.TrimSpace(mt)
	if !strings.EqualFold(mt, "application/json") && !strings.EqualFold(mt, "text/plain") {
		return false, &apperr.Error{Kind: apperr.UnsupportedMedia,
			Message: "Content-Type must be application/json or text/plain",
			Fields:  []apperr.FieldError{{Field: "header.Content-Type", Message: fmt.Sprintf("%q is not application/json or text/plain", ct)}}}
	}
	return gz, nil
}

func unsupportedEncoding(what string) error {
	return &apperr.Error{Kind: apperr.UnsupportedMedia,
		Message: "Content-Encoding must be gzip or absent",
		Fields:  []apperr.FieldError{{Field: "header.Content-Encoding", Message: what + " is not supported"}}}
}

func tooLarge(limit int64, how string) error {
	return apperr.New(apperr.TooLarge, "the request body exceeds %d bytes %s", limit, how)
}

// limitedReader reads at most n bytes from r and remembers any error of r itself, so that
// the caller can tell "too large as sent" (n reached 0) and "the client went away" from gzip
// errors.
type limitedReader struct {
	r   io.Reader
	n   int64
	err error
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	if err != nil && err != io.EOF {
		l.err = err
	}
	return n, err
}

// readBody reads the body into buf (len MaxBytes+1), inflating gzip. It returns how many
// bytes it read as sent and (when gzip) inflated, also on error. It stops as soon as
// MaxBytes+1 bytes were read as sent or inflated: at most MaxBytes+1 bytes of a gzip bomb are
// ever inflated (plus what the inflater buffers internally, one 32 KiB window at most).
func (t *telemetryIngest) readBody(buf []byte, body io.Reader, gz bool) (n int, sent int64, err error) {
	raw := &limitedReader{r: body, n: t.MaxBytes + 1}
	defer func() { sent = t.MaxBytes + 1 - raw.n }()
	src := io.Reader(raw)
	if gz {
		zr, err := t.gzipReader(raw)
		if err != nil {
			return 0, 0, t.bodyError(raw, err)
		}
		defer func() { zr.br.Reset(nil); t.gzips.Put(zr) }()
		src = &zr.zr
	}
	for n < len(buf) && err == nil {
		var m int
		m, err = src.Read(buf[n:])
		n += m
	}
	switch {
	case raw.n == 0:
		return n, 0, tooLarge(t.MaxBytes, "as sent")
	case n == len(buf):
		return n, 0, tooLarge(t.MaxBytes, "once inflated")
	case err != io.EOF:
		return n, 0, t.bodyError(raw, err)
	}
	return n, 0, nil
}

// inflater is a gzip reader with the buffered reader under it (gzip.Reader.Reset would
// allocate a new bufio.Reader for a source that is not an io.ByteReader, every request).
type inflater struct {
	br bufio.Reader
	zr gzip.Reader
}

// gzipReader returns a pooled gzip reader reading r (the gzip header is read here). When it
// fails, the reader is back in the pool.
func (t *telemetryIngest) gzipReader(r io.Reader) (*inflater, error) {
	z, _ := t.gzips.Get().(*inflater)
	if z == nil {
		z = &inflater{}
	}
	z.br.Reset(r) // allocates the buffer the first time
	if err := z.zr.Reset(&z.br); err != nil {
		z.br.Reset(nil)
		t.gzips.Put(z)
		return nil, err
	}
	return z, nil
}

// bodyError classifies a failure to read or inflate the body.
func (t *telemetryIngest) bodyError(raw *limitedReader, err error) error {
	if raw.n == 0 {
		return tooLarge(t.MaxBytes, "as sent")
	}
	if raw.err != nil {
		return apperr.Wrap(apperr.Invalid, raw.err, "the request body could not be read")
	}
	return &apperr.Error{Kind: apperr.Invalid, Err: err, Message: "the request body is not valid gzip",
		Fields: []apperr.FieldError{{Field: "body", Message: "not a valid gzip stream"}}}
}

// TelemetryIngest validates the events the gate read and queues them for storage. It is the
// reference path: requests whose body the fast path (telemetryFast) accepted never get here.
func (s *Server) TelemetryIngest(ctx context.Context, _ api.TelemetryIngestRequestObject) (api.TelemetryIngestResponseObject, error) {
	tr, ok := ctx.Value(telemetryReqKey{}).(*telemetryReq)
	if !ok {
		return nil, errors.New("telemetry request did not pass the ingest gate")
	}
	events, err := s.telemetry.decode(tr.body)
	if err != nil {
		return nil, err
	}
	return s.telemetry.submit(ctx, tr, events), nil
}

// telemetryFast sits where the generated strict handler would run for the ingest route,
// after authentication and request validation. When fastDecode accepts the body (exactly
// what decode would accept, with the same events; see telemetry_fast.go) it queues the
// events and answers as TelemetryIngest would, sparing the generated handler's decode of the
// body (which the handler does not use) and the reference decode. Otherwise the request goes
// on to the generated handler and TelemetryIngest, which decide and word any refusal.
func (s *Server) telemetryFast(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if tr, ok := r.Context().Value(telemetryReqKey{}).(*telemetryReq); ok {
			if events, err := fastDecode(tr.body); err == nil {
				if err := s.telemetry.submit(r.Context(), tr, events).VisitTelemetryIngestResponse(w); err != nil {
					writeError(w, r, s.log, err)
				}
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// submit completes validated events with what the server knows and queues them for storage.
func (t *telemetryIngest) submit(ctx context.Context, tr *telemetryReq, events []telemetry.Event) api.TelemetryIngest204Response {
	now := t.Now().UTC()
	var userID string
	if p, ok := auth.FromContext(ctx); ok {
		userID = p.UserID
	}
	hash := t.Hasher.Hash(tr.client)
	ua := telemetry.TruncateUserAgent(tr.userAgent)
	for i := range events {
		e := &events[i]
		e.ReceivedAt = now
		if e.TS.IsZero() {
			e.TS = now
		}
		e.UserID, e.UserAgent, e.ClientHash = userID, ua, hash
	}
	dropped := t.Sink.Submit(events)
	return api.TelemetryIngest204Response{Headers: api.TelemetryIngest204ResponseHeaders{XTelemetryDropped: dropped}}
}

// decode parses body strictly (UTF-8, one JSON value and nothing after it), validates it
// against the document's TelemetryEvent or TelemetryBatch schema (a batch is an object with
// "events"), and returns the events with their content fields set.
func (t *telemetryIngest) decode(body []byte) ([]telemetry.Event, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, decodeError(io.EOF)
	}
	if !utf8.Valid(body) {
		return nil, apperr.Validation("the request body is not valid UTF-8", apperr.FieldError{Field: "body", Message: "not valid UTF-8"})
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, decodeError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, apperr.Validation("the request body is not valid JSON", apperr.FieldError{Field: "body", Message: "invalid JSON: data after the top-level value"})
	}
	schema, batch := t.event, false
	if obj, ok := v.(map[string]any); ok {
		if _, ok := obj["events"]; ok {
			schema, batch = t.batch, true
		}
	}
	if err := schema.VisitJSON(v, openapi3.MultiErrors(), openapi3.EnableFormatValidation(), openapi3.VisitAsRequest()); err != nil {
		return nil, &apperr.Error{Kind: apperr.Invalid, Message: "the request does not match the API contract",
			Fields: fieldErrors(&openapi3filter.RequestError{Err: err}), Err: err}
	}
	var raw []any
	prefix := "body"
	if batch {
		raw = v.(map[string]any)["events"].([]any)
	} else {
		raw = []any{v}
	}
	events := make([]telemetry.Event, len(raw))
	var fields []apperr.FieldError
	for i, r := range raw {
		field := prefix
		if batch {
			field = fmt.Sprintf("body.events.%d", i)
		}
		fields = eventFrom(&events[i], r.(map[string]any), field, fields)
	}
	if len(fields) > 0 {
		return nil, apperr.Validation("the request does not match the API contract", fields...)
	}
	return events, nil
}

// eventFrom fills e from a schema-valid event object, checking what the schema cannot say:
// a real calendar time, no U+0000 (PostgreSQL text and jsonb refuse it), bounded nesting.
func eventFrom(e *telemetry.Event, m map[string]any, field string, fields []apperr.FieldError) []apperr.FieldError {
	e.Name = m["name"].(string)
	if strings.IndexByte(e.Name, 0) >= 0 {
		fields = append(fields, apperr.FieldError{Field: field + ".name", Message: "must not contain U+0000"})
	}
	if ts, ok := m["ts"].(string); ok {
		t, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			fields = append(fields, apperr.FieldError{Field: field + ".ts", Message: "must be an RFC 3339 date-time"})
		}
		e.TS = t
	}
	if l, ok := m["level"].(string); ok {
		e.Level = l
	}
	if sid, ok := m["session_id"].(string); ok {
		e.SessionID = sid
		if strings.IndexByte(sid, 0) >= 0 {
			fields = append(fields, apperr.FieldError{Field: field + ".session_id", Message: "must not contain U+0000"})
		}
	}
	if props, ok := m["props"]; ok {
		if msg := checkJSON(props, 1); msg != "" {
			fields = append(fields, apperr.FieldError{Field: field + ".props", Message: msg})
		} else if b, err := json.Marshal(props); err != nil {
			fields = append(fields, apperr.FieldError{Field: field + ".props", Message: "not representable as JSON"})
		} else {
			e.Props = b
		}
	}
	return fields
}

// checkJSON returns why v cannot be stored as jsonb, or "".
func checkJSON(v any, depth int) string {
	if depth > maxPropsDepth {
		return fmt.Sprintf("must not nest deeper than %d levels", maxPropsDepth)
	}
	switch x := v.(type) {
	case string:
		if strings.IndexByte(x, 0) >= 0 {
			return "must not contain U+0000"
		}
	case map[string]any:
		for k, e := range x {
			if strings.IndexByte(k, 0) >= 0 {
				return "must not contain U+0000"
			}
			if msg := checkJSON(e, depth+1); msg != "" {
				return msg
			}
		}
	case []any:
		for _, e := range x {
			if msg := checkJSON(e, depth+1); msg != "" {
				return msg
			}
		}
	}
	return ""
}

// decodeError turns a JSON decoding failure of a request body into a validation error naming
// the body. Errors that already have a kind (a body over its size limit) pass through.
func decodeError(err error) error {
	if _, ok := apperr.As(err); ok {
		return err
	}
	var maxErr *http.MaxBytesError
	if errors.As(err, &maxErr) {
		return apperr.Wrap(apperr.TooLarge, err, fmt.Sprintf("the request body exceeds %d bytes", maxErr.Limit))
	}
	msg := "could not be decoded"
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		msg = "required: the request body is empty"
	case errors.Is(err, io.ErrUnexpectedEOF):
		msg = "invalid JSON: unexpected end of input"
	case errors.As(err, &syn):
		msg = "invalid JSON: " + syn.Error()
	case errors.As(err, &typ):
		msg = fmt.Sprintf("invalid JSON: %s where %s was expected", typ.Value, typ.Type)
	}
	return &apperr.Error{Kind: apperr.Invalid, Message: "the request body is not valid JSON", Err: err,
		Fields: []apperr.FieldError{{Field: "body", Message: msg}}}
}
