// Package page implements the API's keyset pagination convention: pages are ordered newest
// first by (time, id), and the opaque cursor encodes the last row of the previous page, so
// pages stay stable while rows are inserted.
package page

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/m4sh/backend/internal/apperr"
)

// Defaults of the convention (see the OpenAPI document's Limit parameter).
const (
	DefaultLimit = 50
	MaxLimit     = 100
)

// Cursor is the position after which the next page starts.
type Cursor struct {
	Time time.Time
	ID   uuid.UUID
}

// Request is a decoded page request.
type Request struct {
	Limit int
	After *Cursor // nil: first page
}

// Parse decodes the limit and cursor query parameters.
func Parse(limit *int, cursor *string) (Request, error) {
	r := Request{Limit: DefaultLimit}
	if limit != nil {
		if *limit < 1 || *limit > MaxLimit {
			return r, apperr.Validation("limit out of range", apperr.FieldError{Field: "query.limit", Message: "must be between 1 and 100"})
		}
		r.Limit = *limit
	}
	if cursor != nil && *cursor != "" {
		c, err := Decode(*cursor)
		if err != nil {
			return r, apperr.Validation("invalid cursor", apperr.FieldError{Field: "query.cursor", Message: "not a cursor returned by this API"})
		}
		r.After = &c
	}
	return r, nil
}

// Encode returns the opaque form of c.
func Encode(c Cursor) string {
	var b [24]byte
	binary.BigEndian.PutUint64(b[:8], uint64(c.Time.UnixMicro()))
	copy(b[8:], c.ID[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// The times a cursor may hold: rows are stamped by the database's clock, so a cursor outside
// this range was not made by this API. The first page's bound (Bounds) is the upper end;
// PostgreSQL (and pgx's encoding) would refuse or mis-store times far outside it.
var (
	minCursorTime = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
	maxCursorTime = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
)

// Decode parses an opaque cursor. It refuses any other encoding of the same bytes and a time
// outside the range rows can have, so a forged cursor is an error rather than a first page.
func Decode(s string) (Cursor, error) {
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != 24 {
		return Cursor{}, errors.New("malformed cursor")
	}
	var c Cursor
	micros := int64(binary.BigEndian.Uint64(b[:8]))
	if micros < minCursorTime.UnixMicro() || micros >= maxCursorTime.UnixMicro() {
		return Cursor{}, errors.New("cursor time out of range")
	}
	c.Time = time.UnixMicro(micros).UTC()
	copy(c.ID[:], b[8:])
	return c, nil
}

// Bounds returns the keyset bounds for a query of the form
// `WHERE (t, id) < (@before_time, @before_id) ORDER BY t DESC, id DESC LIMIT @limit`:
// the first page starts after the greatest possible key.
func (r Request) Bounds() (time.Time, uuid.UUID) {
	if r.After == nil {
		return time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), uuid.Max
	}
	return r.After.Time, r.After.ID
}

// FetchLimit is one more than the page size, to learn whether a next page exists.
func (r Request) FetchLimit() int32 { return int32(r.Limit + 1) }

// Next trims rows fetched with FetchLimit to the page and returns the next cursor, if any.
func Next[T any](r Request, rows []T, key func(T) Cursor) ([]T, *string) {
	if len(rows) <= r.Limit {
		return rows, nil
	}
	rows = rows[:r.Limit]
	c := Encode(key(rows[len(rows)-1]))
	return rows, &c
}
