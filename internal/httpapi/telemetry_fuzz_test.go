package httpapi

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"

	"github.com/m4sh/backend/gen/api"
	"github.com/m4sh/backend/internal/apperr"
	"github.com/m4sh/backend/internal/telemetry"
)

type discardSink struct{}

func (discardSink) Submit(events []telemetry.Event) int { return 0 }

// FuzzTelemetryDecode drives the ingest's body reader and decoder (gzip or not, then JSON and
// the OpenAPI schema) with arbitrary bodies. Whatever the input: no panic, nothing read past
// the limit, every refusal is a 400 or 413 kind, and every accepted event is storable.
// The seed corpus is in testdata/fuzz/FuzzTelemetryDecode.
func FuzzTelemetryDecode(f *testing.F) {
	doc, err := api.GetSwagger()
	if err != nil {
		f.Fatal(err)
	}
	const limit = 4096 // small, so that the fuzzer reaches the limit often
	ti, err := newTelemetryIngest(Telemetry{
		Sink: discardSink{}, Limiter: telemetry.NewLimiter(telemetry.LimiterOptions{Limit: 1}),
		Hasher: telemetry.NewHasher([]byte("fuzz-salt-0123456789")), MaxBytes: limit,
	}, doc, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(`{"name":"a"}`), false)
	f.Fuzz(func(t *testing.T, body []byte, gz bool) {
		buf := make([]byte, limit+1)
		n, sent, err := ti.readBody(buf, bytes.NewReader(body), gz)
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
		events, err := ti.decode(buf[:n])
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
