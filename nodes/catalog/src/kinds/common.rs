//! What several kinds share: formats, ranges, the imperfections a test
//! source simulates, and the rules on frame sizes and source files.

use crate::params::ParamSpec;
use crate::read::Reader;
use crate::value::Rational;
use crate::Problem;

crate::choice! {
    /// Pixel formats a graph can ask for.
    pub enum PixelFormat {
        Yuv420p = "yuv420p",
        Nv12 = "nv12",
        Rgb24 = "rgb24",
        Bgra = "bgra",
        Yuyv422 = "yuyv422",
    }
}

impl PixelFormat {
    /// 4:2:0 formats halve chroma both ways, 4:2:2 horizontally only.
    fn subsampling(self) -> (bool, bool) {
        match self {
            PixelFormat::Yuv420p | PixelFormat::Nv12 => (true, true),
            PixelFormat::Yuyv422 => (true, false),
            PixelFormat::Rgb24 | PixelFormat::Bgra => (false, false),
        }
    }
}

crate::choice! {
    /// Interleaved sample formats; s24 travels as s32 with the low byte zero.
    pub enum SampleFormat { S16 = "s16", S24 = "s24", S32 = "s32", F32 = "f32" }
}

/// Frame width and height, pixels.
pub const DIM_RANGE: (i64, i64) = (16, 8192);
pub const DEFAULT_WIDTH: u32 = 1920;
pub const DEFAULT_HEIGHT: u32 = 1080;
/// The highest frame rate a graph may ask for.
pub const MAX_FPS: f64 = 1000.0;
pub const DEFAULT_FPS: Rational = Rational { num: 30, den: 1 };
pub const DEFAULT_PIXEL_FORMAT: PixelFormat = PixelFormat::Yuv420p;
pub const SAMPLE_RATE_RANGE: (i64, i64) = (8_000, 192_000);
pub const DEFAULT_SAMPLE_RATE: u32 = 48_000;
pub const CHANNELS_RANGE: (i64, i64) = (1, 8);
pub const DEFAULT_CHANNELS: u16 = 2;
pub const DEFAULT_SAMPLE_FORMAT: SampleFormat = SampleFormat::F32;

/// `round_to_even`'s default: an odd size is an error, not changed silently.
pub const DEFAULT_ROUND_TO_EVEN: bool = false;

/// A size rounded down to even (never below the smallest size allowed), as
/// ffmpeg's `scale=-2` makes a size even: 4:2:0 video and its encoders need
/// even sizes. Down, so the picture never grows past what was asked.
pub fn round_to_even(v: u32) -> u32 {
    (v & !1).max(DIM_RANGE.0 as u32)
}

/// The `width` and `height` params, each rounded down to even when
/// `round_to_even` is set: what a kind with those params produces.
pub(crate) fn read_size(r: &Reader) -> Result<(u32, u32), Problem> {
    let width = r.int("width", DEFAULT_WIDTH.into())? as u32;
    let height = r.int("height", DEFAULT_HEIGHT.into())? as u32;
    Ok(match r.flag("round_to_even", DEFAULT_ROUND_TO_EVEN)? {
        true => (round_to_even(width), round_to_even(height)),
        false => (width, height),
    })
}

/// [`even_size`] for a kind with the `round_to_even` param: the error
/// names it as the fix.
pub fn even_size_or_round(format: PixelFormat, width: u32, height: u32) -> Vec<Problem> {
    let (w, h) = (round_to_even(width), round_to_even(height));
    even_size(format, width, height)
        .into_iter()
        .map(|p| p.hint(format!("set `round_to_even: true` to get {w}x{h} (each odd size rounded down, as ffmpeg's `scale=-2`), or give even sizes")))
        .collect()
}

/// Odd sizes cannot be represented in a chroma-subsampled format.
pub fn even_size(format: PixelFormat, width: u32, height: u32) -> Vec<Problem> {
    even_size_for(format.name(), format.subsampling(), width, height)
}

