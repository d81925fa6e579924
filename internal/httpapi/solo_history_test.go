package httpapi_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/m4sh/backend/internal/apptest"
)

// TestSoloSnapshotPinRestore drives pin, unpin and restore through the full handler: the
// listing shows stored_bytes, pinned, label and restored_from; a restore is a 201 revision
// that adds nothing; bad input is 400, a missing revision or someone else's session 404.
func TestSoloSnapshotPinRestore(t *testing.T) {
	t.Parallel()
	env := setupSolo(t, nil)
	tok, other := env.Token("alice"), env.Token("mallory")
	sid := env.session(t, tok)
	v1, v2 := noise(31, 3000), noise(32, 2000)
	for _, v := range [][]byte{v1, v2} {
		if r := env.upload(t, tok, sid, v, nil); r.Status != http.StatusCreated {
			t.Fatalf("upload = %d: %s", r.Status, r.Body)
		}
	}
	base := "/api/v1/solo/sessions/" + sid + "/snapshots/"
	do := func(tok, method, path string, body any) apptest.Response {
		return env.Do(apptest.Request{Method: method, Path: base + path, Token: tok, Body: body})
	}

	r := do(tok, http.MethodPost, "1/pin/", map[string]any{"label": "  first draft "})
	if r.Status != http.StatusOK {
		t.Fatalf("pin = %d: %s", r.Status, r.Body)
	}
	if p := r.JSON(t); p["pinned"] != true || p["label"] != "first draft" || num(p["stored_bytes"]) != 3000 || num(p["size_bytes"]) != 3000 {
		t.Errorf("pinned revision = %v", p)
	}
	r = do(tok, http.MethodPost, "2/restore/", nil)
	if r.Status != http.StatusOK || r.JSON(t)["revision"] != 2.0 {
		t.Errorf("restoring the newest content = %d %s, want 200 with revision 2", r.Status, r.Body)
	}
	r = do(tok, http.MethodPost, "1/restore/", nil)
	if r.Status != http.StatusCreated {
		t.Fatalf("restore = %d: %s", r.Status, r.Body)
	}
	if p := r.JSON(t); p["revision"] != 3.0 || p["restored_from"] != 1.0 || num(p["stored_bytes"]) != 0 || p["sha256"] != sha(v1) ||
		num(p["storage"].(map[string]any)["used"]) != 5000 {
		t.Errorf("restored revision = %v", p)
	}
	latest := env.Do(apptest.Request{Method: http.MethodGet, Path: "/api/v1/solo/sessions/" + sid + "/snapshot/latest/", Token: tok})
	if latest.Status != http.StatusOK || !bytes.Equal(latest.Body, v1) || latest.Header.Get("ETag") != `"`+sha(v1)+`"` || latest.Header.Get("X-Snapshot-Revision") != "3" {
		t.Errorf("latest after restore = %d, %d bytes, ETag %s", latest.Status, len(latest.Body), latest.Header.Get("ETag"))
	}
	list := env.Do(apptest.Request{Method: http.MethodGet, Path: base, Token: tok})
	items := list.JSON(t)["items"].([]any)
	if len(items) != 3 {
		t.Fatalf("listing = %s", list.Body)
	}
	first, last := items[0].(map[string]any), items[2].(map[string]any)
	if first["restored_from"] != 1.0 || first["pinned"] != false || last["pinned"] != true || last["label"] != "first draft" {
		t.Errorf("listing = %s", list.Body)
	}
	if _, ok := items[1].(map[string]any)["label"]; ok {
		t.Errorf("an unpinned revision lists a label: %v", items[1])
	}
	r = do(tok, http.MethodDelete, "1/pin/", nil)
	if r.Status != http.StatusOK || r.JSON(t)["pinned"] != false || r.JSON(t)["label"] != nil {
		t.Errorf("unpin = %d %s", r.Status, r.Body)
	}

	tests := []struct {
		name   string
		tok    string
		method string
		path   string
		body   any
		status int
		code   string
	}{
		{"pin of a missing revision", tok, http.MethodPost, "9/pin/", nil, 404, "not_found"},
		{"unpin of a missing revision", tok, http.MethodDelete, "9/pin/", nil, 404, "not_found"},
		{"restore of a missing revision", tok, http.MethodPost, "9/restore/", nil, 404, "not_found"},
		{"pin in another user's session", other, http.MethodPost, "1/pin/", nil, 404, "not_found"},
		{"restore in another user's session", other, http.MethodPost, "1/restore/", nil, 404, "not_found"},
		{"revision 0", tok, http.MethodPost, "0/pin/", nil, 400, "validation_error"},
		{"label too long", tok, http.MethodPost, "1/pin/", map[string]any{"label": strings.Repeat("x", 201)}, 400, "validation_error"},
		{"empty label", tok, http.MethodPost, "1/pin/", map[string]any{"label": ""}, 400, "validation_error"},
		{"invisible label", tok, http.MethodPost, "1/pin/", map[string]any{"label": "\u200b\t"}, 400, "validation_error"},
		{"unknown field", tok, http.MethodPost, "1/pin/", map[string]any{"labels": "x"}, 400, "validation_error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertProblem(t, do(tt.tok, tt.method, tt.path, tt.body), tt.status, tt.code)
		})
	}
	env.assertInvariant(t, "alice", 5000)
}
