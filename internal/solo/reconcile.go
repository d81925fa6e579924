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

// reconcilePage is how many users one listing query returns.
const reconcilePage = 500

// Reconcile recomputes every user's used_bytes from the rows under that user's row lock,
// repairing (and logging and metering) any drift from the quota invariant.
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

func (s *Service) reconcileUser(ctx context.Context, userID string, sum *ReconcileSummary) error {
	return postgres.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		q := s.q.WithTx(tx)
		used, err := q.QuotaLock(ctx, userID)
		if err != nil {
			return err
		}
		actual, err := q.QuotaUsageFromRows(ctx, userID)
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
}
