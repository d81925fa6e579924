package ws_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/m4sh/backend/internal/apptest"
)

const browserPage = `<!doctype html><meta charset="utf-8"><title>presence</title><script>
window.events = []; window.closeInfo = null; window.protocol = null;
window.connect = (url, tok) => {
  const ws = new WebSocket(url, ["m4sh.presence.v1", "bearer." + tok]);
  window.ws = ws;
  ws.onopen = () => { window.protocol = ws.protocol; };
  ws.onmessage = (e) => window.events.push(JSON.parse(e.data));
  ws.onclose = (e) => { window.closeInfo = {code: e.code, reason: e.reason}; };
};
window.send = (m) => window.ws.send(JSON.stringify(m));
</script>`

// TestBrowser runs real headless Chromium (Debian's package, driven by playwright-core):
// two pages authenticate with the subprotocol token and see each other's cursor; a page
// with a bad token reads close code 4401. It runs in CI; elsewhere it skips only when
// Chromium cannot be installed.
func TestBrowser(t *testing.T) {
	t.Parallel()
	chromium, root := apptest.Chromium(t)
	f := setup(t, map[string]string{"WS_ALLOWED_ORIGINS": "127.0.0.1:*"})
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(browserPage))
	}))
	defer page.Close()
	var got struct {
		Cursor   map[string]any `json:"cursor"`
		Closed   map[string]any `json:"closed"`
		Protocol string         `json:"protocol"`
	}
	apptest.RunBrowserDriver(t, root, 60*time.Second, "presence.mjs", &got,
		chromium, page.URL, f.sessionURL(), f.Tina, f.Mia, "not-a-token")
	if got.Cursor["user_id"] != "mia" || got.Cursor["x"] != 42.0 || got.Cursor["y"] != 7.0 {
		t.Errorf("page A saw cursor %v, want mia at 42,7", got.Cursor)
	}
	if got.Closed["code"] != 4401.0 || got.Closed["reason"] != "unauthorized" {
		t.Errorf("bad-token page closed with %v, want 4401 unauthorized", got.Closed)
	}
	if got.Protocol != "m4sh.presence.v1" {
		t.Errorf("selected protocol %q, want m4sh.presence.v1", got.Protocol)
	}
}
