// Package dbtest gives each test its own PostgreSQL database, cloned from a template that is
// migrated once per migration set, so tests are independent and fast. The server is
// TEST_DATABASE_URL when set, else a private throwaway cluster under .data/pgtest that
// scripts/pgcluster.sh provisions (installing PostgreSQL if needed) — tests never skip for
// want of a database.
package dbtest

import (
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
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/m4sh/backend/internal/postgres"
	"github.com/m4sh/backend/queries"
)

var (
	serverOnce sync.Once
	serverURL  string
	serverErr  error

	templateOnce sync.Once
	templateName string
	templateErr  error
)

// ServerURL returns the admin URL of the test server, provisioning it on first use.
func ServerURL(t testing.TB) string {
	t.Helper()
	serverOnce.Do(func() {
		if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
			serverURL = u
			return
		}
		root, err := RepoRoot()
		if err != nil {
			serverErr = err
			return
		}
		cmd := exec.Command(filepath.Join(root, "scripts", "pgcluster.sh"), "start", filepath.Join(root, ".data", "pgtest"), "m4sh", "--fast")
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			serverErr = fmt.Errorf("provisioning test cluster: %w", err)
			return
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		serverURL = lines[len(lines)-1]
	})
	if serverErr != nil {
		t.Fatalf("dbtest: %v", serverErr)
	}
	return serverURL
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
	templateOnce.Do(func() {
		templateName, templateErr = buildTemplate(admin)
	})
	if templateErr != nil {
		t.Fatalf("dbtest: template: %v", templateErr)
	}
	return templateName
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
