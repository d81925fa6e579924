package tracing

import (
	"context"
	"net/http"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// Handler returns next in an HTTP server span (otelhttp), continuing a caller's W3C
// traceparent, or next itself when p is off. The span carries the response's X-Request-Id
// as http.request_id, so that a request id from a client or a log line finds its trace
// (log records carry trace_id too).
//
// A request without a caller's trace context is sampled or not before otelhttp sees it:
// an unsampled one goes straight to next, skipping the span, its attributes and the
// wrapped writer, which cost a fifth of a small request's time at 1 % sampling.
func Handler(next http.Handler, p *Provider) http.Handler {
	if !p.Enabled() {
		return next
	}
	tagged := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r)
		if id := w.Header().Get("X-Request-Id"); id != "" {
			trace.SpanFromContext(r.Context()).SetAttributes(attribute.String("http.request_id", id))
		}
	})
	traced := otelhttp.NewHandler(tagged, "http",
		otelhttp.WithTracerProvider(p.TracerProvider()),
		otelhttp.WithPropagators(p.Propagator()),
		// Probes and scrapes would be most of the traces.
		otelhttp.WithFilter(func(r *http.Request) bool {
			switch r.URL.Path {
			case "/healthz", "/readyz", "/metrics":
				return false
			}
			return true
		}))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Traceparent") != "" {
			traced.ServeHTTP(w, r) // the caller's decision, through the parent-based sampler
			return
		}
		if !p.sampleRoot() {
			next.ServeHTTP(w, r)
			return
		}
		traced.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), sampledRoot{}, true)))
	})
}
