// The live demo: plain ES module over the built TypeScript client (lib/m4sh = gen/ts/dist).
import { createM4shClient, PresenceSocket, snapshotBody } from "./lib/m4sh/index.js";
import { setupHistory } from "./history.js";

const $ = (id) => document.getElementById(id);
const store = window.sessionStorage; // per window, so two windows can be two users
let token = store.getItem("m4sh.token") || "";
const api = createM4shClient({ token: () => token });
const publicApi = createM4shClient();
let me = null;
let socket = null;

function status(el, text, error = false) {
  el.textContent = text;
  el.classList.toggle("error", error);
}

function problem(res) {
  const e = res.error;
  return `${res.response.status} ${e?.code ?? ""} ${e?.detail ?? ""}`.trim();
}

// 1. Token
async function useToken() {
  token = $("token").value.trim();
  store.setItem("m4sh.token", token);
  const res = await api.GET("/api/v1/me/");
  if (!res.data) {
    me = null;
    status($("me"), `token refused: ${problem(res)}`, true);
    return;
  }
  me = res.data;
  status($("me"), `signed in as ${me.user_id}${me.name ? ` (${me.name})` : ""}`);
  await loadClassrooms();
}

// 2. Classroom and session
async function loadClassrooms(select) {
  const res = await api.GET("/api/v1/classrooms/", { params: { query: { limit: 100 } } });
  if (!res.data) return status($("classroom-status"), problem(res), true);
  const sel = $("classroom");
  sel.replaceChildren(...res.data.items.map((c) => new Option(`${c.title}${c.tutor_id === me?.user_id ? " (tutor)" : ""}`, c.id)));
  if (select) sel.value = select;
  status($("classroom-status"), `${res.data.items.length} classroom(s)`);
  await loadSessions();
}

async function loadSessions(select) {
  const class_id = $("classroom").value;
  const sel = $("session");
  if (!class_id) return sel.replaceChildren();
  const [sessions, roster] = await Promise.all([
    api.GET("/api/v1/classrooms/{class_id}/sessions/", { params: { path: { class_id }, query: { limit: 100 } } }),
    api.GET("/api/v1/classrooms/{class_id}/members/", { params: { path: { class_id } } }),
  ]);
  if (!sessions.data) return status($("classroom-status"), problem(sessions), true);
  const active = sessions.data.items.filter((s) => s.status === "active");
  sel.replaceChildren(...active.map((s) => new Option(s.title || `session ${s.id.slice(0, 8)}`, s.id)));
  if (select) sel.value = select;
  if (roster.data) $("roster").textContent = "roster: " + roster.data.items.map((m) => `${m.user_id} (${m.role})`).join(", ");
}

async function createClassroom() {
  const title = $("new-classroom").value.trim() || "Demo classroom";
  const res = await api.POST("/api/v1/classrooms/", { body: { title } });
  if (!res.data) return status($("classroom-status"), problem(res), true);
  status($("classroom-status"), `created classroom ${res.data.title}`);
  await loadClassrooms(res.data.id);
}

async function addMember() {
  const class_id = $("classroom").value;
  const user_id = $("member").value.trim();
  if (!class_id || !user_id) return;
  const res = await api.POST("/api/v1/classrooms/{class_id}/members/", { params: { path: { class_id } }, body: { user_id } });
  if (!res.data) return status($("classroom-status"), problem(res), true);
  status($("classroom-status"), `${user_id} is a member (${res.response.status === 201 ? "added" : "already"})`);
  await loadSessions($("session").value);
}

async function startSession() {
  const class_id = $("classroom").value;
  if (!class_id) return;
  const res = await api.POST("/api/v1/classrooms/{class_id}/sessions/", {
    params: { path: { class_id } }, body: { title: `Demo ${new Date().toLocaleTimeString()}` },
  });
  if (!res.data) return status($("classroom-status"), problem(res), true);
  status($("classroom-status"), `started ${res.data.title}`);
  await loadSessions(res.data.id);
}

// 3. Presence and cursors: coloured, named cursors from each user's presence state
// ({color, name}). Coordinates are pixels of the board's canvas, so windows of any size
// agree. Nothing is cleared while the socket reconnects (a server restart, a network blip):
// the list, dots and colours stay until a snapshot says who is really here, and the leave
// grace keeps everyone in it, so nobody flickers.
const board = $("board");
const canvas = $("board-canvas");
const dots = new Map();
const colours = new Map(); // last colour seen per user, kept through reconnects
let present = new Map();
const palette = ["#e8590c", "#1971c2", "#2f9e44", "#c2255c", "#6741d9", "#0c8599", "#e67700", "#495057"];

