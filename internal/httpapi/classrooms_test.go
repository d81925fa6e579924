package httpapi_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/m4sh/backend/gen/api"
	"github.com/m4sh/backend/internal/apptest"
)

type apiCase struct {
	name       string
	method     string
	path       string
	token      string
	body       any
	wantStatus int
	wantCode   string // problem code for 4xx
	wantField  string // for validation errors: a field the problem must name
}

func runCases(t *testing.T, e *apptest.Env, cases []apiCase) {
	t.Helper()
	for _, tc := range cases {
		r := e.Do(apptest.Request{Method: tc.method, Path: tc.path, Token: tc.token, Body: tc.body})
		if r.Status != tc.wantStatus {
			t.Errorf("%s: %s %s = %d, want %d: %s", tc.name, tc.method, tc.path, r.Status, tc.wantStatus, r.Body)
			continue
		}
		if tc.wantCode != "" {
			assertProblem(t, r, tc.wantStatus, tc.wantCode)
		}
		if tc.wantField != "" && !strings.Contains(string(r.Body), `"field":"`+tc.wantField+`"`) {
			t.Errorf("%s: problem does not name field %s: %s", tc.name, tc.wantField, r.Body)
		}
	}
}

func TestClassroomCreate(t *testing.T) {
	t.Parallel()
	f := apptest.NewClassrooms(t, nil)
	p := "/api/v1/classrooms/"
	runCases(t, f.Env, []apiCase{
		{"valid", "POST", p, f.Sam, map[string]any{"title": "Geometry"}, 201, "", ""},
		{"missing title", "POST", p, f.Sam, map[string]any{}, 400, "validation_error", "body.title"},
		{"empty title", "POST", p, f.Sam, map[string]any{"title": ""}, 400, "validation_error", "body.title"},
		{"blank title", "POST", p, f.Sam, map[string]any{"title": "   "}, 400, "validation_error", "body.title"},
		{"title too long", "POST", p, f.Sam, map[string]any{"title": strings.Repeat("x", 201)}, 400, "validation_error", "body.title"},
		{"title wrong type", "POST", p, f.Sam, map[string]any{"title": 42}, 400, "validation_error", "body.title"},
		{"unknown property", "POST", p, f.Sam, map[string]any{"title": "x", "tutor_id": "sam"}, 400, "validation_error", ""},
		{"invalid JSON", "POST", p, f.Sam, "{", 400, "validation_error", ""},
		{"no token", "POST", p, "", map[string]any{"title": "x"}, 401, "unauthorized", ""},
	})
	r := f.Env.Do(apptest.Request{Method: "POST", Path: p, Token: f.Sam, Body: map[string]any{"title": "  Trimmed  "}})
	var c api.Classroom
	r.Decode(t, &c)
	if c.Title != "Trimmed" || c.TutorId != "sam" {
		t.Errorf("created %+v, want title Trimmed and tutor sam", c)
	}
}

