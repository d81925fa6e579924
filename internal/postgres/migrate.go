package postgres

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

// Migration is one versioned step of queries/migrations.
type Migration struct {
	Version int
	Name    string
	Up      string
	Down    string
	// NoTx migrations run statement by statement outside a transaction (marked with a first
	// line `-- m4sh:no-transaction`, statements separated by `-- m4sh:split`). Batched
	// backfills use this so that no single transaction holds locks for long; such a migration
	// must be written to be safe to re-run from any point.
	//
	// A step of such a migration that carries the line `-- m4sh:batched` is one batch of a
	// backfill, run again and again, each time in its own transaction, with $1 the cursor (a
	// text, NULL at the start) and $2 how many rows the batch may take. It returns one row:
	// the cursor after this batch (NULL once the walk is complete), how many rows it took
	// (what the batch size counts) and how many it changed. Batches are sized by time (see
	// BatchSizer). With `-- m4sh:batched repeat` the walk starts over until a whole walk
	// changes nothing (catching rows that other writers added behind the cursor meanwhile).
	// `-- m4sh:batched repeat-with-previous` is for a step that applies what the previous
	// batched step computed: its row has a fourth column, how many rows it found that the
	// previous step has not handled (added meanwhile); after a walk that found any, the
	// previous step walks again, and walks repeat until one changes and finds nothing.
	// `target=500ms` (after the mode, if any) sizes the batches of a step that holds no row
	// locks others could wait on for that long instead of BatchTarget: fewer, larger batches.
	NoTx bool
}

const (
	noTxMarker    = "-- m4sh:no-transaction"
	splitMarker   = "-- m4sh:split"
	batchedMarker = "-- m4sh:batched"
	migrationsTbl = "m4sh_schema_migrations"
	// migrateLockKey serialises concurrent migrators (several nodes starting at once).
	migrateLockKey = 0x6d3473686d6967 // "m4shmig"
)

var migrationName = regexp.MustCompile(`^(\d{4})_([a-z0-9_]+)\.(up|down)\.sql$`)

// LoadMigrations reads and checks the migrations in dir of fsys: versions contiguous from 1,
// each with an up and a down file.
func LoadMigrations(fsys fs.FS, dir string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("reading migrations: %w", err)
	}
	byVersion := map[int]*Migration{}
	for _, e := range entries {
		m := migrationName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("migration file %q is not named NNNN_name.up|down.sql", e.Name())
		}
		v, _ := strconv.Atoi(m[1])
		body, err := fs.ReadFile(fsys, dir+"/"+e.Name())
		if err != nil {
			return nil, err
		}
		mig := byVersion[v]
		if mig == nil {
			mig = &Migration{Version: v, Name: m[2]}
			byVersion[v] = mig
		}
		if m[3] == "up" {
			mig.Up = string(body)
			mig.NoTx = strings.HasPrefix(mig.Up, noTxMarker)
		} else {
			mig.Down = string(body)
		}
	}
	out := make([]Migration, 0, len(byVersion))
	for v := 1; v <= len(byVersion); v++ {
		m := byVersion[v]
		if m == nil {
			return nil, fmt.Errorf("migration %04d is missing (versions must be contiguous)", v)
		}
		if m.Up == "" || m.Down == "" {
			return nil, fmt.Errorf("migration %04d_%s needs both up and down files", v, m.Name)
		}
		out = append(out, *m)
	}
	return out, nil
}

// Migrator applies our migrations and River's.
type Migrator struct {
	pool  *pgxpool.Pool
	migs  []Migration
	river *rivermigrate.Migrator[pgx.Tx]
	log   *slog.Logger
	// BatchMax caps the rows a batch of a batched step may take (0: no cap but the built-in
	// one); tests set it low to walk small data in many batches.
	BatchMax int
}

// NewMigrator builds a Migrator over pool for migs.
func NewMigrator(pool *pgxpool.Pool, migs []Migration, log *slog.Logger) (*Migrator, error) {
	rm, err := rivermigrate.New(riverpgxv5.New(pool), &rivermigrate.Config{Logger: log})
	if err != nil {
		return nil, fmt.Errorf("river migrator: %w", err)
	}
	return &Migrator{pool: pool, migs: migs, river: rm, log: log}, nil
}

