package postgres

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/m4sh/backend/internal/apperr"
)

// RetryAfterUnavailable is what a client is told to wait when the database is unreachable.
const RetryAfterUnavailable = 2 * time.Second

// RetryAfterBusy is what a client is told to wait after contention the retries did not absorb.
const RetryAfterBusy = time.Second

// Translate maps the database errors that are not the service's fault to apperr kinds: an
// unreachable or restarting database (refused or dropped connections, shutdown, too many
// connections) → Unavailable with a Retry-After, a value the database refuses to store
// (SQLSTATE class 22: invalid bytes, out-of-range times) → Invalid, contention that outlasted
// the retries (serialization failure, deadlock, lock timeout) → Unavailable. Errors that already have
// a kind, and any other error, are returned as they are. The HTTP and WebSocket layers run
// every error without a kind through it, so a database outage is a 503 on every route
// whether or not a feature called Interpret.
func Translate(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := apperr.As(err); ok {
		return err
	}
	if e, ok := translate(err); ok {
		return e
	}
	return err
}

func translate(err error) (*apperr.Error, bool) {
	if Unreachable(err) {
		return &apperr.Error{Kind: apperr.Unavailable, Message: "the database is unavailable; retry later",
			RetryAfter: RetryAfterUnavailable, Err: err}, true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case strings.HasPrefix(pgErr.Code, "22"):
			return apperr.Wrap(apperr.Invalid, err, "the request holds a value that cannot be stored"), true
		case pgErr.Code == "40001", pgErr.Code == "40P01", pgErr.Code == "55P03":
			// A serialization failure or deadlock that outlasted InTx's retries, or a lock
			// timeout: contention, which passes; the request itself was fine.
			return &apperr.Error{Kind: apperr.Unavailable, Message: "the database is busy; retry later",
				RetryAfter: RetryAfterBusy, Err: err}, true
		}
	}
	return nil, false
}

// Unreachable reports whether err says the database could not be reached or dropped the
// connection: a failed connect, a network error or timeout, a connection that ended
// mid-query, or a server refusing work while it shuts down, starts up or is out of
// connection slots (SQLSTATE class 08, 57P01..57P03, 53300).
func Unreachable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case strings.HasPrefix(pgErr.Code, "08"),
			pgErr.Code == "57P01", pgErr.Code == "57P02", pgErr.Code == "57P03",
			pgErr.Code == "53300":
			return true
		}
		return false
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	switch {
	case errors.As(err, &connectErr), errors.As(err, &netErr), errors.Is(err, net.ErrClosed):
		return true
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		// pgconn reports a connection the server closed mid-message this way.
		return true
	case errors.Is(err, context.Canceled):
		// The client went away; not the database's fault, and nobody reads the answer.
		return false
	}
	return pgconn.Timeout(err) || pgconn.SafeToRetry(err)
}
