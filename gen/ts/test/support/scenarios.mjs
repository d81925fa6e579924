// PresenceSocket's state machine against loopback servers that misbehave on demand (see
// fake-server.mjs), written once and run by states.test.mjs in Node and by
// e2e/browser/presence-states.mjs in Chromium. A scenario gets a host: start(spec) runs a
// client (client-host.mjs) where the host lives and returns a handle to read its events and
// call its methods (call answers {value} or {error: the thrown error's name}); setOnline and setVisible change the page around it. Test support, not a test.
import assert from "node:assert/strict";
import { startFakeServer, freePort } from "./fake-server.mjs";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls the client's events until pred(events) holds; fails with them after ms. */
async function until(client, what, pred, ms = 8000) {
  const end = Date.now() + ms;
  for (;;) {
    const ev = await client.events();
    if (pred(ev)) return ev;
    if (Date.now() > end) assert.fail(`no ${what} within ${ms} ms; events: ${JSON.stringify(ev.map(brief))}`);
    await sleep(20);
  }
}

/** Polls until the server accepted n connections. */
async function conns(server, n, ms = 8000) {
  const end = Date.now() + ms;
  while (server.conns.length < n) {
    if (Date.now() > end) assert.fail(`the server got ${server.conns.length} connections within ${ms} ms, want ${n}`);
    await sleep(10);
  }
  return server.conns[n - 1];
}

const brief = ({ t, type, status, code, reason, reconnectInMs, why }) =>
  Object.fromEntries(Object.entries({ t, type, status, code, reason, reconnectInMs, why }).filter(([, v]) => v !== undefined));
const statuses = (ev) => ev.filter((e) => e.type === "status").map((e) => e.status);
const of = (ev, type) => ev.filter((e) => e.type === type);
const count = (type, n) => (ev) => of(ev, type).length >= n;

/** Closes the client and checks that `stopped` was emitted exactly once in its life. */
async function finish(client) {
  await client.call("close");
  await client.call("close");
  const ev = await client.events();
  assert.equal(of(ev, "stopped").length, 1, "stopped is emitted exactly once");
  assert.equal(await client.get("status"), "stopped");
  return ev;
}

async function stopsOn(host, code, reason) {
  const server = await startFakeServer({ onConnection: (c) => c.close(code, reason) });
  try {
    const client = await host.start({ baseUrl: server.url, options: { backoffInitialMs: 50 } });
    const ev = await until(client, "stopped", count("stopped", 1));
    await sleep(300);
    assert.equal(server.conns.length, 1, `no reconnect after ${code}`);
    assert.deepEqual(statuses(ev), ["connecting", "stopped"]);
    assert.equal(of(ev, "open").length, 0, "no open event: the upgrade was accepted but no snapshot came");
    assert.deepEqual(of(ev, "stopped").map((e) => [e.code, e.reason]), [[code, reason]]);
    assert.deepEqual(of(ev, "close").map((e) => [e.code, e.action]), [[code, "stop"]]);
    await finish(client);
  } finally {
    await server.kill();
  }
}

