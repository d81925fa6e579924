// Package tracing sets up OpenTelemetry traces: an OTLP/HTTP exporter when an endpoint is
// configured, otherwise a no-op provider whose spans cost a context lookup. It also holds
// the small adapters the rest of the service uses to carry a trace across its hops: SQL
// statements (pgx), blob writes, NATS message headers and slog records. Nothing here is
// global: the App hands the Provider to each part.
package tracing

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// ScopeName names the tracer of the service's own spans.
const ScopeName = "github.com/m4sh/backend"

// Config configures tracing. An empty Endpoint turns it off.
type Config struct {
	// Endpoint is the full OTLP/HTTP traces URL (…/v1/traces).
	Endpoint string
	// Sampler is an OTEL_TRACES_SAMPLER value; SamplerArg its ratio, for the ratio samplers.
	Sampler     string
	SamplerArg  float64
	ServiceName string
}

// Provider is the service's tracer provider. A nil *Provider is tracing off.
type Provider struct {
	sdk  *sdktrace.TracerProvider
	prop propagation.TextMapPropagator
	// roots is the share of new traces (requests without a caller's trace context) that
	// are sampled, decided before any span bookkeeping (see Handler).
	roots float64
}

// New returns a Provider exporting to cfg.Endpoint in batches, or nil when it is empty.
func New(ctx context.Context, cfg Config) (*Provider, error) {
	if cfg.Endpoint == "" {
		return nil, nil
	}
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(cfg.Endpoint))
	if err != nil {
		return nil, fmt.Errorf("config: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: %w", err)
	}
	sampler, roots, err := newSampler(cfg.Sampler, cfg.SamplerArg)
	if err != nil {
		return nil, err
	}
	name := cfg.ServiceName
	if name == "" {
		name = "m4sh"
	}
	res := resource.NewWithAttributes(semconv.SchemaURL, semconv.ServiceName(name))
	return &Provider{
		sdk:   sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithSampler(rootDecided{sampler}), sdktrace.WithResource(res)),
		prop:  propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
		roots: roots,
	}, nil
}

// newSampler returns the sampler named by OTEL_TRACES_SAMPLER and the share of new traces
// it samples.
func newSampler(name string, arg float64) (sdktrace.Sampler, float64, error) {
	switch strings.ToLower(name) {
	case "", "parentbased_always_on":
		return sdktrace.ParentBased(sdktrace.AlwaysSample()), 1, nil
	case "always_on":
		return sdktrace.AlwaysSample(), 1, nil
	case "always_off":
		return sdktrace.NeverSample(), 0, nil
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample()), 0, nil
	case "traceidratio":
		return sdktrace.TraceIDRatioBased(arg), arg, nil
	case "parentbased_traceidratio":
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(arg)), arg, nil
	}
	return nil, 0, fmt.Errorf("config: OTEL_TRACES_SAMPLER: %q is not supported", name)
}

// sampledRoot marks a context whose new trace the Handler already decided to sample.
type sampledRoot struct{}

// rootDecided samples a root span whose context carries sampledRoot, and leaves every
// other decision to the configured sampler; without it the ratio would apply twice.
type rootDecided struct{ sdktrace.Sampler }

func (s rootDecided) ShouldSample(p sdktrace.SamplingParameters) sdktrace.SamplingResult {
	if p.ParentContext.Value(sampledRoot{}) != nil && !trace.SpanContextFromContext(p.ParentContext).IsValid() {
		return sdktrace.SamplingResult{Decision: sdktrace.RecordAndSample,
			Tracestate: trace.SpanContextFromContext(p.ParentContext).TraceState()}
	}
	return s.Sampler.ShouldSample(p)
}

// sampleRoot decides whether a new trace is sampled.
func (p *Provider) sampleRoot() bool {
	switch {
	case p.roots >= 1:
		return true
	case p.roots <= 0:
		return false
	}
	return rand.Float64() < p.roots
}

// Enabled reports whether spans are exported.
func (p *Provider) Enabled() bool { return p != nil }

// TracerProvider returns the provider to hand to instrumentation (a no-op one when off).
func (p *Provider) TracerProvider() trace.TracerProvider {
	if p == nil {
		return noop.NewTracerProvider()
	}
	return p.sdk
}

// Tracer returns the tracer of the service's own spans.
func (p *Provider) Tracer() trace.Tracer { return p.TracerProvider().Tracer(ScopeName) }

// Propagator returns the W3C trace-context (and baggage) propagator.
func (p *Provider) Propagator() propagation.TextMapPropagator {
	if p == nil {
		return propagation.TraceContext{}
	}
	return p.prop
}

// Shutdown flushes the spans still batched and stops the exporter.
func (p *Provider) Shutdown(ctx context.Context) error {
	if p == nil {
		return nil
	}
	if err := p.sdk.Shutdown(ctx); err != nil {
		return fmt.Errorf("tracing: flushing spans: %w", err)
	}
	return nil
}

// ForceFlush exports the spans batched so far (tests).
func (p *Provider) ForceFlush(ctx context.Context) error {
	if p == nil {
		return nil
	}
	return p.sdk.ForceFlush(ctx)
}
