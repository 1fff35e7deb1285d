//! The media the comparisons share: a lossless test input generated once
//! into a cache directory, and the checks every tool's output must pass.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::{probe, Probe};

/// `$XDG_CACHE_HOME/mediagraph-bench`, else `~/.cache/mediagraph-bench`:
/// the generated inputs, and the static FFmpeg `scripts/setup --bench`
/// unpacks.
pub fn default_cache() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("mediagraph-bench")
}

/// The input's file name: what it holds, so a changed generator or length
/// makes a new file instead of reusing an old one.
pub fn input_name(seconds: u32, fps: u32) -> String {
    format!("testsrc2-1080p{fps}-{seconds}s-ffv1-pcm.mkv")
}

/// SECONDS of 1920x1080 moving test picture (lavfi testsrc2) at `fps` and a
/// 440 Hz stereo tone, stored losslessly (FFV1 + PCM in Matroska) in
/// `cache`; generated on the first call, reused after.
pub fn generated_input(cache: &Path, seconds: u32, fps: u32) -> Result<PathBuf> {
    std::fs::create_dir_all(cache)
        .with_context(|| format!("creating the cache directory {}", cache.display()))?;
    let path = cache.join(input_name(seconds, fps));
    if path.exists() {
        return Ok(path);
    }
    eprintln!("generating {} (once) ...", path.display());
    // Written under another name and renamed: an interrupted generation
    // leaves no short file that later runs would take for the input.
    let partial = path.with_extension("partial.mkv");
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!(
            "testsrc2=size=1920x1080:rate={fps}:duration={seconds}"
        ))
        .args(["-f", "lavfi", "-i"])
        .arg(format!(
            "sine=frequency=440:sample_rate=48000:duration={seconds}"
        ))
        .args([
            "-af",
            "aformat=channel_layouts=stereo",
            "-pix_fmt",
            "yuv420p",
        ])
        // FFV1 version 3 with slices: lossless, and decodable on several threads.
        .args(["-c:v", "ffv1", "-level", "3", "-slices", "16", "-g", "1"])
        .args(["-c:a", "pcm_s16le"])
        .arg(&partial)
        .status()
        .context("running ffmpeg (install it: scripts/setup)")?;
    if !status.success() {
        bail!("ffmpeg could not generate the input ({status})");
    }
    std::fs::rename(&partial, &path)?;
    Ok(path)
}

/// H.264 video and AAC audio, as every compared tool is asked to make.
pub fn check_codecs(output: &Path, p: &Probe) -> Result<()> {
    if p.video_codec != "h264" || p.audio_codec != "aac" {
        bail!(
            "{}: streams are `{}` + `{}`, expected h264 + aac",
            output.display(),
            p.video_codec,
            p.audio_codec
        );
    }
    Ok(())
}

/// Checks an output against the input: H.264 + AAC, the same length within
/// 0.25 s, every frame; `decode`: and that it decodes without an error.
pub fn check_output(output: &Path, input: &Probe, decode: bool) -> Result<Probe> {
    let p = probe(output, false)?;
    check_codecs(output, &p)?;
    if (p.duration_s - input.duration_s).abs() > 0.25 {
        bail!(
            "{}: {:.2} s long, the input is {:.2} s",
            output.display(),
            p.duration_s,
            input.duration_s
        );
    }
    if input.video_frames > 0 && p.video_frames != input.video_frames {
        bail!(
            "{}: {} video frames, the input has {}",
            output.display(),
            p.video_frames,
            input.video_frames
        );
    }
    if decode {
        decodes_cleanly(output)?;
    }
    Ok(p)
}

/// `ffmpeg -v error` decodes the whole file and prints nothing.
pub fn decodes_cleanly(output: &Path) -> Result<()> {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-v", "error", "-i"])
        .arg(output)
        .args(["-f", "null", "-"])
        .output()
        .context("running ffmpeg")?;
    let errors = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() || !errors.trim().is_empty() {
        bail!(
            "{} does not decode cleanly: {}",
            output.display(),
            errors.trim()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_names_say_rate_and_length() {
        assert_eq!(input_name(20, 30), "testsrc2-1080p30-20s-ffv1-pcm.mkv");
        assert_eq!(input_name(60, 60), "testsrc2-1080p60-60s-ffv1-pcm.mkv");
    }
}
