// The live demo: plain ES modules over the built TypeScript client (lib/m4sh = gen/ts/dist).
// Sign-in (dev user picker, or a pasted token), live lists of classrooms and sessions, the
// board with named coloured cursors, tutoring (hands, reactions, spotlight), the solo
// workspace with its snapshot history, and one error banner fed by M4shError.
import { createM4shClient, M4shError, NetworkError, ok, PresenceSocket, snapshotBody } from "./lib/m4sh/index.js";
import { setupHistory } from "./history.js";

const $ = (id) => document.getElementById(id);
const store = window.sessionStorage; // per window, so two windows can be two users
let token = store.getItem("m4sh.token") || "";
let devUser = store.getItem("m4sh.devUser") || ""; // set when signed in through the picker
let me = null;
let socket = null;

// A dev token lives 15 minutes: on a 401 (REST) or a 4401 (WebSocket) the client asks for a
// fresh one, which the picker's route mints again. A pasted token cannot be refreshed.
async function currentToken(why) {
  if (why === "refresh" && devUser) {
    try {
      await mintToken(devUser);
    } catch {
      // the answer is the old token; its 401 then surfaces as usual
    }
  }
  return token || undefined;
}
const api = createM4shClient({ token: currentToken });
const publicApi = createM4shClient();

function status(el, text, error = false) {
  el.textContent = text;
  el.classList.toggle("error", error);
}

// --- Error banner: status, code, title, detail and Retry-After of an M4shError ------------
let retryLast = null;

function showError(err, retry) {
  const b = $("banner");
  let title, detail, after = "";
  if (err instanceof M4shError) {
    title = `${err.status} ${err.code}`;
    detail = err.title + (err.detail && err.detail !== err.title ? `: ${err.detail}` : "");
    if (err.errors.length) detail += ` (${err.errors.map((f) => `${f.field}: ${f.message}`).join("; ")})`;
    if (err.retryAfter !== undefined) after = `Retry after ${err.retryAfter} s`;
    b.dataset.status = String(err.status);
    b.dataset.code = err.code;
  } else if (err instanceof NetworkError) {
    title = "No answer from the service";
    detail = err.message;
    b.dataset.status = "0";
    b.dataset.code = "network";
  } else {
    title = "Something went wrong";
    detail = String(err?.message ?? err);
    b.dataset.status = "";
    b.dataset.code = "";
  }
  b.querySelector(".banner-title").textContent = title;
  b.querySelector(".banner-detail").textContent = detail;
  b.querySelector(".banner-retry-after").textContent = after;
  retryLast = retry ?? null;
  $("banner-retry").hidden = !retry;
  b.hidden = false;
}

function hideBanner() {
  $("banner").hidden = true;
  retryLast = null;
}

$("banner-close").addEventListener("click", hideBanner);
$("banner-retry").addEventListener("click", () => { const r = retryLast; hideBanner(); r?.(); });

/** Runs an action; a failure goes to the banner with a Retry of the same action. */
async function act(fn) {
  try {
    return await fn();
  } catch (e) {
    showError(e, () => act(fn));
    return undefined;
  }
}

// --- Sign-in ------------------------------------------------------------------------------
const palette = ["#e8590c", "#1971c2", "#2f9e44", "#c2255c", "#6741d9", "#0c8599", "#e67700", "#495057"];

function defaultColour(id) {
  let h = 0;
  for (const ch of id) h = (h * 31 + ch.codePointAt(0)) >>> 0;
  return palette[h % palette.length];
}

function avatar(id, name, colour = defaultColour(id)) {
  const a = document.createElement("span");
  a.className = "avatar";
  a.style.setProperty("--c", colour);
  a.textContent = (name || id).slice(0, 1).toUpperCase();
  return a;
}

async function mintToken(user_id) {
  const res = ok(await publicApi.POST("/api/v1/dev/tokens/", { body: { user_id } }));
  token = res.access_token;
  devUser = user_id;
  store.setItem("m4sh.token", token);
  store.setItem("m4sh.devUser", devUser);
}

async function loadDevUsers() {
  let res;
  try {
    res = await publicApi.GET("/api/v1/dev/users/");
  } catch (e) {
    res = undefined;
  }
  const users = res?.data?.items;
  if (!users) { // DEV_TOKENS is off (404): a pasted token is the way in
    $("dev-off").hidden = false;
    $("paste-token").open = true;
    return;
  }
  $("dev-users").replaceChildren(...users.map((u) => {
    const b = document.createElement("button");
    b.className = "user-pick";
    b.dataset.user = u.user_id;
    const text = document.createElement("span");
    text.append(u.name);
    const role = document.createElement("small");
    role.textContent = `${u.user_id} · ${u.role}`;
    text.append(role);
    b.append(avatar(u.user_id, u.name), text);
    b.addEventListener("click", () => act(async () => { await mintToken(u.user_id); await signIn(); }));
    return b;
  }));
}

