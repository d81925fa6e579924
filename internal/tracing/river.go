package tracing

import (
	"github.com/riverqueue/river/rivertype"
	"github.com/riverqueue/rivercontrib/otelriver"
	"go.opentelemetry.io/otel/metric/noop"
)

// River returns River's OpenTelemetry middleware (an insert span in the enqueuer's trace,
// its context in the job's metadata, a work span linked to it), or nothing when p is off.
// Metrics stay with Prometheus: its meter is a no-op.
func River(p *Provider) []rivertype.Middleware {
	if !p.Enabled() {
		return nil
	}
	return []rivertype.Middleware{otelriver.NewMiddleware(&otelriver.MiddlewareConfig{
		EnableTracePropagation:      true,
		EnableWorkSpanJobKindSuffix: true,
		TracerProvider:              p.TracerProvider(),
		MeterProvider:               noop.NewMeterProvider(),
	})}
}
