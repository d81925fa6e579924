package solo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/m4sh/backend/gen/db"
	"github.com/m4sh/backend/internal/blob"
)

// ReapSummary reports what ReapPending did.
type ReapSummary struct {
	Finished     int `json:"finished"`      // pending uploads whose blob was complete, committed
	RolledBack   int `json:"rolled_back"`   // pending uploads undone, their bytes released
	OrphanBlobs  int `json:"orphan_blobs"`  // blobs without a row, deleted
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
	cutoff := time.Now().Add(-grace)
	if err := s.sweepOrphanBlobs(ctx, cutoff, &sum); err != nil {
		return sum, err
	}
	if sw, ok := s.blobs.(blob.LeftoverSweeper); ok {
		n, err := sw.SweepLeftovers(ctx, "solo/", cutoff)
		sum.Leftovers += n
		if err != nil {
			return sum, err
		}
	}
	return sum, nil
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
