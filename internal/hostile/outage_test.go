package hostile_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/m4sh/backend/internal/apptest"
	"github.com/m4sh/backend/internal/dbtest"
	"github.com/m4sh/backend/internal/postgres"
)

// privateCluster starts this test's own PostgreSQL cluster (never the shared test cluster,
// which other tests are using), migrates its database and returns its URL and a function
// running pgcluster.sh with a command ("stop", "start") on it.
func privateCluster(t *testing.T) (string, func(cmd string)) {
	t.Helper()
	root, err := dbtest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, ".data", "pghostile")
	run := func(cmd string) string {
		t.Helper()
		c := exec.Command(filepath.Join(root, "scripts", "pgcluster.sh"), cmd, dir, "m4sh", "--fast")
		c.Stderr = os.Stderr
		out, err := c.Output()
		if err != nil {
			t.Fatalf("pgcluster.sh %s: %v", cmd, err)
		}
		return strings.TrimSpace(string(out))
	}
	out := run("start")
	url := out[strings.LastIndex(out, "\n")+1:]
	t.Cleanup(func() { run("stop") })
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	m, err := postgres.NewSchemaMigrator(pool, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Up(ctx); err != nil {
		t.Fatalf("migrating the private cluster: %v", err)
	}
	return url, func(cmd string) { run(cmd) }
}

// TestPostgresOutage stops the database under a running service: every route that needs it
// answers 503 unavailable with Retry-After (never 500), /readyz says so, /healthz stays up;
// when the database is back the same routes answer again without a restart.
func TestPostgresOutage(t *testing.T) {
	t.Parallel()
	url, cluster := privateCluster(t)
	e := apptest.New(t, map[string]string{"DATABASE_URL": url})
	alice := e.Token("alice")
	class := apptest.MustCreate[map[string]any](t, e, alice, "/api/v1/classrooms/", map[string]any{"title": "Outage"})
	classPath := "/api/v1/classrooms/" + class["id"].(string) + "/"
	solo := apptest.MustCreate[map[string]any](t, e, alice, "/api/v1/solo/sessions/", map[string]any{"title": "s"})
	soloPath := "/api/v1/solo/sessions/" + solo["id"].(string) + "/"

	cluster("stop")
	requests := []apptest.Request{
		{Method: http.MethodGet, Path: "/api/v1/classrooms/", Token: alice},
		{Method: http.MethodGet, Path: classPath, Token: alice},
		{Method: http.MethodGet, Path: classPath + "members/", Token: alice},
		{Method: http.MethodPost, Path: "/api/v1/classrooms/", Token: alice, Body: map[string]any{"title": "x"}},
		{Method: http.MethodPost, Path: classPath + "sessions/", Token: alice, Body: map[string]any{"title": "x"}},
		{Method: http.MethodGet, Path: soloPath, Token: alice},
		{Method: http.MethodPost, Path: soloPath + "snapshot/", Token: alice, Body: []byte(`{"scene":1}`)},
		{Method: http.MethodGet, Path: "/api/v1/solo/storage/", Token: alice},
		// A user never seen before: recording them on first sight fails.
		{Method: http.MethodGet, Path: "/api/v1/me/", Token: e.Token("bob")},
	}
	for _, req := range requests {
		r := e.Do(req)
		if r.Status != http.StatusServiceUnavailable || code(r.Body) != "unavailable" {
			t.Errorf("%s %s with the database down = %d %s, want 503 unavailable", req.Method, req.Path, r.Status, r.Body)
			continue
		}
		if s, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || s < 1 {
			t.Errorf("%s %s: Retry-After = %q, want whole seconds ≥ 1", req.Method, req.Path, r.Header.Get("Retry-After"))
		}
	}
	if r := e.Do(apptest.Request{Method: http.MethodGet, Path: "/healthz"}); r.Status != http.StatusOK {
		t.Errorf("/healthz with the database down = %d, want 200", r.Status)
	}
	waitFor(t, 5*time.Second, "/readyz to answer 503", func() bool {
		return e.Do(apptest.Request{Method: http.MethodGet, Path: "/readyz"}).Status == http.StatusServiceUnavailable
	})

	cluster("start")
	waitFor(t, 30*time.Second, "the API to answer again", func() bool {
		return e.Do(apptest.Request{Method: http.MethodGet, Path: "/api/v1/classrooms/", Token: alice}).Status == http.StatusOK
	})
	apptest.MustCreate[map[string]any](t, e, alice, "/api/v1/classrooms/", map[string]any{"title": "After"})
	if r := e.Do(apptest.Request{Method: http.MethodGet, Path: "/api/v1/me/", Token: e.Token("bob")}); r.Status != http.StatusOK {
		t.Errorf("GET /api/v1/me/ as a new user after the outage = %d %s", r.Status, r.Body)
	}
	waitFor(t, 5*time.Second, "/readyz to answer 200", func() bool {
		return e.Do(apptest.Request{Method: http.MethodGet, Path: "/readyz"}).Status == http.StatusOK
	})
}

func waitFor(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	for end := time.Now().Add(d); ; time.Sleep(100 * time.Millisecond) {
		if ok() {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("waited %v for %s", d, what)
		}
	}
}
