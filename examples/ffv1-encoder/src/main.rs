//! `ffv1-encoder`: an example custom codec node, not one of the built-in
//! kinds. It encodes raw video into FFV1 (lossless, every frame a keyframe)
//! with FFmpeg and sends the packets on an encoded-video output that the
//! built-in `mux` writes into MKV like any other track:
//!
//! ```yaml
//! - id: ffv1
//!   path: ../../target/release/ffv1-encoder
//!   inputs: { video: video-normalize/video }
//!   outputs: [video: encoded-video]
//!   params: { slices: 4 }
//! ```
//!
//! What makes its packets acceptable to the mux: each [`EncodedPacket`]
//! names the codec (`ffv1`), carries the stream's codec parameters (size,
//! pixel format, frame rate and the extradata the encoder wrote as a global
//! header, which Matroska stores as CodecPrivate), and its pts/dts/duration
//! in its time base. `node_media::packet` builds those from FFmpeg's.
//!
//! Params: `slices` (1, 4 (default), 6, 9, 12, 16, 24 or 30: FFV1 level 3
//! slices, which let decoders use threads). Metrics: `frames`, `bytes`.
//!
//! Its ports and params are declared once, in [`SCHEMA`]: `ffv1-encoder
//! --describe` prints them, and `runtime check` then checks this node's
//! params and edges like a built-in's (`slices: 5` is an error at its line
//! and column, before anything runs). The node reads them into
//! [`Settings`], with the same `DEFAULT_*` constant the schema declares.

use anyhow::{anyhow, bail, Context, Result};
use ff::ffi;
use ffmpeg_next as ff;
use node_api::{
    CodecParams, EncodedPacket, Event, Header, MediaKind, Node, NodeSchema, ParamSpec, Params,
    PortSpec, PortType, Reader, TimeBase, VideoFrame,
};
use node_media::codec::{received, Received};
use node_media::packet::{codec_params_from, from_ffmpeg};
use node_media::video::{to_pixel, Planes, PlanesMut};

/// The slice counts FFV1 level 3 takes (the `slices` param's choices, as
/// written in a graph).
const SLICES: &[&str] = &["1", "4", "6", "9", "12", "16", "24", "30"];
const DEFAULT_SLICES: &str = "4";

/// The params: each with its type, choices and default.
const PARAMS: &[ParamSpec] = &[ParamSpec::choice(
    "slices",
    SLICES,
    Some(DEFAULT_SLICES),
    "FFV1 level 3 slices per frame: more let decoders use more threads",
)];

/// What this node takes, sends and accepts as params.
static SCHEMA: NodeSchema = NodeSchema::new(
    "ffv1-encoder",
    "Encodes raw video to FFV1 (lossless, every frame a keyframe) for the built-in mux (MKV)",
)
.with_inputs(&[PortSpec::new("video", PortType::RawVideo, "raw video")])
.with_outputs(&[PortSpec::new(
    "video",
    PortType::EncodedVideo,
    "FFV1 packets",
)])
.with_params(PARAMS);

/// The params, typed.
#[derive(Debug, Clone, Copy)]
struct Settings {
    slices: u32,
}

impl Settings {
    /// From params already checked against [`SCHEMA`] (the [`Reader`] checks
    /// them again and takes the default for an absent one).
    fn from_params(p: &Params) -> Result<Settings> {
        let slices = Reader::new(PARAMS, p).text("slices", DEFAULT_SLICES)?;
        Ok(Settings {
            slices: slices.parse()?,
        })
    }
}

fn main() {
    node_api::run_main(run);
}

/// An open FFV1 encoder and the frame and packet it reuses.
struct Ffv1 {
    encoder: ff::encoder::video::Encoder,
    picture: ff::frame::Video,
    packet: ff::Packet,
    params: CodecParams,
    time_base: TimeBase,
    size: (u32, u32),
    frames: u64,
    bytes: u64,
}

