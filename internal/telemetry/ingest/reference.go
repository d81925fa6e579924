package ingest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"

	"github.com/m4sh/backend/internal/apperr"
	"github.com/m4sh/backend/internal/httpx"
	"github.com/m4sh/backend/internal/telemetry"
)

// maxPropsDepth bounds the nesting of props, which the OpenAPI schema cannot express (the
// operation's description states it).
const maxPropsDepth = 32

// reference is the plain decoder, and the one that words refusals: encoding/json into generic
// values, kin-openapi's VisitJSON against the document's TelemetryEvent / TelemetryBatch
// schemas, then the checks the schema cannot express (eventFrom). The fast decoder is checked
// against it (FuzzDecode).
type reference struct {
	event, batch *openapi3.Schema
}

// decode parses body strictly (UTF-8, one JSON value and nothing after it), validates it
// against the document's TelemetryEvent or TelemetryBatch schema (a batch is an object with
// "events"), and returns the events with their content fields set.
func (rf *reference) decode(body []byte) ([]telemetry.Event, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, httpx.DecodeError(io.EOF)
	}
	if !utf8.Valid(body) {
		return nil, apperr.Validation("the request body is not valid UTF-8", apperr.FieldError{Field: "body", Message: "not valid UTF-8"})
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, httpx.DecodeError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, apperr.Validation("the request body is not valid JSON", apperr.FieldError{Field: "body", Message: "invalid JSON: data after the top-level value"})
	}
	schema, batch := rf.event, false
	if obj, ok := v.(map[string]any); ok {
		if _, ok := obj["events"]; ok {
			schema, batch = rf.batch, true
		}
	}
	if err := schema.VisitJSON(v, openapi3.MultiErrors(), openapi3.EnableFormatValidation(), openapi3.VisitAsRequest()); err != nil {
		return nil, &apperr.Error{Kind: apperr.Invalid, Message: "the request does not match the API contract",
			Fields: httpx.FieldErrors(&openapi3filter.RequestError{Err: err}), Err: err}
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
