package jobs

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/rivertype"
)

// workMetrics counts the jobs this node worked. It is River worker middleware, so every
// worker is measured the same way; kind values are bounded by the registered workers (a
// job of an unknown kind never reaches middleware).
type workMetrics struct {
	river.MiddlewareDefaults
	worked      *prometheus.CounterVec
	lastSuccess *prometheus.GaugeVec
	wait        *prometheus.HistogramVec
}

var _ rivertype.WorkerMiddleware = (*workMetrics)(nil)

func newWorkMetrics() *workMetrics {
	return &workMetrics{
		worked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "m4sh_river_jobs_worked_total",
			Help: "River jobs worked on this node by kind and outcome (ok, error: the attempt failed and River retries or discards it).",
		}, []string{"kind", "outcome"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "m4sh_river_job_last_success_timestamp_seconds",
			Help: "Unix time this node last finished a job of the kind without error (absent until the first).",
		}, []string{"kind"}),
		wait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "m4sh_river_job_queue_wait_seconds",
			Help:    "Time from a job's scheduled time to this node starting to work it, by kind.",
			Buckets: []float64{.01, .05, .25, 1, 5, 15, 60, 300, 900, 3600},
		}, []string{"kind"}),
	}
}

// Work measures one attempt.
func (m *workMetrics) Work(ctx context.Context, job *rivertype.JobRow, doInner func(context.Context) error) error {
	m.wait.WithLabelValues(job.Kind).Observe(max(0, time.Since(job.ScheduledAt).Seconds()))
	err := doInner(ctx)
	if err != nil {
		m.worked.WithLabelValues(job.Kind, "error").Inc()
		return err
	}
	m.worked.WithLabelValues(job.Kind, "ok").Inc()
	m.lastSuccess.WithLabelValues(job.Kind).SetToCurrentTime()
	return nil
}

// queueCollector reads River's tables at scrape time: how many jobs are in each state and
// how long the oldest available job has waited per queue. Every node reports the same
// database-wide values (aggregate them with max, not sum). A query that fails or takes
// longer than its timeout leaves these series out of that scrape rather than failing it.
type queueCollector struct {
	client  *Client
	log     *slog.Logger
	timeout time.Duration
	jobs    *prometheus.Desc
	age     *prometheus.Desc
}

// Describe sends the descriptors.
func (q *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- q.jobs
	ch <- q.age
}

// Collect runs the two queries.
func (q *queueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), q.timeout)
	defer cancel()
	counts, err := q.client.Driver().GetExecutor().JobCountByAllStates(ctx, &riverdriver.JobCountByAllStatesParams{Schema: q.client.Schema()})
	if err != nil {
		q.log.Warn("river metrics: counting jobs", "err", err)
		return
	}
	// Every state is reported (0 when empty), so that alerts on one never see a missing series.
	for _, s := range []rivertype.JobState{
		rivertype.JobStateAvailable, rivertype.JobStateCancelled, rivertype.JobStateCompleted,
		rivertype.JobStateDiscarded, rivertype.JobStatePending, rivertype.JobStateRetryable,
		rivertype.JobStateRunning, rivertype.JobStateScheduled,
	} {
		ch <- prometheus.MustNewConstMetric(q.jobs, prometheus.GaugeValue, float64(counts[s]), string(s))
	}
	res, err := q.client.JobList(ctx, river.NewJobListParams().
		States(rivertype.JobStateAvailable).OrderBy(river.JobListOrderByScheduledAt, river.SortOrderAsc).First(1))
	if err != nil {
		q.log.Warn("river metrics: oldest available job", "err", err)
		return
	}
	age := 0.0
	if len(res.Jobs) > 0 {
		age = max(0, time.Since(res.Jobs[0].ScheduledAt).Seconds())
	}
	ch <- prometheus.MustNewConstMetric(q.age, prometheus.GaugeValue, age, river.QueueDefault)
}

// Collectors returns the River metrics to register: jobs worked on this node (middleware
// installed by New) and the queue's state read from the database at scrape time.
func (c *Client) Collectors(log *slog.Logger) []prometheus.Collector {
	q := &queueCollector{
		client: c, log: log, timeout: 2 * time.Second,
		jobs: prometheus.NewDesc("m4sh_river_jobs",
			"River jobs in the database by state (database-wide: every node reports the same).", []string{"state"}, nil),
		age: prometheus.NewDesc("m4sh_river_queue_oldest_available_age_seconds",
			"Seconds the oldest available (due, not yet running) job of the queue has waited; 0 when none waits.", []string{"queue"}, nil),
	}
	return []prometheus.Collector{c.work.worked, c.work.lastSuccess, c.work.wait, q}
}
