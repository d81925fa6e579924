// Package dbtest gives each test its own PostgreSQL database, cloned from a template that is
// migrated once per migration set, so tests are independent and fast. The server is
// TEST_DATABASE_URL when set, else a private cluster that scripts/pgcluster.sh provisions
// (installing PostgreSQL if needed) — tests never skip for want of a database: for tests the
// throwaway fast cluster under .data/pgtest, for benchmarks the cluster with production
// durability under .data/pgbench, so that no figure is taken with fsync off by accident.
package dbtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/m4sh/backend/internal/postgres"
	"github.com/m4sh/backend/queries"
)

// server is one PostgreSQL server and the migrated template on it, each made once.
type server struct {
	dir, mode string // under .data, and pgcluster.sh's mode flag

	once sync.Once
	url  string
	err  error

	templateOnce sync.Once
	templateName string
	templateErr  error
}

var (
	testServer  = &server{dir: "pgtest", mode: "--fast"}
	benchServer = &server{dir: "pgbench", mode: "--durable"}
)

func serverFor(t testing.TB) *server {
	if _, ok := t.(*testing.B); ok {
		return benchServer
	}
	return testServer
}

// ServerURL returns the admin URL of the server for t (benchmarks get the durable cluster),
// provisioning it on first use.
func ServerURL(t testing.TB) string {
	t.Helper()
	s := serverFor(t)
	s.once.Do(func() {
		if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
			s.url = u
			return
		}
		root, err := RepoRoot()
		if err != nil {
			s.err = err
			return
		}
		cmd := exec.Command(filepath.Join(root, "scripts", "pgcluster.sh"), "start", filepath.Join(root, ".data", s.dir), "m4sh", s.mode)
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			s.err = fmt.Errorf("provisioning the %s cluster: %w", s.dir, err)
			return
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		s.url = lines[len(lines)-1]
	})
	if s.err != nil {
		t.Fatalf("dbtest: %v", s.err)
	}
	return s.url
}

// RepoRoot is the repository's top directory (the one holding scripts/pgcluster.sh) above
// the working directory, so that tests can reach the project's scripts and .data.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "scripts", "pgcluster.sh")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no scripts/pgcluster.sh above the working directory")
		}
		dir = parent
	}
}

// WithDatabase returns u with its database name replaced.
func WithDatabase(u, name string) string {
	p, err := url.Parse(u)
	if err != nil {
		panic(err)
	}
	p.Path = "/" + name
	return p.String()
}

// migrationsHash names the template after the migration files, so a changed migration
// builds a new template instead of reusing a stale one.
func migrationsHash() (string, error) {
	h := sha256.New()
	err := fs.WalkDir(queries.Migrations, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(queries.Migrations, path)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s\n%d\n", path, len(b))
		h.Write(b)
		return nil
	})
	return hex.EncodeToString(h.Sum(nil))[:16], err
}

// template builds the migrated template database once per migration set. Test binaries of
// several packages run at once, so creation is serialised with an advisory lock and made
// visible atomically by renaming a finished build.
func template(t testing.TB) string {
	t.Helper()
	admin := ServerURL(t)
	s := serverFor(t)
	s.templateOnce.Do(func() {
		s.templateName, s.templateErr = buildTemplate(admin)
	})
	if s.templateErr != nil {
		t.Fatalf("dbtest: template: %v", s.templateErr)
	}
	return s.templateName
}

func buildTemplate(admin string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	hash, err := migrationsHash()
	if err != nil {
		return "", err
	}
	name := "m4sh_tmpl_" + hash
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock(7426)"); err != nil {
		return "", err
	}
	defer conn.Exec(context.Background(), "SELECT pg_advisory_unlock(7426)") //nolint:errcheck
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return "", err
	}
	if exists {
		return name, nil
	}
	build := name + "_build"
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+build+" WITH (FORCE)"); err != nil {
		return "", err
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+build); err != nil {
		return "", err
	}
	if err := Migrate(ctx, WithDatabase(admin, build), 0); err != nil {
		return "", err
	}
	if _, err := conn.Exec(ctx, "ALTER DATABASE "+build+" RENAME TO "+name); err != nil {
		return "", err
	}
	return name, nil
}

// Migrate applies migrations to the database at u, up to version to (0: all).
func Migrate(ctx context.Context, u string, to int) error {
	pool, err := pgxpool.New(ctx, u)
	if err != nil {
		return err
	}
	defer pool.Close()
	m, err := Migrator(pool)
	if err != nil {
		return err
	}
	if to == 0 {
		to = m.Latest()
	}
	_, err = m.UpTo(ctx, to)
	return err
}

