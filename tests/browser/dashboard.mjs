// Drives the dashboard of a running graph in headless Chromium, as a user
// would: it must show every node, live numbers that change, pause and
// resume, the program preview. Prints one JSON object on stdout (what it
// saw) and exits 0, or prints {"error": ...} and exits 1.
//
//   node dashboard.mjs --url URL_WITH_TOKEN --screenshot OUT.png
//        [--snapshot OUT.jpg] [--browser /usr/bin/chromium]
//        [--only-screenshot [--settle SECONDS]]
//
// --only-screenshot waits for a filled page, leaves it open --settle
// seconds (default 5: the chart fills) and takes the screenshot without
// pressing anything (the README's picture).
//
// Every wait is for a condition, with a generous bound against a hang
// (never a measure): a loaded 2-core machine may be slow.

import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { chromium } from "playwright-core";

const WAIT_MS = 90_000;

const { values: args } = parseArgs({
  options: {
    url: { type: "string" },
    screenshot: { type: "string" },
    snapshot: { type: "string" },
    browser: { type: "string", default: "/usr/bin/chromium" },
    "only-screenshot": { type: "boolean", default: false },
    settle: { type: "string", default: "5" },
  },
});

/// Every node's figures in the table: {node: {stat: text}}, and the
/// media time shown.
async function readNumbers(page) {
  return page.evaluate(() => {
    const rows = [...document.querySelectorAll("#nodes tbody tr")];
    const nodes = Object.fromEntries(rows.map((r) => [r.dataset.node,
      Object.fromEntries([...r.querySelectorAll("[data-stat]")]
        .map((c) => [c.dataset.stat, c.textContent]))]));
    return { elapsed: document.getElementById("elapsed").dataset.value, nodes };
  });
}

/// Waits until the shown numbers differ from `before` (frames counted on).
async function numbersChange(page, before) {
  const seen = JSON.stringify(before.nodes);
  await page.waitForFunction((old) => {
    const rows = [...document.querySelectorAll("#nodes tbody tr")];
    const now = rows.map((r) => [r.dataset.node,
      Object.fromEntries([...r.querySelectorAll("[data-stat]")]
        .map((c) => [c.dataset.stat, c.textContent]))]);
    return JSON.stringify(Object.fromEntries(now)) !== old;
  }, seen, { timeout: WAIT_MS, polling: 250 });
  return readNumbers(page);
}

/// Presses `button` and waits until the shown recording state is `want`
/// and every sync node reports it.
async function pressAndWait(page, button, want) {
  await page.click(`#btn-${button}`);
  const selector = `#recording[data-state="${want}"][data-settled="true"]`;
  await page.waitForSelector(selector, { timeout: WAIT_MS });
  return { shown: await page.textContent("#recording"), buttons: await buttons(page) };
}

/// Which buttons are on: { start: true, stop: false, ... }.
async function buttons(page) {
  return page.$$eval("#controls button[data-action]",
    (els) => Object.fromEntries(els.map((b) => [b.dataset.action, !b.disabled])));
}

/// A snapshot fetched as the page fetches it: its type and bytes.
async function fetchSnapshot(page) {
  const got = await page.evaluate(async () => {
    const token = new URLSearchParams(location.search).get("token");
    const r = await fetch("/api/snapshot?width=320",
      { headers: { Authorization: `Bearer ${token}` } });
    const bytes = new Uint8Array(await r.arrayBuffer());
    return { status: r.status, type: r.headers.get("content-type"), bytes: [...bytes] };
  });
  if (args.snapshot) writeFileSync(args.snapshot, Buffer.from(got.bytes));
  return { status: got.status, type: got.type, bytes: got.bytes.length };
}

/// Waits for a page with numbers, a chart point and a preview picture.
async function waitFilled(page) {
  await page.waitForSelector('body[data-ready="true"]', { timeout: WAIT_MS });
  await page.waitForSelector('#connection[data-state="open"]', { timeout: WAIT_MS });
  await page.waitForFunction(() => {
    const img = document.getElementById("preview");
    return Number(img.dataset.frames) > 0 && img.naturalWidth > 0;
  }, null, { timeout: WAIT_MS, polling: 250 });
}

async function drive(page) {
  await waitFilled(page);
  const shown = await page.$$eval("#graph .node", (els) => els.map((e) => e.dataset.node));
  const rows = await page.$$eval("#nodes tbody tr", (els) => els.map((e) => e.dataset.node));
  const edges = await page.$$eval("#graph .edge", (els) => els.length);
  const first = await readNumbers(page);
  const second = await numbersChange(page, first);
  const paused = await pressAndWait(page, "pause", "paused");
  const resumed = await pressAndWait(page, "resume", "running");
  const controlMessage = await page.textContent("#control-message");
  const session = await page.$eval("#session", (e) => e.dataset.state);
  const snapshot = await fetchSnapshot(page);
  const preview = await page.$eval("#preview",
    (img) => ({ width: img.naturalWidth, frames: Number(img.dataset.frames) }));
  const avOffset = await page.$eval("#av-offset", (e) => e.dataset.value);
  const levels = await page.$$eval("#levels [data-level-node]",
    (els) => els.map((e) => ({ node: e.dataset.levelNode, peak: Number(e.dataset.peak) })));
  await page.screenshot({ path: args.screenshot, fullPage: true });
  return { shown, rows, edges, first, second, paused, resumed, controlMessage, session, snapshot,
    preview, avOffset, levels, screenshot: args.screenshot };
}

async function main() {
  if (!args.url || !args.screenshot) throw new Error("--url and --screenshot are needed");
  const browser = await chromium.launch({
    executablePath: args.browser,
    headless: true,
    // As root (CI, containers) Chromium refuses to start with its sandbox.
    args: ["--no-sandbox"],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const errors = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    let result;
    if (args["only-screenshot"]) {
      await page.goto(args.url);
      await waitFilled(page);
      await page.waitForSelector("#levels [data-level-node]", { timeout: WAIT_MS });
      // A picture, not a check: the chart fills while the page is open.
      await page.waitForTimeout(Number(args.settle) * 1000);
      await page.screenshot({ path: args.screenshot, fullPage: true });
      result = { screenshot: args.screenshot };
    } else {
      await page.goto(args.url);
      result = await drive(page);
    }
    result.pageErrors = errors;
    return result;
  } finally {
    await browser.close();
  }
}

main().then(
  (result) => { console.log(JSON.stringify(result)); },
  (e) => { console.log(JSON.stringify({ error: String(e.stack || e) })); process.exitCode = 1; },
);
