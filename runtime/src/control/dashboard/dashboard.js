// The dashboard of a running graph: reads the control API with the token
// of its own URL (/?token=T) and follows the event stream. No framework,
// no build step: the runtime serves this file as written.
"use strict";

const token = new URLSearchParams(location.search).get("token") || "";
const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";
// A minute of the A/V chart at the stream's two messages a second.
const HISTORY = 120;
const PREVIEW_EVERY_MS = 1000;

const view = { nodes: [], avHistory: [], ended: false };

/// A call to the API with the token; the parsed JSON or an Error with the
/// server's message and status.
async function api(method, path, body) {
  const init = { method, headers: { Authorization: `Bearer ${token}` } };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  const response = await fetch(path, init);
  const text = await response.text();
  let json = null;
  try { json = JSON.parse(text); } catch (_) { /* not JSON: said below */ }
  if (!response.ok) {
    const why = (json && json.error) || text || response.statusText;
    const err = new Error(`${response.status}: ${why}`);
    err.status = response.status;
    throw err;
  }
  return json;
}

function setText(el, text) {
  if (el && el.textContent !== text) el.textContent = text;
}

function fmt(value, digits = 1) {
  return typeof value === "number" && isFinite(value) ? value.toFixed(digits) : "–";
}

function fmtRate(bps) {
  if (typeof bps !== "number") return "–";
  return bps >= 1e6 ? `${(bps / 1e6).toFixed(2)} Mb/s` : `${(bps / 1e3).toFixed(0)} kb/s`;
}

// ---- the graph -------------------------------------------------------------

/// Each node's depth: the longest path to it from a source.
function depths(nodes) {
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const depth = new Map();
  const visit = (id, seen) => {
    if (depth.has(id)) return depth.get(id);
    if (seen.has(id) || !byId.has(id)) return 0;
    seen.add(id);
    const ups = byId.get(id).inputs.map((i) => visit(i.from.split("/")[0], seen) + 1);
    const d = Math.max(0, ...ups);
    depth.set(id, d);
    return d;
  };
  nodes.forEach((n) => visit(n.id, new Set()));
  return depth;
}

function svg(tag, attrs, parent) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (parent) parent.appendChild(el);
  return el;
}

/// Nodes in columns by depth, edges as lines from an output to an input.
function drawGraph(graph) {
  const box = { w: 150, h: 58, dx: 190, dy: 76, pad: 10 };
  const depth = depths(graph.nodes);
  const rows = new Map();
  const pos = new Map();
  for (const n of graph.nodes) {
    const d = depth.get(n.id) || 0;
    const row = rows.get(d) || 0;
    rows.set(d, row + 1);
    pos.set(n.id, { x: box.pad + d * box.dx, y: box.pad + row * box.dy });
  }
  const columns = Math.max(...depth.values(), 0) + 1;
  const height = Math.max(...rows.values(), 1) * box.dy + box.pad;
  const root = $("graph");
  root.replaceChildren();
  root.setAttribute("viewBox", `0 0 ${columns * box.dx + box.pad} ${height}`);
  for (const n of graph.nodes) {
    for (const input of n.inputs) {
      const from = pos.get(input.from.split("/")[0]);
      const to = pos.get(n.id);
      if (!from || !to) continue;
      const [x1, y1, x2, y2] = [from.x + box.w, from.y + box.h / 2, to.x, to.y + box.h / 2];
      const mid = (x1 + x2) / 2;
      svg("path", { class: "edge", "data-edge": `${input.from}->${n.id}/${input.name}`,
        d: `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}` }, root);
    }
  }
  for (const n of graph.nodes) drawNode(root, n, pos.get(n.id), box);
}

function drawNode(root, node, at, box) {
  const g = svg("g", { class: "node", "data-node": node.id,
    transform: `translate(${at.x},${at.y})` }, root);
  svg("rect", { width: box.w, height: box.h }, g);
  svg("text", { class: "name", x: 8, y: 17 }, g).textContent = node.id;
  svg("text", { class: "kind", x: 8, y: 32 }, g).textContent = node.kind;
  svg("text", { class: "live", x: 8, y: 48, "data-live": node.id }, g).textContent = "–";
}

