// Plays an HLS playlist with hls.js in headless Chromium, muted, as a
// viewer's browser would, and prints one JSON object on stdout: whether it
// reached the end, the media's duration and the time played to, the
// decoded and dropped video frames, and every hls.js error. Exits 0 when
// it could report (whatever it saw: the test judges), or prints
// {"error": ...} and exits 1.
//
//   node hls-play.mjs --url http://HOST:PORT/DIR/PLAYLIST.m3u8
//        [--browser /usr/bin/chromium] [--live-seconds S] [--stall-seconds S]
//
// The page and hls.js are answered by the script itself under the
// playlist's origin (/.hls-play/), so the player and the media are
// same-origin and nothing is written into the served directory.
//
// It waits for the end: the `ended` event, or the time played within 0.5 s
// of the duration once the playlist has ended (ENDLIST). A live playlist
// (no ENDLIST) is played until --live-seconds of media have played when
// given, else until it ends. It gives up (and reports) after a fatal
// hls.js error or when playback has not moved for --stall-seconds
// (default 20): bounds against a hang, not measures.

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { parseArgs } from "node:util";
import { chromium } from "playwright-core";

const { values: args } = parseArgs({
  options: {
    url: { type: "string" },
    browser: { type: "string", default: "/usr/bin/chromium" },
    "live-seconds": { type: "string" },
    "stall-seconds": { type: "string", default: "20" },
  },
});

const HLS_JS = readFileSync(createRequire(import.meta.url).resolve("hls.js/dist/hls.min.js"));

// The player: state the script polls is kept on window.player.
const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><script src="hls.min.js"></script></head>
<body><video id="v" muted playsinline autoplay></video><script>
const video = document.getElementById("v");
const player = window.player = { errors: [], ended: false, live: null, endList: false,
  fragments: 0, version: Hls.version, supported: Hls.isSupported() };
video.addEventListener("ended", () => { player.ended = true; });
const hls = new Hls();
hls.on(Hls.Events.ERROR, (_, d) => player.errors.push({ type: d.type, details: d.details,
  fatal: d.fatal, reason: String(d.reason || d.error || "") }));
hls.on(Hls.Events.LEVEL_LOADED, (_, d) => { player.live = d.details.live;
  player.endList = !d.details.live; });
hls.on(Hls.Events.FRAG_BUFFERED, () => { player.fragments += 1; });
hls.on(Hls.Events.MANIFEST_PARSED, () => video.play().catch((e) =>
  player.errors.push({ type: "play", details: String(e), fatal: true })));
hls.loadSource(new URLSearchParams(location.search).get("src"));
hls.attachMedia(video);
</script></body></html>`;

/// What the page shows now.
async function state(page) {
  return page.evaluate(() => {
    const v = document.getElementById("v");
    const q = v.getVideoPlaybackQuality();
    return { ...window.player, duration: v.duration, currentTime: v.currentTime,
      totalVideoFrames: q.totalVideoFrames, droppedVideoFrames: q.droppedVideoFrames,
      videoWidth: v.videoWidth, videoHeight: v.videoHeight, paused: v.paused };
  });
}

/// Whether playback reached the end of an ended playlist (within 0.5 s).
function nearEnd(s) {
  return s.endList && Number.isFinite(s.duration) && s.duration > 0
    && s.currentTime >= s.duration - 0.5;
}

/// Whether playback is over: ended, enough of a live playlist, or a
/// fatal error.
function finished(s, startedAt, liveSeconds) {
  const liveEnough = s.live && liveSeconds !== undefined
    && s.currentTime - startedAt >= liveSeconds;
  return s.ended || liveEnough || s.errors.some((e) => e.fatal);
}

/// Polls the page until playback is over or stalled; the last state.
/// Playback that stops within 0.5 s of the end without `ended` (the last
/// buffered range a little short of the duration) is over after 1 s.
async function watch(page) {
  const liveSeconds = args["live-seconds"] === undefined ? undefined : Number(args["live-seconds"]);
  const stallMs = Number(args["stall-seconds"]) * 1000;
  let s = await state(page);
  let startedAt = null;
  let [lastTime, movedAt] = [s.currentTime, Date.now()];
  while (true) {
    if (startedAt === null && s.currentTime > 0) startedAt = s.currentTime;
    if (finished(s, startedAt ?? 0, liveSeconds)) return { ...s, stalled: false };
    if (s.currentTime !== lastTime) [lastTime, movedAt] = [s.currentTime, Date.now()];
    const still = Date.now() - movedAt;
    if (nearEnd(s) && still > 1000) return { ...s, stalled: false };
    if (still > stallMs) return { ...s, stalled: true };
    await page.waitForTimeout(250);
    s = await state(page);
  }
}

async function main() {
  if (!args.url) throw new Error("--url is needed");
  const origin = new URL(args.url).origin;
  const browser = await chromium.launch({
    executablePath: args.browser,
    headless: true,
    // As root (CI, containers) Chromium refuses to start with its sandbox.
    args: ["--no-sandbox", "--autoplay-policy=no-user-gesture-required"],
  });
  try {
    const page = await browser.newPage();
    const pageErrors = [];
    page.on("pageerror", (e) => pageErrors.push(String(e)));
    await page.route(`${origin}/.hls-play/**`, (route) => {
      const js = route.request().url().endsWith("/hls.min.js");
      route.fulfill({ contentType: js ? "text/javascript" : "text/html", body: js ? HLS_JS : PAGE });
    });
    await page.goto(`${origin}/.hls-play/index.html?src=${encodeURIComponent(args.url)}`);
    const s = await watch(page);
    const reachedEnd = s.ended || nearEnd(s);
    return { ...s, reachedEnd, pageErrors };
  } finally {
    await browser.close();
  }
}

main().then(
  (result) => { console.log(JSON.stringify(result)); },
  (e) => { console.log(JSON.stringify({ error: String(e.stack || e) })); process.exitCode = 1; },
);
