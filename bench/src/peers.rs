//! The programs our graph is compared with: the ffmpeg CLI (the system's and
//! other builds, such as the static FFmpeg `scripts/setup --bench` unpacks)
//! and GStreamer's gst-launch-1.0, each given the encoder settings of our
//! graph, and what they print about themselves and their progress.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

/// The static FFmpeg's folder in the bench cache: `scripts/setup --bench`
/// writes `ffmpeg` into it.
pub const STATIC_FFMPEG_DIR: &str = "ffmpeg-static";

/// x264's rate control as our video-encode node sets it.
#[derive(Debug, Clone, PartialEq)]
pub enum Rate {
    Crf(u32),
    /// Average bitrate, bits per second.
    Abr(u64),
    /// Constant bitrate (maxrate = bitrate, a 1 s VBV buffer), bits per second.
    Cbr(u64),
}

/// H.264 (libx264) + AAC in MP4: the settings every peer is given.
#[derive(Debug, Clone, PartialEq)]
pub struct Encode {
    /// x264 preset name.
    pub preset: String,
    pub rate: Rate,
    /// Frames between keyframes.
    pub gop: u32,
    pub tune: Option<String>,
    /// x264 threads; 0: x264's automatic count.
    pub threads: u32,
    /// AAC bits per second.
    pub audio_bps: u64,
    pub faststart: bool,
}

impl Encode {
    /// The output options of the ffmpeg CLI for these settings.
    pub fn ffmpeg_args(&self) -> Vec<String> {
        let mut a: Vec<String> = vec!["-c:v".into(), "libx264".into()];
        a.extend(["-preset".into(), self.preset.clone()]);
        match self.rate {
            Rate::Crf(crf) => a.extend(["-crf".into(), crf.to_string()]),
            Rate::Abr(b) => a.extend(["-b:v".into(), b.to_string()]),
            Rate::Cbr(b) => {
                for k in ["-b:v", "-maxrate", "-minrate", "-bufsize"] {
                    a.extend([k.into(), b.to_string()]);
                }
                a.extend(["-x264-params".into(), "nal-hrd=cbr".into()]);
            }
        }
        a.extend(["-g".into(), self.gop.to_string()]);
        if let Some(tune) = &self.tune {
            a.extend(["-tune".into(), tune.clone()]);
        }
        if self.threads > 0 {
            a.extend(["-threads:v".into(), self.threads.to_string()]);
        }
        a.extend(["-c:a".into(), "aac".into(), "-b:a".into()]);
        a.push(self.audio_bps.to_string());
        if self.faststart {
            a.extend(["-movflags".into(), "+faststart".into()]);
        }
        a
    }

    /// A gst-launch-1.0 pipeline (one argument per element and property)
    /// transcoding a Matroska `input` to an MP4 `output` with the same encode
    /// as [`Encode::ffmpeg_args`]: x264's settings string (its SEI, `strings
    /// out.mp4 | grep x264`) is the same in both files, and so are the
    /// decoded pictures (PSNR/SSIM against the input).
    ///
    /// - `pass=qual quantizer=N` is x264's CRF N, but x264enc also applies its
    ///   `bitrate` (default 2048 kbit/s) as the VBV maxrate in that mode,
    ///   which capped a 1080p CRF 23 encode at 40 % of ffmpeg's size.
    ///   `vbv-buf-capacity=0` makes the VBV buffer 0, and x264 then ignores
    ///   the maxrate: no VBV, as in ffmpeg's CRF encode.
    /// - `speed-preset` applies x264's preset; x264enc leaves every property
    ///   not set here at the preset's value (its own defaults only apply
    ///   without a preset), so threads, lookahead, B-frames, ref and the
    ///   rest come out as ffmpeg's.
    /// - `aud=false`: x264enc writes access unit delimiters by default,
    ///   ffmpeg's libx264 does not.
    /// - `key-int-max` is ffmpeg's `-g`; x264 derives keyint_min from it in
    ///   both.
    ///
    /// What does not match: the VUI colour description (x264enc writes the
    /// colorimetry GStreamer's caps give, BT.709 for HD video whose file says
    /// nothing; ffmpeg writes "unspecified" as the input says: metadata only,
    /// the same pictures), the timestamps' time base (x264enc gives x264
    /// nanoseconds, ffmpeg the MP4 track's; the same frame durations), and
    /// mp4mux's edit list for AAC's priming samples (the file says ~20 ms
    /// longer). Only CRF is offered: ABR/CBR map to different x264enc
    /// VBV rules.
    pub fn gst_pipeline(&self, input: &Path, output: &Path) -> Result<Vec<String>> {
        let Rate::Crf(crf) = self.rate else {
            bail!("the gst-launch-1.0 peer is set up for CRF encodes only");
        };
        let mut x264 = format!(
            "x264enc speed-preset={} pass=qual quantizer={crf} vbv-buf-capacity=0 \
             aud=false key-int-max={}",
            self.preset, self.gop
        );
        if self.threads > 0 {
            x264.push_str(&format!(" threads={}", self.threads));
        }
        if let Some(tune) = &self.tune {
            x264.push_str(&format!(" tune={tune}"));
        }
        let pipeline = format!(
            "filesrc location={} ! matroskademux name=d \
             d.video_0 ! queue ! decodebin ! videoconvert ! {x264} ! queue ! \
             mp4mux name=m faststart={} ! filesink location={} \
             d.audio_0 ! queue ! decodebin ! audioconvert ! audioresample ! \
             avenc_aac bitrate={} ! aacparse ! queue ! m.",
            input.display(),
            self.faststart,
            output.display(),
            self.audio_bps
        );
        Ok(pipeline.split_whitespace().map(String::from).collect())
    }
}