// Migrator returns a quiet migrator over pool with the project's migrations.
func Migrator(pool *pgxpool.Pool) (*postgres.Migrator, error) {
	return postgres.NewSchemaMigrator(pool, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// NewURL creates a fresh migrated database for this test and returns its URL; it is dropped
// when the test ends.
func NewURL(t testing.TB) string {
	t.Helper()
	return create(t, "TEMPLATE "+template(t))
}

// CloneURL creates a fresh database copied from the database at src (which must have no other
// connections) and returns its URL; it is dropped when the test ends.
func CloneURL(t testing.TB, src string) string {
	t.Helper()
	p, err := url.Parse(src)
	if err != nil {
		t.Fatal(err)
	}
	return create(t, "TEMPLATE "+strings.TrimPrefix(p.Path, "/")+" STRATEGY FILE_COPY")
}

// NewEmptyURL creates a fresh database with no schema at all (for migration tests).
func NewEmptyURL(t testing.TB) string {
	t.Helper()
	return create(t, "")
}

// New returns a pool on a fresh migrated database for this test.
func New(t testing.TB) *pgxpool.Pool {
	t.Helper()
	return Pool(t, NewURL(t))
}

// Pool opens a pool on u, closed when the test ends.
func Pool(t testing.TB, u string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), u)
	if err != nil {
		t.Fatalf("dbtest: pool: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func create(t testing.TB, clause string) string {
	t.Helper()
	admin := ServerURL(t)
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "t_" + hex.EncodeToString(b[:])
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name+" "+clause); err != nil {
		t.Fatalf("dbtest: creating %s: %v", name, err)
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(context.Background(), admin)
		if err != nil {
			t.Logf("dbtest: dropping %s: %v", name, err)
			return
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("dbtest: dropping %s: %v", name, err)
		}
	})
	return WithDatabase(admin, name)
}

// CachedURL returns the URL of a database that build filled once and that is kept on the
// server across runs, named after key (which must change whenever what build makes changes):
// for benchmark data that takes minutes to generate. Clone it (CloneURL) before changing it.
func CachedURL(t testing.TB, key string, build func(ctx context.Context, url string) error) string {
	t.Helper()
	admin := ServerURL(t)
	sum := sha256.Sum256([]byte(key))
	name := "m4sh_cache_" + hex.EncodeToString(sum[:])[:16]
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock(7427)"); err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	defer conn.Exec(context.Background(), "SELECT pg_advisory_unlock(7427)") //nolint:errcheck
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	if exists {
		return WithDatabase(admin, name)
	}
	build2 := name + "_build"
	for _, sql := range []string{"DROP DATABASE IF EXISTS " + build2 + " WITH (FORCE)", "CREATE DATABASE " + build2} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("dbtest: %v", err)
		}
	}
	if err := build(ctx, WithDatabase(admin, build2)); err != nil {
		t.Fatalf("dbtest: building %s: %v", name, err)
	}
	if _, err := conn.Exec(ctx, "ALTER DATABASE "+build2+" RENAME TO "+name); err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	return WithDatabase(admin, name)
}

// ServerCPU returns a function that reports the CPU time the PostgreSQL server behind pool
// (the processes alive then: the database's backends, checkpointer, WAL writer) has used since
// ServerCPU was called. On a machine shared with other work it moves far less than wall time.
func ServerCPU(b testing.TB, pool *pgxpool.Pool) func() time.Duration {
	b.Helper()
	read := func() map[int]time.Duration {
		// This database's backends and the server's own processes (no database): not the
		// backends of other databases, which another benchmark may be using meanwhile.
		rows, err := pool.Query(context.Background(), `SELECT pid FROM pg_stat_activity
			WHERE datname = current_database() OR datname IS NULL`)
		if err != nil {
			b.Fatal(err)
		}
		pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
		if err != nil {
			b.Fatal(err)
		}
		out := map[int]time.Duration{}
		for _, pid := range pids {
			stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
			if err != nil {
				continue // not on this machine, or gone
			}
			// Fields after the command (which may hold spaces): utime and stime are the
			// 12th and 13th, in clock ticks of 1/100 s.
			f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
			if len(f) < 13 {
				continue
			}
			u, _ := strconv.Atoi(f[11])
			s, _ := strconv.Atoi(f[12])
			out[int(pid)] = time.Duration(u+s) * 10 * time.Millisecond
		}
		return out
	}
	before := read()
	return func() time.Duration {
		var d time.Duration
		for pid, t := range read() {
			d += t - before[pid]
		}
		return d
	}
}
