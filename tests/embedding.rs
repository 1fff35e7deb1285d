//! The recorder embedded in an app: the example app's file checked with
//! FFmpeg (exact frames, every flash with its beep, the seed's preset), the
//! zero-copy submit path, bad input refused while the recording goes on,
//! several recordings from one recorder, any graph file fed by the app,
//! an app killed with SIGKILL, a recording streamed live to nginx, and the
//! screen recorded (under Xvfb) with the devices listed.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use graph_tests::claps::claps;
use graph_tests::media::{decode_errors, probe, require_ffmpeg};
use graph_tests::servers::RtmpServer;
use graph_tests::{bin_dir, descendants, run_recorder_app, Scratch};
use recorder::{
    AudioFrame, CombinedRecorder, RecorderError, RecordingConfig, Runtime, VideoFrame,
    VideoResolution,
};

const FPS: u64 = 30;
const RATE: u32 = 48_000;

fn app_bin() -> PathBuf {
    bin_dir().join("recorder-app")
}

/// A small config: 320x240 at 30 fps, stereo 48 kHz, logs in `dir`.
fn small_config(dir: &Path) -> RecordingConfig {
    let mut c = RecordingConfig::hd_720p();
    c.video.resolution = VideoResolution::Custom {
        width: 320,
        height: 240,
    };
    c.run_dir = dir.join("runs");
    c
}

fn ts(n: u64) -> Duration {
    Duration::from_nanos(n * 1_000_000_000 / FPS)
}

/// Frame `n`'s pixels (RGB24, 320x240) and sound (one frame period).
fn frame_data(n: u64) -> (Vec<u8>, Vec<f32>) {
    let pixels = vec![(n % 200) as u8; 320 * 240 * 3];
    let samples = (RATE as u64 / FPS) as usize;
    (pixels, vec![0.01; samples * 2])
}

fn submit_both(r: &CombinedRecorder, n: u64) {
    let (pixels, samples) = frame_data(n);
    r.submit_video_frame(VideoFrame::rgb24(&pixels, 320, 240).with_timestamp(ts(n)))
        .unwrap();
    r.submit_audio_frame(AudioFrame::interleaved_f32(&samples, RATE, 2).with_timestamp(ts(n)))
        .unwrap();
}

