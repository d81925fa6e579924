package solo

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/m4sh/backend/gen/db"
	"github.com/m4sh/backend/internal/postgres"
)

// ReconcileSummary is the recorded output of a reconciliation.
type ReconcileSummary struct {
	Users      int   `json:"users"`
	Repaired   int   `json:"repaired"`
	DriftBytes int64 `json:"drift_bytes"`
}

// reconcilePage is how many users one listing query returns, reconcileDriftPage how many
// drifted chunks one query returns.
const (
	reconcilePage      = 500
	reconcileDriftPage = 1000
)

// Reconcile recomputes every user's chunk reference counts from the manifests' references
// (revisions and uploads in flight) and used_bytes from the rows, under locks that keep both
// still, repairing (and logging and metering) any drift from the invariants of migration 0006.
func (s *Service) Reconcile(ctx context.Context) (ReconcileSummary, error) {
	var sum ReconcileSummary
	after := ""
	for {
		users, err := s.q.QuotaUsersPage(ctx, db.QuotaUsersPageParams{After: after, Lim: reconcilePage})
		if err != nil {
			return sum, fmt.Errorf("listing users: %w", err)
		}
		for _, u := range users {
			if err := s.reconcileUser(ctx, u, &sum); err != nil {
				return sum, fmt.Errorf("reconciling %s: %w", u, err)
			}
			sum.Users++
		}
		if len(users) < reconcilePage {
			return sum, nil
		}
		after = users[len(users)-1]
	}
}

// reconcileUser repairs one user in one transaction. Locks, in the order every other
// transaction takes them: the user's live chunks (so no reference moves), then the storage
// row (so no reservation or settle moves used_bytes); an upload between its steps holds no
// lock, and its references and reservation are counted from its row.
func (s *Service) reconcileUser(ctx context.Context, userID string, sum *ReconcileSummary) error {
	var freed []tombstone
	err := postgres.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		q := s.q.WithTx(tx)
		freed = nil
		if err := q.ChunkLockUser(ctx, userID); err != nil {
			return err
		}
		used, err := q.QuotaLock(ctx, userID)
		if err != nil {
			return err
		}
		for after := int64(0); ; {
			page, err := q.ChunkRefcountDrift(ctx, db.ChunkRefcountDriftParams{UserID: userID, AfterID: after, Lim: reconcileDriftPage})
			if err != nil {
				return err
			}
			ts, err := s.repairRefcounts(ctx, q, userID, page)
			if err != nil {
				return err
			}
			freed = append(freed, ts...)
			if len(page) < reconcileDriftPage {
				break
			}
			after = page[len(page)-1].ID
		}
		actual, err := q.ChunkUsageActual(ctx, userID)
		if err != nil || actual == used {
			return err
		}
		if err := q.QuotaRepair(ctx, db.QuotaRepairParams{UsedBytes: actual, UserID: userID}); err != nil {
			return err
		}
		drift := actual - used
		s.log.WarnContext(ctx, "repaired used_bytes drift", "user_id", userID, "recorded", used, "actual", actual, "drift", drift)
		s.metrics.driftRepaired.Inc()
		s.metrics.driftBytes.Add(float64(max(drift, -drift)))
		sum.Repaired++
		sum.DriftBytes += max(drift, -drift)
		return nil
	})
	if err != nil {
		return err
	}
	s.finishTombstones(ctx, freed)
	return nil
}

// repairRefcounts repairs one page of a user's drifted chunks in q's transaction and returns
// the chunks freed (nothing refers to them any more).
func (s *Service) repairRefcounts(ctx context.Context, q *db.Queries, userID string, page []db.ChunkRefcountDriftRow) ([]tombstone, error) {
	var unref []int64 // live chunks nothing refers to: released whole (each id refcount times)
	for _, d := range page {
		switch {
		case d.Refcount == 0:
			// A revision or upload refers to a chunk that is gone or being deleted: its
			// bytes cannot be read any more. Nothing to repair in the counts.
			s.log.ErrorContext(ctx, "a revision refers to a missing chunk", "user_id", userID, "chunk_id", d.ID, "references", d.Actual)
			s.metrics.corruptRefs.Inc()
		case d.Actual == 0:
			for range d.Refcount {
				unref = append(unref, d.ID)
			}
		default:
			if err := q.ChunkRefcountSet(ctx, db.ChunkRefcountSetParams{ID: d.ID, Refcount: d.Actual}); err != nil {
				return nil, err
			}
		}
		if d.Refcount != 0 {
			s.log.WarnContext(ctx, "repaired a chunk reference count", "user_id", userID, "chunk_id", d.ID, "recorded", d.Refcount, "actual", d.Actual)
			s.metrics.refcountRepaired.Inc()
		}
	}
	f, err := releaseChunks(ctx, q, unref)
	return f.tombstones, err
}
