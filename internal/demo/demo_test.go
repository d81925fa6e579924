package demo

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// TestServesPageAndModules checks the page, its modules and the built client are served with
// the right types, and /demo redirects to /demo/.
func TestServesPageAndModules(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(Handler())
	defer srv.Close()
	tests := []struct{ path, ctype string }{
		{"/demo/", "text/html"},
		{"/demo/demo.js", "text/javascript"},
		{"/demo/demo.css", "text/css"},
		{"/demo/lib/m4sh/index.js", "text/javascript"},
		{"/demo/lib/openapi-fetch.js", "text/javascript"},
	}
	for _, tt := range tests {
		resp, err := http.Get(srv.URL + tt.path)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), tt.ctype) {
			t.Errorf("GET %s = %d %q, want 200 %s", tt.path, resp.StatusCode, resp.Header.Get("Content-Type"), tt.ctype)
		}
		checkPageHeaders(t, "GET "+tt.path, resp.Header)
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(srv.URL + "/demo")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "/demo/" {
		t.Errorf("GET /demo = %d %q, want 301 /demo/", resp.StatusCode, resp.Header.Get("Location"))
	}
	checkPageHeaders(t, "GET /demo", resp.Header)
}

// checkPageHeaders wants every answer of the demo unsniffable and unframeable (README: Hostile input and load).
func checkPageHeaders(t *testing.T, what string, h http.Header) {
	t.Helper()
	if got := h.Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("%s: X-Content-Type-Options = %q, want nosniff", what, got)
	}
	if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("%s: Content-Security-Policy = %q, want frame-ancestors 'none'", what, csp)
	}
}

var importRE = regexp.MustCompile(`(?m)(?:^|\s)(?:import|export)\b[^"';]*?from\s*"([^"]+)"|import\s*\(\s*"([^"]+)"`)

// TestModulesImportOnlyRelativePaths guards "no CDN, no bundler": a browser resolves only
// relative module specifiers without an import map, so every embedded module must use them.
func TestModulesImportOnlyRelativePaths(t *testing.T) {
	t.Parallel()
	n := 0
	err := fs.WalkDir(assets, "assets", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".js") {
			return err
		}
		b, err := assets.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range importRE.FindAllStringSubmatch(string(b), -1) {
			spec := m[1] + m[2]
			n++
			if !strings.HasPrefix(spec, "./") && !strings.HasPrefix(spec, "../") {
				t.Errorf("%s imports %q: only relative specifiers resolve in the browser", path, spec)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("found no imports at all: the check is broken")
	}
}
