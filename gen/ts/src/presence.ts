// Hand-written: a typed client of the presence WebSocket (asyncapi/asyncapi.yaml), over the
// generated message types (src/gen/ws.ts).
import {
  subprotocol,
  type ClientMessage,
  type CursorPosition,
  type Emoji,
  type ErrorMessage,
  type Hand,
  type Point,
  type PresenceJoin,
  type PresenceLeave,
  type PresenceSnapshot,
  type PresenceState,
  type Pong,
  type RaisedHand,
  type Reaction,
  type Rect,
  type ServerMessage,
  type SnapshotUser,
  type Spotlight,
  type SpotlightState,
  type Viewport,
} from "./gen/ws.js";

/** What a client does after a close (asyncapi `x-close-codes`). */
export type CloseAction = "refresh_token" | "stop" | "back_off";

/**
 * The action for a close code: 4401 → get a fresh token and reconnect; 4400, 4403, 4409 and
 * a normal close (1000) → stop; 4429, 1001, 1011, 1012, 1013, 1006 (connection lost) and
 * anything else → reconnect after a jittered back-off.
 */
export function closeAction(code: number): CloseAction {
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

/**
 * Where a PresenceSocket is: `idle` until connect(); `connecting` during the first attempt;
 * `open` once the server's `presence.snapshot` arrived (not at the socket's open event: a
 * 4401/4403/4409 close follows an accepted upgrade); `reconnecting` after a connection was
 * lost, through the attempts that follow; `stopped` after a close that means "do not retry"
 * or close(). connect() leaves `stopped` again.
 */
export type PresenceStatus = "idle" | "connecting" | "open" | "reconnecting" | "stopped";

/** The most a presence state may take serialized as JSON, in UTF-8 bytes (the AsyncAPI document). */
export const maxStateBytes = 512;

/** A present user with their latest cursor and presence state (each absent while unknown). */
export type PresentUser<S extends PresenceState = PresenceState> = Omit<SnapshotUser, "state"> & { state?: S };

/** Events of a PresenceSocket, with their payloads; S is the application's presence state. */
export interface PresenceEvents<S extends PresenceState = PresenceState> {
  /** The status changed (see PresenceStatus). */
  status: { status: PresenceStatus; previous: PresenceStatus };
  /** Joined: the snapshot arrived on this connection (status is now `open`). */
  open: { protocol: string };
  /**
   * The first frame of every connection: everyone connected now, including the caller, with
   * their latest cursors and states, so a UI draws the room at once.
   */
  snapshot: PresenceSnapshot;
  join: PresenceJoin;
  leave: PresenceLeave;
  /** Another user's cursor (single `cursor` frames and `cursors` batches alike). */
  cursor: CursorPosition;
  /** Another user's presence state. */
  state: { user_id: string; state: S };
  /** The server refused a frame and kept the connection (for example `state_too_large`). */
  error: Omit<ErrorMessage, "type">;
  pong: Pong;
  /** A hand was raised or lowered (the caller's own included). */
  hand: Omit<Hand, "type">;
  /** The raised hands changed (hand frames, the snapshot, a leave): in the order raised. */
  hands: RaisedHand[];
  /** Another user's reaction. */
  reaction: Omit<Reaction, "type">;
  /**
   * A tutor turned the spotlight on or off; also emitted with `on: false` when the holder
   * leaves (the server sends no frame for that: the leave ends it).
   */
  spotlight: Omit<Spotlight, "type">;
  /** The spotlight holder's viewport moved: a follower pans its board to it. */
  viewport: Omit<Viewport, "type">;
  /** Every server frame, as sent. */
  message: ServerMessage;
  /** The presence list changed (after snapshot, join or leave); users carry cursor and state. */
  users: PresentUser<S>[];
  /** A connection closed; `reconnectInMs` is set when a retry is scheduled on a timer. */
  close: { code: number; reason: string; action: CloseAction; reconnectInMs?: number };
  /** The socket gave up (4400, 4403, 4409, a refused fresh token, or close()); once per stop. */
  stopped: { code: number; reason: string };
}

type Listener<T> = (payload: T) => void;

/** The WebSocket constructor to use (browsers and Node ≥ 22 have a global one). */
export type WebSocketCtor = new (url: string, protocols?: string | string[]) => WebSocket;

/**
 * The page around the socket: network and visibility. In browsers it is `window`; elsewhere
 * there is none (always online and visible) unless a test passes one.
 */
export interface PresenceEnvironment {
  addEventListener(type: string, fn: () => void): void;
  removeEventListener(type: string, fn: () => void): void;
  navigator?: { onLine?: boolean };
  document?: {
    visibilityState?: string;
    addEventListener(type: string, fn: () => void): void;
    removeEventListener(type: string, fn: () => void): void;
  };
}

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
  /** State updates sent per second at most (the contract relays 5). */
  stateRatePerSec?: number;
  /** Spotlight viewports sent per second at most (the contract relays 10). */
  viewportRatePerSec?: number;
  /** First back-off delay (ms, default 500) and the cap (default 30000). */
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  /**
   * How long one attempt may take from dialling to the snapshot (ms, default 10000); past it
   * the attempt counts as a lost connection (code 1006, reason `connect_timeout`).
   */
  connectTimeoutMs?: number;
  /** After 1001/1012 (a server restart) on a connection that was open, the retry comes within [min, min·2) ms (default 1000). */
  restartRetryMs?: number;
  WebSocket?: WebSocketCtor;
  /** Network and visibility events; default `window` in browsers, none elsewhere. */
  environment?: PresenceEnvironment;
  /** Random source in [0,1) for the jitter (tests). */
  random?: () => number;
}

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
export class PresenceSocket<S extends PresenceState = PresenceState> {
  readonly url: string;
  private ws?: WebSocket;
  private listeners = new Map<keyof PresenceEvents<S>, Set<Listener<never>>>();
  private present = new Map<string, PresentUser<S>>();
  private current: PresenceStatus = "idle";
  private run = 0; // bumped by connect() and stop(): work of an older run is dropped
  private attempt = 0;
  private refreshed = false; // a fresh token was fetched and has not yet reached open
  private retryTimer?: ReturnType<typeof setTimeout>;
  private connectTimer?: ReturnType<typeof setTimeout>;
  private waiting = false; // a retry waits for the network or the page to come back
  private ownState?: string; // serialized; sent again after every (re)connect
  private readonly cursors: LatestWins<Point>;
  private readonly states: LatestWins<string>;
  private readonly viewports: LatestWins<Rect>;
  private handQueue: RaisedHand[] = [];
  private spot?: SpotlightState;
  private readonly Ctor: WebSocketCtor;
  private readonly env?: PresenceEnvironment;
  private readonly onOnline = () => this.wake();
  private readonly onOffline = () => this.networkLost();
  private readonly onVisibility = () => {
    if (this.visible()) this.wake();
  };

