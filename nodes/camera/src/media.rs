//! Files and URLs through FFmpeg: demux the best video stream, decode it, and
//! send frames at their native size with the stream's timestamps.
//!
//! Decoded pictures keep their pixel format when nodes can carry it; any other
//! (yuvj420p, 10-bit, 4:4:4, ...) is converted to yuv420p. Pictures are
//! decoded straight into the output's shared memory where the codec allows
//! (see [`crate::direct`]), else copied there. Looping restarts at the
//! beginning with timestamps continuing where the last pass ended.

use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use ffmpeg_next as ff;
use node_api::{metrics, Node, PixelFormat, TimeBase, VideoFrame};
use node_media::codec::{received, Received};
use node_media::video::{from_pixel, Planes, PlanesMut, Scaler};

use crate::capture::{Capture, Pacer};
use crate::direct::{padded_size, DirectBuffers};

pub struct MediaCapture {
    path: String,
    input: ff::format::context::Input,
    stream: usize,
    decoder: ff::decoder::Video,
    time_base: ff::Rational,
    /// Fallback frame duration in stream ticks, from the stream's frame rate.
    default_duration: i64,
    looping: bool,
    pacer: Pacer,
    scaler: Scaler,
    packet: ff::Packet,
    frame: ff::frame::Video,
    state: Timeline,
    /// Decoding into shared memory, for the codecs that allow it.
    direct: Option<Arc<DirectBuffers>>,
    /// Frames sent from the decoder's own buffer (no copy).
    sent_in_place: u64,
}

/// Output timestamps across passes of a looping file.
#[derive(Debug, Default)]
struct Timeline {
    /// pts of the first frame ever sent (media time 0).
    origin: Option<i64>,
    /// Added to the file's pts on the current pass.
    offset: i64,
    /// First pts seen in the current pass.
    pass_first: Option<i64>,
    /// End (pts + duration) of the last frame sent, in output ticks.
    end: i64,
    last_pts: Option<i64>,
}

impl Timeline {
    /// The output pts of a frame stamped `pts` (or unstamped) in the file.
    fn place(&mut self, pts: Option<i64>, duration: i64) -> i64 {
        let pts = match pts {
            Some(p) => {
                self.pass_first.get_or_insert(p);
                p + self.offset
            }
            None => self.last_pts.map_or(0, |l| l + duration),
        };
        // Keep timestamps strictly increasing even when the file does not.
        let pts = match self.last_pts {
            Some(l) if pts <= l => l + 1,
            _ => pts,
        };
        self.origin.get_or_insert(pts);
        self.last_pts = Some(pts);
        self.end = self.end.max(pts + duration);
        pts
    }

    /// Starts another pass: its first frame follows the last one sent.
    fn next_pass(&mut self) {
        if let Some(first) = self.pass_first.take() {
            self.offset = self.end - first;
        } else {
            self.offset = self.end;
        }
    }
}

