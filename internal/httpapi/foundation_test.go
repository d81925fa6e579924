package httpapi_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/m4sh/backend/internal/apptest"
	"github.com/m4sh/backend/internal/auth"
)

func TestHealthAndReadiness(t *testing.T) {
	t.Parallel()
	env := apptest.New(t, nil)
	for _, path := range []string{"/healthz", "/readyz"} {
		r := env.Do(apptest.Request{Method: http.MethodGet, Path: path})
		if r.Status != http.StatusOK {
			t.Fatalf("GET %s = %d, want 200: %s", path, r.Status, r.Body)
		}
		if got := r.JSON(t)["status"]; got != "ok" {
			t.Errorf("GET %s status = %v, want ok", path, got)
		}
	}
}

func TestReadinessFailsWithPendingMigrations(t *testing.T) {
	t.Parallel()
	env := apptest.New(t, nil)
	m, err := newMigrator(env)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Down(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	r := env.Do(apptest.Request{Method: http.MethodGet, Path: "/readyz"})
	if r.Status != http.StatusServiceUnavailable {
		t.Fatalf("GET /readyz with a pending migration = %d, want 503: %s", r.Status, r.Body)
	}
	checks, _ := r.JSON(t)["checks"].(map[string]any)
	if checks["migrations"] != "unavailable" || checks["database"] != "ok" {
		t.Errorf("checks = %v, want migrations unavailable, database ok", checks)
	}
}

// TestAuthentication covers the auth rules through the full handler: the validator asks for a
// principal on secured routes, and every refused token is a 401 problem.
func TestAuthentication(t *testing.T) {
	t.Parallel()
	env := apptest.New(t, nil)
	valid := env.Token("alice")
	expired, err := auth.Mint([]byte(apptest.Secret), auth.MintOptions{UserID: "alice", TTL: time.Minute, Now: time.Now().Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		req        apptest.Request
		wantStatus int
		wantDetail string
	}{
		{"missing header", apptest.Request{}, 401, "a bearer token is required"},
		{"basic scheme", apptest.Request{RawAuth: "Basic YWxpY2U6cHc="}, 401, "the bearer token is not valid"},
		{"malformed", apptest.Request{RawAuth: "Bearer not-a-jwt"}, 401, "the bearer token is not valid"},
		{"expired", apptest.Request{Token: expired}, 401, "the bearer token has expired"},
		{"token in query string only", apptest.Request{Path: "/api/v1/me/?access_token=" + valid}, 401, "a bearer token is required"},
		{"valid", apptest.Request{Token: valid}, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req := tt.req
			req.Method = http.MethodGet
			if req.Path == "" {
				req.Path = "/api/v1/me/"
			}
			r := env.Do(req)
			if r.Status != tt.wantStatus {
				t.Fatalf("status = %d, want %d: %s", r.Status, tt.wantStatus, r.Body)
			}
			if tt.wantStatus == 200 {
				if got := r.JSON(t)["user_id"]; got != "alice" {
					t.Errorf("user_id = %v, want alice", got)
				}
				return
			}
			assertProblem(t, r, tt.wantStatus, "unauthorized")
			if got := r.JSON(t)["detail"]; got != tt.wantDetail {
				t.Errorf("detail = %q, want %q", got, tt.wantDetail)
			}
			if got := r.Header.Get("WWW-Authenticate"); got == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
}

func TestUserUpsertedOnFirstSight(t *testing.T) {
	t.Parallel()
	env := apptest.New(t, nil)
	r := env.Do(apptest.Request{Method: http.MethodGet, Path: "/api/v1/me/", Token: env.Token("carol")})
	if r.Status != 200 {
		t.Fatalf("status %d: %s", r.Status, r.Body)
	}
	var name string
	if err := env.Pool.QueryRow(context.Background(), "SELECT name FROM users WHERE id = 'carol'").Scan(&name); err != nil {
		t.Fatalf("user carol not stored: %v", err)
	}
	if name != "Carol" {
		t.Errorf("stored name = %q, want Carol", name)
	}
}

func TestRoutingErrors(t *testing.T) {
	t.Parallel()
	env := apptest.New(t, nil)
	tok := env.Token("alice")
	tests := []struct {
		method, path string
		wantStatus   int
		wantCode     string
		wantAllow    string
	}{
		{http.MethodGet, "/api/v1/nope/", 404, "not_found", ""},
		{http.MethodGet, "/nope", 404, "not_found", ""},
		{http.MethodPost, "/api/v1/me/", 405, "method_not_allowed", "GET"},
		{http.MethodDelete, "/healthz", 405, "method_not_allowed", "GET"},
	}
	for _, tt := range tests {
		r := env.Do(apptest.Request{Method: tt.method, Path: tt.path, Token: tok})
		assertProblem(t, r, tt.wantStatus, tt.wantCode)
		if got := r.Header.Get("Allow"); got != tt.wantAllow {
			t.Errorf("%s %s Allow = %q, want %q", tt.method, tt.path, got, tt.wantAllow)
		}
	}
}

func TestOpsEndpoints(t *testing.T) {
	t.Parallel()
	env := apptest.New(t, nil)
	env.Do(apptest.Request{Method: http.MethodGet, Path: "/healthz"})
	tests := []struct {
		path, wantType, wantContains string
	}{
		{"/metrics", "text/plain", `m4sh_http_requests_total{method="GET",route="/healthz",status="200"} 1`},
		{"/openapi.yaml", "application/yaml", "openapi: 3.0"},
		{"/asyncapi.yaml", "application/yaml", "asyncapi: 3.0"},
		{"/docs", "text/html", "redoc.standalone.js"},
		{"/docs/plain", "text/html", "/api/v1/me/"},
	}
	for _, tt := range tests {
		r := env.Do(apptest.Request{Method: http.MethodGet, Path: tt.path})
		if r.Status != 200 {
			t.Errorf("GET %s = %d", tt.path, r.Status)
			continue
		}
		if ct := r.Header.Get("Content-Type"); !contains(ct, tt.wantType) {
			t.Errorf("GET %s Content-Type = %q, want %q", tt.path, ct, tt.wantType)
		}
		if !contains(string(r.Body), tt.wantContains) {
			t.Errorf("GET %s body lacks %q", tt.path, tt.wantContains)
		}
	}
}
