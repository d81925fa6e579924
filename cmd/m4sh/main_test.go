package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/m4sh/backend/internal/auth"
	"github.com/m4sh/backend/internal/dbtest"
)

const testSecret = "cmd-test-secret-0123456789abcdefghijklmnop"

// syncBuffer is a bytes.Buffer safe to read while serve writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func getenv(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func runCmd(t *testing.T, vars map[string]string, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := run(context.Background(), args, getenv(vars), &out, io.Discard)
	return out.String(), err
}

// TestMigrateServeToken drives the binary's commands in-process: migrate a fresh database,
// serve on a free port, call an authenticated route with a minted token, shut down cleanly.
func TestMigrateServeToken(t *testing.T) {
	t.Parallel()
	vars := map[string]string{
		"DATABASE_URL":    dbtest.NewEmptyURL(t),
		"AUTH_JWT_SECRET": testSecret,
		"HTTP_ADDR":       "127.0.0.1:0",
		"LOG_LEVEL":       "warn",
	}
	out, err := runCmd(t, vars, "migrate", "status")
	if err != nil || !strings.Contains(out, "applied: []") {
		t.Fatalf("migrate status on an empty database = %q, %v", out, err)
	}
	if out, err := runCmd(t, vars, "migrate", "up"); err != nil || !strings.Contains(out, "migrated up") {
		t.Fatalf("migrate up = %q, %v", out, err)
	}
	out, err = runCmd(t, vars, "migrate", "status")
	if err != nil || !strings.Contains(out, "pending: []") || !strings.Contains(out, "river schema current: true") {
		t.Fatalf("migrate status after up = %q, %v", out, err)
	}
	tok, err := runCmd(t, vars, "token", "-user", "alice", "-name", "Alice")
	if err != nil {
		t.Fatal(err)
	}
	tok = strings.TrimSpace(tok)

	srv := serveInProcess(t, vars)
	addr := srv.addr

	resp, err := http.Get(addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /readyz = %d, want 200", resp.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodGet, addr+"/api/v1/me/", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"user_id":"alice"`) {
		t.Fatalf("GET /api/v1/me/ = %d %s", resp.StatusCode, body)
	}

	// A live WebSocket is closed with 1001 going_away on shutdown.
	post := func(path string, body string) map[string]any {
		req, _ := http.NewRequest(http.MethodPost, addr+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&m); err != nil || resp.StatusCode != 201 {
			t.Fatalf("POST %s = %d %v", path, resp.StatusCode, err)
		}
		return m
	}
	class := post("/api/v1/classrooms/", `{"title":"Shutdown"}`)["id"].(string)
	session := post("/api/v1/classrooms/"+class+"/sessions/", `{}`)["id"].(string)
	wsc, _, err := websocket.Dial(context.Background(), "ws"+strings.TrimPrefix(addr, "http")+"/ws/classroom/"+class+"/session/"+session+"/",
		&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + tok}}})
	if err != nil {
		t.Fatal(err)
	}
	defer wsc.CloseNow()
	if _, b, err := wsc.Read(context.Background()); err != nil || !strings.Contains(string(b), "presence.snapshot") {
		t.Fatalf("first frame %s, %v", b, err)
	}
	closed := make(chan error, 1)
	go func() {
		_, _, err := wsc.Read(context.Background())
		closed <- err
	}()

	srv.signal()
	select {
	case err := <-closed:
		var ce websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.StatusGoingAway || ce.Reason != "going_away" {
			t.Errorf("WebSocket ended with %v, want close 1001 going_away", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("WebSocket not closed within 15s of shutdown")
	}
	srv.stopped(t)
}

// inProcess is `m4sh serve` running inside the test's process, so that the test can signal
// it (as SIGTERM does) and see what run returns.
type inProcess struct {
	addr   string // http://host:port
	signal context.CancelFunc
	done   chan error
}

// serveInProcess starts `serve` with vars and returns once it listens.
func serveInProcess(t *testing.T, vars map[string]string) *inProcess {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	p := &inProcess{signal: cancel, done: make(chan error, 1)}
	var stdout syncBuffer
	go func() { p.done <- run(ctx, []string{"serve"}, getenv(vars), &stdout, io.Discard) }()
	p.addr = waitFor(t, &stdout, regexp.MustCompile(`listening on (http://\S+)`))
	return p
}

// stopped waits for serve to return after signal and fails the test unless it returned nil
// within 15 s.
func (p *inProcess) stopped(t *testing.T) {
	t.Helper()
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("serve returned %v after shutdown, want nil", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not shut down within 15s")
	}
}

func waitFor(t *testing.T, buf *syncBuffer, re *regexp.Regexp) string {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if m := re.FindStringSubmatch(buf.String()); m != nil {
			return m[1]
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no %v in output %q", re, buf.String())
	return ""
}

func TestCommandErrors(t *testing.T) {
	t.Parallel()
	ok := map[string]string{"AUTH_JWT_SECRET": testSecret}
	tests := []struct {
		name    string
		vars    map[string]string
		args    []string
		wantErr string
	}{
		{"no command", ok, nil, "no command"},
		{"unknown command", ok, []string{"fly"}, "unknown command"},
		{"bad config", map[string]string{"AUTH_JWT_SECRET": testSecret, "LOG_LEVEL": "loud"}, []string{"serve"}, "LOG_LEVEL"},
		{"serve without database", ok, []string{"serve"}, "DATABASE_URL"},
		{"serve with dev tokens and a real secret", map[string]string{"AUTH_JWT_SECRET": testSecret, "DEV_TOKENS": "1"}, []string{"serve"}, "DEV_TOKENS: is for development only"},
		{"token without user", ok, []string{"token"}, "-user is required"},
		{"token with zero ttl", ok, []string{"token", "-user", "a", "-ttl", "0s"}, "must not be 0"},
		{"token expired within the leeway", ok, []string{"token", "-user", "a", "-ttl", "-30s"}, "AUTH_JWT_LEEWAY (30s)"},
		{"token with public key only", map[string]string{"AUTH_JWT_PUBLIC_KEY_FILE": "/nonexistent"}, []string{"token", "-user", "a"}, "AUTH_JWT_SECRET"},
		{"migrate without subcommand", ok, []string{"migrate"}, "want up, down or status"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := runCmd(t, tt.vars, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("run(%v) = %v, want error containing %q", tt.args, err, tt.wantErr)
			}
		})
	}
}

// TestTokenNegativeTTL: `token -ttl -1h` mints a token the service refuses as expired (the
// 401 token_expired / 4401 a client must handle), and a positive one it accepts.
func TestTokenNegativeTTL(t *testing.T) {
	t.Parallel()
	vars := map[string]string{"AUTH_JWT_SECRET": testSecret}
	v, err := auth.NewVerifier(auth.Options{Secret: []byte(testSecret), Leeway: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	expired, err := runCmd(t, vars, "token", "-user", "alice", "-ttl", "-1h")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(strings.TrimSpace(expired)); !errors.Is(err, auth.ErrExpired) {
		t.Fatalf("Verify(token -ttl -1h) = %v, want ErrExpired", err)
	}
	fresh, err := runCmd(t, vars, "token", "-user", "alice", "-ttl", "1m")
	if err != nil {
		t.Fatal(err)
	}
	if p, err := v.Verify(strings.TrimSpace(fresh)); err != nil || p.UserID != "alice" {
		t.Fatalf("Verify(token -ttl 1m) = %+v, %v", p, err)
	}
}
