package e2e_test

import (
	"testing"
	"time"

	"github.com/m4sh/backend/internal/apptest"
)

// TestPresenceClientInChromium runs the TypeScript PresenceSocket's state-machine scenarios
// (gen/ts/test/support/scenarios.mjs, also run under Node 20 and 22 by TestTypeScriptClient)
// in headless Chromium, with the browser's WebSocket, its offline emulation and page
// visibility: refused connection, error without close, server restart, 4401 refresh,
// 4403/4409 stop, going offline, hidden page, connect timeout, presence state. It runs in CI;
// elsewhere it skips only when Chromium cannot be installed.
func TestPresenceClientInChromium(t *testing.T) {
	t.Parallel()
	chromium, root := apptest.Chromium(t)
	var results []struct {
		Name    string `json:"name"`
		OK      bool   `json:"ok"`
		Error   string `json:"error"`
		MS      int    `json:"ms"`
		Attempt int    `json:"attempt"`
	}
	apptest.RunBrowserDriver(t, root, 5*time.Minute, "presence-states.mjs", &results, chromium)
	if len(results) < 10 {
		t.Errorf("ran %d scenarios, want at least 10", len(results))
	}
	for _, r := range results {
		if !r.OK {
			t.Errorf("Chromium: %s: %s", r.Name, r.Error)
		} else {
			t.Logf("Chromium: %s: ok in %d ms (attempt %d; a second attempt follows only a hung page)", r.Name, r.MS, r.Attempt)
		}
	}
}
