// The REST client's error classes, pagination, token refresh, retries and snapshotBody.
// Against the running service (internal/e2e/typescript_test.go passes M4SH_URL and the HS256
// secret M4SH_JWT_SECRET, so each run mints tokens for users of its own), and against a
// loopback HTTP server for what the service does not do on demand (503 and 409 answers, a
// Retry-After of one second).
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { createServer } from "node:http";
import {
  createM4shClient, ok, paginate, pages, snapshotBody, M4shError, NetworkError, retryAfterSeconds,
} from "../dist/index.js";

const baseUrl = process.env.M4SH_URL;
const secret = process.env.M4SH_JWT_SECRET;
const live = { skip: !(baseUrl && secret) && "M4SH_URL and M4SH_JWT_SECRET are not set (no running service)" };
// Node 20 and 22 run these against one service at once: users of their own per process.
const user = (name) => `${name}-${process.pid}`;

/** An HS256 access token for sub, expiring in ttl seconds (negative: already expired). */
function mint(sub, ttl = 3600) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const now = Math.floor(Date.now() / 1000);
  const head = b64({ alg: "HS256", typ: "JWT" });
  const body = b64({ sub, name: sub, iat: Math.min(now, now + ttl - 60), exp: now + ttl, token_type: "access" });
  return `${head}.${body}.${createHmac("sha256", secret).update(`${head}.${body}`).digest("base64url")}`;
}

/** A fetch that counts the requests it sends and records their Authorization headers. */
function counting() {
  const sent = [];
  const fetch = (req) => {
    sent.push({ method: req.method, auth: req.headers.get("Authorization") });
    return globalThis.fetch(req);
  };
  return { sent, fetch };
}

test("retryAfterSeconds reads delta-seconds and HTTP dates", () => {
  assert.equal(retryAfterSeconds("7"), 7);
  assert.equal(retryAfterSeconds(" 0 "), 0);
  assert.equal(retryAfterSeconds(new Date(10_000 + 3_000).toUTCString(), 10_000), 3);
  assert.equal(retryAfterSeconds(new Date(0).toUTCString(), 10_000), 0);
  assert.equal(retryAfterSeconds("soon"), undefined);
  assert.equal(retryAfterSeconds("-1"), undefined);
  assert.equal(retryAfterSeconds(null), undefined);
});

test("snapshotBody picks the content type from its input", () => {
  const type = (b) => b.headers["Content-Type"];
  assert.equal(type(snapshotBody(new Uint8Array([1, 2]))), "application/octet-stream");
  assert.equal(type(snapshotBody(new Uint16Array([1]))), "application/octet-stream");
  assert.equal(type(snapshotBody(new ArrayBuffer(3))), "application/octet-stream");
  assert.equal(type(snapshotBody(new Blob(["<svg/>"], { type: "image/svg+xml" }))), "image/svg+xml");
  assert.equal(type(snapshotBody(new Blob(["x"]))), "application/octet-stream");
  assert.equal(type(snapshotBody('{"a":1}')), "application/json");
  assert.equal(type(snapshotBody("not json {")), "text/plain; charset=utf-8");
  const obj = snapshotBody({ strokes: [[0, 0]] });
  assert.equal(type(obj), "application/json");
  assert.equal(obj.body, '{"strokes":[[0,0]]}');
  assert.equal(snapshotBody(null).body, "null");
  assert.equal(type(snapshotBody("a,b\n", "text/csv")), "text/csv");
  assert.throws(() => snapshotBody("not json {", "application/json"), TypeError);
  assert.throws(() => snapshotBody("{", "application/vnd.excalidraw+json"), TypeError);
  // A view of part of a buffer sends only its own bytes.
  const view = new Uint8Array([9, 1, 2, 9]).subarray(1, 3);
  assert.deepEqual([...snapshotBody(view).body], [1, 2]);
});

