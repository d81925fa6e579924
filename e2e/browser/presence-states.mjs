// Runs PresenceSocket's state-machine scenarios (gen/ts/test/support/scenarios.mjs, the ones
// the Node tests run) in headless Chromium: each scenario gets a fresh window whose page
// loads the built client (gen/ts/dist) and runs it with the browser's own WebSocket, online
// and offline events (playwright's offline emulation) and page visibility. The misbehaving
// servers run here, in Node, on loopback. Prints one JSON line: [{name, ok, error?, ms}].
// usage: node presence-states.mjs <chromium> [scenario-name-substring]
import { createServer } from "node:http";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { scenarios } from "../../gen/ts/test/support/scenarios.mjs";

const [executablePath, only = ""] = process.argv.slice(2);
const pkg = fileURLToPath(new URL("../../gen/ts/", import.meta.url));

const page = `<!doctype html><meta charset="utf-8"><title>PresenceSocket states</title>
<script type="module">
import { PresenceSocket } from "/dist/presence.js";
import { startClient } from "/support/client-host.mjs";
window.clients = [];
window.start = (spec) => window.clients.push(startClient(PresenceSocket, spec)) - 1;
document.body.dataset.ready = "true";
</script><body></body>`;

// The page and the package's files, from one loopback origin.
const files = createServer(async (req, res) => {
  const path = new URL(req.url, "http://x").pathname;
  const file = path.startsWith("/dist/") ? pkg + path.slice(1)
    : path === "/support/client-host.mjs" ? pkg + "test" + path : null;
  if (path === "/") return res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" }).end(page);
  if (!file || file.includes("..")) return res.writeHead(404).end();
  try {
    res.writeHead(200, { "Content-Type": "text/javascript" }).end(await readFile(file));
  } catch {
    res.writeHead(404).end();
  }
});
await new Promise((r) => files.listen(0, "127.0.0.1", r));
const origin = `http://127.0.0.1:${files.address().port}`;

/** The scenarios' host in a browser window (the Node one is gen/ts/test/support/node-host.mjs). */
async function browserHost(browser) {
  const context = await browser.newContext();
  const p = await context.newPage();
  const errors = [];
  p.on("pageerror", (e) => errors.push(String(e)));
  await p.goto(origin + "/");
  await p.waitForSelector("body[data-ready=true]", { state: "attached" });
  return {
    errors,
    close: () => context.close(),
    async start(spec) {
      const id = await p.evaluate((s) => window.start(s), spec);
      return {
        events: () => p.evaluate((i) => window.clients[i].events, id),
        get: (prop) => p.evaluate(([i, prop]) => window.clients[i].socket[prop], [id, prop]),
        call: (method, ...args) => p.evaluate(([i, method, args]) => {
          try {
            return { value: window.clients[i].socket[method](...args) };
          } catch (e) {
            return { error: e.name };
          }
        }, [id, method, args]),
      };
    },
    setOnline: (on) => context.setOffline(!on),
    setVisible: (visible) => p.evaluate((v) => {
      Object.defineProperty(document, "visibilityState", { value: v ? "visible" : "hidden", configurable: true });
      document.dispatchEvent(new Event("visibilitychange"));
    }, visible),
  };
}

// A scenario that hangs is reported as a failure with its name rather than left to the Go
// test's deadline, which kills the driver before it prints anything.
const SCENARIO_MS = 60_000;
const within = (ms, what, p) => {
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not done within ${ms} ms`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
};

const browser = await chromium.launch({ executablePath, headless: true, args: ["--no-sandbox"], timeout: 60_000 });
const results = [];
try {
  for (const [name, run] of Object.entries(scenarios)) {
    if (!name.includes(only)) continue;
    // A scenario that hung (headless Chromium has been seen to stall a page now and then)
    // gets one more try on a fresh page; one that failed an assertion does not.
    let r;
    for (let attempt = 1; attempt <= 2; attempt++) {
      const t0 = Date.now();
      let host;
      try {
        host = await within(SCENARIO_MS, "opening a page", browserHost(browser));
        await within(SCENARIO_MS, name, run(host));
        if (host.errors.length) throw new Error(`page errors: ${host.errors.join("; ")}`);
        r = { name, ok: true, ms: Date.now() - t0, attempt };
      } catch (e) {
        r = { name, ok: false, error: String(e?.stack ?? e), ms: Date.now() - t0, attempt, hung: String(e?.message).includes("not done within") };
      } finally {
        if (host) await within(SCENARIO_MS, "closing the page", host.close()).catch(() => {});
      }
      console.error(`scenario attempt ${attempt} ${r.ok ? "ok" : "failed"} in ${r.ms} ms: ${name}`);
      if (r.ok || !r.hung) break;
    }
    results.push(r);
  }
} finally {
  await browser.close();
  files.close();
}
console.log(JSON.stringify(results));