export const scenarios = {
  "4403 after the upgrade: stopped, never open, no reconnect": (host) => stopsOn(host, 4403, "forbidden"),
  "4409 too_many_connections: stopped, no reconnect": (host) => stopsOn(host, 4409, "too_many_connections"),

  async "refused connection: error without close is a lost connection; back-off, then open when the server appears"(host, { errorWithoutClose = false } = {}) {
    const port = await freePort();
    const client = await host.start({
      baseUrl: `http://127.0.0.1:${port}`, errorWithoutClose,
      options: { backoffInitialMs: 100, backoffMaxMs: 400, connectTimeoutMs: 3000 },
    });
    let ev = await until(client, "three failed attempts", count("close", 3));
    assert.deepEqual(statuses(ev), ["connecting", "reconnecting"]);
    const closes = of(ev, "close").slice(0, 3);
    closes.forEach((c, i) => {
      assert.equal(c.code, 1006);
      const base = Math.min(400, 100 * 2 ** i);
      assert.ok(c.reconnectInMs >= base / 2 && c.reconnectInMs <= base, `retry ${i} in ${c.reconnectInMs} ms, want ${base / 2}..${base}`);
    });
    // Each failure is noticed at once (no waiting for a close that never comes).
    const tokens = of(ev, "token");
    assert.ok(closes[0].t - tokens[0].t < 2500, `first failure noticed after ${closes[0].t - tokens[0].t} ms`);
    const server = await startFakeServer({ port, onConnection: (c) => c.snapshot() });
    try {
      ev = await until(client, "open", count("open", 1));
      assert.deepEqual(statuses(ev), ["connecting", "reconnecting", "open"]);
      await finish(client);
    } finally {
      await server.kill();
    }
  },

  async "server restart (1012, 1001): retried within 1–2 s with jitter, back-off reset after open"(host) {
    let server;
    server = await startFakeServer({
      onConnection: (c, n) => {
        c.snapshot();
        if (n === 0) setTimeout(async () => { c.close(1012, "service_restart"); await server.kill(); await sleep(300); await server.restart(); }, 100);
        if (n === 1) setTimeout(() => c.close(1001, "going_away"), 100);
      },
    });
    try {
      const client = await host.start({ baseUrl: server.url, options: { backoffInitialMs: 100 } });
      const ev = await until(client, "the third open", count("open", 3));
      assert.deepEqual(statuses(ev), ["connecting", "open", "reconnecting", "open", "reconnecting", "open"]);
      const closes = of(ev, "close");
      assert.deepEqual(closes.map((c) => c.code), [1012, 1001]);
      const tokens = of(ev, "token");
      closes.forEach((c, i) => {
        assert.ok(c.reconnectInMs >= 1000 && c.reconnectInMs <= 2000, `retry after ${c.code} in ${c.reconnectInMs} ms, want 1000..2000`);
        const waited = tokens[i + 1].t - c.t;
        assert.ok(waited >= 950 && waited <= 2500, `retried ${waited} ms after ${c.code}`);
      });
      await finish(client);
    } finally {
      await server.kill();
    }
  },

  async "4401 token_expired: a fresh token, then reconnect; refused again: stop"(host) {
    const server = await startFakeServer({
      onConnection: (c, n) => {
        if (n === 2) return c.close(4401, "unauthorized");
        c.snapshot();
        setTimeout(() => c.close(4401, "token_expired"), 50);
      },
    });
    try {
      const client = await host.start({ baseUrl: server.url, tokens: { connect: ["first"], refresh: ["fresh1", "fresh2"] } });
      const ev = await until(client, "stopped", count("stopped", 1));
      assert.deepEqual(server.conns.map((c) => c.token), ["first", "fresh1", "fresh2"]);
      assert.deepEqual(of(ev, "token").map((e) => e.why), ["connect", "refresh", "refresh"]);
      assert.deepEqual(statuses(ev), ["connecting", "open", "reconnecting", "open", "reconnecting", "stopped"]);
      assert.deepEqual(of(ev, "close").map((e) => [e.code, e.action, e.reconnectInMs]),
        [[4401, "refresh_token", 0], [4401, "refresh_token", 0], [4401, "stop", undefined]]);
      assert.deepEqual(of(ev, "stopped").map((e) => [e.code, e.reason]), [[4401, "unauthorized"]]);
      await finish(client);
    } finally {
      await server.kill();
    }
  },

  async "going offline drops the connection and waits; online reconnects at once"(host) {
    const server = await startFakeServer({ onConnection: (c) => c.snapshot() });
    try {
      const client = await host.start({ baseUrl: server.url, options: { backoffInitialMs: 100 } });
      await until(client, "open", count("open", 1));
      await host.setOnline(false);
      let ev = await until(client, "a close", count("close", 1));
      assert.equal(of(ev, "close")[0].code, 1006);
      assert.equal(of(ev, "close")[0].reconnectInMs, undefined, "no retry is scheduled while offline");
      await sleep(800);
      assert.equal(server.conns.length, 1, "no attempt while offline");
      assert.equal(await client.get("status"), "reconnecting");
      const back = Date.now();
      await host.setOnline(true);
      ev = await until(client, "open again", count("open", 2));
      assert.ok(Date.now() - back < 1500, `reconnected ${Date.now() - back} ms after online`);
      assert.deepEqual(statuses(ev), ["connecting", "open", "reconnecting", "open"]);
      await finish(client);
    } finally {
      await host.setOnline(true);
      await server.kill();
    }
  },

  async "a hidden page waits to retry and retries as it becomes visible"(host) {
    const server = await startFakeServer({ onConnection: (c) => c.snapshot() });
    try {
      const client = await host.start({ baseUrl: server.url, options: { backoffInitialMs: 100, backoffMaxMs: 100 } });
      await until(client, "open", count("open", 1));
      await host.setVisible(false);
      server.conns[0].socket.destroy(); // the connection drops without a close frame
      await until(client, "a close", count("close", 1));
      await sleep(600);
      assert.equal(server.conns.length, 1, "no attempt while hidden");
      await host.setVisible(true);
      const ev = await until(client, "open again", count("open", 2), 1500);
      assert.deepEqual(statuses(ev), ["connecting", "open", "reconnecting", "open"]);
      await finish(client);
    } finally {
      await host.setVisible(true);
      await server.kill();
    }
  },

  async "connect timeout: no snapshot in time is a lost connection"(host) {
    const server = await startFakeServer({ onConnection: (c, n) => { if (n > 0) c.snapshot(); } });
    try {
      const client = await host.start({ baseUrl: server.url, options: { connectTimeoutMs: 300, backoffInitialMs: 100 } });
      const ev = await until(client, "open", count("open", 1));
      const [close] = of(ev, "close");
      assert.deepEqual([close.code, close.reason], [1006, "connect_timeout"]);
      assert.ok(close.t >= 280 && close.t < 2000, `timed out after ${close.t} ms`);
      await server.conns[0].closed; // the client closed the silent connection
      assert.deepEqual(statuses(ev), ["connecting", "reconnecting", "open"]);
      await finish(client);
    } finally {
      await server.kill();
    }
  },

  async "presence state: snapshot cursors and states, state and error events, setState checked, 5/s latest wins, sent again after reconnect"(host) {
    const users = [
      { user_id: "me", name: "Me", role: "student" },
      { user_id: "tina", name: "Tina", role: "tutor", cursor: { x: 4, y: 2 }, state: { color: "red" } },
    ];
    const server = await startFakeServer({ onConnection: (c) => c.snapshot(users) });
    try {
      const client = await host.start({ baseUrl: server.url, options: { restartRetryMs: 50 } });
      let ev = await until(client, "open", count("open", 1));
      assert.deepEqual(of(ev, "users")[0].users, users, "the users event carries cursors and states of the snapshot");
      assert.deepEqual((await client.call("user", "tina")).value, users[1]);
      const conn = server.conns[0];
      conn.send({ type: "state", user_id: "tina", state: { color: "blue" } });
      conn.send({ type: "cursor", user_id: "tina", x: 7, y: 8 });
      conn.send({ type: "error", code: "state_too_large", message: "too large", for: "state" });
      ev = await until(client, "the error event", count("error", 1));
      assert.deepEqual(of(ev, "state").map(({ user_id, state }) => ({ user_id, state })), [{ user_id: "tina", state: { color: "blue" } }]);
      assert.deepEqual(of(ev, "error").map(({ code, message, for: f }) => ({ code, message, for: f })),
        [{ code: "state_too_large", message: "too large", for: "state" }]);
      assert.deepEqual((await client.call("user", "tina")).value, { ...users[1], cursor: { x: 7, y: 8 }, state: { color: "blue" } });

      assert.equal((await client.call("setState", { pad: "x".repeat(503) })).error, "RangeError");
      assert.equal((await client.call("setState", ["not", "an", "object"])).error, "TypeError");
      const t0 = Date.now();
      assert.equal((await client.call("setState", { pad: "é".repeat(251) })).error, undefined, "512 bytes as JSON are allowed");
      for (let i = 0; i < 10; i++) await client.call("setState", { tool: "pen", i });
      await sleep(500);
      const sent = () => conn.received.filter((m) => m.type === "state").map((m) => m.state);
      // 5/s: one at once, then one per 200 ms at most (plus one for timer slack).
      const allowed = Math.floor((Date.now() - t0) / 200) + 2;
      assert.ok(sent().length >= 2 && sent().length <= allowed, `${sent().length} states sent in ${Date.now() - t0} ms, want 2..${allowed} (5/s)`);
      assert.deepEqual(sent().at(-1), { tool: "pen", i: 9 }, "the latest state wins");
      conn.close(1012, "service_restart");
      await until(client, "open again", count("open", 2));
      const again = await conns(server, 2);
      await sleep(100);
      assert.deepEqual(again.received.filter((m) => m.type === "state").map((m) => m.state), [{ tool: "pen", i: 9 }]);
      await finish(client);
    } finally {
      await server.kill();
    }
  },
};

/** The same refused-connection scenario with a WebSocket that never fires close after error. */
scenarios["refused connection with a WebSocket that fires error and never close"] = (host) =>
  scenarios["refused connection: error without close is a lost connection; back-off, then open when the server appears"](host, { errorWithoutClose: true });
