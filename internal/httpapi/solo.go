package httpapi

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/m4sh/backend/gen/api"
	"github.com/m4sh/backend/internal/page"
	"github.com/m4sh/backend/internal/solo"
)

// SoloService is the solo workspace as the HTTP layer uses it (implemented by solo.Service).
type SoloService interface {
	SessionCreate(ctx context.Context, userID, title string) (solo.Session, error)
	SessionList(ctx context.Context, userID string, p page.Request) ([]solo.Session, *string, error)
	SessionGet(ctx context.Context, userID string, id uuid.UUID) (solo.Session, error)
	SnapshotCreate(ctx context.Context, up solo.Upload) (solo.CreateResult, error)
	SnapshotLatest(ctx context.Context, userID string, sessionID uuid.UUID) (solo.Snapshot, error)
	SnapshotGet(ctx context.Context, userID string, sessionID uuid.UUID, revision int32) (solo.Snapshot, error)
	SnapshotOpen(ctx context.Context, snap solo.Snapshot) (io.ReadCloser, error)
	SnapshotList(ctx context.Context, userID string, sessionID uuid.UUID, p page.Request) ([]solo.Snapshot, *string, error)
	StorageGet(ctx context.Context, userID string) (solo.Storage, error)
	SnapshotPin(ctx context.Context, userID string, sessionID uuid.UUID, revision int32, label *string) (solo.Snapshot, error)
	SnapshotUnpin(ctx context.Context, userID string, sessionID uuid.UUID, revision int32) (solo.Snapshot, error)
	SnapshotRestore(ctx context.Context, userID string, sessionID uuid.UUID, revision int32) (solo.CreateResult, error)
}

var _ SoloService = (*solo.Service)(nil)

// contentLengthKey carries the request's Content-Length (-1: unknown) to strict handlers,
// whose request objects do not include it.
type contentLengthKey struct{}

func withContentLength(f api.StrictHandlerFunc, operationID string) api.StrictHandlerFunc {
	return func(ctx context.Context, w http.ResponseWriter, r *http.Request, request any) (any, error) {
		resp, err := f(context.WithValue(ctx, contentLengthKey{}, r.ContentLength), w, r, request)
		if err != nil && operationID == "SoloSnapshotCreate" {
			// A refused upload may not have been read (refused from its Content-Length):
			// answer at once and close, rather than let net/http drain the body first.
			w.Header().Set("Connection", "close")
		}
		return resp, err
	}
}

func contentLength(ctx context.Context) int64 {
	if n, ok := ctx.Value(contentLengthKey{}).(int64); ok {
		return n
	}
	return -1
}

// SoloSessionCreate creates a session owned by the caller.
func (s *Server) SoloSessionCreate(ctx context.Context, req api.SoloSessionCreateRequestObject) (api.SoloSessionCreateResponseObject, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	var title string
	if req.Body != nil {
		if title, err = cleanTitle("body.title", req.Body.Title, false); err != nil {
			return nil, err
		}
	}
	sess, err := s.solo.SessionCreate(ctx, p.UserID, title)
	if err != nil {
		return nil, err
	}
	return api.SoloSessionCreate201JSONResponse(soloSessionOut(sess)), nil
}

// SoloSessionList lists the caller's sessions.
func (s *Server) SoloSessionList(ctx context.Context, req api.SoloSessionListRequestObject) (api.SoloSessionListResponseObject, error) {
	items, next, err := listPage(ctx, req.Params.Limit, req.Params.Cursor, s.solo.SessionList, soloSessionOut)
	if err != nil {
		return nil, err
	}
	return api.SoloSessionList200JSONResponse{Items: items, NextCursor: next}, nil
}

// SoloSessionGet returns one of the caller's sessions.
func (s *Server) SoloSessionGet(ctx context.Context, req api.SoloSessionGetRequestObject) (api.SoloSessionGetResponseObject, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	sess, err := s.solo.SessionGet(ctx, p.UserID, req.SessionId)
	if err != nil {
		return nil, err
	}
	return api.SoloSessionGet200JSONResponse(soloSessionOut(sess)), nil
}

