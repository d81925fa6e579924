package e2e_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/m4sh/backend/internal/apptest"
)

// TestTypeScriptClient runs gen/ts's Node tests (node --test) against the wired service: REST
// calls through the generated TypeScript client and a WebSocket round trip through its
// PresenceSocket. Outside CI it skips only when Node or the package's dependency cannot be
// installed.
func TestTypeScriptClient(t *testing.T) {
	t.Parallel()
	dir := tsPackageDir(t)
	env := apptest.New(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "--experimental-websocket", "--no-warnings", "--test", "test/")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"M4SH_URL="+env.Server.URL,
		"M4SH_TUTOR_TOKEN="+env.Token("tutor"),
		"M4SH_STUDENT_TOKEN="+env.Token("student"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node --test: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "# fail 0") || !strings.Contains(string(out), "# skipped 0") {
		t.Fatalf("node --test did not run every test:\n%s", out)
	}
	t.Logf("%s", out)
}

// tsPackageDir returns gen/ts with its runtime dependency installed (npm, pinned in its
// package.json), skipping outside CI when that is impossible.
func tsPackageDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../../gen/ts")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("node"); err != nil {
		apptest.Unavailable(t, "the TypeScript client test needs node")
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "openapi-fetch", "package.json")); err != nil {
		cmd := exec.Command("npm", "install", "--no-audit", "--no-fund", "--loglevel=error")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			apptest.Unavailable(t, "npm install in gen/ts failed: "+err.Error()+": "+string(out))
		}
	}
	return dir
}
