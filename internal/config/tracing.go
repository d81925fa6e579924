package config

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// Tracing configures OpenTelemetry traces from the standard OTEL_* variables. Off (no
// exporter) unless a traces endpoint is set.
type Tracing struct {
	// Endpoint is the OTLP/HTTP traces URL: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as given, or
	// OTEL_EXPORTER_OTLP_ENDPOINT + "/v1/traces"; empty (off) when OTEL_SDK_DISABLED=true.
	Endpoint    string
	Sampler     string  // OTEL_TRACES_SAMPLER (default parentbased_always_on)
	SamplerArg  float64 // OTEL_TRACES_SAMPLER_ARG: ratio for the *traceidratio samplers (default 1)
	ServiceName string  // OTEL_SERVICE_NAME (default m4sh)
}

var samplers = []string{"always_on", "always_off", "traceidratio", "parentbased_always_on", "parentbased_always_off", "parentbased_traceidratio"}

func (p *parser) tracing() Tracing {
	t := Tracing{
		Sampler:     p.oneOf("OTEL_TRACES_SAMPLER", "parentbased_always_on", samplers...),
		SamplerArg:  1,
		ServiceName: p.str("OTEL_SERVICE_NAME", "m4sh"),
	}
	if v := p.getenv("OTEL_TRACES_SAMPLER_ARG"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 0 || f > 1 {
			p.fail("OTEL_TRACES_SAMPLER_ARG", fmt.Sprintf("%q is not a ratio between 0 and 1", v))
		} else {
			t.SamplerArg = f
		}
	}
	if strings.EqualFold(p.getenv("OTEL_SDK_DISABLED"), "true") {
		return t
	}
	name, ep := "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", p.getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
	if ep == "" {
		if base := p.getenv("OTEL_EXPORTER_OTLP_ENDPOINT"); base != "" {
			name, ep = "OTEL_EXPORTER_OTLP_ENDPOINT", strings.TrimSuffix(base, "/")+"/v1/traces"
		}
	}
	if ep != "" {
		if u, err := url.Parse(ep); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			p.fail(name, "must be an http:// or https:// URL (OTLP/HTTP)")
			return t
		}
	}
	t.Endpoint = ep
	return t
}