// SoloSnapshotCreate stores the raw request body as the session's next revision.
func (s *Server) SoloSnapshotCreate(ctx context.Context, req api.SoloSnapshotCreateRequestObject) (api.SoloSnapshotCreateResponseObject, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	up := solo.Upload{
		UserID:        p.UserID,
		SessionID:     req.SessionId,
		ContentType:   req.ContentType,
		ContentLength: contentLength(ctx),
		Body:          req.Body,
	}
	if req.Params.IdempotencyKey != nil {
		up.IdempotencyKey = *req.Params.IdempotencyKey
	}
	res, err := s.solo.SnapshotCreate(ctx, up)
	if err != nil {
		return nil, err
	}
	out := snapshotCreatedOut(res)
	if res.Created {
		return api.SoloSnapshotCreate201JSONResponse(out), nil
	}
	return api.SoloSnapshotCreate200JSONResponse(out), nil
}

// SoloSnapshotLatest returns the newest revision's bytes (or 304).
func (s *Server) SoloSnapshotLatest(ctx context.Context, req api.SoloSnapshotLatestRequestObject) (api.SoloSnapshotLatestResponseObject, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	snap, err := s.solo.SnapshotLatest(ctx, p.UserID, req.SessionId)
	if err != nil {
		return nil, err
	}
	return s.snapshotBytes(ctx, snap, req.Params.IfNoneMatch)
}

// SoloSnapshotGet returns one revision's bytes (or 304).
func (s *Server) SoloSnapshotGet(ctx context.Context, req api.SoloSnapshotGetRequestObject) (api.SoloSnapshotGetResponseObject, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	snap, err := s.solo.SnapshotGet(ctx, p.UserID, req.SessionId, req.Revision)
	if err != nil {
		return nil, err
	}
	return s.snapshotBytes(ctx, snap, req.Params.IfNoneMatch)
}

// SoloSnapshotList lists a session's revisions, newest first.
func (s *Server) SoloSnapshotList(ctx context.Context, req api.SoloSnapshotListRequestObject) (api.SoloSnapshotListResponseObject, error) {
	items, next, err := listPage(ctx, req.Params.Limit, req.Params.Cursor, func(ctx context.Context, user string, pr page.Request) ([]solo.Snapshot, *string, error) {
		return s.solo.SnapshotList(ctx, user, req.SessionId, pr)
	}, snapshotDTO)
	if err != nil {
		return nil, err
	}
	return api.SoloSnapshotList200JSONResponse{Items: items, NextCursor: next}, nil
}

// SoloStorageGet returns the caller's storage usage.
func (s *Server) SoloStorageGet(ctx context.Context, _ api.SoloStorageGetRequestObject) (api.SoloStorageGetResponseObject, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	st, err := s.solo.StorageGet(ctx, p.UserID)
	if err != nil {
		return nil, err
	}
	return api.SoloStorageGet200JSONResponse(soloStorageOut(st)), nil
}

// snapshotResponse is a 200 with a revision's bytes or a 304; it answers both byte routes.
type snapshotResponse struct {
	snap        solo.Snapshot
	body        io.ReadCloser // nil: 304
	notModified bool
}

func (s *Server) snapshotBytes(ctx context.Context, snap solo.Snapshot, ifNoneMatch *string) (snapshotResponse, error) {
	if ifNoneMatch != nil && etagMatches(*ifNoneMatch, snap.ETag()) {
		return snapshotResponse{snap: snap, notModified: true}, nil
	}
	body, err := s.solo.SnapshotOpen(ctx, snap)
	if err != nil {
		return snapshotResponse{}, err
	}
	return snapshotResponse{snap: snap, body: body}, nil
}

func (r snapshotResponse) VisitSoloSnapshotLatestResponse(w http.ResponseWriter) error {
	return r.write(w)
}

func (r snapshotResponse) VisitSoloSnapshotGetResponse(w http.ResponseWriter) error {
	return r.write(w)
}

func (r snapshotResponse) write(w http.ResponseWriter) error {
	h := w.Header()
	h.Set("ETag", r.snap.ETag())
	h.Set("X-Snapshot-Revision", strconv.Itoa(int(r.snap.Revision)))
	// Revalidate every time (cheap with If-None-Match); the bytes are the user's own.
	h.Set("Cache-Control", "private, no-cache")
	if r.notModified {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	defer r.body.Close()
	// The bytes are served with the type their owner chose: never let a browser sniff or
	// run them as a page of this origin.
	h.Set("Content-Type", r.snap.ContentType)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	h.Set("Content-Length", strconv.FormatInt(r.snap.SizeBytes, 10))
	// A reader that stops reading must not hold the revision (and its share of the read
	// memory budget) for as long as it keeps the connection: the copy gets a deadline of
	// 30 s plus the time the bytes take at 64 KiB/s.
	// (Cleared afterwards: the connection may carry further requests.)
	rc := http.NewResponseController(w)
	if rc.SetWriteDeadline(time.Now().Add(snapshotWriteTime(r.snap.SizeBytes))) == nil {
		defer func() { _ = rc.SetWriteDeadline(time.Time{}) }()
	}
	w.WriteHeader(http.StatusOK)
	_, err := io.Copy(w, r.body)
	return err
}

// snapshotWriteTime is how long sending a snapshot of size bytes may take.
func snapshotWriteTime(size int64) time.Duration {
	return 30*time.Second + time.Duration(size>>16)*time.Second
}

// etagMatches implements If-None-Match's weak comparison (RFC 9110 §13.1.2): "*" or any
// listed tag, W/ prefix ignored.
func etagMatches(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == etag {
			return true
		}
	}
	return false
}

