package e2e_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/m4sh/backend/internal/apptest"
)

// TestTypeScriptClient runs gen/ts's Node tests (node --test) against the wired service under
// Node 20 and Node 22 (scripts/nodejs.sh provides the one the machine lacks): REST calls
// through the generated TypeScript client, a WebSocket round trip through its
// PresenceSocket, PresenceSocket's state machine against loopback servers that misbehave on
// demand (test/states.test.mjs), and the REST client's errors, pagination, token refresh and
// retries (test/sdk.test.mjs, which mints tokens of its own with the test secret). Outside CI it skips only when Node or the
// package's dependency cannot be installed.
func TestTypeScriptClient(t *testing.T) {
	t.Parallel()
	dir := tsPackageDir(t)
	env := apptest.New(t, nil)
	for _, major := range []string{"20", "22"} {
		t.Run("node"+major, func(t *testing.T) {
			t.Parallel()
			node := nodeBinary(t, major)
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			// --experimental-websocket gives Node 20 its WebSocket; later versions accept and ignore it.
			cmd := exec.CommandContext(ctx, node, "--experimental-websocket", "--no-warnings", "--test")
			cmd.Dir = dir
			cmd.Env = append(os.Environ(),
				"M4SH_URL="+env.Server.URL,
				"M4SH_JWT_SECRET="+apptest.Secret,
				"M4SH_TUTOR_TOKEN="+env.Token("tutor"),
				"M4SH_STUDENT_TOKEN="+env.Token("student"))
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("node %s --test: %v\n%s", major, err, out)
			}
			if !strings.Contains(string(out), "# fail 0") || !strings.Contains(string(out), "# skipped 0") {
				t.Fatalf("node %s --test did not run every test:\n%s", major, out)
			}
			t.Logf("%s", out)
		})
	}
}

// nodeBinary returns a Node.js binary of that major version (scripts/nodejs.sh), skipping
// outside CI when it cannot be installed.
func nodeBinary(t *testing.T, major string) string {
	t.Helper()
	out, err := exec.Command("../../scripts/nodejs.sh", major).Output()
	if err != nil {
		msg := err.Error()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			msg += ": " + strings.TrimSpace(string(ee.Stderr))
		}
		apptest.Unavailable(t, "Node.js "+major+" is not available: "+msg)
	}
	return strings.TrimSpace(string(out))
}

// tsPackageDir returns gen/ts with its dependencies installed (npm, pinned in its
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
	// openapi-fetch for the package; esbuild and React for the React bindings' page.
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "esbuild", "package.json")); err != nil {
		cmd := exec.Command("npm", "install", "--no-audit", "--no-fund", "--loglevel=error")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			apptest.Unavailable(t, "npm install in gen/ts failed: "+err.Error()+": "+string(out))
		}
	}
	return dir
}
