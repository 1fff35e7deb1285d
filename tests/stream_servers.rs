//! The servers and peers the streaming tests use (tests/support/servers.rs,
//! tests/support/hls_player.rs), proved with the FFmpeg CLI as the
//! publisher: nginx records an RTMP (and RTMPS) publish as FLV with H.264
//! and AAC; frozen and resumed under a publisher, it loses nothing and the
//! publisher carries on; killed and restarted on the same port, the next
//! publish makes a second recording; srt-live-transmit receives an SRT
//! caller's MPEG-TS, with and without a passphrase, refuses a wrong or
//! missing one, and pulls from a listening publisher; nginx serves HLS
//! files with their media types, and Chromium plays an HLS playlist (fMP4
//! and TS segments) from it to its end with hls.js.
//!
//! Without nginx, srt-live-transmit, Node.js or Chromium a test says
//! SKIPPED and passes (`scripts/setup --test` installs them). Assertions
//! are on media and counters, not on wall time.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use graph_tests::hls_player::play_hls_in_browser;
use graph_tests::media::{probe, require_ffmpeg, run_tool, Probe};
use graph_tests::servers::{HttpServer, RtmpServer, SrtCaller, SrtListener};
use graph_tests::Scratch;

const FPS: u64 = 30;

/// `ffmpeg` encoding `seconds` of a 640×360 test picture at 30 fps and a
/// 440 Hz tone to H.264 (a keyframe a second) and AAC; `realtime` paces it
/// as a live source (-re). The output's options and the output follow.
fn encoder(seconds: u32, realtime: bool) -> Command {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-nostdin", "-v", "error"]);
    if realtime {
        cmd.arg("-re");
    }
    cmd.args(["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", &seconds.to_string()])
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-g", "30"])
        .args(["-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k"]);
    cmd
}

/// [`encoder`] publishing as `format` to `url`.
fn publisher(seconds: u32, realtime: bool, format: &str, url: &str) -> Command {
    let mut cmd = encoder(seconds, realtime);
    cmd.args(["-f", format, url]);
    cmd
}

fn output_of(child: Child) -> Output {
    child.wait_with_output().expect("ffmpeg ends")
}

