//! One open encoder: raw frames in (any carried format, converted to what the
//! encoder takes), packets out with full stream parameters.

use anyhow::{anyhow, bail, Context as _, Result};
use ff::ffi;
use ff::format::Pixel;
use ffmpeg_next as ff;
use node_api::{CodecParams, EncodedPacket, MediaKind, NoRestart, TimeBase, VideoFrame};
use node_catalog::Rational;
use node_media::codec::{received, Received};
use node_media::packet::{codec_params_from, from_ffmpeg};
use node_media::video::{LentFrame, Planes, PlanesMut, Scaler};

use crate::hw::{quietly, Vaapi};
use crate::settings::{plan, CodecExt, HwAccel, RateControl, Settings};

/// Frames the encoder may still hold when a new one is written: a few are
/// kept so an encoder keeping a reference never makes us wait or allocate.
const FRAME_RING: usize = 4;
/// Capture times remembered across the encoder's delay (lookahead, B-frames).
const CAPTURE_RING: usize = 1024;

pub struct VideoEncoder {
    pub(crate) encoder: ff::encoder::video::Encoder,
    /// The rate control in force (see `retune.rs`).
    pub(crate) rate: RateControl,
    /// The FFmpeg encoder actually used, e.g. `libx264`.
    pub name: &'static str,
    codec_name: &'static str,
    /// The speed preset it runs.
    pub speed_name: &'static str,
    width: u32,
    height: u32,
    /// 1/fps: one tick per frame.
    time_base: ff::Rational,
    params: CodecParams,
    gop: u64,
    force_keyframes: bool,
    frames: FrameRing,
    /// Input pictures go to the encoder as lent payloads, uncopied.
    takes_lent_frames: bool,
    scaler: Scaler,
    vaapi: Option<Vaapi>,
    packet: ff::Packet,
    captures: Box<[(i64, u64); CAPTURE_RING]>,
    last_capture: u64,
    next_index: u64,
    max_delay_frames: u64,
    last_pts: Option<i64>,
    /// The first frame captured at or after this instant is encoded as a
    /// keyframe (a recording starts or splits there).
    keyframe_from: Option<u64>,
    stats: Stats,
}

/// Running totals for the bitrate metric.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    pub packets: u64,
    pub keyframes: u64,
    pub bytes: u64,
    first_pts: Option<i64>,
    end_pts: i64,
}

impl Stats {
    /// Average bits per second over the media encoded so far.
    pub fn bitrate_bps(&self, tb: TimeBase) -> f64 {
        let span = self.end_pts - self.first_pts.unwrap_or(self.end_pts);
        let secs = tb.seconds(span);
        if secs > 0.0 {
            self.bytes as f64 * 8.0 / secs
        } else {
            0.0
        }
    }
}

/// The encoder's clock for a stream whose first frame is `first`: one tick
/// per frame (its time base times its duration), and the matching frame rate.
pub fn encoder_clock(first: &VideoFrame) -> Result<(ff::Rational, Rational)> {
    let (num, den) = (first.time_base.num as i64, first.time_base.den as i64);
    if num <= 0 || den <= 0 {
        bail!("frame time base {}/{} is not positive", num, den);
    }
    let tick = Rational::new(num * first.duration.max(1), den);
    let fps = Rational::new(tick.den, tick.num);
    Ok((ff::Rational::new(tick.num as i32, tick.den as i32), fps))
}

impl VideoEncoder {
    /// Opens the encoder for a stream whose first frame is `first`: hardware
    /// first when asked (or `auto`), else software.
    pub fn open(settings: &Settings, first: &VideoFrame) -> Result<VideoEncoder> {
        let (time_base, fps) = encoder_clock(first)?;
        let (w, h) = (first.width, first.height);
        if !w.is_multiple_of(2) || !h.is_multiple_of(2) {
            // A size the graph did not say (a camera's or a file's own): a
            // restart would meet the same frames.
            return Err(NoRestart(format!(
                "{w}x{h} frames cannot be encoded as 4:2:0 (odd size): set an even width and height on video-normalize"
            ))
            .into());
        }
        let codec = settings.codec;
        let open = |name: &'static str, pixel: Pixel, vaapi: Option<Vaapi>| {
            open_as(settings, name, w, h, time_base, fps, pixel, vaapi)
        };

