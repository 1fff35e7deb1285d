//! Loudness normalization end to end: speech-like inputs made with the
//! ffmpeg CLI at -30 LUFS, replayed by the microphone as a file (not real
//! time) through audio-normalize and the AAC encoder into an MP4; the file
//! is measured with ffmpeg's `loudnorm` (BS.1770 integrated loudness and
//! true peak, two decimals). Assertions are on measured values only.

use std::path::Path;
use std::process::Command;

use graph_tests::media::{require_ffmpeg, run_tool};
use graph_tests::Scratch;

const GRAPH: &str = r#"
name: loudness
vars:
  target: -16
  mode: live
  lookahead: 0
nodes:
  - id: microphone
    node: microphone
    params: { source: "file:{dir}/in.wav", realtime: false }
  - id: audio-normalize
    node: audio-normalize
    inputs: { audio: microphone/audio }
    params: { sample_rate: 48000, channels: 2, target_lufs: "${target}", true_peak_db: -1, mode: "${mode}", lookahead_s: "${lookahead}" }
  - id: audio-encode
    node: audio-encode
    inputs: { audio: audio-normalize/audio }
    params: { codec: aac, quality: standard }
  - id: mux
    node: mux
    inputs: { audio: audio-encode/audio }
    params: { path: "{dir}/out.mp4", overwrite: true }
"#;

/// +10 dB for 0.5 s every 5 s.
const BURSTS_10: &str = "*if(between(mod(t,5),1.5,2),3.16,1)";
/// +15.6 dB for 1 s every 7 s (the first heard at 10 s, after speech
/// only): most of the program's energy.
const BURSTS_15: &str = "*if(between(mod(t,7),3,4),6,1)";

/// Pink noise band-limited to speech, with a syllable envelope (~4 Hz) and
/// pauses, times `bursts` (an ffmpeg expression). Scaled to -30 LUFS.
fn speech_like(s: &Scratch, seconds: u32, bursts: &str) {
    let env =
        format!("(0.15+0.85*abs(sin(2*PI*2.1*t)))*if(gt(sin(2*PI*0.17*t+1),-0.6),1,0.05){bursts}");
    let raw = s.path("raw.wav");
    let source =
        format!("anoisesrc=color=pink:sample_rate=48000:amplitude=0.5:seed=7:duration={seconds}");
    let shape = format!(
        "highpass=f=120,lowpass=f=5000,volume=eval=frame:volume='{env}',aformat=channel_layouts=stereo:sample_fmts=flt"
    );
    ffmpeg(&["-f", "lavfi", "-i", &source, "-af", &shape], &raw);
    let (lufs, _) = measure(&raw);
    let gain = format!("volume={:.3}dB", -30.0 - lufs);
    ffmpeg(
        &["-i", raw.to_str().unwrap(), "-af", &gain],
        &s.path("in.wav"),
    );
}

fn ffmpeg(args: &[&str], out: &Path) {
    run_tool(
        Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-y"])
            .args(args)
            .args(["-c:a", "pcm_f32le"])
            .arg(out),
    );
}

/// (integrated loudness LUFS, true peak dBTP) as ffmpeg's loudnorm reads them.
fn measure(file: &Path) -> (f64, f64) {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-i"])
        .arg(file)
        .args(["-af", "loudnorm=print_format=json", "-f", "null", "-"])
        .output()
        .expect("ffmpeg runs");
    let text = String::from_utf8_lossy(&out.stderr);
    let json = &text[text.rfind('{').expect("loudnorm's JSON")..];
    let v: serde_json::Value = serde_json::from_str(json.trim()).expect("JSON");
    let num = |k: &str| v[k].as_str().unwrap().parse::<f64>().unwrap();
    (num("input_i"), num("input_tp"))
}

/// (integrated loudness LUFS, true peak dBTP) read by libebur128 (the
/// `ebur128` crate) on the decoded file: on bursty programs loudnorm's
/// `input_i` reads up to 2 LU off ffmpeg's own `ebur128` filter, which
/// agrees with this one (README, Loudness).
fn measure_bs1770(file: &Path) -> (f64, f64) {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-i"])
        .arg(file)
        .args(["-ac", "2", "-ar", "48000", "-f", "f32le", "-"])
        .output()
        .expect("ffmpeg runs");
    let samples: Vec<f32> = out
        .stdout
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let mode = ebur128::Mode::I | ebur128::Mode::TRUE_PEAK;
    let mut m = ebur128::EbuR128::new(2, 48_000, mode).unwrap();
    m.add_frames_f32(&samples).unwrap();
    let tp = (0..2).map(|c| m.true_peak(c).unwrap()).fold(0.0, f64::max);
    (m.loudness_global().unwrap(), 20.0 * tp.log10())
}

