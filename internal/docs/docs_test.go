package docs

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/m4sh/backend/asyncapi"
	"github.com/m4sh/backend/gen/api"
)

func newHandler(t *testing.T) func(path string, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	doc, err := api.GetSpec()
	if err != nil {
		t.Fatal(err)
	}
	h, err := Handler(doc, asyncapi.YAML)
	if err != nil {
		t.Fatal(err)
	}
	return func(path string, header ...string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", path, nil)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
}

// TestPages: /docs loads Redoc and /docs/websocket the AsyncAPI component, both from this
// origin only (CSP), with the bar linking both documents; only the AsyncAPI page allows eval.
func TestPages(t *testing.T) {
	t.Parallel()
	get := newHandler(t)
	for _, tt := range []struct{ path, script, style string }{
		{"/docs", "/docs/assets/vendor/redoc.standalone.js", ""},
		{"/docs/", "/docs/assets/vendor/redoc.standalone.js", ""},
		{"/docs/websocket", "/docs/assets/vendor/asyncapi.standalone.js", "/docs/assets/vendor/asyncapi.min.css"},
	} {
		rec := get(tt.path)
		body := rec.Body.String()
		if rec.Code != 200 || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") {
			t.Fatalf("GET %s = %d %s", tt.path, rec.Code, rec.Header().Get("Content-Type"))
		}
		for _, w := range []string{`<script src="` + tt.script + `?v=` + mustVersion(t) + `"></script>`, `href="/docs/websocket"`, `href="/docs"`,
			`href="/openapi.yaml"`, `href="/asyncapi.yaml"`, `href="/docs/plain"`, `href="/demo/"`, "v" + mustVersion(t)} {
			if !strings.Contains(body, w) {
				t.Errorf("GET %s does not contain %q", tt.path, w)
			}
		}
		if tt.style != "" && !strings.Contains(body, tt.style) {
			t.Errorf("GET %s does not load %s", tt.path, tt.style)
		}
		csp := rec.Header().Get("Content-Security-Policy")
		for _, w := range []string{"default-src 'none'", "script-src 'self'", "frame-ancestors 'none'", "connect-src 'self'"} {
			if !strings.Contains(csp, w) {
				t.Errorf("GET %s Content-Security-Policy = %q, want %q", tt.path, csp, w)
			}
		}
		if eval := strings.Contains(csp, "'unsafe-eval'"); eval != (tt.path == "/docs/websocket") {
			t.Errorf("GET %s Content-Security-Policy = %q: 'unsafe-eval' only on the AsyncAPI page", tt.path, csp)
		}
		if rec.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s without nosniff", tt.path)
		}
	}
}

// TestPlainPage: the page without JavaScript shows every OpenAPI operation and the AsyncAPI
// channel, messages and schemas.
func TestPlainPage(t *testing.T) {
	t.Parallel()
	rec := newHandler(t)("/docs/plain")
	if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "script-src") {
		t.Errorf("Content-Security-Policy = %q, want no scripts at all", csp)
	}
	page := rec.Body.String()
	for _, w := range []string{"ClassroomCreate", "SoloSnapshotCreate", "TelemetryIngest",
		"/ws/classroom/{class_id}/session/{session_id}/", "presence.snapshot", "<code>cursors</code>",
		`id="ws-schema-CursorBatch"`, "4429", `href="/demo/"`, `href="/docs"`} {
		if !strings.Contains(page, w) {
			t.Errorf("/docs/plain does not contain %q", w)
		}
	}
	doc, err := api.GetSpec()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Handler(doc, []byte("operations: {x: {messages: [{$ref: '#/components/messages/nope'}]}}")); err == nil {
		t.Error("Handler accepted an AsyncAPI document with a dangling message reference")
	}
}

// TestAssets: the renderers' files are served with their types, gzip-compressed when asked
// (and byte-identical after inflating), and nothing outside assets/ is reachable.
func TestAssets(t *testing.T) {
	t.Parallel()
	get := newHandler(t)
	raw := get("/docs/assets/vendor/redoc.standalone.js")
	if raw.Code != 200 || raw.Header().Get("Content-Type") != "text/javascript; charset=utf-8" || raw.Header().Get("Content-Encoding") != "" {
		t.Fatalf("redoc bundle = %d %v", raw.Code, raw.Header())
	}
	gz := get("/docs/assets/vendor/redoc.standalone.js", "Accept-Encoding", "gzip, br")
	if gz.Header().Get("Content-Encoding") != "gzip" || gz.Body.Len() >= raw.Body.Len()/2 {
		t.Fatalf("gzip: Content-Encoding %q, %d of %d bytes", gz.Header().Get("Content-Encoding"), gz.Body.Len(), raw.Body.Len())
	}
	zr, err := gzip.NewReader(gz.Body)
	if err != nil {
		t.Fatal(err)
	}
	inflated, err := io.ReadAll(zr)
	if err != nil || !bytes.Equal(inflated, raw.Body.Bytes()) {
		t.Fatalf("inflated gzip differs from the file (%v)", err)
	}
	if css := get("/docs/assets/docs.css"); css.Code != 200 || css.Header().Get("Content-Type") != "text/css; charset=utf-8" {
		t.Errorf("docs.css = %d %q", css.Code, css.Header().Get("Content-Type"))
	}
	for _, p := range []string{"/docs/assets/", "/docs/assets/nope.js", "/docs/assets/../docs.go", "/docs/assets/%2e%2e/docs.go",
		"/docs/assets/vendor", "/docs/nope", "/docs/websocket/x"} {
		// ServeMux redirects unclean paths to their clean form, which is then a 404.
		if rec := get(p); rec.Code != 404 && rec.Code != 301 && rec.Code != 307 {
			t.Errorf("GET %s = %d, want 404 (or a redirect to the clean path)", p, rec.Code)
		} else if strings.Contains(rec.Body.String(), "package docs") {
			t.Errorf("GET %s served Go source", p)
		}
	}
}

// TestVendorVersions: the committed renderer bundles are the versions scripts/docs pins
// (`make docs-assets` writes assets/vendor/VERSIONS from what it installed).
func TestVendorVersions(t *testing.T) {
	t.Parallel()
	var pkg struct {
		DevDependencies map[string]string `json:"devDependencies"`
	}
	b, err := os.ReadFile("../../scripts/docs/package.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &pkg); err != nil {
		t.Fatal(err)
	}
	v, err := assets.ReadFile("assets/vendor/VERSIONS")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(v)), "\n") {
		name, version, _ := strings.Cut(line, " ")
		got[name] = version
	}
	if len(got) != len(pkg.DevDependencies) {
		t.Errorf("VERSIONS %v, scripts/docs pins %v", got, pkg.DevDependencies)
	}
	for name, want := range pkg.DevDependencies {
		if got[name] != want {
			t.Errorf("assets/vendor has %s %q, scripts/docs/package.json pins %q: run make docs-assets", name, got[name], want)
		}
	}
}

func mustVersion(t *testing.T) string {
	t.Helper()
	doc, err := api.GetSpec()
	if err != nil {
		t.Fatal(err)
	}
	return doc.Info.Version
}
