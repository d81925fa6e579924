// Snapshot history helpers against a running service (see client.test.mjs for how it is started).
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  createM4shClient, snapshotBody, listSnapshots, pinSnapshot, unpinSnapshot, restoreSnapshot, SnapshotRequestError,
} from "../dist/index.js";

const baseUrl = process.env.M4SH_URL;
const token = process.env.M4SH_STUDENT_TOKEN;
const live = { skip: !baseUrl && "M4SH_URL is not set (no running service)" };

test("snapshot history: pin, restore, list", live, async () => {
  const c = createM4shClient({ baseUrl, token });
  const sess = await c.POST("/api/v1/solo/sessions/", { body: { title: "history" } });
  const session_id = sess.data.id;
  for (const text of ['{"v":1}', '{"v":2}']) {
    const up = await c.POST("/api/v1/solo/sessions/{session_id}/snapshot/", {
      params: { path: { session_id } }, ...snapshotBody(text),
    });
    assert.equal(up.response.status, 201, JSON.stringify(up.error));
  }
  const pinned = await pinSnapshot(c, session_id, 1, "first");
  assert.equal(pinned.pinned, true);
  assert.equal(pinned.label, "first");
  const restored = await restoreSnapshot(c, session_id, 1);
  assert.equal(restored.created, true);
  assert.equal(restored.revision.revision, 3);
  assert.equal(restored.revision.restored_from, 1);
  assert.equal(restored.revision.stored_bytes, 0);
  const again = await restoreSnapshot(c, session_id, 1);
  assert.equal(again.created, false);
  const revs = await listSnapshots(c, session_id);
  assert.deepEqual(revs.map((r) => [r.revision, r.pinned, r.restored_from ?? null]), [[3, false, 1], [2, false, null], [1, true, null]]);
  assert.equal((await unpinSnapshot(c, session_id, 1)).pinned, false);
  await assert.rejects(pinSnapshot(c, session_id, 99), (e) => e instanceof SnapshotRequestError && e.status === 404 && e.problem?.code === "not_found");
});