async function signIn() {
  const res = await api.GET("/api/v1/me/");
  if (!res.data) {
    me = null;
    throw new M4shError(res.response, res.error);
  }
  me = res.data;
  $("me").textContent = `signed in as ${me.user_id}${me.name ? ` (${me.name})` : ""}`;
  const av = $("me-avatar");
  av.replaceWith(Object.assign(avatar(me.user_id, me.name), { id: "me-avatar" }));
  $("sign-out").hidden = false;
  $("signin").hidden = true;
  $("app").hidden = false;
  hideBanner();
  await loadClassrooms();
}

function signOut() {
  leave();
  token = "";
  devUser = "";
  me = null;
  classId = sessionId = "";
  store.removeItem("m4sh.token");
  store.removeItem("m4sh.devUser");
  $("me").textContent = "not signed in";
  $("me-avatar").hidden = true;
  $("sign-out").hidden = true;
  $("app").hidden = true;
  $("signin").hidden = false;
}

$("use-token").addEventListener("click", () => act(async () => {
  token = $("token").value.trim();
  devUser = "";
  store.setItem("m4sh.token", token);
  store.removeItem("m4sh.devUser");
  await signIn();
}));
$("sign-out").addEventListener("click", signOut);

// --- Classrooms and sessions: live lists ----------------------------------------------------
// They refresh on their own: when the window gets focus or becomes visible again, and on
// presence events of the joined session (someone joined or left: a tutor may have started
// another session). Refreshes coalesce: one at a time, and at most one more queued.
let classId = "";
let sessionId = "";
let classrooms = [];
let sessions = [];
let joined = ""; // the session of the open socket

function listItem(id, title, badge, selected, onClick) {
  const li = document.createElement("li");
  li.dataset.id = id;
  li.classList.toggle("selected", selected);
  const t = document.createElement("span");
  t.className = "title";
  t.textContent = title;
  li.append(t);
  if (badge) {
    const b = document.createElement("span");
    b.className = `badge ${badge}`;
    b.textContent = badge;
    li.append(b);
  }
  li.addEventListener("click", onClick);
  return li;
}

function isTutorOf(id) {
  return classrooms.find((c) => c.id === id)?.tutor_id === me?.user_id;
}

function renderClassrooms() {
  $("classrooms").replaceChildren(...classrooms.map((c) => listItem(c.id, c.title,
    c.tutor_id === me?.user_id ? "tutor" : "", c.id === classId, () => act(() => selectClassroom(c.id)))));
  $("classrooms-empty").hidden = classrooms.length > 0;
  const tutor = isTutorOf(classId);
  $("start-session").hidden = !classId || !tutor;
  $("member-form").hidden = !classId || !tutor;
}

function renderSessions() {
  $("sessions").replaceChildren(...sessions.map((s) => listItem(s.id, s.title || `Session ${s.id.slice(0, 8)}`,
    s.id === joined ? "live" : "", s.id === sessionId, () => selectSession(s.id))));
  $("sessions-empty").hidden = sessions.length > 0;
}

async function loadClassrooms(select) {
  const page = ok(await api.GET("/api/v1/classrooms/", { params: { query: { limit: 100 } } }));
  classrooms = page.items;
  if (select) classId = select;
  if (!classrooms.some((c) => c.id === classId)) classId = classrooms[0]?.id ?? "";
  renderClassrooms();
  await loadSessions();
}

async function loadSessions(select) {
  if (!classId) {
    sessions = [];
    sessionId = "";
    $("roster").replaceChildren();
    renderSessions();
    return;
  }
  const class_id = classId;
  const [list, roster] = await Promise.all([
    api.GET("/api/v1/classrooms/{class_id}/sessions/", { params: { path: { class_id }, query: { limit: 100 } } }),
    api.GET("/api/v1/classrooms/{class_id}/members/", { params: { path: { class_id } } }),
  ]);
  if (class_id !== classId) return; // another classroom was picked meanwhile
  sessions = ok(list).items.filter((s) => s.status === "active");
  if (select) sessionId = select;
  if (!sessions.some((s) => s.id === sessionId)) sessionId = sessions[0]?.id ?? "";
  renderSessions();
  $("roster").replaceChildren(...ok(roster).items.map((m) => {
    const li = document.createElement("li");
    li.dataset.user = m.user_id;
    const name = document.createElement("span");
    name.textContent = m.user_id;
    const role = document.createElement("span");
    role.className = "role";
    role.textContent = m.role;
    li.append(avatar(m.user_id, m.user_id), name, role);
    return li;
  }));
}