func soloSessionOut(s solo.Session) api.SoloSession {
	return api.SoloSession{Id: s.ID, Title: s.Title, CreatedAt: s.CreatedAt}
}

func soloStorageOut(s solo.Storage) api.SoloStorage {
	return api.SoloStorage{Used: s.Used, Quota: s.Quota, Remaining: s.Remaining()}
}

// snapshotDTO is a revision as the listing shows it.
func snapshotDTO(sn solo.Snapshot) api.Snapshot {
	return api.Snapshot{
		Id: sn.ID, Revision: sn.Revision, SizeBytes: sn.SizeBytes, StoredBytes: sn.StoredBytes, Sha256: sn.SHA256,
		ContentType: sn.ContentType, CreatedAt: sn.CreatedAt, Pinned: sn.Pinned,
		Label: optional(sn.Label, sn.Label != ""), RestoredFrom: optional(sn.RestoredFrom, sn.RestoredFrom > 0),
	}
}

// snapshotCreatedOut is the answer to an upload or a restore.
func snapshotCreatedOut(res solo.CreateResult) api.SnapshotCreated {
	sn := res.Snapshot
	return api.SnapshotCreated{
		Id: sn.ID, SessionId: sn.SessionID, Revision: sn.Revision, SizeBytes: sn.SizeBytes, StoredBytes: sn.StoredBytes,
		Sha256: sn.SHA256, ContentType: sn.ContentType, CreatedAt: sn.CreatedAt, Pinned: sn.Pinned,
		Label: optional(sn.Label, sn.Label != ""), RestoredFrom: optional(sn.RestoredFrom, sn.RestoredFrom > 0),
		Storage: soloStorageOut(res.Storage),
	}
}

func optional[T any](v T, ok bool) *T {
	if !ok {
		return nil
	}
	return &v
}

// SoloSnapshotPin pins a revision (with an optional label).
func (s *Server) SoloSnapshotPin(ctx context.Context, req api.SoloSnapshotPinRequestObject) (api.SoloSnapshotPinResponseObject, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	var label *string
	if req.Body != nil && req.Body.Label != nil {
		l, err := cleanTitle("body.label", req.Body.Label, true)
		if err != nil {
			return nil, err
		}
		label = &l
	}
	sn, err := s.solo.SnapshotPin(ctx, p.UserID, req.SessionId, req.Revision, label)
	if err != nil {
		return nil, err
	}
	return api.SoloSnapshotPin200JSONResponse(snapshotDTO(sn)), nil
}

// SoloSnapshotUnpin unpins a revision.
func (s *Server) SoloSnapshotUnpin(ctx context.Context, req api.SoloSnapshotUnpinRequestObject) (api.SoloSnapshotUnpinResponseObject, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	sn, err := s.solo.SnapshotUnpin(ctx, p.UserID, req.SessionId, req.Revision)
	if err != nil {
		return nil, err
	}
	return api.SoloSnapshotUnpin200JSONResponse(snapshotDTO(sn)), nil
}

// SoloSnapshotRestore makes a revision's content the newest revision.
func (s *Server) SoloSnapshotRestore(ctx context.Context, req api.SoloSnapshotRestoreRequestObject) (api.SoloSnapshotRestoreResponseObject, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	res, err := s.solo.SnapshotRestore(ctx, p.UserID, req.SessionId, req.Revision)
	if err != nil {
		return nil, err
	}
	if res.Created {
		return api.SoloSnapshotRestore201JSONResponse(snapshotCreatedOut(res)), nil
	}
	return api.SoloSnapshotRestore200JSONResponse(snapshotCreatedOut(res)), nil
}
