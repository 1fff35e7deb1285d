//! Pausing a recording: sync's live param `paused`, changed while the graph
//! runs through the library path an embedding application uses
//! (`StopHandle::set_param`). Live test sources with the clapperboard (a
//! white frame and a beep at every whole second of capture time); the file
//! is checked on its content: the paused span is gone from picture and sound
//! alike, the video has no gap, and every clap after the resume is in sync.
//! Nothing is asserted on wall time: the pause's length is what sync reports.

use std::path::Path;
use std::time::{Duration, Instant};

use graph_tests::claps::{claps, describe, Clap};
use graph_tests::live::clapper_recording;
use graph_tests::media::{decode_errors, probe, require_ffmpeg, VideoTrack};
use graph_tests::sync_log::{cut_at, cut_in_log};
use graph_tests::{run_recorder_app, Scratch};
use runtime::run::{RunOptions, RunReport, StopHandle};
use serde_json::json;

const FPS: f64 = 30.0;
const RATE: f64 = 48_000.0;

/// The recording chain at 160×120 from live clapper test sources, sync
/// starting paused or not, into `{dir}/out.mp4`.
fn graph(paused: bool) -> String {
    clapper_recording(&format!("\n    params: {{ paused: {paused} }}"))
}

/// One step of the script the test plays on the running graph: wait until
/// sync's log says `after`, then `wait` more, then set `paused` (or stop).
struct Step {
    after: &'static str,
    wait: Duration,
    paused: Option<bool>,
}

/// After `after` in sync's log and `ms` more, set `paused` (`None`: stop).
fn step(after: &'static str, ms: u64, paused: Option<bool>) -> Step {
    Step {
        after,
        wait: Duration::from_millis(ms),
        paused,
    }
}

/// Waits (at most 60 s) until the log at `path` contains `text`.
async fn wait_for_log(path: &Path, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let log = std::fs::read_to_string(path).unwrap_or_default();
        if log.contains(text) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs the graph in-process, playing `script` on it; the run's report.
fn run_script(s: &Scratch, paused: bool, script: Vec<Step>) -> RunReport {
    let path = s.graph("paused.yaml", &graph(paused));
    let graph = runtime::graph::load(&path, &[], &Default::default()).expect("valid graph");
    let opts = RunOptions {
        console: false,
        run_dir: s.path("run"),
        ..RunOptions::default()
    };
    let sync_log = s.path("run/logs/sync.log");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let handle = StopHandle::default();
        let control = handle.clone();
        tokio::spawn(async move {
            for step in script {
                wait_for_log(&sync_log, step.after).await;
                tokio::time::sleep(step.wait).await;
                match step.paused {
                    Some(p) => control.set_param("sync", "paused", json!(p)),
                    None => control.stop(),
                }
            }
        });
        runtime::run::run(&graph, &opts, handle).await.expect("run")
    })
}

/// Sync's metric `name` in the report.
fn metric(report: &RunReport, name: &str) -> f64 {
    let stats = report.nodes["sync"].stats.as_ref().expect("sync's stats");
    stats
        .metrics
        .get(name)
        .copied()
        .unwrap_or_else(|| panic!("sync has no metric {name}: {:?}", stats.metrics))
}

/// Every clap's picture and sound within 5 ms.
fn assert_in_sync(claps: &[Clap], what: &str) {
    let worst = claps.iter().map(|c| c.offset_ms.abs()).fold(0.0, f64::max);
    assert!(
        worst <= 5.0,
        "{what}: worst clap {worst:.1} ms: {}",
        describe(claps)
    );
}

/// The file's video against sync's counters.
struct Recorded {
    video: VideoTrack,
    /// Frames sync took in after T0: recorded, the paused ones included.
    frames_in: u64,
    /// Video frames a loaded machine skipped on the way (counted drops of
    /// the queues before sync, at sync and at the encoder; 0 when quiet).
    skipped: u64,
}

