//! One FFmpeg decoder for one stream of packets, and what each packet's
//! picture must carry out (capture time, pts, duration).

use std::collections::VecDeque;

use anyhow::{anyhow, Context, Result};
use ffmpeg_next as ff;
use node_api::{EncodedPacket, Node, PixelFormat, TimeBase};
use node_media::codec::{received, Received};
use node_media::packet::{codec_id, fill_parameters, same_stream, to_ffmpeg, to_rational};
use node_media::video::{packed_frame, Planes, PlanesMut, Scaler};

/// The timing of a packet whose picture has not come out yet.
#[derive(Debug, Clone, Copy)]
struct Pending {
    pts: i64,
    duration: i64,
    capture_ns: u64,
}

pub struct PacketDecoder {
    decoder: ff::decoder::Video,
    /// The stream this decoder was opened for.
    first: EncodedPacket,
    time_base: TimeBase,
    /// Packets sent, in decode order; a picture takes the timing of the one
    /// with its pts (B-frames come out in another order than they went in).
    pending: VecDeque<Pending>,
    frame: ff::frame::Video,
    scaler: Scaler,
    pub decoded: u64,
    pub corrupt: u64,
}

impl PacketDecoder {
    /// A decoder for the stream `first` belongs to (its codec parameters,
    /// extradata included, travel in every packet).
    pub fn open(first: &EncodedPacket, threads: u32) -> Result<PacketDecoder> {
        let id =
            codec_id(&first.codec).ok_or_else(|| anyhow!("unknown codec `{}`", first.codec))?;
        let codec = ff::decoder::find(id)
            .ok_or_else(|| anyhow!("FFmpeg has no {} decoder", first.codec))?;
        let mut par = ff::codec::Parameters::new();
        fill_parameters(&mut par, first.media, &first.codec, &first.params)?;
        let mut ctx = ff::codec::Context::from_parameters(par)?;
        // Frame threads add a frame of delay each but decode several pictures
        // at once: what a 1080p H.264 link needs on a small machine. The
        // capture times travel with the pictures, so the delay moves nothing.
        ctx.set_threading(ff::threading::Config {
            kind: ff::threading::Type::Frame,
            count: threads as usize,
            ..Default::default()
        });
        // SAFETY: a field of the context we own, before it is opened.
        unsafe { (*ctx.as_mut_ptr()).pkt_timebase = to_rational(first.time_base).into() };
        let decoder = ctx
            .decoder()
            .open_as(codec)
            .and_then(|o| o.video())
            .context("opening the decoder")?;
        Ok(PacketDecoder {
            decoder,
            first: first.clone(),
            time_base: first.time_base,
            pending: VecDeque::new(),
            frame: ff::frame::Video::empty(),
            scaler: Scaler::bilinear(),
            decoded: 0,
            corrupt: 0,
        })
    }

    /// Whether `packet` belongs to the stream this decoder was opened for.
    pub fn decodes(&self, packet: &EncodedPacket) -> bool {
        same_stream(&self.first, packet)
    }

    /// Decodes one packet and sends every picture that came out of it.
    pub fn decode(&mut self, node: &mut Node, packet: &EncodedPacket, data: &[u8]) -> Result<()> {
        self.pending.push_back(Pending {
            pts: packet.pts,
            duration: packet.duration.max(1),
            capture_ns: packet.capture_ns,
        });
        if let Err(e) = self.decoder.send_packet(&to_ffmpeg(packet, data)) {
            // A broken packet costs its picture, not the link: say so once,
            // count them all.
            if self.corrupt == 0 {
                tracing::warn!(
                    "a {} packet (pts {}) did not decode: {e}",
                    packet.codec,
                    packet.pts
                );
            }
            self.corrupt += 1;
            self.pending.pop_back();
        }
        self.drain(node)?;
        super::publish(node, self);
        Ok(())
    }

    /// Sends the pictures the decoder still holds (end of stream).
    pub fn finish(&mut self, node: &mut Node) -> Result<()> {
        self.decoder.send_eof().context("flushing the decoder")?;
        self.drain(node)?;
        super::publish(node, self);
        Ok(())
    }

    fn drain(&mut self, node: &mut Node) -> Result<()> {
        loop {
            match received(self.decoder.receive_frame(&mut self.frame)) {
                Ok(Received::Ready) => self.send_picture(node)?,
                Ok(Received::Again | Received::End) => return Ok(()),
                Err(e) => {
                    if self.corrupt == 0 {
                        tracing::warn!("a picture did not decode: {e}");
                    }
                    self.corrupt += 1;
                    return Ok(());
                }
            }
        }
    }

    /// The timing of the picture with `pts`: its packet's (earlier packets
    /// whose pictures never came are dropped from the list).
    fn timing_of(&mut self, pts: Option<i64>) -> Pending {
        let found = pts.and_then(|pts| self.pending.iter().position(|p| p.pts == pts));
        match found {
            Some(i) => self.pending.remove(i).expect("found above"),
            None => self.pending.pop_front().unwrap_or(Pending {
                pts: pts.unwrap_or(0),
                duration: 1,
                capture_ns: 0,
            }),
        }
    }

    fn send_picture(&mut self, node: &mut Node) -> Result<()> {
        let t = self.timing_of(self.frame.pts());
        let (w, h) = (self.frame.width(), self.frame.height());
        let mut header = packed_frame(
            PixelFormat::Yuv420p,
            w,
            h,
            t.pts,
            self.time_base,
            t.capture_ns,
        );
        header.duration = t.duration;
        let mut out = node.alloc("video", header.layout.size)?;
        {
            let mut dst = PlanesMut::from_buf(&header, &mut out)?;
            let mut src = Planes::from_frame(&self.frame);
            // The JPEG decoder names its output full range (yuvj420p); the
            // samples are the ones the link's encoder was given, which were
            // yuv420p: the same layout, copied as they are.
            if src.pixel == ff::format::Pixel::YUVJ420P {
                src.pixel = ff::format::Pixel::YUV420P;
            }
            if src.pixel == dst.pixel {
                dst.copy_from(&src)?;
            } else {
                self.scaler.scale(&src, &mut dst)?;
            }
        }
        node.send_video("video", header, out)?;
        self.decoded += 1;
        Ok(())
    }
}
