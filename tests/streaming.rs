//! Streaming outputs against real servers: one recording graph of clapper
//! test sources whose encoders feed the mux and, at once, an RTMP push to
//! nginx (and RTMPS through nginx's TLS front), an SRT caller to
//! srt-live-transmit and an HLS directory played by hls.js in Chromium.
//! What each server received is pulled back and checked with ffprobe and
//! ffmpeg: codecs, duration, every clap within 5 ms, no decode error; the
//! stream key appears nowhere. Then the faults: a server frozen (SIGSTOP)
//! for 5 s, a server killed and restarted, a server killed for good, a
//! wrong SRT passphrase, an unreachable host, bad URLs and directories.
//! The recording keeps every frame through all of them.
//!
//! Without nginx, srt-live-transmit, Node.js or Chromium a test says
//! SKIPPED (`scripts/setup --test` installs them). Assertions are on media
//! and counters; sleeps only place the faults.

use std::path::{Path, PathBuf};
use std::time::Duration;

use graph_tests::claps::{claps, describe};
use graph_tests::hls_player::play_hls_in_browser;
use graph_tests::live::{recording_with, LiveRun};
use graph_tests::media::{decode_errors, probe, require_ffmpeg};
use graph_tests::servers::{RtmpServer, SrtCaller, SrtListener};
use graph_tests::{RunResult, Scratch};

const KEY: &str = "k3y-never-shown";

/// The recording chain at 160×120 from live clapper sources, a keyframe a
/// second (a stream starts and resumes on one), with `outputs` (YAML node
/// entries) fed by the same encoders.
fn graph_with(outputs: &str) -> String {
    let chain = recording_with(
        160,
        120,
        "{ speed: ultrafast, keyframe_interval: 1 }",
        "",
        ", pattern: clapper",
        "",
    );
    format!("{chain}{outputs}")
}

/// A `stream` node entry fed by both encoders.
fn stream_node(id: &str, params: &str) -> String {
    stream_node_from(id, "video-encode", params)
}

/// A `stream` node entry fed by `video` (an encoder) and the audio encoder.
fn stream_node_from(id: &str, video: &str, params: &str) -> String {
    format!(
        "  - id: {id}
    node: stream
    inputs: {{ video: {video}/video, audio: audio-encode/audio }}
    params: {{ {params} }}
"
    )
}

/// Every clap of `file` within 5 ms, and at least `min` of them.
fn assert_claps(file: &Path, min: usize) {
    let found = claps(file);
    assert!(
        found.len() >= min,
        "{}: {}",
        file.display(),
        describe(&found)
    );
    for c in &found {
        assert!(
            c.offset_ms.abs() <= 5.0,
            "{}: {}",
            file.display(),
            describe(&found)
        );
    }
}

/// A file the streams delivered: H.264 + AAC, decoding cleanly, spanning
/// the recording within `tolerance` seconds, claps in sync.
fn assert_delivered(file: &Path, recorded: &Recorded, tolerance: f64) {
    let recording = recorded.seconds;
    assert_eq!(decode_errors(file), "", "{}", file.display());
    let p = probe(file).unwrap();
    assert_eq!(p.video[0].codec, "h264", "{}", file.display());
    assert_eq!(p.audio[0].codec, "aac", "{}", file.display());
    let span = p.video[0].span();
    assert!(
        (span - recording).abs() <= tolerance,
        "{}: {span:.3} s of video, the recording {recording:.3} s",
        file.display()
    );
    assert_eq!(
        p.video[0].holes(),
        recorded.holes,
        "{}: frames missing",
        file.display()
    );
    assert_claps(file, (recording as usize).saturating_sub(2));
}

