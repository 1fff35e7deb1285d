//! audio-mix end to end: microphones replaying files of pure tones (each
//! input its own frequency, so each is measured alone on the mix) through
//! the mixer, AAC and the mux; the file decoded by ffmpeg and each tone's
//! level read by projecting on it. Then a live gain change through the
//! control API, and the graphs `runtime` refuses before anything starts.

use graph_tests::audio::{decode_mono, lavfi_wav, tone_db};
use graph_tests::control_api::{wait_for_log, wait_until, Api};
use graph_tests::live::LiveRun;
use graph_tests::media::require_ffmpeg;
use graph_tests::Scratch;
use serde_json::json;

/// mic1: mono 440 Hz at 0.2 (−14 dBFS), 6 s; mic2: stereo 1 kHz at 0.1
/// (−20 dBFS), 3 s (it ends early), sent at 44.1 kHz (resampled by the
/// mixer); mic3: 2.5 kHz at 0.2, muted.
const MIX_GRAPH: &str = r#"
nodes:
  - id: mic1
    node: microphone
    params: { source: "file:{dir}/a.wav", realtime: false, channels: 1 }
  - id: mic2
    node: microphone
    params: { source: "file:{dir}/b.wav", realtime: false, sample_rate: 44100 }
  - id: mic3
    node: microphone
    params: { source: "file:{dir}/c.wav", realtime: false }
  - id: mix
    node: audio-mix
    inputs: { mic1: mic1/audio, mic2: mic2/audio, mic3: mic3/audio }
    params: { gain_db: { mic1: -6, mic2: 3.5 }, mute: [mic3] }
  - id: audio-encode
    node: audio-encode
    inputs: { audio: mix/audio }
    params: { codec: aac, quality: high }
  - id: mux
    node: mux
    inputs: { audio: audio-encode/audio }
    params: { path: "{dir}/out.mp4", overwrite: true }
"#;

fn tone(s: &Scratch, name: &str, hz: u32, amplitude: f64, seconds: u32, layout: &str) {
    let source = format!(
        "aevalsrc={amplitude}*sin(2*PI*{hz}*t):s=48000:d={seconds}:channel_layout={layout}"
    );
    lavfi_wav(&source, "anull", &s.path(name));
}

#[test]
fn the_mix_is_the_sum_of_its_inputs_at_their_gains() {
    require_ffmpeg();
    let s = Scratch::new();
    tone(&s, "a.wav", 440, 0.2, 6, "mono");
    tone(&s, "b.wav", 1000, 0.1, 3, "stereo");
    tone(&s, "c.wav", 2500, 0.2, 6, "stereo");
    let graph = s.graph("mix.yaml", MIX_GRAPH);
    let r = s.run(&graph, &[]);
    r.assert_ok();
    let mix = r.node("mix")["stats"]["metrics"].clone();
    assert!(
        mix["input_peak_dbfs_mic1"].as_f64().unwrap() > -30.0,
        "{mix}"
    );
    assert_eq!(mix["input_peak_dbfs_mic3"].as_f64(), Some(-100.0), "{mix}");
    // mic2 ended 3 s before the end: its meter fell to the floor.
    assert_eq!(mix["input_rms_dbfs_mic2"].as_f64(), Some(-100.0), "{mix}");
    // Replayed (no_drop): every input waited for, nothing dropped.
    assert_eq!(mix["dropped"].as_f64(), Some(0.0), "{mix}");

    let out = decode_mono(&s.path("out.mp4"), None);
    let seconds = out.len() as f64 / 48_000.0;
    assert!(
        (seconds - 6.0).abs() < 0.1,
        "{seconds:.3} s: mic2 ended, mic1 went on"
    );
    let a = tone_db(&out, 440.0, 1.0, 1.0);
    let b = tone_db(&out, 1000.0, 1.0, 1.0);
    let c = tone_db(&out, 2500.0, 1.0, 1.0);
    let b_after = tone_db(&out, 1000.0, 4.0, 1.0);
    let a_after = tone_db(&out, 440.0, 4.0, 1.0);
    let (a_want, b_want) = (db(0.2) - 6.0, db(0.1) + 3.5);
    eprintln!(
        "mic1 {a:.3} dBFS (want {a_want:.3}, after mic2 ended {a_after:.3}), mic2 {b:.3} dBFS (want {b_want:.3}; after its end {b_after:.1}), mic3 muted {c:.1} dBFS"
    );
    assert!(
        (a - a_want).abs() < 0.1,
        "mic1 at {a:.3} dBFS, want {a_want:.3}"
    );
    assert!(
        (b - b_want).abs() < 0.1,
        "mic2 at {b:.3} dBFS, want {b_want:.3}"
    );
    assert!(
        (a_after - a_want).abs() < 0.1,
        "mic1 after mic2 ended: {a_after:.3}"
    );
    assert!(c < -70.0, "muted mic3 at {c:.1} dBFS");
    assert!(b_after < -70.0, "mic2 after its end at {b_after:.1} dBFS");
}

