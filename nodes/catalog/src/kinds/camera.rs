//! `camera`: video capture from a camera, a file or URL, or a test pattern.

use super::common::{self, PixelFormat, TestDevice, TEST_DEVICE};
use super::{no_inputs_rule, no_value_rule, KindSpec, PortSpec};
use crate::params::{ParamSpec, Params};
use crate::read::Reader;
use crate::value::Rational;
use crate::{PortType, Problem};

/// What the `source` param names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The first camera, else the test pattern (with a warning).
    Auto,
    /// A camera by index or by name.
    Device(String),
    Test,
    /// A local file (the `file:` prefix removed) or a URL FFmpeg can open.
    Media(String),
}

impl Source {
    /// `auto`, `test`, `device:<index|name>`, `file:<path>` or a URL.
    pub fn parse(text: &str) -> Result<Source, Problem> {
        let text = text.trim();
        let fail = |m: String| Err(Problem::new("source", m));
        Ok(match (text, common::scheme(text)) {
            ("auto", _) => Source::Auto,
            ("test", _) => Source::Test,
            (_, Some(("device", ""))) => {
                return fail(
                    "source `device:` needs a camera index or name, e.g. `device:0`".into(),
                )
            }
            (_, Some(("device", device))) => Source::Device(device.to_string()),
            (_, Some(("file", ""))) => {
                return fail("source `file:` needs a path, e.g. `file:clip.mp4`".into())
            }
            (_, Some((_, path))) => Source::Media(path.to_string()),
            (url, None) if url.contains("://") => Source::Media(url.to_string()),
            _ => {
                return fail(format!(
                "unknown source `{text}`: use auto, test, device:<index|name>, file:<path> or a URL; to record the screen, use a node of kind `screen` instead of a camera"
            ))
            }
        })
    }
}

crate::choice! {
    /// The test pattern.
    pub enum Pattern { Bars = "bars", Clapper = "clapper" }
}

pub const DEFAULT_SOURCE: &str = "auto";
pub const DEFAULT_REALTIME: bool = true;
pub const DEFAULT_PATTERN: Pattern = Pattern::Bars;
pub const DEFAULT_LOOP: bool = false;
/// No grain: the pattern compresses to almost nothing.
pub const DEFAULT_NOISE: u32 = 0;

/// The camera's params, typed.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub source: Source,
    pub realtime: bool,
    /// The size made: the params', each odd one rounded down with `round_to_even`.
    pub width: u32,
    pub height: u32,
    pub fps: Rational,
    pub pixel_format: PixelFormat,
    pub pattern: Pattern,
    /// Grain of ±`noise` levels on every sample of the test pattern.
    pub noise: u32,
    pub looping: bool,
    pub test_device: TestDevice,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            source: Source::Auto,
            realtime: DEFAULT_REALTIME,
            width: common::DEFAULT_WIDTH,
            height: common::DEFAULT_HEIGHT,
            fps: common::DEFAULT_FPS,
            pixel_format: common::DEFAULT_PIXEL_FORMAT,
            pattern: DEFAULT_PATTERN,
            noise: DEFAULT_NOISE,
            looping: DEFAULT_LOOP,
            test_device: TestDevice::default(),
        }
    }
}

impl Settings {
    pub fn from_params(p: &Params) -> Result<Settings, Problem> {
        let r = Reader::new(PARAMS, p);
        let (width, height) = common::read_size(&r)?;
        Ok(Settings {
            source: Source::parse(&r.text("source", DEFAULT_SOURCE)?)?,
            realtime: r.flag("realtime", DEFAULT_REALTIME)?,
            width,
            height,
            fps: r.rational("fps", common::DEFAULT_FPS)?,
            pixel_format: r.choice("pixel_format", common::DEFAULT_PIXEL_FORMAT)?,
            pattern: r.choice("pattern", DEFAULT_PATTERN)?,
            noise: r.int("noise", DEFAULT_NOISE.into())? as u32,
            looping: r.flag("loop", DEFAULT_LOOP)?,
            test_device: TestDevice::read(&r)?,
        })
    }
}

fn rules(p: &Params) -> Vec<Problem> {
    match Settings::from_params(p) {
        Ok(s) => common::even_size_or_round(s.pixel_format, s.width, s.height),
        Err(problem) => vec![problem],
    }
}

fn host_checks(p: &Params) -> Vec<Problem> {
    let text = p.str("source").unwrap_or(DEFAULT_SOURCE);
    match common::scheme(text.trim()) {
        Some(("file", path)) if !path.is_empty() => {
            common::source_file_exists(path).into_iter().collect()
        }
        _ => Vec::new(),
    }
}

