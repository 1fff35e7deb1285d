//! Nodes that hang instead of crashing. A node that stops making progress
//! (here: SIGSTOP, so it publishes nothing) is reported on the log and in the
//! report, and after `--hang-timeout` killed and restarted like a crash. At
//! stop, a node that does not finish gets its streams ended for it, so the
//! mux still finalizes everything the other streams carried. A graph that
//! stops before it starts ends at once, and when several nodes fail the run's
//! error names the one whose failure caused the others.

use std::process::Command;
use std::time::{Duration, Instant};

use graph_tests::live::{small_recording, wait_for_restart, LiveRun};
use graph_tests::media::{
    decode_errors, faststart_problem, probe, require_ffmpeg, top_level_boxes,
};
use graph_tests::{runtime_bin, Scratch};

/// SIGSTOP of video-encode mid-recording, then Ctrl-C before the hang
/// timeout: the encoder is found stuck at stop, killed, and its stream ended
/// for it; the mux finalizes a normal MP4 whose audio runs until the stop.
#[test]
fn a_hung_encoder_at_stop_has_its_stream_ended_and_the_mux_finalizes() {
    require_ffmpeg();
    let s = Scratch::new();
    let g = s.graph("g.yaml", &small_recording(""));
    let mut run = LiveRun::start(&s, &g, &[]);
    run.wait_for("started");
    let started = Instant::now();
    std::thread::sleep(Duration::from_millis(1500));
    run.signal_node("node-video-encode", libc::SIGSTOP);
    std::thread::sleep(Duration::from_millis(2500));
    let stop_at = started.elapsed().as_secs_f64();
    run.signal_runtime(libc::SIGINT);
    let r = run.finish();

    assert_eq!(r.code, Some(1), "{}", r.stderr);
    let error = r.report()["error"].as_str().unwrap_or_default().to_string();
    assert!(
        error.contains("node `video-encode` hung (no stats for"),
        "the run's error names the hung encoder: {error}"
    );
    assert!(
        r.stderr.contains("node `video-encode` HUNG"),
        "{}",
        r.stderr
    );
    let enc = r.node("video-encode");
    assert_eq!(enc["failed"], true);
    assert!(enc["hangs"].as_u64().unwrap() >= 1, "{enc}");
    // The mux finished by itself: not killed after the grace.
    let mux = r.node("mux");
    assert_eq!(mux["exit"], "exited normally", "{}", r.stderr);
    assert!(
        !r.stderr.contains("did not finish within the grace"),
        "{}",
        r.stderr
    );

    let out = s.path("out.mp4");
    let boxes: Vec<String> = top_level_boxes(&out)
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert!(
        !boxes.iter().any(|k| k == "moof"),
        "finalized, not fragments: {boxes:?}"
    );
    assert_eq!(faststart_problem(&out), None);
    assert_eq!(decode_errors(&out), "", "the recording decodes cleanly");
    let recover = Command::new(runtime_bin())
        .arg("recover")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&recover.stdout).contains("already"),
        "{}",
        String::from_utf8_lossy(&recover.stdout)
    );
    let p = probe(&out).unwrap();
    // The video ends where the encoder stopped; the audio goes on to the stop
    // (it waited behind the hung encoder and was let through once it was
    // killed), not just to the hang at 1.5 s.
    let audio = p.audio[0].end - p.audio[0].start;
    assert!(
        audio >= stop_at - 1.0,
        "audio plays {audio:.2} s of a recording stopped at {stop_at:.2} s"
    );
    assert!(p.video[0].frames() > 0, "{p:?}");
}

