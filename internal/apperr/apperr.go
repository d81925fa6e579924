// Package apperr defines the service's error kinds. Features return these (wrapping any cause
// with %w); the HTTP and WebSocket layers map kinds to statuses and close codes in exactly one
// place each. It imports nothing from the rest of the service.
package apperr

import (
	"errors"
	"fmt"
	"time"
)

// Kind is a stable, machine-readable error class. Its string value is the problem `code`
// clients see, so values never change once published.
type Kind string

// The error kinds. Keep in sync with the Problem.code enum in openapi/openapi.yaml.
const (
	Invalid          Kind = "validation_error"
	Unauthorized     Kind = "unauthorized"
	Forbidden        Kind = "forbidden"
	NotFound         Kind = "not_found"
	MethodNotAllowed Kind = "method_not_allowed"
	Conflict         Kind = "conflict"
	TooLarge         Kind = "payload_too_large"
	UnsupportedMedia Kind = "unsupported_media_type"
	QuotaExceeded    Kind = "quota_exceeded"
	RateLimited      Kind = "rate_limited"
	TooManyUploads   Kind = "too_many_uploads"
	RequestTimeout   Kind = "request_timeout"
	Unavailable      Kind = "unavailable"
	// SnapshotDataLost: stored bytes a revision needs are missing or do not match their
	// hash — a fault of the service's storage, not of the request (503; the revision
	// exists, so 404 would mislead).
	SnapshotDataLost Kind = "snapshot_data_lost"
	Internal         Kind = "internal"
)

// FieldError names one offending input field of a validation error.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Error is an error with a kind and a message that is safe to show to a client. The wrapped
// cause is for logs only and never reaches a client.
type Error struct {
	Kind    Kind
	Message string         // client-safe detail; empty means the kind's default title
	Fields  []FieldError   // for Invalid
	Extra   map[string]any // extension members placed at the top level of the problem body
	// RetryAfter, when positive, is sent as the Retry-After header (429, 503).
	RetryAfter time.Duration
	Err        error // cause, logged, never shown
}

func (e *Error) Error() string {
	msg := string(e.Kind)
	if e.Message != "" {
		msg += ": " + e.Message
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// New returns an error of kind k with a client-safe message.
func New(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an error of kind k with a client-safe message and a cause kept for logs.
func Wrap(k Kind, err error, msg string) *Error {
	return &Error{Kind: k, Message: msg, Err: err}
}

// Validation returns an Invalid error naming the offending fields.
func Validation(msg string, fields ...FieldError) *Error {
	return &Error{Kind: Invalid, Message: msg, Fields: fields}
}

// As returns the *Error in err's chain, if any.
func As(err error) (*Error, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e, true
	}
	return nil, false
}

// KindOf returns the kind of err, Internal for errors without one and "" for nil.
func KindOf(err error) Kind {
	if err == nil {
		return ""
	}
	if e, ok := As(err); ok {
		return e.Kind
	}
	return Internal
}

// Is reports whether err has kind k.
func Is(err error, k Kind) bool { return KindOf(err) == k }
