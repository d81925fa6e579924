package httpapi_test

import (
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/m4sh/backend/internal/apptest"
	"github.com/m4sh/backend/internal/postgres"
)

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func newMigrator(env *apptest.Env) (*postgres.Migrator, error) {
	return postgres.NewSchemaMigrator(env.Pool, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// assertProblem checks r is an RFC 9457 problem with the given status and code.
func assertProblem(t *testing.T, r apptest.Response, status int, code string) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status = %d, want %d: %s", r.Status, status, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type = %q, want application/problem+json", ct)
	}
	p := r.JSON(t)
	if p["code"] != code {
		t.Errorf("code = %v, want %s", p["code"], code)
	}
	if p["status"] != float64(status) {
		t.Errorf("problem status = %v, want %d", p["status"], status)
	}
	for _, k := range []string{"type", "title", "detail"} {
		if s, _ := p[k].(string); s == "" {
			t.Errorf("problem lacks %s: %s", k, r.Body)
		}
	}
}
