package solo

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/m4sh/backend/internal/apperr"
	"github.com/m4sh/backend/internal/jobs"
)

// Job kinds. They are stored in River's tables: never rename one. Their arguments only ever
// gain optional fields, so a job queued by an older or newer binary decodes on this one
// (encoding/json ignores fields it does not know; a missing one takes its zero value), and a
// kind this binary does not know is never fetched by it (internal/jobs sets River's
// FetchOnlyKnownKinds): during a rolling deploy no job fails for good because of the binary
// that ran it (README: Rolling deploys and job arguments).
const (
	KindReap       = "solo.reap_pending_uploads"
	KindCleanup    = "solo.cleanup_snapshots"
	KindDeleteBlob = "solo.delete_blob"
	KindReconcile  = "solo.reconcile_usage"
)

// ReapInterval is how often the reaper runs (and once at start, to clean up after a crash).
const ReapInterval = 5 * time.Minute

// Work is the solo workspace's background work for River: the reaper, retention, blob
// deletion and reconciliation, with their periodic schedules.
func (s *Service) Work() jobs.Work {
	return jobs.Work{
		Workers: []jobs.Worker{
			jobs.NewWorker(&reapWorker{svc: s}),
			jobs.NewWorker(&cleanupWorker{svc: s}),
			jobs.NewWorker(&deleteBlobWorker{svc: s}),
			jobs.NewWorker(&reconcileWorker{svc: s}),
		},
		Periodic: []*river.PeriodicJob{
			river.NewPeriodicJob(river.PeriodicInterval(ReapInterval),
				func() (river.JobArgs, *river.InsertOpts) { return ReapArgs{}, nil },
				&river.PeriodicJobOpts{ID: KindReap, RunOnStart: true}),
			river.NewPeriodicJob(river.PeriodicInterval(s.opts.GCInterval),
				func() (river.JobArgs, *river.InsertOpts) { return CleanupArgs{}, nil }, nil),
			river.NewPeriodicJob(river.PeriodicInterval(s.opts.ReconcileInterval),
				func() (river.JobArgs, *river.InsertOpts) { return ReconcileArgs{}, nil }, nil),
		},
	}
}

// uniqueWhileQueued: one job per kind and arguments until it finishes (River's default would
// also count completed jobs, which would stop a periodic job from running again).
var uniqueWhileQueued = river.InsertOpts{UniqueOpts: river.UniqueOpts{
	ByArgs: true,
	ByState: []rivertype.JobState{rivertype.JobStateAvailable, rivertype.JobStatePending,
		rivertype.JobStateRetryable, rivertype.JobStateRunning, rivertype.JobStateScheduled},
}}

// ReapArgs are the arguments of solo.reap_pending_uploads: finish or roll back abandoned
// uploads and delete snapshot blobs that belong to no revision (see ReapPending).
type ReapArgs struct {
	// GraceSeconds overrides how long an upload may stay pending (nil: the service's default).
	GraceSeconds *int `json:"grace_seconds,omitempty"`
}

// Kind implements river.JobArgs.
func (ReapArgs) Kind() string { return KindReap }

// CleanupArgs are the arguments of solo.cleanup_snapshots.
type CleanupArgs struct {
	// KeepLast overrides SOLO_SNAPSHOT_RETENTION_KEEP_LAST; must be at least 1.
	KeepLast *int `json:"keep_last,omitempty"`
	// SessionID limits the run to one session.
	SessionID *uuid.UUID `json:"session_id,omitempty"`
}

// Kind implements river.JobArgs.
func (CleanupArgs) Kind() string { return KindCleanup }

// InsertOpts makes a cleanup with the same arguments unique while one is queued or running,
// so overlapping schedules and manual runs never pile up.
func (CleanupArgs) InsertOpts() river.InsertOpts { return uniqueWhileQueued }

// Validate rejects a keep_last below 1.
func (a CleanupArgs) Validate() error {
	if a.KeepLast != nil && *a.KeepLast < 1 {
		return apperr.Validation("keep_last must be at least 1",
			apperr.FieldError{Field: "keep_last", Message: fmt.Sprintf("must be at least 1, got %d", *a.KeepLast)})
	}
	return nil
}