/// The recording's video: every frame sync sent, nothing dropped from the
/// encoders on (where the outputs take their packets: a stalled output
/// would show there). A hole in the file can only be a gap sync counted
/// upstream of them (a live source starved of CPU on a loaded machine).
fn recording(s: &Scratch, run: &RunResult) -> Recorded {
    let p = probe(&s.path("out.mp4")).unwrap();
    let v = &p.video[0];
    let gaps = metric(run, "sync", "video_gaps") as i64;
    assert_eq!(
        v.holes(),
        gaps,
        "the recording misses frames sync sent: {:?}\nsync: {}",
        v.pts,
        run.node("sync")
    );
    for node in ["video-encode", "audio-encode", "mux"] {
        assert_eq!(run.node(node)["dropped"], 0, "{node}: {}", run.node(node));
        assert_eq!(run.node(node)["lost"], 0, "{node}: {}", run.node(node));
    }
    Recorded {
        seconds: v.span(),
        holes: v.holes(),
    }
}

/// What the recording holds: its video's span, and the slots sync left
/// empty (0 on a machine that keeps up).
struct Recorded {
    seconds: f64,
    holes: i64,
}

fn metric(run: &RunResult, node: &str, name: &str) -> f64 {
    run.node(node)["stats"]["metrics"][name]
        .as_f64()
        .unwrap_or_else(|| panic!("{node} has no metric {name}: {}", run.node(node)))
}

/// The key appears in no output of the run: stderr, the report, the logs.
fn assert_key_hidden(s: &Scratch, run: &RunResult) {
    assert!(!run.stderr.contains(KEY), "the key is on stderr");
    assert!(
        !run.report().to_string().contains(KEY),
        "the key is in the report"
    );
    for log in files_under(&s.path("run")) {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(!text.contains(KEY), "the key is in {}", log.display());
    }
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// One graph, one encode, four outputs at once besides the recording:
/// RTMP, RTMPS, SRT and HLS each get all of it, in sync.
#[test]
fn record_and_stream_everywhere_from_one_encode() {
    require_ffmpeg();
    let _turn = graph_tests::one_at_a_time();
    let s = Scratch::new();
    let Some(rtmp) = RtmpServer::start(&s.path("nginx")) else {
        return;
    };
    let Some(mut srt) = SrtListener::start(s.dir.path(), Some("srt-pass-phrase")) else {
        return;
    };
    let mut outputs = stream_node("rtmp", &format!("url: '{}', key: {KEY}", rtmp.url()));
    if let Some(url) = rtmp.rtmps_url() {
        outputs += &stream_node("rtmps", &format!("url: '{url}', key: {KEY}-tls"));
    }
    outputs += &stream_node(
        "srt",
        &format!("url: '{}', passphrase: srt-pass-phrase", srt.url()),
    );
    outputs += "  - id: hls
    node: hls
    inputs: { video: video-encode/video, audio: audio-encode/audio }
    params: { dir: '{dir}/hls', segment_type: fmp4, segment_duration: 1, list_size: 0 }
  - id: hls-live
    node: hls
    inputs: { video: video-encode/video, audio: audio-encode/audio }
    params: { dir: '{dir}/live', segment_type: ts, segment_duration: 1, list_size: 2 }
";
    let graph = s.graph("everywhere.yaml", &graph_with(&outputs));
    let run = s.run(&graph, &["--duration", "6"]);
    run.assert_ok();
    srt.stop();
    let recorded = recording(&s, &run);
    let flvs = rtmp.recordings();
    assert_eq!(
        flvs.len(),
        1 + rtmp.rtmps_url().is_some() as usize,
        "{flvs:?}"
    );
    for flv in &flvs {
        assert_delivered(flv, &recorded, 0.1);
    }
    assert_delivered(srt.output(), &recorded, 0.1);
    let hls = s.path("hls").join("index.m3u8");
    assert_delivered(&hls, &recorded, 0.1);
    for id in ["rtmp", "srt", "hls"] {
        assert_eq!(metric(&run, id, "dropped"), 0.0, "{id}");
        assert_eq!(metric(&run, id, "lost_s"), 0.0, "{id}");
    }
    assert_eq!(metric(&run, "rtmp", "reconnects"), 0.0);
    assert_key_hidden(&s, &run);
    assert_rolling(&s.path("live"), 2);
    let Some(play) = play_hls_in_browser(&s.path("hls"), "index.m3u8", &[]) else {
        return;
    };
    assert!(play.reached_end, "hls.js: {}", play.json);
    assert!(
        play.total_frames > 0,
        "hls.js decoded nothing: {}",
        play.json
    );
    assert!(play.fatal_errors().is_empty(), "hls.js: {}", play.json);
}

/// A rolling playlist: `list_size` segments listed, the older ones gone
/// from the directory, what is listed playable.
fn assert_rolling(dir: &Path, list_size: usize) {
    let playlist = std::fs::read_to_string(dir.join("index.m3u8")).unwrap();
    let listed = playlist.lines().filter(|l| l.ends_with(".ts")).count();
    assert_eq!(listed, list_size, "{playlist}");
    assert!(!playlist.contains("#EXT-X-MEDIA-SEQUENCE:0"), "{playlist}");
    let files = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "ts"))
        .count();
    // FFmpeg deletes a segment once it is one past the list.
    assert!(files <= list_size + 1, "{files} segment files");
    assert_eq!(decode_errors(&dir.join("index.m3u8")), "");
}

