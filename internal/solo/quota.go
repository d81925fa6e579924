package solo

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/m4sh/backend/gen/db"
	"github.com/m4sh/backend/internal/apperr"
	"github.com/m4sh/backend/internal/postgres"
)

// Storage is a user's snapshot storage usage in bytes.
type Storage struct {
	Used  int64
	Quota int64
}

// Remaining is what still fits; never negative, though an operator may set a quota below usage.
func (s Storage) Remaining() int64 { return max(0, s.Quota-s.Used) }

func storageFrom(r db.SoloUserStorage) Storage {
	return Storage{Used: r.UsedBytes, Quota: r.QuotaBytes}
}

// StorageGet returns userID's storage usage (the default quota when none was recorded yet).
func (s *Service) StorageGet(ctx context.Context, userID string) (Storage, error) {
	r, err := s.q.QuotaGet(ctx, userID)
	if errors.Is(err, pgx.ErrNoRows) {
		return Storage{Quota: s.opts.DefaultQuota}, nil
	}
	if err != nil {
		return Storage{}, fmt.Errorf("getting storage usage: %w", err)
	}
	return storageFrom(r), nil
}

// QuotaSet sets userID's quota, creating the user if the service has not seen them yet.
// Lowering a quota below current usage is allowed: uploads then fail until usage drops.
func (s *Service) QuotaSet(ctx context.Context, userID string, quota int64) (Storage, error) {
	if quota < 0 {
		return Storage{}, apperr.New(apperr.Invalid, "a quota cannot be negative")
	}
	var out Storage
	err := postgres.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		q := s.q.WithTx(tx)
		if err := q.UserUpsert(ctx, db.UserUpsertParams{ID: userID}); err != nil {
			return postgres.Interpret(err, "user")
		}
		r, err := q.QuotaSet(ctx, db.QuotaSetParams{UserID: userID, QuotaBytes: quota})
		if err != nil {
			return postgres.Interpret(err, "quota")
		}
		out = storageFrom(r)
		return nil
	})
	return out, err
}

// release gives back n bytes of userID's usage, in the transaction of q that deleted the rows
// holding them: the one way bytes leave the quota.
func release(ctx context.Context, q *db.Queries, userID string, n int64) error {
	if err := q.QuotaRelease(ctx, db.QuotaReleaseParams{UserID: userID, SizeBytes: n}); err != nil {
		return fmt.Errorf("releasing quota: %w", err)
	}
	return nil
}
