// Hand-written: a typed client of the presence WebSocket (asyncapi/asyncapi.yaml), over the
// generated message types (src/gen/ws.ts).
import { subprotocol, } from "./gen/ws.js";
/**
 * The action for a close code: 4401 → get a fresh token and reconnect; 4400, 4403, 4409 and
 * a normal close (1000) → stop; 4429, 1001, 1011, 1012, 1013, 1006 (connection lost) and
 * anything else → reconnect after a jittered back-off.
 */
export function closeAction(code) {
    switch (code) {
        case 4401:
            return "refresh_token";
        case 4400:
        case 4403:
        case 4409:
        case 1000:
            return "stop";
        default:
            return "back_off";
    }
}
/** The most a presence state may take serialized as JSON, in UTF-8 bytes (the AsyncAPI document). */
export const maxStateBytes = 512;
/**
 * One live connection to a classroom session's presence channel that reconnects by itself:
 *
 *   const ps = new PresenceSocket<{ color: string }>({ classId, sessionId, getToken: () => token });
 *   ps.on("users", (users) => render(users));               // with cursor and state: draw at once
 *   ps.on("cursor", ({ user_id, x, y }) => move(user_id, x, y));
 *   ps.on("state", ({ user_id, state }) => recolour(user_id, state.color));
 *   ps.on("status", ({ status }) => banner(status));         // connecting, open, reconnecting, stopped
 *   ps.connect();
 *   ps.setState({ color: "#e8590c" });                       // ≤ 512 bytes, sent at most 5/s
 *   board.onpointermove = (e) => ps.sendCursor(e.offsetX, e.offsetY); // at most 20/s
 *
 * Tutoring: ps.raiseHand() / ps.lowerHand(userId?) with `hand` and `hands` (the queue in the
 * order raised) events; ps.react("👏") with `reaction`; a tutor's ps.spotlight(true) and
 * ps.sendViewport({x, y, w, h}) reach followers as `spotlight` and `viewport` events
 * (`spotlightHolder` has the latest, from the snapshot for a late joiner). Refusals (a
 * student's spotlight) arrive as `error` events with `code: "forbidden"`.
 *
 * Retries: 4401 → one fresh token (getToken("refresh")), then stop if refused again;
 * 4400/4403/4409 → stop; 1001/1012 after an open connection → retry within 1–2 s; otherwise
 * jittered exponential back-off, reset whenever a connection reaches `open`. A socket error
 * without a close event (Node 20's WebSocket on a refused connection) and an attempt that
 * gets no snapshot within connectTimeoutMs count as a lost connection. In browsers, while
 * offline no attempt is made and the connection is dropped on `offline`; `online` retries at
 * once; a hidden page waits for visibility before retrying, and retries as it becomes visible.
 */