// Latest is the newest migration version.
func (m *Migrator) Latest() int { return len(m.migs) }

// Up applies River's migrations and then every pending migration of ours.
func (m *Migrator) Up(ctx context.Context) ([]int, error) { return m.UpTo(ctx, m.Latest()) }

// UpTo applies River's migrations and ours up to and including version target.
func (m *Migrator) UpTo(ctx context.Context, target int) ([]int, error) {
	if _, err := m.river.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return nil, fmt.Errorf("river migrations: %w", err)
	}
	var applied []int
	err := m.locked(ctx, func(conn *pgxpool.Conn) error {
		done, err := appliedVersions(ctx, conn)
		if err != nil {
			return err
		}
		for _, mig := range m.migs {
			if mig.Version > target || slices.Contains(done, mig.Version) {
				continue
			}
			m.log.InfoContext(ctx, "migration up", "version", mig.Version, "name", mig.Name)
			if err := m.apply(ctx, conn, mig, mig.Up, mig.NoTx, true); err != nil {
				return fmt.Errorf("migration %04d_%s up: %w", mig.Version, mig.Name, err)
			}
			applied = append(applied, mig.Version)
		}
		return nil
	})
	return applied, err
}

// Reapply runs the up steps of an applied migration again without recording anything. Every
// migration of ours is written to be re-runnable; this is how tests (and an operator
// finishing an interrupted backfill) prove and use it.
func (m *Migrator) Reapply(ctx context.Context, version int) error {
	if version < 1 || version > len(m.migs) {
		return fmt.Errorf("no migration %d", version)
	}
	mig := m.migs[version-1]
	return m.locked(ctx, func(conn *pgxpool.Conn) error {
		if !mig.NoTx {
			_, err := conn.Exec(ctx, mig.Up)
			return err
		}
		return m.execSteps(ctx, conn, mig.Up)
	})
}

// Down reverts the newest steps migrations of ours (River's schema stays).
func (m *Migrator) Down(ctx context.Context, steps int) ([]int, error) {
	var reverted []int
	err := m.locked(ctx, func(conn *pgxpool.Conn) error {
		done, err := appliedVersions(ctx, conn)
		if err != nil {
			return err
		}
		slices.Sort(done)
		for i := len(done) - 1; i >= 0 && len(reverted) < steps; i-- {
			v := done[i]
			if v < 1 || v > len(m.migs) {
				return fmt.Errorf("database has migration %d that this binary does not know", v)
			}
			mig := m.migs[v-1]
			m.log.InfoContext(ctx, "migration down", "version", mig.Version, "name", mig.Name)
			if err := m.apply(ctx, conn, mig, mig.Down, false, false); err != nil {
				return fmt.Errorf("migration %04d_%s down: %w", mig.Version, mig.Name, err)
			}
			reverted = append(reverted, v)
		}
		return nil
	})
	return reverted, err
}

// Status describes which migrations are applied.
type Status struct {
	Applied      []int
	Pending      []int
	RiverCurrent bool
}

// Current reports whether every migration (ours and River's) is applied.
func (s Status) Current() bool { return len(s.Pending) == 0 && s.RiverCurrent }

// Status reads the applied versions.
func (m *Migrator) Status(ctx context.Context) (Status, error) {
	var st Status
	conn, err := m.pool.Acquire(ctx)
	if err != nil {
		return st, err
	}
	defer conn.Release()
	done, err := appliedVersions(ctx, conn)
	if err != nil {
		return st, err
	}
	slices.Sort(done)
	st.Applied = done
	for _, mig := range m.migs {
		if !slices.Contains(done, mig.Version) {
			st.Pending = append(st.Pending, mig.Version)
		}
	}
	res, err := m.river.Validate(ctx, nil)
	if err != nil {
		return st, fmt.Errorf("river migrations: %w", err)
	}
	st.RiverCurrent = res.OK
	return st, nil
}

