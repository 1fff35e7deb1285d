//! Timing fidelity, measured on the output: recordings of a clapperboard (a
//! white frame and a 1 kHz beep at every whole second) are decoded with
//! FFmpeg's filters and every clap's A/V offset is checked. Sources run
//! faster than real time, so ten minutes of media take seconds.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use graph_tests::claps::{beeps, claps, claps_of, describe, flashes, Clap};
use graph_tests::media::{decode_errors, probe, repo_graph, require_ffmpeg, run_to_end, Probe};
use graph_tests::{RunResult, Scratch};

/// A frame period at 30 fps, ms.
const FRAME_MS: f64 = 1000.0 / 30.0;

/// `--set` pairs for a small, fast recording from the graph's sources.
fn small(extra: &[String]) -> Vec<String> {
    let mut sets: Vec<String> = [
        "camera.width=160",
        "camera.height=120",
        "video-normalize.width=160",
        "video-normalize.height=120",
        "video-encode.speed=ultrafast",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    sets.extend(extra.iter().cloned());
    sets
}

/// Test sources with the clapper, not realtime, for `seconds` of media.
fn clapper_sources(seconds: u32) -> Vec<String> {
    [
        "camera.source=test",
        "microphone.source=test",
        "camera.realtime=false",
        "microphone.realtime=false",
        "camera.pattern=clapper",
        "microphone.pattern=clapper",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([
        format!("camera.duration={seconds}"),
        format!("microphone.duration={seconds}"),
    ])
    .collect()
}

/// Runs `graph` with the sets (ending by itself), into `out`.
fn record(s: &Scratch, graph: &str, sets: &[String], out: &Path) -> RunResult {
    let mut args = Vec::new();
    for set in sets
        .iter()
        .cloned()
        .chain([format!("mux.path={}", out.display())])
    {
        args.push("--set".to_string());
        args.push(set);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = run_to_end(
        s,
        &repo_graph(graph),
        &args,
        Duration::from_secs(300),
        "the end of its sources",
    );
    assert_eq!(decode_errors(out), "", "{} decodes cleanly", out.display());
    r
}

/// A no_drop clapperboard file made by FFmpeg alone (our nodes play no
/// part in the reference): 320x240 at 30 fps, white on every whole second,
/// and a 50 ms 1 kHz beep starting on every whole second.
fn clapper_file(s: &Scratch, seconds: u32) -> PathBuf {
    let path = s.path("clapper.mkv");
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!(
            "color=c=0x404040:s=320x240:r=30:d={seconds},format=yuv420p,geq=lum='if(lt(mod(N\\,30)\\,1)\\,235\\,64)':cb=128:cr=128"
        ))
        .args(["-f", "lavfi", "-i"])
        .arg(format!(
            "aevalsrc=if(lt(mod(t\\,1)\\,0.05)\\,0.25*sin(2*PI*1000*t)\\,0):s=48000:c=stereo:d={seconds}"
        ))
        .args(["-c:v", "ffv1", "-c:a", "pcm_s16le"])
        .arg(&path)
        .status()
        .expect("ffmpeg runs");
    assert!(status.success(), "ffmpeg made the clapper file");
    path
}

/// Replaying a clapper file through the recording graphs keeps every clap
/// within 5 ms, whatever the codec's priming (AAC), padding (MP3) or
/// pre-skip (Opus).
#[test]
fn file_replay_keeps_every_clap_within_5_ms() {
    require_ffmpeg();
    let s = Scratch::new();
    let input = clapper_file(&s, 6);
    let file = |what: &str| format!("{what}.source=file:{}", input.display());
    let replay = vec![
        file("camera"),
        file("microphone"),
        "camera.realtime=false".into(),
        "microphone.realtime=false".into(),
    ];
    let cases = [
        ("1080p.yaml", "aac.mp4", vec![]),
        ("1080p.yaml", "mp3.mp4", vec!["audio-encode.codec=mp3"]),
        ("1080p.yaml", "opus.mkv", vec!["audio-encode.codec=opus"]),
        (
            "webm.yaml",
            "opus.webm",
            vec!["video-encode.speed=ultrafast"],
        ),
    ];
    let mut failures = Vec::new();
    for (graph, name, extra) in cases {
        let mut sets = replay.clone();
        sets.extend(extra.iter().map(|s| s.to_string()));
        if graph == "1080p.yaml" {
            sets = small(&sets);
        } else {
            sets.extend(
                ["video-normalize.width=160", "video-normalize.height=120"].map(String::from),
            );
        }
        let out = s.path(name);
        record(&s, graph, &sets, &out);
        let found = claps(&out);
        let worst = found.iter().map(|c| c.offset_ms.abs()).fold(0.0, f64::max);
        if found.len() != 6 || worst > 5.0 {
            failures.push(format!(
                "{name}: {} claps of 6, worst {worst:.1} ms: {}",
                found.len(),
                describe(&found)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Ten minutes with the audio device's clock 500 ppm fast, then slow: the
/// drift is measured, followed by resampling, and the last clap is within
/// one frame of the first (uncorrected, it would be 300 ms off).
#[test]
fn drifting_audio_clocks_are_followed_for_ten_minutes() {
    require_ffmpeg();
    let s = Scratch::new();
    for ppm in [500, -500] {
        let out = s.path(&format!("drift{ppm}.mp4"));
        let mut sets = small(&clapper_sources(600));
        sets.push(format!("microphone.clock_skew_ppm={ppm}"));
        let r = record(&s, "1080p.yaml", &sets, &out);
        let found = claps(&out);
        assert!(
            found.len() >= 598,
            "{ppm} ppm: {} claps of 600",
            found.len()
        );
        let (first, last) = (found[0], found[found.len() - 1]);
        assert!(
            (last.offset_ms - first.offset_ms).abs() <= FRAME_MS,
            "{ppm} ppm: first clap {first:?}, last {last:?}"
        );
        let worst = found.iter().map(|c| c.offset_ms.abs()).fold(0.0, f64::max);
        assert!(
            worst <= FRAME_MS / 2.0,
            "{ppm} ppm: worst clap {worst:.1} ms"
        );
        let m = &r.node("sync")["stats"]["metrics"];
        let estimated = m["drift_ppm"].as_f64().unwrap();
        assert!(
            (estimated - ppm as f64).abs() < 10.0,
            "{ppm} ppm estimated as {estimated}"
        );
        // Followed smoothly: no hard resync, no silence, no trims.
        assert_eq!(m["audio_clock_jumps"], 0.0, "{m}");
        assert_eq!(m["audio_gap_fills"], 0.0, "{m}");
        assert_eq!(m["audio_overlap_trims"], 0.0, "{m}");
    }
}

/// A camera and two microphones, each its own track: clapper test sources
/// not paced in real time, each microphone's clock skewed by its own ppm.
const TWO_MICROPHONES: &str = r#"
name: two-microphones
vars:
  seconds: 10
  skew1: 0
  skew2: 0
nodes:
  - id: camera
    node: camera
    params: {source: test, pattern: clapper, realtime: false, duration: "${seconds}", width: 160, height: 120, fps: 30}
  - id: mic1
    node: microphone
    params: {source: test, pattern: clapper, realtime: false, duration: "${seconds}", clock_skew_ppm: "${skew1}"}
  - id: mic2
    node: microphone
    params: {source: test, pattern: clapper, realtime: false, duration: "${seconds}", clock_skew_ppm: "${skew2}"}
  - id: video-normalize
    node: video-normalize
    inputs: {video: camera/video}
    params: {width: 160, height: 120, fps: 30, pixel_format: yuv420p}
  - id: sync
    node: sync
    inputs: {video: video-normalize/video, audio: mic1/audio, audio2: mic2/audio}
  - id: video-encode
    node: video-encode
    inputs: {video: sync/video}
    params: {codec: h264, speed: ultrafast}
  - id: audio-encode1
    node: audio-encode
    inputs: {audio: sync/audio}
  - id: audio-encode2
    node: audio-encode
    inputs: {audio: sync/audio2}
  - id: mux
    node: mux
    inputs: {video: video-encode/video, mic1: audio-encode1/audio, mic2: audio-encode2/audio}
    params: {path: "{dir}/two-mics.mkv"}
"#;

/// Two microphones on two crystals, +300 and −300 ppm against the camera,
/// ten minutes of media: each audio track's drift is measured and corrected
/// on its own, and every beep of both tracks at the end is within 1 ms of
/// its flash (uncorrected they would be 180 ms early and late).
#[test]
fn two_microphones_on_their_own_clocks_stay_on_the_flash() {
    require_ffmpeg();
    let s = Scratch::new();
    let graph = s.graph("two-mics.yaml", TWO_MICROPHONES);
    let r = run_to_end(
        &s,
        &graph,
        &[
            "--set",
            "seconds=600",
            "--set",
            "skew1=300",
            "--set",
            "skew2=-300",
        ],
        Duration::from_secs(600),
        "the end of its sources",
    );
    let out = s.path("two-mics.mkv");
    assert_eq!(decode_errors(&out), "", "the file decodes cleanly");
    let m = &r.node("sync")["stats"]["metrics"];
    for (track, (input, ppm)) in [("audio", 300.0), ("audio2", -300.0)]
        .into_iter()
        .enumerate()
    {
        let found = claps_of(&out, track);
        assert!(found.len() >= 598, "{input}: {} claps of 600", found.len());
        let last: Vec<Clap> = found.iter().rev().take(10).copied().collect();
        let worst = last.iter().map(|c| c.offset_ms.abs()).fold(0.0, f64::max);
        println!("{input} ({ppm:+} ppm): last claps {}", describe(&last));
        assert!(
            worst <= 1.0,
            "{input} ({ppm:+} ppm): the last claps are {} ms off: {}",
            worst,
            describe(&last)
        );
        let estimated = m[format!("track_drift_ppm_{input}")].as_f64().unwrap();
        assert!(
            (estimated - ppm).abs() < 10.0,
            "{input}: {ppm} ppm estimated as {estimated}: {m}"
        );
    }
    assert_eq!(m["audio_clock_jumps"], 0.0, "{m}");
    assert_eq!(m["audio_gap_fills"], 0.0, "{m}");
    assert_eq!(m["audio_overlap_trims"], 0.0, "{m}");
}

/// 20 s of clapper sources through the 1080p graph with audio-normalize
/// given `normalize` (params), into `name`: every clap within 5 ms and all
/// 20 s of audio in the file. The run and the file's probe.
fn loudness_keeps_claps(
    s: &Scratch,
    name: &str,
    normalize: &[&str],
    extra: &[&str],
) -> (RunResult, Probe) {
    let out = s.path(name);
    let mut sets = small(&clapper_sources(20));
    sets.extend(normalize.iter().map(|p| format!("audio-normalize.{p}")));
    sets.extend(extra.iter().map(|set| set.to_string()));
    let r = record(s, "1080p.yaml", &sets, &out);
    let found = claps(&out);
    assert_eq!(found.len(), 20, "{}", describe(&found));
    let worst = found.iter().map(|c| c.offset_ms.abs()).fold(0.0, f64::max);
    assert!(
        worst <= 5.0,
        "worst clap {worst:.1} ms: {}",
        describe(&found)
    );
    let p = probe(&out).unwrap();
    let audio = p.audio[0].end - p.audio[0].start;
    assert!(
        (audio - 20.0).abs() <= 0.05,
        "{audio} s of audio: none lost"
    );
    (r, p)
}

/// Loudness normalization looking 2 s ahead delays the audio by 2 s on its
/// way to sync: its capture times stay true, so every clap stays in place.
#[test]
fn a_loudness_look_ahead_keeps_every_clap_in_place() {
    require_ffmpeg();
    let s = Scratch::new();
    loudness_keeps_claps(
        &s,
        "lookahead.mp4",
        &["target_lufs=-23", "lookahead_s=2"],
        &["sync.buffer_ms=3000"],
    );
}

/// Two-pass loudness holds the whole replayed audio until its end while
/// the camera's frames wait at sync (no_drop streams are paced, not
/// dropped): the file still has every frame and every clap in place.
#[test]
fn two_pass_loudness_through_sync_keeps_every_frame_and_clap() {
    require_ffmpeg();
    let s = Scratch::new();
    let (r, p) = loudness_keeps_claps(
        &s,
        "two-pass.mp4",
        &["target_lufs=-23", "mode=two-pass"],
        &[],
    );
    assert_eq!(p.video[0].frames(), 600, "every frame");
    assert_eq!(r.node("sync")["stats"]["metrics"]["dropped"], 0.0);
}

/// ±10 ms of timestamp jitter on both sources: every clap stays within half
/// a frame, and the jitter is not mistaken for drift.
#[test]
fn timestamp_jitter_keeps_claps_within_half_a_frame() {
    require_ffmpeg();
    let s = Scratch::new();
    let out = s.path("jitter.mp4");
    let mut sets = small(&clapper_sources(60));
    sets.extend(["camera.jitter_ms=10", "microphone.jitter_ms=10"].map(String::from));
    let r = record(&s, "1080p.yaml", &sets, &out);
    let found = claps(&out);
    assert!(
        found.len() >= 59,
        "{} claps: {}",
        found.len(),
        describe(&found)
    );
    let worst = found.iter().map(|c| c.offset_ms.abs()).fold(0.0, f64::max);
    assert!(
        worst <= FRAME_MS / 2.0,
        "worst clap {worst:.1} ms: {}",
        describe(&found)
    );
    let m = &r.node("sync")["stats"]["metrics"];
    assert!(m["drift_ppm"].as_f64().unwrap().abs() < 50.0, "{m}");
    // Nothing filled or cut: jitter is within the tolerance.
    assert_eq!(m["audio_gap_fills"], 0.0, "{m}");
    assert_eq!(m["audio_clock_jumps"], 0.0, "{m}");
}

/// A 2 s audio dropout at 3 s: the video runs on, the two beeps inside the
/// dropout are gone, the gap is silence of the right length and the audio
/// after it is in sync again.
#[test]
fn an_audio_dropout_becomes_silence_and_sync_resumes() {
    require_ffmpeg();
    let s = Scratch::new();
    let out = s.path("dropout.mp4");
    let mut sets = small(&clapper_sources(9));
    sets.extend(["microphone.dropout_at=2.5", "microphone.dropout_ms=2000"].map(String::from));
    let r = record(&s, "1080p.yaml", &sets, &out);
    let p = probe(&out).unwrap();
    assert_eq!(p.video[0].frames(), 270, "the video runs on");
    let audio = &p.audio[0];
    let lasts = audio.end - audio.start;
    assert!(
        (lasts - 9.0).abs() <= 0.03,
        "audio lasts {lasts} s: the gap is filled"
    );
    let m = &r.node("sync")["stats"]["metrics"];
    let filled = m["audio_gap_fills"].as_f64().unwrap();
    assert!(
        (filled - 96_000.0).abs() <= 1024.0,
        "{filled} samples of silence for 2 s lost: {m}"
    );
    assert_eq!(flashes(&out).len(), 9);
    let heard = beeps(&out);
    let lost: Vec<f64> = heard
        .iter()
        .copied()
        .filter(|t| (2.5..4.5).contains(t))
        .collect();
    assert!(lost.is_empty(), "beeps inside the dropout: {lost:?}");
    let found = claps(&out);
    let seconds: Vec<i64> = found.iter().map(|c| c.at.round() as i64).collect();
    assert_eq!(seconds, [0, 1, 2, 5, 6, 7, 8], "{}", describe(&found));
    let worst = found.iter().map(|c| c.offset_ms.abs()).fold(0.0, f64::max);
    assert!(worst <= 5.0, "{}", describe(&found));
}

/// Test sources replaying faster than real time, stopped by `--duration`
/// rather than by their own end: sync keeps the cheap audio from racing
/// ahead of the video, so the file holds as much sound as picture (within
/// the pacing window, half of sync's 500 ms buffer, plus what was in flight;
/// unpaced, the audio ran 4× ahead).
#[test]
fn replayed_sources_stopped_mid_stream_keep_sound_and_picture_together() {
    require_ffmpeg();
    let s = Scratch::new();
    let out = s.path("paced.mp4");
    let mut args: Vec<String> = small(&[
        "camera.source=test".into(),
        "microphone.source=test".into(),
        "camera.realtime=false".into(),
        "microphone.realtime=false".into(),
        format!("mux.path={}", out.display()),
    ])
    .into_iter()
    .flat_map(|set| ["--set".to_string(), set])
    .collect();
    args.extend(["--duration".into(), "4".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = s.run(&repo_graph("1080p.yaml"), &args);
    r.assert_ok();
    assert_eq!(decode_errors(&out), "");
    let p = probe(&out).unwrap();
    let (video, audio) = (p.video[0].span(), p.audio[0].end - p.audio[0].start);
    assert!(video > 4.0, "faster than real time: {video:.2} s of video");
    assert!(
        (video - audio).abs() < 1.0,
        "{video:.2} s of video, {audio:.2} s of audio"
    );
}
