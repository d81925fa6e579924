// Package queries holds the SQL source of truth: versioned migrations (applied by
// internal/postgres and read by sqlc as the schema) and the sqlc query files that generate
// gen/db.
package queries

import "embed"

// Migrations are the versioned schema migrations, NNNN_name.up.sql / NNNN_name.down.sql.
//
//go:embed migrations/*.sql
var Migrations embed.FS
