package httpapi

import (
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/m4sh/backend/gen/api"
	"github.com/m4sh/backend/internal/telemetry"
)

func newFuzzIngest(t testing.TB, limit int64) *telemetryIngest {
	t.Helper()
	doc, err := api.GetSpec()
	if err != nil {
		t.Fatal(err)
	}
	ti, err := newTelemetryIngest(Telemetry{
		Sink: discardSink{}, Limiter: telemetry.NewLimiter(telemetry.LimiterOptions{Limit: 1}),
		Hasher: telemetry.NewHasher([]byte("fuzz-salt-0123456789")), MaxBytes: limit,
	}, doc, nil)
	if err != nil {
		t.Fatal(err)
	}
	return ti
}

// TestTelemetryFastDecodeAccepts: the fast path takes the usual bodies itself (else it would
// be no faster), with the reference path's events.
func TestTelemetryFastDecodeAccepts(t *testing.T) {
	ti := newFuzzIngest(t, 32768)
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
		want, err := ti.decode([]byte(body))
		if err != nil {
			t.Fatalf("reference path refuses %q: %v", body, err)
		}
		got, err := fastDecode([]byte(body))
		if err != nil {
			t.Errorf("fast path declined %q: %v", body, err)
			continue
		}
		if msg := diffEvents(got, want); msg != "" {
			t.Errorf("%q: %s", body, msg)
		}
	}
}

// TestTelemetryFastDecodeDeclines: what the reference path refuses, the fast path declines
// (the fuzz target checks this on arbitrary input; these are the schema's edges).
func TestTelemetryFastDecodeDeclines(t *testing.T) {
	ti := newFuzzIngest(t, 1<<20)
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
		_, refErr := ti.decode([]byte(body))
		if refErr == nil && !hasDuplicateMember([]byte(body)) {
			t.Fatalf("reference path accepts %q", body)
		}
		if _, err := fastDecode([]byte(body)); err == nil {
			t.Errorf("fast path accepted %q", body)
		}
	}
}

// TestTelemetryFastLimits ties the fast path's constants and member names to the OpenAPI
// document, so that a change of the contract fails here (and in the fuzz target) rather than
// drift.
func TestTelemetryFastLimits(t *testing.T) {
	doc, err := api.GetSpec()
	if err != nil {
		t.Fatal(err)
	}
	event := doc.Components.Schemas["TelemetryEvent"].Value
	batch := doc.Components.Schemas["TelemetryBatch"].Value
	props := func(s *openapi3.Schema) []string {
		var names []string
		for n := range s.Properties {
			names = append(names, n)
		}
		slices.Sort(names)
		return names
	}
	closed := func(s *openapi3.Schema) bool {
		return s.AdditionalProperties.Has != nil && !*s.AdditionalProperties.Has && s.AdditionalProperties.Schema == nil
	}
	p := event.Properties
	prop := p["props"].Value
	var enum []string
	for _, v := range p["level"].Value.Enum {
		enum = append(enum, v.(string))
	}
	slices.Sort(enum)
	checks := []struct {
		what      string
		got, want any
	}{
		{"event members", props(event), []string{"level", "name", "props", "session_id", "ts"}},
		{"event required", event.Required, []string{"name"}},
		{"event closed", closed(event), true},
		{"batch members", props(batch), []string{"events"}},
		{"batch required", batch.Required, []string{"events"}},
		{"batch closed", closed(batch), true},
		{"events minItems", batch.Properties["events"].Value.MinItems, uint64(1)},
		{"events maxItems", *batch.Properties["events"].Value.MaxItems, uint64(fastMaxEvents)},
		{"events items", batch.Properties["events"].Value.Items.Value, event},
		{"name", fmt.Sprint(p["name"].Value.Type.Slice(), p["name"].Value.MinLength, *p["name"].Value.MaxLength, p["name"].Value.Format, p["name"].Value.Pattern), fmt.Sprint([]string{"string"}, 1, fastMaxNameChars, "", "")},
		{"session_id", fmt.Sprint(p["session_id"].Value.Type.Slice(), p["session_id"].Value.MinLength, *p["session_id"].Value.MaxLength, p["session_id"].Value.Format, p["session_id"].Value.Pattern), fmt.Sprint([]string{"string"}, 1, fastMaxSessionChars, "", "")},
		{"ts", fmt.Sprint(p["ts"].Value.Type.Slice(), p["ts"].Value.Format, p["ts"].Value.MaxLength, p["ts"].Value.Pattern), fmt.Sprint([]string{"string"}, "date-time", (*uint64)(nil), "")},
		{"date-time format", openapi3.FormatOfStringDateTime, `^[0-9]{4}-(0[1-9]|10|11|12)-(0[1-9]|[12][0-9]|3[01])T([0-1][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?(Z|(\+|-)([0-1][0-9]|2[0-3]):[0-5][0-9])$`},
		{"level", fmt.Sprint(p["level"].Value.Type.Slice(), enum), fmt.Sprint([]string{"string"}, []string{"debug", "error", "info", "warn"})},
		{"props", fmt.Sprint(prop.Type.Slice(), prop.AdditionalProperties.Schema == nil && (prop.AdditionalProperties.Has == nil || *prop.AdditionalProperties.Has), len(prop.Properties), prop.MinProps, prop.MaxProps), fmt.Sprint([]string{"object"}, true, 0, 0, (*uint64)(nil))},
	}
	for _, c := range checks {
		if fmt.Sprint(c.got) != fmt.Sprint(c.want) {
			t.Errorf("%s: the document says %v, the fast path assumes %v: update telemetry_fast.go", c.what, c.got, c.want)
		}
	}
	for _, s := range []*openapi3.Schema{event, batch, p["name"].Value, p["ts"].Value, p["level"].Value, p["session_id"].Value, prop} {
		if s.Nullable || s.ReadOnly || s.WriteOnly || len(s.AllOf)+len(s.AnyOf)+len(s.OneOf) > 0 || s.Not != nil {
			t.Errorf("a telemetry schema uses nullable, readOnly, writeOnly or a composition: update telemetry_fast.go")
		}
	}
}

// TestIsDateTimeMatchesFormat compares isDateTime with kin-openapi's date-time regexp on
// mutations of valid date-times (deterministic, so that it runs in every test run).
func TestIsDateTimeMatchesFormat(t *testing.T) {
	re := regexp.MustCompile(openapi3.FormatOfStringDateTime)
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
