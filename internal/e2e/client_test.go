package e2e_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/m4sh/backend/gen/client"
	"github.com/m4sh/backend/internal/apptest"
)

// newClient returns the generated client acting as user; every response it receives is
// validated against the OpenAPI document and its operation recorded for the coverage gate.
func newClient(t *testing.T, env *apptest.Env, user string) *client.ClientWithResponses {
	t.Helper()
	tok := env.Token(user)
	c, err := client.NewClientWithResponses(env.Server.URL, client.WithHTTPClient(env.HTTPClient()), client.WithRequestEditorFn(func(_ context.Context, r *http.Request) error {
		r.Header.Set("Authorization", "Bearer "+tok)
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestClassroomFlowThroughGoClient walks a tutor and a student through the classroom API with
// the generated client.
func TestClassroomFlowThroughGoClient(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := apptest.New(t, nil)
	tutor, student := newClient(t, env, "tutor"), newClient(t, env, "student")

	me, err := student.MeGetWithResponse(ctx)
	if err != nil || me.JSON200 == nil || me.JSON200.UserId != "student" {
		t.Fatalf("MeGet = %+v, %v", me, err)
	}
	created, err := tutor.ClassroomCreateWithResponse(ctx, client.ClassroomCreateJSONRequestBody{Title: "Physics"})
	if err != nil || created.JSON201 == nil {
		t.Fatalf("ClassroomCreate = %d %s, %v", created.StatusCode(), created.Body, err)
	}
	class := created.JSON201.Id
	if r, err := student.ClassroomGetWithResponse(ctx, class); err != nil || r.ApplicationproblemJSON404 == nil {
		t.Fatalf("stranger ClassroomGet = %d, %v; want 404", r.StatusCode(), err)
	}
	added, err := tutor.ClassroomMemberAddWithResponse(ctx, class, client.ClassroomMemberAddJSONRequestBody{UserId: "student"})
	if err != nil || added.JSON201 == nil || added.JSON201.Role != client.Student {
		t.Fatalf("ClassroomMemberAdd = %d %s, %v", added.StatusCode(), added.Body, err)
	}
	title := "Lesson 1"
	sess, err := tutor.ClassroomSessionCreateWithResponse(ctx, class, client.ClassroomSessionCreateJSONRequestBody{Title: &title})
	if err != nil || sess.JSON201 == nil || sess.JSON201.Status != client.SessionStatusActive {
		t.Fatalf("ClassroomSessionCreate = %d %s, %v", sess.StatusCode(), sess.Body, err)
	}
	list, err := student.ClassroomSessionListWithResponse(ctx, class, nil)
	if err != nil || list.JSON200 == nil || len(list.JSON200.Items) != 1 || list.JSON200.Items[0].Title != "Lesson 1" {
		t.Fatalf("ClassroomSessionList = %d %s, %v", list.StatusCode(), list.Body, err)
	}
	end, err := student.ClassroomSessionUpdateWithResponse(ctx, class, sess.JSON201.Id, client.ClassroomSessionUpdateJSONRequestBody{Status: client.ClassroomSessionUpdateStatusEnded})
	if err != nil || end.ApplicationproblemJSON403 == nil {
		t.Fatalf("student ending the session = %d, %v; want 403", end.StatusCode(), err)
	}
}
