//! Finds the clapperboard in a recording with FFmpeg's own filters: the white
//! flashes of the video (`signalstats` mean luma) and the onsets of the 1 kHz
//! beeps of the audio (`astats` RMS per millisecond), each at its
//! presentation time, so A/V offsets are measured on the decoded output the
//! way a player presents it.

use std::path::Path;
use std::process::Command;

/// Mean luma (8-bit) above which a frame is the white clapper frame.
const FLASH_LUMA: f64 = 200.0;
/// RMS level (dBFS) above which a millisecond of audio is part of a beep.
const BEEP_DB: f64 = -40.0;
/// Quiet needed before a loud millisecond counts as a new beep's onset.
const QUIET_BEFORE_S: f64 = 0.2;

/// `(pts_time, value)` per frame of an ffprobe lavfi source.
fn frame_values(graph: &str, tag: &str) -> Vec<(f64, f64)> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-f", "lavfi", "-i", graph, "-show_entries"])
        .arg(format!("frame=pts_time:frame_tags={tag}"))
        .args(["-of", "csv=p=0"])
        .output()
        .expect("ffprobe runs");
    assert!(
        out.status.success(),
        "ffprobe {graph}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let (t, v) = line.split_once(',')?;
            let v = if v.trim() == "-inf" {
                f64::NEG_INFINITY
            } else {
                v.trim().parse().ok()?
            };
            Some((t.trim().parse().ok()?, v))
        })
        .collect()
}

/// The filter-graph form of a path (`movie=` takes escaped file names).
fn movie_arg(path: &Path) -> String {
    path.display()
        .to_string()
        .replace('\\', "\\\\\\\\")
        .replace(':', "\\\\:")
        .replace(',', "\\,")
}

/// Presentation times (s) of the first frame of each white flash.
pub fn flashes(path: &Path) -> Vec<f64> {
    let graph = format!("movie={},signalstats", movie_arg(path));
    let mut flashes = Vec::new();
    let mut was_white = false;
    for (t, luma) in frame_values(&graph, "lavfi.signalstats.YAVG") {
        let white = luma > FLASH_LUMA;
        if white && !was_white {
            flashes.push(t);
        }
        was_white = white;
    }
    flashes
}

/// Presentation times (s) of each beep's onset, to the millisecond.
pub fn beeps(path: &Path) -> Vec<f64> {
    let graph = format!(
        "amovie={},pan=mono|c0=c0,asetnsamples=n=48:p=0,astats=metadata=1:reset=1:measure_overall=none:measure_perchannel=RMS_level",
        movie_arg(path)
    );
    let mut beeps = Vec::new();
    let mut quiet_since = Some(f64::NEG_INFINITY);
    for (t, db) in frame_values(&graph, "lavfi.astats.1.RMS_level") {
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
    let beeps = beeps(path);
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
