package tracing_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/m4sh/backend/internal/tracing"
	"github.com/m4sh/backend/internal/tracing/tracetest"
)

// BenchmarkHandler is the HTTP wrapper's own cost per request, beside the unwrapped handler
// in the same run: tracing off, and on at 1 % of new traces (the unsampled majority skips
// otelhttp), and on for every request (what a sampled request pays).
func BenchmarkHandler(b *testing.B) {
	rec := tracetest.NewReceiver(b)
	next := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	provider := func(sampler string, arg float64) *tracing.Provider {
		if sampler == "" {
			return nil
		}
		p, err := tracing.New(context.Background(), tracing.Config{Endpoint: rec.URL, Sampler: sampler, SamplerArg: arg})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = p.Shutdown(context.Background()) })
		return p
	}
	for _, c := range []struct {
		name string
		h    http.Handler
	}{
		{"baseline", next},
		{"off", tracing.Handler(next, provider("", 0))},
		{"on_1pct", tracing.Handler(next, provider("parentbased_traceidratio", 0.01))},
		{"on_all", tracing.Handler(next, provider("parentbased_always_on", 1))},
	} {
		b.Run(c.name, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, "/api/v1/me/", nil)
			b.ReportAllocs()
			for b.Loop() {
				c.h.ServeHTTP(httptest.NewRecorder(), req)
			}
		})
	}
}
