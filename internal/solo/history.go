package solo

// Revision history: pins (labels) that retention respects, and restores that make an older
// revision's content the newest again without storing anything (README: Snapshot storage
// that costs what changed).

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/m4sh/backend/gen/db"
	"github.com/m4sh/backend/internal/apperr"
	"github.com/m4sh/backend/internal/chunkstore"
	"github.com/m4sh/backend/internal/postgres"
)

// MaxPinned is how many revisions of one session may be pinned at once.
const MaxPinned = 50

func errNoRevision(cause error) error {
	return apperr.Wrap(apperr.NotFound, cause, "no such snapshot revision")
}

// lockSession locks userID's session in tx; NotFound when it is not theirs.
func lockSession(ctx context.Context, q *db.Queries, userID string, id uuid.UUID) (db.SoloSessionLockOwnedRow, error) {
	r, err := q.SoloSessionLockOwned(ctx, db.SoloSessionLockOwnedParams{ID: id, UserID: userID})
	if errors.Is(err, pgx.ErrNoRows) {
		return r, errSessionNotFound(err)
	}
	if err != nil {
		return r, fmt.Errorf("locking solo session: %w", err)
	}
	return r, nil
}

// SnapshotPin pins a revision of userID's session, setting (or, label nil, clearing) its
// label. NotFound for a missing revision; Conflict when MaxPinned others are pinned.
func (s *Service) SnapshotPin(ctx context.Context, userID string, sessionID uuid.UUID, revision int32, label *string) (Snapshot, error) {
	var out Snapshot
	err := postgres.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		q := s.q.WithTx(tx)
		if _, err := lockSession(ctx, q, userID, sessionID); err != nil {
			return err
		}
		p := db.SnapshotPinParams{SessionID: sessionID, Revision: revision}
		if label != nil {
			p.Label = pgtype.Text{String: *label, Valid: true}
		}
		r, err := q.SnapshotPin(ctx, p)
		if errors.Is(err, pgx.ErrNoRows) {
			if _, gerr := q.SnapshotGetByRevision(ctx, db.SnapshotGetByRevisionParams{SessionID: sessionID, Revision: revision}); errors.Is(gerr, pgx.ErrNoRows) {
				return errNoRevision(gerr)
			} else if gerr != nil {
				return fmt.Errorf("getting snapshot: %w", gerr)
			}
			return apperr.New(apperr.Conflict, "the session already has %d pinned revisions; unpin one first", MaxPinned)
		}
		if err != nil {
			return fmt.Errorf("pinning snapshot: %w", err)
		}
		out = snapshotFrom(r)
		return nil
	})
	return out, err
}

// SnapshotUnpin unpins a revision of userID's session (and drops its label); unpinning one
// that is not pinned changes nothing. NotFound for a missing revision.
func (s *Service) SnapshotUnpin(ctx context.Context, userID string, sessionID uuid.UUID, revision int32) (Snapshot, error) {
	var out Snapshot
	err := postgres.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		q := s.q.WithTx(tx)
		if _, err := lockSession(ctx, q, userID, sessionID); err != nil {
			return err
		}
		r, err := q.SnapshotUnpin(ctx, db.SnapshotUnpinParams{SessionID: sessionID, Revision: revision})
		if errors.Is(err, pgx.ErrNoRows) {
			return errNoRevision(err)
		}
		if err != nil {
			return fmt.Errorf("unpinning snapshot: %w", err)
		}
		out = snapshotFrom(r)
		return nil
	})
	return out, err
}

// errWholeBlob: the source of a restore was stored before chunking.
var errWholeBlob = errors.New("whole-blob source")

