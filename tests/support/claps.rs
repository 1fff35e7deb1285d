//! Finds the clapperboard in a recording with FFmpeg's own filters: the white
//! flashes of the video (`signalstats` mean luma) and the onsets of the 1 kHz
//! beeps of the audio (`astats` RMS per millisecond), each at its
//! presentation time as the FFmpeg CLI decodes it (edit lists, skip samples
//! and codec delay applied), so A/V offsets are measured on the decoded
//! output the way a player presents it.

use std::path::Path;
use std::process::Command;

/// Mean luma (8-bit) above which a frame is the white clapper frame.
const FLASH_LUMA: f64 = 200.0;
/// RMS level (dBFS) above which a millisecond of audio is part of a beep.
const BEEP_DB: f64 = -40.0;
/// Quiet needed before a loud millisecond counts as a new beep's onset.
const QUIET_BEFORE_S: f64 = 0.2;

/// `(pts_time, value)` per frame of `path`'s stream `index` of `kind` (`a`
/// or `v`) after `filters`, whose last one prints the metadata `key`.
/// Decoded by the FFmpeg CLI, which applies edit lists, skip samples and
/// codec delay as a player does.
fn frame_values(
    path: &Path,
    (kind, index): (&str, usize),
    filters: &str,
    key: &str,
) -> Vec<(f64, f64)> {
    let meta = if kind == "a" { "ametadata" } else { "metadata" };
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(path)
        .args(["-map", &format!("0:{kind}:{index}"), "-filter:0"])
        .arg(format!("{filters},{meta}=print:key={key}:file=-"))
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg runs");
    assert!(
        out.status.success(),
        "ffmpeg {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut values = Vec::new();
    let mut pts_time = None;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        if let Some(t) = line.split("pts_time:").nth(1) {
            pts_time = t.split_whitespace().next().and_then(|t| t.parse().ok());
        } else if let (Some(v), Some(t)) = (line.strip_prefix(&format!("{key}=")), pts_time) {
            let v = if v.trim() == "-inf" {
                f64::NEG_INFINITY
            } else {
                match v.trim().parse() {
                    Ok(v) => v,
                    Err(_) => continue,
                }
            };
            values.push((t, v));
        }
    }
    values
}

/// Presentation times (s) of the first frame of each white flash.
pub fn flashes(path: &Path) -> Vec<f64> {
    flashes_of(path, 0)
}

/// [`flashes`] of video track `track` (0: the first).
pub fn flashes_of(path: &Path, track: usize) -> Vec<f64> {
    let mut flashes = Vec::new();
    let mut was_white = false;
    let stats = "signalstats";
    for (t, luma) in frame_values(path, ("v", track), stats, "lavfi.signalstats.YAVG") {
        let white = luma > FLASH_LUMA;
        if white && !was_white {
            flashes.push(t);
        }
        was_white = white;
    }
    flashes
}

/// Presentation times (s) of each beep's onset in the first audio track,
/// to the millisecond.
pub fn beeps(path: &Path) -> Vec<f64> {
    beeps_of(path, 0)
}

/// [`beeps`] of audio track `track` (0: the first).
pub fn beeps_of(path: &Path, track: usize) -> Vec<f64> {
    let filters = "pan=mono|c0=c0,asetnsamples=n=48:p=0,astats=metadata=1:reset=1:measure_overall=none:measure_perchannel=RMS_level";
    let mut beeps = Vec::new();
    let mut quiet_since = Some(f64::NEG_INFINITY);
    for (t, db) in frame_values(path, ("a", track), filters, "lavfi.astats.1.RMS_level") {
        if db > BEEP_DB {
            if quiet_since.is_some_and(|q| t - q >= QUIET_BEFORE_S) {
                beeps.push(t);
            }
            quiet_since = None;
        } else if quiet_since.is_none() {
            quiet_since = Some(t);
        }
    }
    beeps
}

/// One clap: when its flash is shown and how late its beep sounds (ms,
/// negative when early).
#[derive(Debug, Clone, Copy)]
pub struct Clap {
    pub at: f64,
    pub offset_ms: f64,
}

/// Pairs every flash with the nearest beep within half a second.
pub fn claps(path: &Path) -> Vec<Clap> {
    claps_of(path, 0)
}

/// [`claps`] with the beeps of audio track `track` (0: the first).
pub fn claps_of(path: &Path, track: usize) -> Vec<Clap> {
    let beeps = beeps_of(path, track);
    flashes(path)
        .into_iter()
        .filter_map(|at| {
            let beep = beeps
                .iter()
                .copied()
                .min_by(|a, b| (a - at).abs().total_cmp(&(b - at).abs()))?;
            ((beep - at).abs() < 0.5).then_some(Clap {
                at,
                offset_ms: (beep - at) * 1000.0,
            })
        })
        .collect()
}

/// The claps as `0.033s:+0.7ms ...` (when shown, how late the beep).
pub fn describe(claps: &[Clap]) -> String {
    claps
        .iter()
        .map(|c| format!("{:.3}s:{:+.1}ms", c.at, c.offset_ms))
        .collect::<Vec<_>>()
        .join(" ")
}