// DeleteBlobArgs are the arguments of solo.delete_blob: the blobs of one batch of deleted
// rows, enqueued in the transaction that deleted them (one job per batch, not per blob, so
// that a large cleanup does not flood the queue).
type DeleteBlobArgs struct {
	Keys []string `json:"keys"`
}

// Kind implements river.JobArgs.
func (DeleteBlobArgs) Kind() string { return KindDeleteBlob }

// InsertOpts: the same batch is never queued twice.
func (DeleteBlobArgs) InsertOpts() river.InsertOpts { return uniqueWhileQueued }

// ReconcileArgs are the arguments of solo.reconcile_usage.
type ReconcileArgs struct{}

// Kind implements river.JobArgs.
func (ReconcileArgs) Kind() string { return KindReconcile }

// InsertOpts: one reconciliation at a time.
func (ReconcileArgs) InsertOpts() river.InsertOpts { return uniqueWhileQueued }

// Inserter is the part of the River client EnqueueCleanup needs.
type Inserter interface {
	Insert(ctx context.Context, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error)
}

// EnqueueCleanup validates and inserts a cleanup; a duplicate of a queued or running one
// returns that job instead.
func EnqueueCleanup(ctx context.Context, c Inserter, args CleanupArgs) (*rivertype.JobRow, error) {
	if err := args.Validate(); err != nil {
		return nil, err
	}
	res, err := c.Insert(ctx, args, nil)
	if err != nil {
		return nil, fmt.Errorf("enqueueing %s: %w", KindCleanup, err)
	}
	return res.Job, nil
}

// reapWorker works solo.reap_pending_uploads. The work is idempotent: every change it makes
// is conditional on an upload still being pending, so retries and overlapping runs are safe.
type reapWorker struct {
	river.WorkerDefaults[ReapArgs]
	svc *Service
}

// Timeout leaves room for hashing pending blobs and listing the blob store.
func (w *reapWorker) Timeout(*river.Job[ReapArgs]) time.Duration { return 10 * time.Minute }

// Work runs one reaping pass.
func (w *reapWorker) Work(ctx context.Context, job *river.Job[ReapArgs]) error {
	grace := time.Duration(-1)
	if g := job.Args.GraceSeconds; g != nil && *g >= 0 {
		grace = time.Duration(*g) * time.Second
	}
	sum, err := w.svc.ReapPending(ctx, grace)
	if err != nil {
		return fmt.Errorf("reaping pending uploads: %w", err)
	}
	if sum != (ReapSummary{}) {
		w.svc.log.InfoContext(ctx, "reaped pending uploads", "finished", sum.Finished, "rolled_back", sum.RolledBack,
			"orphan_blobs", sum.OrphanBlobs, "leftovers", sum.Leftovers, "failed", sum.FailedUpkeep)
	}
	return nil
}

// cleanupWorker works solo.cleanup_snapshots.
type cleanupWorker struct {
	river.WorkerDefaults[CleanupArgs]
	svc *Service
}

// Timeout: a full pass over many sessions may take a while; progress is committed per batch.
func (w *cleanupWorker) Timeout(*river.Job[CleanupArgs]) time.Duration { return 30 * time.Minute }

// Work deletes revisions beyond the newest keep_last, session by session in bounded batches.
func (w *cleanupWorker) Work(ctx context.Context, job *river.Job[CleanupArgs]) error {
	if err := job.Args.Validate(); err != nil {
		return river.JobCancel(err)
	}
	start := time.Now()
	defer func() { w.svc.metrics.duration.WithLabelValues(KindCleanup).Observe(time.Since(start).Seconds()) }()
	keep := w.svc.opts.KeepLast
	if job.Args.KeepLast != nil {
		keep = *job.Args.KeepLast
	}
	client := river.ClientFromContext[pgx.Tx](ctx)
	sum, err := w.svc.Cleanup(ctx, client, keep, job.Args.SessionID)
	if err != nil {
		return err
	}
	w.svc.log.InfoContext(ctx, "snapshot retention", "keep_last", keep, "sessions", sum.Sessions,
		"revisions_deleted", sum.RevisionsDeleted, "bytes_freed", sum.BytesFreed)
	return river.RecordOutput(ctx, sum)
}

