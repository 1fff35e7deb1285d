//! The live control API end to end: a live graph of clapper test sources
//! run with `runtime run --control`, driven as its clients would drive it:
//! HTTP (its own client here, not the runtime's), the WebSocket, and
//! `runtime ctl`. The recording is paused over HTTP, resumed with `runtime
//! ctl`, stopped over HTTP; the file is then checked on its content: it
//! decodes cleanly, holds what sync took in less what sync says it cut, and
//! its claps stay in sync across the cut.
//!
//! Nothing is asserted on wall time: the test waits for what the graph says
//! (its state, sync's log) and checks counters and content. Its sleeps
//! only leave claps before and after the pause.

use std::path::Path;
use std::process::Command;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use graph_tests::claps::{claps, describe, Clap};
use graph_tests::control_api::{wait_for_log, wait_until, Api, HANG_GUARD};
use graph_tests::live::{clapper_recording, LiveRun, RECORDING_NODES as NODES};
use graph_tests::media::{decode_errors, probe, require_ffmpeg};
use graph_tests::sync_log::{cut_at, cut_in_log};
use graph_tests::{runtime_bin, Scratch};
use runtime::run::RunReport;
use serde_json::{json, Value};

const FPS: f64 = 30.0;

/// The recording chain at 160×120 from live clapper test sources.
fn graph() -> String {
    clapper_recording("")
}

