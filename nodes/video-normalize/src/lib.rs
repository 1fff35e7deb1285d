//! `mediagraph-nodes video-normalize`: scales, converts the pixel format and conforms raw
//! video to a constant frame rate.
//!
//! Output frames have pts = output frame index and time_base = 1/fps. Frames
//! that already match the output (size and format, in any plane layout) are forwarded without
//! a copy; others go through one swscale pass straight into shared memory.
//! Metrics: `duplicated` (slots filled with the previous frame), `dropped_cfr`
//! (frames whose slot was already sent), `passthrough` (frames forwarded as is),
//! `corrupt` (MJPEG frames that did not decode; the previous picture covers them).

mod cfr;
mod convert;

use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{bail, Context, Result};
use node_api::{metrics, Event, Header, Message, Node, PixelFormat, VideoFrame};
use node_catalog::Rational;
use node_media::video::packed_frame;

use crate::cfr::{CfrMapper, Placement};
use crate::convert::{Converter, Target};

/// Entry point, with the arguments after the kind (none are taken).
pub fn main(_args: &[String]) {
    node_api::run_main(run);
}

fn run() -> Result<()> {
    let mut node = Node::init()?;
    node_media::init()?;
    let s = node_catalog::kinds::video_normalize::Settings::from_params(node.params())?;
    let target = Target {
        format: s.pixel_format.into(),
        width: s.width,
        height: s.height,
        keep_aspect: s.keep_aspect,
    };
    let fps = s.fps;
    let mut normalizer = Normalizer::new(target, fps);
    // No output pool up front: frames that already match the output are
    // forwarded in their sender's memory, and a pool (locked in RAM, a
    // 1080p one is ~22 MB) is made only when the first frame needs converting.
    tracing::info!(
        "normalizing to {}x{} {} at {fps} fps{}",
        target.width,
        target.height,
        target.format.name(),
        if target.keep_aspect {
            " (aspect kept)"
        } else {
            ""
        }
    );

    while let Some(event) = node.next_event()? {
        match event {
            Event::Input { input, message } => normalizer.on_frame(&mut node, &input, message)?,
            Event::InputClosed { .. } => break,
            // Keep draining until upstream closes. No param is mutable: the
            // node API keeps updates from reaching the node.
            Event::Stop | Event::ParamUpdate { .. } => {}
        }
    }
    tracing::info!(
        "{} frames in, {} out ({} passed through, {} duplicated, {} dropped to conform)",
        normalizer.frames_in,
        normalizer.frames_out,
        normalizer.passthrough,
        normalizer.duplicated,
        normalizer.dropped
    );
    node.finish()
}

/// The newest input frame: repeated into slots no frame reached.
struct Previous {
    message: Message,
    /// Whether the MJPEG decoder's current picture is this frame's.
    decoded: bool,
}

struct Normalizer {
    converter: Converter,
    cfr: CfrMapper,
    previous: Option<Previous>,
    frames_in: u64,
    frames_out: u64,
    passthrough: u64,
    duplicated: u64,
    dropped: u64,
}

impl Normalizer {
    fn new(target: Target, fps: Rational) -> Normalizer {
        Normalizer {
            converter: Converter::new(target),
            cfr: CfrMapper::new(fps),
            previous: None,
            frames_in: 0,
            frames_out: 0,
            passthrough: 0,
            duplicated: 0,
            dropped: 0,
        }
    }

