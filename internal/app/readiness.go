package app

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/m4sh/backend/internal/blob"
	"github.com/m4sh/backend/internal/httpapi"
	"github.com/m4sh/backend/internal/postgres"
)

// readiness is what /readyz checks: the database, the schema version and the blob store
// (S3 only; buildPresence adds NATS). The database checks run on a pool of their own (two
// connections: the migrations status holds one while River's takes another), so that
// readiness never waits behind, nor takes a connection from, the API's pool: a busy API
// does not make the node look unready, and /readyz cannot starve the API. (The HTTP layer
// runs at most one round of checks a second.) Close releases the pool.
func (a *App) readiness(databaseURL string) (httpapi.Checks, error) {
	cfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("postgres: parsing DATABASE_URL: %w", err)
	}
	cfg.MaxConns, cfg.MinConns = 2, 0
	probe, err := pgxpool.NewWithConfig(context.Background(), cfg) // connects lazily
	if err != nil {
		return nil, fmt.Errorf("postgres: creating the readiness pool: %w", err)
	}
	a.closers = append(a.closers, probe.Close)
	migrator, err := postgres.NewSchemaMigrator(probe, a.Log)
	if err != nil {
		return nil, err
	}
	checks := httpapi.Checks{
		"database": func(ctx context.Context) error { return probe.Ping(ctx) },
		"migrations": func(ctx context.Context) error {
			st, err := migrator.Status(ctx)
			if err != nil {
				return err
			}
			if !st.Current() {
				return fmt.Errorf("pending migrations %v (river current: %t)", st.Pending, st.RiverCurrent)
			}
			return nil
		},
	}
	if s3, isS3 := a.Blobs.(*blob.S3); isS3 {
		checks["blob_store"] = s3.Check
	}
	return checks, nil
}