impl Ffv1 {
    /// Opens the encoder for a stream whose first frame is `first`: its size,
    /// pixel format and time base (one tick per frame after sync/normalize).
    fn open(first: &VideoFrame, slices: u32) -> Result<Ffv1> {
        let pixel = to_pixel(first.format)
            .ok_or_else(|| anyhow!("{} frames cannot be encoded", first.format.name()))?;
        let codec = ff::encoder::find(ff::codec::Id::FFV1)
            .ok_or_else(|| anyhow!("FFmpeg has no FFV1 encoder"))?;
        let mut enc = ff::codec::Context::new_with_codec(codec)
            .encoder()
            .video()
            .context("allocating the FFV1 encoder")?;
        let tb = ff::Rational::new(first.time_base.num, first.time_base.den);
        enc.set_width(first.width);
        enc.set_height(first.height);
        enc.set_format(pixel);
        enc.set_time_base(tb);
        let tick = first.duration.max(1) as i32;
        enc.set_frame_rate(Some(ff::Rational::new(
            first.time_base.den,
            first.time_base.num * tick,
        )));
        // The stream header goes in extradata (the mux's CodecPrivate), not in
        // the first packet.
        // SAFETY: a field of the unopened context we own.
        unsafe { (*enc.as_mut_ptr()).flags |= ffi::AV_CODEC_FLAG_GLOBAL_HEADER as i32 };
        let mut options = ff::Dictionary::new();
        options.set("level", "3");
        options.set("slices", &slices.to_string());
        options.set("slicecrc", "1");
        let encoder = enc.open_as_with(codec, options).with_context(|| {
            format!(
                "opening FFV1 for {}x{} {:?}",
                first.width, first.height, pixel
            )
        })?;
        let frame_rate = ff::Rational::new(first.time_base.den, first.time_base.num * tick);
        let mut params = codec_params_from(&ff::codec::Parameters::from(&*encoder), frame_rate);
        params.frame_rate = (frame_rate.numerator(), frame_rate.denominator());
        tracing::info!(
            "ffv1: {}x{} {}, {slices} slices, {} bytes of extradata",
            first.width,
            first.height,
            first.format.name(),
            params.extradata.len()
        );
        Ok(Ffv1 {
            encoder,
            picture: ff::frame::Video::new(pixel, first.width, first.height),
            packet: ff::Packet::empty(),
            params,
            time_base: first.time_base,
            size: (first.width, first.height),
            frames: 0,
            bytes: 0,
        })
    }

    /// Encodes one frame and sends what comes out.
    fn encode(&mut self, node: &mut Node, frame: &VideoFrame, data: &[u8]) -> Result<()> {
        if (frame.width, frame.height) != self.size || frame.time_base != self.time_base {
            bail!(
                "the stream changed from {}x{} to {}x{} (or its time base): put a video-normalize before this node",
                self.size.0,
                self.size.1,
                frame.width,
                frame.height
            );
        }
        // The encoder let go of the previous picture after encoding it (FFV1
        // holds no frames); made writable again only if it still holds it.
        // SAFETY: a valid frame with buffers that we own.
        if unsafe { ffi::av_frame_make_writable(self.picture.as_mut_ptr()) } < 0 {
            bail!("cannot make the encoder's picture writable");
        }
        let src = Planes::from_payload(frame, data)?;
        PlanesMut::from_frame(&mut self.picture).copy_from(&src)?;
        self.picture.set_pts(Some(frame.pts));
        self.encoder
            .send_frame(&self.picture)
            .map_err(|e| anyhow!("FFV1 rejected frame pts {}: {e}", frame.pts))?;
        self.receive(node, frame.capture_ns)
    }

    fn finish(&mut self, node: &mut Node) -> Result<()> {
        self.encoder
            .send_eof()
            .map_err(|e| anyhow!("flushing FFV1: {e}"))?;
        self.receive(node, 0)
    }

    fn receive(&mut self, node: &mut Node, capture_ns: u64) -> Result<()> {
        loop {
            match received(self.encoder.receive_packet(&mut self.packet)) {
                Ok(Received::Ready) => {}
                Ok(Received::Again | Received::End) => return Ok(()),
                Err(e) => bail!("FFV1 encoding failed: {e}"),
            }
            let mut header: EncodedPacket = from_ffmpeg(
                &self.packet,
                MediaKind::Video,
                "ffv1",
                self.params.clone(),
                self.time_base,
                capture_ns,
            );
            header.duration = header.duration.max(1);
            let data = self.packet.data().unwrap_or(&[]);
            self.frames += 1;
            self.bytes += data.len() as u64;
            node.send_packet("video", header, data)?;
            let m = node.metrics();
            m.set("frames", self.frames as f64);
            m.set("bytes", self.bytes as f64);
        }
    }
}

fn run() -> Result<()> {
    node_media::init()?;
    // `ffv1-encoder --describe` prints SCHEMA and exits here; otherwise the
    // params are checked against it, defaults filled in.
    let mut node = Node::init_with_schema(&SCHEMA)?;
    let settings = Settings::from_params(node.params()).context("ffv1-encoder")?;
    let mut encoder: Option<Ffv1> = None;
    while let Some(event) = node.next_event()? {
        match event {
            Event::Input { input, message } => match &message.header {
                Header::Video(frame) => {
                    let enc = match &mut encoder {
                        Some(enc) => enc,
                        None => encoder.insert(Ffv1::open(frame, settings.slices)?),
                    };
                    enc.encode(&mut node, frame, &message.payload.as_slice())?;
                }
                Header::EndOfStream | Header::Stats(_) => {}
                Header::Audio(_) | Header::Packet(_) => {
                    bail!("input `{input}` does not carry raw video")
                }
            },
            Event::InputClosed { .. } | Event::Stop => {}
            Event::ParamUpdate { name, .. } => {
                tracing::warn!("param `{name}` cannot change while running")
            }
        }
    }
    match &mut encoder {
        Some(enc) => {
            enc.finish(&mut node)?;
            tracing::info!("ffv1: {} frames, {} bytes", enc.frames, enc.bytes);
        }
        None => tracing::warn!("ffv1: the input ended before any frame"),
    }
    node.finish()
}