/// SIGSTOP of the mux with `--hang-timeout 2`: the hang shows in the log
/// and the status line, the mux is killed and restarted like a crash, and
/// the recording goes on in the next numbered file.
#[test]
fn a_node_hung_while_recording_is_restarted_after_the_hang_timeout() {
    require_ffmpeg();
    let s = Scratch::new();
    let g = s.graph("g.yaml", &small_recording(""));
    let mut run = LiveRun::start(&s, &g, &["--hang-timeout", "2", "--duration", "7"]);
    run.wait_for("started");
    std::thread::sleep(Duration::from_millis(1500));
    let stopped = run.signal_node("node-mux", libc::SIGSTOP);
    run.wait_for("node `mux` HUNG");
    wait_for_restart(&run, "node-mux", stopped);
    let r = run.finish();

    r.assert_ok();
    assert!(
        r.stderr.contains("node `mux` HUNG: no stats for"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("and was killed; restarting (1/3)"),
        "{}",
        r.stderr
    );
    let mux = r.node("mux");
    assert_eq!(mux["restarts"], 1, "{mux}");
    assert_eq!(mux["hangs"], 1, "{mux}");
    // Only the mux hung: the encoders it held up are not blamed.
    for other in ["sync", "video-encode", "audio-encode"] {
        assert_eq!(r.node(other)["hangs"], 0, "{other}: {}", r.stderr);
    }
    // Both parts are finished files; the second holds what came after the restart.
    for part in ["out.mp4", "out-001.mp4"] {
        let path = s.path(part);
        assert_eq!(faststart_problem(&path), None);
        assert_eq!(decode_errors(&path), "", "{part} decodes cleanly");
    }
    let p = probe(&s.path("out-001.mp4")).unwrap();
    assert!(
        p.video[0].frames() > 15 && p.audio[0].samples > 0,
        "the recording went on after the restart: {p:?}"
    );
}

/// SIGSTOP of video-encode with `--hang-timeout 2`: it is killed and
/// restarted, and the camera's shared-memory buffers the killed encoder held
/// are taken back (they would stay taken: a killed process never releases
/// them), so the camera goes on and the video continues after the restart.
#[test]
fn a_hung_encoder_is_restarted_and_the_video_goes_on() {
    require_ffmpeg();
    let s = Scratch::new();
    let g = s.graph("g.yaml", &small_recording(""));
    let mut run = LiveRun::start(&s, &g, &["--hang-timeout", "2", "--duration", "8"]);
    run.wait_for("started");
    std::thread::sleep(Duration::from_millis(1500));
    let stopped = run.signal_node("node-video-encode", libc::SIGSTOP);
    run.wait_for("node `video-encode` HUNG");
    wait_for_restart(&run, "node-video-encode", stopped);
    let r = run.finish();

    r.assert_ok();
    assert_eq!(r.node("video-encode")["restarts"], 1, "{}", r.stderr);
    // 8 s at 30 fps: about 2 s went by hung; the camera must not have
    // stalled for the rest of the run.
    let sent = r.node("camera")["frames_out"].as_u64().unwrap();
    assert!(
        sent > 8 * 30 * 2 / 3,
        "the camera stalled after the restart: {sent} frames"
    );
    // The restarted encoder's stream may go on in the same file or the next
    // part. About 1.5 s were recorded before the hang: without the camera's
    // buffers back, no more than that (and what was queued) would be.
    let frames: u64 = ["out.mp4", "out-001.mp4", "out-002.mp4"]
        .iter()
        .map(|part| s.path(part))
        .filter(|path| path.exists())
        .map(|path| probe(&path).unwrap().video[0].frames())
        .sum();
    assert!(
        frames > 8 * 30 / 2,
        "video recorded in all: {frames} frames"
    );
}

/// source → relay (crashes when its input ends) → sink.
fn crash_on_eos_chain(source: &str, sink: &str) -> String {
    format!(
        "nodes:
  - id: source
    path: {{testkit}}
    params: {source}
    outputs: [video]
  - id: relay
    path: {{testkit}}
    inputs: {{ video: source/video }}
    outputs: [video]
    params: {{ mode: relay, crash_on_eos: true }}
  - id: sink
    path: {{testkit}}
    inputs: {{ video: relay/video }}
    params: {sink}
"
    )
}

/// Ctrl-C while a second consumer of the source is still starting: the
/// source ends its stream, the relay dies on it without acknowledging, and
/// the source does not wait its release timeout for that acknowledgement:
/// the runtime gives it for the dead relay.
#[test]
fn a_graph_stopped_before_it_started_exits_without_waiting_for_dead_nodes() {
    let s = Scratch::new();
    let late = "  - id: late
    path: {testkit}
    inputs: { video: source/video }
    params: { mode: sink, start_delay_ms: 1500 }
";
    let g = s.graph(
        "g.yaml",
        &(crash_on_eos_chain("{ mode: source, count: 0, fps: 30 }", "{ mode: sink }") + late),
    );
    let mut run = LiveRun::start(&s, &g, &[]);
    run.wait_for("spawned");
    std::thread::sleep(Duration::from_millis(500));
    let t = Instant::now();
    run.signal_runtime(libc::SIGINT);
    let r = run.finish();
    let took = t.elapsed();
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert_eq!(r.report()["error"], "stopped before the graph started");
    let source_log = std::fs::read_to_string(s.path("run/logs/source.log")).unwrap();
    assert!(
        !source_log.contains("no end-of-stream acknowledgement"),
        "the source waited for the dead relay: {source_log}"
    );
    assert!(took < Duration::from_secs(8), "took {took:?}: {}", r.stderr);
}

/// The source fails at start; the relay crashes when the source's stream
/// ends, before the source has exited: the run's error is the source's.
#[test]
fn the_node_whose_failure_came_first_is_blamed() {
    let s = Scratch::new();
    let g = s.graph(
        "g.yaml",
        &crash_on_eos_chain("{ mode: fail }", "{ mode: sink }"),
    );
    let r = s.run(&g, &[]);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    let error = r.report()["error"].as_str().unwrap().to_string();
    assert!(
        error.starts_with("node `source` failed: exited with status 1"),
        "{error}"
    );
    assert!(error.contains("failing on purpose at start"), "{error}");
    assert!(r.stderr.contains("`source` is the cause"), "{}", r.stderr);
    // The relay's crash is still in the report.
    assert_eq!(r.node("relay")["failed"], true);
}
