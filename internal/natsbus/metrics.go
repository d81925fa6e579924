package natsbus

import (
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
)

// Collectors returns the connection's metrics, read from the NATS client at scrape time:
// whether it is connected (the alert on a node cut off from fan-out) and how often it
// reconnected.
func (b *Bus) Collectors() []prometheus.Collector {
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "m4sh_nats_connected",
			Help: "1 while the node's NATS connection is up, 0 while it is down or reconnecting (presence fan-out to other nodes paused).",
		}, func() float64 {
			if b.nc.Status() == nats.CONNECTED {
				return 1
			}
			return 0
		}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "m4sh_nats_reconnects_total",
			Help: "Times the NATS connection was re-established after a loss.",
		}, func() float64 { return float64(b.nc.Stats().Reconnects) }),
	}
}
