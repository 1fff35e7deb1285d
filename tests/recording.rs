//! Recording end to end: the repository's graphs (graphs/*.yaml) run by the
//! real `runtime` with the real node processes, made small and short with
//! `--set`; what they write is checked only with external tools (ffprobe,
//! ffmpeg, Chromium) and by reading the MP4 box layout.
//!
//! Assertions are on content and counters, never on wall time: the time
//! limits below only turn a hang into a failure.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use graph_tests::media::{
    decode_errors, faststart_problem, probe, psnr_by_index, psnr_stats, repo_graph, require_ffmpeg,
    run_to_end, run_tool, run_with_limit, PageServer, Probe,
};
use graph_tests::{runtime_bin, RunResult, Scratch};

/// Video codecs: (the encoder's `codec` param, ffprobe's codec name).
const VIDEO_CODECS: [(&str, &str); 4] = [
    ("h264", "h264"),
    ("h265", "hevc"),
    ("vp9", "vp9"),
    ("av1", "av1"),
];
/// Audio codecs: (`codec` param, ffprobe's codec name, samples per codec frame at 48 kHz).
const AUDIO_CODECS: [(&str, &str, u64); 3] = [
    ("aac", "aac", 1024),
    ("opus", "opus", 960),
    ("mp3", "mp3", 1152),
];
/// Containers: (file extension, ffprobe's format name).
const CONTAINERS: [(&str, &str); 3] = [
    ("mp4", "mov,mp4,m4a,3gp,3g2,mj2"),
    ("mkv", "matroska,webm"),
    ("webm", "matroska,webm"),
];

/// The graphs' frame rate, sample rate and channel count (not overridden).
const FPS: f64 = 30.0;
const SAMPLE_RATE: u64 = 48_000;
const CHANNELS: u64 = 2;

/// The matrix records this long at this size: real time (the only mode in
/// which `--duration`, a wall-clock stop, yields a predictable media length),
/// so small and short keeps 26 recordings well under a minute.
const MATRIX_SECONDS: f64 = 2.0;
const MATRIX_SIZE: (u64, u64) = (160, 120);
/// Recordings at once: real-time graphs mostly sleep, but each is 8 processes.
const MATRIX_PARALLEL: usize = 2;

/// How far a recording's length may be from `--duration` beyond the frame
/// granularity. `--duration` is measured by the runtime on the wall clock from
/// the moment it declares the graph started, and the stop reaches each source
/// process as a zenoh liveliness token: each source stops at its own
/// "stop seen" instant, which trails the timer by the runtime's timer wake-up
/// plus delivery plus scheduling delay of the source. On an idle machine that
/// is a few ms (measured: all 26 pairs within one frame); on a loaded 2-core
/// machine a descheduled process can see the stop tens of ms late (or, with a
/// late start, early). 100 ms bounds that with margin; anything worse means
/// the stop is broken, not slow.
const STOP_SLACK: f64 = 0.100;
/// Matroska stores timestamps in whole milliseconds.
const TIMESTAMP_SLACK: f64 = 0.002;

fn is_valid_pair(video: &str, audio: &str, container: &str) -> bool {
    container != "webm" || (matches!(video, "vp9" | "av1") && audio == "opus")
}

/// Reads the EBML DocType ("webm" or "matroska") from the start of a file.
fn ebml_doctype(path: &Path) -> Option<String> {
    let mut head = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .take(64)
        .read_to_end(&mut head)
        .ok()?;
    // DocType element: ID 0x4282, a one-byte size (0x80 | n), then n bytes.
    let at = head.windows(2).position(|w| w == [0x42, 0x82])?;
    let n = (*head.get(at + 2)? & 0x7f) as usize;
    let text = head.get(at + 3..at + 3 + n)?;
    Some(String::from_utf8_lossy(text).into_owned())
}

/// One recording of the matrix and what it measured.
struct PairOutcome {
    name: String,
    problems: Vec<String>,
    /// (video s, audio s, video frames), when the file could be probed.
    measured: Option<(f64, f64, u64)>,
    wall: Duration,
}