// deleteBlobWorker works solo.delete_blob. Deleting a key that is already gone is success,
// so retries after a crash are harmless.
type deleteBlobWorker struct {
	river.WorkerDefaults[DeleteBlobArgs]
	svc *Service
}

// Work deletes a batch of blobs.
func (w *deleteBlobWorker) Work(ctx context.Context, job *river.Job[DeleteBlobArgs]) error {
	return w.svc.deleteBlobs(ctx, job.Args.Keys)
}

// reconcileWorker works solo.reconcile_usage.
type reconcileWorker struct {
	river.WorkerDefaults[ReconcileArgs]
	svc *Service
}

// Timeout: one pass over every user.
func (w *reconcileWorker) Timeout(*river.Job[ReconcileArgs]) time.Duration { return 30 * time.Minute }

// Work recomputes used_bytes of every user from the rows and repairs drift.
func (w *reconcileWorker) Work(ctx context.Context, job *river.Job[ReconcileArgs]) error {
	start := time.Now()
	defer func() { w.svc.metrics.duration.WithLabelValues(KindReconcile).Observe(time.Since(start).Seconds()) }()
	sum, err := w.svc.Reconcile(ctx)
	if err != nil {
		return err
	}
	return river.RecordOutput(ctx, sum)
}

type gcMetrics struct {
	revisionsDeleted prometheus.Counter
	bytesFreed       prometheus.Counter
	blobsDeleted     prometheus.Counter
	driftRepaired    prometheus.Counter
	driftBytes       prometheus.Counter
	refcountRepaired prometheus.Counter
	corruptRefs      prometheus.Counter
	dataLost         prometheus.Counter
	duration         *prometheus.HistogramVec
}

func newGCMetrics(reg prometheus.Registerer) *gcMetrics {
	m := &gcMetrics{
		revisionsDeleted: prometheus.NewCounter(prometheus.CounterOpts{Name: "m4sh_solo_gc_revisions_deleted_total", Help: "Snapshot revisions deleted by retention."}),
		bytesFreed:       prometheus.NewCounter(prometheus.CounterOpts{Name: "m4sh_solo_gc_bytes_freed_total", Help: "Bytes given back to quotas by retention."}),
		blobsDeleted:     prometheus.NewCounter(prometheus.CounterOpts{Name: "m4sh_solo_gc_blobs_deleted_total", Help: "Snapshot blobs deleted after their rows."}),
		driftRepaired:    prometheus.NewCounter(prometheus.CounterOpts{Name: "m4sh_solo_usage_drift_repaired_total", Help: "Users whose used_bytes reconciliation had to repair."}),
		driftBytes:       prometheus.NewCounter(prometheus.CounterOpts{Name: "m4sh_solo_usage_drift_bytes_total", Help: "Absolute bytes of drift repaired."}),
		refcountRepaired: prometheus.NewCounter(prometheus.CounterOpts{Name: "m4sh_solo_chunk_refcount_repaired_total", Help: "Chunk reference counts reconciliation had to repair."}),
		corruptRefs:      prometheus.NewCounter(prometheus.CounterOpts{Name: "m4sh_solo_chunk_missing_refs_total", Help: "References to chunks that are gone, found by reconciliation (those revisions cannot be read)."}),
		dataLost:         prometheus.NewCounter(prometheus.CounterOpts{Name: "m4sh_solo_snapshot_data_lost_total", Help: "Reads that found a revision's stored bytes missing or corrupt (answered 503 snapshot_data_lost)."}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "m4sh_solo_gc_job_duration_seconds", Help: "Duration of retention jobs.",
			Buckets: prometheus.ExponentialBuckets(0.01, 4, 8)}, []string{"job"}),
	}
	if reg != nil {
		reg.MustRegister(m.revisionsDeleted, m.bytesFreed, m.blobsDeleted, m.driftRepaired, m.driftBytes, m.refcountRepaired, m.corruptRefs, m.dataLost, m.duration)
	}
	return m
}
