//! Submitting audio: [`AudioInput`] checks a frame against the recording's
//! rate, channels and layout, places it on the timeline, and sends it in
//! pieces of at most [`MAX_AUDIO_CHUNK_S`].

use std::sync::Arc;
use std::time::Duration;

use node_api::{metrics, AudioFrame as NodeFrame, TimeBase};
use node_catalog::kinds::app_audio;

use crate::error::{RecorderError, Result};
use crate::frames::AudioFrame;
use crate::input::{api_sample_format, LiveNode, Slot, Takes, MAX_AUDIO_CHUNK_S};

/// The way into one `app-audio` node of a running graph. Cheap to clone;
/// submit from any thread.
#[derive(Clone)]
pub struct AudioInput {
    slot: Arc<Slot>,
    settings: app_audio::Settings,
}

impl AudioInput {
    pub(crate) fn new(slot: Arc<Slot>) -> Result<AudioInput> {
        match slot.takes {
            Takes::Audio(settings) => Ok(AudioInput { slot, settings }),
            Takes::Video(_) => Err(RecorderError::NoSuchInput(format!(
                "audio on `{}` (a video input)",
                slot.id
            ))),
        }
    }

    /// The node's id in the graph.
    pub fn node(&self) -> &str {
        &self.slot.id
    }

    /// Rate, channels and layout every frame must have.
    pub fn format(&self) -> (u32, u32, app_audio::SampleLayout) {
        let s = &self.settings;
        (s.sample_rate, s.channels.into(), s.sample_format)
    }

    /// Sends `frame` (one copy into shared memory). Another rate, channel
    /// count or layout, or a timestamp at or before the previous frame's, is
    /// refused with an error naming what was expected; the recording goes on.
    pub fn submit(&self, frame: &AudioFrame) -> Result<()> {
        let samples = self.check(frame).map_err(|e| self.slot.reject(e))?;
        if samples == 0 {
            return Ok(());
        }
        self.slot.with_live(|live| {
            let pts = self.place(live, frame.timestamp, samples)?;
            self.send(live, frame, pts, samples)
        })
    }

    fn check(&self, frame: &AudioFrame) -> Result<usize> {
        let s = &self.settings;
        if frame.sample_rate != s.sample_rate || frame.channels != u32::from(s.channels) {
            return Err(RecorderError::WrongAudio {
                expected_rate: s.sample_rate,
                expected_channels: s.channels.into(),
                got_rate: frame.sample_rate,
                got_channels: frame.channels,
            });
        }
        if frame.format() != s.sample_format {
            return Err(RecorderError::WrongFormat {
                expected: s.sample_format.to_string(),
                got: frame.format().to_string(),
            });
        }
        frame.samples_per_channel()
    }

    /// The pts (in samples) of the frame's first sample: from its timestamp,
    /// else right after the previous frame (the first: now).
    fn place(
        &self,
        live: &mut LiveNode,
        timestamp: Option<Duration>,
        samples: usize,
    ) -> Result<i64> {
        let rate = i128::from(self.settings.sample_rate);
        let from_ns = |ns: u64| (i128::from(ns) * rate / 1_000_000_000) as i64;
        let pts = match (timestamp, live.next_pts) {
            (Some(t), _) => from_ns(t.as_nanos() as u64),
            (None, Some(next)) => next,
            (None, None) => from_ns(self.slot.now_ns()),
        };
        let ts_ns = (i128::from(pts) * 1_000_000_000 / rate) as u64;
        if let Some(last) = live.last_ns.filter(|&l| timestamp.is_some() && ts_ns <= l) {
            live.node.metrics().add(metrics::REJECTED, 1.0);
            return Err(RecorderError::TimestampBackwards {
                previous: Duration::from_nanos(last),
                got: Duration::from_nanos(ts_ns),
            });
        }
        live.last_ns = Some(ts_ns);
        live.next_pts = Some(pts + samples as i64);
        Ok(pts)
    }

    /// Sends samples `0..samples` from `pts` on, in chunks.
    fn send(
        &self,
        live: &mut LiveNode,
        frame: &AudioFrame,
        pts: i64,
        samples: usize,
    ) -> Result<()> {
        let s = &self.settings;
        let format = api_sample_format(s.sample_format);
        let chunk = (f64::from(s.sample_rate) * MAX_AUDIO_CHUNK_S) as usize;
        let bytes_per = usize::from(s.channels) * format.bytes_per_sample();
        let rate = i128::from(s.sample_rate);
        let mut from = 0;
        while from < samples {
            let n = chunk.min(samples - from);
            let mut buf = live.node.alloc("audio", n * bytes_per)?;
            frame.bytes_into(from, n, &mut buf);
            let at = pts + from as i64;
            let header = NodeFrame {
                format,
                sample_rate: s.sample_rate,
                channels: s.channels,
                channel_layout: 0,
                samples: n as u32,
                pts: at,
                time_base: TimeBase::new(1, s.sample_rate as i32),
                capture_ns: self
                    .slot
                    .capture_ns((i128::from(at) * 1_000_000_000 / rate) as u64),
            };
            live.node.send_audio("audio", header, buf)?;
            from += n;
        }
        live.node.metrics().add(metrics::SUBMITTED, 1.0);
        live.node.metrics().add(metrics::SAMPLES, samples as f64);
        live.node.metrics().add(metrics::SUBMIT_COPIES, 1.0);
        Ok(())
    }
}