#[test]
fn the_example_app_records_every_frame_in_sync_with_the_seeds_preset() {
    require_ffmpeg();
    let s = Scratch::new();
    let out = s.path("app.mp4");
    let run = run_recorder_app(&s, &out, &["--seconds", "5", "--preset", "720p"]);
    let (stdout, why) = (&run.stdout, &run.why);
    assert!(run.output.status.success(), "{why}");
    assert!(stdout.contains("video frames  150"), "{why}");
    assert!(stdout.contains("dropped       0"), "{why}");
    assert!(stdout.contains("restarts      0"), "{why}");
    assert_eq!(decode_errors(&out), "");
    let p = probe(&out).unwrap();
    assert_eq!(p.video[0].frames(), 150, "{why}");
    assert_eq!((p.video[0].width, p.video[0].height), (1280, 720));
    assert_eq!(p.video[0].holes(), 0);
    let claps = claps(&out);
    assert_eq!(
        claps.len(),
        5,
        "a flash and a beep at every whole second: {claps:?}"
    );
    for c in &claps {
        assert!(
            c.offset_ms.abs() <= 5.0,
            "flash at {:.3} s: beep {:+.1} ms",
            c.at,
            c.offset_ms
        );
    }
    // hd_720p(): balanced video (CRF 23), standard audio (128 kb/s).
    let logs = std::fs::read_dir(s.path("runs"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let video_log = std::fs::read_to_string(logs.join("logs/video-encode.log")).unwrap();
    assert!(video_log.contains("crf=23"), "{video_log}");
    let audio_log = std::fs::read_to_string(logs.join("logs/audio-encode.log")).unwrap();
    assert!(audio_log.contains("128 kb/s"), "{audio_log}");
    let file = std::fs::read(&out).unwrap();
    let sei = String::from_utf8_lossy(&file);
    assert!(
        sei.contains("crf=23.0"),
        "x264's settings in the stream say crf=23"
    );
}

#[test]
fn frames_drawn_in_shared_memory_reach_the_encoder_without_a_copy() {
    let s = Scratch::new();
    let recorder = CombinedRecorder::new(small_config(s.dir.path())).unwrap();
    // Two recordings one after another: drawn in place, then copied.
    for (take, zero_copy) in [("a.mp4", true), ("b.mp4", false)] {
        recorder.start_recording(s.path(take)).unwrap();
        for n in 0..30 {
            let (pixels, samples) = frame_data(n);
            if zero_copy {
                let mut buf = recorder.video_buffer().unwrap();
                assert!(buf.is_shared());
                buf.copy_from_slice(&pixels);
                recorder.submit_video_buffer(buf, Some(ts(n))).unwrap();
            } else {
                recorder
                    .submit_video_frame(VideoFrame::rgb24(&pixels, 320, 240).with_timestamp(ts(n)))
                    .unwrap();
            }
            let audio = AudioFrame::interleaved_f32(&samples, RATE, 2).with_timestamp(ts(n));
            recorder.submit_audio_frame(audio).unwrap();
        }
        let summary = recorder.stop_recording().unwrap();
        assert_eq!(summary.video_frames, 30, "{take}");
        assert_eq!(summary.audio_samples, 30 * 1600, "{take}");
        assert!(summary.dropped.is_empty(), "{take}: {:?}", summary.dropped);
        let app = summary.report.nodes["app-video"].stats.clone().unwrap();
        let copies = app.metrics.get("submit_copies").copied().unwrap_or(0.0);
        assert_eq!(copies, if zero_copy { 0.0 } else { 30.0 }, "{take}");
        let normalize = summary.report.nodes["video-normalize"]
            .stats
            .clone()
            .unwrap();
        let input = &normalize.inputs["video"];
        assert_eq!(
            (input.shm_payloads, input.copied_payloads),
            (30, 0),
            "{take}"
        );
        assert_eq!(probe(&summary.path).unwrap().video[0].frames(), 30);
    }
}

#[test]
fn bad_input_is_refused_with_what_was_expected_and_the_recording_goes_on() {
    let s = Scratch::new();
    let recorder = CombinedRecorder::new(small_config(s.dir.path())).unwrap();
    let (pixels, samples) = frame_data(0);
    let frame = VideoFrame::rgb24(&pixels, 320, 240);
    assert_eq!(
        recorder.submit_video_frame(frame),
        Err(RecorderError::NotRecording)
    );
    recorder.start_recording(s.path("bad.mp4")).unwrap();
    assert_eq!(
        recorder.start_recording(s.path("second.mp4")),
        Err(RecorderError::AlreadyRecording)
    );
    for n in 0..10 {
        submit_both(&recorder, n);
    }
    let wrong_size = VideoFrame::rgb24(&pixels, 160, 120);
    assert_eq!(
        recorder.submit_video_frame(wrong_size),
        Err(RecorderError::WrongFrameSize {
            expected: (320, 240),
            got: (160, 120)
        })
    );
    let wrong_format = VideoFrame::rgba(&pixels, 320, 240);
    assert!(matches!(
        recorder.submit_video_frame(wrong_format),
        Err(RecorderError::WrongFormat { expected, got }) if expected == "rgb24" && got == "rgba"
    ));
    let short = VideoFrame::rgb24(&pixels[..1000], 320, 240).with_timestamp(ts(10));
    assert!(matches!(
        recorder.submit_video_frame(short),
        Err(RecorderError::ShortData { .. })
    ));
    let backwards = VideoFrame::rgb24(&pixels, 320, 240).with_timestamp(ts(5));
    assert!(matches!(
        recorder.submit_video_frame(backwards),
        Err(RecorderError::TimestampBackwards { .. })
    ));
    let other_rate = AudioFrame::interleaved_f32(&samples, 44_100, 2);
    assert!(matches!(
        recorder.submit_audio_frame(other_rate),
        Err(RecorderError::WrongAudio {
            expected_rate: 48_000,
            got_rate: 44_100,
            ..
        })
    ));
    let ints = vec![0i16; 3200];
    let other_layout = AudioFrame::interleaved_i16(&ints, RATE, 2);
    assert!(matches!(
        recorder.submit_audio_frame(other_layout),
        Err(RecorderError::WrongFormat { .. })
    ));
    let audio_back = AudioFrame::interleaved_f32(&samples, RATE, 2).with_timestamp(ts(3));
    assert!(matches!(
        recorder.submit_audio_frame(audio_back),
        Err(RecorderError::TimestampBackwards { .. })
    ));
    // The recording went on.
    for n in 10..30 {
        submit_both(&recorder, n);
    }
    let summary = recorder.stop_recording().unwrap();
    assert_eq!(summary.video_frames, 30);
    assert_eq!(summary.rejected, 7);
    assert!(summary.dropped.is_empty(), "{:?}", summary.dropped);
    assert_eq!(
        recorder.stop_recording().unwrap_err(),
        RecorderError::NotRecording
    );
    let (pixels, _) = frame_data(0);
    let after = VideoFrame::rgb24(&pixels, 320, 240);
    assert_eq!(
        recorder.submit_video_frame(after),
        Err(RecorderError::NotRecording)
    );
    assert_eq!(probe(&summary.path).unwrap().video[0].frames(), 30);
}

#[test]
fn a_graph_file_takes_frames_from_the_app_and_the_cli_refuses_to_run_it() {
    let s = Scratch::new();
    let graph = graph_tests::media::repo_graph("../examples/graphs/app-frames.yaml");
    let out = s.path("graph.mkv");
    let set = format!("mux.path={}", out.display());
    let running = Runtime::new()
        .run_dir(s.path("runs"))
        .start(&graph, &[&set])
        .unwrap();
    let video = running.video_input("frames").unwrap();
    let (w, h, _) = video.format();
    let pixels = vec![90u8; (w * h * 4) as usize];
    for n in 0..20 {
        video
            .submit(&VideoFrame::rgba(&pixels, w, h).with_timestamp(ts(n)))
            .unwrap();
    }
    assert!(
        running.audio_input("frames").is_err(),
        "a video node is no audio input"
    );
    let report = running.stop_and_wait().unwrap();
    assert_eq!(report.exit_code, 0, "{:?}", report.error);
    assert_eq!(probe(&out).unwrap().video[0].frames(), 20);
    // `runtime run` has no app to take frames from: a usage error, before anything starts.
    let set = format!("mux.path={}", s.path("cli.mkv").display());
    let cli = s.runtime_run(&graph, &["--set", &set]).output().unwrap();
    assert_eq!(cli.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&cli.stderr);
    assert!(
        stderr.contains("node `frames` takes frames from the application"),
        "{stderr}"
    );
}

/// Running, not a zombie waiting for its new parent to reap it.
fn alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, a)| a.split_whitespace().next());
    state != Some("Z")
}

