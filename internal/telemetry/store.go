package telemetry

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/m4sh/backend/gen/db"
)

// PGStore stores events in PostgreSQL's telemetry_events: COPY in binary format encoded by
// hand (copy.go), and partition maintenance through the generated queries.
type PGStore struct {
	q    *db.Queries
	pool *pgxpool.Pool
	bufs sync.Pool // *[]byte COPY streams
}

// NewPGStore returns a PGStore over pool.
func NewPGStore(pool *pgxpool.Pool) *PGStore { return &PGStore{q: db.New(pool), pool: pool} }

var _ Store = (*PGStore)(nil)

// copySQL rows are routed to their day's partition by received_at.
//
// The COPY runs with synchronous_commit off: its commit does not wait for the WAL to reach
// the disk, so the writer's pace does not depend on fsync latency. This is best-effort data:
// a crash of PostgreSQL itself can lose the last moments of committed batches (at most three
// wal_writer_delay, 600 ms by default) but never corrupts the table, which stays an ordinary
// logged table — and the writer's own buffer (up to TELEMETRY_FLUSH_INTERVAL of events) is
// lost on a crash of this process anyway. Both statements travel in one simple-protocol
// message, which PostgreSQL runs as one implicit transaction, so SET LOCAL applies to this
// COPY only and never leaks into the pooled connection's session; the command tag returned
// is the COPY's, the last statement's.
const copySQL = "SET LOCAL synchronous_commit = off; COPY telemetry_events (" + copyColumns + ") FROM STDIN (FORMAT binary)"

// CopyEvents writes events with one COPY (all or nothing).
func (s *PGStore) CopyEvents(ctx context.Context, events []Event) (int64, error) {
	bp, _ := s.bufs.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	defer s.bufs.Put(bp)
	b := append((*bp)[:0], copyHeader...)
	for i := range events {
		b = appendCopyRow(b, &events[i])
	}
	b = append(b, copyTrailer...)
	*bp = b
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return 0, fmt.Errorf("copying telemetry events: %w", err)
	}
	defer conn.Release()
	tag, err := conn.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(b), copySQL)
	if err != nil {
		return 0, fmt.Errorf("copying telemetry events: %w", err)
	}
	return tag.RowsAffected(), nil
}

// EnsurePartitions creates the missing daily partitions of days first .. first+days-1 (UTC).
func (s *PGStore) EnsurePartitions(ctx context.Context, first time.Time, days int) (int, error) {
	n, err := s.q.TelemetryPartitionsEnsure(ctx, db.TelemetryPartitionsEnsureParams{FirstDay: date(first), Days: int32(days)})
	if err != nil {
		return 0, fmt.Errorf("creating telemetry partitions: %w", err)
	}
	return int(n), nil
}

// DropPartitionsBefore drops the daily partitions of days before day (UTC).
func (s *PGStore) DropPartitionsBefore(ctx context.Context, day time.Time) (int, error) {
	n, err := s.q.TelemetryPartitionsDropBefore(ctx, date(day))
	if err != nil {
		return 0, fmt.Errorf("dropping telemetry partitions: %w", err)
	}
	return int(n), nil
}

// Partitions lists the existing partitions by name, oldest first.
func (s *PGStore) Partitions(ctx context.Context) ([]string, error) {
	names, err := s.q.TelemetryPartitionList(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing telemetry partitions: %w", err)
	}
	return names, nil
}

func date(t time.Time) pgtype.Date { return pgtype.Date{Time: Day(t), Valid: true} }

// PartitionsAhead is how many days beyond today Maintain keeps partitions for, so that a job
// that fails for a while (or a clock near midnight) never leaves rows without a partition.
const PartitionsAhead = 3

// Maintenance keeps telemetry_events' daily partitions: created ahead, dropped after the
// retention period. The River job telemetry.maintain_partitions runs it hourly.
type Maintenance struct {
	Store     *PGStore
	Retention time.Duration // TELEMETRY_RETENTION_DAYS
}

// Maintain creates the partitions for yesterday through today+PartitionsAhead and drops those
// of days older than the retention (a day's rows are kept at least Retention, and dropped
// within a day after). It is idempotent and safe to run concurrently.
func (m Maintenance) Maintain(ctx context.Context, now time.Time) (created, dropped int, err error) {
	today := Day(now)
	created, err = m.Store.EnsurePartitions(ctx, today.AddDate(0, 0, -1), PartitionsAhead+2)
	if err != nil {
		return 0, 0, err
	}
	days := int(m.Retention / (24 * time.Hour))
	dropped, err = m.Store.DropPartitionsBefore(ctx, today.AddDate(0, 0, -days))
	return created, dropped, err
}
