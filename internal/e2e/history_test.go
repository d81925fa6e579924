package e2e_test

import (
	"bytes"
	"context"
	"net/http"
	"testing"

	"github.com/m4sh/backend/gen/client"
	"github.com/m4sh/backend/internal/apptest"
)

// TestSnapshotHistoryThroughClient pins, restores and unpins through the generated Go
// client against the wired service: a restore is a new revision that adds nothing, reads
// back the restored bytes, and the listing shows the pin and the restore.
func TestSnapshotHistoryThroughClient(t *testing.T) {
	t.Parallel()
	env := apptest.New(t, nil)
	ctx := context.Background()
	c := newClient(t, env, "hana")
	created, err := c.SoloSessionCreateWithResponse(ctx, client.SoloSessionCreateJSONRequestBody{})
	if err != nil || created.JSON201 == nil {
		t.Fatalf("SoloSessionCreate = %v, %v", created.StatusCode(), err)
	}
	sid := created.JSON201.Id
	v1, v2 := incompressible(41, 2000), incompressible(42, 1000)
	for _, v := range [][]byte{v1, v2} {
		res, err := c.SoloSnapshotCreateWithBodyWithResponse(ctx, sid, nil, "application/octet-stream", bytes.NewReader(v))
		if err != nil || res.JSON201 == nil {
			t.Fatalf("upload = %d %s, %v", res.StatusCode(), res.Body, err)
		}
	}
	label := "draft"
	pin, err := c.SoloSnapshotPinWithResponse(ctx, sid, 1, client.SoloSnapshotPinJSONRequestBody{Label: &label})
	if err != nil || pin.JSON200 == nil || !pin.JSON200.Pinned || pin.JSON200.Label == nil || *pin.JSON200.Label != "draft" {
		t.Fatalf("pin = %d %s, %v", pin.StatusCode(), pin.Body, err)
	}
	restore, err := c.SoloSnapshotRestoreWithResponse(ctx, sid, 1)
	if err != nil || restore.JSON201 == nil || restore.JSON201.Revision != 3 || restore.JSON201.RestoredFrom == nil ||
		*restore.JSON201.RestoredFrom != 1 || restore.JSON201.StoredBytes != 0 || restore.JSON201.Storage.Used != 3000 {
		t.Fatalf("restore = %d %s, %v", restore.StatusCode(), restore.Body, err)
	}
	latest, err := c.SoloSnapshotLatestWithResponse(ctx, sid, nil)
	if err != nil || latest.StatusCode() != http.StatusOK || !bytes.Equal(latest.Body, v1) {
		t.Fatalf("latest after restore = %d (%d bytes), %v", latest.StatusCode(), len(latest.Body), err)
	}
	unpin, err := c.SoloSnapshotUnpinWithResponse(ctx, sid, 1)
	if err != nil || unpin.JSON200 == nil || unpin.JSON200.Pinned {
		t.Fatalf("unpin = %d %s, %v", unpin.StatusCode(), unpin.Body, err)
	}
	missing, err := c.SoloSnapshotRestoreWithResponse(ctx, sid, 9)
	if err != nil || missing.StatusCode() != http.StatusNotFound {
		t.Errorf("restore of a missing revision = %d, %v; want 404", missing.StatusCode(), err)
	}
	list, err := c.SoloSnapshotListWithResponse(ctx, sid, nil)
	if err != nil || list.JSON200 == nil || len(list.JSON200.Items) != 3 || list.JSON200.Items[0].RestoredFrom == nil || list.JSON200.Items[2].StoredBytes != 2000 {
		t.Fatalf("list = %d %s, %v", list.StatusCode(), list.Body, err)
	}
}