func (m *Migrator) locked(ctx context.Context, fn func(conn *pgxpool.Conn) error) error {
	conn, err := m.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", int64(migrateLockKey)); err != nil {
		return fmt.Errorf("taking migration lock: %w", err)
	}
	defer func() {
		_, _ = conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", int64(migrateLockKey))
	}()
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+migrationsTbl+` (
		version    integer PRIMARY KEY,
		name       text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return fmt.Errorf("creating %s: %w", migrationsTbl, err)
	}
	return fn(conn)
}

func (m *Migrator) apply(ctx context.Context, conn *pgxpool.Conn, mig Migration, sql string, noTx, up bool) error {
	record := func(tx pgx.Tx) error {
		var err error
		if up {
			_, err = tx.Exec(ctx, `INSERT INTO `+migrationsTbl+` (version, name) VALUES ($1, $2)`, mig.Version, mig.Name)
		} else {
			_, err = tx.Exec(ctx, `DELETE FROM `+migrationsTbl+` WHERE version = $1`, mig.Version)
		}
		return err
	}
	if !noTx {
		return InTx(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, sql); err != nil {
				return err
			}
			return record(tx)
		})
	}
	if err := m.execSteps(ctx, conn, sql); err != nil {
		return err
	}
	return InTx(ctx, conn, record)
}

// execSteps runs a no-transaction migration statement by statement in autocommit mode,
// logging how long each took (the longest is the longest any lock of ours was held, except
// for batched steps, whose longest batch is logged as max_batch).
func (m *Migrator) execSteps(ctx context.Context, conn *pgxpool.Conn, sql string) error {
	var prev *batchedStep
	for i, stmt := range strings.Split(sql, splitMarker) {
		if strings.TrimSpace(stripComments(stmt)) == "" {
			continue
		}
		start := time.Now()
		if step, ok, err := parseBatched(i+1, stmt); err != nil {
			return fmt.Errorf("statement %d: %w", i+1, err)
		} else if ok {
			if step.mode == batchedRepeatWithPrevious && prev == nil {
				return fmt.Errorf("statement %d: %s with no batched step before it", i+1, batchedRepeatWithPrevious)
			}
			st, err := m.execBatched(ctx, conn, step, prev)
			if err != nil {
				return fmt.Errorf("statement %d, batch %d: %w", i+1, st.batches+1, err)
			}
			m.logBatched(ctx, step, st, time.Since(start))
			prev = &step
			continue
		}
		// Simple protocol: a statement may be a DO block.
		if _, err := conn.Exec(ctx, stmt, pgx.QueryExecModeSimpleProtocol); err != nil {
			return fmt.Errorf("statement %d: %w", i+1, err)
		}
		m.log.InfoContext(ctx, "migration step", "step", i+1, "duration", time.Since(start),
			"statement", firstLine(stripComments(stmt)))
	}
	return nil
}

// Batches of a batched step aim at BatchTarget each, so that the longest, with noise, stays
// under the 250 ms any transaction of a backfill may hold row locks for: growing by at most
// 1.5× a batch, even one whose cost is quadratic in its size takes at most 1.5 × 100 ms, which
// leaves room for a batch made slower by a checkpoint (its pages then logged in full; at a
// 150 ms target the longest measured 265 ms). The first batch is small: nothing is known of
// the server's speed yet.
const (
	BatchTarget = 100 * time.Millisecond
	// batchTargetMax bounds a step's own target=: growing by 1.5× at most, its longest batch
	// stays under the 1 s any statement of a backfill may take.
	batchTargetMax            = 600 * time.Millisecond
	batchFirst                = 10
	batchMin                  = 10
	batchMax                  = 200_000
	batchedRepeat             = "repeat"
	batchedRepeatWithPrevious = "repeat-with-previous"
)

// batchedStep is a parsed `-- m4sh:batched [mode] [target=D]` step.
type batchedStep struct {
	index  int // the step's number in its migration, for the log
	sql    string
	mode   string
	target time.Duration
}

func parseBatched(index int, stmt string) (batchedStep, bool, error) {
	for _, line := range strings.Split(stmt, "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), batchedMarker)
		if !ok {
			continue
		}
		step := batchedStep{sql: stmt, target: BatchTarget, index: index}
		for _, f := range strings.Fields(rest) {
			switch {
			case f == batchedRepeat || f == batchedRepeatWithPrevious:
				step.mode = f
			case strings.HasPrefix(f, "target="):
				d, err := time.ParseDuration(strings.TrimPrefix(f, "target="))
				if err != nil || d <= 0 || d > batchTargetMax {
					return step, true, fmt.Errorf("%s %s: want a duration up to %v", batchedMarker, f, batchTargetMax)
				}
				step.target = d
			default:
				return step, true, fmt.Errorf("%s: unknown option %q", batchedMarker, f)
			}
		}
		return step, true, nil
	}
	return batchedStep{}, false, nil
}

type batchStats struct {
	batches, walks, changed, lastSize int
	maxBatch                          time.Duration
}

// execBatched runs one batched step to the end (see Migration.NoTx), each batch a statement
// of its own in autocommit mode, so each commits before the next starts. prev is the batched
// step before it, walked again between walks of a repeat-with-previous step.
func (m *Migrator) execBatched(ctx context.Context, conn *pgxpool.Conn, step batchedStep, prev *batchedStep) (batchStats, error) {
	var st batchStats
	hi := batchMax
	if m.BatchMax > 0 {
		hi = min(hi, m.BatchMax)
	}
	sizer := NewBatchSizer(batchFirst, min(batchMin, hi), hi, step.target)
	var prevSizer *BatchSizer
	for {
		st.walks++
		changed, pending, err := m.walk(ctx, conn, step, sizer, &st)
		if err != nil {
			return st, err
		}
		st.changed += changed
		if step.mode == "" || (changed == 0 && pending == 0) {
			return st, nil
		}
		if pending > 0 {
			if prevSizer == nil {
				prevSizer = NewBatchSizer(batchFirst, min(batchMin, hi), hi, prev.target)
			}
			var prevStats batchStats
			start := time.Now()
			prevStats.walks = 1
			if prevStats.changed, _, err = m.walk(ctx, conn, *prev, prevSizer, &prevStats); err != nil {
				return st, fmt.Errorf("walking step %d again: %w", prev.index, err)
			}
			m.logBatched(ctx, *prev, prevStats, time.Since(start))
		}
	}
}

// logBatched logs a batched step's walks: max_batch is the longest any of its transactions
// took, target what its batches were sized for.
func (m *Migrator) logBatched(ctx context.Context, step batchedStep, st batchStats, took time.Duration) {
	m.log.InfoContext(ctx, "migration step", "step", step.index, "duration", took,
		"statement", firstLine(stripComments(step.sql)), "batches", st.batches, "walks", st.walks,
		"rows_changed", st.changed, "max_batch", st.maxBatch, "target", step.target, "last_batch_size", st.lastSize)
}

// walk runs one walk of a batched step, from a NULL cursor until the step returns one, and
// returns how many rows it changed and found pending (repeat-with-previous steps only).
func (m *Migrator) walk(ctx context.Context, conn *pgxpool.Conn, step batchedStep, sizer *BatchSizer, st *batchStats) (walkChanged, walkPending int, err error) {
	var cursor *string
	for {
		size := sizer.Size()
		var taken, changed, pending int
		dest := []any{&cursor, &taken, &changed}
		if step.mode == batchedRepeatWithPrevious {
			dest = append(dest, &pending)
		}
		start := time.Now()
		// An unnamed statement, planned for this batch's values: a cached generic plan
		// would have to guess how many rows $2 takes.
		if err := conn.QueryRow(ctx, step.sql, pgx.QueryExecModeExec, cursor, size).Scan(dest...); err != nil {
			return walkChanged, walkPending, err
		}
		took := time.Since(start)
		sizer.Observe(taken, took)
		st.batches++
		st.lastSize = size
		st.maxBatch = max(st.maxBatch, took)
		walkChanged += changed
		walkPending += pending
		m.log.DebugContext(ctx, "migration batch", "size", size, "taken", taken, "changed", changed, "pending", pending, "duration", took)
		if cursor == nil {
			return walkChanged, walkPending, nil
		}
	}
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

func stripComments(s string) string {
	var b strings.Builder
	for _, line := range strings.Split(s, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "--") {
			b.WriteString(line)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

func appliedVersions(ctx context.Context, conn *pgxpool.Conn) ([]int, error) {
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, migrationsTbl).Scan(&exists); err != nil {
		return nil, err
	}
	if !exists {
		return nil, nil
	}
	rows, err := conn.Query(ctx, `SELECT version FROM `+migrationsTbl)
	if err != nil {
		return nil, err
	}
	vs, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		return nil, errors.Join(errors.New("reading applied migrations"), err)
	}
	return vs, nil
}