/// A ladder: the stream gets its own scaler and encoder (a smaller
/// picture) from sync's frames, beside the recording's encoder; both in sync.
#[test]
fn a_ladder_streams_another_size_from_the_same_capture() {
    require_ffmpeg();
    let _turn = graph_tests::one_at_a_time();
    let s = Scratch::new();
    let Some(rtmp) = RtmpServer::start(&s.path("nginx")) else {
        return;
    };
    let outputs = format!(
        "  - id: stream-scale
    node: video-normalize
    inputs: {{ video: sync/video }}
    params: {{ width: 96, height: 72, fps: 30 }}
  - id: stream-encode
    node: video-encode
    inputs: {{ video: stream-scale/video }}
    params: {{ speed: ultrafast, keyframe_interval: 1, bitrate: 200k }}
{}",
        stream_node_from(
            "stream",
            "stream-encode",
            &format!("url: '{}', key: {KEY}", rtmp.url())
        )
    );
    let graph = s.graph("ladder.yaml", &graph_with(&outputs));
    let run = s.run(&graph, &["--duration", "5"]);
    run.assert_ok();
    let recorded = recording(&s, &run);
    let flv = &rtmp.recordings()[0];
    let p = probe(flv).unwrap();
    assert_eq!((p.video[0].width, p.video[0].height), (96, 72));
    assert_delivered(flv, &recorded, 0.1);
}

/// SRT as the listener: a caller pulls the stream.
#[test]
fn srt_listener_serves_a_caller() {
    require_ffmpeg();
    let _turn = graph_tests::one_at_a_time();
    let s = Scratch::new();
    let port = graph_tests::servers::free_udp_port();
    let Some(mut caller) =
        SrtCaller::pull(&format!("srt://127.0.0.1:{port}"), &s.path("pulled.ts"))
    else {
        return;
    };
    let outputs = stream_node("stream", &format!("url: 'srt://:{port}', mode: listener"));
    let graph = s.graph("listener.yaml", &graph_with(&outputs));
    let run = s.run(&graph, &["--duration", "6"]);
    run.assert_ok();
    caller.stop();
    let recorded = recording(&s, &run);
    // The caller connects when the listener is up: the stream starts at the
    // first keyframe after that, up to a second after the recording's start.
    let p = probe(&s.path("pulled.ts")).unwrap();
    assert_eq!(decode_errors(&s.path("pulled.ts")), "");
    assert!(
        p.video[0].span() > recorded.seconds - 1.5,
        "{:.2} s",
        p.video[0].span()
    );
    assert_claps(&s.path("pulled.ts"), 3);
}