test("a request that gets no answer rejects with NetworkError; retried only when idempotent", async () => {
  const srv = createServer();
  await new Promise((r) => srv.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${srv.address().port}`;
  await new Promise((r) => srv.close(r)); // nothing listens there now
  const c = counting();
  const api = createM4shClient({ baseUrl: url, fetch: c.fetch, retry: { retries: 2, baseDelayMs: 1 } });
  await assert.rejects(api.GET("/api/v1/me/"), (e) => {
    assert.ok(e instanceof NetworkError, String(e));
    assert.equal(e.method, "GET");
    assert.equal(e.url, `${url}/api/v1/me/`);
    assert.ok(e.cause instanceof Error);
    return true;
  });
  assert.equal(c.sent.length, 3, "GET: first attempt and two retries");
  c.sent.length = 0;
  await assert.rejects(api.POST("/api/v1/classrooms/", { body: { title: "x" } }), NetworkError);
  assert.equal(c.sent.length, 1, "POST without Idempotency-Key: never resent");
  // Aborting is not a network failure.
  const ac = new AbortController();
  ac.abort();
  await assert.rejects(api.GET("/api/v1/me/", { signal: ac.signal }), (e) => e.name === "AbortError");
});

/** A loopback server answering each request with the next of script (status, headers). */
async function scripted(script) {
  const seen = [];
  const srv = createServer((req, res) => {
    let body = "";
    req.on("data", (d) => { body += d; });
    req.on("end", () => {
      seen.push({ method: req.method, body, at: Date.now(), key: req.headers["idempotency-key"] });
      const [status, headers = {}] = script[Math.min(seen.length - 1, script.length - 1)];
      const ok = status < 300;
      res.writeHead(status, { "Content-Type": ok ? "application/json" : "application/problem+json", ...headers });
      res.end(JSON.stringify(ok ? { user_id: "u", body } : {
        type: "about:blank", title: "t", status, code: status === 409 ? "conflict" : status === 429 ? "rate_limited" : "unavailable",
      }));
    });
  });
  await new Promise((r) => srv.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${srv.address().port}`, seen, close: () => new Promise((r) => srv.close(r)) };
}

test("retries: 503/429 after Retry-After for any method, 409 only with an Idempotency-Key, off by default", async (t) => {
  const s = await scripted([[503, { "Retry-After": "1" }], [200]]);
  t.after(s.close);
  const api = createM4shClient({ baseUrl: s.url, retry: true });
  const r = await api.POST("/api/v1/classrooms/", { body: { title: "resent whole" } });
  assert.equal(r.response.status, 200);
  assert.equal(s.seen.length, 2);
  assert.ok(s.seen[1].at - s.seen[0].at >= 950, `waited ${s.seen[1].at - s.seen[0].at} ms, want Retry-After 1 s`);
  assert.equal(s.seen[1].body, s.seen[0].body, "the body is sent again whole");
  assert.equal(JSON.parse(s.seen[1].body).title, "resent whole");

  // Off by default: the 503 is the answer.
  const s2 = await scripted([[503, { "Retry-After": "0" }], [200]]);
  t.after(s2.close);
  const plain = await createM4shClient({ baseUrl: s2.url }).GET("/api/v1/me/");
  assert.equal(plain.response.status, 503);
  assert.equal(s2.seen.length, 1);

  // 409 without a key is a real conflict; with one, the first upload is still in flight.
  const s3 = await scripted([[409], [409], [201]]);
  t.after(s3.close);
  const api3 = createM4shClient({ baseUrl: s3.url, retry: { baseDelayMs: 1 } });
  const conflict = await api3.POST("/api/v1/classrooms/", { body: { title: "x" } });
  assert.equal(conflict.response.status, 409);
  assert.equal(s3.seen.length, 1);
  const up = await api3.POST("/api/v1/solo/sessions/{session_id}/snapshot/", {
    params: { path: { session_id: "00000000-0000-0000-0000-000000000000" }, header: { "Idempotency-Key": "k1" } },
    ...snapshotBody({ a: 1 }),
  });
  assert.equal(up.response.status, 201);
  assert.deepEqual(s3.seen.slice(1).map((x) => [x.key, x.body]), [["k1", '{"a":1}'], ["k1", '{"a":1}']]);

  // Retries run out: the last answer, as an M4shError with its Retry-After, through ok().
  const s4 = await scripted([[429, { "Retry-After": "0" }]]);
  t.after(s4.close);
  const api4 = createM4shClient({ baseUrl: s4.url, retry: { retries: 2 } });
  const last = await api4.GET("/api/v1/me/");
  assert.equal(s4.seen.length, 3);
  assert.throws(() => ok(last), (e) => e instanceof M4shError && e.status === 429 && e.code === "rate_limited" && e.retryAfter === 0);

  // A Retry-After longer than maxDelayMs is not waited for.
  const s5 = await scripted([[503, { "Retry-After": "120" }], [200]]);
  t.after(s5.close);
  const t0 = Date.now();
  const long = await createM4shClient({ baseUrl: s5.url, retry: { maxDelayMs: 5000 } }).GET("/api/v1/me/");
  assert.equal(long.response.status, 503);
  assert.equal(s5.seen.length, 1);
  assert.ok(Date.now() - t0 < 10_000, "a 120 s Retry-After was waited for"); // generous: the machine may be loaded
});

test("M4shError carries the problem of the real service", live, async () => {
  const anon = createM4shClient({ baseUrl });
  await assert.rejects(async () => ok(await anon.GET("/api/v1/me/")), (e) => {
    assert.ok(e instanceof M4shError);
    assert.equal(e.status, 401);
    assert.equal(e.code, "unauthorized");
    assert.equal(e.name, "M4shError");
    assert.match(e.message, /^401 unauthorized/);
    assert.equal(e.retryAfter, undefined);
    return true;
  });
  const api = createM4shClient({ baseUrl, token: mint(user("errors")) });
  const bad = await api.GET("/api/v1/classrooms/", { params: { query: { limit: 0 } } });
  assert.throws(() => ok(bad), (e) => {
    assert.equal(e.status, 400);
    assert.equal(e.code, "validation_error");
    assert.deepEqual(e.errors.map((f) => f.field), ["query.limit"]);
    assert.equal(e.instance, "/api/v1/classrooms/");
    return true;
  });
  const missing = await api.GET("/api/v1/classrooms/{class_id}/", { params: { path: { class_id: "00000000-0000-0000-0000-000000000000" } } });
  assert.throws(() => ok(missing), (e) => e.status === 404 && e.code === "not_found");

  // The write throttle: 429 rate_limited with a Retry-After past maxDelayMs surfaces at once.
  const writer = createM4shClient({ baseUrl, token: mint(user("writer")), retry: { maxDelayMs: 1000 } });
  let refused;
  for (let i = 0; i < 200 && !refused; i++) {
    const r = await writer.POST("/api/v1/solo/sessions/", { body: {} });
    if (r.response.status === 429) refused = r;
    else assert.equal(r.response.status, 201, JSON.stringify(r.error));
  }
  assert.ok(refused, "no 429 within 200 creations");
  assert.throws(() => ok(refused), (e) => {
    assert.equal(e.code, "rate_limited");
    assert.ok(e.retryAfter >= 1 && e.retryAfter <= 61, `retryAfter ${e.retryAfter}`);
    return true;
  });
});

test("paginate and pages follow next_cursor over every list route", live, async () => {
  const api = createM4shClient({ baseUrl, token: mint(user("pager")) });
  const made = [];
  for (let i = 0; i < 5; i++) made.push(ok(await api.POST("/api/v1/classrooms/", { body: { title: `C${i}` } })).id);
  const seen = [];
  for await (const c of paginate(api, "/api/v1/classrooms/", { pageSize: 2 })) seen.push(c.id);
  assert.deepEqual(seen, [...made].reverse(), "every classroom once, newest first");
  const sizes = [];
  for await (const p of pages(api, "/api/v1/classrooms/", { pageSize: 2 })) sizes.push(p.items.length);
  assert.deepEqual(sizes, [2, 2, 1]);

  const class_id = made[0];
  const sessions = [];
  for (let i = 0; i < 3; i++) {
    sessions.push(ok(await api.POST("/api/v1/classrooms/{class_id}/sessions/", { params: { path: { class_id } }, body: { title: `S${i}` } })).id);
  }
  const listed = [];
  for await (const s of paginate(api, "/api/v1/classrooms/{class_id}/sessions/", { params: { path: { class_id } }, pageSize: 1 })) listed.push(s.id);
  assert.deepEqual(listed, [...sessions].reverse());

  // Stopping early sends no further request.
  const c = counting();
  const counted = createM4shClient({ baseUrl, token: mint(user("pager")), fetch: c.fetch });
  for await (const _ of paginate(counted, "/api/v1/classrooms/", { pageSize: 2 })) break;
  assert.equal(c.sent.length, 1);

  // An error page throws M4shError.
  await assert.rejects(async () => {
    for await (const _ of paginate(api, "/api/v1/classrooms/", { pageSize: 1000 })) assert.fail("no page expected");
  }, (e) => e instanceof M4shError && e.code === "validation_error");
});

test("a 401 asks the token source for a refresh once and resends", live, async () => {
  const me = user("refresh");
  const why = [];
  const c = counting();
  const api = createM4shClient({
    baseUrl, fetch: c.fetch,
    token: (w) => { why.push(w); return w === "refresh" ? mint(me) : mint(me, -3600); },
  });
  const r = await api.GET("/api/v1/me/");
  assert.equal(r.response.status, 200, JSON.stringify(r.error));
  assert.equal(r.data.user_id, me);
  assert.deepEqual(why, ["request", "refresh"]);
  assert.equal(c.sent.length, 2);
  assert.notEqual(c.sent[0].auth, c.sent[1].auth);

  // A POST body is sent again whole after the refresh.
  why.length = 0;
  const cls = await api.POST("/api/v1/classrooms/", { body: { title: "After refresh" } });
  assert.equal(cls.response.status, 201);
  assert.equal(cls.data.title, "After refresh");

  // The fresh token refused too: the 401 is the answer, no loop.
  why.length = 0;
  c.sent.length = 0;
  const stale = createM4shClient({ baseUrl, fetch: c.fetch, token: (w) => { why.push(w); return mint(me, -3600); } });
  const denied = await stale.GET("/api/v1/me/");
  assert.equal(denied.response.status, 401);
  assert.deepEqual(why, ["request", "refresh"]);
  assert.equal(c.sent.length, 2);

  // Concurrent 401s share one refresh.
  let refreshes = 0;
  const shared = createM4shClient({ baseUrl, token: async (w) => {
    if (w === "refresh") { refreshes++; await new Promise((r) => setTimeout(r, 50)); return mint(me); }
    return mint(me, -3600);
  } });
  const all = await Promise.all([1, 2, 3].map(() => shared.GET("/api/v1/me/")));
  assert.deepEqual(all.map((x) => x.response.status), [200, 200, 200]);
  assert.equal(refreshes, 1);

  // A plain string token has nothing to refresh with.
  const fixed = await createM4shClient({ baseUrl, token: mint(me, -3600) }).GET("/api/v1/me/");
  assert.equal(fixed.response.status, 401);
});

test("snapshot bytes, text and JSON round trip with the type snapshotBody chose", live, async () => {
  const api = createM4shClient({ baseUrl, token: mint(user("snap")) });
  const solo = ok(await api.POST("/api/v1/solo/sessions/", { body: { title: "Types" } }));
  const path = { session_id: solo.id };
  const cases = [
    [new Uint8Array([0, 255, 1, 254]), "application/octet-stream", "arrayBuffer"],
    ["plain words {", "text/plain; charset=utf-8", "text"],
    [{ strokes: [1, 2] }, "application/json", "json"],
  ];
  for (const [input, type, parseAs] of cases) {
    const saved = await api.POST("/api/v1/solo/sessions/{session_id}/snapshot/", { params: { path }, ...snapshotBody(input) });
    assert.equal(saved.response.status, 201, JSON.stringify(saved.error));
    const back = await api.GET("/api/v1/solo/sessions/{session_id}/snapshot/latest/", { params: { path }, parseAs });
    assert.equal(back.response.headers.get("Content-Type"), type);
    if (parseAs === "arrayBuffer") assert.deepEqual([...new Uint8Array(back.data)], [...input]);
    else assert.deepEqual(back.data, input);
  }
});
