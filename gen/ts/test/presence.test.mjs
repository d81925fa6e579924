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
