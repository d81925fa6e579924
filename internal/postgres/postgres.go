// Package postgres owns the service's PostgreSQL plumbing: the pgx pool, transactions, the
// migrations runner (ours and River's), and the one place where pgx errors are translated
// into apperr kinds.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/m4sh/backend/internal/apperr"
)

// DefaultConnectTimeout bounds each new connection (dial, TLS, start-up) when the URL sets no
// connect_timeout. Without it a server that accepts and never answers, or a dropped route,
// would hold the request that needed a connection until the kernel gives up (minutes), and
// readiness would never turn 503.
const DefaultConnectTimeout = 5 * time.Second

// Connect opens a pool and checks the database answers.
func Connect(ctx context.Context, url string, maxConns int32) (*pgxpool.Pool, error) {
	return ConnectTraced(ctx, url, maxConns, nil)
}

// ConnectTraced is Connect with tracer set on every connection (nil: none).
func ConnectTraced(ctx context.Context, url string, maxConns int32, tracer pgx.QueryTracer) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: parsing DATABASE_URL: %w", err)
	}
	if maxConns > 0 {
		cfg.MaxConns = maxConns
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = DefaultConnectTimeout
	}
	if tracer != nil {
		cfg.ConnConfig.Tracer = tracer
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: creating pool: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: connecting to %s: %w", redact(cfg.ConnConfig), err)
	}
	return pool, nil
}

func redact(c *pgx.ConnConfig) string {
	return fmt.Sprintf("%s@%s:%d/%s", c.User, c.Host, c.Port, c.Database)
}

// Beginner is what InTx needs: a pool or a connection.
type Beginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// InTx runs fn in a transaction, committing when it returns nil and rolling back otherwise.
// A deadlock or serialization failure (which PostgreSQL resolves by aborting one of the
// transactions involved) runs fn again in a fresh transaction, see Retry: fn must touch only
// the database, or be safe to repeat.
func InTx(ctx context.Context, db Beginner, fn func(tx pgx.Tx) error) error {
	return Retry(ctx, func() error { return inTx(ctx, db, fn) })
}

func inTx(ctx context.Context, db Beginner, fn func(tx pgx.Tx) error) error {
	tx, err := db.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// Retry bounds: a deadlock victim is retried at most retryAttempts-1 times, after a pause
// drawn from [0, retryBase·2^attempt) so that the transactions that collided do not collide
// again in step.
const (
	retryAttempts = 5
	retryBase     = 5 * time.Millisecond
)

// Retry runs fn, the whole of one unit of work (a transaction, or one statement outside a
// transaction), again while it fails with a deadlock or serialization failure, at most
// retryAttempts times in all, with jittered exponential pauses. The last error is returned
// as it is; ctx ends the pauses early.
func Retry(ctx context.Context, fn func() error) error {
	for attempt := 0; ; attempt++ {
		err := fn()
		if err == nil || !IsRetryable(err) || attempt+1 >= retryAttempts {
			return err
		}
		pause := time.Duration(rand.Int64N(int64(retryBase) << attempt))
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

// PostgreSQL error codes we react to.
const (
	codeUniqueViolation     = "23505"
	codeForeignKeyViolation = "23503"
	codeCheckViolation      = "23514"
	codeSerialization       = "40001"
	codeDeadlock            = "40P01"
)

// Interpret translates pgx errors into apperr kinds: no rows → NotFound (with what as the
// client message), constraint violations → Conflict/Invalid, and what Translate recognises
// (an unreachable database → Unavailable, a value it cannot store → Invalid). Other errors
// are returned wrapped, to become 500s with the cause logged.
func Interpret(err error, what string) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return apperr.Wrap(apperr.NotFound, err, what+" not found")
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case codeUniqueViolation:
			return apperr.Wrap(apperr.Conflict, err, what+" already exists")
		case codeForeignKeyViolation, codeCheckViolation:
			return apperr.Wrap(apperr.Invalid, err, what+" is not valid")
		}
	}
	if e, ok := translate(err); ok {
		return e
	}
	return fmt.Errorf("%s: %w", what, err)
}

// IsRetryable reports serialization failures and deadlocks, which a caller may retry.
func IsRetryable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == codeSerialization || pgErr.Code == codeDeadlock)
}

// LogValue keeps pool statistics loggable.
func PoolStats(pool *pgxpool.Pool) slog.Attr {
	s := pool.Stat()
	return slog.Group("pool", "total", s.TotalConns(), "idle", s.IdleConns(), "acquired", s.AcquiredConns())
}
