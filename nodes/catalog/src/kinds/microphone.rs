//! `microphone`: audio capture from an input device, a file, or a test signal.

use std::fmt;

use super::common::{self, SampleFormat, TestDevice, TEST_DEVICE};
use super::{no_inputs_rule, no_value_rule, KindSpec, PortSpec};
use crate::params::{ParamSpec, Params};
use crate::read::Reader;
use crate::{PortType, Problem};

/// What the `source` param names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The default input device, else a test tone (with a warning).
    Auto,
    /// An input device by name.
    Device(String),
    Test,
    /// A local file (the `file:` prefix removed).
    File(String),
}

impl Source {
    /// `auto`, `test`, `device:<name>` or `file:<path>`.
    pub fn parse(text: &str) -> Result<Source, Problem> {
        let fail = |m: &str| Err(Problem::new("source", m));
        Ok(match (text, common::scheme(text)) {
            ("auto", _) => Source::Auto,
            ("test", _) => Source::Test,
            (_, Some(("device", ""))) => {
                return fail("source `device:` needs an input device name, e.g. `device:default`")
            }
            (_, Some(("device", name))) => Source::Device(name.to_string()),
            (_, Some(("file", ""))) => {
                return fail("source `file:` needs a path, e.g. `file:take1.mkv`")
            }
            (_, Some((_, path))) => Source::File(path.to_string()),
            _ => {
                return fail(&format!(
                    "unknown microphone source `{text}` (auto, device:<name>, test, file:<path>)"
                ))
            }
        })
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Auto => f.write_str("auto"),
            Source::Test => f.write_str("test"),
            Source::Device(name) => write!(f, "device:{name}"),
            Source::File(path) => write!(f, "file:{path}"),
        }
    }
}

crate::choice! {
    /// The test signal.
    pub enum Pattern { Tone = "tone", Clapper = "clapper" }
}

/// The shortest audio frame a graph is allowed to carry, seconds. Each
/// message costs every node it crosses ~0.1–0.2 ms of CPU, so a realtime
/// microphone sending frames of a few samples falls behind real time and
/// the recording misses most of its audio (1-sample frames at 48 kHz kept
/// 8 %; 8-sample frames 74 %, on 2 busy cores). 1 ms frames (48 samples at
/// 48 kHz) keep up with room to spare.
pub const MIN_AUDIO_FRAME_S: f64 = 0.001;

pub const DEFAULT_SOURCE: &str = "auto";
pub const DEFAULT_REALTIME: bool = true;
pub const DEFAULT_FREQUENCY: f64 = 440.0;
pub const DEFAULT_PATTERN: Pattern = Pattern::Tone;
pub const DEFAULT_LOOP: bool = false;
/// 0: automatic.
pub const DEFAULT_FRAME_SAMPLES: u32 = 0;

/// The microphone's params, typed.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub source: Source,
    pub realtime: bool,
    pub sample_rate: u32,
    pub channels: u16,
    pub sample_format: SampleFormat,
    pub frequency: f64,
    pub pattern: Pattern,
    pub looping: bool,
    /// Samples per frame sent; 0: automatic.
    pub frame_samples: u32,
    pub test_device: TestDevice,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            source: Source::Auto,
            realtime: DEFAULT_REALTIME,
            sample_rate: common::DEFAULT_SAMPLE_RATE,
            channels: common::DEFAULT_CHANNELS,
            sample_format: common::DEFAULT_SAMPLE_FORMAT,
            frequency: DEFAULT_FREQUENCY,
            pattern: DEFAULT_PATTERN,
            looping: DEFAULT_LOOP,
            frame_samples: DEFAULT_FRAME_SAMPLES,
            test_device: TestDevice::default(),
        }
    }
}

impl Settings {
    pub fn from_params(p: &Params) -> Result<Settings, Problem> {
        let r = Reader::new(PARAMS, p);
        Ok(Settings {
            source: Source::parse(&r.text("source", DEFAULT_SOURCE)?)?,
            realtime: r.flag("realtime", DEFAULT_REALTIME)?,
            sample_rate: r.int("sample_rate", common::DEFAULT_SAMPLE_RATE.into())? as u32,
            channels: r.int("channels", common::DEFAULT_CHANNELS.into())? as u16,
            sample_format: r.choice("sample_format", common::DEFAULT_SAMPLE_FORMAT)?,
            frequency: r.float("frequency", DEFAULT_FREQUENCY)?,
            pattern: r.choice("pattern", DEFAULT_PATTERN)?,
            looping: r.flag("loop", DEFAULT_LOOP)?,
            frame_samples: r.int("frame_samples", DEFAULT_FRAME_SAMPLES.into())? as u32,
            test_device: TestDevice::read(&r)?,
        })
    }

