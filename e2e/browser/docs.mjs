// Opens /docs (Redoc over /openapi.yaml) and /docs/websocket (the AsyncAPI component over
// /asyncapi.yaml) in headless Chromium at 1280 px with every request to another origin
// refused, and reports what a reader sees: the sidebar's entries, where a click on one
// lands, rendered tables (parameters, the close codes) and whether they fit, markdown
// rendered as HTML, request examples. Saves a screenshot of each page. Prints one JSON line.
// usage: node docs.mjs <chromium> <base-url> <screenshot-dir>
import { chromium } from "playwright-core";

const [executablePath, base, shots] = process.argv.slice(2);
const origin = new URL(base).origin;
const browser = await chromium.launch({ executablePath, headless: true, args: ["--no-sandbox"] });
const out = { outside: [], errors: [] };
try {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  await ctx.route("**/*", (r) => {
    const u = r.request().url();
    if (u.startsWith(origin) || u.startsWith("data:") || u.startsWith("blob:")) return r.continue();
    out.outside.push(u);
    return r.abort();
  });
  const p = await ctx.newPage();
  p.setDefaultTimeout(30000);
  p.on("pageerror", (e) => out.errors.push(String(e)));
  p.on("console", (m) => { if (m.type() === "error") out.errors.push(m.text()); });
  p.on("response", (r) => { if (r.status() >= 400) out.errors.push(`${r.status()} ${r.url()}`); });

  // OpenAPI.
  await p.goto(`${base}/docs`);
  await p.waitForSelector("body[data-ready]");
  out.openapiReady = await p.evaluate(() => document.body.dataset.ready);
  await p.waitForSelector(".menu-content li[data-item-id]");
  out.openapiNav = await p.$$eval(".menu-content li[data-item-id*='/operation/']", (l) => l.map((e) => e.getAttribute("data-item-id").split("/operation/")[1]));
  out.conventionsHTML = await p.evaluate(() => {
    const s = document.querySelector("[data-section-id='section/Conventions']");
    return s ? { strong: s.querySelectorAll("strong").length, code: s.querySelectorAll("code").length, backticks: (s.innerText.match(/`/g) || []).length } : null;
  });
  await p.screenshot({ path: `${shots}/docs.png` });
  // Open the solo group and click an operation: it scrolls to that operation, below the bar.
  await p.click(".menu-content li[data-item-id='tag/solo'] > label");
  await p.click(".menu-content li[data-item-id$='/operation/SoloSnapshotCreate'] > label");
  await p.waitForFunction(() => location.hash.endsWith("/operation/SoloSnapshotCreate"));
  await p.waitForTimeout(500);
  out.clicked = await p.evaluate(() => {
    const op = document.querySelector("[data-section-id$='/operation/SoloSnapshotCreate']");
    const r = op.getBoundingClientRect();
    const tables = [...op.querySelectorAll("table")];
    return {
      hash: location.hash, top: Math.round(r.top),
      tableRows: tables.reduce((n, t) => n + t.querySelectorAll("tr").length, 0),
      idempotencyKeyInTable: tables.some((t) => t.innerText.includes("Idempotency-Key")),
    };
  });
  await p.screenshot({ path: `${shots}/docs-operation.png` });
  out.requestSamples = await p.evaluate(() => {
    const op = document.querySelector("[data-section-id$='/operation/ClassroomCreate']");
    return op ? { samples: op.innerText.includes("Request samples"), title: op.innerText.includes("\"title\"") } : null;
  });

  // AsyncAPI.
  await p.goto(`${base}/docs/websocket`);
  await p.waitForSelector("body[data-ready]");
  out.asyncapiReady = await p.evaluate(() => document.body.dataset.ready);
  await p.waitForSelector(".aui-root #messages");
  out.asyncapi = await p.evaluate(() => {
    const side = document.querySelector(".aui-root .sidebar");
    const sideBox = side?.getBoundingClientRect();
    const table = [...document.querySelectorAll(".aui-root table")].find((t) => t.innerText.includes("token_expired"));
    const tb = table?.getBoundingClientRect();
    return {
      sidebarVisible: !!side && getComputedStyle(side).display !== "none" && sideBox.width > 100,
      sidebarLinks: side ? [...side.querySelectorAll("a[href^='#']")].map((a) => a.getAttribute("href")) : [],
      messages: [...document.querySelectorAll(".aui-root [id^='message-']")].map((e) => e.id).filter((id) => !id.endsWith("-payload")),
      closeTable: table ? {
        rows: table.querySelectorAll("tr").length,
        right: Math.round(tb.right), viewport: innerWidth,
        fits: tb.right <= innerWidth && (table.scrollWidth <= table.clientWidth || getComputedStyle(table).overflowX === "auto"),
      } : null,
      backticks: (document.querySelector("#introduction")?.innerText.match(/`/g) || []).length,
    };
  });
  await p.click(".aui-root .sidebar a[href='#message-presenceSnapshot']");
  await p.waitForTimeout(500);
  out.asyncapiClicked = await p.evaluate(() => ({
    hash: location.hash, top: Math.round(document.getElementById("message-presenceSnapshot").getBoundingClientRect().top),
  }));
  await p.screenshot({ path: `${shots}/docs-websocket.png` });
} catch (e) {
  out.errors.push(`driver: ${e.stack ?? e}`);
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
