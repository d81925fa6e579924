// Hand-written: a typed client of the presence WebSocket (asyncapi/asyncapi.yaml), over the
// generated message types (src/gen/ws.ts).
import { subprotocol, } from "./gen/ws.js";
/**
 * The action for a close code: 4401 → get a fresh token and reconnect; 4400/4403 and a
 * normal close (1000) → stop; 4429, 1001, 1011, 1013, 1006 (connection lost) and anything
 * else → reconnect after a jittered back-off.
 */
export function closeAction(code) {
    switch (code) {
        case 4401:
            return "refresh_token";
        case 4400:
        case 4403:
        case 1000:
            return "stop";
        default:
            return "back_off";
    }
}
/**
 * One live connection to a classroom session's presence channel that reconnects by itself:
 *
 *   const ps = new PresenceSocket({ classId, sessionId, getToken: () => token });
 *   ps.on("users", (users) => render(users));
 *   ps.on("cursor", ({ user_id, x, y }) => move(user_id, x, y));
 *   ps.connect();
 *   board.onpointermove = (e) => ps.sendCursor(e.offsetX, e.offsetY); // throttled to 20/s
 */
export class PresenceSocket {
    opts;
    url;
    ws;
    listeners = new Map();
    present = new Map();
    stopped = false;
    attempt = 0;
    refreshed = false; // a fresh token was fetched and has not yet connected
    retryTimer;
    cursorTimer;
    pendingCursor;
    lastCursorAt = -Infinity;
    interval;
    Ctor;
    constructor(opts) {
        this.opts = opts;
        const base = opts.baseUrl || (typeof location !== "undefined" ? location.origin : "");
        const u = new URL(`/ws/classroom/${encodeURIComponent(opts.classId)}/session/${encodeURIComponent(opts.sessionId)}/`, base);
        u.protocol = u.protocol === "https:" || u.protocol === "wss:" ? "wss:" : "ws:";
        this.url = u.toString();
        this.interval = 1000 / (opts.cursorRatePerSec ?? 20);
        const ctor = opts.WebSocket ?? globalThis.WebSocket;
        if (!ctor)
            throw new Error("PresenceSocket: no WebSocket implementation (pass options.WebSocket)");
        this.Ctor = ctor;
    }
    /** Subscribes to an event; returns the unsubscribe function. */
    on(type, fn) {
        let set = this.listeners.get(type);
        if (!set)
            this.listeners.set(type, (set = new Set()));
        set.add(fn);
        return () => set.delete(fn);
    }
    /** Who is connected now (as last reported by the server). */
    get users() {
        return [...this.present.values()];
    }
    /** True while a connection is open. */
    get connected() {
        return this.ws?.readyState === 1;
    }
    /** Opens the connection (and keeps reopening it as the close codes say). */
    connect() {
        this.stopped = false;
        void this.open("connect");
    }
    /**
     * Sends this client's cursor position, throttled to `cursorRatePerSec`: a call within the
     * interval replaces the pending position, which is sent when the interval ends (latest wins).
     */
    sendCursor(x, y) {
        if (!Number.isFinite(x) || !Number.isFinite(y))
            return;
        this.pendingCursor = { x, y };
        if (this.cursorTimer)
            return;
        const wait = this.lastCursorAt + this.interval - now();
        if (wait <= 0)
            this.flushCursor();
        else
            this.cursorTimer = setTimeout(() => this.flushCursor(), wait);
    }
    /** Sends an application ping; the server answers with a `pong` event. */
    ping() {
        this.send({ type: "ping" });
    }
    /** Closes for good (code 1000); no reconnect. */
    close() {
        this.stopped = true;
        clearTimeout(this.retryTimer);
        clearTimeout(this.cursorTimer);
        this.cursorTimer = undefined;
        const ws = this.ws;
        this.ws = undefined;
        if (ws && ws.readyState <= 1)
            ws.close(1000, "bye");
        this.emit("stopped", { code: 1000, reason: "closed by client" });
    }
    flushCursor() {
        this.cursorTimer = undefined;
        const c = this.pendingCursor;
        if (!c || !this.connected)
            return; // positions while disconnected are dropped
        this.pendingCursor = undefined;
        this.lastCursorAt = now();
        this.send({ type: "cursor", x: c.x, y: c.y });
    }
    send(m) {
        if (this.ws?.readyState === 1)
            this.ws.send(JSON.stringify(m));
    }
    async open(why) {
        let token;
        try {
            token = await this.opts.getToken(why);
        }
        catch {
            token = undefined;
        }
        if (this.stopped)
            return;
        if (!token) {
            this.stop(4401, "no token");
            return;
        }
        const ws = new this.Ctor(this.url, [subprotocol, `bearer.${token}`]);
        this.ws = ws;
        ws.onopen = () => this.emit("open", { protocol: ws.protocol });
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
        ws.onclose = (e) => {
            if (this.ws !== ws)
                return;
            this.ws = undefined;
            this.onClose(e.code, e.reason);
        };
    }
    dispatch(m) {
        this.emit("message", m);
        switch (m.type) {
            case "presence.snapshot":
                this.attempt = 0; // a connection that got this far resets the back-off
                this.refreshed = false;
                this.present = new Map(m.users.map((u) => [u.user_id, u]));
                this.emit("snapshot", m);
                this.emit("users", this.users);
                break;
            case "presence.join":
                this.present.set(m.user.user_id, m.user);
                this.emit("join", m);
                this.emit("users", this.users);
                break;
            case "presence.leave":
                this.present.delete(m.user_id);
                this.emit("leave", m);
                this.emit("users", this.users);
                break;
            case "cursor":
                this.emit("cursor", { user_id: m.user_id, x: m.x, y: m.y });
                break;
            case "cursors":
                for (const c of m.cursors)
                    this.emit("cursor", c);
                break;
            case "pong":
                this.emit("pong", m);
                break;
        }
    }
    onClose(code, reason) {
        if (this.stopped)
            return;
        const action = closeAction(code);
        if (action === "stop" || (action === "refresh_token" && this.refreshed)) {
            this.emit("close", { code, reason, action: "stop" });
            this.stop(code, reason);
            return;
        }
        if (action === "refresh_token") {
            this.refreshed = true;
            this.emit("close", { code, reason, action });
            void this.open("refresh");
            return;
        }
        const base = Math.min(this.opts.backoffMaxMs ?? 30000, (this.opts.backoffInitialMs ?? 500) * 2 ** this.attempt);
        let delay = base / 2 + (this.opts.random ?? Math.random)() * (base / 2); // "equal jitter"
        if (code === 4429)
            delay = Math.max(delay, 1000);
        this.attempt++;
        this.emit("close", { code, reason, action, reconnectInMs: Math.round(delay) });
        this.retryTimer = setTimeout(() => void this.open("connect"), delay);
    }
    stop(code, reason) {
        this.stopped = true;
        this.present.clear();
        this.emit("stopped", { code, reason });
    }
    emit(type, payload) {
        for (const fn of this.listeners.get(type) ?? [])
            fn(payload);
    }
}
function now() {
    return typeof performance !== "undefined" ? performance.now() : Date.now();
}
