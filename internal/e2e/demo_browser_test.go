package e2e_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/m4sh/backend/internal/apptest"
)

// TestDemoInBrowser walks the /demo/ page in headless Chromium (Debian's package, driven by
// playwright-core, both installed by scripts/browser-deps.sh) as a tutor and a student in two
// windows: presence lists and cursors cross between them, a solo snapshot is saved and
// restored, a telemetry event is accepted. Screenshots of both windows go to
// .data/artifacts/TestDemoInBrowser/. It runs in CI; elsewhere it skips only when Chromium
// cannot be installed.
func TestDemoInBrowser(t *testing.T) {
	t.Parallel()
	chromium, root := apptest.Chromium(t)
	shots := filepath.Join(root, ".data", "artifacts", t.Name())
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	env := apptest.New(t, nil)
	type sees struct {
		Presence []string          `json:"presence"`
		Cursor   map[string]string `json:"cursor"`
	}
	var got struct {
		TutorID     string   `json:"tutorID"`
		TutorSees   sees     `json:"tutorSees"`
		StudentSees sees     `json:"studentSees"`
		Saved       string   `json:"saved"`
		Restored    string   `json:"restored"`
		Doc         string   `json:"doc"`
		History     []string `json:"history"`
		Telemetry   string   `json:"telemetry"`
		Errors      []string `json:"errors"`
	}
	apptest.RunBrowserDriver(t, root, 2*time.Minute, "demo.mjs", &got,
		chromium, env.Server.URL+"/demo/", env.Token("tina"), "sam", env.Token("sam"), shots)
	if got.TutorID != "tina" {
		t.Errorf("tutor window signed in as %q, want tina", got.TutorID)
	}
	for name, s := range map[string]sees{"tutor": got.TutorSees, "student": got.StudentSees} {
		p := slices.Sorted(slices.Values(s.Presence))
		if !slices.Equal(p, []string{"sam", "tina"}) {
			t.Errorf("%s window lists %v, want sam and tina", name, s.Presence)
		}
		if s.Cursor["left"] == "" || s.Cursor["top"] == "" {
			t.Errorf("%s window shows no cursor of the other user: %v", name, s.Cursor)
		}
	}
	if got.Restored != got.Doc || !strings.HasPrefix(got.Saved, "saved revision 1") {
		t.Errorf("snapshot: saved %q, restored %q, want %q", got.Saved, got.Restored, got.Doc)
	}
	if len(got.History) != 3 || !strings.Contains(got.History[0], "restored from #1") || !strings.Contains(got.History[2], "first draft") {
		t.Errorf("snapshot history rows %q, want revision 3 restored from #1 and revision 1 pinned as \"first draft\"", got.History)
	}
	if !strings.HasPrefix(got.Telemetry, "accepted (204)") {
		t.Errorf("telemetry status %q", got.Telemetry)
	}
	if len(got.Errors) > 0 {
		t.Errorf("page errors: %v", got.Errors)
	}
	t.Logf("screenshots: %s", shots)
}
