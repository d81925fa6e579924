package ingest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
	"unicode/utf8"

	"github.com/m4sh/backend/internal/apperr"
	"github.com/m4sh/backend/internal/telemetry"
)

type discardSink struct{}

func (discardSink) Submit(events []telemetry.Event) int { return 0 }

// FuzzDecode drives the ingest's body reader and decoder (gzip or not, then JSON and
// the OpenAPI schema) with arbitrary bodies. Whatever the input: no panic, nothing read past
// the limit, every refusal is a 400 or 413 kind, and every accepted event is storable.
// It also checks the fast path against the reference path (checkFastDecode): fastDecode
// accepts only what decode accepts, with identical events.
// The seed corpus is in testdata/fuzz/FuzzDecode.
func FuzzDecode(f *testing.F) {
	const limit = 4096 // small, so that the fuzzer reaches the limit often
	h := newTestHandler(f, limit)
	f.Add([]byte(`{"name":"a"}`), false)
	f.Fuzz(func(t *testing.T, body []byte, gz bool) {
		buf := make([]byte, limit+1)
		n, sent, _, err := h.readBody(buf, bytes.NewReader(body), gz)
		if sent > limit+1 {
			t.Fatalf("read %d bytes as sent, limit %d", sent, limit)
		}
		if err != nil {
			if k := apperr.KindOf(err); k != apperr.Invalid && k != apperr.TooLarge {
				t.Fatalf("readBody error of kind %s: %v", k, err)
			}
			return
		}
		if n > limit {
			t.Fatalf("accepted a %d-byte body, limit %d", n, limit)
		}
		events, err := h.ref.decode(buf[:n])
		checkFastDecode(t, h.fast, buf[:n], events, err)
		if err != nil {
			e, ok := apperr.As(err)
			if !ok || e.Kind != apperr.Invalid || len(e.Fields) == 0 {
				t.Fatalf("decode error %v, want a validation error naming fields", err)
			}
			return
		}
		if len(events) < 1 || len(events) > 100 {
			t.Fatalf("accepted %d events", len(events))
		}
		for _, e := range events {
			if c := utf8.RuneCountInString(e.Name); c < 1 || c > 100 || bytes.IndexByte([]byte(e.Name), 0) >= 0 {
				t.Fatalf("accepted name %q", e.Name)
			}
			switch e.Level {
			case "", "debug", "info", "warn", "error":
			default:
				t.Fatalf("accepted level %q", e.Level)
			}
			if e.Props != nil && (!json.Valid(e.Props) || e.Props[0] != '{' || bytes.Contains(e.Props, []byte(`\u0000`))) {
				t.Fatalf("accepted props %s", e.Props)
			}
		}
	})
}

// checkFastDecode checks fastDecode(body) against the reference path's outcome for body
// (decode's events and error): when the fast path accepts, the reference path accepts
// with identical events; when the
// reference path refuses, the fast path declines; the fast path declines a body the
// reference path accepts only when some member name repeats (encoding/json keeps the last
// one, so an earlier value may be anything; such bodies are left to the reference path).
func checkFastDecode(t *testing.T, fast *fastPath, body []byte, want []telemetry.Event, refErr error) {
	t.Helper()
	got, err := fast.decode(body)
	switch {
	case err != nil && err != errDecline && err != errDuplicate:
		t.Fatalf("fastDecode error %v, want errDecline or errDuplicate", err)
	case err == nil && refErr != nil:
		t.Fatalf("fast path accepted %q, which the reference path refuses: %v", body, refErr)
	case err == nil:
		if msg := diffEvents(got, want); msg != "" {
			t.Fatalf("fast path decoded %q differently: %s", body, msg)
		}
	case refErr == nil && !hasDuplicateMember(body):
		t.Fatalf("fast path declined %q, which the reference path accepts (%v)", body, err)
	case err == errDuplicate && !hasDuplicateMember(body):
		t.Fatalf("fast path reports a duplicate member in %q, which has none", body)
	}
}

// diffEvents describes how two decoded event lists differ, or returns "".
func diffEvents(got, want []telemetry.Event) string {
	if len(got) != len(want) {
		return fmt.Sprintf("%d events, want %d", len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		gz, goff := g.TS.Zone()
		wz, woff := w.TS.Zone()
		switch {
		case g.Name != w.Name:
			return fmt.Sprintf("event %d: name %q, want %q", i, g.Name, w.Name)
		case !g.TS.Equal(w.TS) || g.TS.IsZero() != w.TS.IsZero() || gz != wz || goff != woff || g.TS.Location() != w.TS.Location() && g.TS.Location().String() != w.TS.Location().String():
			return fmt.Sprintf("event %d: ts %v, want %v", i, g.TS, w.TS)
		case g.Level != w.Level:
			return fmt.Sprintf("event %d: level %q, want %q", i, g.Level, w.Level)
		case g.SessionID != w.SessionID:
			return fmt.Sprintf("event %d: session_id %q, want %q", i, g.SessionID, w.SessionID)
		case !bytes.Equal(g.Props, w.Props) || (g.Props == nil) != (w.Props == nil):
			return fmt.Sprintf("event %d: props %s, want %s", i, g.Props, w.Props)
		case g.ReceivedAt != w.ReceivedAt || g.UserID != w.UserID || g.UserAgent != w.UserAgent || g.ClientHash != nil || w.ClientHash != nil:
			return fmt.Sprintf("event %d: server fields set by a decoder", i)
		}
	}
	return ""
}

// hasDuplicateMember reports whether some object in the JSON document body repeats a member
// name (after unescaping), with encoding/json's tokenizer.
func hasDuplicateMember(body []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(body))
	type frame struct {
		obj   bool
		names map[string]bool
		key   bool // the next string token is a member name
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if s, ok := tok.(string); ok && top != nil && top.obj && top.key {
			if top.names[s] {
				return true
			}
			top.names[s] = true
			top.key = false
			continue
		}
		if top != nil && top.obj {
			top.key = true // a value ends (or an object or array starts, fixed up below)
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{obj: true, names: map[string]bool{}, key: true})
		case json.Delim('['):
			stack = append(stack, &frame{})
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
	}
}
