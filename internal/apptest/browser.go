package apptest

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/m4sh/backend/internal/dbtest"
)

// Chromium makes sure Debian's chromium and playwright-core are installed
// (scripts/browser-deps.sh) and returns the browser's path and the repository root. In CI a
// missing browser fails the test; elsewhere the test skips with the reason.
func Chromium(t testing.TB) (chromium, root string) {
	t.Helper()
	root, err := dbtest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(filepath.Join(root, "scripts", "browser-deps.sh")).Output()
	if err != nil {
		msg := "this test needs chromium and playwright-core (scripts/browser-deps.sh failed: " + err.Error() + ")"
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			msg += ": " + strings.TrimSpace(string(ee.Stderr))
		}
		Unavailable(t, msg)
	}
	return strings.TrimSpace(string(out)), root
}

// Unavailable ends a test whose outside dependency (a browser, Node, npm packages) could not
// be provided: in CI (CI set), where .ci/run installs them, that is a failure; elsewhere the
// test skips with msg.
func Unavailable(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip("skipping outside CI: " + msg)
}

// RunBrowserDriver runs a playwright-core driver script of e2e/browser with Node (within
// timeout) and decodes the JSON object it prints last into out; a failing driver or output
// that is not that JSON fails the test with everything the driver printed.
func RunBrowserDriver(t testing.TB, root string, timeout time.Duration, script string, out any, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	dir := filepath.Join(root, "e2e", "browser")
	cmd := exec.CommandContext(ctx, "node", append([]string{filepath.Join(dir, script)}, args...)...)
	cmd.Dir = dir
	res, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("browser driver %s: %v\n%s", script, err, res)
	}
	lines := strings.Split(strings.TrimSpace(string(res)), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), out); err != nil {
		t.Fatalf("browser driver %s output: %v\n%s", script, err, res)
	}
}