/// `runtime ctl --run-dir DIR ARGS`: its exit code and stdout's JSON.
fn ctl(run_dir: &Path, args: &[&str]) -> (i32, Value) {
    let out = Command::new(runtime_bin())
        .arg("ctl")
        .arg("--run-dir")
        .arg(run_dir)
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json = serde_json::from_str(&stdout).unwrap_or_else(|_| {
        panic!(
            "ctl {args:?}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), json)
}

/// Reads the WebSocket on a thread of its own, as a client does, until
/// the server closes it: every message.
fn follow_events(api: &Api) -> JoinHandle<Vec<Value>> {
    let url = format!(
        "{}/api/events?token={}",
        api.url.replace("http:", "ws:"),
        api.token
    );
    std::thread::spawn(move || {
        let (mut ws, _) = tungstenite::connect(url).expect("WebSocket");
        if let tungstenite::stream::MaybeTlsStream::Plain(tcp) = ws.get_mut() {
            tcp.set_read_timeout(Some(HANG_GUARD)).unwrap();
        }
        let mut messages = Vec::new();
        while let Ok(message) = ws.read() {
            if let tungstenite::Message::Text(text) = message {
                messages.push(serde_json::from_str(text.as_str()).unwrap());
            }
        }
        messages
    })
}

/// No token, or a wrong one: 401, whatever the path.
fn assert_token_required(api: &Api) {
    for path in ["/api/state", "/api/stats", "/api/graph"] {
        let (status, body) = api.call("GET", path, None, None);
        assert_eq!(status, 401, "{path} without a token: {body}");
        let (status, body) = api.call("GET", path, Some(&"0".repeat(64)), None);
        assert_eq!(status, 401, "{path} with a wrong token: {body}");
    }
    let (status, _) = api.call("POST", "/api/shutdown", None, None);
    assert_eq!(status, 401);
}

/// The graph's nodes, kinds and live params.
fn assert_graph(api: &Api) {
    let graph = api.get("/api/graph");
    let nodes = graph["nodes"].as_array().unwrap();
    let ids: Vec<&str> = nodes.iter().map(|n| n["id"].as_str().unwrap()).collect();
    assert_eq!(ids, NODES);
    let sync = &nodes[4];
    assert_eq!(sync["kind"], "sync");
    assert!(sync["live_params"]
        .as_array()
        .unwrap()
        .contains(&json!("paused")));
    assert_eq!(nodes[0]["params"]["pattern"], "clapper");
    assert_eq!(nodes[7]["inputs"][0]["from"], "video-encode/video");
}

/// Waits for the run, then for every node to report a rate above 0.
fn wait_for_frames(api: &Api) {
    let state = wait_until(
        "running",
        || api.get("/api/state"),
        |s| s["phase"] == "running",
    );
    assert_eq!(state["recording"], "running");
    let stats = wait_until(
        "every node with frames per second",
        || api.get("/api/stats"),
        |s| {
            NODES
                .iter()
                .all(|n| s["nodes"][n]["fps"].as_f64() > Some(0.0))
        },
    );
    for node in NODES {
        let n = &stats["nodes"][node];
        assert_eq!(n["lost"], 0, "{node}: {n}");
        assert_eq!(n["restarts"], 0, "{node}: {n}");
        assert!(
            n["queue_depth"].is_u64() && n["dropped"].is_u64(),
            "{node}: {n}"
        );
    }
    assert!(stats["nodes"]["sync"]["av_offset_ms"].is_f64(), "{stats}");
}

/// Sync's state as the API reports it is `recording`.
fn sync_reports(recording: &'static str) -> impl Fn(&Value) -> bool {
    move |state| state["sync"]["sync"]["reported"] == recording
}

/// Pauses over HTTP for about 1.5 s (twice: the second is refused), and
/// resumes with `runtime ctl`; each time waits until sync reports it.
fn pause_and_resume(s: &Scratch, api: &Api) {
    let sync_log = s.path("run/logs/sync.log");
    wait_for_log(&sync_log, "common start fixed");
    std::thread::sleep(Duration::from_millis(1500)); // claps before the pause
    let paused_at = Instant::now();
    let (status, state) = api.post("/api/pause", None);
    assert_eq!(status, 200, "{state}");
    assert_eq!(state["recording"], "paused");
    let (status, again) = api.post("/api/pause", None);
    assert_eq!(status, 409, "{again}");
    assert_eq!(again["error"], "already paused");
    assert_eq!(again["state"]["recording"], "paused");
    wait_for_log(&sync_log, "paused at");
    wait_until(
        "sync paused",
        || api.get("/api/state"),
        sync_reports("paused"),
    );
    let pause = Duration::from_millis(1500);
    std::thread::sleep(pause.saturating_sub(paused_at.elapsed()));
    let (code, state) = ctl(&s.path("run"), &["resume"]);
    assert_eq!(code, 0, "{state}");
    assert_eq!(state["recording"], "running");
    wait_for_log(&sync_log, "resumed: ");
    wait_until(
        "sync recording again",
        || api.get("/api/state"),
        sync_reports("running"),
    );
}

/// Param updates the schema refuses: 400 naming `node.param`, through the
/// API and through `runtime ctl` (exit 1).
fn assert_params_refused(s: &Scratch, api: &Api) {
    let cases = [
        (
            "sync",
            "pause",
            json!(true),
            "sync.pause: sync has no param `pause`",
        ),
        (
            "video-encode",
            "quality",
            json!("high"),
            "video-encode.quality: `quality` cannot change while running",
        ),
        ("sync", "buffer_ms", json!("long"), "sync.buffer_ms: "),
    ];
    for (node, name, value, expected) in cases {
        let body = json!({ "node": node, "name": name, "value": value });
        let (status, answer) = api.post("/api/params", Some(body));
        assert_eq!(status, 400, "{answer}");
        let error = answer["error"].as_str().unwrap();
        assert!(error.starts_with(expected), "{error}");
    }
    let (status, answer) = api.call("POST", "/api/params", Some(&api.token), None);
    assert_eq!(status, 400);
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .starts_with("malformed JSON"),
        "{answer}"
    );
    let (code, answer) = ctl(&s.path("run"), &["param", "mux", "path", "x.mp4"]);
    assert_eq!(code, 1, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().starts_with("mux.path: "),
        "{answer}"
    );
}

/// Stops over HTTP; a second stop is refused.
fn stop(api: &Api) {
    let (status, state) = api.post("/api/shutdown", None);
    assert_eq!(status, 200, "{state}");
    assert_eq!(state["stop_requested"], true);
    let (status, again) = api.post("/api/shutdown", None);
    assert_eq!(status, 409, "{again}");
    assert_eq!(again["error"], "already stopping");
}

/// The stream had the state, statistics of every node, the pause as a
/// state change, the stop, and the end with exit code 0.
fn assert_events(messages: &[Value]) {
    let kinds: Vec<&str> = messages
        .iter()
        .map(|m| m["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.first(), Some(&"state"), "{kinds:?}");
    let stats = messages.iter().filter(|m| m["type"] == "stats");
    let full = |m: &Value| NODES.iter().all(|n| m["nodes"][n]["fps"].is_f64());
    assert!(stats.clone().any(full), "no stats of every node: {kinds:?}");
    let states: Vec<&Value> = messages.iter().filter(|m| m["type"] == "state").collect();
    let paused =
        |m: &&Value| m["recording"] == "paused" && m["sync"]["sync"]["reported"] == "paused";
    assert!(states.iter().any(paused), "no pause in {states:?}");
    let stopping = |m: &Value| m["type"] == "event" && m["event"] == "stopping";
    assert!(messages.iter().any(stopping), "{kinds:?}");
    let end = messages.last().unwrap();
    assert_eq!(end, &json!({"type": "end", "exit_code": 0, "error": null}));
}

/// Sync's metric `name` in the report.
fn sync_metric(report: &RunReport, name: &str) -> f64 {
    let sync = report.nodes["sync"].stats.as_ref().expect("sync's stats");
    sync.metrics.get(name).copied().unwrap_or(0.0)
}

/// Sync's counters in the report: (frames it took in after the start,
/// frames the machine skipped on the way).
fn sync_counts(report: &RunReport) -> (u64, u64) {
    let sync = report.nodes["sync"].stats.as_ref().expect("sync's stats");
    let before =
        sync_metric(report, "video_before_start") + sync_metric(report, "video_dups_dropped");
    let video_in = &sync.inputs["video"];
    let skipped = report.nodes["video-normalize"].dropped
        + video_in.dropped
        + report.nodes["video-encode"].dropped;
    (video_in.received - before as u64, skipped)
}

/// The file decodes cleanly and holds what sync took in less what it
/// reports cut (in its log and its metrics alike); the seconds cut.
fn assert_file_holds_the_recording(s: &Scratch, report: &RunReport) -> f64 {
    let out = s.path("out.mp4");
    assert_eq!(decode_errors(&out), "", "{} decodes cleanly", out.display());
    let log = std::fs::read_to_string(s.path("run/logs/sync.log")).unwrap();
    let (_, cut_frames, _) = cut_in_log(&log);
    let cut_s = sync_metric(report, "paused_s");
    assert_eq!(cut_frames as f64, sync_metric(report, "paused_frames"));
    assert_eq!(sync_metric(report, "paused"), 0.0, "not paused at the end");
    assert!(cut_frames > 0, "the pause cut nothing");
    assert!(
        (cut_s * FPS - cut_frames as f64).abs() < 1e-6,
        "whole frames: {cut_s} s"
    );
    let (frames_in, skipped) = sync_counts(report);
    let video = probe(&out).unwrap().video[0].clone();
    let expected = frames_in - cut_frames;
    let frames = video.frames();
    // Exactly, unless the machine skipped frames (counted, 0 when quiet).
    assert!(
        frames <= expected && frames + skipped >= expected,
        "{frames} frames in the file, {frames_in} recorded, {cut_frames} cut, {skipped} skipped"
    );
    assert!(video.holes() as u64 <= skipped, "{} holes", video.holes());
    eprintln!(
        "{frames} frames: {frames_in} recorded, {cut_frames} ({cut_s:.3} s) cut, {skipped} skipped"
    );
    cut_s
}

/// Every clap within 5 ms of its flash, before and after the cut; across
/// the cut the claps are closer by exactly what was cut.
fn assert_claps_in_sync(s: &Scratch, cut_s: f64) {
    let log = std::fs::read_to_string(s.path("run/logs/sync.log")).unwrap();
    let at = cut_at(&log);
    let found = claps(&s.path("out.mp4"));
    let all = describe(&found);
    let before: Vec<Clap> = found.iter().copied().filter(|c| c.at < at).collect();
    // After the cut the sound from before it may still ring for a moment.
    let after: Vec<Clap> = found.iter().copied().filter(|c| c.at >= at + 0.3).collect();
    assert!(
        !before.is_empty() && after.len() >= 2,
        "cut at {at} s: {all}"
    );
    for c in before.iter().chain(&after) {
        assert!(
            c.offset_ms.abs() <= 5.0,
            "clap at {} s off by {} ms: {all}",
            c.at,
            c.offset_ms
        );
    }
    let across = after[0].at - before[before.len() - 1].at + cut_s;
    assert!(
        (across - across.round()).abs() < 0.5 / FPS,
        "{across} s across the cut: {all}"
    );
    eprintln!("cut at {at:.3} s; claps {all}");
}

#[test]
fn a_live_graph_is_paused_resumed_and_stopped_through_its_control_api() {
    require_ffmpeg();
    let s = Scratch::new();
    let path = s.graph("control.yaml", &graph());
    let mut run = LiveRun::start(&s, &path, &["--control"]);
    run.wait_for("control API: http://127.0.0.1:");
    let api = Api::from_file(&s.path("run/control.json"));
    assert_token_required(&api);
    assert_graph(&api);
    wait_for_frames(&api);
    let events = follow_events(&api);
    pause_and_resume(&s, &api);
    assert_params_refused(&s, &api);
    std::thread::sleep(Duration::from_millis(3000)); // claps after the resume
    stop(&api);
    let result = run.finish();
    result.assert_ok();
    assert!(!s.path("run/control.json").exists(), "removed at the end");
    assert_events(&events.join().unwrap());
    let report: RunReport = serde_json::from_value(result.report().clone()).unwrap();
    for (id, node) in &report.nodes {
        assert_eq!(node.lost, 0, "node {id} lost messages");
    }
    let cut_s = assert_file_holds_the_recording(&s, &report);
    assert_claps_in_sync(&s, cut_s);
}
