package e2e_test

import (
	"bytes"
	"context"
	"net/http"
	"testing"

	"github.com/m4sh/backend/gen/client"
	"github.com/m4sh/backend/internal/apptest"
)

// TestOpsRoutesThroughGoClient calls the public health probes.
func TestOpsRoutesThroughGoClient(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := apptest.New(t, nil)
	c := newClient(t, env, "ops")
	if r, err := c.HealthCheckWithResponse(ctx); err != nil || r.JSON200 == nil || r.JSON200.Status != client.HealthStatusOk {
		t.Fatalf("HealthCheck = %d %s, %v", r.StatusCode(), r.Body, err)
	}
	if r, err := c.ReadyCheckWithResponse(ctx); err != nil || r.JSON200 == nil || r.JSON200.Status != client.HealthStatusOk {
		t.Fatalf("ReadyCheck = %d %s, %v", r.StatusCode(), r.Body, err)
	}
}

// TestClassroomRosterAndPresenceThroughGoClient covers the classroom routes the classroom flow
// does not: listing, the roster, one session, presence and removing a member.
func TestClassroomRosterAndPresenceThroughGoClient(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := apptest.New(t, nil)
	tutor, student := newClient(t, env, "tutor"), newClient(t, env, "student")

	created, err := tutor.ClassroomCreateWithResponse(ctx, client.ClassroomCreateJSONRequestBody{Title: "Chemistry"})
	if err != nil || created.JSON201 == nil {
		t.Fatalf("ClassroomCreate = %d %s, %v", created.StatusCode(), created.Body, err)
	}
	class := created.JSON201.Id
	if r, err := tutor.ClassroomMemberAddWithResponse(ctx, class, client.ClassroomMemberAddJSONRequestBody{UserId: "student"}); err != nil || r.JSON201 == nil {
		t.Fatalf("ClassroomMemberAdd = %d %s, %v", r.StatusCode(), r.Body, err)
	}
	list, err := student.ClassroomListWithResponse(ctx, &client.ClassroomListParams{})
	if err != nil || list.JSON200 == nil || len(list.JSON200.Items) != 1 || list.JSON200.Items[0].Id != class {
		t.Fatalf("ClassroomList = %d %s, %v", list.StatusCode(), list.Body, err)
	}
	roster, err := student.ClassroomMemberListWithResponse(ctx, class)
	if err != nil || roster.JSON200 == nil || len(roster.JSON200.Items) != 2 || roster.JSON200.Items[0].Role != client.Tutor {
		t.Fatalf("ClassroomMemberList = %d %s, %v", roster.StatusCode(), roster.Body, err)
	}
	sess, err := tutor.ClassroomSessionCreateWithResponse(ctx, class, client.ClassroomSessionCreateJSONRequestBody{})
	if err != nil || sess.JSON201 == nil {
		t.Fatalf("ClassroomSessionCreate = %d %s, %v", sess.StatusCode(), sess.Body, err)
	}
	got, err := student.ClassroomSessionGetWithResponse(ctx, class, sess.JSON201.Id)
	if err != nil || got.JSON200 == nil || got.JSON200.Id != sess.JSON201.Id {
		t.Fatalf("ClassroomSessionGet = %d %s, %v", got.StatusCode(), got.Body, err)
	}
	pres, err := student.ClassroomSessionPresenceWithResponse(ctx, class, sess.JSON201.Id)
	if err != nil || pres.JSON200 == nil || len(pres.JSON200.Users) != 0 {
		t.Fatalf("ClassroomSessionPresence = %d %s, %v; want nobody connected", pres.StatusCode(), pres.Body, err)
	}
	att, err := tutor.ClassroomSessionAttendanceWithResponse(ctx, class, sess.JSON201.Id, &client.ClassroomSessionAttendanceParams{})
	if err != nil || att.JSON200 == nil || len(att.JSON200.Items) != 0 {
		t.Fatalf("ClassroomSessionAttendance = %d %s, %v; want nobody yet", att.StatusCode(), att.Body, err)
	}
	csv, err := tutor.ClassroomSessionAttendanceWithResponse(ctx, class, sess.JSON201.Id, nil, func(_ context.Context, r *http.Request) error {
		r.Header.Set("Accept", "text/csv")
		return nil
	})
	if err != nil || csv.StatusCode() != http.StatusOK || string(csv.Body) != "user_id,name,role,first_joined_at,last_left_at,present_seconds,joins\n" {
		t.Fatalf("ClassroomSessionAttendance as CSV = %d %q, %v; want the header line only", csv.StatusCode(), csv.Body, err)
	}
	if r, err := student.ClassroomSessionAttendanceWithResponse(ctx, class, sess.JSON201.Id, nil); err != nil || r.ApplicationproblemJSON403 == nil {
		t.Fatalf("student ClassroomSessionAttendance = %d %s, %v; want 403", r.StatusCode(), r.Body, err)
	}
	if r, err := student.ClassroomMemberRemoveWithResponse(ctx, class, "student"); err != nil || r.ApplicationproblemJSON403 == nil {
		t.Fatalf("student ClassroomMemberRemove = %d %s, %v; want 403", r.StatusCode(), r.Body, err)
	}
	if r, err := tutor.ClassroomMemberRemoveWithResponse(ctx, class, "student"); err != nil || r.StatusCode() != http.StatusNoContent {
		t.Fatalf("ClassroomMemberRemove = %d %s, %v; want 204", r.StatusCode(), r.Body, err)
	}
	if r, err := student.ClassroomGetWithResponse(ctx, class); err != nil || r.ApplicationproblemJSON404 == nil {
		t.Fatalf("removed member ClassroomGet = %d, %v; want 404", r.StatusCode(), err)
	}
}