/// A row of the nodes table per node, a cell per figure.
const STATS = ["fps", "queue", "dropped", "lost", "bitrate", "restarts", "frames_in",
  "frames_out", "cpu_seconds", "flag"];

function buildTable(graph) {
  const body = $("nodes").tBodies[0];
  body.replaceChildren();
  for (const n of graph.nodes) {
    const row = body.insertRow();
    row.dataset.node = n.id;
    row.insertCell().textContent = n.id;
    row.insertCell().textContent = n.kind;
    for (const stat of STATS) row.insertCell().dataset.stat = stat;
  }
}

// ---- live numbers ----------------------------------------------------------

function nodeCells(id, figures) {
  const queue = figures.queue_capacity ? `${figures.queue_depth}/${figures.queue_capacity}` : "–";
  return {
    fps: fmt(figures.fps), queue, dropped: String(figures.dropped ?? "–"),
    lost: String(figures.lost ?? "–"), bitrate: fmtRate(figures.bitrate_bps),
    restarts: String(figures.restarts ?? "–"), frames_in: String(figures.frames_in ?? "–"),
    frames_out: String(figures.frames_out ?? "–"), cpu_seconds: fmt(figures.cpu_seconds),
    flag: figures.flag || "",
  };
}

function showStats(stats) {
  const elapsed = $("elapsed");
  elapsed.dataset.value = stats.elapsed_s;
  setText(elapsed, `${fmt(stats.elapsed_s)} s`);
  showPhase(stats.phase);
  for (const [id, figures] of Object.entries(stats.nodes || {})) {
    const row = document.querySelector(`#nodes tr[data-node="${CSS.escape(id)}"]`);
    const cells = nodeCells(id, figures);
    if (row) for (const [stat, text] of Object.entries(cells)) {
      setText(row.querySelector(`[data-stat="${stat}"]`), text);
    }
    const live = document.querySelector(`#graph [data-live="${CSS.escape(id)}"]`);
    const rate = figures.bitrate_bps ? ` · ${fmtRate(figures.bitrate_bps)}` : "";
    setText(live, `${fmt(figures.fps)} fps${rate}`);
    const g = document.querySelector(`#graph .node[data-node="${CSS.escape(id)}"]`);
    if (g) g.classList.toggle("flagged", Boolean(figures.flag));
  }
  trackSync(stats.nodes || {});
  showLevels(stats.nodes || {});
}

/// The A/V offset and drift of the node that publishes them (sync).
function trackSync(nodes) {
  const sync = Object.values(nodes).find((n) => typeof n.av_offset_ms === "number"
    || (n.metrics && typeof n.metrics.av_offset_ms === "number"));
  if (!sync) return;
  const m = sync.metrics || {};
  const offset = sync.av_offset_ms ?? m.av_offset_ms;
  const drift = sync.drift_ppm ?? m.drift_ppm;
  $("av-offset").dataset.value = offset;
  setText($("av-offset"), `${fmt(offset)} ms`);
  $("drift").dataset.value = drift ?? "";
  setText($("drift"), `${fmt(drift)} ppm`);
  view.avHistory.push({ offset, drift });
  if (view.avHistory.length > HISTORY) view.avHistory.shift();
  drawChart();
}

function drawSeries(ctx, values, scale, color, mid) {
  ctx.strokeStyle = color;
  ctx.beginPath();
  values.forEach((v, i) => {
    const x = (i / (HISTORY - 1)) * ctx.canvas.width;
    const y = mid - (typeof v === "number" ? v : 0) * scale;
    if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
  });
  ctx.stroke();
}