/// What `ffmpeg -version` says of a build: its version number and whether
/// its libraries are linked in (a static build) or shared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FfmpegBuild {
    /// `5.1.9`, `9.0.2`: the leading numbers of the version.
    pub version: String,
    pub static_libs: bool,
}

impl FfmpegBuild {
    /// `ffmpeg 5.1.9`, `ffmpeg 9.0.2 static`: how the tables name it.
    pub fn label(&self) -> String {
        let kind = if self.static_libs { " static" } else { "" };
        format!("ffmpeg {}{kind}", self.version)
    }
}

/// Parses `ffmpeg -version`: `ffmpeg version 5.1.9-0+deb12u1 ...` or
/// `ffmpeg version n9.0.2-17-g2a571b6068-20260930 ...` (release builds
/// from git put an `n` before the number).
pub fn parse_ffmpeg_version(text: &str) -> Option<FfmpegBuild> {
    let word = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("ffmpeg version "))?
        .split_whitespace()
        .next()?;
    let number: String = word
        .trim_start_matches('n')
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let number = number.trim_end_matches('.');
    if number.is_empty() {
        return None;
    }
    // A distribution's build links FFmpeg's shared libraries
    // (--enable-shared); a static build has them inside.
    let configuration = text.lines().find(|l| l.starts_with("configuration:"));
    Some(FfmpegBuild {
        version: number.to_string(),
        static_libs: configuration.is_some_and(|c| !c.contains("--enable-shared")),
    })
}

/// Runs `bin -version` and parses it.
pub fn ffmpeg_build(bin: &Path) -> Result<FfmpegBuild> {
    let out = Command::new(bin)
        .args(["-hide_banner", "-version"])
        .output()
        .with_context(|| format!("running {} -version", bin.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    parse_ffmpeg_version(&text)
        .with_context(|| format!("{} -version printed no ffmpeg version", bin.display()))
}

/// The static FFmpeg in the bench cache, when `scripts/setup --bench` put it
/// there and it runs.
pub fn static_ffmpeg(cache: &Path) -> Option<PathBuf> {
    let bin = cache.join(STATIC_FFMPEG_DIR).join("ffmpeg");
    crate::on_path(bin.to_str()?, "-version").then_some(bin)
}

/// Runs `scripts/setup --bench` of this checkout (it apt-installs, so as
/// root), its output going to ours.
pub fn run_setup_bench() -> Result<()> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/setup");
    if !script.exists() {
        bail!("{} not found", script.display());
    }
    let status = Command::new("bash")
        .arg(&script)
        .arg("--bench")
        .stdin(Stdio::null())
        .status()
        .context("running scripts/setup --bench")?;
    if !status.success() {
        bail!("scripts/setup --bench failed ({status})");
    }
    Ok(())
}

/// Whether this process runs as root (may apt-get install).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// The last counters of ffmpeg's `-progress` output (blocks of `key=value`
/// lines, each closed by `progress=continue`, the last by `progress=end`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    /// Frames encoded.
    pub frames: u64,
    /// Frames the video sync dropped (`drop_frames`).
    pub dropped: u64,
    /// Frames the video sync duplicated (`dup_frames`).
    pub duplicated: u64,
    /// The last block was `progress=end`: ffmpeg finished its output.
    pub ended: bool,
}

