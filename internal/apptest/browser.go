package apptest

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

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
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip("skipping outside CI: " + msg)
	}
	return strings.TrimSpace(string(out)), root
}