/// Offset (ms, blue) and drift (ppm, amber) over the last minute, each on
/// a scale that fits its largest value.
function drawChart() {
  const canvas = $("av-chart");
  const ctx = canvas.getContext("2d");
  const mid = canvas.height / 2;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.strokeStyle = "#3a414d";
  ctx.beginPath(); ctx.moveTo(0, mid); ctx.lineTo(canvas.width, mid); ctx.stroke();
  const offsets = view.avHistory.map((p) => p.offset);
  const drifts = view.avHistory.map((p) => p.drift);
  const span = (vs, floor) => Math.max(floor, ...vs.filter((v) => typeof v === "number").map(Math.abs));
  const [oSpan, dSpan] = [span(offsets, 10), span(drifts, 10)];
  drawSeries(ctx, offsets, (mid - 8) / oSpan, "#5aa2ff", mid);
  drawSeries(ctx, drifts, (mid - 8) / dSpan, "#e0a43a", mid);
  ctx.fillStyle = "#8a93a3";
  ctx.font = "11px sans-serif";
  ctx.fillText(`offset ±${oSpan.toFixed(0)} ms`, 6, 12);
  ctx.fillText(`drift ±${dSpan.toFixed(0)} ppm`, 6, canvas.height - 4);
}

/// A meter per node that publishes a level (peak and RMS, dBFS).
function showLevels(nodes) {
  const floor = -60;
  const pct = (db) => `${Math.max(0, Math.min(100, ((db - floor) / -floor) * 100))}%`;
  for (const [id, n] of Object.entries(nodes)) {
    const m = n.metrics || {};
    if (typeof m.level_peak_dbfs !== "number") continue;
    $("no-levels")?.remove();
    let row = document.querySelector(`#levels [data-level-node="${CSS.escape(id)}"]`);
    if (!row) row = levelRow(id);
    row.dataset.peak = m.level_peak_dbfs;
    row.dataset.rms = m.level_rms_dbfs ?? "";
    row.querySelector(".rms").style.width = pct(m.level_rms_dbfs ?? floor);
    row.querySelector(".peak").style.left = pct(m.level_peak_dbfs);
    setText(row.querySelector(".figures"),
      `peak ${fmt(m.level_peak_dbfs)} · rms ${fmt(m.level_rms_dbfs)} dBFS`);
  }
}

function levelRow(id) {
  const row = document.createElement("div");
  row.className = "level";
  row.dataset.levelNode = id;
  row.innerHTML = '<span class="who"></span><div class="meter"><div class="rms"></div>'
    + '<div class="peak"></div></div><span class="figures"></span>';
  row.querySelector(".who").textContent = id;
  $("levels").appendChild(row);
  return row;
}

// ---- state -----------------------------------------------------------------

function showPhase(phase) {
  if (!phase) return;
  $("phase").dataset.state = phase;
  setText($("phase"), phase);
}

/// The run's state; fields a server does not send are left as they were.
function showState(state) {
  showPhase(state.phase);
  if (state.recording) {
    const reported = Object.values(state.sync || {}).map((s) => s.reported);
    const settling = reported.some((r) => r && r !== state.recording);
    $("recording").dataset.state = state.recording;
    $("recording").dataset.settled = String(!settling);
    setText($("recording"), `recording: ${state.recording}${settling ? " (settling…)" : ""}`);
  }
  if (state.session && typeof state.session === "object") {
    const s = state.session;
    const muxes = Object.values(s.mux || {});
    const sum = (key) => muxes.reduce((n, m) => n + (m[key] || 0), 0);
    $("session").dataset.state = s.state || "";
    $("session").dataset.files = String(sum("files"));
    $("session").dataset.chapters = String(sum("chapters"));
    setText($("session"),
      `session: ${s.state || "?"} · ${sum("files")} file(s) · ${sum("chapters")} chapter(s)`);
  }
  enableButtons(state);
}

/// Each button is on only where the server would take its command: start
/// when not recording; stop, split and chapter while recording; pause and
/// resume by the recording state; none once the run ends.
function enableButtons(state) {
  const ending = state.stop_requested || ["stopping", "finished"].includes(state.phase);
  const session = state.session ? state.session.state : "recording";
  const recording = session === "recording" || session === "mixed";
  const on = {
    start: session === "stopped" || session === "mixed",
    stop: recording,
    split: recording,
    chapter: recording,
    pause: state.recording !== "paused",
    resume: state.recording !== "running",
  };
  for (const [action, enabled] of Object.entries(on)) {
    const button = $(`btn-${action}`);
    if (button) button.disabled = ending || !enabled;
  }
}