impl MediaCapture {
    /// `epoch_ns`: the run's epoch (0: none). A file replayed faster than real
    /// time starts there, like every other replayed source of the run, so
    /// their first frames meet at sync's common start however late each
    /// process got going; a realtime replay starts at its first frame.
    pub fn open(path: &str, realtime: bool, looping: bool, epoch_ns: u64) -> Result<MediaCapture> {
        let input = ff::format::input(&path).map_err(|e| anyhow!("cannot open `{path}`: {e}"))?;
        let stream = input
            .streams()
            .best(ff::media::Type::Video)
            .ok_or_else(|| anyhow!("`{path}` has no video stream"))?;
        let index = stream.index();
        let time_base = stream.time_base();
        let rate = stream.avg_frame_rate();
        let default_duration =
            if rate.numerator() > 0 && rate.denominator() > 0 && time_base.numerator() > 0 {
                let ticks = time_base.denominator() as i64 * rate.denominator() as i64
                    / (time_base.numerator() as i64 * rate.numerator() as i64);
                ticks.max(1)
            } else {
                1
            };
        let mut ctx = ff::codec::Context::from_parameters(stream.parameters())
            .map_err(|e| anyhow!("`{path}`: unusable video stream parameters: {e}"))?;
        ctx.set_threading(ff::threading::Config {
            kind: ff::threading::Type::Frame,
            count: 0,
            ..Default::default()
        });
        let direct = DirectBuffers::install(&mut ctx);
        let decoder = ctx
            .decoder()
            .video()
            .map_err(|e| anyhow!("`{path}`: cannot open the video decoder: {e}"))?;
        tracing::info!(
            "`{path}`: {} {}x{} {:?}, time base {}/{}, native size kept",
            decoder
                .codec()
                .map(|c| c.name().to_string())
                .unwrap_or_default(),
            decoder.width(),
            decoder.height(),
            decoder.format(),
            time_base.numerator(),
            time_base.denominator()
        );
        Ok(MediaCapture {
            path: path.to_string(),
            input,
            stream: index,
            decoder,
            time_base,
            default_duration,
            looping,
            pacer: if realtime || epoch_ns == 0 {
                Pacer::new(realtime)
            } else {
                Pacer::starting_at(false, epoch_ns)
            },
            scaler: Scaler::bilinear(),
            packet: ff::Packet::empty(),
            frame: ff::frame::Video::empty(),
            state: Timeline::default(),
            direct,
            sent_in_place: 0,
        })
    }

    /// Sends every frame the decoder has ready; returns how many.
    fn drain(&mut self, node: &mut Node) -> Result<u64> {
        let mut sent = 0;
        loop {
            match received(self.decoder.receive_frame(&mut self.frame)) {
                Ok(Received::Ready) => {}
                Ok(Received::Again | Received::End) => return Ok(sent),
                Err(e) => {
                    // The decoder skips what it cannot decode; go on with the next packet.
                    tracing::warn!("`{}`: decoding error: {e}", self.path);
                    return Ok(sent);
                }
            }
            if node.stop_requested() {
                return Ok(sent);
            }
            self.send_frame(node)?;
            sent += 1;
        }
    }

    fn send_frame(&mut self, node: &mut Node) -> Result<()> {
        let duration = match self.frame.packet().duration {
            d if d > 0 => d,
            _ => self.default_duration,
        };
        let pts = self.state.place(self.frame.timestamp(), duration);
        let tb = self.time_base;
        let offset_ticks = (pts - self.state.origin.unwrap_or(pts)).max(0) as i128;
        let offset_ns =
            offset_ticks * tb.numerator() as i128 * 1_000_000_000 / tb.denominator() as i128;
        let capture_ns = self.pacer.wait(offset_ns as u64, || node.stop_requested());

        let (w, h) = (self.frame.width(), self.frame.height());
        let format = from_pixel(self.frame.format()).unwrap_or(PixelFormat::Yuv420p);
        let mut header = VideoFrame {
            format,
            width: w,
            height: h,
            layout: format.packed_layout(w, h),
            pts,
            time_base: TimeBase::new(tb.numerator(), tb.denominator()),
            duration,
            capture_ns,
        };
        if let Some((buf, layout)) = self.direct.as_ref().and_then(|d| d.shared_of(&self.frame)) {
            header.layout = layout;
            self.sent_in_place += 1;
            node.metrics().add(metrics::IN_PLACE, 1.0);
            return node.send_video_shared("video", header, buf);
        }
        let mut buf = node.alloc("video", header.layout.size)?;
        {
            let src = Planes::from_frame(&self.frame);
            let mut dst = PlanesMut::from_buf(&header, &mut buf)?;
            if src.pixel == dst.pixel {
                dst.copy_from(&src)?;
            } else {
                self.scaler
                    .scale(&src, &mut dst)
                    .with_context(|| format!("`{}`: converting to yuv420p", self.path))?;
            }
        }
        node.send_video("video", header, buf)
    }

