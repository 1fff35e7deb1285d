//! The dashboard end to end: a live graph of clapper test sources run with
//! `runtime run --control`, its dashboard opened in headless Chromium at
//! the URL the runtime prints, and driven by tests/browser/dashboard.mjs
//! (playwright-core): every node shown, numbers that change, pause and
//! resume pressed and shown, the program preview, a snapshot, a screenshot.
//! And snapshots taken back to back of a no-drop stream (sources faster
//! than real time) make it neither drop nor lose a frame.
//!
//! Needs Node.js, Chromium and tests/browser/node_modules, which
//! `scripts/setup --test` installs; without them it says SKIPPED and
//! passes. Nothing is asserted on wall time: the script waits for what the
//! page shows, with generous bounds against a hang.

use std::path::{Path, PathBuf};
use std::process::Command;

use graph_tests::live::{recording_with, LiveRun, RECORDING_NODES as NODES};
use graph_tests::media::{require_ffmpeg, run_tool};
use graph_tests::Scratch;
use serde_json::Value;

/// The browser the script drives (Debian's), unless told another.
fn browser() -> PathBuf {
    std::env::var_os("DASHBOARD_BROWSER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("browser")
}

/// Why the browser check cannot run here, if it cannot.
fn missing_tools() -> Option<String> {
    let node = Command::new("node").arg("--version").output();
    if !node.is_ok_and(|o| o.status.success()) {
        return Some("no `node` (Node.js): run scripts/setup --test".into());
    }
    if !browser().exists() {
        let b = browser();
        return Some(format!(
            "no browser at {}: run scripts/setup --test",
            b.display()
        ));
    }
    if !browser_dir().join("node_modules/playwright-core").is_dir() {
        return Some("tests/browser has no node_modules: run scripts/setup --test".into());
    }
    None
}

/// The recording chain at 320×240 from live clapper test sources.
fn graph() -> String {
    recording_with(
        320,
        240,
        "{ speed: ultrafast }",
        "",
        ", pattern: clapper",
        "",
    )
}

/// Runs the browser script on `url`: its JSON report (it panics with the
/// script's output if the script failed).
fn drive_dashboard(s: &Scratch, url: &str) -> Value {
    let out = Command::new("node")
        .arg(browser_dir().join("dashboard.mjs"))
        .arg("--url")
        .arg(url)
        .arg("--screenshot")
        .arg(s.path("dashboard.png"))
        .arg("--snapshot")
        .arg(s.path("snapshot.jpg"))
        .arg("--browser")
        .arg(browser())
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report: Value = stdout
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("no JSON from the script:\n{stdout}\n{stderr}"));
    assert!(
        out.status.success(),
        "the script failed: {report}\n{stderr}"
    );
    report
}

/// The page showed the graph, numbers that moved, the pause and resume.
fn assert_page(report: &Value) {
    let ids = |key: &str| -> Vec<String> {
        let list = report[key]
            .as_array()
            .unwrap_or_else(|| panic!("{key}: {report}"));
        list.iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids("shown"), NODES, "nodes drawn");
    assert_eq!(ids("rows"), NODES, "nodes in the table");
    assert_eq!(report["edges"], 8, "{report}");
    let frames_out = |read: &str| {
        report[read]["nodes"]["camera"]["frames_out"]
            .as_str()
            .map(String::from)
    };
    let (first, second) = (frames_out("first"), frames_out("second"));
    assert!(first.is_some() && second.is_some(), "{report}");
    assert_ne!(
        report["first"]["nodes"], report["second"]["nodes"],
        "numbers changed"
    );
    assert_eq!(report["paused"]["shown"], "recording: paused");
    assert_eq!(report["resumed"]["shown"], "recording: running");
    assert_eq!(report["controlMessage"], "resume: done");
    assert!(report["preview"]["frames"].as_u64() >= Some(1), "{report}");
    assert_eq!(report["preview"]["width"], 480, "the preview's width");
    let levels = report["levels"].as_array().unwrap();
    assert!(
        levels.iter().any(|l| l["node"] == "audio-normalize"),
        "a level meter for audio-normalize: {report}"
    );
    assert_eq!(report["pageErrors"], serde_json::json!([]), "script errors");
}

/// The buttons follow the state the server reports: a graph recording from
/// its start can stop, split and mark a chapter but not start; paused, it
/// can resume but not pause; running, the other way round.
fn assert_buttons(report: &Value) {
    assert_eq!(report["session"], "recording", "{report}");
    let paused = &report["paused"]["buttons"];
    let resumed = &report["resumed"]["buttons"];
    for (buttons, pause) in [(paused, false), (resumed, true)] {
        assert_eq!(buttons["pause"], pause, "{report}");
        assert_eq!(buttons["resume"], !pause, "{report}");
        assert_eq!(buttons["start"], false, "{report}");
        for action in ["stop", "split", "chapter"] {
            assert_eq!(buttons[action], true, "{action}: {report}");
        }
    }
}

