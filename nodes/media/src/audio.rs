//! Audio helpers shared by the microphone, audio-normalize, audio-mix,
//! noise-suppress and audio-encode nodes: sample formats and channel layouts between `node_api` headers and
//! FFmpeg, a reusable swresample context that converts straight between
//! payload buffers, a sample FIFO for fixed-size framing, the map from
//! sample positions to capture times, and level meters.

mod fifo;
mod format;
mod layout;
mod level;
mod resample;
mod timeline;

pub use fifo::{make_writable, SampleFifo};
pub use format::{av_sample_format, node_sample_format, read_f32, WireFormat};
pub use layout::{alloc_frame, default_layout, frame_layout, layout_for, set_codec_layout};
pub use level::{Level, LevelMeter, FLOOR_DBFS};
pub use resample::{AudioSpec, Planes, PlanesMut, Resampler, MAX_PLANES};
pub use timeline::CaptureTimeline;

/// `ts` in `from` units as a count of samples at `rate`, rounded to the
/// nearest (halves up, negative times too).
pub fn samples_at(ts: i64, from: node_api::TimeBase, rate: u32) -> i64 {
    if from.den <= 0 {
        return 0;
    }
    let num = ts as i128 * from.num as i128 * rate as i128;
    let den = from.den as i128;
    (num * 2 + den).div_euclid(2 * den) as i64
}

#[cfg(test)]
mod samples_at_tests {
    use super::*;

    #[test]
    fn rounds_to_the_nearest_sample() {
        let ms = node_api::TimeBase::new(1, 1000);
        assert_eq!(samples_at(1000, ms, 48_000), 48_000);
        assert_eq!(samples_at(1, node_api::TimeBase::new(1, 96_000), 48_000), 1);
        let half = node_api::TimeBase::new(1, 96_000);
        assert_eq!(samples_at(-1, half, 48_000), 0);
        assert_eq!(samples_at(-2, half, 48_000), -1);
        assert_eq!(samples_at(-3, half, 48_000), -1);
        assert_eq!(samples_at(5, node_api::TimeBase::new(1, 0), 48_000), 0);
    }
}
