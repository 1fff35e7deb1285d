//! `hls`: writes encoded tracks as an HLS playlist and its segments.

use std::path::Path;

use super::{no_inputs_rule, no_value_rule, problems, KindSpec};
use crate::params::{ParamSpec, Params};
use crate::read::Reader;
use crate::{Format, PortType, Problem};

crate::choice! {
    /// The segments' container: MPEG-TS (`.ts`) or fragmented MP4 (`.m4s`
    /// with an `init.mp4`).
    pub enum SegmentType { Ts = "ts", Fmp4 = "fmp4" }
}

impl SegmentType {
    pub fn format(self) -> Format {
        match self {
            SegmentType::Ts => Format::MpegTs,
            SegmentType::Fmp4 => Format::Mp4,
        }
    }
}

pub const DEFAULT_DIR: &str = "hls";
pub const DEFAULT_PLAYLIST: &str = "index.m3u8";
pub const DEFAULT_SEGMENT_TYPE: SegmentType = SegmentType::Ts;
/// Seconds.
pub const DEFAULT_SEGMENT_DURATION: f64 = 2.0;
/// Segments in a rolling playlist; 0: every segment (a full playlist).
pub const DEFAULT_LIST_SIZE: i64 = 6;
/// Seconds of media.
pub const DEFAULT_QUEUE_DURATION: f64 = 5.0;

/// The params of `hls`, typed.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub dir: String,
    pub playlist: String,
    pub segment_type: SegmentType,
    pub segment_duration: f64,
    pub list_size: i64,
    pub queue_duration: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            dir: DEFAULT_DIR.into(),
            playlist: DEFAULT_PLAYLIST.into(),
            segment_type: DEFAULT_SEGMENT_TYPE,
            segment_duration: DEFAULT_SEGMENT_DURATION,
            list_size: DEFAULT_LIST_SIZE,
            queue_duration: DEFAULT_QUEUE_DURATION,
        }
    }
}

impl Settings {
    pub fn from_params(p: &Params) -> Result<Settings, Problem> {
        let r = Reader::new(PARAMS, p);
        let s = Settings {
            dir: r.text("dir", DEFAULT_DIR)?,
            playlist: r.text("playlist", DEFAULT_PLAYLIST)?,
            segment_type: r.choice("segment_type", DEFAULT_SEGMENT_TYPE)?,
            segment_duration: r.float("segment_duration", DEFAULT_SEGMENT_DURATION)?,
            list_size: r.int("list_size", DEFAULT_LIST_SIZE)?,
            queue_duration: r.float("queue_duration", DEFAULT_QUEUE_DURATION)?,
        };
        if s.playlist.contains('/') || !s.playlist.ends_with(".m3u8") {
            return Err(Problem::new(
                "playlist",
                format!(
                    "`{}`: a file name ending in .m3u8, inside `dir`",
                    s.playlist
                ),
            ));
        }
        Ok(s)
    }
}

fn rules(p: &Params) -> Vec<Problem> {
    problems(Settings::from_params(p))
}

/// The directory must exist and be writable (or be creatable in one that is).
fn host_checks(p: &Params) -> Vec<Problem> {
    let Ok(s) = Settings::from_params(p) else {
        return Vec::new(); // a rule reports it
    };
    let dir = Path::new(&s.dir);
    let check = if dir.exists() {
        dir
    } else {
        dir.parent().unwrap_or(Path::new("."))
    };
    let check = if check.as_os_str().is_empty() {
        Path::new(".")
    } else {
        check
    };
    let problem = if !check.is_dir() {
        Some(format!("`{}` is not a directory", check.display()))
    } else if !writable(check) {
        Some(format!("directory `{}` is not writable", check.display()))
    } else {
        None
    };
    problem
        .map(|m| Problem::new("dir", m))
        .into_iter()
        .collect()
}

fn writable(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).unwrap_or_default();
    // SAFETY: a valid NUL-terminated path; access(2) only reads it.
    unsafe { libc::access(c.as_ptr(), libc::W_OK) == 0 }
}

fn format(p: &Params) -> Option<Format> {
    Some(Settings::from_params(p).ok()?.segment_type.format())
}

const PARAMS: &[ParamSpec] = &[
    ParamSpec::text("dir", Some(DEFAULT_DIR), "the directory the playlist and segments go in (created if missing; its parent must exist); serve it over HTTP to play it"),
    ParamSpec::text("playlist", Some(DEFAULT_PLAYLIST), "the playlist's file name in `dir` (.m3u8)"),
    ParamSpec::choice("segment_type", SegmentType::NAMES, Some(DEFAULT_SEGMENT_TYPE.name()), "`ts`: MPEG-TS segments (H.264/H.265 with AAC, MP3, Opus); `fmp4`: fragmented MP4 segments with an init.mp4"),
    ParamSpec::float("segment_duration", (0.5, 60.0), Some(DEFAULT_SEGMENT_DURATION), "the target segment duration, seconds; segments are cut on video keyframes, so a segment lasts a whole number of the encoder's `keyframe_interval`s, at least this"),
    ParamSpec::int("list_size", (0, 100_000), Some(DEFAULT_LIST_SIZE), "segments in the playlist: a rolling live playlist of the newest ones (older segment files are deleted); 0: every segment stays listed (an event playlist, complete for replay at the end)"),
    ParamSpec::float("queue_duration", (0.5, 60.0), Some(DEFAULT_QUEUE_DURATION), "seconds of media queued while writing is slow; past it the queue is dropped (counted) and writing resumes on the next keyframe. The encoders and the recording never wait for it"),
];

pub const SPEC: KindSpec = KindSpec {
    kind: "hls",
    doc: "Writes encoded tracks as HTTP Live Streaming: a playlist and TS or fMP4 segments cut on keyframes, in a directory any HTTP server can serve (hls.js, Safari, ffplay). Rolling (live) or full playlist. Fed by the same encoders as the recording, behind its own bounded queue.",
    inputs: &[],
    any_inputs: Some(&[PortType::EncodedVideo, PortType::EncodedAudio]),
    outputs: &[],
    params: PARAMS,
    rules,
    host_checks,
    value_rule: no_value_rule,
    inputs_rule: no_inputs_rule,
    format: Some(format),
    hosted: false,
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::testing::{assert_settings_parse, with};
    use serde_json::json;

    #[test]
    fn settings_parse() {
        assert_settings_parse(&SPEC, Settings::from_params);
        assert_eq!(
            format(&with(&SPEC, "segment_type", json!("fmp4"))),
            Some(Format::Mp4)
        );
    }

    #[test]
    fn playlist_and_directory_checks() {
        assert!(rules(&with(&SPEC, "playlist", json!("a/b.m3u8")))[0]
            .message
            .contains(".m3u8"));
        let p = with(&SPEC, "dir", json!("/proc/self/hls"));
        assert!(
            host_checks(&p)[0].message.contains("not writable"),
            "{:?}",
            host_checks(&p)
        );
        let p = with(&SPEC, "dir", json!("/no/such/parent/hls"));
        assert!(host_checks(&p)[0].message.contains("not a directory"));
    }
}
