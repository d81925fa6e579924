package httpx

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strconv"

	"github.com/m4sh/backend/internal/apperr"
	"github.com/m4sh/backend/internal/postgres"
)

// problemType is the base of the `type` URIs of our problems; the code is appended.
const problemType = "https://m4sh.dev/problems/"

// statusOf maps error kinds to HTTP statuses. It is the only such mapping for HTTP.
func statusOf(k apperr.Kind) (int, string) {
	switch k {
	case apperr.Invalid:
		return http.StatusBadRequest, "Request validation failed"
	case apperr.Unauthorized:
		return http.StatusUnauthorized, "Authentication required"
	case apperr.Forbidden:
		return http.StatusForbidden, "Forbidden"
	case apperr.NotFound:
		return http.StatusNotFound, "Not found"
	case apperr.MethodNotAllowed:
		return http.StatusMethodNotAllowed, "Method not allowed"
	case apperr.Conflict:
		return http.StatusConflict, "Conflict"
	case apperr.TooLarge:
		return http.StatusRequestEntityTooLarge, "Payload too large"
	case apperr.UnsupportedMedia:
		return http.StatusUnsupportedMediaType, "Unsupported media type"
	case apperr.QuotaExceeded:
		return http.StatusForbidden, "Storage quota exceeded"
	case apperr.RateLimited:
		return http.StatusTooManyRequests, "Too many requests"
	case apperr.TooManyUploads:
		return http.StatusTooManyRequests, "Too many uploads in flight"
	case apperr.RequestTimeout:
		return http.StatusRequestTimeout, "Request timeout"
	case apperr.Unavailable:
		return http.StatusServiceUnavailable, "Service unavailable"
	case apperr.SnapshotDataLost:
		return http.StatusServiceUnavailable, "Snapshot data unavailable"
	default:
		return http.StatusInternalServerError, "Internal server error"
	}
}

// problemBody is an RFC 9457 problem with our `code` and any extension members.
func problemBody(r *http.Request, e *apperr.Error) (int, map[string]any) {
	status, title := statusOf(e.Kind)
	body := map[string]any{}
	for k, v := range e.Extra {
		body[k] = v
	}
	body["type"] = problemType + string(e.Kind)
	body["title"] = title
	body["status"] = status
	body["code"] = string(e.Kind)
	body["instance"] = r.URL.Path
	if status >= 500 || e.Message == "" {
		body["detail"] = title
	} else {
		body["detail"] = e.Message
	}
	if len(e.Fields) > 0 {
		body["errors"] = e.Fields
	}
	if id := RequestID(r.Context()); id != "" {
		body["request_id"] = id
	}
	return status, body
}

// WriteError answers err as problem+json. Errors without a kind become a generic 500 whose
// cause is logged once here, never sent.
//
// Errors without a kind go through postgres.Translate first, so that an unreachable
// database is a 503 (with Retry-After) on every route. A request whose body missed its
// deadline is answered 408 whatever error the layer that read it made of that.
func WriteError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	e, ok := apperr.As(postgres.Translate(err))
	if !ok {
		e = &apperr.Error{Kind: apperr.Internal, Err: err}
	}
	if g := InfoFrom(r.Context()).Body; g.Expired() && e.Kind != apperr.RequestTimeout {
		e = &apperr.Error{Kind: apperr.RequestTimeout, Err: err,
			Message: fmt.Sprintf("the request body did not arrive within %s", g.timeout)}
	}
	if e.Kind == apperr.Unavailable && e.RetryAfter <= 0 {
		withRetry := *e
		withRetry.RetryAfter = postgres.RetryAfterUnavailable
		e = &withRetry
	}
	status, body := problemBody(r, e)
	if status >= 500 {
		log.ErrorContext(r.Context(), "request failed", "request_id", RequestID(r.Context()), "status", status, "err", err)
	} else if e.Err != nil {
		log.DebugContext(r.Context(), "request refused", "request_id", RequestID(r.Context()), "status", status, "err", err)
	}
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(e.RetryAfter.Seconds()))))
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="m4sh"`)
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// DecodeError turns a JSON decoding failure of a request body into a validation error naming
// the body. Errors that already have a kind (a body over its size limit) pass through.
func DecodeError(err error) error {
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
