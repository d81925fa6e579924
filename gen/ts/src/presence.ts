// Hand-written: a typed client of the presence WebSocket (asyncapi/asyncapi.yaml), over the
// generated message types (src/gen/ws.ts).
import {
  subprotocol,
  type ClientMessage,
  type CursorPosition,
  type PresenceJoin,
  type PresenceLeave,
  type PresenceSnapshot,
  type PresenceUser,
  type Pong,
  type ServerMessage,
} from "./gen/ws.js";

/** What a client does after a close (asyncapi `x-close-codes`). */
export type CloseAction = "refresh_token" | "stop" | "back_off";

/**
 * The action for a close code: 4401 → get a fresh token and reconnect; 4400/4403 and a
 * normal close (1000) → stop; 4429, 1001, 1011, 1013, 1006 (connection lost) and anything
 * else → reconnect after a jittered back-off.
 */
export function closeAction(code: number): CloseAction {
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

/** Events of a PresenceSocket, with their payloads. */
export interface PresenceEvents {
  /** Connected (the server selected the subprotocol). */
  open: { protocol: string };
  /** The first frame of every connection: everyone connected now, including the caller. */
  snapshot: PresenceSnapshot;
  join: PresenceJoin;
  leave: PresenceLeave;
  /** Another user's cursor (single `cursor` frames and `cursors` batches alike). */
  cursor: CursorPosition;
  pong: Pong;
  /** Every server frame, as sent. */
  message: ServerMessage;
  /** The presence list changed (after snapshot, join or leave). */
  users: PresenceUser[];
  /** A connection closed; `reconnectInMs` is set when the socket will try again. */
  close: { code: number; reason: string; action: CloseAction; reconnectInMs?: number };
  /** The socket gave up for good (4400, 4403, a refused fresh token, or close()). */
  stopped: { code: number; reason: string };
}

type Listener<T> = (payload: T) => void;

/** The WebSocket constructor to use (browsers and Node ≥ 22 have a global one). */
export type WebSocketCtor = new (url: string, protocols?: string | string[]) => WebSocket;

export interface PresenceOptions {
  /** Origin of the service: `http://localhost:8080` or `ws://…` (empty: the page's own origin). */
  baseUrl?: string;
  classId: string;
  sessionId: string;
  /**
   * Returns the access token. Called with `"connect"` before each connection and with
   * `"refresh"` after a 4401 close (`unauthorized` or `token_expired`): return a fresh token
   * then, or undefined to stop.
   */
  getToken: (why: "connect" | "refresh") => string | undefined | Promise<string | undefined>;
  /** Cursor updates sent per second at most (the contract's limit is 20). */
  cursorRatePerSec?: number;
  /** First back-off delay (ms, default 500) and the cap (default 30000). */
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  WebSocket?: WebSocketCtor;
  /** Random source in [0,1) for the jitter (tests). */
  random?: () => number;
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
  readonly url: string;
  private ws?: WebSocket;
  private listeners = new Map<keyof PresenceEvents, Set<Listener<never>>>();
  private present = new Map<string, PresenceUser>();
  private stopped = false;
  private attempt = 0;
  private refreshed = false; // a fresh token was fetched and has not yet connected
  private retryTimer?: ReturnType<typeof setTimeout>;
  private cursorTimer?: ReturnType<typeof setTimeout>;
  private pendingCursor?: { x: number; y: number };
  private lastCursorAt = -Infinity;
  private readonly interval: number;
  private readonly Ctor: WebSocketCtor;

  constructor(private readonly opts: PresenceOptions) {
    const base = opts.baseUrl || (typeof location !== "undefined" ? location.origin : "");
    const u = new URL(`/ws/classroom/${encodeURIComponent(opts.classId)}/session/${encodeURIComponent(opts.sessionId)}/`, base);
    u.protocol = u.protocol === "https:" || u.protocol === "wss:" ? "wss:" : "ws:";
    this.url = u.toString();
    this.interval = 1000 / (opts.cursorRatePerSec ?? 20);
    const ctor = opts.WebSocket ?? (globalThis as { WebSocket?: WebSocketCtor }).WebSocket;
    if (!ctor) throw new Error("PresenceSocket: no WebSocket implementation (pass options.WebSocket)");
    this.Ctor = ctor;
  }

  /** Subscribes to an event; returns the unsubscribe function. */
  on<K extends keyof PresenceEvents>(type: K, fn: Listener<PresenceEvents[K]>): () => void {
    let set = this.listeners.get(type);
    if (!set) this.listeners.set(type, (set = new Set()));
    set.add(fn as Listener<never>);
    return () => set.delete(fn as Listener<never>);
  }

  /** Who is connected now (as last reported by the server). */
  get users(): PresenceUser[] {
    return [...this.present.values()];
  }

  /** True while a connection is open. */
  get connected(): boolean {
    return this.ws?.readyState === 1;
  }

  /** Opens the connection (and keeps reopening it as the close codes say). */
  connect(): void {
    this.stopped = false;
    void this.open("connect");
  }

  /**
   * Sends this client's cursor position, throttled to `cursorRatePerSec`: a call within the
   * interval replaces the pending position, which is sent when the interval ends (latest wins).
   */
  sendCursor(x: number, y: number): void {
    if (!Number.isFinite(x) || !Number.isFinite(y)) return;
    this.pendingCursor = { x, y };
    if (this.cursorTimer) return;
    const wait = this.lastCursorAt + this.interval - now();
    if (wait <= 0) this.flushCursor();
    else this.cursorTimer = setTimeout(() => this.flushCursor(), wait);
  }

  /** Sends an application ping; the server answers with a `pong` event. */
  ping(): void {
    this.send({ type: "ping" });
  }

  /** Closes for good (code 1000); no reconnect. */
  close(): void {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearTimeout(this.cursorTimer);
    this.cursorTimer = undefined;
    const ws = this.ws;
    this.ws = undefined;
    if (ws && ws.readyState <= 1) ws.close(1000, "bye");
    this.emit("stopped", { code: 1000, reason: "closed by client" });
  }

  private flushCursor(): void {
    this.cursorTimer = undefined;
    const c = this.pendingCursor;
    if (!c || !this.connected) return; // positions while disconnected are dropped
    this.pendingCursor = undefined;
    this.lastCursorAt = now();
    this.send({ type: "cursor", x: c.x, y: c.y });
  }

  private send(m: ClientMessage): void {
    if (this.ws?.readyState === 1) this.ws.send(JSON.stringify(m));
  }

  private async open(why: "connect" | "refresh"): Promise<void> {
    let token: string | undefined;
    try {
      token = await this.opts.getToken(why);
    } catch {
      token = undefined;
    }
    if (this.stopped) return;
    if (!token) {
      this.stop(4401, "no token");
      return;
    }
    const ws = new this.Ctor(this.url, [subprotocol, `bearer.${token}`]);
    this.ws = ws;
    ws.onopen = () => this.emit("open", { protocol: ws.protocol });
    ws.onmessage = (e: MessageEvent) => {
      if (this.ws !== ws) return;
      let m: ServerMessage;
      try {
        m = JSON.parse(String(e.data)) as ServerMessage;
      } catch {
        return;
      }
      this.dispatch(m);
    };
    ws.onclose = (e: CloseEvent) => {
      if (this.ws !== ws) return;
      this.ws = undefined;
      this.onClose(e.code, e.reason);
    };
  }

  private dispatch(m: ServerMessage): void {
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
        for (const c of m.cursors) this.emit("cursor", c);
        break;
      case "pong":
        this.emit("pong", m);
        break;
    }
  }

  private onClose(code: number, reason: string): void {
    if (this.stopped) return;
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
    if (code === 4429) delay = Math.max(delay, 1000);
    this.attempt++;
    this.emit("close", { code, reason, action, reconnectInMs: Math.round(delay) });
    this.retryTimer = setTimeout(() => void this.open("connect"), delay);
  }

  private stop(code: number, reason: string): void {
    this.stopped = true;
    this.present.clear();
    this.emit("stopped", { code, reason });
  }

  private emit<K extends keyof PresenceEvents>(type: K, payload: PresenceEvents[K]): void {
    for (const fn of this.listeners.get(type) ?? []) (fn as Listener<PresenceEvents[K]>)(payload);
  }
}

function now(): number {
  return typeof performance !== "undefined" ? performance.now() : Date.now();
}
