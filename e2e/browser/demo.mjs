// Walks the live demo page (/demo/) in headless Chromium as two users in two windows: the
// tutor creates a classroom, adds the student and starts a session; both join; each sees the
// other in the presence list and the other's cursor on the board. The tutor then saves and
// restores a solo snapshot and sends a telemetry event. Saves a screenshot of each window.
// Prints one JSON line with what it saw.
// usage: node demo.mjs <chromium> <demo-url> <tutor-token> <student-user-id> <student-token> <screenshot-dir>
import { chromium } from "playwright-core";

const [executablePath, demoURL, tutorToken, studentID, studentToken, shots] = process.argv.slice(2);
const browser = await chromium.launch({ executablePath, headless: true, args: ["--no-sandbox"] });
const timeout = 15000;
const errors = [];
try {
  // Two contexts: two separate windows with their own sessionStorage, like two people.
  const open = async (tok) => {
    const ctx = await browser.newContext({ viewport: { width: 1100, height: 1100 } });
    const p = await ctx.newPage();
    p.setDefaultTimeout(timeout);
    p.on("pageerror", (e) => errors.push(String(e)));
    p.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
    await p.goto(demoURL);
    await p.waitForSelector("body[data-ready=true]");
    await p.fill("#token", tok);
    await p.click("#use-token");
    await p.waitForFunction(() => document.querySelector("#me").textContent.startsWith("signed in as"));
    return p;
  };
  const text = (p, sel) => p.$eval(sel, (e) => e.textContent);

  const tutor = await open(tutorToken);
  await tutor.fill("#new-classroom", "Demo classroom");
  await tutor.click("#create-classroom");
  await tutor.waitForFunction(() => document.querySelector("#classroom").options.length === 1);
  await tutor.fill("#member", studentID);
  await tutor.click("#add-member");
  await tutor.waitForFunction((id) => document.querySelector("#roster").textContent.includes(id), studentID);
  await tutor.click("#start-session");
  await tutor.waitForFunction(() => document.querySelector("#session").options.length === 1);
  await tutor.click("#connect");
  await tutor.waitForFunction(() => document.querySelector("#ws-status").textContent.startsWith("connected"));

  const student = await open(studentToken);
  await student.waitForFunction(() => document.querySelector("#session").options.length === 1);
  await student.click("#connect");
  await student.waitForFunction(() => document.querySelector("#ws-status").textContent.startsWith("connected"));

  // Presence: each window lists both users.
  const bothPresent = () => document.querySelectorAll("#presence li").length === 2;
  await tutor.waitForFunction(bothPresent);
  await student.waitForFunction(bothPresent);

  // Cursors: moving the mouse over one board shows a labelled dot on the other.
  const wiggle = async (p, fx, fy) => {
    const box = await (await p.$("#board")).boundingBox();
    for (let i = 0; i < 5; i++) {
      await p.mouse.move(box.x + box.width * fx + i, box.y + box.height * fy + i);
      await p.waitForTimeout(60);
    }
  };
  const tutorID = (await text(tutor, "#me")).split(" ")[3];
  await wiggle(student, 0.25, 0.5);
  await tutor.waitForSelector(`#board .cursor[data-user="${studentID}"]`);
  await wiggle(tutor, 0.75, 0.3);
  await student.waitForSelector(`#board .cursor[data-user="${tutorID}"]`);
  const dot = (p, id) => p.$eval(`#board .cursor[data-user="${id}"]`, (e) => ({ left: e.style.left, top: e.style.top }));

  // Solo snapshot: save, clobber the editor, restore.
  const doc = JSON.stringify({ shapes: [{ kind: "rect", w: 3, h: 4 }] });
  await tutor.fill("#snapshot-doc", doc);
  await tutor.click("#save-snapshot");
  await tutor.waitForFunction(() => document.querySelector("#solo-status").textContent.startsWith("saved revision 1"));
  const saved = await text(tutor, "#solo-status");
  await tutor.fill("#snapshot-doc", "");
  await tutor.click("#restore-snapshot");
  await tutor.waitForFunction(() => document.querySelector("#solo-status").textContent.startsWith("restored"));
  const restored = await tutor.$eval("#snapshot-doc", (e) => e.value);

  // Snapshot history: a second revision, pin the first with a label, restore it.
  await tutor.fill("#snapshot-doc", JSON.stringify({ shapes: [] }));
  await tutor.click("#save-snapshot");
  await tutor.waitForSelector('#history tr[data-revision="2"]');
  await tutor.fill("#pin-label", "first draft");
  await tutor.click('#history tr[data-revision="1"] button.pin');
  await tutor.waitForSelector('#history tr[data-revision="1"][data-pinned="true"]');
  await tutor.click('#history tr[data-revision="1"] button.restore');
  await tutor.waitForSelector('#history tr[data-revision="3"]');
  await tutor.waitForFunction((d) => document.querySelector("#snapshot-doc").value === d, doc);
  const history = await tutor.$$eval("#history tr", (rows) => rows.map((r) => r.textContent));

  // Telemetry.
  await tutor.click("#send-event");
  await tutor.waitForFunction(() => document.querySelector("#telemetry-status").textContent.startsWith("accepted"));

  await tutor.screenshot({ path: `${shots}/demo-tutor.png`, fullPage: true });
  await student.screenshot({ path: `${shots}/demo-student.png`, fullPage: true });
  console.log(JSON.stringify({
    tutorID,
    tutorSees: { presence: await tutor.$$eval("#presence li", (l) => l.map((e) => e.dataset.user)), cursor: await dot(tutor, studentID) },
    studentSees: { presence: await student.$$eval("#presence li", (l) => l.map((e) => e.dataset.user)), cursor: await dot(student, tutorID) },
    saved, restored, doc, history,
    telemetry: await text(tutor, "#telemetry-status"),
    errors,
  }));
} catch (e) {
  console.error(String(e?.stack ?? e), "\npage errors:", errors);
  process.exitCode = 1;
} finally {
  await browser.close();
}