fn db(amplitude: f64) -> f64 {
    graph_tests::audio::db(amplitude)
}

/// Two replayed test tones with jittery capture times; `b` (1 kHz) loses
/// 0.5 s at 1.5 s (a device dropout: captured, never delivered).
const GAP_GRAPH: &str = r#"
nodes:
  - id: a
    node: microphone
    params: { source: test, frequency: 440, realtime: false, duration: 4, jitter_ms: 3 }
  - id: b
    node: microphone
    params: { source: test, frequency: 1000, realtime: false, duration: 4, jitter_ms: 3, dropout_at: 1.5, dropout_ms: 500 }
  - id: mix
    node: audio-mix
    inputs: { a: a/audio, b: b/audio }
  - id: audio-encode
    node: audio-encode
    inputs: { audio: mix/audio }
    params: { codec: aac, quality: high }
  - id: mux
    node: mux
    inputs: { audio: audio-encode/audio }
    params: { path: "{dir}/gap.mp4", overwrite: true }
"#;

#[test]
fn a_gap_in_one_input_is_silence_in_its_place_and_the_rest_stays_in_time() {
    require_ffmpeg();
    let s = Scratch::new();
    let graph = s.graph("gap.yaml", GAP_GRAPH);
    let r = s.run(&graph, &[]);
    r.assert_ok();
    let mix = r.node("mix")["stats"]["metrics"].clone();
    let filled = mix["audio_gap_fills"].as_f64().unwrap();
    assert!((filled - 24_000.0).abs() <= 1_024.0, "{mix}");
    assert_eq!(mix["dropped"].as_f64(), Some(0.0), "{mix}");
    let out = decode_mono(&s.path("gap.mp4"), None);
    let seconds = out.len() as f64 / 48_000.0;
    let level = |hz: f64, at: f64| tone_db(&out, hz, at, 0.25);
    let (b_before, b_gap, b_after) = (level(1000.0, 1.0), level(1000.0, 1.65), level(1000.0, 2.5));
    let (a_before, a_gap) = (level(440.0, 1.0), level(440.0, 1.65));
    eprintln!(
        "{seconds:.3} s; b {b_before:.2} / gap {b_gap:.1} / after {b_after:.2} dBFS; a {a_before:.2} / {a_gap:.2} dBFS; {filled} samples filled"
    );
    assert!((seconds - 4.0).abs() < 0.05, "{seconds:.3} s");
    assert!(b_gap < -70.0, "the dropout is silence: {b_gap:.1} dBFS");
    assert!(
        (b_after - b_before).abs() < 0.1,
        "b after the gap {b_after:.2} vs {b_before:.2}"
    );
    assert!(
        (a_gap - a_before).abs() < 0.1,
        "a goes on: {a_gap:.2} vs {a_before:.2}"
    );
}

/// Two live test tones (440 Hz and 1 kHz) mixed and recorded.
const LIVE_GRAPH: &str = r#"
nodes:
  - id: a
    node: microphone
    params: { source: test, frequency: 440 }
  - id: b
    node: microphone
    params: { source: test, frequency: 1000 }
  - id: mix
    node: audio-mix
    inputs: { a: a/audio, b: b/audio }
  - id: audio-encode
    node: audio-encode
    inputs: { audio: mix/audio }
    params: { codec: aac, quality: high }
  - id: mux
    node: mux
    inputs: { audio: audio-encode/audio }
    params: { path: "{dir}/live.mp4", overwrite: true }
"#;

/// Seconds of media the mux has written, from the control API.
fn written_s(api: &Api) -> f64 {
    let stats = api.get("/api/stats");
    stats["nodes"]["mux"]["metrics"]["duration_s"]
        .as_f64()
        .unwrap_or(0.0)
}

