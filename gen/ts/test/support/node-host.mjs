// The scenarios' host in Node: clients run in this process with the runtime's WebSocket and
// a fake window (client-host.mjs). Test support, not a test.
import { startClient, fakeEnvironment } from "./client-host.mjs";

export function nodeHost(PresenceSocket) {
  const environment = fakeEnvironment();
  const clients = [];
  return {
    async start(spec) {
      const c = startClient(PresenceSocket, spec, { environment });
      clients.push(c);
      return {
        events: async () => c.events,
        get: async (prop) => c.socket[prop],
        call: async (method, ...args) => {
          try {
            return { value: c.socket[method](...args) };
          } catch (e) {
            return { error: e.name };
          }
        },
      };
    },
    setOnline: async (on) => environment.setOnline(on),
    setVisible: async (v) => environment.setVisible(v),
    closeAll: () => clients.forEach((c) => c.socket.close()),
  };
}