    fn on_frame(&mut self, node: &mut Node, input: &str, message: Message) -> Result<()> {
        let Header::Video(frame) = &message.header else {
            bail!(
                "input `{input}` carries {:?}, not raw video",
                header_kind(&message.header)
            );
        };
        self.frames_in += 1;
        let placement = self.cfr.place(frame.pts, frame.time_base);
        let Placement::Emit { slot, fill_from } = placement else {
            self.dropped += 1;
            node.metrics()
                .set(metrics::DROPPED_CFR, self.dropped as f64);
            tracing::debug!(pts = frame.pts, "frame dropped: its slot was already sent");
            // Still the newest picture: it is the one to repeat if a gap follows.
            self.previous = Some(Previous {
                message,
                decoded: false,
            });
            return Ok(());
        };
        if let Some(prev) = self.previous.as_mut().filter(|_| slot > fill_from) {
            for s in fill_from..slot {
                // The slot's ideal capture time, counted back from this frame's.
                let capture_ns = frame
                    .capture_ns
                    .saturating_sub((slot - s) as u64 * self.cfr.period_ns());
                emit(
                    &mut self.converter,
                    &self.cfr,
                    node,
                    &prev.message,
                    s,
                    capture_ns,
                    prev.decoded,
                )?;
                prev.decoded = true;
                self.duplicated += 1;
                self.frames_out += 1;
            }
            node.metrics()
                .set(metrics::DUPLICATED, self.duplicated as f64);
        }
        let capture_ns = frame.capture_ns;
        let passed = emit(
            &mut self.converter,
            &self.cfr,
            node,
            &message,
            slot,
            capture_ns,
            false,
        )?;
        self.frames_out += 1;
        if passed {
            self.passthrough += 1;
            node.metrics()
                .set(metrics::PASSTHROUGH, self.passthrough as f64);
        }
        self.previous = Some(Previous {
            message,
            decoded: true,
        });
        Ok(())
    }
}

/// Sends `message`'s picture at output `slot`; returns whether it was
/// forwarded as is. `decoded`: the MJPEG decoder already holds this picture.
fn emit(
    converter: &mut Converter,
    cfr: &CfrMapper,
    node: &mut Node,
    message: &Message,
    slot: i64,
    capture_ns: u64,
    decoded: bool,
) -> Result<bool> {
    let Header::Video(frame) = &message.header else {
        unreachable!("checked by on_frame")
    };
    let time_base = cfr.time_base();
    if converter.passes_through(frame, message.payload.len()) {
        let header = VideoFrame {
            pts: slot,
            time_base,
            duration: 1,
            capture_ns,
            ..frame.clone()
        };
        node.forward("video", Header::Video(header), &message.payload)?;
        return Ok(true);
    }
    let mut out = node.alloc("video", converter.output_size())?;
    let data = message.payload.as_slice();
    if frame.format == PixelFormat::Mjpeg {
        if !decoded {
            if let Err(e) = converter.decode(&data) {
                // Cameras do send broken JPEGs now and then: cover the slot
                // with the last good picture (black before the first one).
                // Said once at warn level; the `corrupt` metric counts them all.
                static WARNED: AtomicBool = AtomicBool::new(false);
                if !WARNED.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        "MJPEG frame pts {} is corrupt ({e:#}): showing the previous picture",
                        frame.pts
                    );
                } else {
                    tracing::debug!("MJPEG frame pts {} is corrupt: {e:#}", frame.pts);
                }
                node.metrics().add(metrics::CORRUPT, 1.0);
            }
        }
        if converter.has_decoded() {
            converter.convert_decoded(&mut out)?;
        } else {
            converter.fill_black(&mut out)?;
        }
    } else {
        converter
            .convert_raw(frame, &data, &mut out)
            .with_context(|| {
                format!(
                    "converting a {}x{} {} frame",
                    frame.width,
                    frame.height,
                    frame.format.name()
                )
            })?;
    }
    let t = converter.target();
    node.send_video(
        "video",
        packed_frame(t.format, t.width, t.height, slot, time_base, capture_ns),
        out,
    )?;
    Ok(false)
}

fn header_kind(header: &Header) -> &'static str {
    match header {
        Header::Video(_) => "video",
        Header::Audio(_) => "audio",
        Header::Packet(_) => "encoded packets",
        Header::Stats(_) => "stats",
        Header::EndOfStream => "end-of-stream",
    }
}