async function selectClassroom(id) {
  classId = id;
  renderClassrooms();
  await loadSessions();
}

function selectSession(id) {
  sessionId = id;
  renderSessions();
}

let refreshing = null;
let refreshQueued = false;

/** Reloads the lists, keeping the selection; quiet about failures (the next event retries). */
function refreshLists() {
  if (!me) return;
  if (refreshing) {
    refreshQueued = true;
    return;
  }
  refreshing = loadClassrooms().catch(() => {}).finally(() => {
    refreshing = null;
    if (refreshQueued) {
      refreshQueued = false;
      refreshLists();
    }
  });
}

window.addEventListener("focus", refreshLists);
document.addEventListener("visibilitychange", () => { if (document.visibilityState === "visible") refreshLists(); });

$("classroom-form").addEventListener("submit", (e) => {
  e.preventDefault();
  act(async () => {
    const title = $("new-classroom").value.trim() || "Demo classroom";
    const c = ok(await api.POST("/api/v1/classrooms/", { body: { title } }));
    $("new-classroom").value = "";
    await loadClassrooms(c.id);
  });
});

$("member-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const user_id = $("member").value;
  if (!classId || !user_id.trim()) return;
  act(async () => {
    ok(await api.POST("/api/v1/classrooms/{class_id}/members/", { params: { path: { class_id: classId } }, body: { user_id } }));
    $("member").value = "";
    await loadSessions();
  });
});

$("start-session").addEventListener("click", () => act(async () => {
  if (!classId) return;
  const s = ok(await api.POST("/api/v1/classrooms/{class_id}/sessions/", {
    params: { path: { class_id: classId } }, body: { title: `Lesson ${new Date().toLocaleTimeString()}` },
  }));
  await loadSessions(s.id);
}));

// --- Presence and cursors -------------------------------------------------------------------
// Coloured, named cursors from each user's presence state ({color, name}). Coordinates are
// pixels of the board's canvas, so windows of any size agree. Nothing is cleared while the
// socket reconnects: the list, cursors and colours stay until a snapshot says who is really
// here, and the leave grace keeps everyone in it, so nobody flickers.
const board = $("board");
const canvas = $("board-canvas");
const dots = new Map();
const colours = new Map(); // last colour seen per user, kept through reconnects
let present = new Map();