function showEvent(message) {
  const li = document.createElement("li");
  const { type, ...fields } = message;
  li.textContent = `${new Date().toLocaleTimeString()} ${JSON.stringify(fields)}`;
  $("events").prepend(li);
  while ($("events").children.length > 50) $("events").lastChild.remove();
}

// ---- controls --------------------------------------------------------------

function say(text, state) {
  const el = $("control-message");
  el.dataset.state = state;
  setText(el, text);
}

/// A button's endpoint: the answer's state is shown; a refusal (404 on a
/// server without that endpoint, 409 in the wrong state) is said inline.
async function press(action) {
  let body;
  if (action === "chapter") {
    const title = $("chapter-title").value.trim();
    body = title ? { title } : {};
  }
  try {
    const answer = await api("POST", `/api/${action}`, body);
    say(`${action}: done`, "ok");
    // Pause and resume answer the state; session commands {command, at_ns, state}.
    const state = answer && answer.state && typeof answer.state === "object" ? answer.state : answer;
    if (state && typeof state === "object" && state.phase) showState(state);
  } catch (e) {
    say(`${action}: ${e.message}`, "error");
  }
}

// ---- preview ---------------------------------------------------------------

/// Fetches the program feed's latest frame about once a second, one
/// request at a time.
async function refreshPreview() {
  if (view.ended) return;
  const img = $("preview");
  try {
    const response = await fetch(`/api/snapshot?width=480`,
      { headers: { Authorization: `Bearer ${token}` }, cache: "no-store" });
    if (!response.ok) {
      const err = new Error(`${response.status}: ${(await response.json()).error}`);
      err.status = response.status;
      throw err;
    }
    const url = URL.createObjectURL(await response.blob());
    const old = img.src;
    img.src = url;
    if (old.startsWith("blob:")) URL.revokeObjectURL(old);
    img.dataset.frames = Number(img.dataset.frames) + 1;
    setText($("preview-status"), "");
  } catch (e) {
    // A paused sync sends nothing: its feed has no new frame to show.
    const paused = e.status === 504 && $("recording").dataset.state === "paused";
    setText($("preview-status"), paused
      ? "paused: the program feed sends nothing; its last frame is shown"
      : `preview: ${e.message}`);
  }
  setTimeout(refreshPreview, PREVIEW_EVERY_MS);
}

// ---- the event stream ------------------------------------------------------

function connect() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const url = `${scheme}//${location.host}/api/events?token=${encodeURIComponent(token)}`;
  const ws = new WebSocket(url);
  const status = $("connection");
  ws.onopen = () => { status.dataset.state = "open"; setText(status, "live"); };
  ws.onmessage = (m) => onMessage(JSON.parse(m.data));
  ws.onclose = () => {
    status.dataset.state = "closed";
    setText(status, view.ended ? "run ended" : "disconnected; retrying…");
    if (!view.ended) setTimeout(connect, 2000);
  };
}

function onMessage(message) {
  switch (message.type) {
    case "stats": showStats(message); break;
    case "state": showState(message); break;
    case "event": showEvent(message); break;
    case "end":
      view.ended = true;
      showPhase("finished");
      showEvent(message);
      break;
    default: break;
  }
}

async function start() {
  document.querySelectorAll("#controls button").forEach((b) => {
    b.addEventListener("click", () => press(b.dataset.action));
  });
  try {
    const graph = await api("GET", "/api/graph");
    view.nodes = graph.nodes;
    setText($("graph-name"), graph.name);
    document.title = `${graph.name} · dashboard`;
    drawGraph(graph);
    buildTable(graph);
    showState(await api("GET", "/api/state"));
    showStats(await api("GET", "/api/stats"));
  } catch (e) {
    say(`loading: ${e.message}`, "error");
  }
  document.body.dataset.ready = "true";
  connect();
  refreshPreview();
}

start();
