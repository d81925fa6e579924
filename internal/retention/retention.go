// Package retention is snapshot GC (CONTRACT §4): the River jobs that keep the newest N
// committed revisions of every solo session and give their bytes back, delete the freed
// blobs, and reconcile each user's used_bytes with the rows. Pending uploads and orphan
// blobs are the solo reaper's (internal/solo); this package never touches pending rows.
//
// Crash safety comes from doing every change to rows, accounting and the blob-deletion
// queue in one transaction per batch (River is the outbox): a crash anywhere leaves either
// the old state or the new one, never a row without its blob or a blob nobody will delete.
package retention

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/m4sh/backend/gen/db"
	"github.com/m4sh/backend/internal/apperr"
	"github.com/m4sh/backend/internal/blob"
	"github.com/m4sh/backend/internal/postgres"
)

// Job kinds.
const (
	KindCleanup    = "solo.cleanup_snapshots"
	KindDeleteBlob = "solo.delete_blob"
	KindReconcile  = "solo.reconcile_usage"
)

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

// uniqueWhileQueued: one job per kind and arguments until it finishes (River's default would
// also count completed jobs, which would stop a periodic job from running again).
var uniqueWhileQueued = river.InsertOpts{UniqueOpts: river.UniqueOpts{
	ByArgs: true,
	ByState: []rivertype.JobState{rivertype.JobStateAvailable, rivertype.JobStatePending,
		rivertype.JobStateRetryable, rivertype.JobStateRunning, rivertype.JobStateScheduled},
}}

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

// Summary is the recorded output of a cleanup run (and what `m4sh gc snapshots` prints).
type Summary struct {
	Sessions         int   `json:"sessions"`
	RevisionsDeleted int   `json:"revisions_deleted"`
	BytesFreed       int64 `json:"bytes_freed"`
}

// ReconcileSummary is the recorded output of a reconciliation.
type ReconcileSummary struct {
	Users      int   `json:"users"`
	Repaired   int   `json:"repaired"`
	DriftBytes int64 `json:"drift_bytes"`
}

// Config configures the jobs.
type Config struct {
	KeepLast          int           // SOLO_SNAPSHOT_RETENTION_KEEP_LAST (default 20)
	Interval          time.Duration // SOLO_SNAPSHOT_GC_INTERVAL (default 1h)
	ReconcileInterval time.Duration // daily
	Batch             int           // revisions deleted per transaction (default 1000)
}

// Service holds what the workers share.
type Service struct {
	pool    *pgxpool.Pool
	blobs   blob.Store
	log     *slog.Logger
	cfg     Config
	metrics *gcMetrics
}

type gcMetrics struct {
	revisionsDeleted prometheus.Counter
	bytesFreed       prometheus.Counter
	blobsDeleted     prometheus.Counter
	driftRepaired    prometheus.Counter
	driftBytes       prometheus.Counter
	duration         *prometheus.HistogramVec
}

// New returns the service; its metrics are registered on reg.
func New(pool *pgxpool.Pool, blobs blob.Store, log *slog.Logger, reg prometheus.Registerer, cfg Config) *Service {
	if cfg.KeepLast < 1 {
		cfg.KeepLast = 20
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Hour
	}
	if cfg.ReconcileInterval <= 0 {
		cfg.ReconcileInterval = 24 * time.Hour
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 1000
	}
	m := &gcMetrics{
		revisionsDeleted: prometheus.NewCounter(prometheus.CounterOpts{Name: "m4sh_solo_gc_revisions_deleted_total", Help: "Snapshot revisions deleted by retention."}),
		bytesFreed:       prometheus.NewCounter(prometheus.CounterOpts{Name: "m4sh_solo_gc_bytes_freed_total", Help: "Bytes given back to quotas by retention."}),
		blobsDeleted:     prometheus.NewCounter(prometheus.CounterOpts{Name: "m4sh_solo_gc_blobs_deleted_total", Help: "Snapshot blobs deleted after their rows."}),
		driftRepaired:    prometheus.NewCounter(prometheus.CounterOpts{Name: "m4sh_solo_usage_drift_repaired_total", Help: "Users whose used_bytes reconciliation had to repair."}),
		driftBytes:       prometheus.NewCounter(prometheus.CounterOpts{Name: "m4sh_solo_usage_drift_bytes_total", Help: "Absolute bytes of drift repaired."}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "m4sh_solo_gc_job_duration_seconds", Help: "Duration of retention jobs.",
			Buckets: prometheus.ExponentialBuckets(0.01, 4, 8)}, []string{"job"}),
	}
	if reg != nil {
		reg.MustRegister(m.revisionsDeleted, m.bytesFreed, m.blobsDeleted, m.driftRepaired, m.driftBytes, m.duration)
	}
	return &Service{pool: pool, blobs: blobs, log: log, cfg: cfg, metrics: m}
}

