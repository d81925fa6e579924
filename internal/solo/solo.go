// Package solo is the solo workspace (README: Snapshot and quota decisions): sessions owned by one user and the
// whole lifecycle of their snapshot revisions — upload (upload.go), reads, the per-user quota
// (quota.go), the reaper of abandoned uploads and leftover blobs (reap.go), retention
// (retention.go), usage reconciliation (reconcile.go) and the River jobs that run them
// (jobs.go). Nothing else in the service writes solo_snapshots or solo_user_storage.
//
// Quota invariant: solo_user_storage.used_bytes of a user equals the sum of size_bytes of the
// user's snapshot rows, pending or committed, and no upload takes it past quota_bytes.
// Bytes move only together with a row, in the transaction that inserts or deletes it, each
// movement through one query: SnapshotReserve (an upload's row in, its bytes charged under
// the conditional quota check), QuotaRelease (rows out: a rolled-back upload, or retention),
// QuotaRepair (reconciliation, which only ever restores the invariant).
//
// Lock order: every transaction or statement here that locks more than one of these takes
// them in this order, so that uploads, their retries, the reaper, retention and
// reconciliation never deadlock one another:
//
//  1. solo_sessions rows (FOR NO KEY UPDATE, in id order): commit, retention;
//  2. solo_user_storage rows (in user_id order): reserve, rollback, retention, reconcile;
//  3. the upload's own rows: its solo_snapshots row, then its idempotency keys.
//
// The key-share lock an insert's foreign key takes on the session row conflicts with none
// of these, so reserve may take it after the user's row. PostgreSQL's own deadlock and
// serialization aborts are still retried (postgres.InTx, postgres.Retry).
package solo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/m4sh/backend/gen/db"
	"github.com/m4sh/backend/internal/apperr"
	"github.com/m4sh/backend/internal/blob"
	"github.com/m4sh/backend/internal/page"
	"github.com/m4sh/backend/internal/postgres"
	"github.com/m4sh/backend/internal/webhook"
)

// DefaultPendingGrace is how long an upload may stay pending before the reaper treats it as
// abandoned. An upload is pending only while its (already buffered) body is written to the
// blob store and committed, which takes milliseconds.
const DefaultPendingGrace = 5 * time.Minute

// Options configure a Service.
type Options struct {
	DefaultQuota     int64         // quota of a user without a storage row
	MaxSnapshotBytes int64         // largest snapshot body
	PendingGrace     time.Duration // see DefaultPendingGrace
	UploadsInFlight  int           // per user and process (SOLO_UPLOADS_IN_FLIGHT, DefaultUploadsInFlight)
	// AfterStep, when set, runs after each step of an upload. An error it returns abandons the
	// upload right there with no clean-up, as a crash of the process would. Tests use it to
	// inject crashes.
	AfterStep func(ctx context.Context, step Step) error

	KeepLast          int           // SOLO_SNAPSHOT_RETENTION_KEEP_LAST (default 20)
	GCInterval        time.Duration // SOLO_SNAPSHOT_GC_INTERVAL (default 1h)
	ReconcileInterval time.Duration // default daily
	GCBatch           int           // revisions deleted per retention transaction (default 1000)
}

// Step names the steps of an upload, in order.
type Step string

// The steps of an upload.
const (
	StepReserve   Step = "reserve"    // bytes reserved and a pending row recorded
	StepBlobWrite Step = "blob_write" // blob written
	StepCommit    Step = "commit"     // revision committed
)

// Service implements the solo workspace over PostgreSQL and a blob store.
type Service struct {
	pool     *pgxpool.Pool
	q        *db.Queries
	blobs    blob.Store
	log      *slog.Logger
	opts     Options
	metrics  *gcMetrics
	inFlight *inFlight
	events   *webhook.Publisher // solo.quota_exceeded (see SetEvents)
}

// New returns a Service; its metrics are registered on reg when it is not nil.
func New(pool *pgxpool.Pool, blobs blob.Store, log *slog.Logger, reg prometheus.Registerer, opts Options) *Service {
	if opts.PendingGrace <= 0 {
		opts.PendingGrace = DefaultPendingGrace
	}
	if opts.KeepLast < 1 {
		opts.KeepLast = 20
	}
	if opts.GCInterval <= 0 {
		opts.GCInterval = time.Hour
	}
	if opts.ReconcileInterval <= 0 {
		opts.ReconcileInterval = 24 * time.Hour
	}
	if opts.GCBatch <= 0 {
		opts.GCBatch = 1000
	}
	if opts.UploadsInFlight <= 0 {
		opts.UploadsInFlight = DefaultUploadsInFlight
	}
	return &Service{pool: pool, q: db.New(pool), blobs: blobs, log: log, opts: opts,
		metrics: newGCMetrics(reg), inFlight: newInFlight(opts.UploadsInFlight)}
}

// Session is a solo session.
type Session struct {
	ID        uuid.UUID
	UserID    string
	Title     string
	CreatedAt time.Time
}

// Snapshot is a committed snapshot revision.
type Snapshot struct {
	ID          uuid.UUID
	SessionID   uuid.UUID
	Revision    int32
	SizeBytes   int64
	SHA256      string // lowercase hex
	ContentType string
	CreatedAt   time.Time
	blobKey     string
}

// ETag is the snapshot's strong entity tag: its quoted SHA-256.
func (s Snapshot) ETag() string { return `"` + s.SHA256 + `"` }

func sessionFrom(r db.SoloSession) Session {
	return Session{ID: r.ID, UserID: r.UserID, Title: r.Title, CreatedAt: r.CreatedAt}
}

