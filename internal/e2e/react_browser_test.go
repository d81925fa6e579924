package e2e_test

import (
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/m4sh/backend/gen/api"
	"github.com/m4sh/backend/internal/apptest"
)

// TestReactBindingsInChromium bundles gen/ts/test/react (a page using every hook of
// @m4sh/client/react, in StrictMode, imported through the package's subpath export) with
// esbuild and drives it in headless Chromium as tutor tina and student mia of one session
// (e2e/browser/react.mjs; the bundle is put into a document of the service's origin): connection state, others with their presence state, useMyState,
// cursors labelled with name and state, hands, the spotlight with its viewport, a switch to
// another session (a new socket: the old session sees the leave, the new one the join with the
// initial state), and the provider's unmount leaving. Cursor moves must not re-render useOthers' component.
func TestReactBindingsInChromium(t *testing.T) {
	t.Parallel()
	chromium, root := apptest.Chromium(t)
	pkg := tsPackageDir(t)
	bundle := t.TempDir()
	esbuild := exec.Command(filepath.Join(pkg, "node_modules/.bin/esbuild"), "test/react/app.tsx", "--bundle", "--format=esm",
		"--jsx=automatic", "--outfile="+filepath.Join(bundle, "app.js"), "--log-level=warning")
	esbuild.Dir = pkg
	if out, err := esbuild.CombinedOutput(); err != nil {
		t.Fatalf("esbuild: %v\n%s", err, out)
	}
	if out, err := exec.Command("cp", filepath.Join(pkg, "test/react/index.html"), bundle).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
	f := apptest.NewClassrooms(t, nil)
	second := apptest.MustCreate[api.ClassroomSession](t, f.Env, f.Tina, "/api/v1/classrooms/"+f.Class.Id.String()+"/sessions/", map[string]any{"title": "Week 2"})
	var got struct {
		Errors                   []string `json:"errors"`
		Steps                    []string `json:"steps"`
		Failed                   string   `json:"failed"`
		RendersDuringCursorMoves struct {
			Others, Cursors int
		} `json:"rendersDuringCursorMoves"`
	}
	apptest.RunBrowserDriver(t, root, 2*time.Minute, "react.mjs", &got, chromium, f.Env.Server.URL, bundle,
		f.Class.Id.String(), f.Session.Id.String(), f.Tina, f.Mia, second.Id.String())
	t.Logf("steps: %v", got.Steps)
	if got.Failed != "" {
		t.Fatalf("step %s (passed before it: %v; page errors: %v)", got.Failed, got.Steps, got.Errors)
	}
	if len(got.Errors) > 0 {
		t.Errorf("page errors: %v", got.Errors)
	}
	if r := got.RendersDuringCursorMoves; r.Cursors == 0 || r.Others != 0 {
		t.Errorf("renders while mia moved her cursor: useCursors' component %d, useOthers' %d; want some and none", r.Cursors, r.Others)
	}
}
