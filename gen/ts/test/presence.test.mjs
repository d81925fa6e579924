// PresenceSocket's client-side policy without a server: cursor throttling and what each
// close code does (fake WebSocket, mocked timers).
import { test, mock } from "node:test";
import assert from "node:assert/strict";
import { PresenceSocket } from "../dist/index.js";

/** A fake WebSocket: records sends; the test opens and closes it by hand. */
class FakeWS {
  static all = [];
  constructor(url, protocols) {
    this.url = url;
    this.protocols = protocols;
    this.readyState = 0;
    this.sent = [];
    this.protocol = "";
    FakeWS.all.push(this);
  }
  send(s) { this.sent.push(JSON.parse(s)); }
  close(code = 1000, reason = "") { this.readyState = 3; this.onclose?.({ code, reason }); }
  serverOpen() {
    this.readyState = 1;
    this.protocol = "m4sh.presence.v1";
    this.onopen?.({});
    this.onmessage?.({ data: JSON.stringify({ type: "presence.snapshot", session_id: "s", users: [] }) });
  }
  serverClose(code, reason = "") { this.readyState = 3; this.onclose?.({ code, reason }); }
}

const tick = () => new Promise((r) => setImmediate(r));
function socket(extra = {}) {
  FakeWS.all = [];
  return new PresenceSocket({ baseUrl: "https://example.test", classId: "c", sessionId: "s",
    getToken: () => "tok", WebSocket: FakeWS, random: () => 0.5, ...extra });
}

test("connects with the subprotocol token to the wss URL", async () => {
  const s = socket();
  s.connect();
  await tick();
  const ws = FakeWS.all[0];
  assert.equal(ws.url, "wss://example.test/ws/classroom/c/session/s/");
  assert.deepEqual(ws.protocols, ["m4sh.presence.v1", "bearer.tok"]);
  s.close();
});

test("cursor sends are throttled to 20 per second, latest position wins", async (t) => {
  t.mock.timers.enable({ apis: ["setTimeout", "Date"] });
  const perf = mock.method(performance, "now", () => Date.now());
  t.after(() => perf.mock.restore());
  const s = socket();
  s.connect();
  await tick();
  const ws = FakeWS.all[0];
  ws.serverOpen();
  for (let ms = 0; ms < 1000; ms += 5) { // 200 moves in one second
    s.sendCursor(ms, 1);
    t.mock.timers.tick(5);
  }
  t.mock.timers.tick(100);
  const cursors = ws.sent.filter((m) => m.type === "cursor");
  assert.ok(cursors.length >= 19 && cursors.length <= 21, `sent ${cursors.length} in ~1.1 s`);
  assert.equal(cursors.at(-1).x, 995, "the last position is sent after the interval");
  s.close();
});

test("close codes: back off and retry, refresh once on 4401, stop on 4400/4403", async (t) => {
  t.mock.timers.enable({ apis: ["setTimeout"] });
  const why = [];
  const s = socket({ getToken: (w) => { why.push(w); return "tok"; } });
  const closes = [];
  s.on("close", (c) => closes.push(c));
  let stopped = null;
  s.on("stopped", (c) => { stopped = c; });
  s.connect();
  await tick();
  FakeWS.all[0].serverOpen();

  FakeWS.all[0].serverClose(1006);
  assert.equal(closes.at(-1).action, "back_off");
  assert.equal(closes.at(-1).reconnectInMs, 375); // 500 ms base, equal jitter at random 0.5
  t.mock.timers.tick(375);
  await tick();
  assert.equal(FakeWS.all.length, 2);

  FakeWS.all[1].serverClose(4429); // before a snapshot: the back-off grows, at least 1 s
  assert.equal(closes.at(-1).reconnectInMs, 1000);
  t.mock.timers.tick(1000);
  await tick();
  FakeWS.all[2].serverOpen();

  FakeWS.all[2].serverClose(4401, "token_expired");
  await tick();
  assert.deepEqual(why, ["connect", "connect", "connect", "refresh"]);
  FakeWS.all[3].serverClose(4401, "unauthorized"); // the fresh token failed too: stop
  assert.equal(stopped?.code, 4401);

  stopped = null;
  s.connect();
  await tick();
  FakeWS.all.at(-1).serverOpen();
  FakeWS.all.at(-1).serverClose(4403, "forbidden");
  assert.equal(stopped?.code, 4403);
  const n = FakeWS.all.length;
  t.mock.timers.tick(60000);
  await tick();
  assert.equal(FakeWS.all.length, n, "no reconnect after 4403");
});

