//! The recorder as a library: a desktop application records the frames it
//! draws (or its camera and microphone) to a playable, in-sync file.
//!
//! Underneath is the same graph runtime as the `runtime` command: each
//! stage (conversion, A/V sync, encoders, muxer) runs as its own process
//! and frames cross between them in shared memory. The application's own
//! process joins the graph as the node that takes its frames (`app-video`,
//! `app-audio`), so a frame the app draws into a [`VideoBuffer`] reaches
//! the encoder without a copy.
//!
//! ```no_run
//! use recorder::{AudioFrame, CombinedRecorder, RecordingConfig, VideoFrame};
//!
//! let config = RecordingConfig::hd_1080p();
//! let recorder = CombinedRecorder::new(config)?;
//! let session_id = recorder.start_recording("output.mp4")?;
//! let pixels = vec![0u8; 1920 * 1080 * 3];
//! let samples = vec![0.0f32; 1600 * 2];
//! for _ in 0..30 {
//!     recorder.submit_video_frame(VideoFrame::rgb24(&pixels, 1920, 1080))?;
//!     recorder.submit_audio_frame(AudioFrame::interleaved_f32(&samples, 48_000, 2))?;
//! }
//! let summary = recorder.stop_recording()?;
//! println!("{session_id}: {} frames in {:?}", summary.video_frames, summary.duration);
//! # Ok::<(), recorder::RecorderError>(())
//! ```
//!
//! Any graph file can be run the same way with [`Runtime::start`]; its
//! `app-video` / `app-audio` nodes are fed through
//! [`RunningGraph::video_input`] and [`RunningGraph::audio_input`].
//!
//! Where the node processes' executable (`mediagraph-nodes`) is found: see
//! [`Runtime::node_dir`].

#![warn(missing_docs)]

mod audio;
pub mod config;
mod error;
mod events;
mod frames;
mod graph;
mod host;
mod input;
mod options;
mod recorder;
mod running;
mod stats;
mod video;

pub use audio::AudioInput;
pub use config::{
    AudioCodec, AudioQualityPreset, AudioSettings, AudioSource, Container, FrameRate, PixelFormat,
    RecordingConfig, SampleFormat, ScreenRegion, ScreenSource, StreamOutput, VideoCodec,
    VideoQualityPreset, VideoResolution, VideoSettings, VideoSource, WhenBehind,
};
pub use error::{RecorderError, Result};
pub use events::StatusEvent;
pub use frames::{AudioFrame, Samples, VideoFrame};
pub use graph::{APP_AUDIO, APP_VIDEO};
pub use options::RecordingConfigOptions;
pub use recorder::{CombinedRecorder, SessionId, SharedRecorder};
pub use running::{devices, RunningGraph, Runtime};
/// This machine's cameras, screens, audio inputs and hardware encoders
/// ([`devices`]).
pub use runtime::devices::Devices;
/// The run's report, per node.
pub use runtime::run::RunReport;
pub use stats::{Dropped, RecordingSummary, Restarted, Statistics};
pub use video::{VideoBuffer, VideoInput};