/// [`even_size`] for a format of another list (`name`), halving chroma
/// `(horizontally, vertically)`.
pub(crate) fn even_size_for(
    format: &str,
    (horizontal, vertical): (bool, bool),
    width: u32,
    height: u32,
) -> Vec<Problem> {
    let mut problems = Vec::new();
    for (dim, v, halved) in [("width", width, horizontal), ("height", height, vertical)] {
        if halved && v % 2 != 0 {
            problems.push(Problem::new(
                dim,
                format!("{dim} {v} is odd, but {format} needs even sizes (chroma is subsampled)"),
            ));
        }
    }
    problems
}

/// The imperfections of a real capture device a test source can simulate
/// (`node_api::clock::SimulatedDevice`), and how long it lasts; shared by
/// the camera and the microphone.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TestDevice {
    /// Seconds of media before the source ends; `None`: endless.
    pub duration: Option<f64>,
    pub clock_skew_ppm: f64,
    pub jitter_ms: f64,
    /// Seconds in when a dropout starts; `None`: no dropout.
    pub dropout_at: Option<f64>,
    pub dropout_ms: f64,
}

pub const DEFAULT_CLOCK_SKEW_PPM: f64 = 0.0;
pub const DEFAULT_JITTER_MS: f64 = 0.0;
pub const DEFAULT_DROPOUT_MS: f64 = 0.0;

impl Default for TestDevice {
    fn default() -> Self {
        TestDevice {
            duration: None,
            clock_skew_ppm: DEFAULT_CLOCK_SKEW_PPM,
            jitter_ms: DEFAULT_JITTER_MS,
            dropout_at: None,
            dropout_ms: DEFAULT_DROPOUT_MS,
        }
    }
}

impl TestDevice {
    pub(crate) fn read(r: &Reader<'_>) -> Result<TestDevice, Problem> {
        Ok(TestDevice {
            duration: r.float_opt("duration")?,
            clock_skew_ppm: r.float("clock_skew_ppm", DEFAULT_CLOCK_SKEW_PPM)?,
            jitter_ms: r.float("jitter_ms", DEFAULT_JITTER_MS)?,
            dropout_at: r.float_opt("dropout_at")?,
            dropout_ms: r.float("dropout_ms", DEFAULT_DROPOUT_MS)?,
        })
    }
}

/// The specs of [`TestDevice`], in the order the kinds list them.
pub(crate) const TEST_DEVICE: [ParamSpec; 5] = [
    ParamSpec::float("duration", (0.0, 1e7), None, "test source: end after this many seconds of media (absent: endless); with `realtime: false` a graph of such sources ends by itself"),
    ParamSpec::float("clock_skew_ppm", (-10_000.0, 10_000.0), Some(DEFAULT_CLOCK_SKEW_PPM), "test source: its own clock (frame or sample count) runs this many ppm fast (+) or slow (−) against the capture clock, like a real device's crystal"),
    ParamSpec::float("jitter_ms", (0.0, 1000.0), Some(DEFAULT_JITTER_MS), "test source: capture timestamps are off by up to ± this much (uniform, deterministic)"),
    ParamSpec::float("dropout_at", (0.0, 1e7), None, "test source: a dropout starts this many seconds in (frames captured during it are lost)"),
    ParamSpec::float("dropout_ms", (0.0, 3_600_000.0), Some(DEFAULT_DROPOUT_MS), "test source: length of the dropout"),
];

