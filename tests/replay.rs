//! The replay buffer on a live graph: the recording chain at 640×360 from
//! live test sources (a keyframe every 2 s) feeds the mux and two
//! replay-buffer nodes, both of 10 s: `replay` (50 MB: the seconds bind,
//! MP4) and `small` (a cap the media outgrows in under 10 s: the bytes
//! bind, MKV). A save through the control API at 12 s of media and one by
//! SIGUSR1 to the runtime at 25 s; the run ends at 30 s.
//!
//! Each saved file decodes cleanly, starts on a keyframe with its audio
//! from the same instant, and holds at most 10 s; the buffered bytes never
//! go above the cap. The commands wait on the mux's media time and the
//! nodes' metrics, never on wall time.

use std::cell::RefCell;
use std::path::Path;
use std::process::Command;

use graph_tests::control_api::{wait_until, Api};
use graph_tests::live::{recording_with, LiveRun};
use graph_tests::media::{decode_errors, probe, require_ffmpeg, run_tool};
use graph_tests::Scratch;
use serde_json::Value;

const FPS: f64 = 30.0;
const SECONDS: f64 = 10.0;
/// Keyframe interval of the graph's encoder, s.
const GOP: f64 = 2.0;
/// The small buffer's cap, MB: under 10 s of this graph's media.
const SMALL_MB: f64 = 0.25;
const NODES: [&str; 2] = ["replay", "small"];

/// The recording chain with the two replay buffers fed by its encoders.
fn graph(s: &Scratch) -> std::path::PathBuf {
    std::fs::create_dir_all(s.path("saves")).unwrap();
    let chain = recording_with(
        640,
        360,
        "{ speed: ultrafast, keyframe_interval: 2 }",
        "",
        "",
        "",
    );
    let buffers = format!(
        "  - id: replay
    node: replay-buffer
    inputs: {{ video: video-encode/video, audio: audio-encode/audio }}
    params: {{ duration: {SECONDS}, max_size: 50, path: '{{dir}}/saves/replay-{{n}}.mp4' }}
  - id: small
    node: replay-buffer
    inputs: {{ video: video-encode/video, audio: audio-encode/audio }}
    params: {{ duration: {SECONDS}, max_size: {SMALL_MB}, path: '{{dir}}/saves/small-{{n}}.mkv' }}
"
    );
    s.graph("replay.yaml", &(chain + &buffers))
}

/// A metric of `node` in a `GET /api/stats` answer.
fn metric(stats: &Value, node: &str, name: &str) -> Option<f64> {
    stats["nodes"][node]["metrics"][name].as_f64()
}

/// Every stats answer seen while waiting, to check the buffers' figures
/// over the whole run.
struct Watch<'a> {
    api: &'a Api,
    seen: RefCell<Vec<Value>>,
}

impl Watch<'_> {
    /// Polls the stats until `ready` holds of them.
    fn until(&self, what: &str, ready: impl Fn(&Value) -> bool) -> Value {
        let poll = || {
            let stats = self.api.get("/api/stats");
            self.seen.borrow_mut().push(stats.clone());
            stats
        };
        wait_until(what, poll, ready)
    }

    /// The largest value of a node's metric seen.
    fn most(&self, node: &str, name: &str) -> f64 {
        let seen = self.seen.borrow();
        let values = seen.iter().filter_map(|s| metric(s, node, name));
        values.fold(0.0, f64::max)
    }
}

/// Waits for the mux to have written `seconds` of media.
fn media_reached(watch: &Watch, seconds: f64) {
    let what = format!("{seconds} s of media written");
    watch.until(&what, |s| metric(s, "mux", "duration_s") >= Some(seconds));
}

/// Waits until every buffer reports `n` saves written.
fn saves_done(watch: &Watch, n: f64) {
    let done = |s: &Value| {
        NODES
            .iter()
            .all(|node| metric(s, node, "replay_saves") == Some(n))
    };
    watch.until(&format!("{n} saves written"), done);
}

/// Whether the first video frame of `path` is a keyframe.
fn starts_on_keyframe(path: &Path) -> bool {
    let out = run_tool(
        Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-select_streams",
                "v:0",
                "-read_intervals",
                "%+#1",
                "-show_entries",
                "frame=key_frame,pict_type",
                "-of",
                "csv=p=0",
            ])
            .arg(path),
    );
    out.lines().next().is_some_and(|l| l.trim() == "1,I")
}

/// A saved file: clean, from a keyframe, audio from the same instant, at
/// most the buffer's seconds; its seconds of video.
fn check_save(path: &Path) -> f64 {
    assert!(path.is_file(), "{} was written", path.display());
    assert_eq!(
        decode_errors(path),
        "",
        "{} decodes cleanly",
        path.display()
    );
    assert!(
        starts_on_keyframe(path),
        "{} starts on a keyframe",
        path.display()
    );
    let p = probe(path).unwrap();
    let (video, audio) = (&p.video[0], &p.audio[0]);
    let seconds = video.duration();
    eprintln!(
        "{}: video {:.3} s from {:.3}, audio {:.3} to {:.3}",
        path.display(),
        seconds,
        video.start(),
        audio.start,
        audio.end
    );
    assert!(seconds <= SECONDS + 1e-6, "{}: {seconds} s", path.display());
    // AAC packets are 21 ms: the first one at or after the keyframe.
    assert!((audio.start - video.start()).abs() <= 0.05, "{p:?}");
    assert!(
        (audio.end - (video.start() + video.span())).abs() <= 0.1,
        "{p:?}"
    );
    seconds
}

