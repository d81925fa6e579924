package apptest

import (
	"net/http"
	"testing"

	"github.com/m4sh/backend/gen/api"
)

// Classrooms is the shared classroom fixture: tina tutors "Algebra" with member mia and an
// active session; oscar tutors another classroom with its own session; sam is a stranger.
// The string fields are the users' tokens.
type Classrooms struct {
	Env                   *Env
	Tina, Mia, Sam, Oscar string
	Class, Other          api.Classroom
	Session, OtherSession api.ClassroomSession
}

// NewClassrooms starts a service (env overrides configuration) and creates the fixture
// through the API.
func NewClassrooms(t testing.TB, env map[string]string) Classrooms {
	t.Helper()
	e := New(t, env)
	f := Classrooms{Env: e, Tina: e.Token("tina"), Mia: e.Token("mia"), Sam: e.Token("sam"), Oscar: e.Token("oscar")}
	f.Class = MustCreate[api.Classroom](t, e, f.Tina, "/api/v1/classrooms/", map[string]any{"title": "Algebra"})
	f.Other = MustCreate[api.Classroom](t, e, f.Oscar, "/api/v1/classrooms/", map[string]any{"title": "Oscar's"})
	MustCreate[api.Member](t, e, f.Tina, "/api/v1/classrooms/"+f.Class.Id.String()+"/members/", map[string]any{"user_id": "mia"})
	f.Session = MustCreate[api.ClassroomSession](t, e, f.Tina, "/api/v1/classrooms/"+f.Class.Id.String()+"/sessions/", map[string]any{"title": "Week 1"})
	f.OtherSession = MustCreate[api.ClassroomSession](t, e, f.Oscar, "/api/v1/classrooms/"+f.Other.Id.String()+"/sessions/", nil)
	return f
}

// MustCreate POSTs body to path as tok, requires 201 and decodes the result.
func MustCreate[T any](t testing.TB, e *Env, tok, path string, body any) T {
	t.Helper()
	r := e.Do(Request{Method: http.MethodPost, Path: path, Token: tok, Body: body})
	if r.Status != http.StatusCreated {
		t.Fatalf("POST %s = %d, want 201: %s", path, r.Status, r.Body)
	}
	var v T
	r.Decode(t, &v)
	return v
}