        let mut tried: Vec<&str> = Vec::new();
        // Why the hardware encoder asked for by name could not be used.
        let mut refused = String::new();
        for hw in [HwAccel::Nvenc, HwAccel::Vaapi] {
            if matches!(settings.hwaccel, HwAccel::Auto) || settings.hwaccel == hw {
                tried.push(hw.name());
                match open_hardware(settings, hw, w, h, time_base, fps) {
                    Ok(enc) => return Ok(enc),
                    Err(e) => {
                        tracing::debug!("{e:#}");
                        refused = format!("{e:#}");
                    }
                }
            }
        }
        if matches!(settings.hwaccel, HwAccel::Nvenc | HwAccel::Vaapi) {
            // Asked for by name: a software encode instead would be a
            // surprise (CPU load, another quality); `auto` falls back.
            return Err(NoRestart(format!(
                "hwaccel: {} asked for, but it cannot be used here ({refused}); set hwaccel: auto to fall back to software",
                settings.hwaccel.name()
            ))
            .into());
        }

        let software: Vec<&'static str> = codec
            .software_encoders()
            .iter()
            .copied()
            .filter(|n| ff::encoder::find_by_name(n).is_some())
            .collect();
        let Some(first_choice) = software.first() else {
            bail!(
                "FFmpeg has none of the {} encoders {:?}",
                codec.stream_name(),
                codec.software_encoders()
            );
        };
        if !tried.is_empty() {
            tracing::info!(
                "no hardware encoder ({}) available; using {first_choice}",
                tried.join("/")
            );
        }
        let mut errors = Vec::new();
        for name in software {
            match open(name, Pixel::YUV420P, None) {
                Ok(enc) => return Ok(enc),
                Err(e) => {
                    tracing::warn!("{name} could not be opened: {e:#}");
                    errors.push(format!("{name}: {e:#}"));
                }
            }
        }
        bail!(
            "no {} encoder could be opened ({})",
            codec.stream_name(),
            errors.join("; ")
        )
    }

    pub fn time_base(&self) -> TimeBase {
        TimeBase::new(self.time_base.numerator(), self.time_base.denominator())
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Encodes one frame; `sink` gets every packet that comes out.
    pub fn encode(
        &mut self,
        header: &VideoFrame,
        data: &[u8],
        sink: &mut dyn FnMut(EncodedPacket, &[u8]) -> Result<()>,
    ) -> Result<()> {
        self.encode_frame(header, data, sink)?;
        // Frames in that no packet came out for yet: the lookahead, B-frames
        // and frame threads, which a crash of everything loses.
        let held = self.next_index.saturating_sub(self.stats.packets);
        self.max_delay_frames = self.max_delay_frames.max(held);
        Ok(())
    }

    /// Encodes the first frame captured at or after `at_ns` (capture
    /// clock) as a keyframe; a frame captured earlier that is still to
    /// come stays as it would be.
    pub fn keyframe_from(&mut self, at_ns: u64) {
        self.keyframe_from = Some(at_ns);
    }

    /// The most frames the encoder held at once (its delay), so far.
    pub fn delay_frames(&self) -> u64 {
        self.max_delay_frames
    }

    fn encode_frame(
        &mut self,
        header: &VideoFrame,
        data: &[u8],
        sink: &mut dyn FnMut(EncodedPacket, &[u8]) -> Result<()>,
    ) -> Result<()> {
        let pts = self.pts_of(header);
        self.captures[pts.rem_euclid(CAPTURE_RING as i64) as usize] = (pts, header.capture_ns);
        let asked = self.keyframe_from.is_some_and(|t| header.capture_ns >= t);
        if asked {
            self.keyframe_from = None;
        }
        let keyframe = asked || (self.force_keyframes && self.next_index.is_multiple_of(self.gop));
        if self.next_index < REALTIME_CHECK_FRAMES {
            // Some encoders start their real-time threads with the first
            // frames, not when opened: see node_api::sched.
            node_api::sched::demote_realtime_threads();
        }
        self.next_index += 1;

        let src = Planes::from_payload(header, data)?;
        let matches_encoder =
            (src.pixel, src.width, src.height) == (self.frames.pixel, self.width, self.height);
        if self.takes_lent_frames && matches_encoder {
            // The encoder copies the picture while it is sent: lend it the
            // payload itself rather than copying it into a frame of ours.
            let mut lent = LentFrame::new(header, data)?;
            stamp(lent.frame_mut(), pts, keyframe);
            self.encoder
                .send_frame(lent.frame_mut())
                .map_err(|e| anyhow!("{} rejected frame pts {pts}: {e}", self.name))?;
            self.receive(sink)?;
            if lent.still_referenced() {
                // The payload is the sender's memory, reused once we return.
                bail!(
                    "{} kept a reference to an input frame it was lent (this FFmpeg's wrapper does not copy on send)",
                    self.name
                );
            }
            return Ok(());
        }
        let frame = self.frames.writable(self.width, self.height)?;
        {
            let mut dst = PlanesMut::from_frame(frame);
            if matches_encoder {
                dst.copy_from(&src)?;
            } else {
                self.scaler.scale(&src, &mut dst)?;
            }
        }
        stamp(frame, pts, keyframe);
        let sent = match self.vaapi.as_mut() {
            Some(vaapi) => {
                let surface = vaapi.upload(frame)?;
                self.encoder.send_frame(surface)
            }
            None => self.encoder.send_frame(frame),
        };
        sent.map_err(|e| anyhow!("{} rejected frame pts {pts}: {e}", self.name))?;
        self.receive(sink)
    }

    /// Whether [`VideoEncoder::switch_settings`] can change this encoder's
    /// preset mid-stream (x264 keeps its headers when told which ones).
    pub fn can_switch(&self) -> bool {
        self.name == "libx264" && self.vaapi.is_none()
    }

    /// Continues the stream with an encoder opened with `settings` (e.g. a
    /// faster preset): the old one is drained first, the new one starts with
    /// a keyframe and continues the timestamps. Only when the new encoder
    /// writes the same stream headers, so the packets still fit the file;
    /// returns false (and keeps the old encoder) otherwise.
    pub fn switch_settings(
        &mut self,
        settings: &Settings,
        sink: &mut dyn FnMut(EncodedPacket, &[u8]) -> Result<()>,
    ) -> Result<bool> {
        let tb = self.time_base;
        let fps = Rational::new(tb.denominator() as i64, tb.numerator() as i64);
        let next = open_as(
            settings,
            self.name,
            self.width,
            self.height,
            tb,
            fps,
            Pixel::YUV420P,
            None,
        )?;
        if next.params != self.params {
            tracing::warn!(
                "{}: the {} preset would change the stream headers; keeping {}",
                self.name,
                settings.speed.name(),
                self.speed_name
            );
            return Ok(false);
        }
        self.finish(sink)?;
        let old = std::mem::replace(self, next);
        self.captures = old.captures;
        self.last_capture = old.last_capture;
        self.next_index = old.next_index;
        self.max_delay_frames = old.max_delay_frames;
        self.last_pts = old.last_pts;
        self.stats = old.stats;
        Ok(true)
    }

    /// Drains the encoder at the end of the stream.
    pub fn finish(
        &mut self,
        sink: &mut dyn FnMut(EncodedPacket, &[u8]) -> Result<()>,
    ) -> Result<()> {
        self.encoder
            .send_eof()
            .map_err(|e| anyhow!("{}: flushing: {e}", self.name))?;
        self.receive(sink)
    }

    /// The encoder pts of a frame: its time rescaled to one tick per frame,
    /// kept strictly increasing (encoders refuse anything else).
    fn pts_of(&mut self, header: &VideoFrame) -> i64 {
        let tb = (header.time_base.num as i128, header.time_base.den as i128);
        let etb = (
            self.time_base.numerator() as i128,
            self.time_base.denominator() as i128,
        );
        let num = header.pts as i128 * tb.0 * etb.1;
        let den = tb.1 * etb.0;
        let pts = (2 * num + den).div_euclid(2 * den) as i64;
        let pts = match self.last_pts {
            Some(last) if pts <= last => last + 1,
            _ => pts,
        };
        self.last_pts = Some(pts);
        pts
    }

    fn receive(&mut self, sink: &mut dyn FnMut(EncodedPacket, &[u8]) -> Result<()>) -> Result<()> {
        loop {
            match received(self.encoder.receive_packet(&mut self.packet)) {
                Ok(Received::Ready) => {}
                Ok(Received::Again | Received::End) => return Ok(()),
                Err(e) => return Err(anyhow!("{}: encoding failed: {e}", self.name)),
            }
            let pts = self.packet.pts().or(self.packet.dts()).unwrap_or(0);
            let capture_ns = match self.captures[pts.rem_euclid(CAPTURE_RING as i64) as usize] {
                (p, c) if p == pts => c,
                _ => self.last_capture,
            };
            self.last_capture = capture_ns;
            let mut header = from_ffmpeg(
                &self.packet,
                MediaKind::Video,
                self.codec_name,
                self.params.clone(),
                self.time_base(),
                capture_ns,
            );
            if header.duration <= 0 {
                header.duration = 1;
            }
            let s = &mut self.stats;
            s.packets += 1;
            s.keyframes += header.keyframe as u64;
            s.bytes += self.packet.size() as u64;
            s.first_pts.get_or_insert(header.pts);
            s.end_pts = s.end_pts.max(header.pts + header.duration);
            sink(header, self.packet.data().unwrap_or(&[]))?;
        }
    }
}