/// A server that stops reading for 5 s: the recording keeps every frame,
/// and the stream delivers everything once it reads again (its queue and
/// the sockets hold the 5 s) or reports what it dropped.
#[test]
fn a_frozen_server_costs_the_recording_nothing() {
    require_ffmpeg();
    let _turn = graph_tests::one_at_a_time();
    let s = Scratch::new();
    let Some(rtmp) = RtmpServer::start(&s.path("nginx")) else {
        return;
    };
    let outputs = stream_node(
        "stream",
        &format!("url: '{}', key: {KEY}, write_timeout: 2", rtmp.url()),
    );
    let graph = s.graph("frozen.yaml", &graph_with(&outputs));
    let mut live = LiveRun::start(&s, &graph, &["--duration", "14"]);
    live.wait_for("/***: connected");
    std::thread::sleep(Duration::from_secs(3));
    rtmp.freeze();
    std::thread::sleep(Duration::from_secs(5));
    rtmp.resume();
    let run = live.finish();
    run.assert_ok();
    let recorded = recording(&s, &run).seconds;
    assert!(recorded > 13.0, "{recorded}");
    let lost = metric(&run, "stream", "lost_s");
    let flvs = rtmp.recordings();
    let delivered: f64 = flvs.iter().map(|f| probe(f).unwrap().video[0].span()).sum();
    // What reached the server and what the stream reports as not sent add
    // up to the recording (a reconnection restarts on a keyframe).
    assert!(
        (delivered + lost - recorded).abs() <= 1.1,
        "delivered {delivered:.2} s + unsent {lost:.2} s vs recorded {recorded:.2} s"
    );
    for f in &flvs {
        assert_eq!(decode_errors(f), "", "{}", f.display());
    }
}

/// A server killed mid-stream and started again 3 s later: the stream
/// reconnects and says what the outage cost; the recording is whole.
#[test]
fn a_killed_server_is_reconnected_and_the_outage_reported() {
    require_ffmpeg();
    let _turn = graph_tests::one_at_a_time();
    let s = Scratch::new();
    let Some(mut rtmp) = RtmpServer::start(&s.path("nginx")) else {
        return;
    };
    let outputs = stream_node(
        "stream",
        &format!("url: '{}', key: {KEY}, retry_delay: 0.5", rtmp.url()),
    );
    let graph = s.graph("killed.yaml", &graph_with(&outputs));
    let mut live = LiveRun::start(&s, &graph, &["--duration", "12"]);
    live.wait_for("/***: connected");
    std::thread::sleep(Duration::from_secs(3));
    rtmp.kill();
    live.wait_for("connection lost");
    std::thread::sleep(Duration::from_secs(2));
    rtmp.restart();
    live.wait_for("reconnected after");
    let run = live.finish();
    run.assert_ok();
    let recorded = recording(&s, &run).seconds;
    assert!(metric(&run, "stream", "reconnects") >= 1.0);
    assert!(metric(&run, "stream", "outage_s") > 0.0);
    let lost = metric(&run, "stream", "lost_s");
    assert!(lost > 0.0, "an outage loses media");
    assert!(rtmp.publishes() >= 2, "{}", rtmp.log());
    let delivered: f64 = rtmp
        .recordings()
        .iter()
        .map(|f| probe(f).unwrap().video[0].span())
        .sum();
    assert!(
        (delivered + lost - recorded).abs() <= 1.5,
        "delivered {delivered:.2} s + unsent {lost:.2} s vs recorded {recorded:.2} s"
    );
    for f in rtmp.recordings() {
        assert_eq!(decode_errors(&f), "", "{}", f.display());
    }
}

