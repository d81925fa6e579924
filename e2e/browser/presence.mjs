// Drives headless Chromium against the presence WebSocket: two pages with valid tokens see
// each other's cursor, a page with a bad token sees close code 4401. Prints one JSON line.
// usage: node presence.mjs <chromium> <page-url> <ws-url> <token-a> <token-b> <bad-token>
import { chromium } from "playwright-core";

const [executablePath, pageURL, wsURL, tokA, tokB, bad] = process.argv.slice(2);
const browser = await chromium.launch({ executablePath, headless: true, args: ["--no-sandbox"] });
try {
  const ctx = await browser.newContext();
  const open = async (tok) => {
    const p = await ctx.newPage();
    await p.goto(pageURL);
    await p.evaluate(([u, t]) => window.connect(u, t), [wsURL, tok]);
    return p;
  };
  const a = await open(tokA);
  await a.waitForFunction(() => window.events.some((e) => e.type === "presence.snapshot"), null, { timeout: 10000 });
  const b = await open(tokB);
  await b.waitForFunction(() => window.events.some((e) => e.type === "presence.snapshot"), null, { timeout: 10000 });
  await a.waitForFunction(() => window.events.some((e) => e.type === "presence.join"), null, { timeout: 10000 });
  await b.evaluate(() => window.send({ type: "cursor", x: 42, y: 7 }));
  const cursor = await (await a.waitForFunction(
    () => window.events.find((e) => e.type === "cursor"), null, { timeout: 10000 })).jsonValue();
  const c = await open(bad);
  const closed = await (await c.waitForFunction(() => window.closeInfo, null, { timeout: 10000 })).jsonValue();
  const protocol = await a.evaluate(() => window.protocol);
  console.log(JSON.stringify({ cursor, closed, protocol }));
} finally {
  await browser.close();
}
