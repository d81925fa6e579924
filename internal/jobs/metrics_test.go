package jobs_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/riverqueue/river"

	"github.com/m4sh/backend/internal/apptest"
	"github.com/m4sh/backend/internal/dbtest"
	"github.com/m4sh/backend/internal/jobs"
	"github.com/m4sh/backend/internal/solo"
)

// gauge returns the value of the series of family name whose labels include want, failing
// the test when there is none.
func gauge(t *testing.T, g prometheus.Gatherer, name string, want map[string]string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if have[k] != v {
					continue series
				}
			}
			return value(m)
		}
	}
	t.Fatalf("no series %s%v", name, want)
	return 0
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Counter != nil:
		return m.Counter.GetValue()
	}
	return 0
}

// TestQueueCollector: the scrape-time collector reports every state and the age of the
// oldest available job, from the database.
func TestQueueCollector(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, dbtest.NewURL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	c, err := jobs.New(pool, jobs.Config{}) // insert only: nothing works the jobs
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(c.Collectors(slog.New(slog.DiscardHandler))...)

	if got := gauge(t, reg, "m4sh_river_queue_oldest_available_age_seconds", map[string]string{"queue": "default"}); got != 0 {
		t.Errorf("oldest available age of an empty queue = %v, want 0", got)
	}
	// Two jobs due now, the first made 90 s overdue (River inserts a job with a ScheduledAt
	// as scheduled until its leader moves it), and one due in an hour.
	var due []int64
	for range 2 {
		res, err := c.Insert(ctx, jobs.TelemetryPartitionsArgs{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		due = append(due, res.Job.ID)
	}
	if _, err := pool.Exec(ctx, "UPDATE river_job SET scheduled_at = now() - interval '90 seconds' WHERE id = $1", due[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Insert(ctx, jobs.TelemetryPartitionsArgs{}, &river.InsertOpts{ScheduledAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	for state, want := range map[string]float64{"available": 2, "scheduled": 1, "running": 0, "discarded": 0, "retryable": 0, "completed": 0} {
		if got := gauge(t, reg, "m4sh_river_jobs", map[string]string{"state": state}); got != want {
			t.Errorf("m4sh_river_jobs{state=%q} = %v, want %v", state, got, want)
		}
	}
	if got := gauge(t, reg, "m4sh_river_queue_oldest_available_age_seconds", map[string]string{"queue": "default"}); got < 90 || got > 150 {
		t.Errorf("oldest available age = %v, want 90..150 s", got)
	}
}

// TestWorkMetrics: a job worked through the wired client is counted by kind and outcome,
// and its kind's last success is stamped.
func TestWorkMetrics(t *testing.T) {
	t.Parallel()
	env := apptest.New(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := float64(time.Now().Unix())
	job, err := solo.EnqueueCleanup(ctx, env.App.River, solo.CleanupArgs{})
	if err != nil {
		t.Fatal(err)
	}
	for {
		j, err := env.App.River.JobGet(ctx, job.ID)
		if err != nil {
			t.Fatal(err)
		}
		if j.FinalizedAt != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	kind := map[string]string{"kind": solo.KindCleanup}
	if got := gauge(t, env.App.Metrics, "m4sh_river_jobs_worked_total", map[string]string{"kind": solo.KindCleanup, "outcome": "ok"}); got != 1 {
		t.Errorf("m4sh_river_jobs_worked_total{kind=%q,outcome=ok} = %v, want 1", solo.KindCleanup, got)
	}
	if got := gauge(t, env.App.Metrics, "m4sh_river_job_last_success_timestamp_seconds", kind); got < start || got > float64(time.Now().Unix())+1 {
		t.Errorf("last success = %v, want between %v and now", got, start)
	}
}