/// The file has every frame of a `seconds` test publish: H.264 at 640×360
/// and AAC covering the same time.
fn assert_whole_publish(file: &Path, seconds: u64) -> Probe {
    let p = probe(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    assert_eq!(p.video.len(), 1, "{}: {p:?}", file.display());
    assert_eq!(p.audio.len(), 1, "{}: {p:?}", file.display());
    let (v, a) = (&p.video[0], &p.audio[0]);
    assert_eq!((v.codec.as_str(), a.codec.as_str()), ("h264", "aac"));
    assert_eq!((v.width, v.height), (640, 360));
    assert_eq!(v.frames(), seconds * FPS, "{}: every frame", file.display());
    let audio = a.samples as f64 / a.sample_rate as f64;
    // AAC comes in frames of 1024 samples: the last may be cut or padded.
    assert!((audio - seconds as f64).abs() < 0.05, "{audio} s of audio");
    p
}

#[test]
fn rtmp_publish_is_recorded_as_h264_and_aac() {
    require_ffmpeg();
    let s = Scratch::new();
    let Some(server) = RtmpServer::start(s.dir.path()) else {
        return;
    };
    let url = format!("{}/test", server.url());
    run_tool(&mut publisher(4, false, "flv", &url));
    let recordings = server.recordings();
    assert_eq!(recordings.len(), 1, "{recordings:?}\n{}", server.log());
    assert_whole_publish(&recordings[0], 4);
    let name = recordings[0].file_name().unwrap().to_string_lossy();
    assert!(
        name.starts_with("test-"),
        "named after the stream key: {name}"
    );
}

#[test]
fn rtmps_publish_is_recorded() {
    require_ffmpeg();
    let s = Scratch::new();
    let Some(server) = RtmpServer::start(s.dir.path()) else {
        return;
    };
    let Some(rtmps) = server.rtmps_url() else {
        graph_tests::servers::skip(
            "no RTMPS: nginx's stream module (libnginx-mod-stream) or openssl is missing",
        );
        return;
    };
    run_tool(&mut publisher(2, false, "flv", &format!("{rtmps}/secure")));
    let recordings = server.recordings();
    assert_eq!(recordings.len(), 1, "{recordings:?}\n{}", server.log());
    assert_whole_publish(&recordings[0], 2);
}

/// Waits until the server has a recording with media in it (the publish is on).
fn wait_for_recording(server: &RtmpServer) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !server
        .recordings()
        .last()
        .is_some_and(|f| f.metadata().is_ok_and(|m| m.len() > 50_000))
    {
        assert!(Instant::now() < deadline, "no recording:\n{}", server.log());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_frozen_rtmp_server_resumes_and_the_publisher_carries_on() {
    require_ffmpeg();
    let s = Scratch::new();
    let Some(server) = RtmpServer::start(s.dir.path()) else {
        return;
    };
    let url = format!("{}/frozen", server.url());
    let ffmpeg = publisher(6, true, "flv", &url)
        .stderr(Stdio::piped())
        .spawn()
        .expect("ffmpeg starts");
    wait_for_recording(&server);
    server.freeze();
    assert!(server.frozen());
    std::thread::sleep(Duration::from_secs(2));
    server.resume();
    assert!(!server.frozen());
    let out = output_of(ffmpeg);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the publisher failed:\n{stderr}");
    let recordings = server.recordings();
    assert_eq!(recordings.len(), 1, "one publish: {recordings:?}");
    assert_whole_publish(&recordings[0], 6);
}

#[test]
fn a_killed_rtmp_server_restarts_on_its_port_and_records_the_next_publish_apart() {
    require_ffmpeg();
    let s = Scratch::new();
    let Some(mut server) = RtmpServer::start(s.dir.path()) else {
        return;
    };
    let url = format!("{}/again", server.url());
    let ffmpeg = publisher(6, true, "flv", &url)
        .stderr(Stdio::piped())
        .spawn()
        .expect("ffmpeg starts");
    wait_for_recording(&server);
    // Past the publish's second: nginx names recordings by it.
    std::thread::sleep(Duration::from_millis(1100));
    server.kill();
    let out = output_of(ffmpeg);
    assert!(!out.status.success(), "the publisher saw its server die");
    eprintln!(
        "ffmpeg on the kill: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    server.restart();
    run_tool(&mut publisher(2, false, "flv", &url));
    let recordings = server.recordings();
    assert_eq!(recordings.len(), 2, "{recordings:?}\n{}", server.log());
    assert_eq!(server.publishes(), 2, "the log survives the restart");
    let first = probe(&recordings[0]).unwrap();
    assert!(
        first.video[0].frames() >= FPS,
        "the killed publish kept what it wrote"
    );
    assert_whole_publish(&recordings[1], 2);
}

/// An SRT caller URL for FFmpeg: `linger` makes it wait, on closing, until
/// the listener has acknowledged what it sent (live mode's default, 0,
/// drops the last half second still in its send buffer).
fn srt_caller_url(listener: &SrtListener, passphrase: Option<&str>) -> String {
    let mut url = format!("{}?mode=caller&pkt_size=1316&linger=5", listener.url());
    if let Some(p) = passphrase {
        url += &format!("&passphrase={p}");
    }
    url
}

#[test]
fn an_srt_listener_receives_a_callers_mpeg_ts() {
    require_ffmpeg();
    let s = Scratch::new();
    let Some(mut listener) = SrtListener::start(s.dir.path(), None) else {
        return;
    };
    run_tool(&mut publisher(
        4,
        true,
        "mpegts",
        &srt_caller_url(&listener, None),
    ));
    listener.stop();
    assert_eq!(listener.connections(), 1, "{}", listener.log());
    let p = assert_whole_publish(listener.output(), 4);
    assert_eq!(p.format_name, "mpegts");
}

const PASSPHRASE: &str = "correct-horse-battery";

/// FFmpeg calling `listener` with `passphrase`: what it printed, and
/// whether it succeeded.
fn call_with(listener: &SrtListener, passphrase: Option<&str>) -> (bool, String) {
    let url = srt_caller_url(listener, passphrase);
    let out = publisher(1, true, "mpegts", &url).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.success(), stderr)
}

#[test]
fn an_srt_listener_with_a_passphrase_refuses_a_wrong_or_missing_one() {
    require_ffmpeg();
    let s = Scratch::new();
    let Some(mut listener) = SrtListener::start(s.dir.path(), Some(PASSPHRASE)) else {
        return;
    };
    let (wrong_ok, wrong) = call_with(&listener, Some("wrong-horse-battery"));
    let (none_ok, none) = call_with(&listener, None);
    eprintln!("ffmpeg, wrong passphrase:\n{wrong}\nffmpeg, no passphrase:\n{none}");
    assert!(!wrong_ok && !none_ok, "refused callers fail");
    let log = listener.log();
    eprintln!("srt-live-transmit:\n{log}");
    assert!(log.contains("Incorrect passphrase"), "{log}");
    assert!(log.contains("Password required"), "{log}");
    assert_eq!(listener.connections(), 0, "nobody was let in");
    run_tool(&mut publisher(
        4,
        true,
        "mpegts",
        &srt_caller_url(&listener, Some(PASSPHRASE)),
    ));
    listener.stop();
    assert_eq!(listener.connections(), 1, "{}", listener.log());
    assert_whole_publish(listener.output(), 4);
}

#[test]
fn an_srt_caller_pulls_from_a_listening_publisher() {
    require_ffmpeg();
    let s = Scratch::new();
    let port = graph_tests::servers::free_udp_port();
    let url = format!("srt://127.0.0.1:{port}");
    let listening = format!("{url}?mode=listener&pkt_size=1316&linger=5&passphrase={PASSPHRASE}");
    // The caller first: it keeps calling until the publisher listens.
    let out = s.path("pulled.ts");
    let pulled = SrtCaller::pull(&format!("{url}?passphrase={PASSPHRASE}"), &out);
    let Some(mut caller) = pulled else {
        return;
    };
    let ffmpeg = publisher(4, true, "mpegts", &listening)
        .stderr(Stdio::piped())
        .spawn()
        .expect("ffmpeg starts");
    let published = output_of(ffmpeg);
    let stderr = String::from_utf8_lossy(&published.stderr);
    assert!(published.status.success(), "ffmpeg failed:\n{stderr}");
    caller.stop();
    assert!(
        caller.log().contains("SRT source connected"),
        "{}",
        caller.log()
    );
    assert_whole_publish(caller.output(), 4);
}

/// FFmpeg writes a 4 s VOD HLS playlist of `segment_type` segments (1 s
/// each) to `dir/hls/index.m3u8`.
fn write_hls(dir: &Path, segment_type: &str) {
    let hls = dir.join("hls");
    std::fs::create_dir_all(&hls).unwrap();
    let mut cmd = encoder(4, false);
    cmd.args(["-f", "hls", "-hls_time", "1", "-hls_playlist_type", "vod"])
        .args(["-hls_segment_type", segment_type])
        .arg(hls.join("index.m3u8"));
    run_tool(&mut cmd);
}

/// Chromium played the whole playlist: to its end, every frame decoded.
fn assert_plays_to_the_end(dir: &Path) {
    let Some(played) = play_hls_in_browser(dir, "hls/index.m3u8", &[]) else {
        return;
    };
    eprintln!("{}", played.json);
    assert!(played.fatal_errors().is_empty(), "{}", played.json);
    assert!(played.reached_end && !played.live, "{}", played.json);
    assert!((played.duration - 4.0).abs() < 0.1, "{}", played.json);
    // Every picture decoded, give or take a few at the end that the
    // `ended` event may beat into the counter.
    assert!(played.total_frames >= 4 * FPS - 5, "{}", played.json);
    assert_eq!(played.json["videoWidth"], 640, "{}", played.json);
}

#[test]
fn hls_with_fmp4_segments_plays_to_the_end_in_chromium() {
    require_ffmpeg();
    let s = Scratch::new();
    write_hls(s.dir.path(), "fmp4");
    assert_plays_to_the_end(s.dir.path());
}

#[test]
fn hls_with_ts_segments_plays_to_the_end_in_chromium() {
    require_ffmpeg();
    let s = Scratch::new();
    write_hls(s.dir.path(), "mpegts");
    assert_plays_to_the_end(s.dir.path());
}

#[test]
fn the_http_server_serves_hls_with_its_media_types() {
    let s = Scratch::new();
    let types = [
        ("index.m3u8", "application/vnd.apple.mpegurl"),
        ("seg0.ts", "video/mp2t"),
        ("seg0.m4s", "video/iso.segment"),
        ("init.mp4", "video/mp4"),
    ];
    for (name, _) in types {
        std::fs::write(s.path(name), name).unwrap();
    }
    let Some(server) = HttpServer::start(s.dir.path()) else {
        return;
    };
    for (name, want) in types {
        let mut response = ureq::get(server.url(name)).call().expect("served");
        let got = response.headers().get("content-type").cloned();
        assert_eq!(
            got.as_ref().map(|v| v.to_str().unwrap()),
            Some(want),
            "{name}"
        );
        assert_eq!(response.body_mut().read_to_string().unwrap(), name);
    }
}