fn record_pair(
    video: (&str, &str),
    audio: (&str, &str, u64),
    container: (&str, &str),
) -> PairOutcome {
    let started = Instant::now();
    let name = format!("{}+{} in {}", video.0, audio.0, container.0);
    let s = Scratch::new();
    let out = s.path(&format!("out.{}", container.0));
    let sets = [
        format!("width={}", MATRIX_SIZE.0),
        format!("height={}", MATRIX_SIZE.1),
        format!("video-encode.codec={}", video.0),
        format!("audio-encode.codec={}", audio.0),
        format!("mux.path={}", out.display()),
    ];
    let mut args = vec!["--duration".to_string(), MATRIX_SECONDS.to_string()];
    for set in &sets {
        args.push("--set".into());
        args.push(set.clone());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (run, hung) = run_with_limit(
        &s,
        &repo_graph("1080p.yaml"),
        &args,
        Duration::from_secs(90),
    );
    let mut problems = Vec::new();
    let done = |mut problems: Vec<String>, measured| {
        if !problems.is_empty() {
            problems.push(format!(
                "per node (in / out / dropped):\n{}",
                counters(&run)
            ));
        }
        PairOutcome {
            name: name.clone(),
            problems,
            measured,
            wall: started.elapsed(),
        }
    };
    if hung || run.code != Some(0) {
        problems.push(format!(
            "runtime {} (exit {:?}); stderr:\n{}",
            if hung {
                "did not stop after --duration"
            } else {
                "failed"
            },
            run.code,
            run.stderr
        ));
        return done(problems, None);
    }
    let errors = decode_errors(&out);
    if !errors.is_empty() {
        problems.push(format!("ffmpeg reports decode errors:\n{errors}"));
    }
    let p = match probe(&out) {
        Ok(p) => p,
        Err(e) => {
            problems.push(e);
            return done(problems, None);
        }
    };
    if p.format_name != container.1 {
        problems.push(format!("format {} (want {})", p.format_name, container.1));
    }
    if container.0 != "mp4" {
        let want = if container.0 == "webm" {
            "webm"
        } else {
            "matroska"
        };
        let doctype = ebml_doctype(&out);
        if doctype.as_deref() != Some(want) {
            problems.push(format!("EBML DocType {doctype:?} (want {want})"));
        }
    } else if let Some(problem) = faststart_problem(&out) {
        problems.push(problem);
    }
    let (v, a) = match (p.video.as_slice(), p.audio.as_slice()) {
        ([v], [a]) => (v, a),
        _ => {
            problems.push(format!(
                "{} video and {} audio tracks (want 1 + 1)",
                p.video.len(),
                p.audio.len()
            ));
            return done(problems, None);
        }
    };
    if v.codec != video.1 || a.codec != audio.1 {
        problems.push(format!(
            "codecs {} + {} (want {} + {})",
            v.codec, a.codec, video.1, audio.1
        ));
    }
    if (v.width, v.height) != MATRIX_SIZE {
        problems.push(format!(
            "video {}x{} (want {}x{})",
            v.width, v.height, MATRIX_SIZE.0, MATRIX_SIZE.1
        ));
    }
    if v.frame_rate.0 != FPS as u64 * v.frame_rate.1 {
        problems.push(format!(
            "frame rate {}/{} (want {FPS})",
            v.frame_rate.0, v.frame_rate.1
        ));
    }
    // Pictures sit on the frame-rate grid, one per slot. An empty slot is only
    // acceptable as a drop the runtime counted: a real-time graph on an
    // overloaded machine drops frames (drop-oldest queues) rather than lag.
    if v.off_grid() > TIMESTAMP_SLACK {
        problems.push(format!(
            "video pts leave the {FPS} fps grid by {:.1} ms",
            v.off_grid() * 1e3
        ));
    }
    let (holes, drops) = (v.holes(), video_drops(&run));
    if holes < 0 || holes as u64 > drops {
        problems.push(format!(
            "{holes} empty frame slots in the video, {drops} drops counted on the video path"
        ));
    }
    if a.sample_rate != SAMPLE_RATE || a.channels != CHANNELS {
        problems.push(format!(
            "audio {} Hz {} ch (want {SAMPLE_RATE} Hz {CHANNELS} ch)",
            a.sample_rate, a.channels
        ));
    }
    // Both tracks start together (sync's common start, the mux keeps it), so
    // the audio's length is measured from the first picture to its last sample.
    let video_s = v.span();
    let audio_s = a.end - v.start();
    let frame = 1.0 / FPS;
    let codec_frame = audio.2 as f64 / SAMPLE_RATE as f64;
    // Counted drops that left no hole took frames off an end of the video.
    let lost = drops.saturating_sub(holes.max(0) as u64) as f64 * frame;
    // Each source stops at the first frame it has not produced when it sees the
    // stop; the audio source in 1024-sample blocks, and the encoder's last
    // codec frame is padded: the two ends differ by less than a video frame
    // plus an audio codec frame.
    let av_bound = frame + codec_frame + lost + TIMESTAMP_SLACK;
    if (video_s - audio_s).abs() > av_bound {
        problems.push(format!(
            "video {:.3} s and audio {:.3} s differ by {:.1} ms (bound {:.1} ms)",
            video_s,
            audio_s,
            (video_s - audio_s).abs() * 1e3,
            av_bound * 1e3
        ));
    }
    for (what, got, bound) in [
        ("video", video_s, frame + lost + STOP_SLACK),
        ("audio", audio_s, frame + codec_frame + STOP_SLACK),
    ] {
        if (got - MATRIX_SECONDS).abs() > bound + TIMESTAMP_SLACK {
            problems.push(format!(
                "{what} lasts {got:.3} s, {MATRIX_SECONDS} s asked (bound ±{:.0} ms)",
                bound * 1e3
            ));
        }
    }
    done(problems, Some((video_s, audio_s, v.frames())))
}

/// Every valid codec × container pair records a file with the right codecs,
/// size, rate and channels, whose length is what `--duration` asked.
#[test]
fn every_codec_container_pair_records_what_was_asked() {
    require_ffmpeg();
    let _turn = graph_tests::one_at_a_time();
    let mut pairs = Vec::new();
    for c in CONTAINERS {
        for v in VIDEO_CODECS {
            for a in AUDIO_CODECS {
                if is_valid_pair(v.0, a.0, c.0) {
                    pairs.push((v, a, c));
                }
            }
        }
    }
    assert_eq!(pairs.len(), 26, "4×3 in mp4, 4×3 in mkv, 2×1 in webm");
    let queue = Mutex::new(pairs.into_iter());
    let outcomes = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..MATRIX_PARALLEL {
            scope.spawn(|| loop {
                let Some((v, a, c)) = queue.lock().unwrap().next() else {
                    break;
                };
                let outcome = record_pair(v, a, c);
                outcomes.lock().unwrap().push(outcome);
            });
        }
    });
    let mut outcomes = outcomes.into_inner().unwrap();
    outcomes.sort_by(|a, b| a.name.cmp(&b.name));
    let mut failures = Vec::new();
    eprintln!("pair                      video      audio      A/V     vs asked   wall");
    for o in &outcomes {
        if let Some((v, a, frames)) = o.measured {
            eprintln!(
                "{:<24} {v:.3} s ({frames:>3}) {a:.3} s {:>+6.1} ms {:>+6.1} ms {:>5.1} s",
                o.name,
                (v - a) * 1e3,
                (v - MATRIX_SECONDS) * 1e3,
                o.wall.as_secs_f64()
            );
        }
        for p in &o.problems {
            failures.push(format!("{}: {p}", o.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Pairs a container cannot carry are refused by `runtime check` (exit 2, a
/// message naming the codec and the container), and `runtime run` refuses
/// them before recording anything.
#[test]
fn invalid_codec_container_pairs_are_rejected() {
    let cases: [(&str, &[&str], &[&str]); 5] = [
        ("webm.yaml", &["video-encode.codec=h264"], &["h264"]),
        ("webm.yaml", &["video-encode.codec=h265"], &["h265"]),
        ("webm.yaml", &["audio-encode.codec=aac"], &["aac"]),
        ("webm.yaml", &["audio-encode.codec=mp3"], &["mp3"]),
        // The container from the path's extension: both codecs are wrong.
        ("1080p.yaml", &["mux.path=out.webm"], &["h264", "aac"]),
    ];
    for (graph, sets, codecs) in cases {
        let mut cmd = Command::new(runtime_bin());
        cmd.arg("check").arg(repo_graph(graph));
        for set in sets {
            cmd.args(["--set", set]);
        }
        let out = cmd.output().expect("runtime check runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let what = format!("runtime check {graph} --set {}", sets.join(" --set "));
        assert_eq!(out.status.code(), Some(2), "{what}: {stderr}");
        for codec in codecs {
            assert!(
                stderr
                    .lines()
                    .any(|l| l.contains(codec) && l.contains("webm")),
                "{what}: no line names both {codec} and webm:\n{stderr}"
            );
        }
    }

    let s = Scratch::new();
    let r = s.run(
        &repo_graph("webm.yaml"),
        &[
            "--set",
            "video-encode.codec=h264",
            "--set",
            "mux.path=out.webm",
        ],
    );
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(
        r.stderr.contains("h264") && r.stderr.contains("webm"),
        "{}",
        r.stderr
    );
    assert!(!s.path("out.webm").exists(), "nothing is recorded");
}

/// A file replayed faster than real time (`realtime: false`) through the
/// 1080p graph ends by itself at the end of the file, and nothing is dropped
/// or duplicated on the way: every frame and every sample arrives in the MP4.
/// Every FFV1 picture is decoded straight into shared memory.
#[test]
fn file_replay_keeps_every_frame_and_sample() {
    let in_place = replay_keeps_every_frame_and_sample(&["-c:v", "ffv1"]);
    assert_eq!(in_place, 90, "FFV1 pictures decoded in place");
}

/// The same with H.264, whose decoder keeps reference pictures: those it
/// decoded into shared memory are read by the graph while it still holds
/// them, and the ones it keeps beyond what the pool can spare are copied.
#[test]
fn h264_file_replay_keeps_every_frame_and_sample() {
    let in_place = replay_keeps_every_frame_and_sample(&["-c:v", "libx264", "-crf", "10"]);
    assert!(in_place > 0, "no H.264 picture decoded in place");
}

/// Replays a 3 s 320x240 file made with `video_codec`; returns how many
/// pictures the camera sent from its decoder's buffers.
fn replay_keeps_every_frame_and_sample(video_codec: &[&str]) -> u64 {
    require_ffmpeg();
    let _turn = graph_tests::one_at_a_time();
    let s = Scratch::new();
    let input = s.path("in.mkv");
    run_tool(
        Command::new("ffmpeg")
            .args(["-nostdin", "-v", "error", "-y"])
            .args(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30"])
            .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
            .args(["-t", "3"])
            .args(video_codec)
            .args(["-c:a", "pcm_s16le", "-ac", "2"])
            .arg(&input),
    );
    let src = probe(&input).unwrap();
    let (src_frames, src_samples) = (src.video[0].frames(), src.audio[0].samples);
    assert_eq!(
        (src_frames, src_samples),
        (90, 144_000),
        "ffmpeg made the input asked for"
    );

    let source = format!("file:{}", input.display());
    let out = s.path("out.mp4");
    let sets = [
        format!("camera.source={source}"),
        format!("microphone.source={source}"),
        "camera.realtime=false".into(),
        "microphone.realtime=false".into(),
        "camera.width=320".into(),
        "camera.height=240".into(),
        "video-normalize.width=320".into(),
        "video-normalize.height=240".into(),
        format!("mux.path={}", out.display()),
    ];
    let args: Vec<String> = sets
        .iter()
        .flat_map(|x| ["--set".to_string(), x.clone()])
        .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    // No --duration: the end of the file ends the graph.
    let r = run_to_end(
        &s,
        &repo_graph("1080p.yaml"),
        &args,
        Duration::from_secs(120),
        "the end of the file",
    );

    let mut problems = Vec::new();
    let errors = decode_errors(&out);
    if !errors.is_empty() {
        problems.push(format!("ffmpeg reports decode errors:\n{errors}"));
    }
    let p = probe(&out).unwrap();
    let (v, a) = (&p.video[0], &p.audio[0]);
    assert_eq!((v.width, v.height), (320, 240));
    if v.frames() != src_frames || v.holes() != 0 || v.off_grid() > TIMESTAMP_SLACK {
        problems.push(format!(
            "video: {} frames ({} empty slots) in the MP4, {src_frames} in the input",
            v.frames(),
            v.holes()
        ));
    }
    // Frame i of the MP4 is frame i of the input: nothing dropped or repeated
    // (neighbouring testsrc2 frames are < 27 dB apart, the encode > 38 dB).
    let psnr = psnr_by_index(&out, &input);
    if let Some(first) = psnr.iter().position(|&db| db < 32.0) {
        problems.push(format!(
            "video frame {first} of the MP4 is not input frame {first} ({:.1} dB)",
            psnr[first]
        ));
    }
    // AAC codes whole 1024-sample frames: the last one may be padded or trimmed.
    if a.samples.abs_diff(src_samples) > 1024 {
        problems.push(format!(
            "audio: {} samples in the MP4, {src_samples} in the input (±1024)",
            a.samples
        ));
    }
    assert!(
        problems.is_empty(),
        "{}\nper node (in / out / dropped):\n{}\nsync: {}",
        problems.join("\n"),
        counters(&r),
        r.stderr
            .lines()
            .find(|l| l.contains("sync done"))
            .unwrap_or("no summary")
    );
    let passed = r.node("video-normalize")["stats"]["metrics"]["passthrough"].as_f64();
    assert_eq!(passed, Some(90.0), "every picture forwarded without a copy");
    r.node("camera")["stats"]["metrics"]["in_place"]
        .as_f64()
        .unwrap_or(0.0) as u64
}

/// Each node's frames in/out and drops, for failure messages.
fn counters(r: &RunResult) -> String {
    let Some(nodes) = r.report.as_ref().and_then(|r| r["nodes"].as_object()) else {
        return "no report".into();
    };
    nodes
        .iter()
        .map(|(id, n)| {
            format!(
                "  {id}: {} / {} / {}",
                n["frames_in"], n["frames_out"], n["dropped"]
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Drops counted by the nodes a video frame passes after the camera.
fn video_drops(r: &RunResult) -> u64 {
    ["video-normalize", "sync", "video-encode", "mux"]
        .iter()
        .filter_map(|id| r.report.as_ref()?["nodes"][id]["dropped"].as_u64())
        .sum()
}

/// Records graphs/1080p.yaml in real time for `seconds` at its real size.
fn record_1080p(s: &Scratch, seconds: &str) -> PathBuf {
    let out = s.path("out.mp4");
    let set = format!("mux.path={}", out.display());
    run_to_end(
        s,
        &repo_graph("1080p.yaml"),
        &["--duration", seconds, "--set", &set],
        Duration::from_secs(120),
        "--duration",
    );
    out
}

/// MP4 recordings put the index first: moov before mdat at the top level.
/// (The box reader is checked on ffmpeg files made both ways.)
#[test]
fn mp4_recordings_are_faststart() {
    require_ffmpeg();
    let _turn = graph_tests::one_at_a_time();
    let s = Scratch::new();
    for (name, flags) in [("plain.mp4", None), ("fast.mp4", Some("+faststart"))] {
        let mut cmd = Command::new("ffmpeg");
        cmd.args(["-nostdin", "-v", "error", "-y"])
            .args([
                "-f",
                "lavfi",
                "-i",
                "testsrc2=size=64x64:rate=10",
                "-t",
                "1",
            ])
            .args(["-c:v", "mpeg4"]);
        if let Some(f) = flags {
            cmd.args(["-movflags", f]);
        }
        run_tool(cmd.arg(s.path(name)));
    }
    assert!(
        faststart_problem(&s.path("plain.mp4")).is_some(),
        "ffmpeg's default MP4 has moov last: the reader must see it"
    );
    assert_eq!(faststart_problem(&s.path("fast.mp4")), None);

    let out = record_1080p(&s, "2");
    assert_eq!(faststart_problem(&out), None);
}

/// Where Chromium is; `None` (with the reason printed) skips the test
/// locally, but on CI (CI=true) a missing browser fails it.
fn chromium() -> Option<PathBuf> {
    let path = PathBuf::from("/usr/bin/chromium");
    if path.exists() {
        return Some(path);
    }
    let why = "chromium is not installed (/usr/bin/chromium): run `scripts/setup --test` (Debian package `chromium`)";
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{why}");
    }
    eprintln!("skipped: {why}");
    None
}

/// The page: plays the video muted, and on `ended` (or an error) writes what
/// it saw into #result and the title and reports it to the server, which then
/// releases `/hold`: the page's load event waits for that image, so
/// `--dump-dom` dumps the finished page (virtual time alone does not wait for
/// media playback, which runs on the real clock).
const PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>pending</title></head><body>
<video id="v" src="/video.mp4" muted playsinline preload="auto"></video>
<pre id="result">pending</pre>
<script>
const v = document.getElementById('v');
let done = false;
function report(o) {
  if (done) return;
  done = true;
  const s = JSON.stringify(o);
  document.getElementById('result').textContent = s;
  document.title = s;
  fetch('/result?' + encodeURIComponent(s));
}
v.addEventListener('ended', () => report({
  ended: v.ended, width: v.videoWidth, height: v.videoHeight, duration: v.duration,
  currentTime: v.currentTime, played: v.played.length ? v.played.end(v.played.length - 1) : 0,
}));
v.addEventListener('error', () => report({error: v.error ? v.error.code + ': ' + v.error.message : 'unknown'}));
v.play().catch(e => report({error: 'play() refused: ' + e}));
setTimeout(() => report({error: 'not ended after 60 s', currentTime: v.currentTime}), 60000);
</script>
<img src="/hold" alt="">
</body></html>
"#;

/// The 1080p graph's MP4 plays to its end in headless Chromium at 1920x1080.
#[test]
fn recording_plays_to_the_end_in_headless_chromium() {
    let Some(browser) = chromium() else { return };
    require_ffmpeg();
    let _turn = graph_tests::one_at_a_time();
    let s = Scratch::new();
    let video = record_1080p(&s, "2");
    let p = probe(&video).unwrap();
    let length = p.video[0].span();
    std::fs::write(s.path("index.html"), PAGE).unwrap();
    let server = PageServer::start(
        vec![
            ("/".into(), "text/html; charset=utf-8", s.path("index.html")),
            ("/video.mp4".into(), "video/mp4", video),
        ],
        Duration::from_secs(90),
    );
    let profile = s.path("chromium-profile");
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--autoplay-policy=no-user-gesture-required",
            "--virtual-time-budget=30000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(server.url("/"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("chromium starts");
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut b = String::new();
        let _ = stdout.read_to_string(&mut b);
        b
    });
    let err = std::thread::spawn(move || {
        let mut b = String::new();
        let _ = stderr.read_to_string(&mut b);
        b
    });
    // A hang guard only: the page gives up by itself after 60 s.
    let deadline = Instant::now() + Duration::from_secs(150);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let (dom, log) = (out.join().unwrap(), err.join().unwrap());
    assert!(
        status.success(),
        "chromium failed ({status}); stderr:\n{log}"
    );
    let result = dom
        .split_once(r#"<pre id="result">"#)
        .and_then(|(_, rest)| rest.split_once("</pre>"))
        .map(|(text, _)| text.replace("&quot;", "\"").replace("&amp;", "&"))
        .unwrap_or_else(|| panic!("no #result in the dumped DOM:\n{dom}"));
    let r: serde_json::Value = serde_json::from_str(&result).unwrap_or_else(|_| {
        panic!(
            "the page did not finish: #result is `{result}` (server got {:?}); chromium stderr:\n{log}",
            server.result()
        )
    });
    assert_eq!(r["ended"], true, "{r}");
    assert_eq!(
        (r["width"].as_u64(), r["height"].as_u64()),
        (Some(1920), Some(1080)),
        "{r}"
    );
    let duration = r["duration"].as_f64().unwrap_or(0.0);
    assert!(
        (duration - length).abs() < 0.1,
        "the browser's duration {duration} s vs {length} s of video in the file: {r}"
    );
    let played = r["played"].as_f64().unwrap_or(0.0);
    assert!(
        (played - duration).abs() < 0.1,
        "played up to {played} s of {duration} s: {r}"
    );
}

/// Whether any path matching `dir/prefix*suffix` exists.
fn any_entry(dir: &str, prefix: &str, suffix: &str) -> bool {
    std::fs::read_dir(dir).is_ok_and(|d| {
        d.flatten().any(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.starts_with(prefix) && n.ends_with(suffix)
        })
    })
}

/// The documented first command, on a machine without camera or microphone:
/// the sources fall back to the test pattern and tone with a warning, and the
/// default path (recordings/<timestamp>.mp4) gets a file with both tracks.
#[test]
fn the_1080p_graph_falls_back_to_test_sources_without_devices() {
    require_ffmpeg();
    let _turn = graph_tests::one_at_a_time();
    let s = Scratch::new();
    std::fs::create_dir(s.path("recordings")).unwrap();
    let r = run_to_end(
        &s,
        &repo_graph("1080p.yaml"),
        &["--duration", "3"],
        Duration::from_secs(120),
        "--duration",
    );
    let has_camera = any_entry("/dev", "video", "");
    let has_microphone = any_entry("/dev/snd", "pcmC", "c");
    for (device, present, warning) in [
        ("camera", has_camera, "no camera found"),
        ("microphone", has_microphone, "no microphone found"),
    ] {
        if present {
            eprintln!("this machine has a {device}: the `{warning}` warning is not expected");
        } else {
            assert!(
                r.stderr.contains(warning),
                "no `{warning}` warning:\n{}",
                r.stderr
            );
        }
    }

    let files: Vec<PathBuf> = std::fs::read_dir(s.path("recordings"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    let [file] = files.as_slice() else {
        panic!("want one file in recordings/, found {files:?}");
    };
    assert_eq!(file.extension().and_then(|e| e.to_str()), Some("mp4"));
    assert_eq!(decode_errors(file), "");
    let p: Probe = probe(file).unwrap();
    let (v, a) = match (p.video.as_slice(), p.audio.as_slice()) {
        ([v], [a]) => (v, a),
        _ => panic!("want one video and one audio track: {p:?}"),
    };
    assert_eq!((v.codec.as_str(), v.width, v.height), ("h264", 1920, 1080));
    assert_eq!(
        (a.codec.as_str(), a.sample_rate, a.channels),
        ("aac", SAMPLE_RATE, CHANNELS)
    );
    // Both tracks cover the 3 s asked (spans, not frame counts: a busy
    // machine may drop a frame in real time without shortening the take).
    let frame = 1.0 / FPS;
    let spans = [
        (
            "video",
            v.pts.iter().copied().fold(0.0, f64::max) + frame - v.start(),
        ),
        ("audio", a.end - v.start()),
    ];
    for (what, span) in spans {
        assert!(
            (span - 3.0).abs() <= frame + 1024.0 / SAMPLE_RATE as f64 + STOP_SLACK,
            "{what} spans {span:.3} s of the 3 s asked"
        );
    }
}

/// A still image as the camera's source is a continuous video at the
/// camera's frame rate for as long as the recording runs (like OBS's image
/// source or `ffmpeg -loop 1`), every frame the picture; not an audio-only
/// file.
#[test]
fn a_still_image_is_recorded_as_continuous_video() {
    require_ffmpeg();
    let _turn = graph_tests::one_at_a_time();
    let s = Scratch::new();
    let still = s.path("still.png");
    run_tool(
        Command::new("ffmpeg")
            .args(["-nostdin", "-v", "error", "-y"])
            .args([
                "-f",
                "lavfi",
                "-i",
                "testsrc2=size=320x240",
                "-frames:v",
                "1",
            ])
            .arg(&still),
    );
    let out = s.path("out.mp4");
    let sets = [
        format!("camera.source=file:{}", still.display()),
        format!("mux.path={}", out.display()),
        "width=320".into(),
        "height=240".into(),
        // Not paced, 2 s of each source: the graph ends by itself after
        // exactly 60 frames.
        "camera.realtime=false".into(),
        "camera.duration=2".into(),
        "microphone.source=test".into(),
        "microphone.realtime=false".into(),
        "microphone.duration=2".into(),
    ];
    let args: Vec<&str> = sets.iter().flat_map(|x| ["--set", x.as_str()]).collect();
    let r = run_to_end(
        &s,
        &repo_graph("1080p.yaml"),
        &args,
        Duration::from_secs(120),
        "the sources' end",
    );
    let p = probe(&out).unwrap();
    assert_eq!(p.video.len(), 1, "a video track: {}", r.stderr);
    assert_eq!(p.video[0].frames(), 60, "2 s at 30 fps");
    let psnr = psnr_stats(
        &[&out, &still],
        "[0:v]settb=1/30,setpts=N[a];[1:v]format=yuv420p,loop=loop=-1:size=1,settb=1/30,setpts=N[b];[a][b]psnr=shortest=1:stats_file=-",
    );
    assert_eq!(psnr.len(), 60, "every frame compared");
    let worst = psnr.iter().copied().fold(f64::INFINITY, f64::min);
    assert!(
        worst > 30.0,
        "every frame is the picture: worst PSNR {worst:.1} dB"
    );
}

/// `--duration` counts seconds of media, the clock of `mux.max_duration`,
/// not of the wall: a replay faster than real time with `--duration 2`
/// records 2 s (within a frame), however much it could have produced in
/// 2 s of wall time, and ends as at the end of a file (every node finishes,
/// the MP4 is final).
#[test]
fn duration_is_media_time_in_a_fast_replay() {
    require_ffmpeg();
    let _turn = graph_tests::one_at_a_time();
    let s = Scratch::new();
    let input = s.path("in.mkv");
    // Long enough that 2 s of wall time would replay far more than 2 s.
    run_tool(
        Command::new("ffmpeg")
            .args(["-nostdin", "-v", "error", "-y"])
            .args(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30"])
            .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
            .args(["-t", "30", "-c:v", "ffv1", "-c:a", "pcm_s16le", "-ac", "2"])
            .arg(&input),
    );
    let source = format!("file:{}", input.display());
    let out = s.path("out.mp4");
    let sets = [
        format!("camera.source={source}"),
        format!("microphone.source={source}"),
        "camera.realtime=false".into(),
        "microphone.realtime=false".into(),
        "width=320".into(),
        "height=240".into(),
        format!("mux.path={}", out.display()),
    ];
    let mut args: Vec<&str> = sets.iter().flat_map(|x| ["--set", x.as_str()]).collect();
    args.extend(["--duration", "2"]);
    let r = run_to_end(
        &s,
        &repo_graph("1080p.yaml"),
        &args,
        Duration::from_secs(120),
        "2 s of media",
    );
    assert_eq!(faststart_problem(&out), None, "a final MP4");
    let p = probe(&out).unwrap();
    let (v, a) = (&p.video[0], &p.audio[0]);
    let frame = 1.0 / v.fps();
    assert!(
        (v.span() - 2.0).abs() <= frame + 1e-3,
        "video: {:.3} s ({} frames), not 2 s; stderr:\n{}",
        v.span(),
        v.frames(),
        r.stderr
    );
    let audio_s = a.samples as f64 / a.sample_rate as f64;
    assert!(
        (audio_s - 2.0).abs() <= frame + 1e-3,
        "audio: {audio_s:.3} s, not 2 s"
    );
}

/// `round_to_even` makes an odd size even, as ffmpeg's `scale=-2` does:
/// without it a 641x361 video-normalize into the encoder is refused before
/// anything starts (exit 2) with an error naming the param and the size it
/// gives; with it the file is 640x360 (each odd size rounded down), and a
/// test-pattern camera asked for 321x241 makes 320x240 frames.
#[test]
fn round_to_even_makes_odd_sizes_even_end_to_end() {
    require_ffmpeg();
    let _turn = graph_tests::one_at_a_time();
    let s = Scratch::new();
    let out = s.path("out.mp4");
    let mut sets = vec![
        "camera.source=test".to_string(),
        "camera.width=321".into(),
        "camera.height=241".into(),
        "camera.round_to_even=true".into(),
        "video-normalize.width=641".into(),
        "video-normalize.height=361".into(),
        format!("mux.path={}", out.display()),
    ];
    let args = |sets: &[String]| -> Vec<String> {
        let mut a: Vec<String> = sets
            .iter()
            .flat_map(|x| ["--set".into(), x.clone()])
            .collect();
        a.extend(["--duration".into(), "1".into()]);
        a
    };
    let graph = repo_graph("1080p.yaml");
    let refused = args(&sets);
    let refused: Vec<&str> = refused.iter().map(String::as_str).collect();
    let r = s.run(&graph, &refused);
    assert_eq!(r.code, Some(2), "stderr:\n{}", r.stderr);
    assert!(
        r.stderr.contains("width 641 is odd")
            && r.stderr
                .contains("set `round_to_even: true` to get 640x360"),
        "the error names the fix; stderr:\n{}",
        r.stderr
    );
    assert!(!out.exists(), "nothing recorded");
    sets.push("video-normalize.round_to_even=true".into());
    let rounded = args(&sets);
    let rounded: Vec<&str> = rounded.iter().map(String::as_str).collect();
    run_to_end(
        &s,
        &graph,
        &rounded,
        Duration::from_secs(60),
        "1 s of media",
    );
    let p = probe(&out).unwrap();
    let v = &p.video[0];
    assert_eq!((v.width, v.height), (640, 360));
    assert!(v.frames() >= 29, "{} frames", v.frames());
}

/// The shortest audio frames the catalog accepts (1 ms: 48 samples at
/// 48 kHz; shorter ones are refused, see bad_input.rs) keep up with real
/// time: the recording has all its audio and the microphone was never
/// behind.
#[test]
fn the_shortest_audio_frames_accepted_keep_all_the_audio() {
    require_ffmpeg();
    let _turn = graph_tests::one_at_a_time();
    let s = Scratch::new();
    let out = s.path("out.mp4");
    let set = format!("mux.path={}", out.display());
    let r = run_to_end(
        &s,
        &repo_graph("1080p.yaml"),
        &[
            "--duration",
            "3",
            "--set",
            &set,
            "--set",
            "width=320",
            "--set",
            "height=240",
            "--set",
            "microphone.source=test",
            "--set",
            "microphone.frame_samples=48",
        ],
        Duration::from_secs(120),
        "--duration",
    );
    let p = probe(&out).unwrap();
    let video = p.video[0].duration();
    let audio = p.audio[0].end - p.audio[0].start;
    assert!(video > 2.0, "{video:.2} s of video");
    assert!(
        (audio - video).abs() < 0.1,
        "{audio:.2} s of audio with {video:.2} s of video"
    );
    let behind = r.node("microphone")["stats"]["metrics"]["behind_s"]
        .as_f64()
        .expect("behind_s published");
    assert!(behind < 0.25, "the microphone fell {behind:.2} s behind");
}