func snapshotFrom(r db.SoloSnapshot) Snapshot {
	return Snapshot{
		ID: r.ID, SessionID: r.SessionID, Revision: r.Revision.Int32, SizeBytes: r.SizeBytes,
		SHA256: r.Sha256, ContentType: r.ContentType, CreatedAt: r.CreatedAt, blobKey: r.BlobKey,
	}
}

// errSessionNotFound is the answer for a missing session and for another user's session alike.
func errSessionNotFound(cause error) error {
	return apperr.Wrap(apperr.NotFound, cause, "solo session not found")
}

// SessionCreate creates a session owned by userID.
func (s *Service) SessionCreate(ctx context.Context, userID, title string) (Session, error) {
	r, err := s.q.SoloSessionCreate(ctx, db.SoloSessionCreateParams{UserID: userID, Title: title})
	if err != nil {
		return Session{}, postgres.Interpret(err, "solo session")
	}
	return sessionFrom(r), nil
}

// SessionGet returns userID's session id; NotFound for a missing or foreign one.
func (s *Service) SessionGet(ctx context.Context, userID string, id uuid.UUID) (Session, error) {
	r, err := s.q.SoloSessionGetOwned(ctx, db.SoloSessionGetOwnedParams{ID: id, UserID: userID})
	if errors.Is(err, pgx.ErrNoRows) {
		return Session{}, errSessionNotFound(err)
	}
	if err != nil {
		return Session{}, fmt.Errorf("getting solo session: %w", err)
	}
	return sessionFrom(r), nil
}

// SessionList returns a page of userID's sessions, newest first, and the next page's cursor.
func (s *Service) SessionList(ctx context.Context, userID string, p page.Request) ([]Session, *string, error) {
	t, id := p.Bounds()
	rows, err := s.q.SoloSessionListOwned(ctx, db.SoloSessionListOwnedParams{
		UserID: userID, BeforeTime: t, BeforeID: id, FetchLimit: p.FetchLimit(),
	})
	if err != nil {
		return nil, nil, fmt.Errorf("listing solo sessions: %w", err)
	}
	rows, next := page.Next(p, rows, func(r db.SoloSession) page.Cursor { return page.Cursor{Time: r.CreatedAt, ID: r.ID} })
	out := make([]Session, len(rows))
	for i, r := range rows {
		out[i] = sessionFrom(r)
	}
	return out, next, nil
}

// SnapshotLatest returns the newest revision of userID's session; NotFound when the session
// is not the caller's or has no revision yet.
func (s *Service) SnapshotLatest(ctx context.Context, userID string, sessionID uuid.UUID) (Snapshot, error) {
	if _, err := s.SessionGet(ctx, userID, sessionID); err != nil {
		return Snapshot{}, err
	}
	r, err := s.q.SnapshotLatest(ctx, sessionID)
	if errors.Is(err, pgx.ErrNoRows) {
		return Snapshot{}, apperr.Wrap(apperr.NotFound, err, "the session has no snapshot yet")
	}
	if err != nil {
		return Snapshot{}, fmt.Errorf("getting latest snapshot: %w", err)
	}
	return snapshotFrom(r), nil
}

// SnapshotGet returns one revision of userID's session; NotFound when the session is not the
// caller's or the revision does not exist (or no longer does).
func (s *Service) SnapshotGet(ctx context.Context, userID string, sessionID uuid.UUID, revision int32) (Snapshot, error) {
	if _, err := s.SessionGet(ctx, userID, sessionID); err != nil {
		return Snapshot{}, err
	}
	r, err := s.q.SnapshotGetByRevision(ctx, db.SnapshotGetByRevisionParams{SessionID: sessionID, Revision: revision})
	if errors.Is(err, pgx.ErrNoRows) {
		return Snapshot{}, apperr.Wrap(apperr.NotFound, err, "no such snapshot revision")
	}
	if err != nil {
		return Snapshot{}, fmt.Errorf("getting snapshot: %w", err)
	}
	return snapshotFrom(r), nil
}

// SnapshotOpen opens a snapshot's bytes; NotFound when retention removed them meanwhile.
func (s *Service) SnapshotOpen(ctx context.Context, snap Snapshot) (io.ReadCloser, error) {
	rc, _, err := s.blobs.Get(ctx, snap.blobKey)
	if errors.Is(err, blob.ErrNotFound) {
		return nil, apperr.Wrap(apperr.NotFound, err, "no such snapshot revision")
	}
	if err != nil {
		return nil, fmt.Errorf("opening snapshot blob: %w", err)
	}
	return rc, nil
}

// SnapshotList returns a page of the revisions of userID's session, newest first.
func (s *Service) SnapshotList(ctx context.Context, userID string, sessionID uuid.UUID, p page.Request) ([]Snapshot, *string, error) {
	if _, err := s.SessionGet(ctx, userID, sessionID); err != nil {
		return nil, nil, err
	}
	rows, err := s.q.SnapshotListBySession(ctx, db.SnapshotListBySessionParams{
		SessionID: sessionID, BeforeRevision: revisionBound(p), FetchLimit: p.FetchLimit(),
	})
	if err != nil {
		return nil, nil, fmt.Errorf("listing snapshots: %w", err)
	}
	rows, next := page.Next(p, rows, revisionCursor)
	out := make([]Snapshot, len(rows))
	for i, r := range rows {
		out[i] = snapshotFrom(r)
	}
	return out, next, nil
}

// Revisions are paged by revision number rather than by time: the cursor's time field
// carries the last revision seen (as microseconds since the epoch), keeping the API's one
// opaque cursor format. The first page's bound is far above any revision.
func revisionBound(p page.Request) int64 {
	t, _ := p.Bounds()
	return t.UnixMicro()
}

func revisionCursor(r db.SoloSnapshot) page.Cursor {
	return page.Cursor{Time: time.UnixMicro(int64(r.Revision.Int32)).UTC(), ID: r.ID}
}
