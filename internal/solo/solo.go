// Package solo is the solo workspace (README: Snapshot and quota decisions): sessions owned by one user and the
// whole lifecycle of their snapshot revisions — chunked upload (upload.go, chunked.go), reads,
// pins and restores (history.go), the per-user quota (quota.go), the reaper of abandoned
// uploads and leftover blobs (reap.go), retention (retention.go), usage and reference count
// reconciliation (reconcile.go) and the River jobs that run them (jobs.go). Nothing else in
// the service writes solo_snapshots, snapshot_uploads, snapshot_chunks or solo_user_storage.
//
// A revision is stored as content-defined chunks of its owner's storage (internal/chunkstore,
// whose package doc lays out every transaction, the lock order and the race with GC; this
// package follows it). Quota invariant (migration 0006): solo_user_storage.used_bytes of a
// user equals the stored size of the user's live chunks, plus the reservations of their
// uploads in flight, plus the sizes of whole-blob revisions stored before chunking; each
// chunk's refcount equals the revisions and uploads that refer to it; and no upload takes
// used_bytes past quota_bytes. Bytes move only in the transactions that add or remove those
// rows: SnapshotUploadReserve and SnapshotUploadSettle (an upload), QuotaRelease (a dropped
// upload, retention), QuotaRepair (reconciliation, which only ever restores the invariant).
//
// Lock order, in every transaction: solo_sessions rows (in id order), then snapshot_uploads /
// solo_snapshots rows, then snapshot_chunks rows in ascending id, then solo_user_storage rows
// (in user_id order). PostgreSQL's own deadlock and serialization aborts are still retried
// (postgres.InTx, postgres.Retry).
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
	"github.com/klauspost/compress/zstd"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/m4sh/backend/gen/db"
	"github.com/m4sh/backend/internal/apperr"
	"github.com/m4sh/backend/internal/blob"
	"github.com/m4sh/backend/internal/chunkstore"
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
	StepReserve   Step = "reserve"    // upload recorded, known chunks referenced, bytes for new ones reserved
	StepBlobWrite Step = "blob_write" // new chunks' blobs written
	StepCommit    Step = "commit"     // new chunks recorded, revision committed
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
	codec    *chunkstore.Codec
	chunks   *chunkstore.Store
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
	codec, err := chunkstore.NewCodec(zstd.SpeedFastest)
	if err != nil {
		// The options are constants: an error here is a bug, not a condition to handle.
		panic(fmt.Sprintf("solo: creating the chunk codec: %v", err))
	}
	return &Service{pool: pool, q: db.New(pool), blobs: blobs, log: log, opts: opts,
		metrics: newGCMetrics(reg), inFlight: newInFlight(opts.UploadsInFlight),
		codec: codec, chunks: chunkstore.NewStore(blobs, codec)}
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
	SizeBytes   int64  // logical size
	StoredBytes int64  // what the revision added to its owner's storage when it was created
	SHA256      string // lowercase hex
	ContentType string
	CreatedAt   time.Time
	Pinned      bool
	Label       string // "" when none
	// RestoredFrom is the revision this one restored (0: made by an upload).
	RestoredFrom int32

	owner    string
	blobKey  string // a whole-blob revision from before chunking (manifest nil)
	manifest []byte
}

// ETag is the snapshot's strong entity tag: its quoted SHA-256.
func (s Snapshot) ETag() string { return `"` + s.SHA256 + `"` }

func sessionFrom(r db.SoloSession) Session {
	return Session{ID: r.ID, UserID: r.UserID, Title: r.Title, CreatedAt: r.CreatedAt}
}

func snapshotFrom(r db.SoloSnapshot) Snapshot {
	stored := r.SizeBytes // a whole-blob revision added its size
	if r.StoredBytes.Valid {
		stored = r.StoredBytes.Int64
	}
	return Snapshot{
		ID: r.ID, SessionID: r.SessionID, Revision: r.Revision.Int32, SizeBytes: r.SizeBytes, StoredBytes: stored,
		SHA256: r.Sha256, ContentType: r.ContentType, CreatedAt: r.CreatedAt,
		Pinned: r.Pinned, Label: r.Label.String, RestoredFrom: r.RestoredFrom.Int32,
		owner: r.UserID, blobKey: r.BlobKey, manifest: r.Manifest,
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
// A chunked revision streams its chunks in order, each checked against its hash; its first
// chunk is fetched here, so that a revision GC removed since its row was read is a 404
// rather than a broken 200.
func (s *Service) SnapshotOpen(ctx context.Context, snap Snapshot) (io.ReadCloser, error) {
	if snap.manifest != nil {
		var m chunkstore.Manifest
		if err := m.UnmarshalBinary(snap.manifest); err != nil {
			return nil, fmt.Errorf("decoding manifest of revision %d: %w", snap.Revision, err)
		}
		r := s.chunks.Open(ctx, snap.owner, m)
		if _, err := r.Read(nil); err != nil && !errors.Is(err, io.EOF) {
			if errors.Is(err, blob.ErrNotFound) {
				return nil, apperr.Wrap(apperr.NotFound, err, "no such snapshot revision")
			}
			return nil, fmt.Errorf("opening snapshot chunks: %w", err)
		}
		return io.NopCloser(r), nil
	}
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
