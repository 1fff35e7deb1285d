//! What the bench binaries share: watching a process tree's memory and CPU
//! from /proc, and small statistics.

pub mod procs;

use std::path::Path;
use std::process::Command;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_even_and_empty() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&[]).is_nan());
    }
}
