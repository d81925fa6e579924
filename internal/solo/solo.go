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
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
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

	// DeletionGrace is how long a freed chunk's (or a retention-deleted whole blob's) bytes
	// stay in the blob store after its last revision is gone, so that a read which fetched
	// that revision's row just before completes (README: the deletion grace). 0:
	// DefaultDeletionGrace; negative: none (tests that check the blob store right after GC).
	DeletionGrace time.Duration
	// ReadMemory bounds the bytes snapshot reads hold in memory at once in this process
	// (SOLO_READ_MEMORY_BYTES, default DefaultReadMemory): a read waits up to 5 s for room,
	// then is answered 503 with Retry-After.
	ReadMemory int64
	// SweepMinAge is the youngest an unknown chunk blob may be for the orphan sweep to delete
	// it, whatever grace ReapPending is given: an upload still inside its finishTimeout may be
	// about to record it. 0: DefaultSweepMinAge; negative: none (tests).
	SweepMinAge time.Duration
}

// DefaultDeletionGrace must exceed readTimeout (the longest a read fetches a revision's
// chunks) with room to spare.
const DefaultDeletionGrace = 2 * time.Minute

// DefaultSweepMinAge is finishTimeout (the longest an upload's steps after its body run)
// plus a margin for clock skew between the blob store and this process.
const DefaultSweepMinAge = finishTimeout + 2*time.Minute

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
	reads    *readBudget
	events   *webhook.Publisher // solo.quota_exceeded (see SetEvents)
	codec    *chunkstore.Codec
	chunks   *chunkstore.Store
	// bodies holds upload body buffers (*bytes.Buffer) between uploads: reading a 1 MiB body
	// into a fresh slice allocated and copied it about three times over as it grew.
	bodies sync.Pool
	// sweepNext is the shard of chunks/ and of packs/ the next orphan sweep starts at
	// (sweepOrphanChunks).
	sweepNext [2]atomic.Int64
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
	if opts.ReadMemory <= 0 {
		opts.ReadMemory = DefaultReadMemory
	}
	opts.DeletionGrace = defaulted(opts.DeletionGrace, DefaultDeletionGrace)
	opts.SweepMinAge = defaulted(opts.SweepMinAge, DefaultSweepMinAge)
	codec, err := chunkstore.NewCodec(zstd.SpeedFastest)
	if err != nil {
		// The options are constants: an error here is a bug, not a condition to handle.
		panic(fmt.Sprintf("solo: creating the chunk codec: %v", err))
	}
	return &Service{pool: pool, q: db.New(pool), blobs: blobs, log: log, opts: opts,
		metrics: newGCMetrics(reg), inFlight: newInFlight(opts.UploadsInFlight),
		reads: newReadBudget(opts.ReadMemory),
		codec: codec, chunks: chunkstore.NewStore(blobs, codec)}
}

// defaulted is d, def when d is 0, and 0 when d is negative.
func defaulted(d, def time.Duration) time.Duration {
	switch {
	case d == 0:
		return def
	case d < 0:
		return 0
	}
	return d
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

// readTimeout bounds how long a read may take to fetch a revision's stored bytes. Reads
// fetch everything before answering (SnapshotOpen), so this is also the longest a read needs
// the blobs of a revision GC deleted just after the read got its row: DeletionGrace exceeds it.
const readTimeout = 30 * time.Second

// SnapshotOpen reads a snapshot's bytes, all of them, before the caller sends the first:
// a chunked revision's chunks are fetched and each checked against its hash, so an answer
// is either the whole revision or an error before any byte — never a 200 that ends short of
// its Content-Length. GC deletes blobs DeletionGrace after their rows, longer than any read
// takes (readTimeout), so a revision whose row the caller holds is readable; bytes missing or
// corrupt all the same are a storage fault, SnapshotDataLost (503, logged at error level and
// counted), not the 404 that would tell the client the revision does not exist. Memory: one
// revision (at most MaxSnapshotBytes) per read, as an upload holds its body.
func (s *Service) SnapshotOpen(ctx context.Context, snap Snapshot) (io.ReadCloser, error) {
	ctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	// A packed read holds the stored chunks and the decoded revision at once: twice the size
	// at worst (incompressible bytes).
	release, err := s.reads.acquire(ctx, snap.owner, 2*snap.SizeBytes)
	if err != nil {
		return nil, err
	}
	rc, err := s.snapshotRead(ctx, snap)
	if err != nil {
		release()
		return nil, err
	}
	return &budgetedBody{Reader: rc, release: release}, nil
}

// snapshotRead reads a revision's bytes into memory (see SnapshotOpen).
func (s *Service) snapshotRead(ctx context.Context, snap Snapshot) (io.Reader, error) {
	var body []byte
	var err error
	if snap.manifest != nil {
		var m chunkstore.Manifest
		if err = m.UnmarshalBinary(snap.manifest); err == nil {
			body, err = s.chunks.ReadAll(ctx, snap.owner, m, make([]byte, 0, snap.SizeBytes))
		}
	} else {
		body, err = s.readWholeBlob(ctx, snap)
	}
	if err == nil && int64(len(body)) != snap.SizeBytes {
		err = fmt.Errorf("%w: %d bytes, want %d", chunkstore.ErrCorrupt, len(body), snap.SizeBytes)
	}
	if err != nil {
		return nil, s.readFailed(ctx, snap, err)
	}
	return bytes.NewReader(body), nil
}

// readWholeBlob reads a revision stored before chunking.
func (s *Service) readWholeBlob(ctx context.Context, snap Snapshot) ([]byte, error) {
	rc, obj, err := s.blobs.Get(ctx, snap.blobKey)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	if obj.Size != snap.SizeBytes {
		return nil, fmt.Errorf("%w: blob of %d bytes, want %d", chunkstore.ErrCorrupt, obj.Size, snap.SizeBytes)
	}
	body := make([]byte, snap.SizeBytes)
	if _, err := io.ReadFull(rc, body); err != nil {
		return nil, fmt.Errorf("reading snapshot blob: %w", err)
	}
	return body, nil
}

// readFailed classifies a read's failure: stored bytes missing or corrupt are a storage
// fault (SnapshotDataLost, an error log and m4sh_solo_snapshot_data_lost_total); anything
// else (the blob store unreachable, the deadline) is Unavailable.
func (s *Service) readFailed(ctx context.Context, snap Snapshot, err error) error {
	if errors.Is(err, blob.ErrNotFound) || errors.Is(err, chunkstore.ErrCorrupt) {
		s.log.ErrorContext(ctx, "a snapshot revision's stored bytes are missing or corrupt", "user_id", snap.owner,
			"session_id", snap.SessionID, "revision", snap.Revision, "err", err)
		s.metrics.dataLost.Inc()
		return apperr.Wrap(apperr.SnapshotDataLost, err, "this revision's stored data is unavailable")
	}
	return apperr.Wrap(apperr.Unavailable, err, "snapshot storage is unavailable")
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
