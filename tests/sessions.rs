//! Recording sessions driven through the control API only, on a live graph
//! of clapper test sources whose mux waits for a start (`recording:
//! false`): start at 1 s, pause at 3 s for 2 s, chapter at 6 s, split at
//! 7 s, stop at 9 s, then shut the graph down. The files must hold exactly
//! the spans recorded (±1 frame), measured from the instants the API
//! answered with and the seconds sync reports it cut; every clap in sync
//! within 5 ms on both sides of the pause and in both parts; the chapter
//! where it was placed. Once in MP4 and once in MKV (their chapters are
//! written differently).
//!
//! Nothing is asserted on wall time: the sleeps only place the commands;
//! what is checked comes from the API's answers, the logs and the files.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use graph_tests::claps::{claps, describe};
use graph_tests::control_api::{wait_for_log, wait_until, Api};
use graph_tests::live::{recording_with, with_mux_params, LiveRun};
use graph_tests::media::{decode_errors, probe, require_ffmpeg};
use graph_tests::sync_log::cut_at;
use graph_tests::Scratch;
use runtime::run::RunReport;
use serde_json::{json, Value};

const FPS: f64 = 30.0;

/// The recording chain at 160×120 from live clapper sources; keyframes
/// every 4 s, so a file can begin at a command only on a keyframe asked
/// for then. The mux records on command.
fn graph(file: &str) -> String {
    let chain = recording_with(
        160,
        120,
        "{ speed: ultrafast, keyframe_interval: 4 }",
        "",
        ", pattern: clapper",
        "",
    );
    with_mux_params(
        &chain,
        &format!("{{ path: '{{dir}}/{file}', recording: false }}"),
    )
}

/// The instants (capture clock, ns) the API answered for each command.
struct Instants {
    start: u64,
    chapter: u64,
    split: u64,
    stop: u64,
}

/// `POST path` must succeed: the instant it was made at.
fn command(api: &Api, path: &str, body: Option<Value>) -> u64 {
    let (status, answer) = api.post(path, body);
    assert_eq!(status, 200, "POST {path}: {answer}");
    answer["at_ns"].as_u64().expect("at_ns")
}

fn sleep_s(s: f64) {
    std::thread::sleep(Duration::from_secs_f64(s));
}

/// The session's commands at 1, 3 (pause), 5 (resume), 6, 7 and 9 s.
fn drive(s: &Scratch, api: &Api) -> Instants {
    let sync_log = s.path("run/logs/sync.log");
    wait_for_log(&sync_log, "common start fixed");
    let state = api.get("/api/state");
    assert_eq!(state["session"]["state"], "stopped", "{state}");
    for path in ["/api/stop", "/api/split", "/api/chapter"] {
        let (status, refused) = api.post(path, None);
        assert_eq!(status, 409, "{path} before a start: {refused}");
        assert_eq!(refused["error"], "not recording");
    }
    sleep_s(1.0);
    let start = command(api, "/api/start", None);
    let (status, refused) = api.post("/api/start", None);
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["error"], "already recording");
    sleep_s(2.0);
    assert_eq!(api.post("/api/pause", None).0, 200);
    wait_for_log(&sync_log, "paused at");
    sleep_s(2.0);
    assert_eq!(api.post("/api/resume", None).0, 200);
    wait_for_log(&sync_log, "resumed: ");
    sleep_s(1.0);
    let chapter = command(api, "/api/chapter", Some(json!({"title": "Six"})));
    // A live param of the encoder on the way: x264 takes a new CRF.
    let crf = json!({"node": "video-encode", "name": "crf", "value": 30});
    assert_eq!(api.post("/api/params", Some(crf)).0, 200);
    wait_for_log(
        &s.path("run/logs/video-encode.log"),
        "crf changed: libx264: now crf 30",
    );
    sleep_s(1.0);
    let split = command(api, "/api/split", None);
    sleep_s(2.0);
    let stop = command(api, "/api/stop", None);
    // Stopped once the mux says so: both files are then final.
    let reported = |state: &Value| state["session"]["mux"]["mux"]["reported"] == "stopped";
    wait_until("the mux stopped", || api.get("/api/state"), reported);
    Instants {
        start,
        chapter,
        split,
        stop,
    }
}

/// Calls without the token, or with a wrong one, change nothing.
fn assert_unauthorized_refused(api: &Api) {
    for path in ["/api/start", "/api/stop", "/api/split", "/api/chapter"] {
        let (status, body) = api.call("POST", path, None, None);
        assert_eq!(status, 401, "{path} without a token: {body}");
        let (status, body) = api.call("POST", path, Some(&"0".repeat(64)), None);
        assert_eq!(status, 401, "{path} with a wrong token: {body}");
    }
}

fn seconds(from_ns: u64, to_ns: u64) -> f64 {
    (to_ns - from_ns) as f64 / 1e9
}

