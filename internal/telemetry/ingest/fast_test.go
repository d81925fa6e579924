package ingest

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/m4sh/backend/gen/api"
	"github.com/m4sh/backend/internal/telemetry"
)

// newTestHandler is the ingest with the real document's schemas, a sink that keeps nothing
// and the given body limit.
func newTestHandler(t testing.TB, limit int64) *Handler {
	t.Helper()
	doc, err := api.GetSpec()
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(Options{
		Sink: discardSink{}, Limiter: telemetry.NewLimiter(telemetry.LimiterOptions{Limit: 1}),
		Hasher: telemetry.NewHasher([]byte("fuzz-salt-0123456789")), MaxBytes: limit,
	}, Transport{Doc: doc, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestFastDecodeAccepts: the fast path takes the usual bodies itself (else it would
// be no faster), with the reference path's events.
func TestFastDecodeAccepts(t *testing.T) {
	h := newTestHandler(t, 32768)
	var batch strings.Builder
	batch.WriteString(`{"events":[`)
	for i := range 100 {
		if i > 0 {
			batch.WriteByte(',')
		}
		fmt.Fprintf(&batch, `{"name":"canvas.stroke","ts":"2026-03-01T12:00:%02d.5Z","level":"debug","session_id":"s-%d","props":{"tool":"pen","points":%d,"ms":%d}}`, i%60, i/10, 10+i, 3*i)
	}
	batch.WriteString(`]}`)
	deep := func(n int) string { return strings.Repeat(`{"a":`, n) + `[1]` + strings.Repeat("}", n) }
	for _, body := range []string{
		`{"name":"editor.opened"}`,
		`{"name":"editor.opened","level":"info","session_id":"s-42","props":{"tool":"pen","ms":12}}`,
		batch.String(),
		`{"events":[{"name":"a"},{"props":{"b":1,"a":2},"name":"b","session_id":"x"}]}`,
		" \t\r\n{ \"events\" : [ { \"name\" : \"a\" , \"props\" : { \"b\" : [ 1 , 2 ] , \"a\" : { } } } ] } \n",
		`{"name":"a\"b\\\/\b\f\n\r\t\u00e9\ud83d\ude00\ud800x\udc00","props":{"<&>":"\u2028\u2029\u007f\u0001 é ` + "\u2028" + `","\ud800\ud800":"\uD834"}}`,
		`{"name":"a","props":{"z":1,"a":{"y":[true,false,null,[],{}],"b":-0.5e+10,"B":0,"é":1E-2},"m":"s","":""}}`,
		`{"name":"a","props":{"a":-0,"b":0.0,"c":1e400,"d":123456789012345678901234567890}}`,
		`{"name":"` + strings.Repeat("é", 100) + `"}`,
		`{"name":"` + strings.Repeat("\U0001F600", 100) + `","session_id":"` + strings.Repeat("s", 200) + `"}`,
		`{"name":"a","ts":"2026-01-01T00:00:00.123456789123-23:59"}`,
		`{"name":"a","ts":"2024-02-29T00:00:00+05:30","level":"error"}`,
		`{"name":"a","ts":"2026-01-01T00:00:00\u005a","level":"w\u0061rn"}`,
		`{"name":"a","props":` + deep(30) + `}`, // props is level 1, its array 31, the 1 is level 32
	} {
		want, err := h.ref.decode([]byte(body))
		if err != nil {
			t.Fatalf("reference path refuses %q: %v", body, err)
		}
		got, err := h.fast.decode([]byte(body))
		if err != nil {
			t.Errorf("fast path declined %q: %v", body, err)
			continue
		}
		if msg := diffEvents(got, want); msg != "" {
			t.Errorf("%q: %s", body, msg)
		}
	}
}

// TestFastDecodeDeclines: what the reference path refuses, the fast path declines
// (the fuzz target checks this on arbitrary input; these are the schema's edges).
func TestFastDecodeDeclines(t *testing.T) {
	h := newTestHandler(t, 1<<20)
	many := func(n int) string {
		return `{"events":[` + strings.TrimSuffix(strings.Repeat(`{"name":"a"},`, n), ",") + `]}`
	}
	deep := func(n int) string { return strings.Repeat(`{"a":`, n) + `1` + strings.Repeat("}", n) }
	for _, body := range []string{
		``, ` `, `null`, `[]`, `{}`, `"x"`, `{"name":"a"}x`, `{"name":"a"}{"name":"b"}`, `{"name":"a"`,
		`{"Name":"a"}`, `{"name":""}`, `{"name":5}`, `{"name":null}`, `{"name":"a","x":1}`,
		`{"name":"` + strings.Repeat("é", 101) + `"}`, `{"name":"a\u0000"}`, "{\"name\":\"\xff\"}",
		"{\"name\":\"a\tb\"}", `{"name":"\x"}`, `{"name":"\u12"}`,
		`{"name":"a","ts":"2026-02-30T00:00:00Z"}`, `{"name":"a","ts":"2026-12-31T23:59:60Z"}`,
		`{"name":"a","ts":"2026-01-01t00:00:00Z"}`, `{"name":"a","ts":"2026-01-01T00:00:00+24:00"}`,
		`{"name":"a","ts":"2026-01-01T00:00:00.Z"}`, `{"name":"a","ts":"2026-01-01 00:00:00Z"}`,
		`{"name":"a","ts":"2026-01-01T00:00:00"}`, `{"name":"a","ts":null}`,
		`{"name":"a","level":"INFO"}`, `{"name":"a","level":"fatal"}`,
		`{"name":"a","session_id":""}`, `{"name":"a","session_id":"` + strings.Repeat("s", 201) + `"}`,
		`{"name":"a","session_id":"\u0000"}`,
		`{"name":"a","props":null}`, `{"name":"a","props":[]}`, `{"name":"a","props":"x"}`,
		`{"name":"a","props":{"\u0000":1}}`, `{"name":"a","props":{"a":["\u0000"]}}`,
		`{"name":"a","props":` + deep(32) + `}`, `{"name":"a","props":{"a":01}}`,
		`{"name":"a","props":{"a":1.}}`, `{"name":"a","props":{"a":-}}`, `{"name":"a","props":{"a":tru}}`,
		`{"name":"a","props":{"a":1,}}`, `{"name":"a","props":{"a" 1}}`,
		`{"events":[]}`, many(101), `{"events":{}}`, `{"events":[{"name":"a"}],"x":1}`,
		`{"name":"a","events":[{"name":"b"}]}`, `{"events":[{"name":"a"}],"events":[{"name":"b"}]}`,
		`{"events":[{"name":"a","x":1}]}`, `{"events":[{}]}`, `{"events":[1]}`, `{"events":[{"name":"a"},]}`,
	} {
		_, refErr := h.ref.decode([]byte(body))
		if refErr == nil && !hasDuplicateMember([]byte(body)) {
			t.Fatalf("reference path accepts %q", body)
		}
		if _, err := h.fast.decode([]byte(body)); err == nil {
			t.Errorf("fast path accepted %q", body)
		}
	}
}

// TestSchemasFromDocument: the fast decoder's limits are the document's, and a document whose
// telemetry schemas change shape is refused at start-up rather than decoded by a fast path
// that no longer matches it.
func TestSchemasFromDocument(t *testing.T) {
	h := newTestHandler(t, 32768)
	got := fmt.Sprintf("%+v", h.fast.limits)
	if want := "{maxEvents:100 name:{min:1 max:100} session:{min:1 max:200} levels:[debug info warn error]}"; got != want {
		t.Errorf("limits = %s, want %s", got, want)
	}
	for name, change := range map[string]func(event, batch *openapi3.Schema){
		"a new event member": func(e, _ *openapi3.Schema) {
			e.Properties["colour"] = openapi3.NewSchemaRef("", openapi3.NewStringSchema())
		},
		"name gets a pattern":        func(e, _ *openapi3.Schema) { e.Properties["name"].Value.Pattern = "^[a-z.]+$" },
		"session_id loses its bound": func(e, _ *openapi3.Schema) { e.Properties["session_id"].Value.MaxLength = nil },
		"ts becomes a date":          func(e, _ *openapi3.Schema) { e.Properties["ts"].Value.Format = "date" },
		"events open to more members": func(e, _ *openapi3.Schema) {
			e.AdditionalProperties = openapi3.AdditionalProperties{}
		},
		"level required": func(e, _ *openapi3.Schema) { e.Required = append(e.Required, "level") },
		"props closed": func(e, _ *openapi3.Schema) {
			no := false
			e.Properties["props"].Value.AdditionalProperties = openapi3.AdditionalProperties{Has: &no}
		},
		"batch with a second member": func(_, b *openapi3.Schema) {
			b.Properties["client"] = openapi3.NewSchemaRef("", openapi3.NewStringSchema())
		},
		"events may be empty":   func(_, b *openapi3.Schema) { b.Properties["events"].Value.MinItems = 0 },
		"name becomes nullable": func(e, _ *openapi3.Schema) { e.Properties["name"].Value.Nullable = true },
	} {
		t.Run(name, func(t *testing.T) {
			doc, err := api.GetSpec() // a fresh copy to change
			if err != nil {
				t.Fatal(err)
			}
			change(doc.Components.Schemas["TelemetryEvent"].Value, doc.Components.Schemas["TelemetryBatch"].Value)
			if _, _, err := schemasFrom(doc); err == nil {
				t.Errorf("schemasFrom accepts the changed document")
			}
		})
	}
}

// TestIsDateTimeMatchesFormat compares isDateTime with kin-openapi's date-time regexp (which
// schemasFrom checks is dateTimeFormat) on
// mutations of valid date-times (deterministic, so that it runs in every test run).
func TestIsDateTimeMatchesFormat(t *testing.T) {
	re := regexp.MustCompile(dateTimeFormat)
	rng := rand.New(rand.NewPCG(7, 7))
	const alphabet = "0123456789012345-:T.Z+zt 6"
	seeds := []string{"2026-01-02T03:04:05Z", "2026-12-31T23:59:60.5+23:59", "1999-10-19T19:39:29.000001-00:00", "0000-09-30T20:00:00Z"}
	for i := range 200_000 {
		b := []byte(seeds[i%len(seeds)])
		for range 1 + rng.IntN(3) {
			c := alphabet[rng.IntN(len(alphabet))]
			switch p := rng.IntN(len(b) + 1); rng.IntN(3) {
			case 0:
				if p < len(b) {
					b[p] = c
				}
			case 1:
				b = append(b[:p], append([]byte{c}, b[p:]...)...)
			default:
				if p < len(b) {
					b = append(b[:p], b[p+1:]...)
				}
			}
		}
		if got, want := isDateTime(b), re.Match(b); got != want {
			t.Fatalf("isDateTime(%q) = %v, the format's regexp says %v", b, got, want)
		}
	}
}
