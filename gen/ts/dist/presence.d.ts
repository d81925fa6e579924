import { type CursorPosition, type Emoji, type ErrorMessage, type Hand, type PresenceJoin, type PresenceLeave, type PresenceSnapshot, type PresenceState, type Pong, type RaisedHand, type Reaction, type Rect, type ServerMessage, type SnapshotUser, type Spotlight, type SpotlightState, type Viewport } from "./gen/ws.js";
/** What a client does after a close (asyncapi `x-close-codes`). */
export type CloseAction = "refresh_token" | "stop" | "back_off";
/**
 * The action for a close code: 4401 → get a fresh token and reconnect; 4400, 4403, 4409 and
 * a normal close (1000) → stop; 4429, 1001, 1011, 1012, 1013, 1006 (connection lost) and
 * anything else → reconnect after a jittered back-off.
 */
export declare function closeAction(code: number): CloseAction;
/**
 * Where a PresenceSocket is: `idle` until connect(); `connecting` during the first attempt;
 * `open` once the server's `presence.snapshot` arrived (not at the socket's open event: a
 * 4401/4403/4409 close follows an accepted upgrade); `reconnecting` after a connection was
 * lost, through the attempts that follow; `stopped` after a close that means "do not retry"
 * or close(). connect() leaves `stopped` again.
 */
export type PresenceStatus = "idle" | "connecting" | "open" | "reconnecting" | "stopped";
/** The most a presence state may take serialized as JSON, in UTF-8 bytes (the AsyncAPI document). */
export declare const maxStateBytes = 512;
/** A present user with their latest cursor and presence state (each absent while unknown). */
export type PresentUser<S extends PresenceState = PresenceState> = Omit<SnapshotUser, "state"> & {
    state?: S;
};
/** Events of a PresenceSocket, with their payloads; S is the application's presence state. */
export interface PresenceEvents<S extends PresenceState = PresenceState> {
    /** The status changed (see PresenceStatus). */
    status: {
        status: PresenceStatus;
        previous: PresenceStatus;
    };
    /** Joined: the snapshot arrived on this connection (status is now `open`). */
    open: {
        protocol: string;
    };
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
    state: {
        user_id: string;
        state: S;
    };
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
    close: {
        code: number;
        reason: string;
        action: CloseAction;
        reconnectInMs?: number;
    };
    /** The socket gave up (4400, 4403, 4409, a refused fresh token, or close()); once per stop. */
    stopped: {
        code: number;
        reason: string;
    };
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
    navigator?: {
        onLine?: boolean;
    };
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
export declare class PresenceSocket<S extends PresenceState = PresenceState> {
    private readonly opts;
    readonly url: string;
    private ws?;
    private listeners;
    private present;
    private current;
    private run;
    private attempt;
    private refreshed;
    private retryTimer?;
    private connectTimer?;
    private waiting;
    private ownState?;
    private readonly cursors;
    private readonly states;
    private readonly viewports;
    private handQueue;
    private spot?;
    private readonly Ctor;
    private readonly env?;
    private readonly onOnline;
    private readonly onOffline;
    private readonly onVisibility;
    constructor(opts: PresenceOptions);
    /** Subscribes to an event; returns the unsubscribe function. */
    on<K extends keyof PresenceEvents<S>>(type: K, fn: Listener<PresenceEvents<S>[K]>): () => void;
    /** Where the socket is now (the `status` event reports every change). */
    get status(): PresenceStatus;
    /** Who is connected now (as last reported by the server), with latest cursors and states. */
    get users(): PresentUser<S>[];
    /** One present user with their latest cursor and state, or undefined when absent. */
    user(userId: string): PresentUser<S> | undefined;
    /** True while the status is `open`. */
    get connected(): boolean;
    /** Opens the connection (and keeps reopening it as the close codes say). */
    connect(): void;
    /**
     * Sends this client's cursor position, throttled to `cursorRatePerSec`: a call within the
     * interval replaces the pending position, which is sent when the interval ends (latest
     * wins). Positions while not open are dropped.
     */
    sendCursor(x: number, y: number): void;
    /**
     * Sets this user's presence state (replacing the previous one), throttled to
     * `stateRatePerSec` with the latest state winning, and sent again after every reconnect.
     * Throws a TypeError for anything but a plain object and a RangeError when it serializes
     * to more than 512 bytes (the server would refuse it).
     */
    setState(state: S): void;
    /** Raised hands in the order raised (from the snapshot, then hand frames and leaves). */
    get hands(): RaisedHand[];
    /** Who holds the spotlight and their latest viewport, or undefined while it is off. */
    get spotlightHolder(): SpotlightState | undefined;
    /** Raises the caller's hand (students); a refusal comes back as an `error` event. */
    raiseHand(): boolean;
    /** Lowers the caller's own hand, or — tutors only — another user's. */
    lowerHand(userId?: string): boolean;
    /** Sends a reaction to the others (at most 3 per second are relayed; more are dropped). */
    react(emoji: Emoji): boolean;
    /** Turns the caller's spotlight on or off (tutors only). */
    spotlight(on: boolean): boolean;
    /**
     * Sends the caller's viewport for followers while they hold the spotlight (tutors only),
     * throttled to `viewportRatePerSec` with the latest winning. Non-finite values and
     * non-positive extents are ignored.
     */
    sendViewport(rect: Rect): void;
    /** Sends an application ping; the server answers with a `pong` event. */
    ping(): void;
    /** Closes for good (code 1000); no reconnect. Emits `stopped` unless already stopped. */
    close(): void;
    private send;
    private sendRaw;
    private online;
    private visible;
    /** Opens one connection attempt (after fetching a token). */
    private dial;
    /** The connection ws ended (close, error, timeout or offline); later events of ws are ignored. */
    private lost;
    private detach;
    private dispatch;
    private moved;
    private onClose;
    private retry;
    /** The network or the page came back: a retry that is waiting or scheduled starts now. */
    private wake;
    /** The browser went offline: drop the connection now rather than wait for TCP to notice. */
    private networkLost;
    private stop;
    private setStatus;
    private emit;
}
export {};