  constructor(private readonly opts: PresenceOptions) {
    const base = opts.baseUrl || (typeof location !== "undefined" ? location.origin : "");
    const u = new URL(`/ws/classroom/${encodeURIComponent(opts.classId)}/session/${encodeURIComponent(opts.sessionId)}/`, base);
    u.protocol = u.protocol === "https:" || u.protocol === "wss:" ? "wss:" : "ws:";
    this.url = u.toString();
    const ctor = opts.WebSocket ?? (globalThis as { WebSocket?: WebSocketCtor }).WebSocket;
    if (!ctor) throw new Error("PresenceSocket: no WebSocket implementation (pass options.WebSocket)");
    this.Ctor = ctor;
    this.env = opts.environment ?? (typeof window !== "undefined" ? (window as PresenceEnvironment) : undefined);
    this.cursors = new LatestWins(1000 / (opts.cursorRatePerSec ?? 20), (c) => this.send({ type: "cursor", x: c.x, y: c.y }));
    this.states = new LatestWins(1000 / (opts.stateRatePerSec ?? 5), (s) => this.sendRaw(`{"type":"state","state":${s}}`));
    this.viewports = new LatestWins(1000 / (opts.viewportRatePerSec ?? 10), (r) => this.send({ type: "viewport", ...r }));
  }

