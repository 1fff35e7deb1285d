//! Audio helpers shared by the microphone, audio-normalize and audio-encode
//! nodes: sample formats and channel layouts between `node_api` headers and
//! FFmpeg, a reusable swresample context that converts straight between
//! payload buffers, a sample FIFO for fixed-size framing, and the map from
//! sample positions to capture times.

mod fifo;
mod format;
mod layout;
mod resample;
mod timeline;

pub use fifo::{make_writable, SampleFifo};
pub use format::{av_sample_format, node_sample_format, read_f32, WireFormat};
pub use layout::{alloc_frame, default_layout, frame_layout, layout_for, set_codec_layout};
pub use resample::{AudioSpec, Planes, PlanesMut, Resampler, MAX_PLANES};
pub use timeline::CaptureTimeline;
