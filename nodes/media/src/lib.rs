//! Helpers shared by the media nodes (built-in and the examples): FFmpeg
//! frames and packets, picture geometry, and drawing into raw frames (solid
//! rectangles, a bitmap font). Each concern has its own module; nodes never
//! copy these helpers.

pub mod audio;
pub mod canvas;
pub mod codec;
pub mod font;
pub mod geometry;
pub mod jpeg;
pub mod latency;
pub mod packet;
pub mod video;

/// Initializes FFmpeg once and routes its log level to ours.
pub fn init() -> anyhow::Result<()> {
    ffmpeg_next::init().map_err(|e| anyhow::anyhow!("FFmpeg failed to initialize: {e}"))?;
    ffmpeg_next::util::log::set_level(ffmpeg_next::util::log::Level::Error);
    Ok(())
}
