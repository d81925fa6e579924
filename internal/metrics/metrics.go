// Package metrics builds the service's Prometheus registry. Every collector lives in a
// registry created here and passed explicitly (never the global default), so tests and
// several servers in one process do not collide.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Registry wraps a Prometheus registry with the collectors shared across packages.
type Registry struct {
	*prometheus.Registry
	HTTPRequests *prometheus.CounterVec
	HTTPDuration *prometheus.HistogramVec
}

// New returns a registry with Go runtime, process and HTTP collectors.
func New() *Registry {
	reg := prometheus.NewRegistry()
	r := &Registry{
		Registry: reg,
		HTTPRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "m4sh_http_requests_total",
			Help: "HTTP requests by route template, method and status.",
		}, []string{"route", "method", "status"}),
		HTTPDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "m4sh_http_request_duration_seconds",
			Help:    "HTTP request latency by route template and method.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route", "method"}),
	}
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		r.HTTPRequests, r.HTTPDuration,
	)
	return r
}

// ObserveHTTP records one finished request. route must come from a fixed set (the OpenAPI
// document's templates, the service's own patterns, or "unmatched"); the method is reduced
// to the standard ones and "other", so no request can add a time series.
func (r *Registry) ObserveHTTP(route, method string, status int, d time.Duration) {
	method = MethodLabel(method)
	r.HTTPRequests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	r.HTTPDuration.WithLabelValues(route, method).Observe(d.Seconds())
}

// MethodLabel returns method when it is one of the methods of RFC 9110 (and PATCH), else
// "other".
func MethodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return method
	}
	return "other"
}

// Handler serves the registry in the Prometheus text format.
func (r *Registry) Handler() http.Handler {
	return promhttp.HandlerFor(r.Registry, promhttp.HandlerOpts{Registry: r.Registry})
}
