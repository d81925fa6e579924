// Runs one PresenceSocket from plain data and records everything it reports, so the same
// scenario (scenarios.mjs) drives it in Node and, through page.evaluate, in Chromium.
// Runs in both: no Node or DOM imports. Test support, not a test.

/**
 * A WebSocket class that never delivers `close` once `error` fired: what Node 20's
 * WebSocket does for a refused connection, reproduced in runtimes that follow the standard.
 */
export function errorWithoutClose(Base) {
  return class extends Base {
    constructor(url, protocols) {
      super(url, protocols);
      this.errored = false;
      super.addEventListener("error", () => { this.errored = true; });
      super.addEventListener("close", (e) => { if (!this.errored) this.closeHandler?.(e); });
    }
    get onclose() { return this.closeHandler ?? null; }
    set onclose(fn) { this.closeHandler = fn; }
  };
}

/** A stand-in for `window` outside browsers: online/offline and page visibility by hand. */
export function fakeEnvironment() {
  const env = new EventTarget();
  env.navigator = { onLine: true };
  env.document = Object.assign(new EventTarget(), { visibilityState: "visible" });
  env.setOnline = (on) => {
    env.navigator.onLine = on;
    env.dispatchEvent(new Event(on ? "online" : "offline"));
  };
  env.setVisible = (v) => {
    env.document.visibilityState = v ? "visible" : "hidden";
    env.document.dispatchEvent(new Event("visibilitychange"));
  };
  return env;
}

const recorded = ["status", "open", "snapshot", "users", "cursor", "state", "error", "close", "stopped"];

/**
 * Creates and connects a PresenceSocket from spec: {baseUrl, tokens: {connect: [...],
 * refresh: [...]} (consumed in order, the last one repeats; null = no token),
 * errorWithoutClose, options: {...PresenceOptions numbers}}. Returns {socket, events}: every
 * event as {t (ms since start), type, ...payload}, and getToken calls as {type: "token", why}.
 */
export function startClient(PresenceSocket, spec, { WebSocket, environment } = {}) {
  const t0 = Date.now();
  const events = [];
  const tokens = { connect: [...(spec.tokens?.connect ?? ["token"])], refresh: [...(spec.tokens?.refresh ?? ["fresh"])] };
  const take = (why) => (tokens[why].length > 1 ? tokens[why].shift() : tokens[why][0]) ?? undefined;
  let Ctor = WebSocket ?? globalThis.WebSocket;
  if (spec.errorWithoutClose) Ctor = errorWithoutClose(Ctor);
  const socket = new PresenceSocket({
    baseUrl: spec.baseUrl, classId: "c", sessionId: "s",
    getToken: (why) => {
      events.push({ t: Date.now() - t0, type: "token", why });
      return take(why);
    },
    WebSocket: Ctor,
    ...(environment ? { environment } : {}),
    ...spec.options,
  });
  for (const type of recorded) {
    socket.on(type, (p) => events.push({ t: Date.now() - t0, type, ...(Array.isArray(p) ? { users: p } : p) }));
  }
  socket.connect();
  return { socket, events };
}
