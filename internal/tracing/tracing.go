// Package tracing sets up OpenTelemetry traces: an OTLP/HTTP exporter when an endpoint is
// configured, otherwise a no-op provider whose spans cost a context lookup. It also holds
// the small adapters the rest of the service uses to carry a trace across its hops: SQL
// statements (pgx), blob writes, NATS message headers and slog records. Nothing here is
// global: the App hands the Provider to each part.
package tracing

import (
	"context"
	"fmt"
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
	sampler, err := newSampler(cfg.Sampler, cfg.SamplerArg)
	if err != nil {
		return nil, err
	}
	name := cfg.ServiceName
	if name == "" {
		name = "m4sh"
	}
	res := resource.NewWithAttributes(semconv.SchemaURL, semconv.ServiceName(name))
	return &Provider{
		sdk:  sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithSampler(sampler), sdktrace.WithResource(res)),
		prop: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
	}, nil
}

func newSampler(name string, arg float64) (sdktrace.Sampler, error) {
	switch strings.ToLower(name) {
	case "", "parentbased_always_on":
		return sdktrace.ParentBased(sdktrace.AlwaysSample()), nil
	case "always_on":
		return sdktrace.AlwaysSample(), nil
	case "always_off":
		return sdktrace.NeverSample(), nil
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample()), nil
	case "traceidratio":
		return sdktrace.TraceIDRatioBased(arg), nil
	case "parentbased_traceidratio":
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(arg)), nil
	}
	return nil, fmt.Errorf("config: OTEL_TRACES_SAMPLER: %q is not supported", name)
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
