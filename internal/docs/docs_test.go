package docs

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/m4sh/backend/asyncapi"
	"github.com/m4sh/backend/gen/api"
)

// TestPageRendersBothDocuments checks /docs shows every OpenAPI operation and the AsyncAPI
// channel, messages and schemas.
func TestPageRendersBothDocuments(t *testing.T) {
	t.Parallel()
	doc, err := api.GetSpec()
	if err != nil {
		t.Fatal(err)
	}
	h, err := Handler(doc, asyncapi.YAML)
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/docs", nil))
	if got := rec.Header().Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("X-Content-Type-Options = %q, want nosniff", got)
	}
	if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("Content-Security-Policy = %q, want frame-ancestors 'none'", csp)
	}
	body, _ := io.ReadAll(rec.Body)
	page := string(body)
	want := []string{"ClassroomCreate", "SoloSnapshotCreate", "TelemetryIngest",
		"/ws/classroom/{class_id}/session/{session_id}/", "presence.snapshot", "<code>cursors</code>",
		`id="ws-schema-CursorBatch"`, "4429", `href="/demo/"`}
	for _, w := range want {
		if !strings.Contains(page, w) {
			t.Errorf("/docs does not contain %q", w)
		}
	}
	if _, err := Handler(doc, []byte("operations: {x: {messages: [{$ref: '#/components/messages/nope'}]}}")); err == nil {
		t.Error("Handler accepted an AsyncAPI document with a dangling message reference")
	}
}
