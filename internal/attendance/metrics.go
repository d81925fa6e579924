package attendance

import "github.com/prometheus/client_golang/prometheus"

// Collectors returns the metrics of the transition queue: how many wait, how many were
// written, how many were lost (not recordable after a retry one by one, or arriving after
// Stop), and how many cluster spans a sweep had to start or end itself (Reconcile).
func (r *Recorder) Collectors() []prometheus.Collector {
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "m4sh_attendance_queued_transitions",
			Help: "Presence transitions waiting for the attendance writer.",
		}, func() float64 { return float64(len(r.queue)) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "m4sh_attendance_transitions_written_total",
			Help: "Presence transitions the attendance writer recorded.",
		}, func() float64 { return float64(r.written.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "m4sh_attendance_transitions_lost_total",
			Help: "Presence transitions not recorded by the writer (database errors after a retry one by one, or after shutdown began); in a cluster the sweep writes them later (m4sh_attendance_spans_reconciled_total).",
		}, func() float64 { return float64(r.lost.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "m4sh_attendance_spans_reconciled_total",
			Help: "Cluster attendance span starts and ends written by this node's sweep because the transition queued for them was lost (a crash, a failed write).",
		}, func() float64 { return float64(r.reconciled.Load()) }),
	}
}