const PARAMS: &[ParamSpec] = &[
    ParamSpec::text("source", Some(DEFAULT_SOURCE), "`auto` (first camera, else the test pattern with a warning), `device:<index|name>`, `test`, `file:<path>` or a URL; a still image (`file:logo.png`) is shown as a continuous video at `fps` until the run stops (or for `duration`)"),
    ParamSpec::bool("realtime", DEFAULT_REALTIME, "pace frames at the native rate; false: as fast as downstream accepts, nothing dropped"),
    common::width("frame width in pixels (test pattern, camera request; files keep their own size)"),
    common::height("frame height in pixels (test pattern, camera request)"),
    common::round_to_even_param(),
    common::fps("frame rate, e.g. 30, 60 or 30000/1001 (test pattern, camera request, still image; files keep their own rate)"),
    common::pixel_format("test pattern format; for cameras the preferred capture format"),
    ParamSpec::choice("pattern", Pattern::NAMES, Some(DEFAULT_PATTERN.name()), "test pattern: moving bars with frame counter and clock; `clapper`: also an all-white frame at every whole second (the first frame at or after it)"),
    ParamSpec::int("noise", (0, 64), Some(DEFAULT_NOISE as i64), "test pattern: grain of up to ± this many levels on every sample, different in every frame (as a camera sensor's): what makes camera video expensive to compress, for measuring encoders and links (0: none)"),
    ParamSpec::bool("loop", DEFAULT_LOOP, "file sources: start over at the end"),
    TEST_DEVICE[0],
    TEST_DEVICE[1],
    TEST_DEVICE[2],
    TEST_DEVICE[3],
    TEST_DEVICE[4],
];

pub const SPEC: KindSpec = KindSpec {
    kind: "camera",
    doc: "Video capture: a camera (nokhwa, frames in the camera's own format), a file or URL (FFmpeg demux + decode, native size and timestamps), or a deterministic test pattern (scrolling bars, moving box, burned-in frame counter and clock).",
    inputs: &[],
    any_inputs: None,
    outputs: &[PortSpec::new("video", PortType::RawVideo, "raw video frames")],
    params: PARAMS,
    rules,
    host_checks,
    value_rule: no_value_rule,
    inputs_rule: no_inputs_rule,
    format: None,
    hosted: false,
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::testing::{assert_settings_parse, with};
    use serde_json::json;

    #[test]
    fn settings_from_defaults_and_every_choice() {
        assert_settings_parse(&SPEC, Settings::from_params);
        let s = Settings::from_params(&with(&SPEC, "pattern", json!("clapper"))).unwrap();
        assert_eq!(s.pattern, Pattern::Clapper);
    }

    #[test]
    fn parses_every_form() {
        assert_eq!(Source::parse("auto").unwrap(), Source::Auto);
        assert_eq!(Source::parse(" test ").unwrap(), Source::Test);
        assert_eq!(
            Source::parse("device:0").unwrap(),
            Source::Device("0".into())
        );
        assert_eq!(
            Source::parse("device:HD Webcam").unwrap(),
            Source::Device("HD Webcam".into())
        );
        assert_eq!(
            Source::parse("file:a/b.mp4").unwrap(),
            Source::Media("a/b.mp4".into())
        );
        assert_eq!(
            Source::parse("rtsp://cam/1").unwrap(),
            Source::Media("rtsp://cam/1".into())
        );
        assert!(Source::parse("device:").is_err());
        assert!(Source::parse("clip.mp4")
            .unwrap_err()
            .to_string()
            .contains("file:<path>"));
    }

    #[test]
    fn the_source_grammar_is_a_rule_and_the_file_a_host_check() {
        let bogus = rules(&with(&SPEC, "source", json!("bogus")));
        assert_eq!(bogus.len(), 1);
        assert_eq!(bogus[0].param, "source");
        assert!(bogus[0].message.contains("unknown source `bogus`"));
        assert_eq!(rules(&with(&SPEC, "source", json!("file:"))).len(), 1);
        let missing = with(&SPEC, "source", json!("file:/no/such/clip.mkv"));
        assert_eq!(rules(&missing), vec![]);
        assert_eq!(host_checks(&missing).len(), 1);
        let odd = rules(&with(&SPEC, "width", json!(321)));
        assert_eq!(odd[0].param, "width");
        assert!(odd[0].hint.as_deref().unwrap().contains("round_to_even"));
    }

    #[test]
    fn round_to_even_makes_the_test_pattern_size_even() {
        let mut p = with(&SPEC, "width", json!(321));
        p.0.insert("height".into(), json!(241));
        p.0.insert("round_to_even".into(), json!(true));
        let s = Settings::from_params(&p).unwrap();
        assert_eq!((s.width, s.height), (320, 240));
        assert_eq!(rules(&p), vec![]);
    }
}