/// A server that dies for good: the run ends with exit 1 naming the
/// stream and why; the recording is complete.
#[test]
fn a_stream_down_at_the_end_fails_the_run_but_not_the_recording() {
    require_ffmpeg();
    let _turn = graph_tests::one_at_a_time();
    let s = Scratch::new();
    let Some(mut rtmp) = RtmpServer::start(&s.path("nginx")) else {
        return;
    };
    let outputs = stream_node("stream", &format!("url: '{}', key: {KEY}", rtmp.url()));
    let graph = s.graph("dies.yaml", &graph_with(&outputs));
    let mut live = LiveRun::start(&s, &graph, &["--duration", "8"]);
    live.wait_for("/***: connected");
    std::thread::sleep(Duration::from_secs(2));
    rtmp.kill();
    let run = live.finish();
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        run.stderr.contains("node `stream` failed"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("down at the end"), "{}", run.stderr);
    assert!(recording(&s, &run).seconds > 7.0);
    assert!(!run.stderr.contains(KEY));
}

/// Causes that show only once running: a wrong SRT passphrase, a host
/// that refuses: exit 1 naming the stream and the cause; the recording is
/// whole.
#[test]
fn refused_connections_name_their_cause() {
    require_ffmpeg();
    let _turn = graph_tests::one_at_a_time();
    let s = Scratch::new();
    let Some(srt) = SrtListener::start(s.dir.path(), Some("the-right-phrase")) else {
        return;
    };
    let closed = graph_tests::servers::free_tcp_port();
    let mut outputs = stream_node(
        "srt",
        &format!("url: '{}', passphrase: a-wrong-phrase", srt.url()),
    );
    outputs += &stream_node("rtmp", &format!("url: 'rtmp://127.0.0.1:{closed}/live'"));
    let graph = s.graph("refused.yaml", &graph_with(&outputs));
    let run = s.run(&graph, &["--duration", "4"]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stderr.contains("never connected"), "{}", run.stderr);
    assert!(run.stderr.contains("passphrase"), "{}", run.stderr);
    assert!(
        srt.log().contains("passphrase") || srt.log().contains("Password"),
        "{}",
        srt.log()
    );
    assert!(recording(&s, &run).seconds > 3.0);
}

/// Known before the start: exit 2 naming the file, line, node and param.
#[test]
fn bad_urls_and_directories_are_refused_before_the_start() {
    let s = Scratch::new();
    let cases = [
        (stream_node("stream", "url: 'http://example.com/live'"), "cannot stream to `http://`"),
        (stream_node("stream", "url: 'srt://host'"), "has no port"),
        (stream_node("stream", "url: 'rtmp://h/app', passphrase: 0123456789"), "`passphrase` is SRT's"),
        (
            "  - id: hls\n    node: hls\n    inputs: { video: video-encode/video }\n    params: { dir: /proc/self/hls }\n".to_string(),
            "not writable",
        ),
    ];
    for (i, (outputs, expected)) in cases.iter().enumerate() {
        let graph = s.graph(&format!("bad{i}.yaml"), &graph_with(outputs));
        let run = s.run(&graph, &["--duration", "2"]);
        assert_eq!(run.code, Some(2), "{expected}: {}", run.stderr);
        assert!(run.stderr.contains(expected), "{expected}: {}", run.stderr);
        assert!(
            run.stderr.contains(&format!("bad{i}.yaml:")),
            "{}",
            run.stderr
        );
        assert!(!s.path("out.mp4").exists(), "nothing may start");
    }
    let h265 = graph_with(&stream_node("stream", "url: 'rtmp://h/app'"))
        .replace("speed: ultrafast,", "codec: h265, speed: ultrafast,");
    let run = s.run(&s.graph("h265.yaml", &h265), &["--duration", "2"]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr.contains("h265 cannot go in flv"),
        "{}",
        run.stderr
    );
}

/// `runtime nodes stream` documents every param.
#[test]
fn every_param_is_documented() {
    let out = std::process::Command::new(graph_tests::runtime_bin())
        .args(["nodes", "stream"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for p in node_catalog::kind("stream").unwrap().params {
        assert!(text.contains(p.name), "{} missing:\n{text}", p.name);
    }
    let hls = std::process::Command::new(graph_tests::runtime_bin())
        .args(["nodes", "hls"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&hls.stdout).contains("list_size"));
}