function defaultColour(id) {
  let h = 0;
  for (const ch of id) h = (h * 31 + ch.codePointAt(0)) >>> 0;
  return palette[h % palette.length];
}

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
    const sw = document.createElement("span");
    sw.className = "swatch";
    sw.style.setProperty("--c", colourOf(u.user_id));
    li.append(sw, nameOf(u.user_id));
    const role = document.createElement("span");
    role.className = "role";
    role.textContent = u.role;
    li.append(role);
    return li;
  }));
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

function connect() {
  const classId = $("classroom").value, sessionId = $("session").value;
  if (!classId || !sessionId) return status($("ws-status"), "pick a classroom and a session first", true);
  socket?.close();
  const s = new PresenceSocket({ classId, sessionId, getToken: () => token || undefined });
  socket = s;
  s.on("users", renderUsers);
  s.on("cursor", moveDot);
  s.on("state", ({ user_id }) => {
    renderUsers(s.users);
    if (dots.has(user_id)) styleDot(dots.get(user_id), user_id);
  });
  s.on("snapshot", () => status($("ws-status"), `connected to ${sessionId.slice(0, 8)}`));
  s.on("close", (c) => status($("ws-status"), `closed ${c.code} ${c.reason}` +
    (c.reconnectInMs !== undefined ? `, reconnecting in ${c.reconnectInMs} ms` : ""), c.action === "stop"));
  s.on("stopped", (c) => { if (socket === s) status($("ws-status"), `stopped (${c.code} ${c.reason})`, c.code !== 1000); });
  wireTutoring(s);
  s.connect();
  s.setState(myState()); // sent once open, and again after every reconnect
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

// 3b. Tutoring: hands queue, reactions, spotlight and "follow tutor".
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
    li.textContent = nameOf(h.user_id);
    if (tutor) {
      const b = document.createElement("button");
      b.textContent = "Lower";
      b.addEventListener("click", () => socket?.lowerHand(h.user_id));
      li.append(b);
    }
    return li;
  }));
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

// 4. Solo snapshot (one solo session per user, remembered in this window)
async function soloSession() {
  const key = `m4sh.solo.${me?.user_id}`;
  let id = store.getItem(key);
  if (id) return id;
  const res = await api.POST("/api/v1/solo/sessions/", { body: { title: "Demo workspace" } });
  if (!res.data) throw new Error(problem(res));
  store.setItem(key, res.data.id);
  return res.data.id;
}

async function saveSnapshot() {
  try {
    const session_id = await soloSession();
    const res = await api.POST("/api/v1/solo/sessions/{session_id}/snapshot/", {
      params: { path: { session_id } }, ...snapshotBody($("snapshot-doc").value, "application/json"),
    });
    if (!res.data) return status($("solo-status"), problem(res), true);
    const st = res.data.storage;
    status($("solo-status"), `${res.response.status === 201 ? "saved" : "unchanged,"} revision ${res.data.revision} ` +
      `(${res.data.size_bytes} bytes, ${res.data.stored_bytes} stored; used ${st.used} of ${st.quota})`);
    await history.refresh();
  } catch (e) {
    status($("solo-status"), String(e), true);
  }
}

async function restoreSnapshot() {
  try {
    const session_id = await soloSession();
    const res = await api.GET("/api/v1/solo/sessions/{session_id}/snapshot/latest/", {
      params: { path: { session_id } }, parseAs: "text",
    });
    if (res.error !== undefined || res.data === undefined) return status($("solo-status"), problem(res), true);
    $("snapshot-doc").value = res.data;
    status($("solo-status"), `restored revision ${res.response.headers.get("X-Snapshot-Revision")}`);
  } catch (e) {
    status($("solo-status"), String(e), true);
  }
}

// 5. Snapshot history (history.js)
const history = setupHistory({ api, soloSession, loadLatest: () => restoreSnapshot() });

// 6. Telemetry (public route; sent without the token)
async function sendEvent() {
  const name = $("event-name").value.trim() || "demo.clicked";
  const res = await publicApi.POST("/api/v1/logs/telemetry/", {
    body: { name, level: "info", ts: new Date().toISOString(), props: { page: "demo" } },
  });
  status($("telemetry-status"), res.response.status === 204 ? `accepted (204) ${name}` : problem(res), res.response.status !== 204);
}

$("use-token").addEventListener("click", useToken);
$("refresh-classrooms").addEventListener("click", () => loadClassrooms($("classroom").value));
$("create-classroom").addEventListener("click", createClassroom);
$("classroom").addEventListener("change", () => loadSessions());
$("add-member").addEventListener("click", addMember);
$("start-session").addEventListener("click", startSession);
$("connect").addEventListener("click", connect);
$("disconnect").addEventListener("click", () => { socket?.close(); socket = null; renderUsers([]); renderHands([]); });
$("save-snapshot").addEventListener("click", saveSnapshot);
$("restore-snapshot").addEventListener("click", restoreSnapshot);
$("send-event").addEventListener("click", sendEvent);
if (token) {
  $("token").value = token;
  useToken();
}
document.body.dataset.ready = "true";