/// Checks the run ended cleanly and what the pause left out was counted
/// as paused, never as dropped or lost; then probes the file.
fn recorded(report: &RunReport, out: &Path) -> Recorded {
    assert_eq!(report.exit_code, 0, "{:?}", report.error);
    for (id, n) in &report.nodes {
        assert_eq!(n.lost, 0, "node {id} lost messages");
    }
    assert_eq!(metric(report, "dropped"), 0.0);
    assert_eq!(metric(report, "paused"), 0.0, "not paused at the end");
    let sync_in = &report.nodes["sync"].stats.as_ref().unwrap().inputs["video"];
    let before_start = metric(report, "video_before_start") + metric(report, "video_dups_dropped");
    let skipped = report.nodes["video-normalize"].dropped
        + sync_in.dropped
        + report.nodes["video-encode"].dropped;
    assert_eq!(decode_errors(out), "", "{} decodes cleanly", out.display());
    let p = probe(out).unwrap();
    let video = p.video[0].clone();
    assert!(video.off_grid() < 0.001, "pts on the 1/fps grid");
    assert!(
        video.start().abs() < 0.001,
        "starts at 0: {}",
        video.start()
    );
    // No gap: the frames are contiguous, unless the machine skipped some.
    assert!(
        video.holes() as u64 <= skipped,
        "{} holes in the video, {skipped} frames skipped: {:?}",
        video.holes(),
        video.pts
    );
    let audio = &p.audio[0];
    let (v, a) = (video.span(), audio.end - audio.start);
    assert!((v - a).abs() < 0.25, "{v:.3} s of video, {a:.3} s of audio");
    Recorded {
        video,
        frames_in: sync_in.received - before_start as u64,
        skipped,
    }
}

impl Recorded {
    /// The file holds what was recorded less what the pause left out: its
    /// frames, and its duration to the frame (exactly, unless frames were
    /// skipped).
    fn assert_holds(&self, left_out: f64) {
        let expected = self.frames_in as f64 - left_out;
        let (frames, span) = (self.video.frames() as f64, self.video.span() * FPS);
        let slack = self.skipped as f64;
        assert!(
            frames <= expected && frames + slack >= expected,
            "{frames} frames in the file, {} recorded, {left_out} left out, {slack} skipped",
            self.frames_in
        );
        assert!(
            (span - expected).abs() <= slack + 0.5,
            "the file lasts {span:.2} frame periods, {expected} expected"
        );
    }
}

/// Records with sync starting `paused` or not, playing `script` on the
/// graph (one graph at a time); the scratch directory, the report and the file.
fn record(paused: bool, script: Vec<Step>) -> (Scratch, RunReport, Recorded) {
    require_ffmpeg();
    let s = Scratch::new();
    let report = {
        let _turn = graph_tests::one_at_a_time();
        run_script(&s, paused, script)
    };
    let file = recorded(&report, &s.path("out.mp4"));
    (s, report, file)
}

#[test]
fn a_paused_span_is_cut_from_every_output_and_sync_holds_after_it() {
    let script = vec![
        step("common start fixed", 1_500, Some(true)),
        step("paused at", 1_500, Some(false)),
        step("resumed: ", 3_000, None),
    ];
    let (s, report, file) = record(false, script);
    let cut_s = metric(&report, "paused_s");
    let (frames, samples) = (
        metric(&report, "paused_frames"),
        metric(&report, "paused_samples"),
    );
    assert!(cut_s > 0.5, "the pause cut {cut_s} s");
    // Whole frames, and the same span of sound to the sample.
    assert!(
        (cut_s * FPS - frames).abs() < 1e-6,
        "{cut_s} s cut, {frames} frames"
    );
    assert_eq!(samples, (cut_s * RATE).round(), "{cut_s} s cut");
    file.assert_holds(frames);

    let log = std::fs::read_to_string(s.path("run/logs/sync.log")).unwrap();
    let at = cut_at(&log);
    let found = claps(&s.path("out.mp4"));
    let before: Vec<Clap> = found.iter().copied().filter(|c| c.at < at).collect();
    // A beep's onset needs 0.2 s of quiet before it: right after the cut the
    // sound from before it may still ring.
    let after: Vec<Clap> = found.iter().copied().filter(|c| c.at >= at + 0.3).collect();
    let all = describe(&found);
    assert!(!before.is_empty(), "claps before the cut at {at} s: {all}");
    assert!(after.len() >= 2, "claps after the cut at {at} s: {all}");
    assert_in_sync(&before, "before the pause");
    assert_in_sync(&after, "after the pause");
    // The claps are whole seconds apart in capture time: across the cut they
    // are closer by exactly what was cut.
    let across = after[0].at - before[before.len() - 1].at + cut_s;
    assert!(
        (across - across.round()).abs() < 0.5 / FPS,
        "{across} s between claps across the cut, {cut_s} s cut: {all}"
    );
    eprintln!(
        "cut {cut_s:.3} s ({frames} frames, {samples} samples) at {at:.3} s; {} frames, {} skipped; claps {all}",
        file.video.frames(),
        file.skipped
    );
}