/// System V segments made by any of `pids` (`/proc/sysvipc/shm`, column cpid).
fn segments_of(pids: &[u32]) -> usize {
    let table = std::fs::read_to_string("/proc/sysvipc/shm").unwrap_or_default();
    table
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(4)?.parse::<u32>().ok())
        .filter(|cpid| pids.contains(cpid))
        .count()
}

#[test]
fn a_killed_app_leaves_no_process_nor_shared_memory_and_a_playable_file() {
    require_ffmpeg();
    let s = Scratch::new();
    let out = s.path("killed.mp4");
    let mut app = Command::new(app_bin())
        .arg(&out)
        .args(["--seconds", "600", "--preset", "720p"])
        .current_dir(s.dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Until the mux has written fragments of a couple of seconds.
    let deadline = Instant::now() + Duration::from_secs(120);
    while std::fs::metadata(&out).map_or(0, |m| m.len()) < 20_000 {
        assert!(Instant::now() < deadline, "no file after 120 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(2));
    // The node processes (forked by the app's fork server, so its
    // grandchildren) and that server.
    let kids: Vec<u32> = descendants(app.id())
        .into_iter()
        .filter(|&p| p != app.id())
        .collect();
    assert!(kids.len() >= 7, "the node processes: {kids:?}");
    let mut pids = kids.clone();
    pids.push(app.id());
    assert!(segments_of(&pids) > 0, "frames travel in shared memory");
    unsafe { libc::kill(app.id() as i32, libc::SIGKILL) };
    app.wait().unwrap();
    // Within a few seconds every node process is gone, and with the last
    // one attached each segment (a thread group's leader shows as a zombie
    // while its other threads still unmap).
    let gone = Instant::now() + Duration::from_secs(10);
    while kids.iter().any(|&k| alive(k)) || segments_of(&pids) > 0 {
        if Instant::now() > gone {
            let alive: Vec<u32> = kids.iter().copied().filter(|&k| alive(k)).collect();
            let table = std::fs::read_to_string("/proc/sysvipc/shm").unwrap_or_default();
            panic!(
                "10 s after the app: nodes {alive:?} alive; shared memory of {pids:?}:\n{table}"
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(decode_errors(&out), "");
    let p = probe(&out).unwrap();
    assert!(
        p.video[0].frames() >= 30,
        "frames up to the last fragment: {}",
        p.video[0].frames()
    );
}

#[test]
fn the_recorder_also_records_from_its_test_sources_with_status_events() {
    let s = Scratch::new();
    let mut config = small_config(s.dir.path());
    config.video.source = recorder::VideoSource::TestPattern;
    config.audio.as_mut().unwrap().source = recorder::AudioSource::TestTone;
    let recorder = CombinedRecorder::new(config).unwrap();
    recorder.start_recording(s.path("devices.mp4")).unwrap();
    assert!(matches!(
        recorder.video_buffer(),
        Err(RecorderError::NoSuchInput(_))
    ));
    let events = recorder.subscribe().unwrap();
    // Statistics arrive every half second while it runs.
    let mut seen = 0;
    while seen < 3 {
        if let recorder::StatusEvent::Statistics(s) = events.recv().unwrap() {
            if s.video_frames > 0 {
                seen += 1;
            }
        }
    }
    let live = recorder.statistics().unwrap();
    assert_eq!(live.phase, "running");
    assert!(live.nodes.contains_key("camera"), "{:?}", live.nodes.keys());
    let summary = recorder.stop_recording().unwrap();
    let p = probe(&summary.path).unwrap();
    assert_eq!(p.video[0].frames(), summary.video_frames);
    assert!(summary.video_frames >= 15, "{}", summary.video_frames);
    assert!(p.audio[0].samples > 0);
    let rest: Vec<_> = events.try_iter().collect();
    assert!(
        rest.iter()
            .any(|e| matches!(e, recorder::StatusEvent::Finished)),
        "{rest:?}"
    );
}

#[test]
fn an_app_faster_than_the_encoder_has_its_drops_counted_when_it_asks_for_drops() {
    let s = Scratch::new();
    let mut config = RecordingConfig::hd_1080p();
    config.video.quality_preset = recorder::VideoQualityPreset::Ultra;
    config.video.buffer_size = 2;
    config.when_behind = recorder::WhenBehind::DropVideo;
    config.audio = None;
    config.run_dir = s.path("runs");
    let recorder = CombinedRecorder::new(config).unwrap();
    recorder.start_recording(s.path("drops.mp4")).unwrap();
    let pixels = vec![7u8; 1920 * 1080 * 3];
    let submitted = 90;
    for n in 0..submitted {
        // Each frame differs, so the encoder has work.
        let mut frame = pixels.clone();
        frame[(n as usize * 9973) % pixels.len()] = 255;
        recorder
            .submit_video_frame(VideoFrame::rgb24(&frame, 1920, 1080).with_timestamp(ts(n)))
            .unwrap();
    }
    let summary = recorder.stop_recording().unwrap();
    let stats = |node: &str| summary.report.nodes[node].stats.clone().unwrap();
    assert_eq!(stats("app-video").metrics["submitted"], submitted as f64);
    // Every submitted frame reached the converter or was dropped there,
    // counted: none vanished (video-normalize then fills the frame-rate
    // grid, and the encoder's own skips are counted too).
    let input = &stats("video-normalize").inputs["video"];
    assert_eq!(input.received, submitted, "{input:?}");
    assert!(
        input.dropped > 0,
        "an app this fast with `DropVideo` has frames dropped"
    );
    for (node, n) in &summary.report.nodes {
        assert_eq!(n.lost, 0, "{node} lost frames");
    }
    let encoded = stats("video-encode").outputs["video"].sent;
    assert_eq!(summary.video_frames, encoded);
    assert_eq!(probe(&summary.path).unwrap().video[0].frames(), encoded);
}

#[test]
fn an_app_built_elsewhere_finds_the_node_executable_or_says_where_it_looked() {
    let s = Scratch::new();
    // The app alone in a directory of its own, as an app outside this
    // workspace: the nodes are found in the checkout the recorder came from.
    let app = s.path("my-app");
    std::fs::copy(app_bin(), &app).unwrap();
    let run = Command::new(&app)
        .arg(s.path("elsewhere.mp4"))
        .args(["--seconds", "1", "--preset", "720p", "--fast"])
        .current_dir(s.dir.path())
        .env_remove("MEDIAGRAPH_NODE_DIR")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    // A directory named by the user is used or refused, never second-guessed.
    let run = Command::new(&app)
        .arg(s.path("nowhere.mp4"))
        .args(["--seconds", "1"])
        .current_dir(s.dir.path())
        .env("MEDIAGRAPH_NODE_DIR", s.path("nowhere"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("nowhere/mediagraph-nodes") && stderr.contains("MEDIAGRAPH_NODE_DIR"),
        "{stderr}"
    );
}

/// A recording streamed live as well (`RecordingConfig::stream`): the app
/// submits frames, nginx records the RTMP publish; both files hold the
/// frames, the key shows nowhere in the statistics.
#[test]
fn a_recording_is_streamed_live_from_the_same_encoders() {
    require_ffmpeg();
    let s = Scratch::new();
    let Some(rtmp) = RtmpServer::start(&s.path("nginx")) else {
        return;
    };
    let mut config = small_config(s.dir.path());
    config.stream = Some(recorder::StreamOutput {
        url: rtmp.url(),
        key: Some("app-secret-key".into()),
        passphrase: None,
    });
    let recorder = CombinedRecorder::new(config).unwrap();
    recorder.start_recording(s.path("live.mp4")).unwrap();
    for n in 0..90 {
        submit_both(&recorder, n);
    }
    let live = recorder.statistics().unwrap();
    assert!(!format!("{live:?}").contains("app-secret-key"));
    let summary = recorder.stop_recording().unwrap();
    assert!(!format!("{summary:?}").contains("app-secret-key"));
    assert_eq!(summary.video_frames, 90);
    let flv = &rtmp.recordings()[0];
    assert!(flv.display().to_string().contains("app-secret-key"));
    assert_eq!(decode_errors(flv), "");
    let streamed = probe(flv).unwrap();
    assert_eq!(streamed.video[0].frames(), 90, "{}", flv.display());
    assert!(!streamed.audio.is_empty());
}

/// An app records the screen (a virtual X screen with a known picture)
/// through the same `screen` kind as graph files, and lists the machine's
/// devices as `runtime devices` does.
#[test]
fn an_app_records_the_screen_and_lists_the_devices() {
    use graph_tests::xvfb::{self, Xvfb};
    require_ffmpeg();
    let s = Scratch::new();
    let x = match Xvfb::start(s.dir.path()) {
        Ok(x) => x,
        Err(why) => return graph_tests::servers::skip(&format!("no virtual X screen: {why}")),
    };
    let devices = recorder::devices().unwrap();
    assert!(devices.hardware_encoders.len() > 1, "{devices:?}");
    let mut config = small_config(s.dir.path());
    config.video.resolution = VideoResolution::Custom {
        width: xvfb::WIDTH,
        height: xvfb::HEIGHT,
    };
    config.video.source = recorder::VideoSource::Screen(recorder::ScreenSource {
        display: Some(x.display.clone()),
        region: None,
        cursor: false,
    });
    config.audio = None;
    let recorder = CombinedRecorder::new(config).unwrap();
    recorder.start_recording(s.path("screen.mp4")).unwrap();
    let events = recorder.subscribe().unwrap();
    while !matches!(events.recv().unwrap(),
        recorder::StatusEvent::Statistics(st) if st.video_frames >= 30)
    {}
    assert!(recorder.statistics().unwrap().nodes.contains_key("screen"));
    let summary = recorder.stop_recording().unwrap();
    assert_eq!(
        probe(&summary.path).unwrap().video[0].frames(),
        summary.video_frames
    );
    let frames = xvfb::decode_rgb(&summary.path, xvfb::WIDTH, xvfb::HEIGHT);
    assert_eq!(frames.len() as u64, summary.video_frames);
    for (n, frame) in frames.iter().enumerate() {
        let bad = xvfb::mismatches(frame, xvfb::WIDTH, (0, 0), 40);
        assert!(bad.is_empty(), "frame {n} is not the picture at {bad:?}");
    }
}

/// An app asks for noise suppression: the steady hiss it submits (white
/// noise, no speech, −30.8 dBFS RMS) is turned down in the file, every
/// frame still there.
#[test]
fn an_apps_background_hiss_is_suppressed_when_it_asks() {
    use graph_tests::audio::{decode_mono, rms_db};
    require_ffmpeg();
    let s = Scratch::new();
    let mut config = small_config(s.dir.path());
    config.audio.as_mut().unwrap().noise_suppression = true;
    let recorder = CombinedRecorder::new(config).unwrap();
    recorder.start_recording(s.path("clean.mp4")).unwrap();
    let samples = (RATE as u64 / FPS) as usize;
    let mut seed = 7u32;
    let mut hiss = vec![0f32; samples * 2];
    for n in 0..180 {
        for v in hiss.iter_mut() {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            *v = 0.05 * ((seed >> 8) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0);
        }
        let (pixels, _) = frame_data(n);
        recorder
            .submit_video_frame(VideoFrame::rgb24(&pixels, 320, 240).with_timestamp(ts(n)))
            .unwrap();
        recorder
            .submit_audio_frame(AudioFrame::interleaved_f32(&hiss, RATE, 2).with_timestamp(ts(n)))
            .unwrap();
    }
    let summary = recorder.stop_recording().unwrap();
    assert_eq!(summary.video_frames, 180);
    let p = probe(&summary.path).unwrap();
    let lasts = p.audio[0].end - p.audio[0].start;
    assert!((lasts - 6.0).abs() <= 0.05, "{lasts} s of audio");
    // Uniform noise of amplitude 0.05: −30.8 dBFS RMS in. RNNoise learns
    // the noise over seconds (measured: −35.7 dBFS in the first second,
    // −40.7 in the fourth, −46.8 in the sixth).
    let heard = decode_mono(&summary.path, None);
    let out = rms_db(&heard, &[(3.0, 5.9)]);
    assert!(
        out < -30.8 - 8.0,
        "the hiss at {out:.1} dBFS RMS in the file"
    );
}