test("tutoring: typed sends, the hands queue and the spotlight from the snapshot, hand/spotlight frames and leaves", async () => {
  const s = socket();
  const seen = [];
  for (const ev of ["hand", "hands", "reaction", "spotlight", "viewport"]) s.on(ev, (p) => seen.push([ev, p]));
  s.connect();
  await tick();
  const ws = FakeWS.all[0];
  ws.readyState = 1;
  const at1 = "2026-11-30T18:02:11.204Z", at2 = "2026-11-30T18:02:12.000Z";
  ws.onmessage({ data: JSON.stringify({ type: "presence.snapshot", session_id: "s",
    users: [{ user_id: "mia", name: "Mia", role: "student" }, { user_id: "sam", name: "Sam", role: "student" }, { user_id: "tina", name: "Tina", role: "tutor" }],
    hands: [{ user_id: "sam", at: at1 }], spotlight: { user_id: "tina", viewport: { x: 1, y: 2, w: 3, h: 4 } } }) });
  assert.deepEqual(s.hands, [{ user_id: "sam", at: at1 }]);
  assert.deepEqual(s.spotlightHolder, { user_id: "tina", viewport: { x: 1, y: 2, w: 3, h: 4 } });
  assert.deepEqual(seen, [["hands", [{ user_id: "sam", at: at1 }]], ["spotlight", { user_id: "tina", on: true }], ["viewport", { user_id: "tina", x: 1, y: 2, w: 3, h: 4 }]]);
  seen.length = 0;
  const frame = (m) => ws.onmessage({ data: JSON.stringify(m) });
  frame({ type: "hand", user_id: "mia", raised: true, at: at2 });
  assert.deepEqual(s.hands.map((h) => h.user_id), ["sam", "mia"]);
  frame({ type: "hand", user_id: "sam", raised: false, at: at2 });
  assert.deepEqual(s.hands.map((h) => h.user_id), ["mia"]);
  frame({ type: "viewport", user_id: "tina", x: 5, y: 6, w: 7, h: 8 });
  assert.deepEqual(s.spotlightHolder.viewport, { x: 5, y: 6, w: 7, h: 8 });
  frame({ type: "reaction", user_id: "sam", emoji: "👏" });
  frame({ type: "presence.leave", user_id: "mia" });
  assert.deepEqual(s.hands, []);
  frame({ type: "presence.leave", user_id: "tina" });
  assert.equal(s.spotlightHolder, undefined);
  assert.deepEqual(seen.map(([ev]) => ev), ["hand", "hands", "hand", "hands", "viewport", "reaction", "hands", "spotlight"]);
  assert.deepEqual(seen.at(-1), ["spotlight", { user_id: "tina", on: false }]);

  s.raiseHand();
  s.lowerHand();
  s.lowerHand("sam");
  s.react("❓");
  s.spotlight(true);
  s.sendViewport({ x: 0, y: 0, w: 0, h: 1 }); // ignored: not a positive extent
  s.sendViewport({ x: 0, y: 0, w: 10, h: 10 });
  assert.deepEqual(ws.sent, [
    { type: "hand", raised: true }, { type: "hand", raised: false }, { type: "hand", raised: false, user_id: "sam" },
    { type: "reaction", emoji: "❓" }, { type: "spotlight", on: true }, { type: "viewport", x: 0, y: 0, w: 10, h: 10 },
  ]);
  s.close();
});

test("viewports are throttled to 10 per second, latest wins", async (t) => {
  t.mock.timers.enable({ apis: ["setTimeout", "Date"] });
  const perf = mock.method(performance, "now", () => Date.now());
  t.after(() => perf.mock.restore());
  const s = socket();
  s.connect();
  await tick();
  const ws = FakeWS.all[0];
  ws.serverOpen();
  for (let ms = 0; ms < 1000; ms += 10) {
    s.sendViewport({ x: ms, y: 0, w: 100, h: 100 });
    t.mock.timers.tick(10);
  }
  t.mock.timers.tick(200);
  const vps = ws.sent.filter((m) => m.type === "viewport");
  assert.ok(vps.length <= 11 && vps.length >= 9, `${vps.length} viewports in one second`);
  assert.equal(vps.at(-1).x, 990);
  s.close();
});