/// `path` decodes cleanly and holds `expected` seconds of video, ±1 frame.
fn assert_span(path: &Path, expected: f64) {
    assert_eq!(
        decode_errors(path),
        "",
        "{} decodes cleanly",
        path.display()
    );
    let frames = probe(path).unwrap().video[0].frames() as f64;
    eprintln!(
        "{}: {frames} frames, {:.1} expected",
        path.display(),
        expected * FPS
    );
    assert!(
        (frames - expected * FPS).abs() <= 1.0,
        "{}: {frames} frames, expected {:.2} ({expected:.3} s)",
        path.display(),
        expected * FPS
    );
}

/// `(start s, title)` of each chapter, from `ffprobe -show_chapters`.
fn chapters(path: &Path) -> Vec<(f64, String)> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-show_chapters", "-of", "json"])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    json["chapters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let start: f64 = c["start_time"].as_str().unwrap().parse().unwrap();
            (start, c["tags"]["title"].as_str().unwrap_or("").to_string())
        })
        .collect()
}

/// Where part 0 began in the stream's time, from the mux's log line
/// `part 0 PATH: stream time START to END s`.
fn part0_start(s: &Scratch) -> f64 {
    let log = std::fs::read_to_string(s.path("run/logs/mux.log")).unwrap();
    let line = log
        .lines()
        .find(|l| l.contains("part 0 "))
        .unwrap_or_else(|| panic!("no part 0 in the mux's log:\n{log}"));
    let start = line
        .split("stream time ")
        .nth(1)
        .and_then(|r| r.split(' ').next());
    start
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("no stream time in `{line}`"))
}

/// Every clap of `path` within 5 ms, but in the 0.3 s after a cut (where
/// the sound from before it may still ring): at least `min` of them.
fn assert_claps(path: &Path, cuts: &[f64], min: usize) {
    let found = claps(path);
    let all = describe(&found);
    let kept: Vec<_> = found
        .iter()
        .filter(|c| !cuts.iter().any(|cut| c.at >= *cut && c.at < cut + 0.3))
        .collect();
    assert!(kept.len() >= min, "{}: {all}", path.display());
    for c in kept {
        assert!(
            c.offset_ms.abs() <= 5.0,
            "{}: clap at {} s off by {} ms: {all}",
            path.display(),
            c.at,
            c.offset_ms
        );
    }
    eprintln!("{}: claps {all}", path.display());
}

fn sessions_in(file: &str) {
    require_ffmpeg();
    let s = Scratch::new();
    let path = s.graph("sessions.yaml", &graph(file));
    let mut run = LiveRun::start(&s, &path, &["--control"]);
    run.wait_for("control API: http://127.0.0.1:");
    let api = Api::from_file(&s.path("run/control.json"));
    assert_unauthorized_refused(&api);
    let at = drive(&s, &api);
    assert_eq!(api.post("/api/shutdown", None).0, 200);
    let result = run.finish();
    result.assert_ok();
    let report: RunReport = serde_json::from_value(result.report().clone()).unwrap();
    for (id, node) in &report.nodes {
        assert_eq!(node.lost, 0, "node {id} lost messages");
    }
    let sync = report.nodes["sync"].stats.as_ref().expect("sync's stats");
    let cut_s = sync.metrics["paused_s"];
    assert!(cut_s > 1.0, "the pause cut {cut_s} s");
    let (stem, ext) = file.split_once('.').unwrap();
    let part0 = s.path(file);
    let part1 = s.path(&format!("{stem}-001.{ext}"));
    assert!(!s.path(&format!("{stem}-002.{ext}")).exists(), "two files");
    assert_span(&part0, seconds(at.start, at.split) - cut_s);
    assert_span(&part1, seconds(at.split, at.stop));
    let chapter = seconds(at.start, at.chapter) - cut_s;
    let found = chapters(&part0);
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(found[0], (0.0, "Start".to_string()));
    assert_eq!(found[1].1, "Six");
    assert!(
        (found[1].0 - chapter).abs() <= 1.0 / FPS + 0.001,
        "chapter at {} s, placed at {chapter:.3} s",
        found[1].0
    );
    assert_eq!(chapters(&part1), vec![]);
    let log = std::fs::read_to_string(s.path("run/logs/sync.log")).unwrap();
    let pause_cut = cut_at(&log) - part0_start(&s);
    assert_claps(&part0, &[0.0, pause_cut], 3);
    assert_claps(&part1, &[0.0], 1);
}

#[test]
fn a_session_is_started_paused_split_and_stopped_through_the_api_mp4() {
    sessions_in("take.mp4");
}

#[test]
fn a_session_is_started_paused_split_and_stopped_through_the_api_mkv() {
    sessions_in("take.mkv");
}