// WorkerCount is how many workers Register adds.
const WorkerCount = 3

// Register adds the workers and periodic schedules to a River configuration.
func (s *Service) Register(workers *river.Workers) []*river.PeriodicJob {
	river.AddWorker(workers, &CleanupWorker{svc: s})
	river.AddWorker(workers, &DeleteBlobWorker{svc: s})
	river.AddWorker(workers, &ReconcileWorker{svc: s})
	return []*river.PeriodicJob{
		river.NewPeriodicJob(river.PeriodicInterval(s.cfg.Interval),
			func() (river.JobArgs, *river.InsertOpts) { return CleanupArgs{}, nil }, nil),
		river.NewPeriodicJob(river.PeriodicInterval(s.cfg.ReconcileInterval),
			func() (river.JobArgs, *river.InsertOpts) { return ReconcileArgs{}, nil }, nil),
	}
}

// Inserter is the part of the River client Enqueue needs.
type Inserter interface {
	Insert(ctx context.Context, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error)
}

// Enqueue validates and inserts a cleanup; a duplicate of a queued or running one returns
// that job instead.
func Enqueue(ctx context.Context, c Inserter, args CleanupArgs) (*rivertype.JobRow, error) {
	if err := args.Validate(); err != nil {
		return nil, err
	}
	res, err := c.Insert(ctx, args, nil)
	if err != nil {
		return nil, fmt.Errorf("enqueueing %s: %w", KindCleanup, err)
	}
	return res.Job, nil
}

// CleanupWorker works solo.cleanup_snapshots.
type CleanupWorker struct {
	river.WorkerDefaults[CleanupArgs]
	svc *Service
}

// Timeout: a full pass over many sessions may take a while; progress is committed per batch.
func (w *CleanupWorker) Timeout(*river.Job[CleanupArgs]) time.Duration { return 30 * time.Minute }

