package solo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/m4sh/backend/gen/db"
	"github.com/m4sh/backend/internal/blob"
	"github.com/m4sh/backend/internal/chunkstore"
	"github.com/m4sh/backend/internal/postgres"
)

// ReapSummary reports what ReapPending did.
type ReapSummary struct {
	Finished     int `json:"finished"`      // whole-blob pending uploads whose blob was complete, committed
	RolledBack   int `json:"rolled_back"`   // uploads undone, their bytes and references released
	OrphanBlobs  int `json:"orphan_blobs"`  // blobs without a row, deleted
	Tombstones   int `json:"tombstones"`    // freed chunks whose deletion was left unfinished, finished
	Leftovers    int `json:"leftovers"`     // partial writes (temporary files, multipart uploads), removed
	FailedUpkeep int `json:"failed_upkeep"` // items left for the next run after an error
}

// reapBatch bounds the rows and blob keys handled per query.
const reapBatch = 100

// ReapPending finishes or rolls back uploads pending for longer than grace (the Service's
// PendingGrace when grace is negative) — left behind by a crash or a lost connection — and
// deletes blobs older than grace that belong to no row, and what writes that crashed left in
// the blob store (blob.LeftoverSweeper) before grace. An upload whose blob is complete
// (size and SHA-256 match) is committed as the session's next revision; any other is rolled
// back. It is safe to run concurrently with uploads and with itself: every change is
// conditional on the row still being pending.
func (s *Service) ReapPending(ctx context.Context, grace time.Duration) (ReapSummary, error) {
	if grace < 0 {
		grace = s.opts.PendingGrace
	}
	var sum ReapSummary
	seen := map[string]bool{}
	for {
		rows, err := s.q.SnapshotListPendingBefore(ctx, db.SnapshotListPendingBeforeParams{
			GraceSeconds: grace.Seconds(), FetchLimit: reapBatch,
		})
		if err != nil {
			return sum, fmt.Errorf("listing pending uploads: %w", err)
		}
		progress := false
		for _, r := range rows {
			if seen[r.ID.String()] {
				continue
			}
			seen[r.ID.String()] = true
			progress = true
			if err := s.reapOne(ctx, r, &sum); err != nil {
				sum.FailedUpkeep++
				s.log.WarnContext(ctx, "reaping a pending upload failed; retried next run", "snapshot_id", r.ID, "err", err)
			}
		}
		if len(rows) < reapBatch || !progress {
			break
		}
	}
	if err := s.reapUploads(ctx, grace, &sum); err != nil {
		return sum, err
	}
	// Freed chunks stay readable for DeletionGrace, whatever grace this pass was given.
	if err := s.reapTombstones(ctx, max(grace, s.opts.DeletionGrace), &sum); err != nil {
		return sum, err
	}
	cutoff := time.Now().Add(-grace)
	if err := s.sweepOrphanBlobs(ctx, cutoff, &sum); err != nil {
		return sum, err
	}
	// An unknown chunk blob younger than SweepMinAge may belong to an upload still within its
	// finishTimeout, about to record it: never swept, whatever grace this pass was given.
	chunkCutoff := time.Now().Add(-max(grace, s.opts.SweepMinAge))
	if err := s.sweepOrphanChunks(ctx, chunkCutoff, &sum); err != nil {
		return sum, err
	}
	if sw, ok := s.blobs.(blob.LeftoverSweeper); ok {
		for prefix, before := range map[string]time.Time{"solo/": cutoff, chunkstore.KeyPrefix: chunkCutoff, chunkstore.PackPrefix: chunkCutoff} {
			n, err := sw.SweepLeftovers(ctx, prefix, before)
			sum.Leftovers += n
			if err != nil {
				return sum, err
			}
		}
	}
	return sum, nil
}

// reapUploads drops chunked uploads in flight for longer than grace: each transaction
// releases an upload's reservation and references exactly (see dropUpload), and the chunks
// only it held are deleted.
func (s *Service) reapUploads(ctx context.Context, grace time.Duration, sum *ReapSummary) error {
	seen := map[uuid.UUID]bool{}
	for {
		ids, err := s.q.SnapshotUploadsAbandoned(ctx, db.SnapshotUploadsAbandonedParams{GraceSeconds: grace.Seconds(), FetchLimit: reapBatch})
		if err != nil {
			return fmt.Errorf("listing abandoned uploads: %w", err)
		}
		progress := false
		for _, id := range ids {
			if seen[id] {
				continue
			}
			seen[id], progress = true, true
			var freed []tombstone
			var own []string
			err := postgres.InTx(ctx, s.pool, func(tx pgx.Tx) (err error) {
				freed, own, err = dropUpload(ctx, s.q.WithTx(tx), id)
				return err
			})
			if errors.Is(err, errNothingToDrop) {
				continue // committed or dropped meanwhile
			}
			if err != nil {
				sum.FailedUpkeep++
				s.log.WarnContext(ctx, "dropping an abandoned upload failed; retried next run", "upload_id", id, "err", err)
				continue
			}
			sum.RolledBack++
			s.finishTombstones(ctx, freed)
			s.deleteUnneeded(ctx, own) // the upload's own pack: never referenced
		}
		if len(ids) < reapBatch || !progress {
			return nil
		}
	}
}

