package solo

// Retention (README: Snapshot retention): keep the newest N committed revisions of every session and give
// their bytes back. Pending uploads and orphan blobs are the reaper's (reap.go); retention
// never touches pending rows and never the newest revision.
//
// Crash safety comes from doing every change to rows, accounting and the blob-deletion queue
// in one transaction per batch (River is the outbox): a crash anywhere leaves either the old
// state or the new one, never a row without its blob or a blob nobody will delete.

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/m4sh/backend/gen/db"
	"github.com/m4sh/backend/internal/blob"
	"github.com/m4sh/backend/internal/chunkstore"
	"github.com/m4sh/backend/internal/postgres"
)

// CleanupSummary is the recorded output of a cleanup run (and what `m4sh gc snapshots` prints).
type CleanupSummary struct {
	Sessions         int   `json:"sessions"`
	RevisionsDeleted int   `json:"revisions_deleted"`
	BytesFreed       int64 `json:"bytes_freed"`
}

// TxInserter enqueues jobs inside a transaction.
type TxInserter interface {
	InsertManyTx(ctx context.Context, tx pgx.Tx, params []river.InsertManyParams) ([]*rivertype.JobInsertResult, error)
}

// Cleanup runs the retention pass (all sessions, or one), keeping keep revisions of each.
func (s *Service) Cleanup(ctx context.Context, jobs TxInserter, keep int, only *uuid.UUID) (CleanupSummary, error) {
	if only != nil {
		n, freed, err := s.cleanSessions(ctx, jobs, []uuid.UUID{*only}, keep)
		if err != nil {
			return CleanupSummary{}, err
		}
		return CleanupSummary{Sessions: 1, RevisionsDeleted: n, BytesFreed: freed}, nil
	}
	var sum CleanupSummary
	after := uuid.Nil
	for {
		ids, err := s.q.RetentionSessionsPage(ctx, db.RetentionSessionsPageParams{After: after, KeepLast: int32(keep), Lim: sessionsPerPage})
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
// are bounded by Options.GCBatch revisions, so a huge session is worked through in many short
// transactions and small ones share a transaction.
const sessionsPerPage = 200

// cleanSessions deletes a page of sessions' old revisions, a batch per transaction: rows,
// chunk references, the owners' used_bytes and the blob deletions commit together. Lock
// order (internal/chunkstore's doc): sessions, revision rows, chunk rows (ChunkRelease, in id
// order), then the owners' storage rows in user_id order.
func (s *Service) cleanSessions(ctx context.Context, jobs TxInserter, ids []uuid.UUID, keep int) (deleted int, freed int64, err error) {
	if len(ids) == 0 {
		return 0, 0, nil
	}
	for {
		var n int
		var more bool
		var batchFreed int64
		err := postgres.InTx(ctx, s.pool, func(tx pgx.Tx) error {
			q := s.q.WithTx(tx)
			n, batchFreed = 0, 0
			if _, err := q.RetentionLockSessions(ctx, ids); err != nil {
				return err
			}
			rows, err := q.RetentionDeleteOldest(ctx, db.RetentionDeleteOldestParams{
				SessionIds: ids, KeepLast: int32(keep), Lim: int32(s.opts.GCBatch), MaxRefs: gcMaxRefs})
			if err != nil || len(rows) == 0 {
				return err
			}
			n = len(rows)
			more = false
			byUser := map[string]int64{}
			var keys []string
			var refs []int64
			for _, r := range rows {
				if r.WholeBlob {
					byUser[r.UserID] += r.SizeBytes
					keys = append(keys, r.BlobKey)
				}
				refs = append(refs, r.ChunkIds...)
			}
			more = n == s.opts.GCBatch || len(refs) >= gcMaxRefs
			f, err := releaseChunks(ctx, q, refs)
			if err != nil {
				return err
			}
			for user, n := range f.bytes {
				byUser[user] += n
			}
			for _, t := range f.tombstones {
				keys = append(keys, t.key)
			}
			users := slices.Sorted(maps.Keys(byUser))
			if err := q.QuotaLockUsers(ctx, users); err != nil {
				return err
			}
			for _, user := range users {
				if byUser[user] == 0 {
					continue
				}
				if err := release(ctx, q, user, byUser[user]); err != nil {
					return err
				}
				batchFreed += byUser[user]
			}
			if len(keys) == 0 {
				return nil
			}
			_, err = jobs.InsertManyTx(ctx, tx, s.deleteJobs(keys))
			return err
		})
		if err != nil {
			return deleted, freed, fmt.Errorf("cleaning sessions: %w", err)
		}
		deleted += n
		freed += batchFreed
		s.metrics.revisionsDeleted.Add(float64(n))
		s.metrics.bytesFreed.Add(float64(batchFreed))
		if !more {
			return deleted, freed, nil
		}
	}
}

// gcMaxRefs bounds the chunk references one retention batch releases (besides
// Options.GCBatch revisions), so a batch of large revisions stays a short transaction.
const gcMaxRefs = 100_000

// deleteJobKeys bounds the keys of one solo.delete_blob job, so a job stays a small row and a
// short run (a retry redoes at most this many deletions).
const deleteJobKeys = 1000

// deleteJobs are the solo.delete_blob jobs deleting keys, at most deleteJobKeys each,
// scheduled DeletionGrace from now: a read that fetched one of the deleted revisions' rows
// just before still finds every blob (SnapshotOpen, readTimeout).
func (s *Service) deleteJobs(keys []string) []river.InsertManyParams {
	var opts *river.InsertOpts
	if s.opts.DeletionGrace > 0 {
		o := DeleteBlobArgs{}.InsertOpts()
		o.ScheduledAt = time.Now().Add(s.opts.DeletionGrace)
		opts = &o
	}
	var out []river.InsertManyParams
	for part := range slices.Chunk(keys, deleteJobKeys) {
		out = append(out, river.InsertManyParams{Args: DeleteBlobArgs{Keys: part}, InsertOpts: opts})
	}
	return out
}

// deleteBlobs deletes the blobs of rows retention (or a drop, or reconcile) freed, in one batch (the local store
// fsyncs each directory once for it); keys already gone count as deleted, so a retry after a
// partial run finishes the rest. The tombstones of freed chunks go after their blobs, so a
// crash in between leaves a tombstone the reaper finishes, never a blob nothing will delete.
func (s *Service) deleteBlobs(ctx context.Context, keys []string) error {
	if err := blob.DeleteAll(ctx, s.blobs, keys); err != nil {
		return fmt.Errorf("deleting blobs: %w", err)
	}
	var ids, packs []int64
	for _, k := range keys {
		if _, _, id, err := chunkstore.ParseKey(k); err == nil {
			ids = append(ids, id)
		} else if id, err := chunkstore.ParsePackKey(k); err == nil {
			packs = append(packs, id)
		}
	}
	if len(ids) > 0 {
		if _, err := s.q.ChunkDeleteTombstones(ctx, ids); err != nil {
			return fmt.Errorf("deleting chunk tombstones: %w", err)
		}
	}
	if len(packs) > 0 {
		if _, err := s.q.PackDeleteTombstones(ctx, packs); err != nil {
			return fmt.Errorf("deleting pack tombstones: %w", err)
		}
	}
	s.metrics.blobsDeleted.Add(float64(len(keys)))
	return nil
}
