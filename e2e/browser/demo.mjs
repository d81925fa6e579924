// Walks the live demo page (/demo/) in headless Chromium as two users in two windows of
// 1280 px, signed in with the dev user picker (the service runs with DEV_TOKENS=1):
// - the student signs in first and sees no classroom; the tutor creates one, adds the student
//   (a mistyped id first: the error banner shows the 400) and starts a session; the student's
//   lists fill in when the window gets focus, with no Refresh button;
// - both join: each sees the other in the presence list and the other's cursor;
// - the tutor's snapshot editor refuses text that is not JSON inline, sending nothing; then
//   saves, restores, pins and restores from the history;
// - the student raises a hand, the tutor takes the spotlight: both windows are photographed;
// - the tutor starts and joins another session: the student's session list shows it at once
//   (a presence event: the tutor left), still without focus or Refresh;
// - a telemetry event is accepted.
// Prints one JSON line with what it saw.
// usage: node demo.mjs <chromium> <demo-url> <tutor-user-id> <student-user-id> <screenshot-dir>
import { chromium } from "playwright-core";

const [executablePath, demoURL, tutorID, studentID, shots] = process.argv.slice(2);
const browser = await chromium.launch({ executablePath, headless: true, args: ["--no-sandbox"] });
const timeout = 15000;
const errors = [];
try {
  // Two contexts: two separate windows with their own sessionStorage, like two people.
  const open = async (user) => {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const p = await ctx.newPage();
    p.setDefaultTimeout(timeout);
    p.on("pageerror", (e) => errors.push(String(e)));
    // The mistyped member id is answered 400 on purpose; Chromium logs that as an error.
    p.on("console", (m) => { if (m.type() === "error" && !m.text().includes("status of 400 (Bad Request)")) errors.push(m.text()); });
    await p.goto(demoURL);
    await p.waitForSelector("body[data-ready=true]");
    const picker = await p.$$eval(".user-pick", (l) => l.map((b) => b.dataset.user));
    await p.click(`.user-pick[data-user="${user}"]`);
    await p.waitForFunction(() => document.querySelector("#me").textContent.startsWith("signed in as"));
    return { p, picker };
  };
  const text = (p, sel) => p.$eval(sel, (e) => e.textContent);
  const count = (p, sel) => p.$$eval(sel, (l) => l.length);

  const { p: student, picker } = await open(studentID);
  const studentSignedIn = await text(student, "#me");
  const studentListsAtFirst = { classrooms: await count(student, "#classrooms li"), sessions: await count(student, "#sessions li") };

  const { p: tutor } = await open(tutorID);
  await tutor.fill("#new-classroom", "Algebra");
  await tutor.click("#create-classroom");
  await tutor.waitForSelector("#classrooms li.selected");
  // A user id with a leading space: refused by the API, shown in the banner.
  await tutor.fill("#member", ` ${studentID}`);
  await tutor.click("#add-member");
  await tutor.waitForSelector("#banner:not([hidden])");
  const banner = await tutor.$eval("#banner", (b) => ({
    status: b.dataset.status, code: b.dataset.code,
    title: b.querySelector(".banner-title").textContent, detail: b.querySelector(".banner-detail").textContent,
  }));
  await tutor.click("#banner-close");
  await tutor.fill("#member", studentID);
  await tutor.click("#add-member");
  await tutor.waitForSelector(`#roster li[data-user="${studentID}"]`);
  await tutor.click("#start-session");
  await tutor.waitForSelector("#sessions li.selected");
  await tutor.click("#connect");
  await tutor.waitForFunction(() => document.querySelector("#ws-status").textContent.startsWith("connected"));

  // Live lists: the student's window gets focus back; its lists fill in by themselves.
  // Headless windows never lose focus, so the focus event a window switch fires is sent here.
  await student.bringToFront();
  await student.evaluate(() => window.dispatchEvent(new FocusEvent("focus")));
  await student.waitForSelector("#classrooms li.selected");
  await student.waitForSelector("#sessions li.selected");
  await student.click("#connect");
  await student.waitForFunction(() => document.querySelector("#ws-status").textContent.startsWith("connected"));

  // Presence: each window lists both users.
  const bothPresent = () => document.querySelectorAll("#presence li").length === 2;
  await tutor.waitForFunction(bothPresent);
  await student.waitForFunction(bothPresent);

  // Cursors: moving the mouse over one board shows a labelled cursor on the other.
  const wiggle = async (p, fx, fy) => {
    const box = await (await p.$("#board")).boundingBox();
    for (let i = 0; i < 5; i++) {
      await p.mouse.move(box.x + box.width * fx + i, box.y + box.height * fy + i);
      await p.waitForTimeout(60);
    }
  };
  await wiggle(student, 0.25, 0.5);
  await tutor.waitForSelector(`#board .cursor[data-user="${studentID}"]`);
  await wiggle(tutor, 0.7, 0.3);
  await student.waitForSelector(`#board .cursor[data-user="${tutorID}"]`);
  const dot = (p, id) => p.$eval(`#board .cursor[data-user="${id}"]`, (e) => ({ left: e.style.left, top: e.style.top }));

  // Snapshot: text that is not JSON is refused before anything is sent.
  const snapshotRequests = [];
  tutor.on("request", (r) => { if (/\/snapshots?\//.test(r.url()) && r.method() === "POST") snapshotRequests.push(r.url()); });
  await tutor.fill("#snapshot-doc", "not json {");
  await tutor.click("#save-snapshot");
  await tutor.waitForSelector("#snapshot-error:not([hidden])");
  await tutor.waitForTimeout(300);
  const invalid = { message: await text(tutor, "#snapshot-error"), sent: snapshotRequests.length, soloStatus: await text(tutor, "#solo-status") };

  // Save, clobber the editor, restore.
  const doc = JSON.stringify({ shapes: [{ kind: "rect", w: 3, h: 4 }] });
  await tutor.fill("#snapshot-doc", doc);
  await tutor.click("#save-snapshot");
  await tutor.waitForFunction(() => document.querySelector("#solo-status").textContent.startsWith("saved revision 1"));
  const saved = await text(tutor, "#solo-status");
  const errorAfterFix = await tutor.$eval("#snapshot-error", (e) => e.hidden);
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

  // Hands and spotlight, then the pictures of both windows (README: the demo).
  await student.click("#raise-hand");
  await tutor.waitForSelector(`#hands li[data-user="${studentID}"]`);
  await student.click('#reaction-buttons button[data-emoji="👍"]');
  await tutor.click("#spotlight");
  await student.waitForFunction(() => document.querySelector("#tutoring-status").textContent.includes("has the spotlight"));
  await tutor.waitForFunction(() => document.querySelector("#tutoring-status").textContent.includes("has the spotlight"));
  await wiggle(student, 0.3, 0.55);
  await wiggle(tutor, 0.6, 0.35);
  await tutor.waitForTimeout(200);
  await tutor.screenshot({ path: `${shots}/demo-tutor.png` });
  await student.screenshot({ path: `${shots}/demo-student.png` });
  const tutorSees = { presence: await tutor.$$eval("#presence li", (l) => l.map((e) => e.dataset.user)), cursor: await dot(tutor, studentID) };
  const studentSees = { presence: await student.$$eval("#presence li", (l) => l.map((e) => e.dataset.user)), cursor: await dot(student, tutorID) };

  // Live lists on presence events: the tutor starts another session and moves there; the
  // student's window, not focused, lists it as soon as the tutor's leaving reaches it.
  const sessionsBefore = await count(student, "#sessions li");
  await tutor.click("#start-session");
  await tutor.waitForFunction(() => document.querySelectorAll("#sessions li").length === 2);
  await tutor.click("#connect");
  await student.waitForFunction(() => document.querySelectorAll("#presence li").length === 1);
  await student.waitForFunction(() => document.querySelectorAll("#sessions li").length === 2);
  const sessionsAfter = await count(student, "#sessions li");

  // Telemetry.
  await tutor.click("#send-event");
  await tutor.waitForFunction(() => document.querySelector("#telemetry-status").textContent.startsWith("accepted"));

  console.log(JSON.stringify({
    picker, studentSignedIn, tutorSignedIn: await text(tutor, "#me"), studentListsAtFirst, banner,
    tutorSees, studentSees,
    invalid, errorAfterFix, saved, restored, doc, history,
    liveSessions: { before: sessionsBefore, after: sessionsAfter },
    telemetry: await text(tutor, "#telemetry-status"),
    errors,
  }));
} catch (e) {
  console.error(String(e?.stack ?? e), "\npage errors:", errors);
  process.exitCode = 1;
} finally {
  await browser.close();
}
