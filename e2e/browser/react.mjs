// Drives the React bindings' test page (gen/ts/test/react, bundled by the Go test) in
// headless Chromium as a tutor and a student in one classroom session. The page is put
// into a document of the service's own origin (so the WebSocket is same-origin).
// Each step waits for what the other window must show; prints one JSON line with what was
// seen, and `failed` naming the step that timed out.
// usage: node react.mjs <chromium> <base-url> <bundle-dir> <class-id> <session-id> <tutor-token> <student-token> <second-session-id>
import { readFile } from "node:fs/promises";
import { chromium } from "playwright-core";

const [executablePath, base, bundle, classId, sessionId, tutorToken, studentToken, secondSession] = process.argv.slice(2);
const browser = await chromium.launch({ executablePath, headless: true, args: ["--no-sandbox"] });
const out = { errors: [], steps: [] };
const read = (p) => p.evaluate(() => {
  const j = (id) => { const e = document.getElementById(id); return e ? (id === "status" ? e.textContent : JSON.parse(e.textContent)) : undefined; };
  return { status: j("status"), me: j("me"), others: j("others"), cursors: j("cursors"), hands: j("hands"), spotlight: j("spotlight"), renders: { ...window.renders } };
});
let step = "open";
try {
  const app = await readFile(`${bundle}/app.js`, "utf8");
  const open = async (user, token, color) => {
    const ctx = await browser.newContext({ viewport: { width: 900, height: 700 } });
    await ctx.route("**/favicon.ico", (r) => r.fulfill({ status: 204 })); // the service has none
    const p = await ctx.newPage();
    p.setDefaultTimeout(15000);
    p.on("pageerror", (e) => out.errors.push(`${user}: ${e}`));
    p.on("console", (m) => { if (m.type() === "error") out.errors.push(`${user}: ${m.text()}`); });
    // A document of the service's origin (so the WebSocket is same-origin and local), then
    // the test page's body and its bundle in it.
    const frag = new URLSearchParams({ class: classId, session: sessionId, user, token, color });
    await p.goto(`${base}/healthz#${frag}`);
    await p.setContent(await readFile(`${bundle}/index.html`, "utf8"));
    await p.addScriptTag({ content: app, type: "module" });
    return p;
  };
  const wait = async (p, name, pred, arg) => {
    step = name;
    await p.waitForFunction(pred, arg);
    out.steps.push(name);
  };
  const tutor = await open("tina", tutorToken, "#e8590c");
  const student = await open("mia", studentToken, "#1c7ed6");

  await wait(tutor, "tutor open", () => document.getElementById("status")?.textContent === "open");
  await wait(student, "student open", () => document.getElementById("status")?.textContent === "open");
  await wait(tutor, "tutor sees mia's initial colour", (c) => JSON.parse(document.getElementById("others").textContent).some((o) => o.user_id === "mia" && o.state?.color === c), "#1c7ed6");
  await wait(student, "student sees tina's initial colour", (c) => JSON.parse(document.getElementById("others").textContent).some((o) => o.user_id === "tina" && o.state?.color === c), "#e8590c");

  step = "student sets a colour";
  await student.evaluate(() => window.act.setColor("#2f9e44"));
  await wait(student, "useMyState shows the new colour", () => JSON.parse(document.getElementById("me").textContent)?.color === "#2f9e44");
  await wait(tutor, "tutor sees mia's new colour", (c) => JSON.parse(document.getElementById("others").textContent).some((o) => o.user_id === "mia" && o.state?.color === c), "#2f9e44");

  const before = (await read(tutor)).renders;
  step = "student moves the cursor";
  for (let i = 1; i <= 10; i++) {
    await student.evaluate((i) => window.act.cursor(i * 10, i * 20), i);
    await student.waitForTimeout(60);
  }
  await wait(tutor, "tutor sees mia's cursor with her colour", () => JSON.parse(document.getElementById("cursors").textContent)
    .some((c) => c.user_id === "mia" && c.x === 100 && c.y === 200 && c.name === "Mia" && c.state?.color === "#2f9e44"));
  const after = (await read(tutor)).renders;
  out.rendersDuringCursorMoves = { others: after.others - before.others, cursors: after.cursors - before.cursors };

  step = "student raises a hand";
  await student.evaluate(() => window.act.raise());
  await wait(tutor, "tutor sees the hand", () => document.getElementById("hands").textContent === '["mia"]');
  await wait(student, "student sees her own hand", () => document.getElementById("hands").textContent === '["mia"]');

  step = "tutor turns the spotlight on";
  await tutor.evaluate(() => window.act.spotlight(true));
  await wait(student, "student sees the spotlight", () => JSON.parse(document.getElementById("spotlight").textContent)?.user_id === "tina");
  await tutor.evaluate(() => window.act.viewport(0, 120, 800, 600));
  await wait(student, "student sees the tutor's viewport", () => JSON.stringify(JSON.parse(document.getElementById("spotlight").textContent)?.viewport) === '{"x":0,"y":120,"w":800,"h":600}');

  step = "tutor switches to the second session";
  await tutor.evaluate((id) => window.switchSession(id), secondSession);
  await wait(student, "student sees tina leave the first session", () => document.getElementById("others").textContent === "[]"
    && document.getElementById("spotlight").textContent === "null");
  await wait(tutor, "tutor is open in the second session, alone", () => document.getElementById("status").textContent === "open"
    && document.getElementById("others").textContent === "[]" && document.getElementById("hands").textContent === "[]");
  step = "student follows";
  await student.evaluate((id) => window.switchSession(id), secondSession);
  // A new session starts from the provider's initialState, not the last session's state.
  await wait(tutor, "tutor sees mia join with her initial colour", () => JSON.parse(document.getElementById("others").textContent)
    .some((o) => o.user_id === "mia" && o.state?.color === "#1c7ed6"));
  await wait(student, "student's useMyState is the initial state again", () => JSON.parse(document.getElementById("me").textContent)?.color === "#1c7ed6");

  step = "student's provider unmounts";
  await student.evaluate(() => window.unmount());
  await wait(tutor, "tutor sees mia leave", () => document.getElementById("others").textContent === "[]");
  out.tutor = await read(tutor);
  await tutor.screenshot({ path: `${bundle}/tutor.png` });
  step = "done";
} catch (e) {
  out.failed = `${step}: ${String(e).split("\n")[0]}`;
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
