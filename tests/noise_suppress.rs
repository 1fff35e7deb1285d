//! noise-suppress end to end: speech-like audio (bursts of a harmonic
//! voice in 300–3400 Hz, with a syllable envelope, and pauses) under white
//! noise at a known level, made with ffmpeg's lavfi, replayed by the
//! microphone through noise-suppress, AAC and the mux. Measured on the
//! decoded file against the input: the noise in the pauses, the speech
//! band in the bursts, and the alignment (timestamps unshifted).

use std::process::Command;

use graph_tests::audio::{decode_mono, lavfi_wav, rms_db, tone_db};
use graph_tests::media::{require_ffmpeg, run_tool};
use graph_tests::Scratch;

const GRAPH: &str = r#"
nodes:
  - id: microphone
    node: microphone
    params: { source: "file:{dir}/in.wav", realtime: false }
  - id: denoise
    node: noise-suppress
    inputs: { audio: microphone/audio }
  - id: audio-encode
    node: audio-encode
    inputs: { audio: denoise/audio }
    params: { codec: aac, quality: high }
  - id: mux
    node: mux
    inputs: { audio: audio-encode/audio }
    params: { path: "{dir}/out.mp4", overwrite: true }
"#;

const SECONDS: u32 = 12;

/// Speech on for 0.6 s of every second (a 200 Hz voice: harmonics 2..16,
/// falling 1/k, a 4 Hz syllable envelope), silent for 0.4 s.
fn voice() -> String {
    let harmonics: Vec<String> = (2..=16)
        .map(|k| format!("sin(2*PI*{}*t)/{k}", 200 * k))
        .collect();
    format!(
        "aevalsrc='0.25*lt(mod(t,1),0.6)*(0.3+0.7*abs(sin(2*PI*4*t)))*({})':s=48000:d={SECONDS}:channel_layout=stereo",
        harmonics.join("+")
    )
}

/// The voice plus white noise at 0.02 amplitude (about −39 dBFS RMS).
fn noisy_speech(s: &Scratch) {
    lavfi_wav(&voice(), "anull", &s.path("voice.wav"));
    let noise =
        format!("anoisesrc=color=white:amplitude=0.02:seed=3:sample_rate=48000:duration={SECONDS}");
    lavfi_wav(
        &noise,
        "aformat=channel_layouts=stereo",
        &s.path("noise.wav"),
    );
    run_tool(
        Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-y", "-i"])
            .arg(s.path("voice.wav"))
            .arg("-i")
            .arg(s.path("noise.wav"))
            .args(["-filter_complex", "[0][1]amix=inputs=2:normalize=0"])
            .args(["-c:a", "pcm_f32le"])
            .arg(s.path("in.wav")),
    );
}

/// The pauses (noise only) and the bursts (speech), away from their edges.
fn stretches(from: f64, to: f64) -> Vec<(f64, f64)> {
    (1..SECONDS - 1)
        .map(|k| (k as f64 + from, k as f64 + to))
        .collect()
}

/// The lag (ms) at which `out` best matches `input` over the bursts.
fn lag_ms(input: &[f32], out: &[f32]) -> f64 {
    let (a, n) = (48_000, 48_000 * 8);
    let score = |l: i64| -> f64 {
        (a..a + n)
            .map(|i| input[i] as f64 * out[(i as i64 + l) as usize] as f64)
            .sum()
    };
    let best = (-960..=960).max_by(|x, y| score(*x).total_cmp(&score(*y)));
    best.unwrap() as f64 / 48.0
}

#[test]
fn noise_drops_in_the_pauses_and_speech_stays() {
    require_ffmpeg();
    let s = Scratch::new();
    noisy_speech(&s);
    let graph = s.graph("denoise.yaml", GRAPH);
    let r = s.run(&graph, &[]);
    r.assert_ok();
    let latency = r.node("denoise")["stats"]["metrics"]["processing_latency_ms"].as_f64();
    assert!(latency.is_some_and(|ms| ms >= 10.0), "{latency:?}");

    let (input, out) = (s.path("in.wav"), s.path("out.mp4"));
    let band = "highpass=f=300,lowpass=f=3400";
    let (pauses, bursts) = (stretches(0.7, 0.95), stretches(0.1, 0.5));
    let noise_in = rms_db(&decode_mono(&input, None), &pauses);
    let noise_out = rms_db(&decode_mono(&out, None), &pauses);
    let speech_in = rms_db(&decode_mono(&input, Some(band)), &bursts);
    let speech_out = rms_db(&decode_mono(&out, Some(band)), &bursts);
    let voice_in = tone_db(&decode_mono(&input, None), 400.0, 1.1, 0.4);
    let voice_out = tone_db(&decode_mono(&out, None), 400.0, 1.1, 0.4);
    let lag = lag_ms(&decode_mono(&input, None), &decode_mono(&out, None));
    eprintln!(
        "noise in the pauses {noise_in:.1} → {noise_out:.1} dBFS ({:.1} dB); speech band {speech_in:.1} → {speech_out:.1} dBFS ({:+.1} dB); 400 Hz harmonic {voice_in:.1} → {voice_out:.1}; output lag {lag:+.2} ms; latency {:.1} ms",
        noise_out - noise_in,
        speech_out - speech_in,
        latency.unwrap()
    );
    assert!(
        noise_out - noise_in < -15.0,
        "noise floor only {:.1} dB down",
        noise_out - noise_in
    );
    assert!(
        (speech_out - speech_in).abs() < 3.0,
        "speech band moved {:+.1} dB",
        speech_out - speech_in
    );
    assert!(lag.abs() <= 1.0, "output {lag:+.2} ms off the input");
}
