package jobs

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/riverqueue/river"

	"github.com/m4sh/backend/internal/solo"
)

// SoloReapArgs is the job that finishes or rolls back abandoned snapshot uploads and deletes
// snapshot blobs that belong to no revision (see solo.Service.ReapPending).
type SoloReapArgs struct {
	// GraceSeconds overrides how long an upload may stay pending (nil: the service's default).
	GraceSeconds *int `json:"grace_seconds,omitempty"`
}

// Kind names the job in River.
func (SoloReapArgs) Kind() string { return "solo.reap_pending_uploads" }

// SoloReaper is what the job needs from the solo service.
type SoloReaper interface {
	ReapPending(ctx context.Context, grace time.Duration) (solo.ReapSummary, error)
}

// SoloReapWorker works SoloReapArgs. The work is idempotent: every change it makes is
// conditional on an upload still being pending, so retries and overlapping runs are safe.
type SoloReapWorker struct {
	river.WorkerDefaults[SoloReapArgs]
	Reaper SoloReaper
	Log    *slog.Logger
}

// Timeout leaves room for hashing pending blobs and listing the blob store.
func (w *SoloReapWorker) Timeout(*river.Job[SoloReapArgs]) time.Duration { return 10 * time.Minute }

// Work runs one reaping pass.
func (w *SoloReapWorker) Work(ctx context.Context, job *river.Job[SoloReapArgs]) error {
	grace := time.Duration(-1)
	if g := job.Args.GraceSeconds; g != nil && *g >= 0 {
		grace = time.Duration(*g) * time.Second
	}
	sum, err := w.Reaper.ReapPending(ctx, grace)
	if err != nil {
		return fmt.Errorf("reaping pending uploads: %w", err)
	}
	if sum != (solo.ReapSummary{}) {
		w.Log.InfoContext(ctx, "reaped pending uploads", "finished", sum.Finished, "rolled_back", sum.RolledBack,
			"orphan_blobs", sum.OrphanBlobs, "failed", sum.FailedUpkeep)
	}
	return nil
}

// SoloReapInterval is how often the reaper runs.
const SoloReapInterval = 5 * time.Minute

// AddSoloReaper registers the reaper's worker and its periodic schedule (also run at start,
// to clean up after a crash) in c, returning c.
func AddSoloReaper(c Config, reaper SoloReaper) Config {
	if c.Workers == nil {
		c.Workers = river.NewWorkers()
	}
	river.AddWorker(c.Workers, &SoloReapWorker{Reaper: reaper, Log: c.Log})
	c.WorkerCount++
	c.PeriodicJobs = append(c.PeriodicJobs, river.NewPeriodicJob(
		river.PeriodicInterval(SoloReapInterval),
		func() (river.JobArgs, *river.InsertOpts) { return SoloReapArgs{}, nil },
		&river.PeriodicJobOpts{ID: "solo.reap_pending_uploads", RunOnStart: true},
	))
	return c
}
