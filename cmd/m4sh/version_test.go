package main

import (
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	spec "github.com/m4sh/backend/gen/api"
)

// TestVersion: --version and version print the OpenAPI document's version and a commit, even
// with a configuration that would stop every other command.
func TestVersion(t *testing.T) {
	t.Parallel()
	doc, err := spec.GetSpec()
	if err != nil {
		t.Fatal(err)
	}
	want := regexp.MustCompile(`^m4sh ` + regexp.QuoteMeta(doc.Info.Version) + ` \(commit ([0-9a-f]{40}(-dirty)?|unknown)\)\n$`)
	for _, arg := range []string{"--version", "version"} {
		out, err := runCmd(t, map[string]string{"LOG_LEVEL": "loud"}, arg)
		if err != nil || !want.MatchString(out) {
			t.Errorf("run(%s) = %q, %v; want %s", arg, out, err, want)
		}
	}
}

// TestHealthcheck: exit status 0 only for a 200 from /healthz, by default on HTTP_ADDR's
// port at loopback.
func TestHealthcheck(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	if _, err := runCmd(t, map[string]string{"HTTP_ADDR": ":" + port}, "healthcheck"); err != nil {
		t.Errorf("healthcheck on HTTP_ADDR :%s = %v, want success", port, err)
	}
	if _, err := runCmd(t, nil, "healthcheck", "-url", srv.URL+"/readyz"); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("healthcheck of a 503 = %v, want an error naming 503", err)
	}
	srv.Close()
	if _, err := runCmd(t, nil, "healthcheck", "-url", srv.URL+"/healthz"); err == nil {
		t.Error("healthcheck of a closed server succeeded")
	}
}
