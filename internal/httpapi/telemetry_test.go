package httpapi_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/m4sh/backend/internal/apptest"
	"github.com/m4sh/backend/internal/dbtest"
	"github.com/m4sh/backend/internal/telemetry"
)

const telemetryURL = "/api/v1/logs/telemetry/"

func gzipped(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// eventOfSize is a valid single event of exactly n bytes of JSON.
func eventOfSize(t testing.TB, n int) []byte {
	t.Helper()
	b := []byte(`{"name":"pad","props":{"p":""}}`)
	if n < len(b) {
		t.Fatalf("eventOfSize(%d): too small", n)
	}
	pad := strings.Repeat("x", n-len(b))
	return []byte(`{"name":"pad","props":{"p":"` + pad + `"}}`)
}

func batchOf(n int) []byte {
	evs := make([]map[string]any, n)
	for i := range evs {
		evs[i] = map[string]any{"name": fmt.Sprintf("e%d", i)}
	}
	b, _ := json.Marshal(map[string]any{"events": evs})
	return b
}

// postTelemetry sends body with the given headers (Content-Type application/json unless
// set). With chunked, the body is streamed without a Content-Length.
func postTelemetry(t testing.TB, env *apptest.Env, body []byte, header map[string]string, chunked bool) apptest.Response {
	t.Helper()
	var rd io.Reader = bytes.NewReader(body)
	if chunked {
		rd = io.MultiReader(rd)
	}
	req, err := http.NewRequest(http.MethodPost, env.Server.URL+telemetryURL, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		if v == "" {
			req.Header.Del(k)
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := env.Server.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return apptest.Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// metricValue reads one sample from /metrics (0 when absent).
func metricValue(t testing.TB, env *apptest.Env, sample string) float64 {
	t.Helper()
	r := env.Do(apptest.Request{Method: http.MethodGet, Path: "/metrics"})
	for _, line := range strings.Split(string(r.Body), "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metric %s = %q", sample, v)
			}
			return f
		}
	}
	return 0
}

// TestTelemetryRejects covers every refusal of the ingest with its exact status, code and
// offending field, through the full handler.
func TestTelemetryRejects(t *testing.T) {
	t.Parallel()
	env := apptest.New(t, nil)
	long := strings.Repeat("n", 101)
	deep := strings.Repeat(`{"a":`, 40) + "1" + strings.Repeat("}", 40)
	bomb := gzipped(t, make([]byte, 30<<20)) // 30 MiB of zeros in well under 32 KiB
	if len(bomb) > 32768 {
		t.Fatalf("bomb is %d bytes compressed, want under the limit", len(bomb))
	}
	type tc struct {
		name      string
		body      []byte
		header    map[string]string
		chunked   bool
		status    int
		code      string
		wantField string
	}
	tests := []tc{
		{name: "bad JSON", body: []byte(`{"name":`), status: 400, code: "validation_error", wantField: "body"},
		{name: "data after the JSON value", body: []byte(`{"name":"a"} {}`), status: 400, code: "validation_error", wantField: "body"},
		{name: "not UTF-8", body: []byte("{\"name\":\"\xff\"}"), status: 400, code: "validation_error", wantField: "body"},
		{name: "name of wrong type", body: []byte(`{"name":5}`), status: 400, code: "validation_error", wantField: "body.name"},
		{name: "props of wrong type", body: []byte(`{"name":"a","props":[1]}`), status: 400, code: "validation_error", wantField: "body.props"},
		{name: "unknown level", body: []byte(`{"name":"a","level":"fatal"}`), status: 400, code: "validation_error", wantField: "body.level"},
		{name: "ts not a date-time", body: []byte(`{"name":"a","ts":"yesterday"}`), status: 400, code: "validation_error", wantField: "body.ts"},
		{name: "ts not a calendar date", body: []byte(`{"name":"a","ts":"2026-02-30T10:00:00Z"}`), status: 400, code: "validation_error", wantField: "body.ts"},
		{name: "unknown member", body: []byte(`{"name":"a","colour":"red"}`), status: 400, code: "validation_error", wantField: "body.colour"},
		{name: "missing name", body: []byte(`{"level":"info"}`), status: 400, code: "validation_error", wantField: "body.name"},
		{name: "empty name", body: []byte(`{"name":""}`), status: 400, code: "validation_error", wantField: "body.name"},
		{name: "name too long", body: []byte(`{"name":"` + long + `"}`), status: 400, code: "validation_error", wantField: "body.name"},
		{name: "name with NUL", body: []byte(`{"name":"a\u0000b"}`), status: 400, code: "validation_error", wantField: "body.name"},
		{name: "props too deep", body: []byte(`{"name":"a","props":` + deep + `}`), status: 400, code: "validation_error", wantField: "body.props"},
		{name: "101 events", body: batchOf(101), status: 400, code: "validation_error", wantField: "body.events"},
		{name: "no events", body: []byte(`{"events":[]}`), status: 400, code: "validation_error", wantField: "body.events"},
		{name: "bad event in batch", body: []byte(`{"events":[{"name":"a"},{"name":7}]}`), status: 400, code: "validation_error", wantField: "body.events.1.name"},
		{name: "array at top level", body: []byte(`[{"name":"a"}]`), status: 400, code: "validation_error", wantField: "body"},
		{name: "empty body", body: nil, status: 400, code: "validation_error", wantField: "body"},
		{name: "empty text body", body: nil, header: map[string]string{"Content-Type": "text/plain"}, status: 400, code: "validation_error", wantField: "body"},
		{name: "unknown encoding", body: []byte(`{"name":"a"}`), header: map[string]string{"Content-Encoding": "br"}, status: 415, code: "unsupported_media_type", wantField: "header.Content-Encoding"},
		{name: "gzip twice", body: []byte(`{"name":"a"}`), header: map[string]string{"Content-Encoding": "gzip, gzip"}, status: 415, code: "unsupported_media_type", wantField: "header.Content-Encoding"},
		{name: "XML", body: []byte(`<event/>`), header: map[string]string{"Content-Type": "application/xml"}, status: 415, code: "unsupported_media_type", wantField: "header.Content-Type"},
		{name: "no Content-Type", body: []byte(`{"name":"a"}`), header: map[string]string{"Content-Type": ""}, status: 415, code: "unsupported_media_type", wantField: "header.Content-Type"},
		{name: "corrupt gzip", body: []byte("\x1f\x8b\x08\x00garbage-garbage"), header: map[string]string{"Content-Encoding": "gzip"}, status: 400, code: "validation_error", wantField: "body"},
		{name: "truncated gzip", body: gzipped(t, []byte(`{"name":"a"}`))[:15], header: map[string]string{"Content-Encoding": "gzip"}, status: 400, code: "validation_error", wantField: "body"},
		{name: "gzip bomb", body: bomb, header: map[string]string{"Content-Encoding": "gzip"}, status: 413, code: "payload_too_large"},
		{name: "32769 bytes", body: eventOfSize(t, 32769), status: 413, code: "payload_too_large"},
		{name: "32769 bytes chunked", body: eventOfSize(t, 32769), chunked: true, status: 413, code: "payload_too_large"},
		{name: "32769 bytes once inflated", body: gzipped(t, eventOfSize(t, 32769)), header: map[string]string{"Content-Encoding": "gzip"}, status: 413, code: "payload_too_large"},
		{name: "32768 bytes", body: eventOfSize(t, 32768), status: 204},
		{name: "32768 bytes chunked", body: eventOfSize(t, 32768), chunked: true, status: 204},
		{name: "32768 bytes once inflated", body: gzipped(t, eventOfSize(t, 32768)), header: map[string]string{"Content-Encoding": "gzip"}, status: 204},
		{name: "sendBeacon text", body: []byte(`{"name":"page.hidden"}`), header: map[string]string{"Content-Type": "text/plain;charset=UTF-8"}, status: 204},
		{name: "invalid token ignored", body: []byte(`{"name":"a"}`), header: map[string]string{"Authorization": "Bearer not-a-jwt"}, status: 204},
		{name: "100 events gzip", body: gzipped(t, batchOf(100)), header: map[string]string{"Content-Encoding": "gzip"}, status: 204},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := postTelemetry(t, env, tt.body, tt.header, tt.chunked)
			if got := r.Header.Get("Access-Control-Allow-Origin"); got != "*" {
				t.Errorf("Access-Control-Allow-Origin = %q, want *", got)
			}
			if tt.status == 204 {
				if r.Status != 204 {
					t.Fatalf("status = %d, want 204: %s", r.Status, r.Body)
				}
				if got := r.Header.Get("X-Telemetry-Dropped"); got != "0" {
					t.Errorf("X-Telemetry-Dropped = %q, want 0", got)
				}
				return
			}
			assertProblem(t, r, tt.status, tt.code)
			if tt.wantField == "" {
				return
			}
			var p struct {
				Errors []struct{ Field, Message string }
			}
			r.Decode(t, &p)
			for _, f := range p.Errors {
				if f.Field == tt.wantField {
					return
				}
			}
			t.Errorf("errors = %+v, want one for field %s", p.Errors, tt.wantField)
		})
	}
	t.Run("wrong method", func(t *testing.T) {
		t.Parallel()
		for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodDelete} {
			r := env.Do(apptest.Request{Method: m, Path: telemetryURL})
			assertProblem(t, r, 405, "method_not_allowed")
			if got := r.Header.Get("Allow"); got != "POST" {
				t.Errorf("%s Allow = %q, want POST", m, got)
			}
		}
	})
}

