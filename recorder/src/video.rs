//! Submitting video: [`VideoInput`] checks, stamps and sends frames into
//! the graph; [`VideoBuffer`] is a frame in shared memory the app draws
//! into, sent without a copy.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::Duration;

use node_api::{metrics, OutBuf, VideoFrame as NodeFrame};
use node_catalog::kinds::app_video;

use crate::error::{RecorderError, Result};
use crate::frames::VideoFrame;
use crate::input::{api_pixel_format, video_layout, LiveNode, Slot, Takes, VIDEO_TIME_BASE};

/// The way into one `app-video` node of a running graph. Cheap to clone;
/// submit from any thread.
#[derive(Clone)]
pub struct VideoInput {
    slot: Arc<Slot>,
    settings: app_video::Settings,
}

/// A frame's worth of shared memory of the graph: draw into it (packed
/// rows in the recording's format, [`VideoBuffer::strides`]) and hand it to
/// [`VideoInput::submit_buffer`]. The picture is not copied on its way to
/// the encoder.
pub struct VideoBuffer {
    buf: OutBuf,
    node: String,
    width: u32,
    height: u32,
    strides: [usize; 3],
}

impl VideoInput {
    pub(crate) fn new(slot: Arc<Slot>) -> Result<VideoInput> {
        match slot.takes {
            Takes::Video(settings) => Ok(VideoInput { slot, settings }),
            Takes::Audio(_) => Err(RecorderError::NoSuchInput(format!(
                "video on `{}` (an audio input)",
                slot.id
            ))),
        }
    }

    /// The node's id in the graph.
    pub fn node(&self) -> &str {
        &self.slot.id
    }

    /// Width, height and layout every frame must have.
    pub fn format(&self) -> (u32, u32, app_video::FrameFormat) {
        let s = &self.settings;
        (s.width, s.height, s.pixel_format)
    }

    /// Copies `frame` once into shared memory and sends it. A frame of the
    /// wrong size or layout, or stamped at or before the previous one, is
    /// refused with an error naming what was expected; the recording goes on.
    pub fn submit(&self, frame: &VideoFrame) -> Result<()> {
        self.check(frame).map_err(|e| self.slot.reject(e))?;
        let size = video_layout(&self.settings).size;
        self.slot.with_live(|live| {
            let mut buf = live.node.alloc("video", size)?;
            if let Err(e) = frame.pack_into(&mut buf) {
                live.node.metrics().add(metrics::REJECTED, 1.0);
                return Err(e);
            }
            let ts = self.stamp(live, frame.timestamp)?;
            live.node.metrics().add(metrics::SUBMIT_COPIES, 1.0);
            self.send(live, buf, ts)
        })
    }

    /// A buffer for the next frame, in the graph's shared memory. Waits
    /// while every buffer is in use downstream (back-pressure).
    pub fn buffer(&self) -> Result<VideoBuffer> {
        let layout = video_layout(&self.settings);
        let buf = self
            .slot
            .with_live(|live| Ok(live.node.alloc("video", layout.size)?))?;
        let mut strides = [0; 3];
        for (i, s) in strides.iter_mut().enumerate() {
            *s = layout.strides[i] as usize;
        }
        Ok(VideoBuffer {
            buf,
            node: self.slot.id.clone(),
            width: self.settings.width,
            height: self.settings.height,
            strides,
        })
    }

    /// Sends a buffer from [`VideoInput::buffer`] as it is: no copy.
    pub fn submit_buffer(&self, buffer: VideoBuffer, timestamp: Option<Duration>) -> Result<()> {
        if buffer.node != self.slot.id {
            let e = RecorderError::NoSuchInput(format!(
                "buffers of `{}` on `{}`",
                buffer.node, self.slot.id
            ));
            return Err(self.slot.reject(e));
        }
        self.slot.with_live(|live| {
            let ts = self.stamp(live, timestamp)?;
            self.send(live, buffer.buf, ts)
        })
    }

    fn check(&self, frame: &VideoFrame) -> Result<()> {
        let s = &self.settings;
        if (frame.width, frame.height) != (s.width, s.height) {
            return Err(RecorderError::WrongFrameSize {
                expected: (s.width, s.height),
                got: (frame.width, frame.height),
            });
        }
        if frame.format != s.pixel_format {
            return Err(RecorderError::WrongFormat {
                expected: s.pixel_format.to_string(),
                got: frame.format.to_string(),
            });
        }
        Ok(())
    }

    /// The frame's time from the origin: its own, else now; after the
    /// previous frame's, or refused.
    fn stamp(&self, live: &mut LiveNode, timestamp: Option<Duration>) -> Result<u64> {
        let ts = match timestamp {
            Some(t) => t.as_nanos() as u64,
            None => self.slot.now_ns(),
        };
        if let Some(last) = live.last_ns.filter(|&l| ts <= l) {
            live.node.metrics().add(metrics::REJECTED, 1.0);
            return Err(RecorderError::TimestampBackwards {
                previous: Duration::from_nanos(last),
                got: Duration::from_nanos(ts),
            });
        }
        live.last_ns = Some(ts);
        Ok(ts)
    }

    fn send(&self, live: &mut LiveNode, buf: OutBuf, ts_ns: u64) -> Result<()> {
        let s = &self.settings;
        let period_us = 1_000_000 * s.fps.den / s.fps.num.max(1);
        let frame = NodeFrame {
            format: api_pixel_format(s.pixel_format),
            width: s.width,
            height: s.height,
            layout: video_layout(s),
            pts: (ts_ns / 1_000) as i64,
            time_base: VIDEO_TIME_BASE,
            duration: period_us,
            capture_ns: self.slot.capture_ns(ts_ns),
        };
        live.node.send_video("video", frame, buf)?;
        live.node.metrics().add(metrics::SUBMITTED, 1.0);
        Ok(())
    }
}

impl VideoBuffer {
    /// Bytes per row of each plane (packed rows).
    pub fn strides(&self) -> [usize; 3] {
        self.strides
    }

    /// Width and height in pixels.
    pub fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    /// Whether the buffer is in shared memory (false only when the graph
    /// runs without it: then the bytes cross the socket once).
    pub fn is_shared(&self) -> bool {
        self.buf.is_shm()
    }
}

impl Deref for VideoBuffer {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.buf
    }
}

impl DerefMut for VideoBuffer {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.buf
    }
}