// SnapshotRestore makes a revision's content the session's newest revision: a new revision
// with the source's manifest and references, restored_from set, nothing stored or charged
// (one transaction: session, source row, its chunks in id order). Content identical to the
// newest revision creates nothing (Created false, the newest revision). A source stored
// before chunking is stored anew as chunks, like an upload. NotFound for a missing session
// or revision.
func (s *Service) SnapshotRestore(ctx context.Context, userID string, sessionID uuid.UUID, revision int32) (CreateResult, error) {
	var res CreateResult
	var src db.SoloSnapshot
	err := postgres.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		q := s.q.WithTx(tx)
		res = CreateResult{}
		if _, err := lockSession(ctx, q, userID, sessionID); err != nil {
			return err
		}
		var err error
		src, err = q.SnapshotSourceLock(ctx, db.SnapshotSourceLockParams{SessionID: sessionID, Revision: revision})
		if errors.Is(err, pgx.ErrNoRows) {
			return errNoRevision(err)
		}
		if err != nil {
			return fmt.Errorf("locking snapshot: %w", err)
		}
		next, err := q.SessionRevisionNext(ctx, db.SessionRevisionNextParams{ID: sessionID, Sha256: src.Sha256})
		if errors.Is(err, pgx.ErrNoRows) {
			newest, err := q.SnapshotLatest(ctx, sessionID)
			if err != nil {
				return fmt.Errorf("getting latest snapshot: %w", err)
			}
			res.Snapshot = snapshotFrom(newest)
			return nil
		}
		if err != nil {
			return fmt.Errorf("numbering revision: %w", err)
		}
		if src.Manifest == nil {
			return errWholeBlob // rolls the numbering back
		}
		n, err := q.ChunkReferenceByID(ctx, src.ChunkIds)
		if err != nil {
			return fmt.Errorf("referencing chunks: %w", err)
		}
		if n != int64(len(src.ChunkIds)) {
			return fmt.Errorf("revision %d of session %s refers to %d chunks, %d of them live: corrupt", revision, sessionID, len(src.ChunkIds), n)
		}
		id, err := uuid.NewV7()
		if err != nil {
			return err
		}
		r, err := q.SnapshotRestoreInsert(ctx, db.SnapshotRestoreInsertParams{ID: id, Revision: next, BlobKey: BlobKey(sessionID, id), SourceID: src.ID})
		if err != nil {
			return fmt.Errorf("inserting restored revision: %w", err)
		}
		res.Snapshot, res.Created = snapshotFrom(r), true
		return nil
	})
	if errors.Is(err, errWholeBlob) {
		return s.restoreWholeBlob(ctx, userID, snapshotFrom(src))
	}
	if err != nil {
		return CreateResult{}, err
	}
	res.Storage, err = s.StorageGet(ctx, userID)
	return res, err
}

// restoreWholeBlob restores a revision stored before chunking by storing its bytes as chunks
// through the upload's steps (they share whatever chunks the owner already has). Like an
// upload it takes one of the owner's in-flight slots, checks the bytes against the revision's
// SHA-256 before storing anything (a corrupt blob is SnapshotDataLost, not a new revision),
// and runs its steps detached from the request: once bytes are reserved it completes or is
// undone even if the client goes away.
func (s *Service) restoreWholeBlob(ctx context.Context, userID string, src Snapshot) (CreateResult, error) {
	release, err := s.inFlight.acquire(userID)
	if err != nil {
		return CreateResult{}, err
	}
	defer release()
	readCtx, cancel := context.WithTimeout(ctx, readTimeout)
	body, err := s.readWholeBlob(readCtx, src)
	cancel()
	if err == nil {
		if sum := sha256.Sum256(body); hex.EncodeToString(sum[:]) != src.SHA256 {
			err = fmt.Errorf("%w: revision %d's blob does not match its SHA-256", chunkstore.ErrCorrupt, src.Revision)
		}
	}
	if err != nil {
		return CreateResult{}, s.readFailed(ctx, src, err)
	}
	u, err := s.split(body)
	if err != nil {
		return CreateResult{}, err
	}
	if u.id, err = uuid.NewV7(); err != nil {
		return CreateResult{}, err
	}
	u.user, u.session, u.restoredFrom = userID, src.SessionID, src.Revision
	ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
	defer cancel()
	return s.storeChunked(ctx, Upload{UserID: userID, SessionID: src.SessionID}, u, src.ContentType)
}