    /// Frames shorter than [`MIN_AUDIO_FRAME_S`] are refused.
    fn check_frame_samples(&self) -> Option<Problem> {
        let (samples, rate) = (self.frame_samples as i64, self.sample_rate as i64);
        let min = (rate as f64 * MIN_AUDIO_FRAME_S).ceil() as i64;
        (samples > 0 && samples < min).then(|| Problem::new(
            "frame_samples",
            format!(
                "frame_samples {samples} is below {min} (1 ms at {rate} Hz): {} messages a second cost more CPU than the graph has, and the audio falls behind real time; use 0 (automatic) or {min}..=65536",
                rate / samples
            ),
        ))
    }
}

fn rules(p: &Params) -> Vec<Problem> {
    match Settings::from_params(p) {
        Ok(s) => s.check_frame_samples().into_iter().collect(),
        Err(problem) => vec![problem],
    }
}

fn host_checks(p: &Params) -> Vec<Problem> {
    match Source::parse(p.str("source").unwrap_or(DEFAULT_SOURCE)) {
        Ok(Source::File(path)) => common::source_file_exists(&path).into_iter().collect(),
        _ => Vec::new(),
    }
}

const PARAMS: &[ParamSpec] = &[
    ParamSpec::text("source", Some(DEFAULT_SOURCE), "`auto` (default input device, else a test tone with a warning), `device:<name>`, `test`, `file:<path>`"),
    ParamSpec::bool("realtime", DEFAULT_REALTIME, "pace audio at the native rate; false: as fast as downstream accepts"),
    common::sample_rate("samples per second, 8000..=192000"),
    common::channels("channel count, 1..=8"),
    common::sample_format("sample format delivered (interleaved); s24 travels as s32 with the low byte zero"),
    ParamSpec::float("frequency", (1.0, 20_000.0), Some(DEFAULT_FREQUENCY), "test tone frequency in Hz"),
    ParamSpec::choice("pattern", Pattern::NAMES, Some(DEFAULT_PATTERN.name()), "test signal: a steady tone; `clapper`: a 1 kHz beep at every whole second"),
    ParamSpec::bool("loop", DEFAULT_LOOP, "file sources: start over at the end"),
    ParamSpec::int("frame_samples", (0, 65_536), Some(DEFAULT_FRAME_SAMPLES as i64), "samples per frame sent; 0: automatic, 1024 (21 ms at 48 kHz), or 8192 for a file replayed faster than real time, where latency does not matter and every message costs CPU in each node it crosses; at least 1 ms of audio (48 at 48 kHz)"),
    TEST_DEVICE[0],
    TEST_DEVICE[1],
    TEST_DEVICE[2],
    TEST_DEVICE[3],
    TEST_DEVICE[4],
];

pub const SPEC: KindSpec = KindSpec {
    kind: "microphone",
    doc: "Audio capture: the default or a named input device (cpal), a file (FFmpeg), or a test tone.",
    inputs: &[],
    any_inputs: None,
    outputs: &[PortSpec::new("audio", PortType::RawAudio, "raw audio frames")],
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
        let s = Settings::from_params(&with(&SPEC, "sample_format", json!("s24"))).unwrap();
        assert_eq!(s.sample_format, SampleFormat::S24);
    }

    #[test]
    fn sources() {
        for text in ["auto", "test", "device:USB Mic", "file:a b.wav"] {
            assert_eq!(Source::parse(text).unwrap().to_string(), text);
        }
        for bogus in ["bogus", "device:", "file:", "rtsp://x"] {
            let e = Source::parse(bogus).unwrap_err();
            assert_eq!(e.param, "source", "{bogus}");
        }
        assert!(Source::parse("bogus")
            .unwrap_err()
            .message
            .contains("(auto, device:<name>, test, file:<path>)"));
        let missing = with(&SPEC, "source", json!("file:/no/such/take.wav"));
        assert_eq!(rules(&missing), vec![]);
        assert!(host_checks(&missing)[0]
            .message
            .contains("cannot read the source file `/no/such/take.wav`"));
    }

    #[test]
    fn audio_frames_last_at_least_a_millisecond() {
        let params = |samples: i64, rate: i64| {
            let mut m = serde_json::Map::new();
            m.insert("frame_samples".into(), samples.into());
            m.insert("sample_rate".into(), rate.into());
            Params(m)
        };
        assert!(rules(&params(0, 48_000)).is_empty());
        assert!(rules(&params(48, 48_000)).is_empty());
        let e = rules(&params(47, 48_000));
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].param, "frame_samples");
        assert!(
            e[0].message.starts_with("frame_samples 47 is below 48"),
            "{}",
            e[0].message
        );
        assert!(rules(&params(8, 8_000)).is_empty());
        assert_eq!(rules(&params(1, 8_000)).len(), 1);
    }
}