export class PresenceSocket {
    opts;
    url;
    ws;
    listeners = new Map();
    present = new Map();
    current = "idle";
    run = 0; // bumped by connect() and stop(): work of an older run is dropped
    attempt = 0;
    refreshed = false; // a fresh token was fetched and has not yet reached open
    retryTimer;
    connectTimer;
    waiting = false; // a retry waits for the network or the page to come back
    ownState; // serialized; sent again after every (re)connect
    cursors;
    states;
    viewports;
    handQueue = [];
    spot;
    Ctor;
    env;
    onOnline = () => this.wake();
    onOffline = () => this.networkLost();
    onVisibility = () => {
        if (this.visible())
            this.wake();
    };
    constructor(opts) {
        this.opts = opts;
        const base = opts.baseUrl || (typeof location !== "undefined" ? location.origin : "");
        const u = new URL(`/ws/classroom/${encodeURIComponent(opts.classId)}/session/${encodeURIComponent(opts.sessionId)}/`, base);
        u.protocol = u.protocol === "https:" || u.protocol === "wss:" ? "wss:" : "ws:";
        this.url = u.toString();
        const ctor = opts.WebSocket ?? globalThis.WebSocket;
        if (!ctor)
            throw new Error("PresenceSocket: no WebSocket implementation (pass options.WebSocket)");
        this.Ctor = ctor;
        this.env = opts.environment ?? (typeof window !== "undefined" ? window : undefined);
        this.cursors = new LatestWins(1000 / (opts.cursorRatePerSec ?? 20), (c) => this.send({ type: "cursor", x: c.x, y: c.y }));
        this.states = new LatestWins(1000 / (opts.stateRatePerSec ?? 5), (s) => this.sendRaw(`{"type":"state","state":${s}}`));
        this.viewports = new LatestWins(1000 / (opts.viewportRatePerSec ?? 10), (r) => this.send({ type: "viewport", ...r }));
    }
    /** Subscribes to an event; returns the unsubscribe function. */
    on(type, fn) {
        let set = this.listeners.get(type);
        if (!set)
            this.listeners.set(type, (set = new Set()));
        set.add(fn);
        return () => set.delete(fn);
    }
    /** Where the socket is now (the `status` event reports every change). */
    get status() {
        return this.current;
    }
    /** Who is connected now (as last reported by the server), with latest cursors and states. */
    get users() {
        return [...this.present.values()].map(copyUser);
    }
    /** One present user with their latest cursor and state, or undefined when absent. */
    user(userId) {
        const u = this.present.get(userId);
        return u && copyUser(u);
    }
    /** True while the status is `open`. */
    get connected() {
        return this.current === "open";
    }
    /** Opens the connection (and keeps reopening it as the close codes say). */
    connect() {
        if (this.current !== "idle" && this.current !== "stopped")
            return;
        this.run++;
        this.attempt = 0;
        this.refreshed = false;
        this.env?.addEventListener("online", this.onOnline);
        this.env?.addEventListener("offline", this.onOffline);
        this.env?.document?.addEventListener("visibilitychange", this.onVisibility);
        this.setStatus("connecting");
        void this.dial("connect");
    }
    /**
     * Sends this client's cursor position, throttled to `cursorRatePerSec`: a call within the
     * interval replaces the pending position, which is sent when the interval ends (latest
     * wins). Positions while not open are dropped.
     */
    sendCursor(x, y) {
        if (!Number.isFinite(x) || !Number.isFinite(y))
            return;
        this.cursors.push({ x, y });
    }
    /**
     * Sets this user's presence state (replacing the previous one), throttled to
     * `stateRatePerSec` with the latest state winning, and sent again after every reconnect.
     * Throws a TypeError for anything but a plain object and a RangeError when it serializes
     * to more than 512 bytes (the server would refuse it).
     */
    setState(state) {
        if (typeof state !== "object" || state === null || Array.isArray(state)) {
            throw new TypeError("PresenceSocket.setState: the state must be a JSON object");
        }
        const json = JSON.stringify(state);
        const size = new TextEncoder().encode(json).length;
        if (size > maxStateBytes) {
            throw new RangeError(`PresenceSocket.setState: the state takes ${size} bytes as JSON, at most ${maxStateBytes} are allowed`);
        }
        this.ownState = json;
        this.states.push(json);
    }
    /** Raised hands in the order raised (from the snapshot, then hand frames and leaves). */
    get hands() {
        return this.handQueue.map((h) => ({ ...h }));
    }
    /** Who holds the spotlight and their latest viewport, or undefined while it is off. */
    get spotlightHolder() {
        return this.spot && { ...this.spot, ...(this.spot.viewport && { viewport: { ...this.spot.viewport } }) };
    }
    /** Raises the caller's hand (students); a refusal comes back as an `error` event. */
    raiseHand() {
        return this.send({ type: "hand", raised: true });
    }
    /** Lowers the caller's own hand, or — tutors only — another user's. */
    lowerHand(userId) {
        return this.send(userId === undefined ? { type: "hand", raised: false } : { type: "hand", raised: false, user_id: userId });
    }
    /** Sends a reaction to the others (at most 3 per second are relayed; more are dropped). */
    react(emoji) {
        return this.send({ type: "reaction", emoji });
    }
    /** Turns the caller's spotlight on or off (tutors only). */
    spotlight(on) {
        return this.send({ type: "spotlight", on });
    }
    /**
     * Sends the caller's viewport for followers while they hold the spotlight (tutors only),
     * throttled to `viewportRatePerSec` with the latest winning. Non-finite values and
     * non-positive extents are ignored.
     */
    sendViewport(rect) {
        const { x, y, w, h } = rect;
        if (![x, y, w, h].every(Number.isFinite) || w <= 0 || h <= 0)
            return;
        this.viewports.push({ x, y, w, h });
    }
    /** Sends an application ping; the server answers with a `pong` event. */
    ping() {
        this.send({ type: "ping" });
    }
    /** Closes for good (code 1000); no reconnect. Emits `stopped` unless already stopped. */
    close() {
        this.stop(1000, "closed by client");
    }
    send(m) {
        return this.sendRaw(JSON.stringify(m));
    }
    sendRaw(s) {
        if (this.current !== "open" || this.ws?.readyState !== 1)
            return false;
        this.ws.send(s);
        return true;
    }
    online() {
        return this.env?.navigator?.onLine !== false;
    }
    visible() {
        return this.env?.document?.visibilityState !== "hidden";
    }
    /** Opens one connection attempt (after fetching a token). */
    async dial(why) {
        const run = this.run;
        if (!this.online() || (this.current === "reconnecting" && !this.visible())) {
            this.waiting = true;
            return;
        }
        let token;
        try {
            token = await this.opts.getToken(why);
        }
        catch {
            token = undefined;
        }
        if (run !== this.run || this.ws)
            return;
        if (!token) {
            this.stop(4401, "no token");
            return;
        }
        let ws;
        try {
            ws = new this.Ctor(this.url, [subprotocol, `bearer.${token}`]);
        }
        catch {
            this.onClose(1006, "connect_failed"); // e.g. a token that is not a valid subprotocol token
            return;
        }
        this.ws = ws;
        this.connectTimer = setTimeout(() => this.lost(ws, 1006, "connect_timeout"), this.opts.connectTimeoutMs ?? 10000);
        ws.onmessage = (e) => {
            if (this.ws !== ws)
                return;
            let m;
            try {
                m = JSON.parse(String(e.data));
            }
            catch {
                return;
            }
            this.dispatch(m);
        };
        // An error is always the end of this connection: browsers follow it with a 1006 close,
        // Node 20's WebSocket (a refused connection) with nothing at all.
        ws.onerror = () => this.lost(ws, 1006, "connection_failed");
        ws.onclose = (e) => this.lost(ws, e.code, e.reason);
    }
    /** The connection ws ended (close, error, timeout or offline); later events of ws are ignored. */
    lost(ws, code, reason) {
        if (this.ws !== ws)
            return;
        this.detach();
        this.onClose(code, reason);
    }
    detach() {
        const ws = this.ws;
        this.ws = undefined;
        clearTimeout(this.connectTimer);
        if (!ws)
            return;
        ws.onmessage = ws.onerror = ws.onclose = null;
        if (ws.readyState <= 1) {
            try {
                ws.close(1000, "bye");
            }
            catch {
                // already failing: nothing to close
            }
        }
    }
    dispatch(m) {
        this.emit("message", m);
        switch (m.type) {
            case "presence.snapshot": {
                clearTimeout(this.connectTimer);
                this.attempt = 0; // a connection that got this far resets the back-off
                this.refreshed = false;
                this.present = new Map(m.users.map((u) => [u.user_id, copyUser(u)]));
                this.handQueue = (m.hands ?? []).map((h) => ({ ...h }));
                this.spot = m.spotlight && { ...m.spotlight };
                this.emit("snapshot", m);
                this.emit("users", this.users);
                this.emit("hands", this.hands);
                if (this.spot) {
                    this.emit("spotlight", { user_id: this.spot.user_id, on: true });
                    if (this.spot.viewport)
                        this.emit("viewport", { user_id: this.spot.user_id, ...this.spot.viewport });
                }
                this.setStatus("open");
                this.emit("open", { protocol: this.ws?.protocol ?? "" });
                if (this.ownState !== undefined)
                    this.states.push(this.ownState);
                break;
            }
            case "presence.join":
                this.present.set(m.user.user_id, { ...m.user });
                this.emit("join", m);
                this.emit("users", this.users);
                break;
            case "presence.leave": {
                this.present.delete(m.user_id);
                this.emit("leave", m);
                this.emit("users", this.users);
                // A leave lowers the user's hand and ends their spotlight (no separate frame).
                const n = this.handQueue.length;
                this.handQueue = this.handQueue.filter((h) => h.user_id !== m.user_id);
                if (this.handQueue.length !== n)
                    this.emit("hands", this.hands);
                if (this.spot?.user_id === m.user_id) {
                    this.spot = undefined;
                    this.emit("spotlight", { user_id: m.user_id, on: false });
                }
                break;
            }
            case "hand":
                this.handQueue = this.handQueue.filter((h) => h.user_id !== m.user_id);
                if (m.raised)
                    this.handQueue.push({ user_id: m.user_id, at: m.at });
                this.emit("hand", { user_id: m.user_id, raised: m.raised, at: m.at });
                this.emit("hands", this.hands);
                break;
            case "reaction":
                this.emit("reaction", { user_id: m.user_id, emoji: m.emoji });
                break;
            case "spotlight":
                if (m.on)
                    this.spot = { user_id: m.user_id };
                else if (this.spot?.user_id === m.user_id)
                    this.spot = undefined;
                this.emit("spotlight", { user_id: m.user_id, on: m.on });
                break;
            case "viewport":
                if (this.spot?.user_id === m.user_id)
                    this.spot.viewport = { x: m.x, y: m.y, w: m.w, h: m.h };
                this.emit("viewport", { user_id: m.user_id, x: m.x, y: m.y, w: m.w, h: m.h });
                break;
            case "cursor":
                this.moved({ user_id: m.user_id, x: m.x, y: m.y });
                break;
            case "cursors":
                for (const c of m.cursors)
                    this.moved(c);
                break;
            case "state": {
                const u = this.present.get(m.user_id);
                if (u)
                    u.state = m.state;
                this.emit("state", { user_id: m.user_id, state: m.state });
                break;
            }
            case "error":
                this.emit("error", { code: m.code, message: m.message, for: m.for });
                break;
            case "pong":
                this.emit("pong", m);
                break;
        }
    }
    moved(c) {
        const u = this.present.get(c.user_id);
        if (u)
            u.cursor = { x: c.x, y: c.y };
        this.emit("cursor", c);
    }
    onClose(code, reason) {
        if (this.current === "stopped" || this.current === "idle")
            return;
        const action = closeAction(code);
        if (action === "stop" || (action === "refresh_token" && this.refreshed)) {
            this.emit("close", { code, reason, action: "stop" });
            this.stop(code, reason);
            return;
        }
        const wasOpen = this.current === "open";
        if (action === "refresh_token") {
            this.refreshed = true;
            this.emit("close", { code, reason, action, reconnectInMs: 0 });
            this.setStatus("reconnecting");
            void this.dial("refresh");
            return;
        }
        const random = this.opts.random ?? Math.random;
        let delay;
        if ((code === 1001 || code === 1012) && wasOpen) {
            const min = this.opts.restartRetryMs ?? 1000; // a restarting server is back within seconds
            delay = min + random() * min;
        }
        else {
            const base = Math.min(this.opts.backoffMaxMs ?? 30000, (this.opts.backoffInitialMs ?? 500) * 2 ** this.attempt);
            delay = base / 2 + random() * (base / 2); // "equal jitter"
            if (code === 4429)
                delay = Math.max(delay, 1000);
        }
        this.attempt++;
        const waits = !this.online();
        this.emit("close", { code, reason, action, reconnectInMs: waits ? undefined : Math.round(delay) });
        this.setStatus("reconnecting");
        if (waits)
            this.waiting = true;
        else
            this.retryTimer = setTimeout(() => this.retry(), delay);
    }
    retry() {
        this.retryTimer = undefined;
        void this.dial("connect");
    }
    /** The network or the page came back: a retry that is waiting or scheduled starts now. */
    wake() {
        if ((this.current !== "reconnecting" && this.current !== "connecting") || this.ws)
            return;
        if (!this.waiting && this.retryTimer === undefined)
            return; // an attempt is fetching its token
        if (!this.online() || !this.visible())
            return;
        clearTimeout(this.retryTimer);
        this.retryTimer = undefined;
        this.waiting = false;
        void this.dial(this.refreshed ? "refresh" : "connect");
    }
    /** The browser went offline: drop the connection now rather than wait for TCP to notice. */
    networkLost() {
        if (this.ws)
            this.lost(this.ws, 1006, "offline");
    }
    stop(code, reason) {
        if (this.current === "stopped" || this.current === "idle")
            return;
        this.run++;
        clearTimeout(this.retryTimer);
        this.retryTimer = undefined;
        this.waiting = false;
        this.cursors.cancel();
        this.states.cancel();
        this.viewports.cancel();
        this.detach();
        this.env?.removeEventListener("online", this.onOnline);
        this.env?.removeEventListener("offline", this.onOffline);
        this.env?.document?.removeEventListener("visibilitychange", this.onVisibility);
        this.present.clear();
        this.handQueue = [];
        this.spot = undefined;
        this.setStatus("stopped");
        this.emit("stopped", { code, reason });
    }
    setStatus(status) {
        const previous = this.current;
        if (previous === status)
            return;
        this.current = status;
        this.emit("status", { status, previous });
    }
    emit(type, payload) {
        for (const fn of this.listeners.get(type) ?? [])
            fn(payload);
    }
}
/**
 * A rate limit with the latest value winning: push() sends at once when the interval since
 * the last send has passed, otherwise keeps only the newest value and sends it when the
 * interval ends. send returns false when the value could not go out (not connected); it is
 * dropped then.
 */
class LatestWins {
    interval;
    send;
    pending;
    timer;
    last = -Infinity;
    constructor(interval, send) {
        this.interval = interval;
        this.send = send;
    }
    push(v) {
        this.pending = v;
        if (this.timer)
            return;
        const wait = this.last + this.interval - now();
        if (wait <= 0)
            this.flush();
        else
            this.timer = setTimeout(() => this.flush(), wait);
    }
    cancel() {
        clearTimeout(this.timer);
        this.timer = undefined;
        this.pending = undefined;
    }
    flush() {
        this.timer = undefined;
        const v = this.pending;
        this.pending = undefined;
        if (v !== undefined && this.send(v))
            this.last = now();
    }
}
function copyUser(u) {
    return u.cursor ? { ...u, cursor: { ...u.cursor } } : { ...u };
}
function now() {
    return typeof performance !== "undefined" ? performance.now() : Date.now();
}
