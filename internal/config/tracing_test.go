package config

import (
	"strings"
	"testing"
)

func TestTracingEndpoint(t *testing.T) {
	for _, c := range []struct {
		env       map[string]string
		want, err string
	}{
		{env: nil, want: ""},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318/"}, want: "http://c:4318/v1/traces"},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://t/x"}, want: "https://t/x"},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"}, want: ""},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "c:4317"}, err: "OTEL_EXPORTER_OTLP_ENDPOINT"},
		{env: map[string]string{"OTEL_TRACES_SAMPLER_ARG": "2"}, err: "OTEL_TRACES_SAMPLER_ARG"},
		{env: map[string]string{"OTEL_TRACES_SAMPLER": "jaeger_remote"}, err: "OTEL_TRACES_SAMPLER"},
	} {
		cfg, err := Load(func(k string) string { return c.env[k] })
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%v: err %v, want one naming %s", c.env, err, c.err)
			}
			continue
		}
		if err != nil || cfg.Tracing.Endpoint != c.want {
			t.Errorf("%v: endpoint %q err %v, want %q", c.env, cfg.Tracing.Endpoint, err, c.want)
		}
	}
	cfg, _ := Load(func(string) string { return "" })
	if cfg.Tracing.Sampler != "parentbased_always_on" || cfg.Tracing.SamplerArg != 1 || cfg.Tracing.ServiceName != "m4sh" {
		t.Errorf("defaults %+v", cfg.Tracing)
	}
}