func TestClassroomGetAndList(t *testing.T) {
	t.Parallel()
	f := apptest.NewClassrooms(t, nil)
	c := "/api/v1/classrooms/" + f.Class.Id.String() + "/"
	runCases(t, f.Env, []apiCase{
		{"tutor", "GET", c, f.Tina, nil, 200, "", ""},
		{"member", "GET", c, f.Mia, nil, 200, "", ""},
		{"stranger", "GET", c, f.Sam, nil, 404, "not_found", ""},
		{"unknown id", "GET", "/api/v1/classrooms/00000000-0000-4000-8000-000000000000/", f.Tina, nil, 404, "not_found", ""},
		{"malformed id", "GET", "/api/v1/classrooms/nope/", f.Tina, nil, 400, "validation_error", "path.class_id"},
		{"no token", "GET", c, "", nil, 401, "unauthorized", ""},
		{"list limit 0", "GET", "/api/v1/classrooms/?limit=0", f.Tina, nil, 400, "validation_error", "query.limit"},
		{"list limit 101", "GET", "/api/v1/classrooms/?limit=101", f.Tina, nil, 400, "validation_error", "query.limit"},
		{"list bad cursor chars", "GET", "/api/v1/classrooms/?cursor=%21%21", f.Tina, nil, 400, "validation_error", "query.cursor"},
		{"list forged cursor", "GET", "/api/v1/classrooms/?cursor=abc", f.Tina, nil, 400, "validation_error", "query.cursor"},
	})
	// Listing: each user sees exactly the classrooms where they are tutor or member.
	for tok, want := range map[string]int{f.Tina: 1, f.Mia: 1, f.Sam: 0, f.Oscar: 1} {
		var pg api.ClassroomPage
		f.Env.Do(apptest.Request{Method: "GET", Path: "/api/v1/classrooms/", Token: tok}).Decode(t, &pg)
		if len(pg.Items) != want || pg.NextCursor != nil {
			t.Errorf("list = %d items (next %v), want %d and no next page", len(pg.Items), pg.NextCursor, want)
		}
	}
	// Pagination: 5 classrooms in pages of 2 → 2, 2, 1, newest first, no duplicates.
	for i := range 4 {
		apptest.MustCreate[api.Classroom](t, f.Env, f.Tina, "/api/v1/classrooms/", map[string]any{"title": fmt.Sprintf("C%d", i)})
	}
	var seen []string
	cursor := ""
	for range 3 {
		path := "/api/v1/classrooms/?limit=2"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		var pg api.ClassroomPage
		f.Env.Do(apptest.Request{Method: "GET", Path: path, Token: f.Tina}).Decode(t, &pg)
		for _, c := range pg.Items {
			seen = append(seen, c.Title)
		}
		if pg.NextCursor == nil {
			break
		}
		cursor = *pg.NextCursor
	}
	if got := strings.Join(seen, ","); got != "C3,C2,C1,C0,Algebra" {
		t.Errorf("paged titles = %s, want C3,C2,C1,C0,Algebra", got)
	}
}

func TestClassroomMembers(t *testing.T) {
	t.Parallel()
	f := apptest.NewClassrooms(t, map[string]string{"CLASSROOM_MAX_MEMBERS": "3"})
	m := "/api/v1/classrooms/" + f.Class.Id.String() + "/members/"
	runCases(t, f.Env, []apiCase{
		{"list as tutor", "GET", m, f.Tina, nil, 200, "", ""},
		{"list as member", "GET", m, f.Mia, nil, 200, "", ""},
		{"list as stranger", "GET", m, f.Sam, nil, 404, "not_found", ""},
		{"add new", "POST", m, f.Tina, map[string]any{"user_id": "neo"}, 201, "", ""},
		{"add again is idempotent", "POST", m, f.Tina, map[string]any{"user_id": "neo"}, 200, "", ""},
		{"member adds", "POST", m, f.Mia, map[string]any{"user_id": "zed"}, 403, "forbidden", ""},
		{"stranger adds", "POST", m, f.Sam, map[string]any{"user_id": "sam"}, 404, "not_found", ""},
		{"stranger adds to other classroom", "POST", "/api/v1/classrooms/" + f.Other.Id.String() + "/members/", f.Tina, map[string]any{"user_id": "tina"}, 404, "not_found", ""},
		{"tutor adds self", "POST", m, f.Tina, map[string]any{"user_id": "tina"}, 409, "conflict", ""},
		{"missing user_id", "POST", m, f.Tina, map[string]any{}, 400, "validation_error", "body.user_id"},
		{"empty user_id", "POST", m, f.Tina, map[string]any{"user_id": ""}, 400, "validation_error", "body.user_id"},
		{"user_id too long", "POST", m, f.Tina, map[string]any{"user_id": strings.Repeat("u", 129)}, 400, "validation_error", "body.user_id"},
		{"add third", "POST", m, f.Tina, map[string]any{"user_id": "ann"}, 201, "", ""},
		{"over the cap", "POST", m, f.Tina, map[string]any{"user_id": "bob"}, 409, "conflict", ""},
		{"member removes", "DELETE", m + "neo/", f.Mia, nil, 403, "forbidden", ""},
		{"stranger removes", "DELETE", m + "neo/", f.Sam, nil, 404, "not_found", ""},
		{"tutor removes", "DELETE", m + "neo/", f.Tina, nil, 204, "", ""},
		{"remove again", "DELETE", m + "neo/", f.Tina, nil, 404, "not_found", ""},
		{"removed member can no longer read", "GET", m, f.Env.Token("neo"), nil, 404, "not_found", ""},
	})
	var roster api.MemberList
	f.Env.Do(apptest.Request{Method: "GET", Path: m, Token: f.Mia}).Decode(t, &roster)
	var got []string
	for _, x := range roster.Items {
		got = append(got, x.UserId+":"+string(x.Role))
	}
	if s := strings.Join(got, ","); s != "tina:tutor,mia:student,ann:student" {
		t.Errorf("roster = %s, want tina:tutor,mia:student,ann:student", s)
	}
	if roster.Items[0].Name != "Tina" {
		t.Errorf("tutor name = %q, want Tina", roster.Items[0].Name)
	}
}

