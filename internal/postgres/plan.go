package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Querier runs statements: a pool, a connection or a transaction (what sqlc's generated
// queries take as their DBTX).
type Querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// PlanEachRun wraps q so that each statement run through it is planned for the table sizes
// and values of that run: an unnamed statement (pgx's QueryExecModeCacheDescribe, which
// still sends and reads values in binary, in one round trip once the connection has cached
// the statement's description). By default a statement is prepared once per connection,
// and after five runs PostgreSQL may keep one generic plan for it, chosen with the sizes and
// statistics of that moment and without the values. For a statement that joins a few ids
// with a large table, a plan chosen while the table was small (a hash join over a scan of
// the whole table) stays for the connection's life and costs more with every row the table
// gains; a plan per run switches to index probes as soon as they are cheaper. Planning each
// run costs a parse and a plan (tens of microseconds): use it for such statements, not
// everywhere.
func PlanEachRun(q Querier) Querier { return planEachRun{q} }

type planEachRun struct{ q Querier }

func (p planEachRun) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	return p.q.Exec(ctx, sql, withExecMode(args)...)
}

func (p planEachRun) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	return p.q.Query(ctx, sql, withExecMode(args)...)
}

func (p planEachRun) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return p.q.QueryRow(ctx, sql, withExecMode(args)...)
}

// withExecMode puts the mode first, where pgx looks for it among the arguments.
func withExecMode(args []any) []any {
	out := make([]any, 0, len(args)+1)
	return append(append(out, pgx.QueryExecModeCacheDescribe), args...)
}
