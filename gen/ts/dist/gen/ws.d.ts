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
export type ClientMessage = CursorUpdate | Ping | StateUpdate | HandUpdate | ReactionSend | SpotlightSet | ViewportUpdate;
/**
 * This interface was referenced by `AsyncAPIMessages`'s JSON-Schema
 * via the `definition` "Emoji".
 */
export type Emoji = "👍" | "👏" | "❤️" | "😂" | "😮" | "❓";
/**
 * A finite, positive width or height.
 *
 * This interface was referenced by `AsyncAPIMessages`'s JSON-Schema
 * via the `definition` "Extent".
 */
export type Extent = number;
/**
 * Every frame the server may send.
 *
 * This interface was referenced by `AsyncAPIMessages`'s JSON-Schema
 * via the `definition` "ServerMessage".
 */
export type ServerMessage = PresenceSnapshot | PresenceJoin | PresenceLeave | Cursor | CursorBatch | Pong | State | ErrorMessage | Hand | Reaction | Spotlight | Viewport;
/**
 * When the hand was raised or lowered (UTC, millisecond precision), stamped by the server.
 *
 * This interface was referenced by `AsyncAPIMessages`'s JSON-Schema
 * via the `definition` "HandTime".
 */
export type HandTime = string;
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
    Emoji?: Emoji;
    Extent?: Extent;
    HandTime?: HandTime;
    HandUpdate?: HandUpdate;
    ReactionSend?: ReactionSend;
    SpotlightSet?: SpotlightSet;
    ViewportUpdate?: ViewportUpdate;
    Rect?: Rect;
    RaisedHand?: RaisedHand;
    SpotlightState?: SpotlightState;
    Hand?: Hand;
    Reaction?: Reaction;
    Spotlight?: Spotlight;
    Viewport?: Viewport;
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
 * Raise or lower a hand: `user_id` is whose (absent, or the sender's own id, for their own). Only a tutor may lower another user's hand; only a student may raise one, their own.
 *
 * This interface was referenced by `AsyncAPIMessages`'s JSON-Schema
 * via the `definition` "HandUpdate".
 */
export interface HandUpdate {
    type: "hand";
    raised: boolean;
    user_id?: UserID;
}
/**
 * This interface was referenced by `AsyncAPIMessages`'s JSON-Schema
 * via the `definition` "ReactionSend".
 */
export interface ReactionSend {
    type: "reaction";
    emoji: Emoji;
}
/**
 * This interface was referenced by `AsyncAPIMessages`'s JSON-Schema
 * via the `definition` "SpotlightSet".
 */
export interface SpotlightSet {
    type: "spotlight";
    on: boolean;
}
/**
 * This interface was referenced by `AsyncAPIMessages`'s JSON-Schema
 * via the `definition` "ViewportUpdate".
 */
export interface ViewportUpdate {
    type: "viewport";
    x: Coordinate;
    y: Coordinate;
    w: Extent;
    h: Extent;
}
/**
 * This interface was referenced by `AsyncAPIMessages`'s JSON-Schema
 * via the `definition` "PresenceSnapshot".
 */
export interface PresenceSnapshot {
    type: "presence.snapshot";
    session_id: string;
    users: SnapshotUser[];
    /**
     * Raised hands in the order raised (absent when none is).
     */
    hands?: RaisedHand[];
    spotlight?: SpotlightState;
}
/**
 * This interface was referenced by `AsyncAPIMessages`'s JSON-Schema
 * via the `definition` "RaisedHand".
 */
export interface RaisedHand {
    user_id: UserID;
    at: HandTime;
}
/**
 * The tutor holding the spotlight and their latest viewport (absent until they sent one); absent from the snapshot while the spotlight is off.
 *
 * This interface was referenced by `AsyncAPIMessages`'s JSON-Schema
 * via the `definition` "SpotlightState".
 */
export interface SpotlightState {
    user_id: UserID;
    viewport?: Rect;
}
/**
 * This interface was referenced by `AsyncAPIMessages`'s JSON-Schema
 * via the `definition` "Rect".
 */
export interface Rect {
    x: Coordinate;
    y: Coordinate;
    w: Extent;
    h: Extent;
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
 * A frame the server refused without closing the connection. Known codes: `state_too_large` (a presence state over 512 bytes), `forbidden` (a message the user's role may not send: `spotlight`, `viewport` or another user's `hand` from a student) and `rate_limited` (a `hand` or `spotlight` change over 5 per second, burst 10: not relayed; at most one such frame per second; send the latest wanted change again after a second). Clients should treat an unknown code like `forbidden`.
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
/**
 * This interface was referenced by `AsyncAPIMessages`'s JSON-Schema
 * via the `definition` "Hand".
 */
export interface Hand {
    type: "hand";
    user_id: UserID;
    raised: boolean;
    at: HandTime;
}
/**
 * This interface was referenced by `AsyncAPIMessages`'s JSON-Schema
 * via the `definition` "Reaction".
 */
export interface Reaction {
    type: "reaction";
    user_id: UserID;
    emoji: Emoji;
}
/**
 * This interface was referenced by `AsyncAPIMessages`'s JSON-Schema
 * via the `definition` "Spotlight".
 */
export interface Spotlight {
    type: "spotlight";
    user_id: UserID;
    on: boolean;
}
/**
 * This interface was referenced by `AsyncAPIMessages`'s JSON-Schema
 * via the `definition` "Viewport".
 */
export interface Viewport {
    type: "viewport";
    user_id: UserID;
    x: Coordinate;
    y: Coordinate;
    w: Extent;
    h: Extent;
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