/// Sets the timestamp and, when forced, the keyframe flag of a frame to encode.
/// Frames after which an encoder has started all its threads.
const REALTIME_CHECK_FRAMES: u64 = 16;

fn stamp(frame: &mut ff::frame::Video, pts: i64, keyframe: bool) {
    frame.set_pts(Some(pts));
    frame.set_kind(if keyframe {
        ff::picture::Type::I
    } else {
        ff::picture::Type::None
    });
}

/// Encoders that copy every input picture into their own buffers during
/// `avcodec_send_frame` (libx264 and libx265 do, in `x264_encoder_encode` /
/// `x265_encoder_encode`) and drop FFmpeg's reference before it returns.
fn copies_input_on_send(name: &str) -> bool {
    matches!(name, "libx264" | "libx265")
}

/// Opens `hw`'s (NVENC or VAAPI) encoder for the settings' codec at this
/// size, FFmpeg's own logging silenced; the error names the encoder and why
/// it cannot be used. `runtime devices` probes with it too (see `probe`).
pub(crate) fn open_hardware(
    settings: &Settings,
    hw: HwAccel,
    width: u32,
    height: u32,
    time_base: ff::Rational,
    fps: Rational,
) -> Result<VideoEncoder> {
    let codec = settings.codec;
    let open = |name: &'static str, pixel: Pixel, vaapi: Option<Vaapi>| {
        open_as(settings, name, width, height, time_base, fps, pixel, vaapi).with_context(|| name)
    };
    quietly(|| match hw {
        HwAccel::Nvenc => match codec.nvenc_encoder() {
            Some(name) => open(name, Pixel::YUV420P, None),
            None => bail!("FFmpeg has no NVENC encoder for {}", codec.stream_name()),
        },
        _ => {
            let name = codec.vaapi_encoder();
            ff::encoder::find_by_name(name).ok_or_else(|| anyhow!("FFmpeg has no {name}"))?;
            let vaapi = Vaapi::open(width, height).with_context(|| name)?;
            open(name, Pixel::VAAPI, Some(vaapi))
        }
    })
}