// TestTelemetryGzipBombInflatesLittle checks through the service's own metric that a gzip
// bomb is inflated no further than just past the limit.
func TestTelemetryGzipBombInflatesLittle(t *testing.T) {
	t.Parallel()
	env := apptest.New(t, nil)
	bomb := gzipped(t, make([]byte, 30<<20))
	r := postTelemetry(t, env, bomb, map[string]string{"Content-Encoding": "gzip"}, false)
	assertProblem(t, r, 413, "payload_too_large")
	inflated := metricValue(t, env, `m4sh_telemetry_body_bytes_sum{form="inflated"}`)
	sent := metricValue(t, env, `m4sh_telemetry_body_bytes_sum{form="sent"}`)
	if inflated != 32769 {
		t.Errorf("inflated bytes read = %v, want 32769 (the limit plus one)", inflated)
	}
	if sent <= 0 || sent > 8<<10 {
		t.Errorf("compressed bytes read = %v of %d, want a few KiB at most", sent, len(bomb))
	}
}

func TestTelemetryCORS(t *testing.T) {
	t.Parallel()
	env := apptest.New(t, nil)
	r := env.Do(apptest.Request{Method: http.MethodOptions, Path: telemetryURL, Header: map[string]string{
		"Origin":                         "https://app.example",
		"Access-Control-Request-Method":  "POST",
		"Access-Control-Request-Headers": "content-type, content-encoding, authorization",
	}})
	if r.Status != 204 {
		t.Fatalf("preflight = %d, want 204: %s", r.Status, r.Body)
	}
	want := map[string]string{
		"Access-Control-Allow-Origin":  "*",
		"Access-Control-Allow-Methods": "POST, OPTIONS",
		"Access-Control-Allow-Headers": "Content-Type, Content-Encoding, Authorization, X-Request-Id",
		"Access-Control-Max-Age":       "86400",
	}
	for k, v := range want {
		if got := r.Header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	r = postTelemetry(t, env, []byte(`{"name":"a"}`), map[string]string{"Origin": "https://elsewhere.example"}, false)
	if r.Status != 204 || r.Header.Get("Access-Control-Allow-Origin") != "*" ||
		!strings.Contains(r.Header.Get("Access-Control-Expose-Headers"), "X-Telemetry-Dropped") {
		t.Errorf("POST = %d with CORS headers %v", r.Status, r.Header)
	}
}

// TestTelemetryThrottle: the 301st request of a client within a minute is refused before its
// body is read; other clients are not affected; X-Forwarded-For counts only from a trusted
// proxy.
func TestTelemetryThrottle(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		env     map[string]string
		first   string // X-Forwarded-For of the 300 requests and the 301st
		other   string // X-Forwarded-For of another client
		otherOK bool
	}{
		{"direct clients", nil, "", "", false},
		{"behind a trusted proxy", map[string]string{"TRUSTED_PROXIES": "127.0.0.1/32, 10.0.0.0/8"}, "198.51.100.1, 10.1.2.3", "198.51.100.2", true},
		{"forged header from an untrusted peer", map[string]string{"TRUSTED_PROXIES": "10.0.0.0/8"}, "198.51.100.1", "198.51.100.2", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := apptest.New(t, tt.env)
			hdr := func(xff string) map[string]string {
				if xff == "" {
					return nil
				}
				return map[string]string{"X-Forwarded-For": xff}
			}
			for i := 1; i <= 300; i++ {
				if r := postTelemetry(t, env, []byte(`{"name":"a"}`), hdr(tt.first), false); r.Status != 204 {
					t.Fatalf("request %d = %d, want 204: %s", i, r.Status, r.Body)
				}
			}
			// The 301st is refused even with a body that would be 413: the throttle comes first.
			r := postTelemetry(t, env, eventOfSize(t, 40000), hdr(tt.first), false)
			assertProblem(t, r, 429, "rate_limited")
			ra, err := strconv.Atoi(r.Header.Get("Retry-After"))
			if err != nil || ra < 1 || ra > 61 {
				t.Errorf("Retry-After = %q, want 1..61 seconds", r.Header.Get("Retry-After"))
			}
			if got := r.Header.Get("Access-Control-Allow-Origin"); got != "*" {
				t.Errorf("429 Access-Control-Allow-Origin = %q, want *", got)
			}
			r = postTelemetry(t, env, []byte(`{"name":"a"}`), hdr(tt.other), false)
			if tt.otherOK && r.Status != 204 {
				t.Errorf("another client = %d, want 204", r.Status)
			}
			if !tt.otherOK && r.Status != 429 {
				t.Errorf("the same peer with another X-Forwarded-For = %d, want 429", r.Status)
			}
		})
	}
}

