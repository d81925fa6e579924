// Walks the demo page's presence and tutoring sections in headless Chromium as a tutor and a
// student in two windows: each sees the other's cursor in the colour and under the name of
// the other's presence state (both sign in by pasting a token: this service runs without
// DEV_TOKENS, so the page offers no picker); the tutor's fourth creation within the minute is
// refused 429 and the banner says when to retry; the student's network drops and returns without either window
// losing the other user for a moment (no flicker); the student raises a hand and reacts, the tutor sees both; a
// student's spotlight is refused with an error; the tutor turns the spotlight on and scrolls
// the board, and the student's board follows; the tutor clears the hands queue. Prints one
// JSON line with what it saw.
// usage: node tutoring.mjs <chromium> <demo-url> <tutor-token> <student-user-id> <student-token>
import { chromium } from "playwright-core";

const [executablePath, demoURL, tutorToken, studentID, studentToken] = process.argv.slice(2);
const browser = await chromium.launch({ executablePath, headless: true, args: ["--no-sandbox"] });
const timeout = 15000;
const errors = [];
const picker = [];
try {
  const open = async (tok) => {
    const ctx = await browser.newContext({ viewport: { width: 1100, height: 1200 } });
    const p = await ctx.newPage();
    p.setDefaultTimeout(timeout);
    p.on("pageerror", (e) => errors.push(String(e)));
    // Answers that are errors on purpose, which Chromium logs as such: the dev sign-in probe's
    // 404 (no DEV_TOKENS here) and the refused creation's 429.
    const expected = /status of (404 \(Not Found\)|429 \(Too Many Requests\))/;
    p.on("console", (m) => { if (m.type() === "error" && !expected.test(m.text())) errors.push(m.text()); });
    await p.goto(demoURL);
    await p.waitForSelector("body[data-ready=true]");
    picker.push({ devOff: await p.$eval("#dev-off", (e) => !e.hidden), users: await p.$$eval(".user-pick", (l) => l.length) });
    await p.fill("#token", tok);
    await p.click("#use-token");
    await p.waitForFunction(() => document.querySelector("#me").textContent.startsWith("signed in as"));
    return p;
  };
  const text = (p, sel) => p.$eval(sel, (e) => e.textContent);
  const connected = () => document.querySelector("#ws-status").textContent.startsWith("connected");

  const tutor = await open(tutorToken);
  await tutor.fill("#new-classroom", "Tutoring demo");
  await tutor.click("#create-classroom");
  await tutor.waitForSelector("#classrooms li.selected");
  await tutor.fill("#member", studentID);
  await tutor.click("#add-member");
  await tutor.waitForSelector(`#roster li[data-user="${studentID}"]`);
  await tutor.click("#start-session");
  await tutor.waitForSelector("#sessions li.selected");
  // A fourth creation within the minute (API_WRITE_RATE_PER_MIN=3): 429 with Retry-After.
  await tutor.click("#start-session");
  await tutor.waitForSelector("#banner:not([hidden])");
  const rateLimited = await tutor.$eval("#banner", (b) => ({
    status: b.dataset.status, code: b.dataset.code, retryAfter: b.querySelector(".banner-retry-after").textContent,
    retryButton: !document.querySelector("#banner-retry").hidden,
  }));
  await tutor.click("#banner-close");
  const sessionsAfter429 = await tutor.$$eval("#sessions li", (l) => l.length);
  await tutor.fill("#my-color", "#c2255c");
  await tutor.click("#connect");
  await tutor.waitForFunction(connected);
  const tutorID = (await text(tutor, "#me")).split(" ")[3];

  const student = await open(studentToken);
  await student.waitForSelector("#sessions li.selected");
  await student.fill("#my-color", "#2f9e44");
  await student.click("#connect");
  await student.waitForFunction(connected);

  // Coloured, named cursors from the presence state.
  const wiggle = async (p) => {
    const box = await (await p.$("#board")).boundingBox();
    for (let i = 0; i < 5; i++) {
      await p.mouse.move(box.x + 100 + i * 7, box.y + 80 + i * 3);
      await p.waitForTimeout(60);
    }
  };
  const cursorOf = (p, id) => p.waitForFunction((id) => {
    const d = document.querySelector(`#board .cursor[data-user="${id}"]`);
    return d && d.style.getPropertyValue("--c") && { colour: d.style.getPropertyValue("--c"), label: d.textContent };
  }, id).then((h) => h.jsonValue());
  await wiggle(student);
  await wiggle(tutor);
  await tutor.waitForFunction((id) => document.querySelector(`#board .cursor[data-user="${id}"]`)?.style.getPropertyValue("--c") === "#2f9e44", studentID);
  await student.waitForFunction((id) => document.querySelector(`#board .cursor[data-user="${id}"]`)?.style.getPropertyValue("--c") === "#c2255c", tutorID);
  const tutorSeesCursor = await cursorOf(tutor, studentID);
  const studentSeesCursor = await cursorOf(student, tutorID);

  // No flicker: the student's network drops and comes back within the leave grace; neither
  // window ever loses the other user from its list or board meanwhile.
  const watch = (p, id) => p.evaluate((id) => {
    window.flicker = 0;
    const check = () => {
      if (!document.querySelector(`#presence li[data-user="${id}"]`) || !document.querySelector(`#board .cursor[data-user="${id}"]`)) window.flicker++;
    };
    check();
    new MutationObserver(check).observe(document.body, { subtree: true, childList: true });
  }, id);
  await watch(tutor, studentID);
  await watch(student, tutorID);
  await student.context().setOffline(true);
  await student.waitForFunction(() => document.querySelector("#ws-status").textContent.startsWith("closed"));
  const whileOffline = await text(student, "#ws-status");
  await student.waitForTimeout(700);
  await student.context().setOffline(false);
  await student.waitForFunction(connected);
  await wiggle(student); // still drawn, and moving, on the tutor's board
  await tutor.waitForTimeout(300);
  const flicker = { tutor: await tutor.evaluate(() => window.flicker), student: await student.evaluate(() => window.flicker), whileOffline };

  // Hands and reactions.
  await student.click("#raise-hand");
  await tutor.waitForSelector(`#hands li[data-user="${studentID}"]`);
  const tutorSeesHands = await tutor.$$eval("#hands li", (l) => l.map((e) => e.dataset.user));
  await student.click('#reaction-buttons button[data-emoji="👏"]');
  await tutor.waitForSelector(`#reaction-bubbles .bubble[data-emoji="👏"][data-user="${studentID}"]`);

  // A student's spotlight is refused (error frame, connection kept).
  await student.click("#spotlight");
  await student.waitForFunction(() => document.querySelector("#tutoring-status").textContent.includes("forbidden"));
  const studentRefused = await text(student, "#tutoring-status");
  const studentSpotlightChecked = await student.$eval("#spotlight", (e) => e.checked);

  // Spotlight: the tutor's scrolling moves the student's board.
  await tutor.click("#spotlight");
  await student.waitForFunction(() => document.querySelector("#tutoring-status").textContent.includes("has the spotlight"));
  await tutor.$eval("#board", (b) => b.scrollTo({ left: 600, top: 300 }));
  await student.waitForFunction(() => {
    const b = document.querySelector("#board");
    return b.scrollLeft === 600 && b.scrollTop === 300;
  });
  const studentBoard = await student.$eval("#board", (b) => ({ left: b.scrollLeft, top: b.scrollTop, followed: b.dataset.followed }));

  // The tutor clears the hands queue.
  await tutor.click("#clear-hands");
  await student.waitForFunction(() => document.querySelectorAll("#hands li").length === 0);
  await tutor.waitForFunction(() => document.querySelectorAll("#hands li").length === 0);

  console.log(JSON.stringify({
    picker, rateLimited, sessionsAfter429, tutorID, tutorSeesCursor, studentSeesCursor, flicker, tutorSeesHands, studentRefused, studentSpotlightChecked, studentBoard,
    studentHandsAfterClear: await student.$$eval("#hands li", (l) => l.length),
    errors,
  }));
} catch (e) {
  console.error(String(e?.stack ?? e), "\npage errors:", errors);
  process.exitCode = 1;
} finally {
  await browser.close();
}
