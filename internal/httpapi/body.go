package httpapi

import (
	"io"

	"github.com/m4sh/backend/internal/apperr"
)

// readBody reads a whole body of at most limit bytes. Memory grows with the bytes that
// actually arrive, never from a declared Content-Length. Past the limit it returns a
// payload_too_large error without reading further.
func readBody(body io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(body, limit+1))
	if err != nil {
		if _, ok := apperr.As(err); ok {
			return nil, err
		}
		return nil, apperr.Wrap(apperr.Invalid, err, "the request body could not be read")
	}
	if int64(len(b)) > limit {
		return nil, errTooLarge(limit)
	}
	return b, nil
}

func errTooLarge(limit int64) error {
	return apperr.New(apperr.TooLarge, "the request body exceeds %d bytes", limit)
}
