package solo

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/m4sh/backend/gen/db"
	"github.com/m4sh/backend/internal/apperr"
	"github.com/m4sh/backend/internal/postgres"
)

// DefaultContentType is stored for uploads sent without a Content-Type.
const DefaultContentType = "application/octet-stream"

// Upload is one snapshot upload.
type Upload struct {
	UserID         string
	SessionID      uuid.UUID
	ContentType    string
	ContentLength  int64 // -1 when unknown (chunked)
	Body           io.Reader
	IdempotencyKey string // "" when none
}

// CreateResult is the answer to an upload.
type CreateResult struct {
	Snapshot Snapshot
	Storage  Storage
	// Created is false when nothing was stored: an Idempotency-Key replay, or a body
	// identical to the newest revision.
	Created bool
}

// finishTimeout bounds the steps after an upload's body is read. They run detached from the
// request: once bytes are reserved, the upload completes (or is undone) even if the client
// goes away.
const finishTimeout = 30 * time.Second

// SnapshotCreate stores a new revision of a session from an upload, as content-defined
// chunks (chunked.go; the transactions are internal/chunkstore's package doc). In order:
//
//  0. the caller may have at most Options.UploadsInFlight uploads in flight (TooManyUploads);
//  1. the session must be the caller's (NotFound otherwise); Content-Length, when sent, is
//     checked against the size limit (TooLarge); an upload is refused before its body only
//     when nothing of the quota remains (QuotaExceeded);
//  2. the body is read up to the size limit, never further (empty: Invalid; over: TooLarge),
//     hashed and split into chunks;
//  3. an Idempotency-Key seen before answers with its revision (Conflict while its upload is
//     in flight or when the body differs); a body identical to the newest revision answers
//     with that revision — neither creates nor charges anything;
//  4. reserve: one transaction records the upload in flight (claiming its Idempotency-Key),
//     references the chunks the owner already has and reserves the stored size of the rest,
//     compressing only those (QuotaExceeded when they do not fit: nothing is stored);
//  5. the new chunks' blobs are written under fresh keys;
//  6. commit: one transaction records them as chunk rows, gives back the unused
//     reservation and makes the upload the session's next revision.
//
// A crash between steps leaves an upload in flight that ReapPending rolls back.
func (s *Service) SnapshotCreate(ctx context.Context, up Upload) (_ CreateResult, err error) {
	defer func() { s.reportQuotaExceeded(ctx, up, err) }() // after release: publishing holds no slot
	release, err := s.inFlight.acquire(up.UserID)
	if err != nil {
		return CreateResult{}, err
	}
	defer release()
	ct, err := contentType(up.ContentType)
	if err != nil {
		return CreateResult{}, err
	}
	state, err := s.q.SoloSessionUploadState(ctx, db.SoloSessionUploadStateParams{
		ID: up.SessionID, UserID: up.UserID, DefaultQuota: s.opts.DefaultQuota,
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return CreateResult{}, errSessionNotFound(err)
	}
	if err != nil {
		return CreateResult{}, fmt.Errorf("checking upload: %w", err)
	}
	storage := Storage{Used: state.UsedBytes, Quota: state.QuotaBytes}
	switch {
	case up.ContentLength == 0:
		return CreateResult{}, errEmpty()
	case up.ContentLength > s.opts.MaxSnapshotBytes:
		return CreateResult{}, s.errTooLarge()
	case storage.Remaining() == 0:
		// What an upload adds is known only after chunking (it may add nothing at all), so
		// only an exhausted quota refuses it unread.
		return CreateResult{}, errQuota(storage, max(up.ContentLength, 1))
	}
	buf := s.bodyBuffer()
	defer s.bodies.Put(buf) // after the upload is done with the chunks, which alias it
	body, err := s.readBody(up, buf)
	if err != nil {
		return CreateResult{}, err
	}
	u, err := s.split(body)
	if err != nil {
		return CreateResult{}, err
	}
	digest := hex.EncodeToString(u.sum.SHA256[:])

	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
	defer cancel()
	if up.IdempotencyKey != "" {
		if res, ok, err := s.replay(ctx, up, digest); ok || err != nil {
			return res, err
		}
	}
	if digest == state.NewestSha256 {
		if res, ok, err := s.dedupe(ctx, up, digest); ok || err != nil {
			return res, err
		}
	}
	if u.id, err = uuid.NewV7(); err != nil {
		return CreateResult{}, err
	}
	u.user, u.session = up.UserID, up.SessionID
	return s.storeChunked(ctx, up, u, ct)
}

// storeChunked runs steps 4 to 6 of SnapshotCreate.
func (s *Service) storeChunked(ctx context.Context, up Upload, u *chunkUpload, ct string) (CreateResult, error) {
	// fail drops the upload now rather than after the reaper's grace period (nothing to do
	// when its row was never committed); written are blobs that certainly became no row.
	fail := func(err error, written []string) (CreateResult, error) {
		if errors.Is(err, errUploadGone) {
			return CreateResult{}, apperr.Wrap(apperr.Unavailable, err, "the upload was abandoned; retry it")
		}
		if derr := s.drop(ctx, u, written); derr != nil {
			s.log.WarnContext(ctx, "dropping a failed upload; the reaper will", "upload_id", u.id, "err", derr)
		}
		return CreateResult{}, err
	}
	if err := s.uploadReserve(ctx, u, up.IdempotencyKey); errors.Is(err, errKeyTaken) {
		return CreateResult{}, errKeyInFlight()
	} else if err != nil {
		return fail(err, nil)
	}
	if err := s.step(ctx, StepReserve); err != nil {
		return CreateResult{}, err
	}
	if len(u.fresh) > 0 {
		if err := s.uploadWrite(ctx, u); err != nil {
			return fail(apperr.Wrap(apperr.Unavailable, err, "snapshot storage is unavailable"), u.writtenKeys())
		}
	}
	if err := s.step(ctx, StepBlobWrite); err != nil {
		return CreateResult{}, err
	}
	res, err := s.uploadCommit(ctx, u, ct, up.IdempotencyKey)
	if errors.Is(err, errKeyTaken) {
		// A concurrent upload with the same key committed first: answer as a replay does.
		if derr := s.drop(ctx, u, u.writtenKeys()); derr != nil {
			s.log.WarnContext(ctx, "dropping an upload whose key was taken; the reaper will", "upload_id", u.id, "err", derr)
		}
		res, ok, err := s.replay(ctx, up, hex.EncodeToString(u.sum.SHA256[:]))
		if !ok && err == nil {
			err = errors.New("idempotency key taken but not found")
		}
		return res, err
	}
	if err != nil {
		// Whether it committed is unknown: blobs left without a row go to the orphan sweep.
		return fail(err, nil)
	}
	s.finishTombstones(ctx, res.freed)
	s.deleteUnneeded(ctx, res.unneeded)
	if err := s.step(ctx, StepCommit); err != nil {
		return CreateResult{}, err
	}
	if res.dup {
		st, err := s.StorageGet(ctx, up.UserID)
		return CreateResult{Snapshot: res.snap, Storage: st}, err
	}
	return CreateResult{Snapshot: res.snap, Storage: res.storage, Created: true}, nil
}

// errKeyInFlight: another upload of the session holds the Idempotency-Key.
func errKeyInFlight() error {
	return &apperr.Error{
		Kind:       apperr.Conflict,
		Message:    "an upload with this Idempotency-Key is still in progress",
		RetryAfter: time.Second,
	}
}

func (s *Service) step(ctx context.Context, st Step) error {
	if s.opts.AfterStep == nil {
		return nil
	}
	return s.opts.AfterStep(ctx, st)
}

// contentType validates the upload's media type; the string is stored as sent.
func contentType(ct string) (string, error) {
	if ct == "" {
		return DefaultContentType, nil
	}
	if _, _, err := mime.ParseMediaType(ct); err != nil || len(ct) > 255 {
		return "", apperr.Validation("invalid Content-Type",
			apperr.FieldError{Field: "header.Content-Type", Message: "must be a media type of at most 255 characters"})
	}
	return ct, nil
}

func errEmpty() error {
	return apperr.Validation("the snapshot body is empty", apperr.FieldError{Field: "body", Message: "must not be empty"})
}

func (s *Service) errTooLarge() error {
	return apperr.New(apperr.TooLarge, "the snapshot exceeds %d bytes", s.opts.MaxSnapshotBytes)
}

// errQuota is the quota_exceeded problem, with the numbers a client needs at the top level.
func errQuota(st Storage, need int64) error {
	return &apperr.Error{
		Kind:    apperr.QuotaExceeded,
		Message: fmt.Sprintf("the snapshot needs %d bytes but %d of the %d byte quota remain", need, st.Remaining(), st.Quota),
		Extra:   map[string]any{"used": st.Used, "quota": st.Quota, "remaining": st.Remaining()},
	}
}

// bodyBuffer is an empty buffer for an upload's body, reused from an earlier upload when
// one is free.
func (s *Service) bodyBuffer() *bytes.Buffer {
	if b, ok := s.bodies.Get().(*bytes.Buffer); ok {
		b.Reset()
		return b
	}
	return new(bytes.Buffer)
}

// readBody reads the whole body into buf but never more than one byte past the limit.
// Memory grows with the bytes that actually arrive: nothing is sized from the declared
// Content-Length, which a slow or lying client controls (a reused buffer keeps what an
// earlier body grew it to, at most the limit and a read's worth more). An error the reader
// already classified (a body past its deadline is request_timeout) is kept as it is.
func (s *Service) readBody(up Upload, buf *bytes.Buffer) ([]byte, error) {
	limit := s.opts.MaxSnapshotBytes
	_, err := buf.ReadFrom(io.LimitReader(up.Body, limit+1))
	body := buf.Bytes()
	switch {
	case err != nil:
		if _, ok := apperr.As(err); ok {
			return nil, err
		}
		return nil, apperr.Wrap(apperr.Invalid, err, "the request body could not be read")
	case len(body) == 0:
		return nil, errEmpty()
	case int64(len(body)) > limit:
		return nil, s.errTooLarge()
	}
	return body, nil
}

// replay answers an upload whose Idempotency-Key was seen before; ok is false when it was not.
func (s *Service) replay(ctx context.Context, up Upload, digest string) (CreateResult, bool, error) {
	r, err := s.q.SnapshotIdempotencyKeyGet(ctx, db.SnapshotIdempotencyKeyGetParams{SessionID: up.SessionID, IdempotencyKey: up.IdempotencyKey})
	if errors.Is(err, pgx.ErrNoRows) {
		return CreateResult{}, false, nil
	}
	if err != nil {
		return CreateResult{}, false, fmt.Errorf("looking up idempotency key: %w", err)
	}
	if r.Status != "committed" {
		return CreateResult{}, false, &apperr.Error{
			Kind:       apperr.Conflict,
			Message:    "an upload with this Idempotency-Key is still in progress",
			RetryAfter: time.Second,
		}
	}
	if r.Sha256 != digest {
		return CreateResult{}, false, apperr.New(apperr.Conflict, "this Idempotency-Key was used for a different body")
	}
	st, err := s.StorageGet(ctx, up.UserID)
	return CreateResult{Snapshot: snapshotFrom(r), Storage: st}, true, err
}

// dedupe answers an upload identical to the session's newest revision with that revision,
// recording its Idempotency-Key; ok is false when the newest revision changed meanwhile.
func (s *Service) dedupe(ctx context.Context, up Upload, digest string) (CreateResult, bool, error) {
	newest, err := s.q.SnapshotLatest(ctx, up.SessionID)
	if errors.Is(err, pgx.ErrNoRows) {
		return CreateResult{}, false, nil
	}
	if err != nil {
		return CreateResult{}, false, fmt.Errorf("getting latest snapshot: %w", err)
	}
	if newest.Sha256 != digest {
		return CreateResult{}, false, nil
	}
	if up.IdempotencyKey != "" {
		n, err := s.q.SnapshotIdempotencyKeyInsert(ctx, db.SnapshotIdempotencyKeyInsertParams{
			SessionID: up.SessionID, IdempotencyKey: up.IdempotencyKey, SnapshotID: newest.ID,
		})
		if err != nil {
			return CreateResult{}, false, fmt.Errorf("recording idempotency key: %w", err)
		}
		if n == 0 {
			return s.replay(ctx, up, digest)
		}
	}
	st, err := s.StorageGet(ctx, up.UserID)
	return CreateResult{Snapshot: snapshotFrom(newest), Storage: st}, true, err
}

var errKeyTaken = errors.New("idempotency key taken")

// BlobKey is where a snapshot's bytes live: fresh per upload, so a key is never reused.
func BlobKey(sessionID, snapshotID uuid.UUID) string {
	return "solo/" + sessionID.String() + "/" + snapshotID.String()
}

// commit gives a pending row the session's next revision (see SnapshotCommit). When the
// newest revision turns out to have the same bytes (an identical upload committed first), the
// pending row is rolled back instead and dup is that revision.
func (s *Service) commit(ctx context.Context, pending db.SoloSnapshot) (snap Snapshot, dup *Snapshot, err error) {
	for attempt := 0; ; attempt++ {
		snap, dup, retry, err := s.commitOnce(ctx, pending)
		if !retry {
			return snap, dup, err
		}
		if attempt >= 3 {
			if err := s.rollback(ctx, pending, nil); err != nil {
				return Snapshot{}, nil, err
			}
			return Snapshot{}, nil, apperr.New(apperr.Unavailable, "the session changed too fast to save this snapshot; retry it")
		}
	}
}

// commitOnce is one attempt of commit; retry reports that the row is still pending after
// losing to an identical newest revision that was superseded before it could be read.
func (s *Service) commitOnce(ctx context.Context, pending db.SoloSnapshot) (snap Snapshot, dup *Snapshot, retry bool, err error) {
	var committed db.SoloSnapshot
	err = postgres.Retry(ctx, func() (err error) {
		committed, err = s.q.SnapshotCommit(ctx, db.SnapshotCommitParams{ID: pending.ID, SessionID: pending.SessionID, Sha256: pending.Sha256})
		return err
	})
	if err == nil {
		return snapshotFrom(committed), nil, false, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return Snapshot{}, nil, false, fmt.Errorf("committing revision: %w", err)
	}
	// Not committed: identical to the newest revision, or no longer pending.
	if newest, lerr := s.q.SnapshotLatest(ctx, pending.SessionID); lerr == nil && newest.Sha256 == pending.Sha256 && newest.ID != pending.ID {
		if err := s.rollback(ctx, pending, &newest.ID); err != nil {
			return Snapshot{}, nil, false, err
		}
		d := snapshotFrom(newest)
		return Snapshot{}, &d, false, nil
	}
	// The reaper got to this upload first: it committed it, or rolled it back.
	r, gerr := s.q.SnapshotGetByID(ctx, pending.ID)
	switch {
	case gerr == nil && r.Status == "committed":
		return snapshotFrom(r), nil, false, nil
	case gerr == nil:
		return Snapshot{}, nil, true, nil
	case errors.Is(gerr, pgx.ErrNoRows):
		return Snapshot{}, nil, false, apperr.Wrap(apperr.Unavailable, err, "the upload was abandoned; retry it")
	default:
		return Snapshot{}, nil, false, fmt.Errorf("checking an uncommitted upload: %w", gerr)
	}
}

// rollback undoes a whole-blob upload left pending by the code before chunking: deletes its row and releases its bytes in one
// transaction, then deletes its blob. The row goes first so that a committed revision never
// loses its blob; a crash before the blob is deleted leaves a blob without a row, which the
// reaper's sweep removes. keysTo, when set, receives the upload's idempotency keys.
func (s *Service) rollback(ctx context.Context, pending db.SoloSnapshot, keysTo *uuid.UUID) error {
	deleted := false
	err := postgres.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		deleted = false
		q := s.q.WithTx(tx)
		if keysTo != nil {
			if err := q.SnapshotIdempotencyKeyRepoint(ctx, db.SnapshotIdempotencyKeyRepointParams{
				FromSnapshotID: pending.ID, ToSnapshotID: *keysTo,
			}); err != nil {
				return fmt.Errorf("moving idempotency keys: %w", err)
			}
		}
		r, err := q.SnapshotDeletePending(ctx, pending.ID)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil // committed or rolled back by someone else
		}
		if err != nil {
			return fmt.Errorf("deleting pending snapshot: %w", err)
		}
		if err := release(ctx, q, r.UserID, r.SizeBytes); err != nil {
			return err
		}
		deleted = true
		return nil
	})
	if err != nil || !deleted {
		return err
	}
	if err := s.blobs.Delete(ctx, pending.BlobKey); err != nil {
		return fmt.Errorf("deleting blob of a rolled-back upload: %w", err)
	}
	return nil
}