/// The specs every kind with a frame size shares.
pub(crate) const fn width(doc: &'static str) -> ParamSpec {
    ParamSpec::int("width", DIM_RANGE, Some(DEFAULT_WIDTH as i64), doc)
}
pub(crate) const fn height(doc: &'static str) -> ParamSpec {
    ParamSpec::int("height", DIM_RANGE, Some(DEFAULT_HEIGHT as i64), doc)
}
pub(crate) const fn round_to_even_param() -> ParamSpec {
    ParamSpec::bool(
        "round_to_even",
        DEFAULT_ROUND_TO_EVEN,
        "round an odd `width`/`height` down to even (as ffmpeg's `scale=-2`), as 4:2:0 video and the encoders need: 1279x721 becomes 1278x720",
    )
}
pub(crate) const fn fps(doc: &'static str) -> ParamSpec {
    ParamSpec::rational("fps", MAX_FPS, DEFAULT_FPS, doc)
}
pub(crate) const fn pixel_format(doc: &'static str) -> ParamSpec {
    ParamSpec::choice(
        "pixel_format",
        PixelFormat::NAMES,
        Some(DEFAULT_PIXEL_FORMAT.name()),
        doc,
    )
}
pub(crate) const fn sample_rate(doc: &'static str) -> ParamSpec {
    ParamSpec::int(
        "sample_rate",
        SAMPLE_RATE_RANGE,
        Some(DEFAULT_SAMPLE_RATE as i64),
        doc,
    )
}
pub(crate) const fn channels(doc: &'static str) -> ParamSpec {
    ParamSpec::int(
        "channels",
        CHANNELS_RANGE,
        Some(DEFAULT_CHANNELS as i64),
        doc,
    )
}
pub(crate) const fn sample_format(doc: &'static str) -> ParamSpec {
    ParamSpec::choice(
        "sample_format",
        SampleFormat::NAMES,
        Some(DEFAULT_SAMPLE_FORMAT.name()),
        doc,
    )
}

/// A source's text, split at its scheme: `device:<x>`, `file:<path>`;
/// `None` for a bare word.
pub(crate) fn scheme(text: &str) -> Option<(&str, &str)> {
    ["device", "file"]
        .into_iter()
        .find_map(|s| Some((s, text.strip_prefix(s)?.strip_prefix(':')?)))
}

/// A `file:` source must name a file that exists on the machine the node
/// runs on, so a typo stops the run before any process starts (relative
/// paths: from the current directory, where the nodes run).
pub(crate) fn source_file_exists(path: &str) -> Option<Problem> {
    let message = match std::fs::metadata(path) {
        Ok(m) if m.is_file() => return None,
        Ok(_) => format!("`{path}` is not a file"),
        Err(e) => format!("cannot read the source file `{path}`: {e}"),
    };
    Some(Problem::new("source", message))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Choice;

    #[test]
    fn sizes_must_be_even_where_chroma_is_subsampled() {
        assert_eq!(even_size(PixelFormat::Yuv420p, 320, 240), vec![]);
        let odd = even_size(PixelFormat::Yuv420p, 321, 241);
        assert_eq!(odd.len(), 2);
        assert_eq!(odd[0].param, "width");
        assert_eq!(
            odd[0].message,
            "width 321 is odd, but yuv420p needs even sizes (chroma is subsampled)"
        );
        assert_eq!(even_size(PixelFormat::Yuyv422, 320, 241), vec![]);
        assert_eq!(even_size(PixelFormat::Yuyv422, 321, 240).len(), 1);
        assert_eq!(even_size(PixelFormat::Rgb24, 321, 241), vec![]);
    }

    #[test]
    fn schemes() {
        assert_eq!(scheme("file:a.mkv"), Some(("file", "a.mkv")));
        assert_eq!(scheme("device:"), Some(("device", "")));
        assert_eq!(scheme("files:a"), None);
        assert_eq!(scheme("test"), None);
        assert_eq!(PixelFormat::from_name("nv12"), Some(PixelFormat::Nv12));
    }

    #[test]
    fn file_sources_must_exist() {
        let this_file = concat!(env!("CARGO_MANIFEST_DIR"), "/src/kinds/common.rs");
        assert_eq!(source_file_exists(this_file), None);
        let missing = source_file_exists("/no/such/file.mkv").unwrap();
        assert!(missing
            .message
            .contains("cannot read the source file `/no/such/file.mkv`"));
        assert_eq!(
            source_file_exists("/").unwrap().message,
            "`/` is not a file"
        );
    }
}
