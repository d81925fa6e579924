package postgres

import (
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/m4sh/backend/queries"
)

// NewSchemaMigrator returns the migrator for the service's own schema (queries/migrations)
// and River's, over pool.
func NewSchemaMigrator(pool *pgxpool.Pool, log *slog.Logger) (*Migrator, error) {
	migs, err := LoadMigrations(queries.Migrations, "migrations")
	if err != nil {
		return nil, err
	}
	return NewMigrator(pool, migs, log)
}
