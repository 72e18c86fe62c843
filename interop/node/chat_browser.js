// Drives the chat example's page in headless Chromium with two visitors:
// both join, each sees the other's join notice and message, one leaves,
// and the other sees the leave notice.  A screenshot of the page that stays
// is saved.  Usage:
//
//   node chat_browser.js <chromium binary> <page URL> <screenshot path>
//
// It prints one JSON line, {"ok": true, "names": [...], "steps": [...]} or
// {"ok": false, "step": ..., "error": ...}, and exits with 0 or 1.
"use strict";

const { chromium } = require("playwright-core");

const [executablePath, pageURL, screenshotPath] = process.argv.slice(2);
const stepTimeout = 10000;
const steps = [];
let current = "launch";

function step(name) {
  current = name;
  steps.push(name);
}

// message waits for a message of the given kind ("own", "other" or
// "notice") whose text is exactly text.
async function message(page, kind, text) {
  await page.locator(`#messages .msg.${kind} .text`, { hasText: text })
    .filter({ hasText: new RegExp("^" + text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&") + "$") })
    .first()
    .waitFor({ timeout: stepTimeout });
}

async function joinAs(browser) {
  const context = await browser.newContext({ viewport: { width: 900, height: 640 } });
  const page = await context.newPage();
  await page.goto(pageURL, { timeout: stepTimeout });
  await page.locator("#status.online").waitFor({ timeout: stepTimeout });
  const name = await page.locator("#name").textContent();
  await message(page, "notice", `"${name}" has joined this chat`);
  return { context, page, name };
}

async function say(visitor, text) {
  await visitor.page.fill("#text", text);
  await visitor.page.press("#text", "Enter");
}

async function main() {
  const browser = await chromium.launch({
    executablePath,
    headless: true,
    timeout: 30000,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  try {
    step("first visitor joins");
    const ann = await joinAs(browser);
    step("second visitor joins");
    const bob = await joinAs(browser);
    if (ann.name === bob.name) throw new Error("both visitors got the name " + ann.name);

    step("the first sees the second's join notice");
    await message(ann.page, "notice", `"${bob.name}" has joined this chat`);

    step("the first writes; both see it, as own and as other");
    await say(ann, "Hello from " + ann.name);
    await message(ann.page, "own", "Hello from " + ann.name);
    await message(bob.page, "other", "Hello from " + ann.name);

    step("the second writes; both see it");
    await say(bob, "Hi " + ann.name + ", this is " + bob.name + ", schöne Grüße");
    await message(bob.page, "own", "Hi " + ann.name + ", this is " + bob.name + ", schöne Grüße");
    await message(ann.page, "other", "Hi " + ann.name + ", this is " + bob.name + ", schöne Grüße");

    step("the second asks for the names");
    await say(bob, "/names");
    const names = [ann.name, bob.name].sort().join(", ");
    await message(bob.page, "notice", "members: " + names);

    step("the second leaves; the first sees the leave notice");
    await bob.context.close();
    await message(ann.page, "notice", `"${bob.name}" has left this chat`);

    step("screenshot");
    await ann.page.screenshot({ path: screenshotPath });
    console.log(JSON.stringify({ ok: true, names: [ann.name, bob.name], steps }));
  } finally {
    await browser.close();
  }
}

main().catch((err) => {
  console.log(JSON.stringify({ ok: false, step: current, error: String(err && err.stack || err), steps }));
  process.exit(1);
});
