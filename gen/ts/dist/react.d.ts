import { type ReactNode } from "react";
import { PresenceSocket, type PresenceOptions, type PresenceStatus, type PresentUser } from "./presence.js";
import type { PresenceState, RaisedHand, Rect } from "./gen/ws.js";
/** Another user present in the session, with their presence state (cursor: see useCursors). */
export interface Other<S extends PresenceState = PresenceState> {
    user_id: string;
    name: string;
    role: PresentUser["role"];
    state?: S;
}
/** Another user's latest cursor, with their name and presence state for labelling it. */
export interface OtherCursor<S extends PresenceState = PresenceState> {
    user_id: string;
    name: string;
    x: number;
    y: number;
    state?: S;
}
/** Who holds the spotlight and their latest viewport (absent until they send one). */
export interface SpotlightInfo {
    user_id: string;
    viewport?: Rect;
}
export interface PresenceProviderProps<S extends PresenceState = PresenceState> extends Omit<PresenceOptions, "classId" | "sessionId" | "getToken"> {
    classId: string;
    sessionId: string;
    /** The signed-in user's id (`GET /api/v1/me/`): the hooks' "others" are everyone else. */
    userId: string;
    /** As PresenceOptions.getToken; may change between renders without reconnecting. */
    getToken: PresenceOptions["getToken"];
    /**
     * The caller's presence state to send once connected (and after every reconnect); a new
     * session (classId, sessionId changed) starts from it again, not from the last session's.
     */
    initialState?: S;
    children?: ReactNode;
}
/**
 * Connects to one classroom session while mounted (a new socket when classId, sessionId or
 * baseUrl change; closed on unmount) and provides it to the hooks below.
 *
 *   <PresenceProvider classId={c} sessionId={s} userId={me.user_id} getToken={getToken} initialState={{ color }}>
 *     <Board />
 *   </PresenceProvider>
 */
export declare function PresenceProvider<S extends PresenceState = PresenceState>(props: PresenceProviderProps<S>): ReactNode;
/**
 * The socket of the nearest PresenceProvider, for actions (`sendCursor`, `raiseHand`,
 * `react`, `spotlight`, `sendViewport`); null outside one and until it has connected once.
 */
export declare function usePresenceSocket<S extends PresenceState = PresenceState>(): PresenceSocket<S> | null;
/** The socket's status: `idle`, `connecting`, `open`, `reconnecting` or `stopped`. */
export declare function useConnectionState(): PresenceStatus;
/** Everyone else present, in the order the server listed them, with their presence state. */
export declare function useOthers<S extends PresenceState = PresenceState>(): Other<S>[];
/** The latest cursor of everyone else who has one (re-renders on every cursor update). */
export declare function useCursors<S extends PresenceState = PresenceState>(): OtherCursor<S>[];
/**
 * The caller's presence state and its setter: `const [me, setMe] = useMyState<Me>()`. The
 * setter sends it (at most 5 per second, latest wins; again after reconnects) and throws
 * RangeError when it is over 512 bytes as JSON.
 */
export declare function useMyState<S extends PresenceState = PresenceState>(): [S | undefined, (state: S) => void];
/** Raised hands in the order raised (the caller's own included). */
export declare function useHands(): RaisedHand[];
/** Who holds the spotlight and their latest viewport, or undefined while it is off. */
export declare function useSpotlight(): SpotlightInfo | undefined;