// TestSoloWorkspaceThroughGoClient saves, lists and restores snapshots and reads the quota.
func TestSoloWorkspaceThroughGoClient(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := apptest.New(t, nil)
	owner, other := newClient(t, env, "owner"), newClient(t, env, "other")

	title := "Sketch"
	created, err := owner.SoloSessionCreateWithResponse(ctx, client.SoloSessionCreateJSONRequestBody{Title: &title})
	if err != nil || created.JSON201 == nil {
		t.Fatalf("SoloSessionCreate = %d %s, %v", created.StatusCode(), created.Body, err)
	}
	id := created.JSON201.Id
	if r, err := other.SoloSessionGetWithResponse(ctx, id); err != nil || r.ApplicationproblemJSON404 == nil {
		t.Fatalf("stranger SoloSessionGet = %d, %v; want 404", r.StatusCode(), err)
	}
	if r, err := owner.SoloSessionGetWithResponse(ctx, id); err != nil || r.JSON200 == nil || r.JSON200.Title != "Sketch" {
		t.Fatalf("SoloSessionGet = %d %s, %v", r.StatusCode(), r.Body, err)
	}
	if r, err := owner.SoloSessionListWithResponse(ctx, &client.SoloSessionListParams{}); err != nil || r.JSON200 == nil || len(r.JSON200.Items) != 1 {
		t.Fatalf("SoloSessionList = %d %s, %v", r.StatusCode(), r.Body, err)
	}
	if r, err := owner.SoloSnapshotLatestWithResponse(ctx, id, nil); err != nil || r.ApplicationproblemJSON404 == nil {
		t.Fatalf("SoloSnapshotLatest before any = %d, %v; want 404", r.StatusCode(), err)
	}
	doc := []byte(`{"shapes":[{"kind":"circle","r":3}]}`)
	key := "upload-1"
	snap, err := owner.SoloSnapshotCreateWithBodyWithResponse(ctx, id, &client.SoloSnapshotCreateParams{IdempotencyKey: &key}, "application/json", bytes.NewReader(doc))
	if err != nil || snap.JSON201 == nil || snap.JSON201.Revision != 1 || snap.JSON201.Storage.Used != int64(len(doc)) {
		t.Fatalf("SoloSnapshotCreate = %d %s, %v", snap.StatusCode(), snap.Body, err)
	}
	replay, err := owner.SoloSnapshotCreateWithBodyWithResponse(ctx, id, &client.SoloSnapshotCreateParams{IdempotencyKey: &key}, "application/json", bytes.NewReader(doc))
	if err != nil || replay.JSON200 == nil || replay.JSON200.Revision != 1 {
		t.Fatalf("SoloSnapshotCreate replay = %d %s, %v; want 200 revision 1", replay.StatusCode(), replay.Body, err)
	}
	latest, err := owner.SoloSnapshotLatestWithResponse(ctx, id, nil)
	if err != nil || latest.StatusCode() != http.StatusOK || !bytes.Equal(latest.Body, doc) {
		t.Fatalf("SoloSnapshotLatest = %d %s, %v", latest.StatusCode(), latest.Body, err)
	}
	etag := latest.HTTPResponse.Header.Get("ETag")
	if r, err := owner.SoloSnapshotLatestWithResponse(ctx, id, &client.SoloSnapshotLatestParams{IfNoneMatch: &etag}); err != nil || r.StatusCode() != http.StatusNotModified {
		t.Fatalf("SoloSnapshotLatest If-None-Match = %d, %v; want 304", r.StatusCode(), err)
	}
	list, err := owner.SoloSnapshotListWithResponse(ctx, id, &client.SoloSnapshotListParams{})
	if err != nil || list.JSON200 == nil || len(list.JSON200.Items) != 1 || list.JSON200.Items[0].Sha256 != snap.JSON201.Sha256 {
		t.Fatalf("SoloSnapshotList = %d %s, %v", list.StatusCode(), list.Body, err)
	}
	rev, err := owner.SoloSnapshotGetWithResponse(ctx, id, 1, nil)
	if err != nil || rev.StatusCode() != http.StatusOK || !bytes.Equal(rev.Body, doc) || rev.HTTPResponse.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("SoloSnapshotGet = %d %v %s, %v", rev.StatusCode(), rev.HTTPResponse.Header, rev.Body, err)
	}
	storage, err := owner.SoloStorageGetWithResponse(ctx)
	if err != nil || storage.JSON200 == nil || storage.JSON200.Used != int64(len(doc)) || storage.JSON200.Remaining != storage.JSON200.Quota-int64(len(doc)) {
		t.Fatalf("SoloStorageGet = %d %s, %v", storage.StatusCode(), storage.Body, err)
	}
}