// storedEvent is one row of telemetry_events.
type storedEvent struct {
	Name, Level, UserID, SessionID, UserAgent string
	TS, ReceivedAt                            time.Time
	Props                                     map[string]any
	ClientHash                                []byte
}

func storedEvents(t testing.TB, env *apptest.Env) []storedEvent {
	t.Helper()
	rows, err := env.Pool.Query(context.Background(), `
		SELECT name, coalesce(level, ''), coalesce(user_id, ''), coalesce(session_id, ''), user_agent,
		       ts, received_at, props, client_hash
		FROM telemetry_events ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []storedEvent
	for rows.Next() {
		var e storedEvent
		if err := rows.Scan(&e.Name, &e.Level, &e.UserID, &e.SessionID, &e.UserAgent, &e.TS, &e.ReceivedAt, &e.Props, &e.ClientHash); err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// waitStored polls until n events are stored.
func waitStored(t testing.TB, env *apptest.Env, n int) []storedEvent {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		evs := storedEvents(t, env)
		if len(evs) >= n || time.Now().After(deadline) {
			if len(evs) != n {
				t.Fatalf("%d events stored, want %d", len(evs), n)
			}
			return evs
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestTelemetryStoresEvents(t *testing.T) {
	t.Parallel()
	env := apptest.New(t, map[string]string{"TELEMETRY_FLUSH_INTERVAL": "20ms", "TRUSTED_PROXIES": "127.0.0.1"})
	before := time.Now()
	ua := strings.Repeat("Mozilla/5.0 ", 40)
	body := gzipped(t, []byte(`{"events":[
		{"name":"a.full","ts":"2026-01-02T03:04:05.123Z","level":"warn","session_id":"s-1","props":{"n":12345678901234567890,"nested":{"ok":true}}},
		{"name":"b.bare"}]}`))
	r := postTelemetry(t, env, body, map[string]string{
		"Content-Encoding": "gzip", "Authorization": "Bearer " + env.Token("alice"),
		"User-Agent": ua, "X-Forwarded-For": "203.0.113.9",
	}, false)
	if r.Status != 204 {
		t.Fatalf("status %d: %s", r.Status, r.Body)
	}
	r = postTelemetry(t, env, []byte(`{"name":"c.beacon"}`), map[string]string{"Content-Type": "text/plain;charset=UTF-8"}, false)
	if r.Status != 204 {
		t.Fatalf("beacon status %d: %s", r.Status, r.Body)
	}
	evs := waitStored(t, env, 3)
	hasher := telemetry.NewHasher(env.Config.Telemetry.HashSalt)
	proxied := hasher.Hash(netip.MustParseAddr("203.0.113.9"))
	direct := hasher.Hash(netip.MustParseAddr("127.0.0.1"))

	a, b, c := evs[0], evs[1], evs[2]
	if a.Name != "a.full" || a.Level != "warn" || a.SessionID != "s-1" || a.UserID != "alice" ||
		!a.TS.Equal(time.Date(2026, 1, 2, 3, 4, 5, 123e6, time.UTC)) {
		t.Errorf("full event stored as %+v", a)
	}
	var props string
	if err := env.Pool.QueryRow(context.Background(), `SELECT props::text FROM telemetry_events WHERE name = 'a.full'`).Scan(&props); err != nil ||
		props != `{"n": 12345678901234567890, "nested": {"ok": true}}` {
		t.Errorf("props = %s (%v), want the number kept exactly", props, err)
	}
	if len(a.UserAgent) != telemetry.MaxUserAgentBytes || !strings.HasPrefix(ua, a.UserAgent) {
		t.Errorf("user agent stored as %q (%d bytes), want the first %d bytes", a.UserAgent, len(a.UserAgent), telemetry.MaxUserAgentBytes)
	}
	if !bytes.Equal(a.ClientHash, proxied) || !bytes.Equal(b.ClientHash, proxied) || !bytes.Equal(c.ClientHash, direct) {
		t.Errorf("client hashes = %x %x %x, want %x %x %x", a.ClientHash, b.ClientHash, c.ClientHash, proxied, proxied, direct)
	}
	if b.Name != "b.bare" || b.Level != "" || b.SessionID != "" || b.Props != nil || b.UserID != "alice" || !b.TS.Equal(b.ReceivedAt) {
		t.Errorf("bare event stored as %+v, want no level/session/props, ts = received_at", b)
	}
	if c.Name != "c.beacon" || c.UserID != "" {
		t.Errorf("beacon stored as %+v", c)
	}
	for _, e := range evs {
		if e.ReceivedAt.Before(before.Add(-time.Second)) || e.ReceivedAt.After(time.Now()) {
			t.Errorf("%s received_at = %v, want about now", e.Name, e.ReceivedAt)
		}
	}
	var raw int
	if err := env.Pool.QueryRow(context.Background(),
		`SELECT count(*) FROM telemetry_events WHERE position(convert_to('203.0.113.9', 'UTF8') IN client_hash) > 0
		    OR user_agent LIKE '%203.0.113.9%' OR props::text LIKE '%203.0.113.9%'`).Scan(&raw); err != nil || raw != 0 {
		t.Errorf("rows holding the raw client address: %d (%v), want 0", raw, err)
	}
}

// setConnections allows or refuses connections to env's database and, when refusing, ends
// the open ones: a database outage for this service alone, on the real server.
func setConnections(t testing.TB, env *apptest.Env, allow bool) {
	t.Helper()
	u, err := url.Parse(env.Config.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	name := strings.TrimPrefix(u.Path, "/")
	admin := dbtest.Pool(t, dbtest.ServerURL(t))
	ctx := context.Background()
	if _, err := admin.Exec(ctx, fmt.Sprintf("ALTER DATABASE %q WITH ALLOW_CONNECTIONS %t", name, allow)); err != nil {
		t.Fatal(err)
	}
	if !allow {
		if _, err := admin.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name); err != nil {
			t.Fatal(err)
		}
	}
}

// TestTelemetryDatabaseOutage: with the database gone, requests still get 204 (also with a
// valid token for a user never seen), events beyond the buffer are dropped and counted, and
// once the database is back the writer stores what it kept.
func TestTelemetryDatabaseOutage(t *testing.T) {
	t.Parallel()
	env := apptest.New(t, map[string]string{"TELEMETRY_BUFFER_EVENTS": "5", "TELEMETRY_FLUSH_EVENTS": "2", "TELEMETRY_FLUSH_INTERVAL": "20ms"})
	setConnections(t, env, false)
	t.Cleanup(func() { setConnections(t, env, true) })
	dropped := 0
	for i := range 10 {
		hdr := map[string]string{}
		if i == 0 {
			hdr["Authorization"] = "Bearer " + env.Token("newcomer")
		}
		start := time.Now()
		r := postTelemetry(t, env, []byte(fmt.Sprintf(`{"name":"outage.%02d"}`, i)), hdr, false)
		if r.Status != 204 {
			t.Fatalf("request %d during the outage = %d, want 204: %s", i, r.Status, r.Body)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("request %d took %v during the outage", i, d)
		}
		n, err := strconv.Atoi(r.Header.Get("X-Telemetry-Dropped"))
		if err != nil {
			t.Fatalf("X-Telemetry-Dropped = %q", r.Header.Get("X-Telemetry-Dropped"))
		}
		dropped += n
	}
	// The writer holds at most one batch in hand plus a full buffer; the rest was dropped.
	if dropped < 3 || dropped > 8 {
		t.Errorf("%d of 10 events dropped during the outage, want 3..8", dropped)
	}
	if got := metricValue(t, env, `m4sh_telemetry_events_dropped_total{reason="buffer_full"}`); int(got) != dropped {
		t.Errorf("dropped metric = %v, want %d (the sum of X-Telemetry-Dropped)", got, dropped)
	}
	setConnections(t, env, true)
	waitStored(t, env, 10-dropped)
	r := postTelemetry(t, env, []byte(`{"name":"after"}`), nil, false)
	if r.Status != 204 || r.Header.Get("X-Telemetry-Dropped") != "0" {
		t.Fatalf("after recovery = %d dropped %s", r.Status, r.Header.Get("X-Telemetry-Dropped"))
	}
	waitStored(t, env, 10-dropped+1)
}
