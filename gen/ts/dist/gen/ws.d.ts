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
export type ClientMessage = CursorUpdate | Ping;
/**
 * Every frame the server may send.
 *
 * This interface was referenced by `AsyncAPIMessages`'s JSON-Schema
 * via the `definition` "ServerMessage".
 */
export type ServerMessage = PresenceSnapshot | PresenceJoin | PresenceLeave | Cursor | CursorBatch | Pong;
/**
 * All payload schemas of asyncapi/asyncapi.yaml.
 */
export interface AsyncAPIMessages {
    Coordinate?: Coordinate;
    UserID?: UserID;
    PresenceUser?: PresenceUser;
    ClientMessage?: ClientMessage;
    CursorUpdate?: CursorUpdate;
    Ping?: Ping;
    ServerMessage?: ServerMessage;
    PresenceSnapshot?: PresenceSnapshot;
    PresenceJoin?: PresenceJoin;
    PresenceLeave?: PresenceLeave;
    CursorPosition?: CursorPosition;
    Cursor?: Cursor;
    CursorBatch?: CursorBatch;
    Pong?: Pong;
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
 * via the `definition` "PresenceSnapshot".
 */
export interface PresenceSnapshot {
    type: "presence.snapshot";
    session_id: string;
    users: PresenceUser[];
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