#[test]
fn a_graph_started_paused_records_from_the_resume() {
    let script = vec![
        step("sync: cameras", 1_500, Some(false)),
        step("resumed ", 3_000, None),
    ];
    let (s, report, file) = record(true, script);
    // Nothing was on the timeline yet: the recording starts after the pause.
    assert_eq!(metric(&report, "paused_s"), 0.0);
    assert!(metric(&report, "paused_samples") > 0.0);
    let left_out = metric(&report, "paused_frames");
    assert!(left_out > 0.0);
    file.assert_holds(left_out);
    let found = claps(&s.path("out.mp4"));
    let all = describe(&found);
    assert!(found.len() >= 2, "{all}");
    assert_in_sync(&found, "started paused");
    eprintln!(
        "started paused: {left_out} frames left out; {} frames, {} skipped; claps {all}",
        file.video.frames(),
        file.skipped
    );
}

/// The seed design's `CombinedRecorder::pause_recording()` /
/// `resume_recording()` (the example app's `--pause-at` / `--resume-at`)
/// set the same param. The app stamps each frame period's sound when it
/// submits its picture, ahead of the capture clock: the cut begins after
/// what sync already sent, so picture and sound lose the same span.
#[test]
fn the_recorders_pause_cuts_the_same_span_from_picture_and_sound() {
    require_ffmpeg();
    let s = Scratch::new();
    let out = s.path("app.mp4");
    let run = {
        let _turn = graph_tests::one_at_a_time();
        let args = ["--seconds", "6", "--preset", "720p"];
        let pause = ["--pause-at", "2.2", "--resume-at", "3.4"];
        run_recorder_app(&s, &out, &[&args[..], &pause[..]].concat())
    };
    let why = &run.why;
    assert!(run.output.status.success(), "{why}");
    let runs = std::fs::read_dir(s.path("runs")).unwrap();
    let run_dir = runs.map(|e| e.unwrap().path()).next().expect("a run");
    let log = std::fs::read_to_string(run_dir.join("logs/sync.log")).unwrap();
    let (cut_s, frames, samples) = cut_in_log(&log);
    assert!(frames >= 36, "1.2 s paused, {frames} frames cut");
    assert!((cut_s * FPS - frames as f64).abs() < 0.01, "{cut_s} s");
    assert_eq!(samples, frames * 1600, "the same span of sound");
    assert_eq!(decode_errors(&out), "");
    let video = probe(&out).unwrap().video[0].clone();
    assert_eq!(video.frames(), 180 - frames, "{why}");
    assert_eq!(video.holes(), 0);
    // Claps at 0, 1, 2 s, then 4 and 5 s moved back by the cut (3 s is in it).
    let found = claps(&out);
    let all = describe(&found);
    assert_eq!(found.len(), 5, "{all}");
    assert_in_sync(&found, "the app's recording");
    let across = found[3].at - found[2].at + cut_s;
    assert!((across - 2.0).abs() < 0.5 / FPS, "{all}");
    eprintln!("app: cut {cut_s:.3} s ({frames} frames, {samples} samples); claps {all}");
}
