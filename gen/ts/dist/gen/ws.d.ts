/**
 * A finite coordinate. JSON has no NaN or Infinity; values beyond ±1e9 are refused.
 *
 * This interface was referenced by `AsyncAPIMessages`'s JSON-Schema
 * via the `definition` "Coordinate".
 */
export type Coordinate = number;
/**
 * Canonical string form of the token's user claim.
 *
 * This interface was referenced by `AsyncAPIMessages`'s JSON-Schema
 * via the `definition` "UserID".
 */
export type UserID = string;
/**
 * Every frame a client may send.
 *
 * This interface was referenced by `AsyncAPIMessages`'s JSON-Schema
 * via the `definition` "ClientMessage".
 */
export type ClientMessage = CursorUpdate | Ping | StateUpdate;
/**
 * Every frame the server may send.
 *
 * This interface was referenced by `AsyncAPIMessages`'s JSON-Schema
 * via the `definition` "ServerMessage".
 */
export type ServerMessage = PresenceSnapshot | PresenceJoin | PresenceLeave | Cursor | CursorBatch | Pong | State | ErrorMessage;
/**
 * All payload schemas of asyncapi/asyncapi.yaml.
 */
export interface AsyncAPIMessages {
    Coordinate?: Coordinate;
    UserID?: UserID;
    PresenceUser?: PresenceUser;
    Point?: Point;
    PresenceState?: PresenceState;
    SnapshotUser?: SnapshotUser;
    ClientMessage?: ClientMessage;
    CursorUpdate?: CursorUpdate;
    Ping?: Ping;
    StateUpdate?: StateUpdate;
    ServerMessage?: ServerMessage;
    PresenceSnapshot?: PresenceSnapshot;
    PresenceJoin?: PresenceJoin;
    PresenceLeave?: PresenceLeave;
    CursorPosition?: CursorPosition;
    Cursor?: Cursor;
    CursorBatch?: CursorBatch;
    Pong?: Pong;
    State?: State;
    ErrorMessage?: ErrorMessage;
}
/**
 * This interface was referenced by `AsyncAPIMessages`'s JSON-Schema
 * via the `definition` "PresenceUser".
 */
export interface PresenceUser {
    user_id: UserID;
    /**
     * Display name from the token's `name` claim (may be empty).
     */
    name: string;
    role: "tutor" | "student";
}
/**
 * This interface was referenced by `AsyncAPIMessages`'s JSON-Schema
 * via the `definition` "Point".
 */
export interface Point {
    x: Coordinate;
    y: Coordinate;
}
/**
 * A user's presence state: any JSON object the application defines (colour, tool, selection, viewport). At most 512 bytes when serialized as JSON (UTF-8), which JSON Schema cannot express: the server refuses a larger one with an `error` frame (`code: "state_too_large"`, `for: "state"`) and keeps the previous state.
 *
 * This interface was referenced by `AsyncAPIMessages`'s JSON-Schema
 * via the `definition` "PresenceState".
 */
export interface PresenceState {
    [k: string]: unknown;
}
/**
 * A present user, with `cursor`, their latest cursor position (from any of their connections; absent until they sent one), and `state`, their presence state (absent until they set one).
 *
 * This interface was referenced by `AsyncAPIMessages`'s JSON-Schema
 * via the `definition` "SnapshotUser".
 */
export interface SnapshotUser {
    user_id: UserID;
    /**
     * Display name from the token's `name` claim (may be empty).
     */
    name: string;
    role: "tutor" | "student";
    cursor?: Point;
    state?: PresenceState;
}
/**
 * This interface was referenced by `AsyncAPIMessages`'s JSON-Schema
 * via the `definition` "CursorUpdate".
 */
export interface CursorUpdate {
    type: "cursor";
    x: Coordinate;
    y: Coordinate;
}
/**
 * This interface was referenced by `AsyncAPIMessages`'s JSON-Schema
 * via the `definition` "Ping".
 */
export interface Ping {
    type: "ping";
}
/**
 * This interface was referenced by `AsyncAPIMessages`'s JSON-Schema
 * via the `definition` "StateUpdate".
 */