// reapTombstones finishes the deletion of chunks freed longer than grace ago whose blob
// deletion did not complete (the process died after freeing them, or a deletion job was lost).
func (s *Service) reapTombstones(ctx context.Context, grace time.Duration, sum *ReapSummary) error {
	for {
		rows, err := s.q.ChunkTombstonesBefore(ctx, db.ChunkTombstonesBeforeParams{GraceSeconds: grace.Seconds(), FetchLimit: reapBatch})
		if err != nil {
			return fmt.Errorf("listing chunk tombstones: %w", err)
		}
		if len(rows) == 0 {
			break
		}
		keys := make([]string, len(rows))
		ids := make([]int64, len(rows))
		for i, r := range rows {
			keys[i], ids[i] = chunkstore.Key(r.UserID, chunkstore.Hash(r.Sha256), r.ID), r.ID
		}
		if err := blob.DeleteAll(ctx, s.blobs, keys); err != nil {
			sum.FailedUpkeep += len(rows)
			s.log.WarnContext(ctx, "deleting freed chunks failed; retried next run", "chunks", len(rows), "err", err)
			return nil
		}
		n, err := s.q.ChunkDeleteTombstones(ctx, ids)
		if err != nil {
			return fmt.Errorf("deleting chunk tombstones: %w", err)
		}
		sum.Tombstones += int(n)
		if len(rows) < reapBatch {
			break
		}
	}
	for {
		rows, err := s.q.PackTombstonesBefore(ctx, db.PackTombstonesBeforeParams{GraceSeconds: grace.Seconds(), FetchLimit: reapBatch})
		if err != nil {
			return fmt.Errorf("listing pack tombstones: %w", err)
		}
		if len(rows) == 0 {
			return nil
		}
		keys := make([]string, len(rows))
		for i, r := range rows {
			keys[i] = chunkstore.PackKey(r.UserID, r.ID)
		}
		if err := s.deleteBlobs(ctx, keys); err != nil {
			sum.FailedUpkeep += len(rows)
			s.log.WarnContext(ctx, "deleting freed packs failed; retried next run", "packs", len(rows), "err", err)
			return nil
		}
		sum.Tombstones += len(rows)
		if len(rows) < reapBatch {
			return nil
		}
	}
}

// sweepShards splits the chunk key space by the first two hex digits of the owner prefix,
// and sweepMaxKeys bounds the keys one pass examines: a pass starts at the shard after the
// one its predecessor stopped in and goes on while its budget lasts, so each pass lists a
// bounded part of chunks/ and successive passes cover all of it.
const (
	sweepShards  = 256
	sweepMaxKeys = 10_000
)

// orphanKind is a kind of object the sweep looks for: its key prefix, how a key gives its
// id, and which of a batch of ids the database knows.
// next is the shard its next sweep starts at: each kind keeps its own, or a kind whose pass
// stopped early would move the other's start past shards it never listed.
type orphanKind struct {
	prefix string
	parse  func(key string) (int64, error)
	known  func(ctx context.Context, ids []int64) ([]int64, error)
	next   *atomic.Int64
}

func (s *Service) orphanKinds() []orphanKind {
	return []orphanKind{
		{chunkstore.KeyPrefix, func(k string) (int64, error) {
			_, _, id, err := chunkstore.ParseKey(k)
			return id, err
		}, s.q.ChunkIDsKnown, &s.sweepNext[0]},
		{chunkstore.PackPrefix, chunkstore.ParsePackKey, s.q.PackIDsKnown, &s.sweepNext[1]},
	}
}

