package hostile_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/m4sh/backend/gen/api"
	"github.com/m4sh/backend/internal/apptest"
)

// TestNULAndTrailingData: on every JSON route, a body with data after its JSON value or
// with U+0000 in a string (value or member name), and on every route with a path
// parameter, U+0000 or a byte that is not UTF-8 in that parameter, are 400
// validation_error — never accepted, never a 5xx.
func TestNULAndTrailingData(t *testing.T) {
	t.Parallel()
	f := apptest.NewClassrooms(t, map[string]string{"API_WRITE_RATE_PER_MIN": "100000"})
	e := f.Env
	solo := apptest.MustCreate[api.SoloSession](t, e, f.Tina, "/api/v1/solo/sessions/", map[string]any{"title": "s"})
	c := "/api/v1/classrooms/" + f.Class.Id.String()
	bodies := []struct {
		method, path, valid string
	}{
		{http.MethodPost, "/api/v1/classrooms/", `{"title":"x"}`},
		{http.MethodPost, c + "/members/", `{"user_id":"newcomer"}`},
		{http.MethodPost, c + "/sessions/", `{"title":"x"}`},
		{http.MethodPatch, c + "/sessions/" + f.Session.Id.String() + "/", `{"status":"ended"}`},
		{http.MethodPost, "/api/v1/solo/sessions/", `{"title":"x"}`},
		{http.MethodPost, "/api/v1/logs/telemetry/", `{"name":"x"}`},
	}
	for _, b := range bodies {
		key, val, _ := strings.Cut(strings.Trim(b.valid, "{}"), ":")
		bad := map[string]string{
			"trailing garbage": b.valid + "xyz",
			"second value":     b.valid + " {}",
			"extra brace":      b.valid + "}",
			"NUL in value":     "{" + key + `:"a\u0000b"}`,
			"NUL in key":       `{"x\u0000y":` + val + "}",
		}
		for name, body := range bad {
			r := e.Do(apptest.Request{Method: b.method, Path: b.path, Token: f.Tina, Body: body})
			if r.Status != http.StatusBadRequest || code(r.Body) != "validation_error" {
				t.Errorf("%s %s with %s %q = %d %s, want 400 validation_error", b.method, b.path, name, body, r.Status, r.Body)
			}
		}
	}
	classID, sessID, soloID := f.Class.Id.String(), f.Session.Id.String(), solo.Id.String()
	routes := []struct{ method, path string }{
		{http.MethodGet, "/api/v1/classrooms/{c}/"},
		{http.MethodGet, "/api/v1/classrooms/{c}/members/"},
		{http.MethodDelete, "/api/v1/classrooms/{c}/members/{u}/"},
		{http.MethodGet, "/api/v1/classrooms/{c}/sessions/"},
		{http.MethodGet, "/api/v1/classrooms/{c}/sessions/{s}/"},
		{http.MethodGet, "/api/v1/classrooms/{c}/sessions/{s}/presence/"},
		{http.MethodGet, "/api/v1/solo/sessions/{o}/"},
		{http.MethodGet, "/api/v1/solo/sessions/{o}/snapshot/latest/"},
		{http.MethodGet, "/api/v1/solo/sessions/{o}/snapshots/"},
		{http.MethodGet, "/api/v1/solo/sessions/{o}/snapshots/{r}/"},
	}
	good := map[string]string{"{c}": classID, "{s}": sessID, "{u}": "mia", "{o}": soloID, "{r}": "1"}
	for _, rt := range routes {
		for param := range good {
			if !strings.Contains(rt.path, param) {
				continue
			}
			for _, inject := range []string{"%00", "%FF", "a%00b"} {
				path := rt.path
				for p, v := range good {
					if p == param {
						v = inject
						if p != "{u}" && p != "{r}" { // keep the shape of the id around the byte
							v = good[p][:8] + inject + good[p][8+len(inject)-2:]
						}
					}
					path = strings.ReplaceAll(path, p, v)
				}
				r := e.Do(apptest.Request{Method: rt.method, Path: path, Token: f.Tina})
				if r.Status != http.StatusBadRequest || code(r.Body) != "validation_error" {
					t.Errorf("%s %s = %d %s, want 400 validation_error", rt.method, path, r.Status, r.Body)
				}
			}
		}
	}
	for _, q := range []string{"cursor=%00", "limit=1%00", "x%00=1", "cursor=%FF"} {
		path := "/api/v1/classrooms/?" + q
		r := e.Do(apptest.Request{Method: http.MethodGet, Path: path, Token: f.Tina})
		if r.Status != http.StatusBadRequest || code(r.Body) != "validation_error" {
			t.Errorf("GET %s = %d %s, want 400 validation_error", path, r.Status, r.Body)
		}
	}
}

