package httpapi_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/m4sh/backend/internal/apptest"
	"github.com/m4sh/backend/internal/tracing/tracetest"
)

// BenchmarkAuthenticatedGet measures GET /api/v1/me/ through the whole stack (request id,
// logging, metrics, JWT verification, OpenAPI validation, strict handler) over loopback,
// beside a bare net/http handler on the same loopback transport.
func BenchmarkAuthenticatedGet(b *testing.B) {
	env := apptest.New(b, nil)
	tok := env.Token("bench")
	bare := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"name":"Bench","user_id":"bench"}`)
	}))
	b.Cleanup(bare.Close)
	run := func(b *testing.B, url string) {
		client := env.Server.Client()
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				req, _ := http.NewRequest(http.MethodGet, url, nil)
				req.Header.Set("Authorization", "Bearer "+tok)
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Fatalf("status %d", resp.StatusCode)
				}
			}
		})
	}
	b.Run("baseline", func(b *testing.B) { run(b, bare.URL+"/api/v1/me/") })
	b.Run("m4sh", func(b *testing.B) { run(b, env.Server.URL+"/api/v1/me/") })
	// Tracing on, 1 % of new traces sampled, exported to a loopback collector.
	traced := apptest.New(b, map[string]string{
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": tracetest.NewReceiver(b).URL,
		"OTEL_TRACES_SAMPLER":                "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.01",
	})
	b.Run("m4sh_traced_1pct", func(b *testing.B) { run(b, traced.Server.URL+"/api/v1/me/") })
}