#[test]
fn saves_hold_the_last_seconds_from_a_keyframe_within_the_caps() {
    require_ffmpeg();
    let _turn = graph_tests::one_at_a_time();
    let s = Scratch::new();
    let g = graph(&s);
    let mut run = LiveRun::start(&s, &g, &["--duration", "30", "--control"]);
    run.wait_for("control API: ");
    let api = Api::from_file(&s.path("run/control.json"));
    let watch = Watch {
        api: &api,
        seen: RefCell::new(Vec::new()),
    };
    media_reached(&watch, 12.0);
    let (status, answer) = api.post("/api/replay/save", None);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["nodes"], serde_json::json!(NODES), "{answer}");
    assert!(answer["at_ns"].as_u64().is_some(), "{answer}");
    saves_done(&watch, 1.0);
    media_reached(&watch, 25.0);
    run.signal_runtime(libc::SIGUSR1);
    saves_done(&watch, 2.0);
    let r = run.finish();
    r.assert_ok();
    assert!(r.stderr.contains("SIGUSR1: replay save at"), "{}", r.stderr);

    for (i, node) in NODES.iter().enumerate() {
        let m = &r.node(node)["stats"]["metrics"];
        assert_eq!(m["replay_saves"], 2.0, "{node}: {m}");
        assert_eq!(m["replay_saves_refused"], 0.0, "{node}: {m}");
        assert_eq!(m["replay_saves_failed"], 0.0, "{node}: {m}");
        let cap = if i == 0 { 50e6 } else { SMALL_MB * 1e6 };
        let most = watch.most(node, "replay_buffered_bytes");
        assert!(most > 0.0 && most <= cap, "{node}: {most} bytes, cap {cap}");
        assert!(watch.most(node, "replay_buffered_s") <= SECONDS + 1.5);
    }
    // The seconds bind the big buffer: 10 s less at most one keyframe interval.
    for n in ["001", "002"] {
        let seconds = check_save(&s.path(&format!("saves/replay-{n}.mp4")));
        assert!(
            seconds >= SECONDS - GOP - 1.0 / FPS,
            "replay-{n}: {seconds} s"
        );
    }
    assert_eq!(
        graph_tests::media::faststart_problem(&s.path("saves/replay-001.mp4")),
        None
    );
    // The bytes bind the small one first.
    for n in ["001", "002"] {
        let seconds = check_save(&s.path(&format!("saves/small-{n}.mkv")));
        assert!(
            seconds < SECONDS - GOP,
            "small-{n}: {seconds} s, the cap binds"
        );
    }
    assert!(watch.most("small", "replay_buffered_s") < SECONDS - GOP);
}

#[test]
fn runtime_nodes_documents_every_param() {
    let out = run_tool(Command::new(graph_tests::runtime_bin()).args(["nodes", "replay-buffer"]));
    for param in ["duration", "max_size", "path", "container", "save"] {
        let row = out
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{param} ")))
            .unwrap_or_else(|| panic!("no row for `{param}`:\n{out}"));
        assert!(
            row.split_whitespace().count() > 4,
            "{param} is described: {row}"
        );
    }
    for metric in ["replay_buffered_s", "replay_buffered_bytes", "replay_saves"] {
        assert!(out.contains(metric), "{metric}:\n{out}");
    }
}

#[test]
fn an_unwritable_directory_is_refused_before_the_start() {
    let s = Scratch::new();
    let chain = recording_with(160, 120, "{ speed: ultrafast }", "", "", "");
    let yaml = chain
        + "  - id: instant-replay
    node: replay-buffer
    inputs: { video: video-encode/video }
    params: { path: '/proc/self/replay-{n}.mp4' }
";
    let g = s.graph("g.yaml", &yaml);
    let r = s.run(&g, &["--duration", "2"]);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    let text = std::fs::read_to_string(&g).unwrap();
    let line = text.lines().position(|l| l.contains("/proc/self")).unwrap() + 1;
    let at = format!("g.yaml:{line}:");
    for expected in [&at, "nodes[8].params.path", "`/proc/self` is not writable"] {
        assert!(r.stderr.contains(expected), "`{expected}` in {}", r.stderr);
    }
    assert!(!s.path("run").exists(), "nothing started");
}

#[test]
fn a_graph_without_a_replay_buffer_refuses_a_save() {
    let s = Scratch::new();
    let g = s.graph(
        "g.yaml",
        &recording_with(160, 120, "{ speed: ultrafast }", "", "", ""),
    );
    let mut run = LiveRun::start(&s, &g, &["--control"]);
    run.wait_for("control API: ");
    let api = Api::from_file(&s.path("run/control.json"));
    let running = |state: &Value| state["phase"] == "running";
    wait_until("the graph runs", || api.get("/api/state"), running);
    let (status, answer) = api.post("/api/replay/save", None);
    assert_eq!(status, 409, "{answer}");
    assert_eq!(
        answer["error"],
        "the graph has no replay-buffer node: nothing to save"
    );
    // SIGUSR1 says so too, and the run goes on (its default would end it).
    run.signal_runtime(libc::SIGUSR1);
    run.wait_for("SIGUSR1: the graph has no replay-buffer node");
    assert_eq!(api.post("/api/shutdown", None).0, 200);
    run.finish().assert_ok();
}