// Work deletes revisions beyond the newest keep_last, session by session in bounded batches.
func (w *CleanupWorker) Work(ctx context.Context, job *river.Job[CleanupArgs]) error {
	if err := job.Args.Validate(); err != nil {
		return river.JobCancel(err)
	}
	start := time.Now()
	defer func() { w.svc.metrics.duration.WithLabelValues(KindCleanup).Observe(time.Since(start).Seconds()) }()
	keep := w.svc.cfg.KeepLast
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

// TxInserter enqueues jobs inside a transaction.
type TxInserter interface {
	InsertManyTx(ctx context.Context, tx pgx.Tx, params []river.InsertManyParams) ([]*rivertype.JobInsertResult, error)
}

// Cleanup runs the retention pass (all sessions, or one).
func (s *Service) Cleanup(ctx context.Context, jobs TxInserter, keep int, only *uuid.UUID) (Summary, error) {
	if only != nil {
		n, freed, err := s.cleanSessions(ctx, jobs, []uuid.UUID{*only}, keep)
		if err != nil {
			return Summary{}, err
		}
		return Summary{Sessions: 1, RevisionsDeleted: n, BytesFreed: freed}, nil
	}
	var sum Summary
	q := db.New(s.pool)
	after := uuid.Nil
	for {
		ids, err := q.RetentionSessionsPage(ctx, db.RetentionSessionsPageParams{After: after, KeepLast: int32(keep), Lim: sessionsPerPage})
		if err != nil {
			return sum, fmt.Errorf("listing sessions: %w", err)
		}
		n, freed, err := s.cleanSessions(ctx, jobs, ids, keep)
		if err != nil {
			return sum, err
		}
		sum.Sessions += len(ids)
		sum.RevisionsDeleted += n
		sum.BytesFreed += freed
		if len(ids) < sessionsPerPage {
			return sum, nil
		}
		after = ids[len(ids)-1]
	}
}

// sessionsPerPage bounds how many sessions one pass locks together; batches within a page
// are bounded by Config.Batch revisions, so a huge session is worked through in many short
// transactions and small ones share a transaction.
const sessionsPerPage = 200

// cleanSessions deletes a page of sessions' old revisions, a batch per transaction: rows,
// the owners' used_bytes and the blob deletions commit together.
func (s *Service) cleanSessions(ctx context.Context, jobs TxInserter, ids []uuid.UUID, keep int) (deleted int, freed int64, err error) {
	if len(ids) == 0 {
		return 0, 0, nil
	}
	for {
		var rows []db.RetentionDeleteOldestRow
		err := postgres.InTx(ctx, s.pool, func(tx pgx.Tx) error {
			q := db.New(tx)
			var err error
			rows, err = q.RetentionDeleteOldest(ctx, db.RetentionDeleteOldestParams{SessionIds: ids, KeepLast: int32(keep), Lim: int32(s.cfg.Batch)})
			if err != nil || len(rows) == 0 {
				return err
			}
			byUser := map[string]int64{}
			keys := make([]string, len(rows))
			for i, r := range rows {
				byUser[r.UserID] += r.SizeBytes
				keys[i] = r.BlobKey
			}
			for user, n := range byUser {
				if err := q.RetentionUsageRelease(ctx, db.RetentionUsageReleaseParams{Freed: n, UserID: user}); err != nil {
					return err
				}
			}
			_, err = jobs.InsertManyTx(ctx, tx, []river.InsertManyParams{{Args: DeleteBlobArgs{Keys: keys}}})
			return err
		})
		if err != nil {
			return deleted, freed, fmt.Errorf("cleaning sessions: %w", err)
		}
		var batchFreed int64
		for _, r := range rows {
			batchFreed += r.SizeBytes
		}
		deleted += len(rows)
		freed += batchFreed
		s.metrics.revisionsDeleted.Add(float64(len(rows)))
		s.metrics.bytesFreed.Add(float64(batchFreed))
		if len(rows) < s.cfg.Batch {
			return deleted, freed, nil
		}
	}
}

// DeleteBlobWorker works solo.delete_blob. Deleting a key that is already gone is success,
// so retries after a crash are harmless.
type DeleteBlobWorker struct {
	river.WorkerDefaults[DeleteBlobArgs]
	svc *Service
}

// Work deletes a batch of blobs; keys already gone count as deleted, so a retry after a
// partial run finishes the rest.
func (w *DeleteBlobWorker) Work(ctx context.Context, job *river.Job[DeleteBlobArgs]) error {
	for _, key := range job.Args.Keys {
		if err := w.svc.blobs.Delete(ctx, key); err != nil {
			return fmt.Errorf("deleting blob %s: %w", key, err)
		}
		w.svc.metrics.blobsDeleted.Inc()
	}
	return nil
}

// ReconcileWorker works solo.reconcile_usage.
type ReconcileWorker struct {
	river.WorkerDefaults[ReconcileArgs]
	svc *Service
}

// Timeout: one pass over every user.
func (w *ReconcileWorker) Timeout(*river.Job[ReconcileArgs]) time.Duration { return 30 * time.Minute }

// Work recomputes used_bytes of every user from the rows and repairs drift.
func (w *ReconcileWorker) Work(ctx context.Context, job *river.Job[ReconcileArgs]) error {
	start := time.Now()
	defer func() { w.svc.metrics.duration.WithLabelValues(KindReconcile).Observe(time.Since(start).Seconds()) }()
	sum, err := w.svc.Reconcile(ctx)
	if err != nil {
		return err
	}
	return river.RecordOutput(ctx, sum)
}

// Reconcile recomputes every user's used_bytes under that user's row lock.
func (s *Service) Reconcile(ctx context.Context) (ReconcileSummary, error) {
	var sum ReconcileSummary
	q := db.New(s.pool)
	after := ""
	for {
		users, err := q.RetentionUsersPage(ctx, db.RetentionUsersPageParams{After: after, Lim: 500})
		if err != nil {
			return sum, fmt.Errorf("listing users: %w", err)
		}
		for _, u := range users {
			err := postgres.InTx(ctx, s.pool, func(tx pgx.Tx) error {
				q := db.New(tx)
				used, err := q.RetentionUsageLock(ctx, u)
				if err != nil {
					return err
				}
				actual, err := q.RetentionUsageActual(ctx, u)
				if err != nil || actual == used {
					return err
				}
				if err := q.RetentionUsageSet(ctx, db.RetentionUsageSetParams{UsedBytes: actual, UserID: u}); err != nil {
					return err
				}
				drift := actual - used
				s.log.WarnContext(ctx, "repaired used_bytes drift", "user_id", u, "recorded", used, "actual", actual, "drift", drift)
				s.metrics.driftRepaired.Inc()
				s.metrics.driftBytes.Add(float64(max(drift, -drift)))
				sum.Repaired++
				sum.DriftBytes += max(drift, -drift)
				return nil
			})
			if err != nil {
				return sum, fmt.Errorf("reconciling %s: %w", u, err)
			}
			sum.Users++
		}
		if len(users) < 500 {
			return sum, nil
		}
		after = users[len(users)-1]
	}
}
