//! What the bench binaries share: watching a process tree's memory and CPU
//! from /proc, the machine, the test input and checks of outputs with
//! ffprobe, the peers compared with, and small statistics.

pub mod accounting;
pub mod media;
pub mod peers;
pub mod procs;
pub mod rtmp_peer;

use std::path::Path;
use std::process::{Command, Stdio};

/// `N cores, MODEL`: the CPUs this process may use and /proc/cpuinfo's model name.
pub fn machine() -> String {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    format!("{cpus} cores, {model}")
}

/// Whether `program` runs (`version_flag`: how it prints its version).
pub fn on_path(program: &str, version_flag: &str) -> bool {
    Command::new(program)
        .arg(version_flag)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// ffprobe's JSON for `path`: its format and streams, and what `extra`
/// arguments ask for (`-count_packets`, `-show_entries frame=...`). The error
/// says what ffprobe said.
pub fn ffprobe_json(path: &Path, extra: &[&str]) -> anyhow::Result<serde_json::Value> {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-of",
            "json",
            "-show_format",
            "-show_streams",
        ])
        .args(extra)
        .arg(path)
        .output()
        .map_err(|e| anyhow::anyhow!("cannot run ffprobe: {e}"))?;
    if !out.status.success() {
        anyhow::bail!(
            "ffprobe {} failed: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    serde_json::from_slice(&out.stdout).map_err(|e| anyhow::anyhow!("ffprobe printed no JSON: {e}"))
}

/// The median of `xs` (the mean of the middle two for an even count); NaN when empty.
pub fn median(xs: &[f64]) -> f64 {
    let mut v: Vec<f64> = xs.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Walks the command line: `-h` / `--help` prints `help` and exits; every
/// other argument goes to `each`, with a way to take the value after it.
pub fn each_arg(
    help: &str,
    mut each: impl FnMut(&str, &mut dyn FnMut() -> anyhow::Result<String>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "-h" || a == "--help" {
            print!("{help}");
            std::process::exit(0);
        }
        let mut value = || {
            args.next()
                .ok_or_else(|| anyhow::anyhow!("{a} needs a value"))
        };
        each(&a, &mut value)?;
    }
    Ok(())
}

/// What ffprobe says about a media file: its first video and audio streams.
#[derive(Debug, Default, Clone)]
pub struct Probe {
    pub duration_s: f64,
    pub frame_rate: f64,
    pub video_codec: String,
    pub video_frames: u64,
    pub audio_codec: String,
}

/// Probes `path`; `count`: count the packets (for containers whose headers
/// do not say how many frames a stream has, like Matroska).
pub fn probe(path: &Path, count: bool) -> anyhow::Result<Probe> {
    let extra: &[&str] = if count { &["-count_packets"] } else { &[] };
    let v = ffprobe_json(path, extra)?;
    let mut p = Probe {
        duration_s: v["format"]["duration"]
            .as_str()
            .and_then(|d| d.parse().ok())
            .unwrap_or(0.0),
        ..Probe::default()
    };
    for s in v["streams"].as_array().into_iter().flatten() {
        let codec = s["codec_name"].as_str().unwrap_or("").to_string();
        match s["codec_type"].as_str() {
            Some("video") if p.video_codec.is_empty() => {
                p.video_codec = codec;
                p.video_frames = ["nb_frames", "nb_read_packets"]
                    .iter()
                    .find_map(|k| s[*k].as_str()?.parse().ok())
                    .unwrap_or(0);
                p.frame_rate = s["avg_frame_rate"]
                    .as_str()
                    .and_then(|r| {
                        let (n, d) = r.split_once('/')?;
                        let (n, d): (f64, f64) = (n.parse().ok()?, d.parse().ok()?);
                        (d > 0.0).then_some(n / d)
                    })
                    .unwrap_or(0.0);
            }
            Some("audio") if p.audio_codec.is_empty() => p.audio_codec = codec,
            _ => {}
        }
    }
    Ok(p)
}

/// The `q` quantile (0..=1) of `xs`, nearest rank (p99 of 300 values is the
/// 297th smallest); NaN when empty.
pub fn percentile(xs: &[f64], q: f64) -> f64 {
    let mut v: Vec<f64> = xs.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let rank = (q.clamp(0.0, 1.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_even_and_empty() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let xs: Vec<f64> = (1..=300).map(f64::from).collect();
        assert_eq!(percentile(&xs, 0.99), 297.0);
        assert_eq!(percentile(&xs, 0.5), 150.0);
        assert_eq!(percentile(&xs, 1.0), 300.0);
        assert_eq!(percentile(&[7.0], 0.99), 7.0);
        assert!(percentile(&[], 0.99).is_nan());
    }
}
