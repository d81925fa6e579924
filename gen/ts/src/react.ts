// Hand-written: React bindings of PresenceSocket (@m4sh/client/react). One socket per
// <PresenceProvider>; each hook reads one slice of what the socket reports through
// useSyncExternalStore, so a component re-renders only when its slice changes (cursor
// moves re-render useCursors' components, not useOthers').
import {
  createContext,
  createElement,
  useCallback,
  useContext,
  useEffect,
  useRef,
  useState,
  useSyncExternalStore,
  type ReactNode,
} from "react";
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

interface Slices<S extends PresenceState> {
  status: PresenceStatus;
  others: Other<S>[];
  cursors: OtherCursor<S>[];
  myState: S | undefined;
  hands: RaisedHand[];
  spotlight: SpotlightInfo | undefined;
}

type SliceName = keyof Slices<PresenceState>;

/**
 * The socket and immutable snapshots of what it reported, one per hook; a snapshot object
 * is replaced only when its content changes, as useSyncExternalStore requires.
 */
class PresenceStore<S extends PresenceState> {
  readonly slices: Slices<S>;
  private readonly listeners = new Map<SliceName, Set<() => void>>();
  private readonly offs: (() => void)[] = [];

  constructor(readonly socket: PresenceSocket<S>, private readonly userId: string, initialState: S | undefined) {
    this.slices = { status: socket.status, others: [], cursors: [], myState: initialState, hands: [], spotlight: undefined };
    const refreshUsers = () => {
      this.set("others", this.computeOthers());
      this.set("cursors", this.computeCursors());
    };
    this.offs.push(
      socket.on("status", ({ status }) => this.set("status", status)),
      socket.on("users", refreshUsers),
      socket.on("state", refreshUsers),
      socket.on("cursor", () => this.set("cursors", this.computeCursors())),
      socket.on("hands", (hands) => this.set("hands", hands)),
      socket.on("spotlight", () => this.set("spotlight", this.computeSpotlight())),
      socket.on("viewport", () => this.set("spotlight", this.computeSpotlight())),
    );
  }

  subscribe(name: SliceName, fn: () => void): () => void {
    let set = this.listeners.get(name);
    if (!set) this.listeners.set(name, (set = new Set()));
    set.add(fn);
    return () => set.delete(fn);
  }

  set<K extends SliceName>(name: K, value: Slices<S>[K]): void {
    if (sameJSON(this.slices[name], value)) return;
    this.slices[name] = value;
    for (const fn of this.listeners.get(name) ?? []) fn();
  }

  detach(): void {
    for (const off of this.offs) off();
  }

  private computeOthers(): Other<S>[] {
    return this.socket.users
      .filter((u) => u.user_id !== this.userId)
      .map(({ user_id, name, role, state }) => (state === undefined ? { user_id, name, role } : { user_id, name, role, state }));
  }

  private computeCursors(): OtherCursor<S>[] {
    const out: OtherCursor<S>[] = [];
    for (const u of this.socket.users) {
      if (u.user_id === this.userId || !u.cursor) continue;
      const c: OtherCursor<S> = { user_id: u.user_id, name: u.name, x: u.cursor.x, y: u.cursor.y };
      if (u.state !== undefined) c.state = u.state;
      out.push(c);
    }
    return out;
  }

  private computeSpotlight(): SpotlightInfo | undefined {
    const h = this.socket.spotlightHolder;
    if (!h) return undefined;
    return h.viewport ? { user_id: h.user_id, viewport: { ...h.viewport } } : { user_id: h.user_id };
  }
}

function sameJSON(a: unknown, b: unknown): boolean {
  return a === b || (typeof a === "object" && typeof b === "object" && JSON.stringify(a) === JSON.stringify(b));
}

// One context for every state type S: the hooks' type parameter says which the app uses.
const Context = createContext<PresenceStore<any> | null>(null);

