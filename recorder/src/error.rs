//! The errors of the recorder API: each names what was expected.

use std::fmt;
use std::time::Duration;

/// Why a call of the recorder API failed. A bad frame is refused with one
/// of these and the recording goes on.
#[derive(Debug, Clone, PartialEq)]
pub enum RecorderError {
    /// The config (or the graph it becomes) is invalid: one line per problem,
    /// as `runtime check` words it.
    InvalidConfig(Vec<String>),
    /// A field of [`crate::RecordingConfigOptions`] has a value it cannot take.
    InvalidOption {
        /// The field's name.
        field: &'static str,
        /// The value given.
        value: String,
        /// What it accepts.
        accepted: String,
    },
    /// There is no recording to submit to, pause or stop.
    NotRecording,
    /// A recording is already going on (one at a time per recorder).
    AlreadyRecording,
    /// The recording does not take this kind of frame (its source is a device, or it has no audio).
    NoSuchInput(String),
    /// A video frame of another size than the recording's.
    WrongFrameSize {
        /// Width and height the recording takes.
        expected: (u32, u32),
        /// Width and height of the frame.
        got: (u32, u32),
    },
    /// A frame in another layout than the recording takes.
    WrongFormat {
        /// The layout the recording takes.
        expected: String,
        /// The frame's.
        got: String,
    },
    /// The pixel data is shorter than its size, format and strides need.
    ShortData {
        /// Bytes (or samples) needed.
        needed: usize,
        /// Bytes (or samples) given.
        got: usize,
    },
    /// Audio with another rate or channel count than the recording's.
    WrongAudio {
        /// The recording's sample rate.
        expected_rate: u32,
        /// The recording's channel count.
        expected_channels: u32,
        /// The frame's sample rate.
        got_rate: u32,
        /// The frame's channel count.
        got_channels: u32,
    },
    /// A timestamp at or before the previous frame's of the same stream.
    TimestampBackwards {
        /// The previous frame's timestamp.
        previous: Duration,
        /// This frame's.
        got: Duration,
    },
    /// The graph could not start, or failed: the first cause, naming its node.
    Failed(String),
}

impl fmt::Display for RecorderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use RecorderError::*;
        match self {
            InvalidConfig(problems) => write!(f, "invalid recording config: {}", problems.join("; ")),
            InvalidOption { field, value, accepted } => {
                write!(f, "`{field}`: `{value}` is not accepted (accepted: {accepted})")
            }
            NotRecording => f.write_str("no recording is going on (start one first)"),
            AlreadyRecording => {
                f.write_str("a recording is already going on (stop it before starting another)")
            }
            NoSuchInput(what) => write!(f, "this recording takes no submitted {what}"),
            WrongFrameSize { expected, got } => write!(
                f,
                "frame of {}x{}, but the recording takes {}x{}",
                got.0, got.1, expected.0, expected.1
            ),
            WrongFormat { expected, got } => {
                write!(f, "frame in {got}, but the recording takes {expected}")
            }
            ShortData { needed, got } => {
                write!(f, "frame data of {got} bytes, but its size, format and strides need {needed}")
            }
            WrongAudio { expected_rate, expected_channels, got_rate, got_channels } => write!(
                f,
                "audio at {got_rate} Hz with {got_channels} channels, but the recording takes {expected_rate} Hz with {expected_channels}"
            ),
            TimestampBackwards { previous, got } => write!(
                f,
                "timestamp {:.6} s is not after the previous frame's {:.6} s",
                got.as_secs_f64(),
                previous.as_secs_f64()
            ),
            Failed(cause) => f.write_str(cause),
        }
    }
}

impl std::error::Error for RecorderError {}

impl From<anyhow::Error> for RecorderError {
    fn from(e: anyhow::Error) -> Self {
        RecorderError::Failed(format!("{e:#}"))
    }
}

/// The recorder's results.
pub type Result<T, E = RecorderError> = std::result::Result<T, E>;