#[test]
fn a_live_gain_change_through_the_control_api_shows_in_the_mix() {
    require_ffmpeg();
    let s = Scratch::new();
    let graph = s.graph("live.yaml", LIVE_GRAPH);
    let mut run = LiveRun::start(&s, &graph, &["--control"]);
    run.wait_for("control API: http://127.0.0.1:");
    let api = Api::from_file(&s.path("run/control.json"));
    wait_until("2 s written", || written_s(&api), |t| *t >= 2.0);
    // An input the mixer does not have, or a gain out of range: refused.
    for (value, error) in [
        (json!({"c": -6}), "`c` is not an input"),
        (json!({"a": 40}), "out of range"),
    ] {
        let body = json!({"node": "mix", "name": "gain_db", "value": value});
        let (status, answer) = api.post("/api/params", Some(body));
        assert_eq!(status, 400, "{answer}");
        assert!(
            answer["error"].as_str().unwrap().contains(error),
            "{answer}"
        );
    }
    let body = json!({"node": "mix", "name": "gain_db", "value": {"a": -12}});
    let (status, answer) = api.post("/api/params", Some(body));
    assert_eq!(status, 200, "{answer}");
    wait_for_log(&s.path("run/logs/mix.log"), "gain_db = ");
    let at = written_s(&api);
    wait_until("2 s more written", || written_s(&api), |t| *t >= at + 2.0);
    let (status, _) = api.post("/api/shutdown", None);
    assert_eq!(status, 200);
    run.finish().assert_ok();

    let out = decode_mono(&s.path("live.mp4"), None);
    let end = out.len() as f64 / 48_000.0;
    let (a0, b0) = (
        tone_db(&out, 440.0, 0.5, 1.0),
        tone_db(&out, 1000.0, 0.5, 1.0),
    );
    let (a1, b1) = (
        tone_db(&out, 440.0, end - 1.5, 1.0),
        tone_db(&out, 1000.0, end - 1.5, 1.0),
    );
    eprintln!("before: a {a0:.2} b {b0:.2} dBFS; after: a {a1:.2} b {b1:.2} dBFS");
    assert!(
        (a1 - a0 + 12.0).abs() < 0.2,
        "a went from {a0:.2} to {a1:.2} dBFS"
    );
    assert!((b1 - b0).abs() < 0.2, "b went from {b0:.2} to {b1:.2} dBFS");
}

/// Exit 2 before anything starts, the place (`g.yaml:LINE:COL`) and the cause.
fn refused(yaml: &str, line_with: &str, fragment: &str) {
    let s = Scratch::new();
    let g = s.graph("g.yaml", yaml);
    let r = s.run(&g, &[]);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    let line = yaml.lines().position(|l| l.contains(line_with)).unwrap() + 1;
    let at = format!("g.yaml:{line}:");
    assert!(r.stderr.contains(&at), "no {at} in:\n{}", r.stderr);
    assert!(
        r.stderr.contains(fragment),
        "no `{fragment}` in:\n{}",
        r.stderr
    );
    assert!(!s.path("run").exists(), "nothing started");
}

/// A graph of `n` test microphones into a mix with `params`.
fn mix_of(n: usize, params: &str) -> String {
    let mut yaml = String::from("nodes:\n");
    let mut inputs = Vec::new();
    for i in 1..=n {
        yaml += &format!("  - id: m{i}\n    node: microphone\n    params: {{source: test}}\n");
        inputs.push(format!("m{i}: m{i}/audio"));
    }
    yaml += &format!(
        "  - id: mix\n    node: audio-mix\n    inputs: {{{}}}\n    params: {params}\n",
        inputs.join(", ")
    );
    yaml += "  - id: enc\n    node: audio-encode\n    inputs: {audio: mix/audio}\n";
    yaml +=
        "  - id: mux\n    node: mux\n    inputs: {audio: enc/audio}\n    params: {path: out.mp4}\n";
    yaml
}

#[test]
fn bad_mixes_are_refused_before_anything_starts() {
    refused(
        &mix_of(9, "{}"),
        "inputs: {m1",
        "audio-mix takes at most 8 inputs, 9 are connected",
    );
    refused(
        &mix_of(2, "{gain_db: {m1: 30}}"),
        "gain_db",
        "`m1`: 30 is out of range -60..=24",
    );
    refused(
        &mix_of(2, "{gain_db: {m3: -6}}"),
        "gain_db",
        "`m3` is not an input of this audio-mix",
    );
    refused(
        &mix_of(2, "{mute: [m1, mic2]}"),
        "mute",
        "`mic2` is not an input of this audio-mix",
    );
}
