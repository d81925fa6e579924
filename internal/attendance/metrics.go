package attendance

import "github.com/prometheus/client_golang/prometheus"

// Collectors returns the metrics of a lone hub's transition queue: how many wait, how many
// were written, how many were lost (not recordable after a retry one by one, or arriving
// after Stop).
func (r *Recorder) Collectors() []prometheus.Collector {
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "m4sh_attendance_queued_transitions",
			Help: "Presence transitions of a node alone waiting for the attendance writer.",
		}, func() float64 { return float64(len(r.queue)) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "m4sh_attendance_transitions_written_total",
			Help: "Presence transitions of a node alone the attendance writer recorded.",
		}, func() float64 { return float64(r.written.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "m4sh_attendance_transitions_lost_total",
			Help: "Presence transitions of a node alone not recorded (database errors after a retry one by one, or after shutdown began).",
		}, func() float64 { return float64(r.lost.Load()) }),
	}
}