// TestTelemetryThroughGoClient sends one event and a batch, with and without a token.
func TestTelemetryThroughGoClient(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := apptest.New(t, nil)
	c := newClient(t, env, "reporter")
	var one client.TelemetryPayload
	level := client.TelemetryEventLevelInfo
	if err := one.FromTelemetryEvent(client.TelemetryEvent{Name: "editor.opened", Level: &level}); err != nil {
		t.Fatal(err)
	}
	if r, err := c.TelemetryIngestWithResponse(ctx, one); err != nil || r.StatusCode() != http.StatusNoContent {
		t.Fatalf("TelemetryIngest = %d %s, %v", r.StatusCode(), r.Body, err)
	}
	anon, err := client.NewClientWithResponses(env.Server.URL, client.WithHTTPClient(env.HTTPClient()))
	if err != nil {
		t.Fatal(err)
	}
	var batch client.TelemetryPayload
	if err := batch.FromTelemetryBatch(client.TelemetryBatch{Events: []client.TelemetryEvent{{Name: "a"}, {Name: "b"}}}); err != nil {
		t.Fatal(err)
	}
	if r, err := anon.TelemetryIngestWithResponse(ctx, batch); err != nil || r.StatusCode() != http.StatusNoContent {
		t.Fatalf("anonymous TelemetryIngest batch = %d %s, %v", r.StatusCode(), r.Body, err)
	}
	if r, err := anon.TelemetryIngestWithTextBodyWithResponse(ctx, `{"name":"beacon"}`); err != nil || r.StatusCode() != http.StatusNoContent {
		t.Fatalf("TelemetryIngest text/plain = %d %s, %v", r.StatusCode(), r.Body, err)
	}
	if r, err := anon.TelemetryIngestWithBodyWithResponse(ctx, "application/json", bytes.NewReader([]byte(`{"events":[]}`))); err != nil || r.ApplicationproblemJSON400 == nil {
		t.Fatalf("TelemetryIngest empty batch = %d %s, %v; want 400", r.StatusCode(), r.Body, err)
	}
}
