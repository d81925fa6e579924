package jobs

import (
	"context"
	"log/slog"
	"time"

	"github.com/riverqueue/river"

	"github.com/m4sh/backend/internal/telemetry"
)

// TelemetryPartitionsArgs is the job that keeps telemetry_events' daily partitions: created
// ahead, dropped after TELEMETRY_RETENTION_DAYS.
type TelemetryPartitionsArgs struct{}

// Kind names the job in River's tables.
func (TelemetryPartitionsArgs) Kind() string { return "telemetry.maintain_partitions" }

// TelemetryPartitionsWorker runs telemetry.Maintenance. The work is idempotent DDL under an
// advisory lock, so retries and concurrent runs are harmless.
type TelemetryPartitionsWorker struct {
	river.WorkerDefaults[TelemetryPartitionsArgs]
	Maintenance telemetry.Maintenance
	Log         *slog.Logger
	Now         func() time.Time
}

// Work creates and drops partitions.
func (w *TelemetryPartitionsWorker) Work(ctx context.Context, _ *river.Job[TelemetryPartitionsArgs]) error {
	now := time.Now
	if w.Now != nil {
		now = w.Now
	}
	created, dropped, err := w.Maintenance.Maintain(ctx, now())
	if err != nil {
		return err
	}
	if created > 0 || dropped > 0 {
		w.Log.InfoContext(ctx, "telemetry partitions maintained", "created", created, "dropped", dropped)
	}
	return nil
}

// TelemetryPartitionsInterval is how often the partition job runs.
const TelemetryPartitionsInterval = time.Hour

// TelemetryPartitions is the telemetry feature's background work: the partition worker,
// hourly and once at start so that a fresh deployment has its partitions at once.
func TelemetryPartitions(w *TelemetryPartitionsWorker) Work {
	return Work{
		Workers: []Worker{NewWorker(w)},
		Periodic: []*river.PeriodicJob{river.NewPeriodicJob(
			river.PeriodicInterval(TelemetryPartitionsInterval),
			func() (river.JobArgs, *river.InsertOpts) { return TelemetryPartitionsArgs{}, nil },
			&river.PeriodicJobOpts{RunOnStart: true},
		)},
	}
}
