package metrics_test

import (
	"testing"

	"github.com/m4sh/backend/internal/metrics"
)

func TestMethodLabel(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"GET", "GET"}, {"POST", "POST"}, {"PATCH", "PATCH"}, {"OPTIONS", "OPTIONS"},
		{"get", "other"}, {"PROPFIND", "other"}, {"", "other"}, {"GET\x00", "other"},
	}
	for _, tt := range tests {
		if got := metrics.MethodLabel(tt.in); got != tt.want {
			t.Errorf("MethodLabel(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestObserveHTTPBoundsSeries(t *testing.T) {
	t.Parallel()
	r := metrics.New()
	for _, m := range []string{"GET", "FOO", "BAR", "XXXXXXXXXXXXXXXXXXXXXXXX"} {
		r.ObserveHTTP("unmatched", m, 404, 0)
	}
	families, err := r.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == "m4sh_http_requests_total" {
			if n := len(f.GetMetric()); n != 2 {
				t.Errorf("m4sh_http_requests_total has %d series, want 2 (GET and other)", n)
			}
			return
		}
	}
	t.Fatal("m4sh_http_requests_total not gathered")
}