/// The control.json of the one run under `runs`.
fn control_file(runs: &Path) -> std::path::PathBuf {
    let run = std::fs::read_dir(runs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.join("control.json").exists())
        .expect("a run directory with control.json");
    run.join("control.json")
}

#[test]
fn an_app_and_the_control_api_drive_the_same_recording() {
    use recorder::{AudioSource, CombinedRecorder, RecordingConfig, VideoResolution, VideoSource};
    require_ffmpeg();
    let s = Scratch::new();
    let mut config = RecordingConfig::hd_720p();
    config.video.resolution = VideoResolution::Custom {
        width: 320,
        height: 240,
    };
    config.video.source = VideoSource::TestPattern;
    config.audio.as_mut().unwrap().source = AudioSource::TestTone;
    config.run_dir = s.path("runs");
    config.control = Some(runtime::control::ControlAddr::loopback());
    let recorder = CombinedRecorder::new(config).unwrap();
    recorder.start_recording(s.path("app.mp4")).unwrap();
    let api = Api::from_file(&control_file(&s.path("runs")));
    assert_eq!(recorder.control_url().as_deref(), Some(api.url.as_str()));
    let requested = |state: &Value| state["recording"].clone();
    // Paused by the app: the API says so and refuses a second pause.
    recorder.pause_recording().unwrap();
    assert_eq!(requested(&api.get("/api/state")), "paused");
    assert_eq!(api.post("/api/pause", None).0, 409);
    // Resumed through the API: the app sees it.
    assert_eq!(api.post("/api/resume", None).0, 200);
    assert!(!recorder.is_paused());
    sleep_s(1.0);
    recorder.add_chapter("App").unwrap();
    sleep_s(1.0);
    assert_eq!(api.post("/api/split", None).0, 200);
    let split = |state: &Value| state["session"]["mux"]["mux"]["files"] == 2;
    wait_until("the split", || api.get("/api/state"), split);
    sleep_s(1.0);
    let summary = recorder.stop_recording().unwrap();
    let first = s.path("app.mp4");
    let second = s.path("app-001.mp4");
    assert_eq!(summary.files, [first.clone(), second.clone()]);
    for file in [&first, &second] {
        assert_eq!(decode_errors(file), "", "{}", file.display());
    }
    let titles: Vec<String> = chapters(&first).into_iter().map(|c| c.1).collect();
    assert_eq!(titles, ["Start", "App"]);
    assert!(!control_file_exists(&s.path("runs")), "removed at the end");
}

fn control_file_exists(runs: &Path) -> bool {
    std::fs::read_dir(runs)
        .unwrap()
        .any(|e| e.unwrap().path().join("control.json").exists())
}

/// A mux killed during a session is restarted recording (the live param
/// `recording: true` it was given), not in the standby its graph says: the
/// session goes on in the next numbered file, and its stop still lands.
#[test]
fn a_session_goes_on_across_a_restart_of_the_mux() {
    require_ffmpeg();
    let s = Scratch::new();
    let path = s.graph("sessions.yaml", &graph("take.mp4"));
    let mut run = LiveRun::start(&s, &path, &["--control"]);
    run.wait_for("control API: http://127.0.0.1:");
    let api = Api::from_file(&s.path("run/control.json"));
    wait_for_log(&s.path("run/logs/sync.log"), "common start fixed");
    command(&api, "/api/start", None);
    let writing = |state: &Value| state["session"]["mux"]["mux"]["files"] == 1;
    wait_until("the first file", || api.get("/api/state"), writing);
    sleep_s(1.0);
    let old = run.kill_node("node-mux");
    graph_tests::live::wait_for_restart(&run, "node-mux", old);
    // The restarted mux reports recording (standby would say stopped).
    let recording = |state: &Value| {
        let mux = &state["session"]["mux"]["mux"];
        mux["reported"] == "recording" && mux["files"] == 1
    };
    wait_until(
        "the restarted mux recording",
        || api.get("/api/state"),
        recording,
    );
    // Its file open (its log's `writing PATH (mp4): video ...`).
    wait_for_log(&s.path("run/logs/mux.log"), "take-001.mp4 (mp4): video");
    sleep_s(1.0);
    command(&api, "/api/stop", None);
    let stopped = |state: &Value| state["session"]["mux"]["mux"]["reported"] == "stopped";
    wait_until("the stop", || api.get("/api/state"), stopped);
    assert_eq!(api.post("/api/shutdown", None).0, 200);
    let result = run.finish();
    result.assert_ok();
    let report: RunReport = serde_json::from_value(result.report().clone()).unwrap();
    assert_eq!(report.nodes["mux"].restarts, 1);
    for file in ["take.mp4", "take-001.mp4"] {
        let path = s.path(file);
        assert_eq!(decode_errors(&path), "", "{file}");
        assert!(probe(&path).unwrap().video[0].frames() > 10, "{file}");
    }
}