export interface PresenceProviderProps<S extends PresenceState = PresenceState>
  extends Omit<PresenceOptions, "classId" | "sessionId" | "getToken"> {
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
export function PresenceProvider<S extends PresenceState = PresenceState>(props: PresenceProviderProps<S>): ReactNode {
  const { classId, sessionId, userId, getToken, initialState, children, ...options } = props;
  const tokenRef = useRef(getToken);
  tokenRef.current = getToken;
  // Read when a socket is made: the latest options and state, not those of the first render.
  const optionsRef = useRef(options);
  optionsRef.current = options;
  const initialRef = useRef(initialState);
  initialRef.current = initialState;
  const key = `${options.baseUrl ?? ""}\n${classId}\n${sessionId}\n${userId}`;
  const [store, setStore] = useState<{ key: string; store: PresenceStore<S> } | null>(null);
  // The socket is created and connected in an effect (never during render), so a render that
  // React throws away opens nothing; in StrictMode's mount–unmount–mount it connects, closes
  // and connects again.
  useEffect(() => {
    const socket = new PresenceSocket<S>({
      ...optionsRef.current,
      classId,
      sessionId,
      getToken: (why) => tokenRef.current(why),
    });
    const s = new PresenceStore<S>(socket, userId, initialRef.current);
    setStore({ key, store: s });
    socket.connect();
    if (initialRef.current !== undefined) socket.setState(initialRef.current);
    return () => {
      s.detach();
      socket.close();
    };
    // key holds every value the socket is made from; the refs carry the rest.
  }, [key]);
  const current = store && store.key === key ? store.store : null;
  return createElement(Context.Provider, { value: current }, children);
}

function useStore<S extends PresenceState>(): PresenceStore<S> | null {
  return useContext(Context) as PresenceStore<S> | null;
}

function useSlice<S extends PresenceState, K extends SliceName>(name: K, fallback: Slices<S>[K]): Slices<S>[K] {
  const store = useStore<S>();
  const subscribe = useCallback((fn: () => void) => (store ? store.subscribe(name, fn) : () => {}), [store, name]);
  return useSyncExternalStore(subscribe, () => (store ? store.slices[name] : fallback), () => fallback);
}

const noOthers: never[] = [];

/**
 * The socket of the nearest PresenceProvider, for actions (`sendCursor`, `raiseHand`,
 * `react`, `spotlight`, `sendViewport`); null outside one and until it has connected once.
 */
export function usePresenceSocket<S extends PresenceState = PresenceState>(): PresenceSocket<S> | null {
  return useStore<S>()?.socket ?? null;
}

/** The socket's status: `idle`, `connecting`, `open`, `reconnecting` or `stopped`. */
export function useConnectionState(): PresenceStatus {
  return useSlice("status", "idle");
}

/** Everyone else present, in the order the server listed them, with their presence state. */
export function useOthers<S extends PresenceState = PresenceState>(): Other<S>[] {
  return useSlice<S, "others">("others", noOthers);
}

/** The latest cursor of everyone else who has one (re-renders on every cursor update). */
export function useCursors<S extends PresenceState = PresenceState>(): OtherCursor<S>[] {
  return useSlice<S, "cursors">("cursors", noOthers);
}

/**
 * The caller's presence state and its setter: `const [me, setMe] = useMyState<Me>()`. The
 * setter sends it (at most 5 per second, latest wins; again after reconnects) and throws
 * RangeError when it is over 512 bytes as JSON.
 */
export function useMyState<S extends PresenceState = PresenceState>(): [S | undefined, (state: S) => void] {
  const store = useStore<S>();
  const state = useSlice<S, "myState">("myState", undefined);
  const set = useCallback((s: S) => {
    if (!store) throw new Error("useMyState: no connected PresenceProvider above this component");
    store.socket.setState(s);
    store.set("myState", s);
  }, [store]);
  return [state, set];
}

/** Raised hands in the order raised (the caller's own included). */
export function useHands(): RaisedHand[] {
  return useSlice("hands", noOthers);
}

/** Who holds the spotlight and their latest viewport, or undefined while it is off. */
export function useSpotlight(): SpotlightInfo | undefined {
  return useSlice("spotlight", undefined);
}
