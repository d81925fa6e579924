package ingest

import (
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/m4sh/backend/internal/apperr"
)

// encoding accepts Content-Encoding gzip or none and Content-Type application/json or
// text/plain (sendBeacon); anything else is 415. It reports whether the body is gzip.
func encoding(h http.Header) (gz bool, err error) {
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
// errors, and whether r reached its end.
type limitedReader struct {
	r     io.Reader
	n     int64
	err   error
	atEOF bool // r returned io.EOF: no body is left on the wire
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
	switch {
	case err == io.EOF:
		l.atEOF = true
	case err != nil:
		l.err = err
	}
	return n, err
}

// readBody reads the body into buf (len MaxBytes+1), inflating gzip. It returns how many
// bytes it read as sent and (when gzip) inflated, and whether the body was read to its end,
// also on error. It stops as soon as MaxBytes+1 bytes were read as sent or inflated: at most
// MaxBytes+1 bytes of a gzip bomb are ever inflated (plus what the inflater buffers
// internally, one 32 KiB window at most). A nil body (as in tests) is an empty one.
func (h *Handler) readBody(buf []byte, body io.Reader, gz bool) (n int, sent int64, atEOF bool, err error) {
	if body == nil {
		body = http.NoBody
	}
	raw := &limitedReader{r: body, n: h.MaxBytes + 1}
	defer func() { sent, atEOF = h.MaxBytes+1-raw.n, raw.atEOF }()
	src := io.Reader(raw)
	if gz {
		zr, err := h.gzipReader(raw)
		if err != nil {
			return 0, 0, false, h.bodyError(raw, err)
		}
		defer func() { zr.br.Reset(nil); h.gzips.Put(zr) }()
		src = &zr.zr
	}
	for n < len(buf) && err == nil {
		var m int
		m, err = src.Read(buf[n:])
		n += m
	}
	switch {
	case raw.n == 0:
		return n, 0, false, tooLarge(h.MaxBytes, "as sent")
	case n == len(buf):
		return n, 0, false, tooLarge(h.MaxBytes, "once inflated")
	case err != io.EOF:
		return n, 0, false, h.bodyError(raw, err)
	}
	return n, 0, false, nil
}

// gzipReader returns a pooled gzip reader reading r (the gzip header is read here). When it
// fails, the reader is back in the pool.
func (h *Handler) gzipReader(r io.Reader) (*inflater, error) {
	z, _ := h.gzips.Get().(*inflater)
	if z == nil {
		z = &inflater{}
	}
	z.br.Reset(r) // allocates the buffer the first time
	if err := z.zr.Reset(&z.br); err != nil {
		z.br.Reset(nil)
		h.gzips.Put(z)
		return nil, err
	}
	return z, nil
}

// bodyError classifies a failure to read or inflate the body.
func (h *Handler) bodyError(raw *limitedReader, err error) error {
	if raw.n == 0 {
		return tooLarge(h.MaxBytes, "as sent")
	}
	if raw.err != nil {
		return apperr.Wrap(apperr.Invalid, raw.err, "the request body could not be read")
	}
	return &apperr.Error{Kind: apperr.Invalid, Err: err, Message: "the request body is not valid gzip",
		Fields: []apperr.FieldError{{Field: "body", Message: "not a valid gzip stream"}}}
}