// TestIdentifiersAndText: the one user-id rule on POST .../members/ and DELETE
// .../members/{user_id}/, titles cleaned of control and format characters, empty after
// cleaning refused, and a forged cursor refused.
func TestIdentifiersAndText(t *testing.T) {
	t.Parallel()
	f := apptest.NewClassrooms(t, map[string]string{"API_WRITE_RATE_PER_MIN": "100000"})
	e := f.Env
	members := "/api/v1/classrooms/" + f.Class.Id.String() + "/members/"
	for _, id := range []string{"bob\u200b", "\u202eadmin", "a\u0007b", " bob", "bob ", strings.Repeat("x", 129), "\ufeffbob"} {
		r := e.Do(apptest.Request{Method: http.MethodPost, Path: members, Token: f.Tina, Body: map[string]any{"user_id": id}})
		if r.Status != http.StatusBadRequest || code(r.Body) != "validation_error" {
			t.Errorf("add member %q = %d %s, want 400 validation_error", id, r.Status, r.Body)
		}
	}
	r := e.Do(apptest.Request{Method: http.MethodPost, Path: members, Token: f.Tina, Body: map[string]any{"user_id": strings.Repeat("é", 64)}})
	if r.Status != http.StatusCreated {
		t.Errorf("add member of 128 bytes = %d %s, want 201", r.Status, r.Body)
	}
	r = e.Do(apptest.Request{Method: http.MethodDelete, Path: members + "%E2%80%AEadmin/", Token: f.Tina})
	if r.Status != http.StatusBadRequest || code(r.Body) != "validation_error" {
		t.Errorf("remove member with a bidi override = %d %s, want 400", r.Status, r.Body)
	}
	cl := apptest.MustCreate[api.Classroom](t, e, f.Tina, "/api/v1/classrooms/", map[string]any{"title": "  Phy\u200bsics\u202e 101 \u0007"})
	if cl.Title != "Physics 101" {
		t.Errorf("classroom title = %q, want %q", cl.Title, "Physics 101")
	}
	sessions := "/api/v1/classrooms/" + f.Class.Id.String() + "/sessions/"
	for _, c := range []struct{ path, title string }{
		{"/api/v1/classrooms/", "\u200b\u200b"},
		{"/api/v1/classrooms/", "\u202e \u2066"},
		{sessions, " \u200b "},
		{"/api/v1/solo/sessions/", "\u00ad"},
	} {
		r := e.Do(apptest.Request{Method: http.MethodPost, Path: c.path, Token: f.Tina, Body: map[string]any{"title": c.title}})
		if r.Status != http.StatusBadRequest || code(r.Body) != "validation_error" {
			t.Errorf("POST %s title %q = %d %s, want 400 validation_error", c.path, c.title, r.Status, r.Body)
		}
	}
	solo := apptest.MustCreate[api.SoloSession](t, e, f.Tina, "/api/v1/solo/sessions/", map[string]any{"title": "\tNotes\u200d"})
	if solo.Title != "Notes" {
		t.Errorf("solo title = %q, want Notes", solo.Title)
	}
	// A cursor of the right shape whose time is out of any row's range.
	for _, cur := range []string{"f_________wAAAAAAAAAAAAAAAAAAAAAA", "gAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "__________8AAAAAAAAAAAAAAAAAAAAA"} {
		for _, path := range []string{"/api/v1/classrooms/", sessions, "/api/v1/solo/sessions/"} {
			r := e.Do(apptest.Request{Method: http.MethodGet, Path: path + "?cursor=" + cur, Token: f.Tina})
			if r.Status != http.StatusBadRequest || code(r.Body) != "validation_error" {
				t.Errorf("GET %s?cursor=%s = %d %s, want 400 validation_error", path, cur, r.Status, r.Body)
			}
		}
	}
}
