package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/m4sh/backend/internal/apperr"
)

// checkStrictJSON enforces what every JSON request body must be beyond its schema
// (README: Hostile input and load): exactly one JSON value (nothing but white space after it) and no string —
// member name or value — holding U+0000, which PostgreSQL cannot store in text. It returns
// a validation_error naming the body, or nil.
//
// It is a fast path: json.Valid (no allocation) and one pass over the bytes looking for
// the escape \u0000 outside of other escapes, instead of decoding the document into
// values and walking them. FuzzStrictJSON holds it to that plain reference.
func checkStrictJSON(b []byte) error {
	if !json.Valid(b) {
		return invalidBody(jsonProblem(b))
	}
	if hasEscapedNUL(b) {
		return invalidBody("strings must not contain U+0000")
	}
	return nil
}

// hasEscapedNUL reports whether valid JSON b has a string holding U+0000. Valid JSON cannot
// hold a raw NUL byte (control characters must be escaped), so only the escape counts.
func hasEscapedNUL(b []byte) bool {
	inString := false
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			inString = !inString
		case c == '\\' && inString:
			if i+5 < len(b) && b[i+1] == 'u' && string(b[i+2:i+6]) == "0000" {
				return true
			}
			i++ // skip the escaped character, so \\ and \" do not confuse the scan
		}
	}
	return false
}

// jsonProblem says why b is not one JSON value, for the client.
func jsonProblem(b []byte) string {
	if len(bytes.TrimSpace(b)) == 0 {
		return "required: the request body is empty"
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	var first json.RawMessage
	err := dec.Decode(&first)
	var syn *json.SyntaxError
	switch {
	case err == nil:
		return fmt.Sprintf("invalid JSON: unexpected data after the JSON value at offset %d", dec.InputOffset())
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "invalid JSON: unexpected end of input"
	case errors.As(err, &syn):
		return fmt.Sprintf("invalid JSON at offset %d: %s", syn.Offset, syn.Error())
	}
	return "invalid JSON"
}

func invalidBody(msg string) error {
	return &apperr.Error{Kind: apperr.Invalid, Message: "the request body is not valid JSON",
		Fields: []apperr.FieldError{{Field: "body", Message: msg}}}
}