// sweepOrphanChunks deletes chunk objects (before packs) and pack objects last modified
// before cutoff whose id the database does not know: written by an upload that died between
// reserving the ids and recording them or dropping its upload row (or, for a chunk of its
// own, that another upload beat to the same bytes). Ids come from sequences and are never
// reused, so an unknown id can only be such an object.
func (s *Service) sweepOrphanChunks(ctx context.Context, cutoff time.Time, sum *ReapSummary) error {
	for _, kind := range s.orphanKinds() {
		if err := s.sweepKind(ctx, kind, cutoff, sum); err != nil {
			return err
		}
	}
	return nil
}

func (s *Service) sweepKind(ctx context.Context, kind orphanKind, cutoff time.Time, sum *ReapSummary) error {
	first := int(kind.next.Load())
	var keys []string
	var ids []int64
	flush := func() error {
		if len(keys) == 0 {
			return nil
		}
		known, err := kind.known(ctx, ids)
		if err != nil {
			return fmt.Errorf("checking ids under %s: %w", kind.prefix, err)
		}
		keep := make(map[int64]bool, len(known))
		for _, id := range known {
			keep[id] = true
		}
		for i, k := range keys {
			if keep[ids[i]] {
				continue
			}
			if err := s.blobs.Delete(ctx, k); err != nil {
				sum.FailedUpkeep++
				s.log.WarnContext(ctx, "deleting an orphan object failed", "key", k, "err", err)
				continue
			}
			sum.OrphanBlobs++
		}
		keys, ids = keys[:0], ids[:0]
		return nil
	}
	examined := 0
	for i := range sweepShards {
		shard := (first + i) % sweepShards
		for obj, err := range s.blobs.List(ctx, fmt.Sprintf("%s%02x", kind.prefix, shard), cutoff) {
			if err != nil {
				return fmt.Errorf("listing %s: %w", kind.prefix, err)
			}
			examined++
			id, perr := kind.parse(obj.Key)
			if perr != nil {
				s.log.WarnContext(ctx, "an object under the chunk or pack prefix is neither; left alone", "key", obj.Key)
				continue
			}
			keys, ids = append(keys, obj.Key), append(ids, id)
			if len(keys) == reapBatch {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		if examined >= sweepMaxKeys {
			kind.next.Store(int64((shard + 1) % sweepShards))
			break
		}
	}
	return flush()
}

func (s *Service) reapOne(ctx context.Context, r db.SoloSnapshot, sum *ReapSummary) error {
	complete, err := s.blobComplete(ctx, r)
	if err != nil {
		return err
	}
	if complete {
		snap, dup, err := s.commit(ctx, r)
		if err != nil {
			return err
		}
		if dup == nil && snap.ID == r.ID {
			sum.Finished++
		} else {
			sum.RolledBack++
		}
		return nil
	}
	if err := s.rollback(ctx, r, nil); err != nil {
		return err
	}
	sum.RolledBack++
	return nil
}

// blobComplete reports whether the pending upload's blob holds exactly its bytes.
func (s *Service) blobComplete(ctx context.Context, r db.SoloSnapshot) (bool, error) {
	rc, obj, err := s.blobs.Get(ctx, r.BlobKey)
	if errors.Is(err, blob.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("opening blob: %w", err)
	}
	defer rc.Close()
	if obj.Size != r.SizeBytes {
		return false, nil
	}
	h := sha256.New()
	if _, err := io.Copy(h, rc); err != nil {
		return false, fmt.Errorf("reading blob: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)) == r.Sha256, nil
}

// sweepOrphanBlobs deletes snapshot blobs last modified before cutoff that no row refers to.
// A blob is written only after its row exists, and a row is deleted before its blob, so such
// a blob belongs to an upload rolled back by a process that died before deleting it.
func (s *Service) sweepOrphanBlobs(ctx context.Context, cutoff time.Time, sum *ReapSummary) error {
	var batch []string
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		known, err := s.q.SnapshotBlobKeysKnown(ctx, batch)
		if err != nil {
			return fmt.Errorf("checking blob keys: %w", err)
		}
		keep := make(map[string]bool, len(known))
		for _, k := range known {
			keep[k] = true
		}
		for _, k := range batch {
			if keep[k] {
				continue
			}
			if err := s.blobs.Delete(ctx, k); err != nil {
				sum.FailedUpkeep++
				s.log.WarnContext(ctx, "deleting an orphan blob failed", "key", k, "err", err)
				continue
			}
			sum.OrphanBlobs++
		}
		batch = batch[:0]
		return nil
	}
	for obj, err := range s.blobs.List(ctx, "solo/", cutoff) {
		if err != nil {
			return fmt.Errorf("listing blobs: %w", err)
		}
		batch = append(batch, obj.Key)
		if len(batch) == reapBatch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}