  /** Subscribes to an event; returns the unsubscribe function. */
  on<K extends keyof PresenceEvents<S>>(type: K, fn: Listener<PresenceEvents<S>[K]>): () => void {
    let set = this.listeners.get(type);
    if (!set) this.listeners.set(type, (set = new Set()));
    set.add(fn as Listener<never>);
    return () => set.delete(fn as Listener<never>);
  }

  /** Where the socket is now (the `status` event reports every change). */
  get status(): PresenceStatus {
    return this.current;
  }

  /** Who is connected now (as last reported by the server), with latest cursors and states. */
  get users(): PresentUser<S>[] {
    return [...this.present.values()].map(copyUser);
  }

  /** One present user with their latest cursor and state, or undefined when absent. */
  user(userId: string): PresentUser<S> | undefined {
    const u = this.present.get(userId);
    return u && copyUser(u);
  }

  /** True while the status is `open`. */
  get connected(): boolean {
    return this.current === "open";
  }

  /** Opens the connection (and keeps reopening it as the close codes say). */
  connect(): void {
    if (this.current !== "idle" && this.current !== "stopped") return;
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
  sendCursor(x: number, y: number): void {
    if (!Number.isFinite(x) || !Number.isFinite(y)) return;
    this.cursors.push({ x, y });
  }

  /**
   * Sets this user's presence state (replacing the previous one), throttled to
   * `stateRatePerSec` with the latest state winning, and sent again after every reconnect.
   * Throws a TypeError for anything but a plain object and a RangeError when it serializes
   * to more than 512 bytes (the server would refuse it).
   */
  setState(state: S): void {
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
  get hands(): RaisedHand[] {
    return this.handQueue.map((h) => ({ ...h }));
  }

  /** Who holds the spotlight and their latest viewport, or undefined while it is off. */
  get spotlightHolder(): SpotlightState | undefined {
    return this.spot && { ...this.spot, ...(this.spot.viewport && { viewport: { ...this.spot.viewport } }) };
  }

  /** Raises the caller's hand (students); a refusal comes back as an `error` event. */
  raiseHand(): boolean {
    return this.send({ type: "hand", raised: true });
  }

  /** Lowers the caller's own hand, or — tutors only — another user's. */
  lowerHand(userId?: string): boolean {
    return this.send(userId === undefined ? { type: "hand", raised: false } : { type: "hand", raised: false, user_id: userId });
  }

  /** Sends a reaction to the others (at most 3 per second are relayed; more are dropped). */
  react(emoji: Emoji): boolean {
    return this.send({ type: "reaction", emoji });
  }

  /** Turns the caller's spotlight on or off (tutors only). */
  spotlight(on: boolean): boolean {
    return this.send({ type: "spotlight", on });
  }

  /**
   * Sends the caller's viewport for followers while they hold the spotlight (tutors only),
   * throttled to `viewportRatePerSec` with the latest winning. Non-finite values and
   * non-positive extents are ignored.
   */
  sendViewport(rect: Rect): void {
    const { x, y, w, h } = rect;
    if (![x, y, w, h].every(Number.isFinite) || w <= 0 || h <= 0) return;
    this.viewports.push({ x, y, w, h });
  }

  /** Sends an application ping; the server answers with a `pong` event. */
  ping(): void {
    this.send({ type: "ping" });
  }

  /** Closes for good (code 1000); no reconnect. Emits `stopped` unless already stopped. */
  close(): void {
    this.stop(1000, "closed by client");
  }

  private send(m: ClientMessage): boolean {
    return this.sendRaw(JSON.stringify(m));
  }

  private sendRaw(s: string): boolean {
    if (this.current !== "open" || this.ws?.readyState !== 1) return false;
    this.ws.send(s);
    return true;
  }

  private online(): boolean {
    return this.env?.navigator?.onLine !== false;
  }

  private visible(): boolean {
    return this.env?.document?.visibilityState !== "hidden";
  }

  /** Opens one connection attempt (after fetching a token). */
  private async dial(why: "connect" | "refresh"): Promise<void> {
    const run = this.run;
    if (!this.online() || (this.current === "reconnecting" && !this.visible())) {
      this.waiting = true;
      return;
    }
    let token: string | undefined;
    try {
      token = await this.opts.getToken(why);
    } catch {
      token = undefined;
    }
    if (run !== this.run || this.ws) return;
    if (!token) {
      this.stop(4401, "no token");
      return;
    }
    let ws: WebSocket;
    try {
      ws = new this.Ctor(this.url, [subprotocol, `bearer.${token}`]);
    } catch {
      this.onClose(1006, "connect_failed"); // e.g. a token that is not a valid subprotocol token
      return;
    }
    this.ws = ws;
    this.connectTimer = setTimeout(() => this.lost(ws, 1006, "connect_timeout"), this.opts.connectTimeoutMs ?? 10000);
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
    // An error is always the end of this connection: browsers follow it with a 1006 close,
    // Node 20's WebSocket (a refused connection) with nothing at all.
    ws.onerror = () => this.lost(ws, 1006, "connection_failed");
    ws.onclose = (e: CloseEvent) => this.lost(ws, e.code, e.reason);
  }

  /** The connection ws ended (close, error, timeout or offline); later events of ws are ignored. */
  private lost(ws: WebSocket, code: number, reason: string): void {
    if (this.ws !== ws) return;
    this.detach();
    this.onClose(code, reason);
  }

  private detach(): void {
    const ws = this.ws;
    this.ws = undefined;
    clearTimeout(this.connectTimer);
    if (!ws) return;
    ws.onmessage = ws.onerror = ws.onclose = null;
    if (ws.readyState <= 1) {
      try {
        ws.close(1000, "bye");
      } catch {
        // already failing: nothing to close
      }
    }
  }

  private dispatch(m: ServerMessage): void {
    this.emit("message", m);
    switch (m.type) {
      case "presence.snapshot": {
        clearTimeout(this.connectTimer);
        this.attempt = 0; // a connection that got this far resets the back-off
        this.refreshed = false;
        this.present = new Map(m.users.map((u) => [u.user_id, copyUser(u as PresentUser<S>)]));
        this.handQueue = (m.hands ?? []).map((h) => ({ ...h }));
        this.spot = m.spotlight && { ...m.spotlight };
        this.emit("snapshot", m);
        this.emit("users", this.users);
        this.emit("hands", this.hands);
        if (this.spot) {
          this.emit("spotlight", { user_id: this.spot.user_id, on: true });
          if (this.spot.viewport) this.emit("viewport", { user_id: this.spot.user_id, ...this.spot.viewport });
        }
        this.setStatus("open");
        this.emit("open", { protocol: this.ws?.protocol ?? "" });
        if (this.ownState !== undefined) this.states.push(this.ownState);
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
        if (this.handQueue.length !== n) this.emit("hands", this.hands);
        if (this.spot?.user_id === m.user_id) {
          this.spot = undefined;
          this.emit("spotlight", { user_id: m.user_id, on: false });
        }
        break;
      }
      case "hand":
        this.handQueue = this.handQueue.filter((h) => h.user_id !== m.user_id);
        if (m.raised) this.handQueue.push({ user_id: m.user_id, at: m.at });
        this.emit("hand", { user_id: m.user_id, raised: m.raised, at: m.at });
        this.emit("hands", this.hands);
        break;
      case "reaction":
        this.emit("reaction", { user_id: m.user_id, emoji: m.emoji });
        break;
      case "spotlight":
        if (m.on) this.spot = { user_id: m.user_id };
        else if (this.spot?.user_id === m.user_id) this.spot = undefined;
        this.emit("spotlight", { user_id: m.user_id, on: m.on });
        break;
      case "viewport":
        if (this.spot?.user_id === m.user_id) this.spot.viewport = { x: m.x, y: m.y, w: m.w, h: m.h };
        this.emit("viewport", { user_id: m.user_id, x: m.x, y: m.y, w: m.w, h: m.h });
        break;
      case "cursor":
        this.moved({ user_id: m.user_id, x: m.x, y: m.y });
        break;
      case "cursors":
        for (const c of m.cursors) this.moved(c);
        break;
      case "state": {
        const u = this.present.get(m.user_id);
        if (u) u.state = m.state as S;
        this.emit("state", { user_id: m.user_id, state: m.state as S });
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

  private moved(c: CursorPosition): void {
    const u = this.present.get(c.user_id);
    if (u) u.cursor = { x: c.x, y: c.y };
    this.emit("cursor", c);
  }

  private onClose(code: number, reason: string): void {
    if (this.current === "stopped" || this.current === "idle") return;
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
    let delay: number;
    if ((code === 1001 || code === 1012) && wasOpen) {
      const min = this.opts.restartRetryMs ?? 1000; // a restarting server is back within seconds
      delay = min + random() * min;
    } else {
      const base = Math.min(this.opts.backoffMaxMs ?? 30000, (this.opts.backoffInitialMs ?? 500) * 2 ** this.attempt);
      delay = base / 2 + random() * (base / 2); // "equal jitter"
      if (code === 4429) delay = Math.max(delay, 1000);
    }
    this.attempt++;
    const waits = !this.online();
    this.emit("close", { code, reason, action, reconnectInMs: waits ? undefined : Math.round(delay) });
    this.setStatus("reconnecting");
    if (waits) this.waiting = true;
    else this.retryTimer = setTimeout(() => this.retry(), delay);
  }

  private retry(): void {
    this.retryTimer = undefined;
    void this.dial("connect");
  }

  /** The network or the page came back: a retry that is waiting or scheduled starts now. */
  private wake(): void {
    if ((this.current !== "reconnecting" && this.current !== "connecting") || this.ws) return;
    if (!this.waiting && this.retryTimer === undefined) return; // an attempt is fetching its token
    if (!this.online() || !this.visible()) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.waiting = false;
    void this.dial(this.refreshed ? "refresh" : "connect");
  }

  /** The browser went offline: drop the connection now rather than wait for TCP to notice. */
  private networkLost(): void {
    if (this.ws) this.lost(this.ws, 1006, "offline");
  }

  private stop(code: number, reason: string): void {
    if (this.current === "stopped" || this.current === "idle") return;
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

  private setStatus(status: PresenceStatus): void {
    const previous = this.current;
    if (previous === status) return;
    this.current = status;
    this.emit("status", { status, previous });
  }

  private emit<K extends keyof PresenceEvents<S>>(type: K, payload: PresenceEvents<S>[K]): void {
    for (const fn of this.listeners.get(type) ?? []) (fn as Listener<PresenceEvents<S>[K]>)(payload);
  }
}

/**
 * A rate limit with the latest value winning: push() sends at once when the interval since
 * the last send has passed, otherwise keeps only the newest value and sends it when the
 * interval ends. send returns false when the value could not go out (not connected); it is
 * dropped then.
 */
class LatestWins<T> {
  private pending?: T;
  private timer?: ReturnType<typeof setTimeout>;
  private last = -Infinity;

  constructor(private readonly interval: number, private readonly send: (v: T) => boolean) {}

  push(v: T): void {
    this.pending = v;
    if (this.timer) return;
    const wait = this.last + this.interval - now();
    if (wait <= 0) this.flush();
    else this.timer = setTimeout(() => this.flush(), wait);
  }

  cancel(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.pending = undefined;
  }

  private flush(): void {
    this.timer = undefined;
    const v = this.pending;
    this.pending = undefined;
    if (v !== undefined && this.send(v)) this.last = now();
  }
}

function copyUser<U extends { cursor?: Point }>(u: U): U {
  return u.cursor ? { ...u, cursor: { ...u.cursor } } : { ...u };
}

function now(): number {
  return typeof performance !== "undefined" ? performance.now() : Date.now();
}
