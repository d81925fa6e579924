import { type CursorPosition, type PresenceJoin, type PresenceLeave, type PresenceSnapshot, type PresenceUser, type Pong, type ServerMessage } from "./gen/ws.js";
/** What a client does after a close (asyncapi `x-close-codes`). */
export type CloseAction = "refresh_token" | "stop" | "back_off";
/**
 * The action for a close code: 4401 → get a fresh token and reconnect; 4400/4403 and a
 * normal close (1000) → stop; 4429, 1001, 1011, 1013, 1006 (connection lost) and anything
 * else → reconnect after a jittered back-off.
 */
export declare function closeAction(code: number): CloseAction;
/** Events of a PresenceSocket, with their payloads. */
export interface PresenceEvents {
    /** Connected (the server selected the subprotocol). */
    open: {
        protocol: string;
    };
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
    close: {
        code: number;
        reason: string;
        action: CloseAction;
        reconnectInMs?: number;
    };
    /** The socket gave up for good (4400, 4403, a refused fresh token, or close()). */
    stopped: {
        code: number;
        reason: string;
    };
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
export declare class PresenceSocket {
    private readonly opts;
    readonly url: string;
    private ws?;
    private listeners;
    private present;
    private stopped;
    private attempt;
    private refreshed;
    private retryTimer?;
    private cursorTimer?;
    private pendingCursor?;
    private lastCursorAt;
    private readonly interval;
    private readonly Ctor;
    constructor(opts: PresenceOptions);
    /** Subscribes to an event; returns the unsubscribe function. */
    on<K extends keyof PresenceEvents>(type: K, fn: Listener<PresenceEvents[K]>): () => void;
    /** Who is connected now (as last reported by the server). */
    get users(): PresenceUser[];
    /** True while a connection is open. */
    get connected(): boolean;
    /** Opens the connection (and keeps reopening it as the close codes say). */
    connect(): void;
    /**
     * Sends this client's cursor position, throttled to `cursorRatePerSec`: a call within the
     * interval replaces the pending position, which is sent when the interval ends (latest wins).
     */
    sendCursor(x: number, y: number): void;
    /** Sends an application ping; the server answers with a `pong` event. */
    ping(): void;
    /** Closes for good (code 1000); no reconnect. */
    close(): void;
    private flushCursor;
    private send;
    private open;
    private dispatch;
    private onClose;
    private stop;
    private emit;
}
export {};