/// The snapshot the page fetched is a 320×240 MJPEG picture.
fn assert_snapshot(s: &Scratch, report: &Value) {
    assert_eq!(report["snapshot"]["status"], 200, "{report}");
    assert_eq!(report["snapshot"]["type"], "image/jpeg");
    let probe = run_tool(
        Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-show_entries",
                "stream=codec_name,width,height",
            ])
            .args(["-of", "json"])
            .arg(s.path("snapshot.jpg")),
    );
    let probe: Value = serde_json::from_str(&probe).unwrap();
    let stream = &probe["streams"][0];
    assert_eq!(stream["codec_name"], "mjpeg", "{probe}");
    assert_eq!(
        (stream["width"].as_u64(), stream["height"].as_u64()),
        (Some(320), Some(240))
    );
}

fn assert_png(path: &Path) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is a PNG",
        path.display()
    );
    assert!(
        bytes.len() > 10_000,
        "a page, not an empty picture: {} bytes",
        bytes.len()
    );
}

#[test]
fn the_dashboard_shows_a_live_graph_and_pauses_and_resumes_it() {
    if let Some(why) = missing_tools() {
        eprintln!("SKIPPED: {why}");
        return;
    }
    require_ffmpeg();
    let s = Scratch::new();
    let path = s.graph("dashboard.yaml", &graph());
    let mut run = LiveRun::start(&s, &path, &["--control"]);
    let line = run.wait_for("dashboard: http://127.0.0.1:");
    let url = line.split_once("dashboard: ").unwrap().1.trim().to_string();
    let file: Value =
        serde_json::from_slice(&std::fs::read(s.path("run/control.json")).unwrap()).unwrap();
    assert!(
        url.ends_with(&format!("/?token={}", file["token"].as_str().unwrap())),
        "{url}"
    );
    let report = drive_dashboard(&s, &url);
    assert_page(&report);
    assert_buttons(&report);
    assert_snapshot(&s, &report);
    assert_png(&s.path("dashboard.png"));
    run.signal_runtime(libc::SIGINT);
    let result = run.finish();
    result.assert_ok();
    for node in NODES {
        assert_eq!(result.node(node)["lost"], 0, "node {node} lost messages");
    }
}

/// Takes snapshots of `source` over HTTP until the run's server is gone:
/// how many were JPEGs.
fn snapshot_until_the_end(url: &str, token: &str, source: &str) -> u32 {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(60)))
        .build()
        .into();
    let mut taken = 0;
    loop {
        let request = agent
            .get(format!("{url}/api/snapshot?node={source}&width=64"))
            .header("Authorization", format!("Bearer {token}"));
        let Ok(mut response) = request.call() else {
            return taken;
        };
        let jpeg = response
            .headers()
            .get("content-type")
            .is_some_and(|t| t == "image/jpeg");
        let body = response.body_mut().read_to_vec().unwrap_or_default();
        if response.status() == 200 && jpeg && body.starts_with(&[0xff, 0xd8]) {
            taken += 1;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn snapshots_do_not_make_a_no_drop_stream_drop_or_lose_frames() {
    require_ffmpeg();
    let s = Scratch::new();
    // Sources as fast as the graph takes frames: every stream is no-drop,
    // its queues block instead of dropping.
    let yaml = recording_with(
        160,
        120,
        "{ speed: ultrafast }",
        "",
        ", realtime: false",
        "",
    );
    let path = s.graph("no-drop.yaml", &yaml);
    let mut run = LiveRun::start(&s, &path, &["--control", "--duration", "6"]);
    run.wait_for("dashboard: http://127.0.0.1:");
    let file: Value =
        serde_json::from_slice(&std::fs::read(s.path("run/control.json")).unwrap()).unwrap();
    let (url, token) = (
        file["url"].as_str().unwrap(),
        file["token"].as_str().unwrap(),
    );
    let taken = snapshot_until_the_end(url, token, "camera");
    let result = run.finish();
    result.assert_ok();
    assert!(taken >= 3, "{taken} snapshots of camera/video");
    for node in NODES {
        let n = result.node(node);
        assert_eq!(
            (&n["dropped"], &n["lost"]),
            (&0.into(), &0.into()),
            "{node}: {n}"
        );
    }
    let sent = &result.node("camera")["frames_out"];
    assert_eq!(
        sent,
        &result.node("video-normalize")["frames_in"],
        "every frame arrived"
    );
    eprintln!("{taken} snapshots; camera sent {sent} frames, all received");
}
