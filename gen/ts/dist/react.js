// Hand-written: React bindings of PresenceSocket (@m4sh/client/react). One socket per
// <PresenceProvider>; each hook reads one slice of what the socket reports through
// useSyncExternalStore, so a component re-renders only when its slice changes (cursor
// moves re-render useCursors' components, not useOthers').
import { createContext, createElement, useCallback, useContext, useEffect, useRef, useState, useSyncExternalStore, } from "react";
import { PresenceSocket } from "./presence.js";
/**
 * The socket and immutable snapshots of what it reported, one per hook; a snapshot object
 * is replaced only when its content changes, as useSyncExternalStore requires.
 */
class PresenceStore {
    socket;
    userId;
    slices;
    listeners = new Map();
    offs = [];
    constructor(socket, userId, initialState) {
        this.socket = socket;
        this.userId = userId;
        this.slices = { status: socket.status, others: [], cursors: [], myState: initialState, hands: [], spotlight: undefined };
        const refreshUsers = () => {
            this.set("others", this.computeOthers());
            this.set("cursors", this.computeCursors());
        };
        this.offs.push(socket.on("status", ({ status }) => this.set("status", status)), socket.on("users", refreshUsers), socket.on("state", refreshUsers), socket.on("cursor", () => this.set("cursors", this.computeCursors())), socket.on("hands", (hands) => this.set("hands", hands)), socket.on("spotlight", () => this.set("spotlight", this.computeSpotlight())), socket.on("viewport", () => this.set("spotlight", this.computeSpotlight())));
    }
    subscribe(name, fn) {
        let set = this.listeners.get(name);
        if (!set)
            this.listeners.set(name, (set = new Set()));
        set.add(fn);
        return () => set.delete(fn);
    }
    set(name, value) {
        if (sameJSON(this.slices[name], value))
            return;
        this.slices[name] = value;
        for (const fn of this.listeners.get(name) ?? [])
            fn();
    }
    detach() {
        for (const off of this.offs)
            off();
    }
    computeOthers() {
        return this.socket.users
            .filter((u) => u.user_id !== this.userId)
            .map(({ user_id, name, role, state }) => (state === undefined ? { user_id, name, role } : { user_id, name, role, state }));
    }
    computeCursors() {
        const out = [];
        for (const u of this.socket.users) {
            if (u.user_id === this.userId || !u.cursor)
                continue;
            const c = { user_id: u.user_id, name: u.name, x: u.cursor.x, y: u.cursor.y };
            if (u.state !== undefined)
                c.state = u.state;
            out.push(c);
        }
        return out;
    }
    computeSpotlight() {
        const h = this.socket.spotlightHolder;
        if (!h)
            return undefined;
        return h.viewport ? { user_id: h.user_id, viewport: { ...h.viewport } } : { user_id: h.user_id };
    }
}
function sameJSON(a, b) {
    return a === b || (typeof a === "object" && typeof b === "object" && JSON.stringify(a) === JSON.stringify(b));
}
// One context for every state type S: the hooks' type parameter says which the app uses.
const Context = createContext(null);
/**
 * Connects to one classroom session while mounted (a new socket when classId, sessionId or
 * baseUrl change; closed on unmount) and provides it to the hooks below.
 *
 *   <PresenceProvider classId={c} sessionId={s} userId={me.user_id} getToken={getToken} initialState={{ color }}>
 *     <Board />
 *   </PresenceProvider>
 */
export function PresenceProvider(props) {
    const { classId, sessionId, userId, getToken, initialState, children, ...options } = props;
    const tokenRef = useRef(getToken);
    tokenRef.current = getToken;
    // Read when a socket is made: the latest options and state, not those of the first render.
    const optionsRef = useRef(options);
    optionsRef.current = options;
    const initialRef = useRef(initialState);
    initialRef.current = initialState;
    const key = `${options.baseUrl ?? ""}\n${classId}\n${sessionId}\n${userId}`;
    const [store, setStore] = useState(null);
    // The socket is created and connected in an effect (never during render), so a render that
    // React throws away opens nothing; in StrictMode's mount–unmount–mount it connects, closes
    // and connects again.
    useEffect(() => {
        const socket = new PresenceSocket({
            ...optionsRef.current,
            classId,
            sessionId,
            getToken: (why) => tokenRef.current(why),
        });
        const s = new PresenceStore(socket, userId, initialRef.current);
        setStore({ key, store: s });
        socket.connect();
        if (initialRef.current !== undefined)
            socket.setState(initialRef.current);
        return () => {
            s.detach();
            socket.close();
        };
        // key holds every value the socket is made from; the refs carry the rest.
    }, [key]);
    const current = store && store.key === key ? store.store : null;
    return createElement(Context.Provider, { value: current }, children);
}
function useStore() {
    return useContext(Context);
}
function useSlice(name, fallback) {
    const store = useStore();
    const subscribe = useCallback((fn) => (store ? store.subscribe(name, fn) : () => { }), [store, name]);
    return useSyncExternalStore(subscribe, () => (store ? store.slices[name] : fallback), () => fallback);
}
const noOthers = [];
/**
 * The socket of the nearest PresenceProvider, for actions (`sendCursor`, `raiseHand`,
 * `react`, `spotlight`, `sendViewport`); null outside one and until it has connected once.
 */
export function usePresenceSocket() {
    return useStore()?.socket ?? null;
}
/** The socket's status: `idle`, `connecting`, `open`, `reconnecting` or `stopped`. */
export function useConnectionState() {
    return useSlice("status", "idle");
}
/** Everyone else present, in the order the server listed them, with their presence state. */
export function useOthers() {
    return useSlice("others", noOthers);
}
/** The latest cursor of everyone else who has one (re-renders on every cursor update). */
export function useCursors() {
    return useSlice("cursors", noOthers);
}
/**
 * The caller's presence state and its setter: `const [me, setMe] = useMyState<Me>()`. The
 * setter sends it (at most 5 per second, latest wins; again after reconnects) and throws
 * RangeError when it is over 512 bytes as JSON.
 */
export function useMyState() {
    const store = useStore();
    const state = useSlice("myState", undefined);
    const set = useCallback((s) => {
        if (!store)
            throw new Error("useMyState: no connected PresenceProvider above this component");
        store.socket.setState(s);
        store.set("myState", s);
    }, [store]);
    return [state, set];
}
/** Raised hands in the order raised (the caller's own included). */
export function useHands() {
    return useSlice("hands", noOthers);
}
/** Who holds the spotlight and their latest viewport, or undefined while it is off. */
export function useSpotlight() {
    return useSlice("spotlight", undefined);
}