/// Opens encoder `name` with the options its plan gives.
#[allow(clippy::too_many_arguments)]
fn open_as(
    settings: &Settings,
    name: &'static str,
    width: u32,
    height: u32,
    time_base: ff::Rational,
    fps: Rational,
    pixel: Pixel,
    vaapi: Option<Vaapi>,
) -> Result<VideoEncoder> {
    let codec =
        ff::encoder::find_by_name(name).ok_or_else(|| anyhow!("FFmpeg has no {name} encoder"))?;
    let mut enc = ff::codec::Context::new_with_codec(codec)
        .encoder()
        .video()
        .context("allocating the encoder")?;
    enc.set_width(width);
    enc.set_height(height);
    enc.set_format(pixel);
    enc.set_time_base(time_base);
    enc.set_frame_rate(Some(ff::Rational::new(fps.num as i32, fps.den as i32)));
    // Global headers for the muxer; closed GOPs so every keyframe is a clean
    // random access point (x264 would otherwise open its GOPs). Added to the
    // encoder's default flags, which some encoders set.
    // MJPEG has no GOP (every picture stands alone), and its encoder refuses
    // the closed-GOP flag.
    let closed_gop = if name == "mjpeg" {
        0
    } else {
        ffi::AV_CODEC_FLAG_CLOSED_GOP
    };
    // SAFETY: a field of the context we own.
    unsafe {
        (*enc.as_mut_ptr()).flags |= (ffi::AV_CODEC_FLAG_GLOBAL_HEADER | closed_gop) as i32;
    }
    if let Some(v) = &vaapi {
        // SAFETY: the context owns the new reference and frees it on close.
        unsafe { (*enc.as_mut_ptr()).hw_frames_ctx = v.frames_ref() };
    }
    let plan = plan(settings, name, fps);
    let mut options = ff::Dictionary::new();
    for (k, v) in &plan.options {
        options.set(k, v);
    }
    // SAFETY: a configured, unopened context; FFmpeg consumes the options it
    // knows and leaves the others in `raw`, which we take back and free.
    let (r, leftover) = unsafe {
        let mut raw = options.disown();
        let r = ffi::avcodec_open2(enc.as_mut_ptr(), codec.as_ptr(), &mut raw);
        (r, ff::Dictionary::own(raw))
    };
    // libsvtav1 run as root makes its threads real-time: see node_api::sched.
    node_api::sched::demote_realtime_threads();
    if r < 0 {
        bail!("{}", ff::Error::from(r));
    }
    for (k, v) in leftover.iter() {
        tracing::warn!("{name} ignored option {k}={v}");
    }
    if plan.tune_ignored {
        tracing::warn!("{name} has no `tune`: ignored");
    }
    let encoder = ff::encoder::video::Encoder(enc);
    let mut params = codec_params_from(&ff::codec::Parameters::from(&*encoder), time_base.invert());
    // The picture encoded is 4:2:0 8-bit whichever surface carried it (NV12 for VAAPI).
    params.pixel_format = "yuv420p".into();
    params.frame_rate = (fps.num as i32, fps.den as i32);
    let gop = settings.gop(fps) as u64;
    tracing::info!(
        "{name}: {width}x{height} at {fps} fps, keyframe every {gop} frames, {}",
        plan.options
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let sw_pixel = if vaapi.is_some() { Pixel::NV12 } else { pixel };
    Ok(VideoEncoder {
        encoder,
        rate: settings.rate,
        name,
        codec_name: settings.codec.stream_name(),
        speed_name: settings.speed.name(),
        width,
        height,
        time_base,
        params,
        gop,
        force_keyframes: plan.force_keyframes,
        frames: FrameRing::new(sw_pixel),
        takes_lent_frames: vaapi.is_none() && copies_input_on_send(name),
        scaler: Scaler::bilinear(),
        vaapi,
        packet: ff::Packet::empty(),
        captures: Box::new([(i64::MIN, 0); CAPTURE_RING]),
        last_capture: 0,
        next_index: 0,
        max_delay_frames: 0,
        last_pts: None,
        keyframe_from: None,
        stats: Stats::default(),
    })
}

/// Input pictures for the encoder, reused once the encoder lets go of them.
struct FrameRing {
    pixel: Pixel,
    frames: Vec<ff::frame::Video>,
    next: usize,
}

impl FrameRing {
    fn new(pixel: Pixel) -> FrameRing {
        FrameRing {
            pixel,
            frames: Vec::with_capacity(FRAME_RING),
            next: 0,
        }
    }

    /// A frame of the encoder's size that nobody else references.
    fn writable(&mut self, width: u32, height: u32) -> Result<&mut ff::frame::Video> {
        let n = self.frames.len();
        for i in 0..n {
            let k = (self.next + i) % n;
            // SAFETY: a valid frame with buffers.
            if unsafe { ffi::av_frame_is_writable(self.frames[k].as_mut_ptr()) } != 0 {
                self.next = (k + 1) % n;
                return Ok(&mut self.frames[k]);
            }
        }
        // All in use (or none yet): one more, which the ring then keeps.
        let frame = ff::frame::Video::new(self.pixel, width, height);
        // SAFETY: reading the first plane pointer of the new frame.
        if unsafe { (*frame.as_ptr()).data[0].is_null() } {
            bail!("cannot allocate a {width}x{height} {:?} frame", self.pixel);
        }
        if n >= FRAME_RING {
            tracing::debug!("encoder holds {n} frames; adding one");
        }
        self.frames.push(frame);
        self.next = 0;
        Ok(self.frames.last_mut().expect("just pushed"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use node_media::video::packed_frame;
    use serde_json::json;

    fn settings(params: serde_json::Value) -> Settings {
        Settings::from_params(&node_api::Params(params.as_object().unwrap().clone())).unwrap()
    }

    /// Encodes `n` gray-ramp frames and returns the packets.
    fn encode(
        params: serde_json::Value,
        n: i64,
        format: node_api::PixelFormat,
    ) -> (VideoEncoder, Vec<EncodedPacket>) {
        ff::init().unwrap();
        let s = settings(params);
        let (w, h) = (160, 96);
        let first = packed_frame(format, w, h, 0, TimeBase::new(1, 30), 1_000);
        let mut enc = VideoEncoder::open(&s, &first).unwrap();
        let mut packets = Vec::new();
        let mut sink = |p: EncodedPacket, data: &[u8]| {
            assert!(!data.is_empty());
            packets.push(p);
            Ok(())
        };
        for i in 0..n {
            let header = packed_frame(format, w, h, i, TimeBase::new(1, 30), 1_000 + i as u64);
            let data: Vec<u8> = (0..header.layout.size)
                .map(|k| ((k as i64 + i * 3) % 251) as u8)
                .collect();
            enc.encode(&header, &data, &mut sink).unwrap();
        }
        enc.finish(&mut sink).unwrap();
        (enc, packets)
    }

    #[test]
    fn a_hardware_encoder_asked_for_by_name_is_used_or_refused_never_replaced() {
        ff::init().unwrap();
        let first = packed_frame(
            node_api::PixelFormat::Yuv420p,
            160,
            96,
            0,
            TimeBase::new(1, 30),
            0,
        );
        for hw in ["nvenc", "vaapi"] {
            let s = settings(json!({ "codec": "h264", "hwaccel": hw }));
            match VideoEncoder::open(&s, &first) {
                Ok(enc) => assert!(enc.name.contains(hw), "{hw}: opened {}", enc.name),
                Err(e) => {
                    let why = format!("{e:#}");
                    assert!(why.contains(&format!("hwaccel: {hw} asked for")), "{why}");
                    assert!(e.downcast_ref::<NoRestart>().is_some(), "{why}");
                }
            }
        }
    }

    #[test]
    fn clock_from_the_first_frame() {
        let f = packed_frame(
            node_api::PixelFormat::Yuv420p,
            64,
            64,
            0,
            TimeBase::new(1001, 30000),
            0,
        );
        let (tb, fps) = encoder_clock(&f).unwrap();
        assert_eq!((tb.numerator(), tb.denominator()), (1001, 30000));
        assert_eq!(fps, Rational::new(30000, 1001));
        let mut f = f;
        f.time_base = TimeBase::new(1, 90000);
        f.duration = 3000;
        let (tb, fps) = encoder_clock(&f).unwrap();
        assert_eq!((tb.numerator(), tb.denominator()), (1, 30));
        assert_eq!(fps, Rational::new(30, 1));
    }

    #[test]
    fn h264_packets_carry_everything_the_muxer_needs() {
        let (enc, packets) = encode(
            json!({ "codec": "h264", "speed": "fast", "keyframe_interval": 0.5, "hwaccel": "none" }),
            40,
            node_api::PixelFormat::Yuv420p,
        );
        assert_eq!(enc.name, "libx264");
        assert_eq!(packets.len(), 40);
        let p = &packets[0];
        assert_eq!(p.codec, "h264");
        assert_eq!((p.params.width, p.params.height), (160, 96));
        assert_eq!(p.params.pixel_format, "yuv420p");
        assert_eq!(p.params.frame_rate, (30, 1));
        assert_eq!(p.time_base, TimeBase::new(1, 30));
        // GLOBAL_HEADER: SPS/PPS in extradata (Annex B start code).
        assert!(
            p.params.extradata.starts_with(&[0, 0, 0, 1])
                || p.params.extradata.starts_with(&[0, 0, 1])
        );
        // Keyframes every 15 frames (0.5 s at 30 fps).
        let mut keys: Vec<i64> = packets
            .iter()
            .filter(|p| p.keyframe)
            .map(|p| p.pts)
            .collect();
        keys.sort();
        assert_eq!(keys, vec![0, 15, 30]);
        // Capture times follow their frames through B-frame reordering.
        for p in &packets {
            assert_eq!(p.capture_ns, 1_000 + p.pts as u64);
            assert!(p.dts <= p.pts);
        }
        assert!(enc.stats().bitrate_bps(enc.time_base()) > 0.0);
    }

    #[test]
    fn switching_to_faster_presets_keeps_the_stream_going() {
        ff::init().unwrap();
        for base in ["medium", "veryfast"] {
            let mut s = settings(json!({ "codec": "h264", "speed": base, "hwaccel": "none" }));
            let (w, h) = (160, 96);
            let tb = TimeBase::new(1, 30);
            let format = node_api::PixelFormat::Yuv420p;
            let mut enc = VideoEncoder::open(&s, &packed_frame(format, w, h, 0, tb, 0)).unwrap();
            let mut packets = Vec::new();
            let mut sink = |p: EncodedPacket, _: &[u8]| {
                packets.push(p);
                Ok(())
            };
            let mut i = 0;
            let feed =
                |enc: &mut VideoEncoder,
                 i: &mut i64,
                 sink: &mut dyn FnMut(EncodedPacket, &[u8]) -> Result<()>| {
                    for _ in 0..20 {
                        let header = packed_frame(format, w, h, *i, tb, *i as u64);
                        let data: Vec<u8> = (0..header.layout.size)
                            .map(|k| ((k as i64 + *i * 7) % 251) as u8)
                            .collect();
                        enc.encode(&header, &data, sink).unwrap();
                        *i += 1;
                    }
                };
            feed(&mut enc, &mut i, &mut sink);
            let mut switch_points = Vec::new();
            // Every faster preset down to ultrafast, then back up.
            while let Some(next) = s.faster() {
                assert!(
                    enc.switch_settings(&next, &mut sink).unwrap(),
                    "{base} -> {}",
                    next.speed.name()
                );
                assert_eq!(enc.speed_name, next.speed.name());
                switch_points.push(i);
                s = next;
                feed(&mut enc, &mut i, &mut sink);
            }
            assert_eq!(s.speed, crate::settings::Speed::Ultrafast);
            while let Some(next) = s.slower() {
                assert!(enc.switch_settings(&next, &mut sink).unwrap());
                switch_points.push(i);
                s = next;
                feed(&mut enc, &mut i, &mut sink);
            }
            assert_eq!(s.speed.name(), base);
            assert!(s.headers_of.is_none());
            enc.finish(&mut sink).unwrap();
            // Nothing lost, one set of stream parameters, decode order intact,
            // and a keyframe wherever a new encoder took over.
            assert_eq!(packets.len() as i64, i, "{base}");
            assert!(packets.iter().all(|p| p.params == packets[0].params));
            for pair in packets.windows(2) {
                assert!(
                    pair[1].dts > pair[0].dts,
                    "{base}: dts {} then {}",
                    pair[0].dts,
                    pair[1].dts
                );
            }
            let mut pts: Vec<i64> = packets.iter().map(|p| p.pts).collect();
            pts.sort();
            assert_eq!(pts, (0..i).collect::<Vec<_>>());
            for at in switch_points {
                let p = packets.iter().find(|p| p.pts == at).unwrap();
                assert!(
                    p.keyframe,
                    "{base}: frame {at} after a switch is a keyframe"
                );
            }
        }
    }

    #[test]
    fn lent_frames_encode_like_copied_ones() {
        ff::init().unwrap();
        let s = settings(
            json!({ "codec": "h264", "speed": "veryfast", "hwaccel": "none", "threads": 1 }),
        );
        let format = node_api::PixelFormat::Yuv420p;
        let tb = TimeBase::new(1, 30);
        let bitstream = |lend: bool, black: bool| {
            let mut enc = VideoEncoder::open(&s, &packed_frame(format, 160, 96, 0, tb, 0)).unwrap();
            assert!(enc.takes_lent_frames, "libx264 takes lent frames");
            enc.takes_lent_frames = lend;
            let mut bytes = Vec::new();
            let mut sink = |_: EncodedPacket, data: &[u8]| {
                bytes.extend_from_slice(data);
                Ok(())
            };
            for i in 0..30 {
                let header = packed_frame(format, 160, 96, i, tb, i as u64);
                let mut data: Vec<u8> = (0..header.layout.size)
                    .map(|k| {
                        if black {
                            0
                        } else {
                            ((k as i64 * 3 + i * 5) % 251) as u8
                        }
                    })
                    .collect();
                enc.encode(&header, &data, &mut sink).unwrap();
                // The sender reuses its buffer once the frame is handed over.
                data.fill(0);
            }
            enc.finish(&mut sink).unwrap();
            bytes
        };
        let lent = bitstream(true, false);
        let copied = bitstream(false, false);
        // Had the encoder read a lent picture after the call, it would have
        // read the zeros the sender wrote since: a black frame, which costs
        // a small fraction of these. Not compared byte for byte: two libx264
        // encoders with the same settings in one test process were seen to
        // differ slightly (a few bytes in 28 k), copied or lent alike.
        let black = bitstream(false, true);
        assert!(
            black.len() * 4 < copied.len(),
            "{} vs {}",
            black.len(),
            copied.len()
        );
        let ratio = lent.len() as f64 / copied.len() as f64;
        assert!(
            (0.97..1.03).contains(&ratio),
            "lent {} bytes, copied {}",
            lent.len(),
            copied.len()
        );
    }

    #[test]
    fn converts_other_formats_before_encoding() {
        let (_, packets) = encode(
            json!({ "codec": "h264", "speed": "ultrafast", "hwaccel": "none" }),
            5,
            node_api::PixelFormat::Bgra,
        );
        assert_eq!(packets.len(), 5);
    }

    #[test]
    fn every_codec_encodes() {
        for (codec, name) in [("h265", "hevc"), ("vp9", "vp9"), ("av1", "av1")] {
            let (enc, packets) = encode(
                json!({ "codec": codec, "speed": "ultrafast", "keyframe_interval": 1, "hwaccel": "auto" }),
                95,
                node_api::PixelFormat::Yuv420p,
            );
            assert!(!packets.is_empty(), "{codec}");
            assert_eq!(packets[0].codec, name);
            assert!(packets[0].keyframe, "{codec}: first packet is a keyframe");
            let mut keys: Vec<i64> = packets
                .iter()
                .filter(|p| p.keyframe)
                .map(|p| p.pts)
                .collect();
            keys.sort();
            assert_eq!(
                keys,
                vec![0, 30, 60, 90],
                "{codec} ({}): a keyframe every second",
                enc.name
            );
            if codec != "vp9" {
                assert!(
                    !packets[0].params.extradata.is_empty(),
                    "{codec}: global header"
                );
            }
        }
    }

    #[test]
    fn mjpeg_is_intra_only() {
        let (enc, packets) = encode(
            json!({ "codec": "mjpeg", "quality": "high" }),
            10,
            node_api::PixelFormat::Yuv420p,
        );
        assert_eq!(enc.name, "mjpeg");
        assert_eq!(packets.len(), 10, "one packet per frame, none held");
        assert!(packets.iter().all(|p| p.keyframe && p.codec == "mjpeg"));
        assert_eq!(packets[0].params.pixel_format, "yuv420p");
    }
}
