// PresenceSocket's state machine in this Node runtime (20 with --experimental-websocket, or
// 22+) against loopback servers that misbehave on demand: refused connection, error without
// close, server restart, 4401 refresh, 4403/4409 stop, going offline, hidden page, connect
// timeout, presence state. The same scenarios run in Chromium (e2e/browser/presence-states.mjs).
import { test } from "node:test";
import { PresenceSocket } from "../dist/index.js";
import { scenarios } from "./support/scenarios.mjs";
import { nodeHost } from "./support/node-host.mjs";

const hasWebSocket = { skip: typeof WebSocket === "undefined" && "no global WebSocket (Node 20 needs --experimental-websocket)" };

for (const [name, run] of Object.entries(scenarios)) {
  test(name, { ...hasWebSocket, timeout: 30000 }, async (t) => {
    const host = nodeHost(PresenceSocket);
    t.after(() => host.closeAll());
    await run(host);
  });
}