function colourOf(id) {
  const c = present.get(id)?.state?.color;
  if (typeof c === "string" && /^#[0-9a-f]{6}$/i.test(c)) colours.set(id, c);
  return colours.get(id) ?? defaultColour(id);
}

function nameOf(id) {
  const u = present.get(id);
  return u?.name || (typeof u?.state?.name === "string" && u.state.name) || id;
}

function renderUsers(users) {
  present = new Map(users.map((u) => [u.user_id, u]));
  $("presence").replaceChildren(...users.map((u) => {
    const li = document.createElement("li");
    li.dataset.user = u.user_id;
    const name = document.createElement("span");
    name.textContent = nameOf(u.user_id) + (u.user_id === me?.user_id ? " (you)" : "");
    const role = document.createElement("span");
    role.className = "role";
    role.textContent = u.role;
    li.append(avatar(u.user_id, nameOf(u.user_id), colourOf(u.user_id)), name, role);
    return li;
  }));
  $("presence-count").textContent = String(users.length);
  for (const [id, dot] of dots) {
    if (!present.has(id)) { dot.remove(); dots.delete(id); }
  }
  // A snapshot carries everyone's latest cursor: draw them at once.
  for (const u of users) {
    if (u.cursor && u.user_id !== me?.user_id) moveDot({ user_id: u.user_id, ...u.cursor });
    else if (dots.has(u.user_id)) styleDot(dots.get(u.user_id), u.user_id);
  }
}

function styleDot(dot, id) {
  dot.style.setProperty("--c", colourOf(id));
  dot.firstChild.textContent = nameOf(id);
}

function moveDot({ user_id, x, y }) {
  let dot = dots.get(user_id);
  if (!dot) {
    dot = document.createElement("div");
    dot.className = "cursor";
    dot.dataset.user = user_id;
    dot.append(document.createElement("span"));
    canvas.append(dot);
    dots.set(user_id, dot);
    styleDot(dot, user_id);
  }
  dot.style.left = `${x}px`;
  dot.style.top = `${y}px`;
}

function myState() {
  if (!$("my-color").dataset.picked && me) $("my-color").value = defaultColour(me.user_id);
  return { color: $("my-color").value, name: me?.name || me?.user_id || "" };
}

function wsStatus(text, state = "") {
  const el = $("ws-status");
  el.textContent = text;
  el.className = `pill ${state}`;
}

function connect() {
  if (!classId || !sessionId) return showError(new Error("Pick a classroom and a live session first."));
  socket?.close();
  const s = new PresenceSocket({ classId, sessionId, getToken: currentToken });
  socket = s;
  joined = sessionId;
  $("session-name").textContent = sessions.find((x) => x.id === sessionId)?.title || "Session";
  renderSessions();
  s.on("users", (users) => { renderUsers(users); refreshLists(); });
  s.on("cursor", moveDot);
  s.on("state", ({ user_id }) => {
    renderUsers(s.users);
    if (dots.has(user_id)) styleDot(dots.get(user_id), user_id);
  });
  s.on("snapshot", () => wsStatus(`connected to ${joined.slice(0, 8)}`, "connected"));
  s.on("close", (c) => wsStatus(`closed ${c.code} ${c.reason}` +
    (c.reconnectInMs !== undefined ? `, reconnecting in ${c.reconnectInMs} ms` : ""), c.action === "stop" ? "error" : ""));
  s.on("stopped", (c) => {
    if (socket !== s) return;
    wsStatus(`stopped (${c.code} ${c.reason})`, c.code !== 1000 ? "error" : "");
    refreshLists(); // an ended session (4403) leaves the list
  });
  wireTutoring(s);
  s.connect();
  s.setState(myState()); // sent once open, and again after every reconnect
}

function leave() {
  socket?.close();
  socket = null;
  joined = "";
  $("session-name").textContent = "No session joined";
  wsStatus("not connected");
  renderUsers([]);
  renderHands([]);
  renderSessions();
}

$("my-color").addEventListener("input", () => {
  $("my-color").dataset.picked = "true";
  if (socket) socket.setState(myState());
});

board.addEventListener("pointermove", (e) => {
  if (!socket) return;
  const r = canvas.getBoundingClientRect();
  socket.sendCursor(Math.round(e.clientX - r.left), Math.round(e.clientY - r.top));
});

// --- Tutoring: hands queue, reactions, spotlight and "follow tutor" -------------------------
const emojis = ["👍", "👏", "❤️", "😂", "😮", "❓"];
let followed = false; // the board is being moved by the tutor's viewport, not by this user

function isTutor() {
  return present.get(me?.user_id)?.role === "tutor";
}

function renderHands(hands) {
  const tutor = isTutor();
  $("hands").replaceChildren(...hands.map((h) => {
    const li = document.createElement("li");
    li.dataset.user = h.user_id;
    const name = document.createElement("span");
    name.textContent = nameOf(h.user_id);
    li.append(avatar(h.user_id, nameOf(h.user_id), colourOf(h.user_id)), name);
    if (tutor) {
      const b = document.createElement("button");
      b.textContent = "Lower";
      b.addEventListener("click", () => socket?.lowerHand(h.user_id));
      li.append(b);
    }
    return li;
  }));
  $("hands-count").textContent = String(hands.length);
  $("hands-empty").hidden = hands.length > 0;
}

function bubble({ user_id, emoji }) {
  const b = document.createElement("span");
  b.className = "bubble";
  b.dataset.emoji = emoji;
  b.dataset.user = user_id;
  b.textContent = `${emoji} ${nameOf(user_id)}`;
  $("reaction-bubbles").append(b);
  setTimeout(() => b.remove(), 2500);
}

function follow({ user_id, x, y }) {
  if (user_id === me?.user_id || !$("follow").checked) return;
  followed = true;
  board.scrollTo({ left: x, top: y });
  board.dataset.followed = `${Math.round(x)},${Math.round(y)}`;
}

function sendViewport() {
  if (socket?.spotlightHolder?.user_id !== me?.user_id) return;
  socket.sendViewport({ x: board.scrollLeft, y: board.scrollTop, w: board.clientWidth, h: board.clientHeight });
}

function wireTutoring(s) {
  s.on("hands", renderHands);
  s.on("users", () => renderHands(s.hands));
  s.on("reaction", bubble);
  s.on("viewport", follow);
  s.on("spotlight", ({ user_id, on }) => {
    const mine = user_id === me?.user_id;
    if (mine) {
      $("spotlight").checked = on;
      if (on) sendViewport();
    }
    status($("tutoring-status"), on ? `${nameOf(user_id)} has the spotlight` : "spotlight off");
  });
  s.on("error", (e) => status($("tutoring-status"), `refused ${e.for}: ${e.code} (${e.message})`, true));
}

$("reaction-buttons").replaceChildren(...emojis.map((e) => {
  const b = document.createElement("button");
  b.textContent = e;
  b.dataset.emoji = e;
  b.title = `react ${e}`;
  b.addEventListener("click", () => socket?.react(e));
  return b;
}));
$("raise-hand").addEventListener("click", () => socket?.raiseHand());
$("lower-hand").addEventListener("click", () => socket?.lowerHand());
$("clear-hands").addEventListener("click", () => { for (const h of socket?.hands ?? []) socket.lowerHand(h.user_id); });
$("spotlight").addEventListener("change", (e) => {
  if (!socket) return;
  socket.spotlight(e.target.checked);
  e.target.checked = socket.spotlightHolder?.user_id === me?.user_id; // the server's answer sets it
});
$("follow").addEventListener("change", () => {
  const v = socket?.spotlightHolder?.viewport;
  if (v) follow({ user_id: socket.spotlightHolder.user_id, ...v });
});
board.addEventListener("scroll", () => {
  if (followed) { followed = false; return; } // our own follow moved it
  sendViewport();
});

// --- Solo workspace: one solo session per user, remembered in this window ------------------
async function soloSession() {
  const key = `m4sh.solo.${me?.user_id}`;
  const id = store.getItem(key);
  if (id) return id;
  const s = ok(await api.POST("/api/v1/solo/sessions/", { body: { title: "Demo workspace" } }));
  store.setItem(key, s.id);
  return s.id;
}

/** The editor's text when it is JSON; otherwise an inline message and undefined. */
function validDoc() {
  const ta = $("snapshot-doc");
  try {
    JSON.parse(ta.value);
  } catch (e) {
    ta.classList.add("invalid");
    $("snapshot-error").textContent = `Not valid JSON, nothing was saved: ${e.message}`;
    $("snapshot-error").hidden = false;
    return undefined;
  }
  ta.classList.remove("invalid");
  $("snapshot-error").hidden = true;
  return ta.value;
}

$("snapshot-doc").addEventListener("input", () => { if (!$("snapshot-error").hidden) validDoc(); });

$("save-snapshot").addEventListener("click", () => {
  const doc = validDoc();
  if (doc === undefined) return;
  act(async () => {
    const session_id = await soloSession();
    const res = await api.POST("/api/v1/solo/sessions/{session_id}/snapshot/", {
      params: { path: { session_id } }, ...snapshotBody(doc, "application/json"),
    });
    const r = ok(res);
    const st = r.storage;
    status($("solo-status"), `${res.response.status === 201 ? "saved" : "unchanged,"} revision ${r.revision} ` +
      `(${r.size_bytes} bytes, ${r.stored_bytes} stored; used ${st.used} of ${st.quota})`);
    await history.refresh();
  });
});

async function loadLatest() {
  const session_id = await soloSession();
  const res = await api.GET("/api/v1/solo/sessions/{session_id}/snapshot/latest/", {
    params: { path: { session_id } }, parseAs: "text",
  });
  if (res.error !== undefined || res.data === undefined) throw new M4shError(res.response, res.error);
  $("snapshot-doc").value = res.data;
  validDoc();
  status($("solo-status"), `restored revision ${res.response.headers.get("X-Snapshot-Revision")}`);
}

$("restore-snapshot").addEventListener("click", () => act(loadLatest));

const history = setupHistory({ api, soloSession, loadLatest, act });

// --- Telemetry (public route; sent without the token) ---------------------------------------
$("telemetry-form").addEventListener("submit", (e) => {
  e.preventDefault();
  act(async () => {
    const name = $("event-name").value.trim() || "demo.clicked";
    const res = await publicApi.POST("/api/v1/logs/telemetry/", {
      body: { name, level: "info", ts: new Date().toISOString(), props: { page: "demo" } },
    });
    if (res.response.status !== 204) throw new M4shError(res.response, res.error);
    status($("telemetry-status"), `accepted (204) ${name}`);
  });
});

$("connect").addEventListener("click", connect);
$("disconnect").addEventListener("click", leave);

// --- Start --------------------------------------------------------------------------------
await loadDevUsers();
if (token) {
  $("token").value = devUser ? "" : token;
  await act(signIn);
}
document.body.dataset.ready = "true";