    fn rewind(&mut self) -> Result<()> {
        self.input.seek(0, ..).map_err(|e| {
            anyhow!(
                "`{}`: cannot seek back to the start to loop: {e}",
                self.path
            )
        })?;
        self.decoder.flush();
        self.state.next_pass();
        Ok(())
    }
}

impl Capture for MediaCapture {
    fn unpaced(&self) -> bool {
        !self.pacer.realtime()
    }

    fn max_frame_bytes(&self) -> usize {
        let format = from_pixel(self.decoder.format()).unwrap_or(PixelFormat::Yuv420p);
        // Formats like rgb24 can be twice yuv420p; size for the larger of both.
        let (w, h) = (self.decoder.width(), self.decoder.height());
        let packed = format
            .packed_layout(w, h)
            .size
            .max(PixelFormat::Yuv420p.packed_layout(w, h).size);
        if self.direct.is_none() {
            return packed;
        }
        // SAFETY: the decoder's own, open context.
        let in_place =
            unsafe { padded_size(self.decoder.as_ptr() as *mut _, self.decoder.format(), w, h) };
        packed.max(in_place.unwrap_or(0))
    }

    fn run(&mut self, node: &mut Node) -> Result<u64> {
        if let Some(direct) = &self.direct {
            if let Some(pool) = node.pool_handle("video", self.max_frame_bytes())? {
                direct.attach(pool);
            }
        }
        let mut sent = 0u64;
        let mut passes = 0u64;
        let mut last_error: Option<ff::Error> = None;
        'passes: loop {
            let mut pass_frames = 0u64;
            loop {
                if node.stop_requested() {
                    break 'passes;
                }
                // SAFETY: the packet is ours; av_read_frame expects a blank one.
                unsafe { ff::ffi::av_packet_unref(ff::packet::Mut::as_mut_ptr(&mut self.packet)) };
                match self.packet.read(&mut self.input) {
                    Ok(()) => {}
                    Err(ff::Error::Eof) => break,
                    Err(e) => bail!("reading `{}`: {e}", self.path),
                }
                if self.packet.stream() != self.stream {
                    continue;
                }
                if let Err(e) = self.decoder.send_packet(&self.packet) {
                    tracing::debug!("`{}`: packet rejected by the decoder: {e}", self.path);
                    last_error = Some(e);
                    continue;
                }
                let n = self.drain(node)?;
                pass_frames += n;
                sent += n;
            }
            // End of this pass: flush the frames the decoder still holds.
            self.decoder
                .send_eof()
                .map_err(|e| anyhow!("`{}`: {e}", self.path))?;
            let n = self.drain(node)?;
            pass_frames += n;
            sent += n;
            passes += 1;
            if pass_frames == 0 {
                let why = last_error.map_or("no frames".to_string(), |e| e.to_string());
                bail!("`{}`: no video frame could be decoded: {why}", self.path);
            }
            if !self.looping {
                break;
            }
            self.rewind()?;
        }
        tracing::info!(
            "`{}`: {sent} frames ({} decoded in place, no copy), {passes} whole pass(es)",
            self.path,
            self.sent_in_place
        );
        Ok(sent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeline_continues_across_loops() {
        let mut t = Timeline::default();
        // A file with pts 10, 13, 16 (duration 3).
        assert_eq!(t.place(Some(10), 3), 10);
        assert_eq!(t.place(Some(13), 3), 13);
        assert_eq!(t.place(Some(16), 3), 16);
        t.next_pass();
        assert_eq!(t.place(Some(10), 3), 19);
        assert_eq!(t.place(Some(13), 3), 22);
        // Unstamped and non-increasing frames still move forward.
        assert_eq!(t.place(None, 3), 25);
        assert_eq!(t.place(Some(1), 3), 26);
        assert_eq!(t.origin, Some(10));
    }
}
