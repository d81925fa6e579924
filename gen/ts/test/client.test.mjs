// Drives the built package (dist/) against a running service: REST calls through the typed
// client and a WebSocket round trip through PresenceSocket. internal/e2e/typescript_test.go
// starts the service and runs this with M4SH_URL and two tokens (a tutor's and a student's).
// By hand: M4SH_URL=http://localhost:8080 M4SH_TUTOR_TOKEN=… M4SH_STUDENT_TOKEN=… npm test
import { test } from "node:test";
import assert from "node:assert/strict";
import { createM4shClient, PresenceSocket, snapshotBody, closeAction } from "../dist/index.js";

const baseUrl = process.env.M4SH_URL;
const tutorToken = process.env.M4SH_TUTOR_TOKEN;
const studentToken = process.env.M4SH_STUDENT_TOKEN;
const live = { skip: !baseUrl && "M4SH_URL is not set (no running service)" };

test("closeAction follows the AsyncAPI close codes", () => {
  assert.equal(closeAction(4401), "refresh_token");
  for (const c of [4400, 4403, 4409, 1000]) assert.equal(closeAction(c), "stop");
  for (const c of [4429, 1001, 1011, 1012, 1013, 1006]) assert.equal(closeAction(c), "back_off");
});

/** Waits for the first event of that type satisfying pred. */
function next(socket, type, pred = () => true, ms = 10000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${type} event within ${ms} ms`)), ms);
    const off = socket.on(type, (p) => {
      if (!pred(p)) return;
      clearTimeout(timer);
      off();
      resolve(p);
    });
  });
}

test("REST and WebSocket against the running service", live, async () => {
  const tutor = createM4shClient({ baseUrl, token: tutorToken });
  const student = createM4shClient({ baseUrl, token: () => studentToken });
  const anon = createM4shClient({ baseUrl });

  const me = await student.GET("/api/v1/me/");
  assert.equal(me.response.status, 200);
  assert.equal(me.data?.user_id, "student");

  const unauth = await anon.GET("/api/v1/me/");
  assert.equal(unauth.response.status, 401);
  assert.equal(unauth.error?.code, "unauthorized");

  const cls = await tutor.POST("/api/v1/classrooms/", { body: { title: "Algebra" } });
  assert.equal(cls.response.status, 201, JSON.stringify(cls.error));
  const class_id = cls.data.id;
  const added = await tutor.POST("/api/v1/classrooms/{class_id}/members/", {
    params: { path: { class_id } }, body: { user_id: "student" },
  });
  assert.equal(added.data?.role, "student");
  const sess = await tutor.POST("/api/v1/classrooms/{class_id}/sessions/", {
    params: { path: { class_id } }, body: { title: "Live" },
  });
  assert.equal(sess.data?.status, "active");
  const session_id = sess.data.id;
  const page = await student.GET("/api/v1/classrooms/{class_id}/sessions/", {
    params: { path: { class_id }, query: { limit: 10 } },
  });
  assert.deepEqual(page.data?.items.map((s) => s.id), [session_id]);

  // Solo snapshot round trip.
  const solo = await student.POST("/api/v1/solo/sessions/", { body: { title: "Notes" } });
  const doc = JSON.stringify({ strokes: [[0, 0], [3, 4]] });
  const saved = await student.POST("/api/v1/solo/sessions/{session_id}/snapshot/", {
    params: { path: { session_id: solo.data.id } }, ...snapshotBody(doc),
  });
  assert.equal(saved.response.status, 201, JSON.stringify(saved.error));
  assert.equal(saved.data?.revision, 1);
  const latest = await student.GET("/api/v1/solo/sessions/{session_id}/snapshot/latest/", {
    params: { path: { session_id: solo.data.id } }, parseAs: "text",
  });
  assert.equal(latest.data, doc);
  assert.equal(latest.response.headers.get("X-Snapshot-Revision"), "1");

  const tel = await anon.POST("/api/v1/logs/telemetry/", { body: { name: "ts.test", level: "info" } });
  assert.equal(tel.response.status, 204);

  // WebSocket: both connect, see each other, and the student sees the tutor's cursor.
  const open = (token) => new PresenceSocket({ baseUrl, classId: class_id, sessionId: session_id, getToken: () => token });
  const a = open(tutorToken), b = open(studentToken);
  try {
    const seenA = [];
    for (const type of ["status", "snapshot", "open"]) a.on(type, (p) => seenA.push(type === "status" ? p.status : type));
    const openA = next(a, "open");
    a.connect();
    assert.equal(a.status, "connecting");
    await openA;
    assert.deepEqual(seenA, ["connecting", "snapshot", "open", "open"], "open (status and event) follows the snapshot");
    assert.equal(a.status, "open");
    const joined = next(a, "join", (j) => j.user.user_id === "student");
    const snapB = next(b, "snapshot");
    b.connect();
    assert.deepEqual((await snapB).users.map((u) => u.user_id).sort(), ["student", "tutor"]);
    await joined;
    const pres = await student.GET("/api/v1/classrooms/{class_id}/sessions/{session_id}/presence/", {
      params: { path: { class_id, session_id } },
    });
    assert.equal(pres.data?.users.length, 2);

    const seen = next(b, "cursor", (c) => c.user_id === "tutor" && c.x === 30);
    for (let i = 1; i <= 30; i++) a.sendCursor(i, i * 2); // throttled: never closed with 4429
    assert.deepEqual(await seen, { user_id: "tutor", x: 30, y: 60 });
    const pong = next(a, "pong");
    a.ping();
    await pong;

    const left = next(b, "leave", (l) => l.user_id === "tutor");
    const stopped = next(a, "stopped");
    a.close();
    await stopped;
    await left;
    assert.deepEqual(b.users.map((u) => u.user_id), ["student"]);
    assert.deepEqual(b.user("student"), { user_id: "student", name: "Student", role: "student" });

    // A token refused at connect: one fresh token, then open. A stranger's connection: 4403, stopped once.
    const why = [];
    const c = new PresenceSocket({ baseUrl, classId: class_id, sessionId: session_id,
      getToken: (w) => { why.push(w); return w === "refresh" ? studentToken : "not-a-jwt"; } });
    const statuses = [];
    c.on("status", ({ status }) => statuses.push(status));
    const openC = next(c, "open");
    c.connect();
    await openC;
    c.close();
    c.close();
    assert.deepEqual(why, ["connect", "refresh"]);
    assert.deepEqual(statuses, ["connecting", "reconnecting", "open", "stopped"]);
  } finally {
    a.close();
    b.close();
  }
});

test("a member of another classroom is stopped once with 4403, never open", live, async () => {
  const tutor = createM4shClient({ baseUrl, token: tutorToken });
  const cls = await tutor.POST("/api/v1/classrooms/", { body: { title: "Private" } });
  const sess = await tutor.POST("/api/v1/classrooms/{class_id}/sessions/", {
    params: { path: { class_id: cls.data.id } }, body: { title: "Closed" },
  });
  const s = new PresenceSocket({ baseUrl, classId: cls.data.id, sessionId: sess.data.id, getToken: () => studentToken });
  const seen = [];
  for (const type of ["status", "open", "stopped"]) s.on(type, (p) => seen.push(type === "status" ? p.status : `${type} ${p.code ?? ""}`.trim()));
  const stopped = next(s, "stopped");
  s.connect();
  assert.deepEqual(await stopped, { code: 4403, reason: "forbidden" });
  s.close();
  assert.deepEqual(seen, ["connecting", "stopped", "stopped 4403"]);
});

test("a bad token stops after one refresh attempt (4401)", live, async () => {
  const calls = [];
  const s = new PresenceSocket({
    baseUrl, classId: crypto.randomUUID(), sessionId: crypto.randomUUID(),
    getToken: (why) => { calls.push(why); return "not-a-jwt"; },
  });
  const stopped = next(s, "stopped");
  s.connect();
  assert.equal((await stopped).code, 4401);
  assert.deepEqual(calls, ["connect", "refresh"]);
});