func TestClassroomSessions(t *testing.T) {
	t.Parallel()
	f := apptest.NewClassrooms(t, nil)
	base := "/api/v1/classrooms/" + f.Class.Id.String() + "/sessions/"
	one := base + f.Session.Id.String() + "/"
	runCases(t, f.Env, []apiCase{
		{"create with title", "POST", base, f.Tina, map[string]any{"title": "Week 2"}, 201, "", ""},
		{"create without body", "POST", base, f.Tina, nil, 201, "", ""},
		{"member creates", "POST", base, f.Mia, nil, 403, "forbidden", ""},
		{"stranger creates", "POST", base, f.Sam, nil, 404, "not_found", ""},
		{"title too long", "POST", base, f.Tina, map[string]any{"title": strings.Repeat("x", 201)}, 400, "validation_error", "body.title"},
		{"list as member", "GET", base, f.Mia, nil, 200, "", ""},
		{"list as stranger", "GET", base, f.Sam, nil, 404, "not_found", ""},
		{"get as member", "GET", one, f.Mia, nil, 200, "", ""},
		{"get as stranger", "GET", one, f.Sam, nil, 404, "not_found", ""},
		{"get another classroom's session", "GET", base + f.OtherSession.Id.String() + "/", f.Tina, nil, 404, "not_found", ""},
		{"malformed session id", "GET", base + "x/", f.Tina, nil, 400, "validation_error", "path.session_id"},
		{"member ends", "PATCH", one, f.Mia, map[string]any{"status": "ended"}, 403, "forbidden", ""},
		{"stranger ends", "PATCH", one, f.Sam, map[string]any{"status": "ended"}, 404, "not_found", ""},
		{"reopen is not a transition", "PATCH", one, f.Tina, map[string]any{"status": "active"}, 400, "validation_error", "body.status"},
	})
	var s1, s2 api.ClassroomSession
	f.Env.Do(apptest.Request{Method: "PATCH", Path: one, Token: f.Tina, Body: map[string]any{"status": "ended"}}).Decode(t, &s1)
	f.Env.Do(apptest.Request{Method: "PATCH", Path: one, Token: f.Tina, Body: map[string]any{"status": "ended"}}).Decode(t, &s2)
	if s1.Status != api.SessionStatusEnded || s1.EndedAt == nil || s2.EndedAt == nil || !s1.EndedAt.Equal(*s2.EndedAt) {
		t.Errorf("ending twice: %+v then %+v, want ended once with the same ended_at", s1, s2)
	}
	var pg api.ClassroomSessionPage
	f.Env.Do(apptest.Request{Method: "GET", Path: base + "?limit=2", Token: f.Mia}).Decode(t, &pg)
	if len(pg.Items) != 2 || pg.NextCursor == nil || pg.Items[0].Title != "" || pg.Items[1].Title != "Week 2" {
		t.Errorf("first page = %+v, want the 2 newest sessions and a cursor", pg)
	}
}