pub fn parse_progress(text: &str) -> Progress {
    let mut p = Progress::default();
    for line in text.lines() {
        let Some((key, value)) = line.trim().split_once('=') else {
            continue;
        };
        let number = || value.trim().parse().unwrap_or(0);
        match key.trim() {
            "frame" => p.frames = number(),
            "drop_frames" => p.dropped = number(),
            "dup_frames" => p.duplicated = number(),
            "progress" => p.ended = value.trim() == "end",
            _ => {}
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_of_a_distribution_and_a_static_build() {
        let debian =
            "ffmpeg version 5.1.9-0+deb12u1 Copyright (c) 2000-2026 the FFmpeg developers\n\
                      built with gcc 12 (Debian 12.2.0-14+deb12u1)\n\
                      configuration: --prefix=/usr --enable-gpl --enable-shared\n";
        assert_eq!(
            parse_ffmpeg_version(debian),
            Some(FfmpegBuild {
                version: "5.1.9".into(),
                static_libs: false
            })
        );
        let built = "ffmpeg version n9.0.2-17-g2a571b6068-20260930 Copyright (c) 2000-2026\n\
                     configuration: --pkg-config-flags=--static --enable-gpl --enable-libx264\n";
        let b = parse_ffmpeg_version(built).unwrap();
        assert_eq!(b.label(), "ffmpeg 9.0.2 static");
        assert_eq!(
            parse_ffmpeg_version("ffmpeg version 7.1 Copyright").map(|b| b.version),
            Some("7.1".into())
        );
        assert_eq!(parse_ffmpeg_version("ffmpeg version git-2024 x"), None);
        assert_eq!(parse_ffmpeg_version("gst-launch-1.0 version 1.22.0"), None);
    }

    #[test]
    fn progress_keeps_the_last_block() {
        let text = "frame=10\nfps=0.0\ndup_frames=0\ndrop_frames=0\nprogress=continue\n\
                    frame=600\nfps=60.0\ndup_frames=2\ndrop_frames=5\nspeed=1.0x\nprogress=end\n";
        assert_eq!(
            parse_progress(text),
            Progress {
                frames: 600,
                dropped: 5,
                duplicated: 2,
                ended: true
            }
        );
        let cut = "frame=10\ndrop_frames=1\nprogress=continue\nframe=20\n";
        let p = parse_progress(cut);
        assert_eq!((p.frames, p.dropped, p.ended), (20, 1, false));
        assert_eq!(parse_progress(""), Progress::default());
    }

    fn crf23() -> Encode {
        Encode {
            preset: "veryfast".into(),
            rate: Rate::Crf(23),
            gop: 60,
            tune: None,
            threads: 0,
            audio_bps: 128_000,
            faststart: true,
        }
    }

    #[test]
    fn ffmpeg_gets_the_graphs_settings() {
        assert_eq!(
            crf23().ffmpeg_args().join(" "),
            "-c:v libx264 -preset veryfast -crf 23 -g 60 -c:a aac -b:a 128000 -movflags +faststart"
        );
        let cbr = Encode {
            rate: Rate::Cbr(4_000_000),
            tune: Some("zerolatency".into()),
            faststart: false,
            ..crf23()
        };
        let args = cbr.ffmpeg_args().join(" ");
        assert!(args.contains("-b:v 4000000 -maxrate 4000000 -minrate 4000000 -bufsize 4000000"));
        assert!(args.contains("-x264-params nal-hrd=cbr"));
        assert!(args.contains("-tune zerolatency"));
        assert!(!args.contains("faststart"));
    }

    #[test]
    fn gst_pipeline_turns_off_x264encs_vbv_cap() {
        let p = crf23()
            .gst_pipeline(Path::new("in.mkv"), Path::new("out.mp4"))
            .unwrap();
        for want in [
            "pass=qual",
            "quantizer=23",
            "vbv-buf-capacity=0",
            "aud=false",
            "key-int-max=60",
            "speed-preset=veryfast",
            "faststart=true",
            "bitrate=128000",
            "location=out.mp4",
        ] {
            assert!(p.iter().any(|a| a == want), "{want} missing from {p:?}");
        }
        let abr = Encode {
            rate: Rate::Abr(1),
            ..crf23()
        };
        assert!(abr.gst_pipeline(Path::new("a"), Path::new("b")).is_err());
    }
}