/// Runs the graph at `target` in `mode`; the output's (LUFS, dBTP) by
/// libebur128, and loudnorm's LUFS (printed).
fn normalize(s: &Scratch, target: f64, mode: &str) -> (f64, f64) {
    normalize_ahead(s, target, mode, 0.0)
}

/// [`normalize`] with the live gain looking `lookahead` seconds ahead.
fn normalize_ahead(s: &Scratch, target: f64, mode: &str, lookahead: f64) -> (f64, f64) {
    let graph = s.graph("loudness.yaml", GRAPH);
    let (set, mode) = (format!("target={target}"), format!("mode={mode}"));
    let ahead = format!("lookahead={lookahead}");
    s.run(&graph, &["--set", &set, "--set", &mode, "--set", &ahead])
        .assert_ok();
    let file = s.path("out.mp4");
    let (lufs, tp) = measure_bs1770(&file);
    eprintln!(
        "  {mode} {target} (look-ahead {lookahead} s): {lufs:.2} LUFS, {tp:.2} dBTP (loudnorm {:.2})",
        measure(&file).0
    );
    (lufs, tp)
}

#[test]
fn speech_reaches_the_target_within_half_a_lu_under_the_ceiling() {
    require_ffmpeg();
    let s = Scratch::new();
    speech_like(&s, 30, "");
    for target in [-16.0, -23.0] {
        let (lufs, tp) = normalize(&s, target, "live");
        assert!((lufs - target).abs() <= 0.5, "{lufs:.2} LUFS for {target}");
        assert!(tp <= -1.0, "true peak {tp:.2} dBTP over -1");
    }
}

#[test]
fn bursts_stay_under_the_true_peak_ceiling_after_aac() {
    require_ffmpeg();
    let s = Scratch::new();
    speech_like(&s, 30, BURSTS_10);
    for target in [-16.0, -23.0] {
        let (lufs, tp) = normalize(&s, target, "live");
        assert!(tp <= -1.0, "true peak {tp:.2} dBTP over -1");
        assert!((lufs - target).abs() <= 0.5, "{lufs:.2} LUFS for {target}");
    }
}

#[test]
fn two_pass_brings_every_input_within_a_fifth_of_a_lu() {
    require_ffmpeg();
    let s = Scratch::new();
    for bursts in ["", BURSTS_10, BURSTS_15] {
        speech_like(&s, 30, bursts);
        eprintln!("input: speech-like{bursts}");
        for target in [-16.0, -23.0] {
            let (lufs, tp) = normalize(&s, target, "two-pass");
            assert!((lufs - target).abs() <= 0.2, "{lufs:.2} LUFS for {target}");
            assert!(tp <= -1.0, "true peak {tp:.2} dBTP over -1");
        }
    }
}

/// Bursts carrying most of the energy after 10 s of quieter speech: the
/// live gain, set on the speech, plays the first burst ~7 dB loud (−14.5
/// LUFS for −16); looking 5 s ahead, the burst lowers the gain before it is
/// heard. What is left is the speech before the look-ahead saw any burst,
/// which no one-pass gain can know (README, Loudness).
#[test]
fn looking_ahead_lowers_the_gain_before_a_burst_is_heard() {
    require_ffmpeg();
    let s = Scratch::new();
    speech_like(&s, 30, BURSTS_15);
    let (plain, _) = normalize_ahead(&s, -16.0, "live", 0.0);
    let (ahead, tp) = normalize_ahead(&s, -16.0, "live", 5.0);
    assert!((ahead + 16.0).abs() <= 0.5, "{ahead:.2} LUFS for -16");
    assert!(
        (ahead + 16.0).abs() < (plain + 16.0).abs(),
        "{ahead:.2} LUFS with look-ahead, {plain:.2} without"
    );
    assert!(tp <= -1.0, "true peak {tp:.2} dBTP over -1");
}
