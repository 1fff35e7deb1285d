//! Audio measured on what a graph wrote: the file decoded by ffmpeg (an
//! optional filter on the way, e.g. a band), then levels computed here:
//! a tone's amplitude by projecting on it (exact over whole cycles, blind
//! to other tones), RMS over stretches of time.

use std::path::Path;
use std::process::Command;

use crate::media::run_tool;

/// The rate files are decoded at.
pub const RATE: u32 = 48_000;

/// Writes a WAV (f32) from an ffmpeg lavfi source and filter.
pub fn lavfi_wav(source: &str, filter: &str, out: &Path) {
    run_tool(
        Command::new("ffmpeg")
            .args([
                "-hide_banner",
                "-loglevel",
                "error",
                "-y",
                "-f",
                "lavfi",
                "-i",
                source,
            ])
            .args(["-af", filter, "-c:a", "pcm_f32le"])
            .arg(out),
    );
}

/// The first channel of `file` at [`RATE`], through `filter` (ffmpeg `-af`) when given.
pub fn decode_mono(file: &Path, filter: Option<&str>) -> Vec<f32> {
    let af = match filter {
        Some(f) => format!("pan=mono|c0=c0,{f}"),
        None => "pan=mono|c0=c0".to_string(),
    };
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-i"])
        .arg(file)
        .args(["-af", &af, "-ar", "48000", "-f", "f32le", "-"])
        .output()
        .expect("ffmpeg runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

pub fn db(amplitude: f64) -> f64 {
    20.0 * amplitude.max(1e-12).log10()
}

/// The amplitude (dBFS peak of a sine) of the `hz` tone in `samples`
/// from `start_s` for `len_s` (a whole number of its cycles in that time
/// makes it exact).
pub fn tone_db(samples: &[f32], hz: f64, start_s: f64, len_s: f64) -> f64 {
    let from = (start_s * RATE as f64) as usize;
    let n = (len_s * RATE as f64) as usize;
    let span = &samples[from..from + n];
    let (mut re, mut im) = (0.0f64, 0.0f64);
    for (i, v) in span.iter().enumerate() {
        let phase = std::f64::consts::TAU * hz * (from + i) as f64 / RATE as f64;
        re += *v as f64 * phase.cos();
        im += *v as f64 * phase.sin();
    }
    db(2.0 * re.hypot(im) / n as f64)
}

/// RMS (dBFS) of `samples` over the stretches `[from_s, to_s)`.
pub fn rms_db(samples: &[f32], stretches: &[(f64, f64)]) -> f64 {
    let (mut sum, mut n) = (0.0f64, 0usize);
    for &(a, b) in stretches {
        let (a, b) = ((a * RATE as f64) as usize, (b * RATE as f64) as usize);
        for v in &samples[a.min(samples.len())..b.min(samples.len())] {
            sum += (*v as f64).powi(2);
            n += 1;
        }
    }
    assert!(n > 0, "no samples in {stretches:?}");
    db((sum / n as f64).sqrt())
}