export interface StateUpdate {
    type: "state";
    state: PresenceState;
}
/**
 * This interface was referenced by `AsyncAPIMessages`'s JSON-Schema
 * via the `definition` "PresenceSnapshot".
 */
export interface PresenceSnapshot {
    type: "presence.snapshot";
    session_id: string;
    users: SnapshotUser[];
}
/**
 * This interface was referenced by `AsyncAPIMessages`'s JSON-Schema
 * via the `definition` "PresenceJoin".
 */
export interface PresenceJoin {
    type: "presence.join";
    user: PresenceUser;
}
/**
 * This interface was referenced by `AsyncAPIMessages`'s JSON-Schema
 * via the `definition` "PresenceLeave".
 */
export interface PresenceLeave {
    type: "presence.leave";
    user_id: UserID;
}
/**
 * This interface was referenced by `AsyncAPIMessages`'s JSON-Schema
 * via the `definition` "Cursor".
 */
export interface Cursor {
    type: "cursor";
    user_id: UserID;
    x: Coordinate;
    y: Coordinate;
}
/**
 * Latest positions of several senders, oldest update first; one entry per sender.
 *
 * This interface was referenced by `AsyncAPIMessages`'s JSON-Schema
 * via the `definition` "CursorBatch".
 */
export interface CursorBatch {
    type: "cursors";
    /**
     * @minItems 2
     */
    cursors: [CursorPosition, CursorPosition, ...CursorPosition[]];
}
/**
 * This interface was referenced by `AsyncAPIMessages`'s JSON-Schema
 * via the `definition` "CursorPosition".
 */
export interface CursorPosition {
    user_id: UserID;
    x: Coordinate;
    y: Coordinate;
}
/**
 * This interface was referenced by `AsyncAPIMessages`'s JSON-Schema
 * via the `definition` "Pong".
 */
export interface Pong {
    type: "pong";
}
/**
 * This interface was referenced by `AsyncAPIMessages`'s JSON-Schema
 * via the `definition` "State".
 */
export interface State {
    type: "state";
    user_id: UserID;
    state: PresenceState;
}
/**
 * A frame the server refused without closing the connection. Known codes: `state_too_large` (a presence state over 512 bytes) and `forbidden` (a message the user's role may not send). Clients should treat an unknown code like `forbidden`.
 *
 * This interface was referenced by `AsyncAPIMessages`'s JSON-Schema
 * via the `definition` "ErrorMessage".
 */
export interface ErrorMessage {
    type: "error";
    code: string;
    /**
     * Human-readable explanation, for logs (not for matching).
     */
    message: string;
    /**
     * The `type` of the refused client message.
     */
    for: string;
}
/** The close codes of the presence WebSocket and what a client does on each (asyncapi info.x-close-codes). */
export declare const closeCodes: readonly [{
    readonly code: 4400;
    readonly reason: "bad_request";
    readonly action: "stop";
}, {
    readonly code: 4401;
    readonly reason: "unauthorized";
    readonly action: "refresh_token";
}, {
    readonly code: 4401;
    readonly reason: "token_expired";
    readonly action: "refresh_token";
}, {
    readonly code: 4403;
    readonly reason: "forbidden";
    readonly action: "stop";
}, {
    readonly code: 4403;
    readonly reason: "session_ended";
    readonly action: "stop";
}, {
    readonly code: 4409;
    readonly reason: "too_many_connections";
    readonly action: "stop";
}, {
    readonly code: 4409;
    readonly reason: "session_full";
    readonly action: "stop";
}, {
    readonly code: 4429;
    readonly reason: "rate_limited";
    readonly action: "back_off";
}, {
    readonly code: 1001;
    readonly reason: "going_away";
    readonly action: "back_off";
}, {
    readonly code: 1011;
    readonly reason: "internal_error";
    readonly action: "back_off";
}, {
    readonly code: 1013;
    readonly reason: "slow_consumer";
    readonly action: "back_off";
}];
/** The subprotocol the server selects. */
export declare const subprotocol = "m4sh.presence.v1";
