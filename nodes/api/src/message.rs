//! Message types exchanged between nodes: small headers that travel beside a
//! payload (the pixels, samples or packet bytes) held in shared memory.

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use zenoh::bytes::ZBytes;

/// A rational time base, e.g. 1/90000 or 1/48000.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeBase {
    pub num: i32,
    pub den: i32,
}

impl TimeBase {
    pub const NANOS: TimeBase = TimeBase {
        num: 1,
        den: 1_000_000_000,
    };
    pub fn new(num: i32, den: i32) -> Self {
        TimeBase { num, den }
    }
    /// A timestamp in this base, in seconds.
    pub fn seconds(self, ts: i64) -> f64 {
        ts as f64 * self.num as f64 / self.den as f64
    }
}

/// Pixel formats carried between nodes (names as in FFmpeg).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PixelFormat {
    Yuv420p,
    Nv12,
    Rgb24,
    Bgra,
    Rgba,
    Yuyv422,
    Gray8,
    /// Compressed MJPEG frames straight from a camera; video-normalize decodes them.
    Mjpeg,
}

impl From<node_catalog::kinds::common::PixelFormat> for PixelFormat {
    /// The format a graph's `pixel_format` param asks for.
    fn from(f: node_catalog::kinds::common::PixelFormat) -> PixelFormat {
        use node_catalog::kinds::common::PixelFormat as Param;
        match f {
            Param::Yuv420p => PixelFormat::Yuv420p,
            Param::Nv12 => PixelFormat::Nv12,
            Param::Rgb24 => PixelFormat::Rgb24,
            Param::Bgra => PixelFormat::Bgra,
            Param::Yuyv422 => PixelFormat::Yuyv422,
        }
    }
}

impl PixelFormat {
    /// Every format, raw ones first.
    pub const ALL: [PixelFormat; 8] = [
        PixelFormat::Yuv420p,
        PixelFormat::Nv12,
        PixelFormat::Rgb24,
        PixelFormat::Bgra,
        PixelFormat::Rgba,
        PixelFormat::Yuyv422,
        PixelFormat::Gray8,
        PixelFormat::Mjpeg,
    ];

    pub fn name(self) -> &'static str {
        match self {
            PixelFormat::Yuv420p => "yuv420p",
            PixelFormat::Nv12 => "nv12",
            PixelFormat::Rgb24 => "rgb24",
            PixelFormat::Bgra => "bgra",
            PixelFormat::Rgba => "rgba",
            PixelFormat::Yuyv422 => "yuyv422",
            PixelFormat::Gray8 => "gray",
            PixelFormat::Mjpeg => "mjpeg",
        }
    }

    pub fn from_name(name: &str) -> Option<PixelFormat> {
        Some(match name {
            "yuv420p" => PixelFormat::Yuv420p,
            "nv12" => PixelFormat::Nv12,
            "rgb24" => PixelFormat::Rgb24,
            "bgra" => PixelFormat::Bgra,
            "rgba" => PixelFormat::Rgba,
            "yuyv422" => PixelFormat::Yuyv422,
            "gray" | "gray8" => PixelFormat::Gray8,
            "mjpeg" => PixelFormat::Mjpeg,
            _ => return None,
        })
    }

    /// Tightly packed plane layout (stride = width × bytes per pixel), as the
    /// pool allocates it: (strides, offsets, total size). MJPEG has no layout.
    pub fn packed_layout(self, width: u32, height: u32) -> PlaneLayout {
        let (w, h) = (width as usize, height as usize);
        let mut l = PlaneLayout::default();
        match self {
            PixelFormat::Yuv420p => {
                let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
                l.planes = 3;
                l.strides = [w as u32, cw as u32, cw as u32, 0];
                l.offsets = [0, (w * h) as u32, (w * h + cw * ch) as u32, 0];
                l.size = w * h + 2 * cw * ch;
            }
            PixelFormat::Nv12 => {
                let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
                l.planes = 2;
                l.strides = [w as u32, (cw * 2) as u32, 0, 0];
                l.offsets = [0, (w * h) as u32, 0, 0];
                l.size = w * h + cw * 2 * ch;
            }
            PixelFormat::Rgb24 => l.packed(w * 3, h),
            PixelFormat::Bgra | PixelFormat::Rgba => l.packed(w * 4, h),
            PixelFormat::Yuyv422 => l.packed(w.div_ceil(2) * 4, h),
            PixelFormat::Gray8 => l.packed(w, h),
            PixelFormat::Mjpeg => {}
        }
        l
    }
}

/// Where each plane of a raw video frame lies in its payload.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlaneLayout {
    pub planes: u8,
    pub strides: [u32; 4],
    pub offsets: [u32; 4],
    /// Total payload bytes.
    pub size: usize,
}

impl PlaneLayout {
    fn packed(&mut self, stride: usize, height: usize) {
        self.planes = 1;
        self.strides = [stride as u32, 0, 0, 0];
        self.offsets = [0; 4];
        self.size = stride * height;
    }
}

/// Header of a raw video frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VideoFrame {
    pub format: PixelFormat,
    pub width: u32,
    pub height: u32,
    pub layout: PlaneLayout,
    pub pts: i64,
    pub time_base: TimeBase,
    pub duration: i64,
    /// When the frame was captured, in nanoseconds of the capture clock
    /// (see [`crate::clock`]).
    pub capture_ns: u64,
}

/// Sample formats carried between nodes (names as in FFmpeg; `p` = planar).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SampleFormat {
    U8,
    S16,
    S32,
    F32,
    F64,
    S16p,
    S32p,
    F32p,
    F64p,
}

impl SampleFormat {
    pub fn bytes_per_sample(self) -> usize {
        match self {
            SampleFormat::U8 => 1,
            SampleFormat::S16 | SampleFormat::S16p => 2,
            SampleFormat::S32 | SampleFormat::S32p | SampleFormat::F32 | SampleFormat::F32p => 4,
            SampleFormat::F64 | SampleFormat::F64p => 8,
        }
    }
    pub fn is_planar(self) -> bool {
        matches!(
            self,
            SampleFormat::S16p | SampleFormat::S32p | SampleFormat::F32p | SampleFormat::F64p
        )
    }
    pub fn name(self) -> &'static str {
        match self {
            SampleFormat::U8 => "u8",
            SampleFormat::S16 => "s16",
            SampleFormat::S32 => "s32",
            SampleFormat::F32 => "flt",
            SampleFormat::F64 => "dbl",
            SampleFormat::S16p => "s16p",
            SampleFormat::S32p => "s32p",
            SampleFormat::F32p => "fltp",
            SampleFormat::F64p => "dblp",
        }
    }
}

/// Header of a raw audio frame. Interleaved formats have one plane; planar
/// formats have `channels` planes of `samples` each, one after the other.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AudioFrame {
    pub format: SampleFormat,
    pub sample_rate: u32,
    pub channels: u16,
    /// FFmpeg channel layout mask (0: the default layout for `channels`).
    pub channel_layout: u64,
    pub samples: u32,
    /// In `time_base` units (usually 1/sample_rate).
    pub pts: i64,
    pub time_base: TimeBase,
    pub capture_ns: u64,
}

impl AudioFrame {
    pub fn payload_size(&self) -> usize {
        self.samples as usize * self.channels as usize * self.format.bytes_per_sample()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaKind {
    Video,
    Audio,
}

/// What a muxer needs to write a stream header for an encoded stream.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CodecParams {
    pub width: u32,
    pub height: u32,
    /// FFmpeg pixel format name of the encoded picture (e.g. yuv420p).
    pub pixel_format: String,
    pub frame_rate: (i32, i32),
    pub sample_rate: u32,
    pub channels: u16,
    pub channel_layout: u64,
    /// Samples per audio frame (AAC 1024, Opus 960, MP3 1152).
    pub frame_size: u32,
    /// Encoder delay in samples (AAC priming, Opus pre-skip): the muxer writes it
    /// so players trim it and A/V stays aligned.
    pub initial_padding: u32,
    pub bit_rate: u64,
    /// Codec private data (avcC / hvcC / AudioSpecificConfig / OpusHead).
    pub extradata: Vec<u8>,
}

/// Header of an encoded packet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EncodedPacket {
    pub media: MediaKind,
    /// FFmpeg codec name: h264, hevc, vp9, av1, aac, opus, mp3.
    pub codec: String,
    pub params: CodecParams,
    pub pts: i64,
    pub dts: i64,
    pub duration: i64,
    pub time_base: TimeBase,
    pub keyframe: bool,
    /// Capture time of the media this packet carries (for latency stats).
    pub capture_ns: u64,
}

/// The header of any message on a data key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Header {
    Video(VideoFrame),
    Audio(AudioFrame),
    Packet(EncodedPacket),
    /// Free-form JSON stats or control data.
    Stats(String),
    /// The sender will send nothing more on this output.
    EndOfStream,
}

impl Header {
    /// Where this message sits on a timeline that survives the restart of
    /// the node that sent it, in seconds: (start, duration). Raw frames: the
    /// capture clock (a restarted node may number its frames from 0 again);
    /// packets: the decode time, which increases packet after packet even
    /// across B-frames. `None` for messages that carry no media.
    pub fn media_span(&self) -> Option<(f64, f64)> {
        const NS: f64 = 1e-9;
        match self {
            Header::Video(v) => Some((v.capture_ns as f64 * NS, v.time_base.seconds(v.duration))),
            Header::Audio(a) if a.sample_rate > 0 => Some((
                a.capture_ns as f64 * NS,
                a.samples as f64 / a.sample_rate as f64,
            )),
            Header::Packet(p) => {
                Some((p.time_base.seconds(p.dts), p.time_base.seconds(p.duration)))
            }
            _ => None,
        }
    }
}

/// What travels beside every payload: the header and a per-output sequence
/// number that lets the receiver count messages lost on the way.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Envelope {
    pub seq: u64,
    /// Set by a source that runs faster than real time (a file replay): every
    /// queue on the way blocks instead of dropping, whatever its policy, and
    /// nodes pass the flag on to their outputs.
    pub no_drop: bool,
    pub header: Header,
}

impl Envelope {
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).expect("headers always serialize")
    }
    pub fn decode(bytes: &[u8]) -> anyhow::Result<Envelope> {
        postcard::from_bytes(bytes).map_err(|e| anyhow::anyhow!("malformed message header: {e}"))
    }
}

/// The header bytes of an end-of-stream message, for the runtime to close the
/// outputs of a node that died without closing them itself.
pub fn end_of_stream_attachment() -> Vec<u8> {
    Envelope {
        seq: 0,
        no_drop: false,
        header: Header::EndOfStream,
    }
    .encode()
}

/// The header of a message as it travels in its attachment, for a reader
/// outside a node (the runtime's snapshots); `None` for anything else.
pub fn header_of_attachment(attachment: &[u8]) -> Option<Header> {
    Envelope::decode(attachment).ok().map(|e| e.header)
}

/// The bytes of a received message. Over shared memory this is a view of the
/// sender's buffer: no copy is made until [`Payload::as_slice`] has to join
/// fragments (which only happens for data that came over a network link);
/// each such copy is counted in its input's `copied_payloads`.
#[derive(Clone, Debug)]
pub struct Payload {
    bytes: ZBytes,
    /// The copies made of the payloads of its input.
    copies: Arc<AtomicU64>,
}

impl Payload {
    pub(crate) fn new(bytes: ZBytes, copies: Arc<AtomicU64>) -> Self {
        Payload { bytes, copies }
    }

    /// Whether the bytes live in shared memory mapped from the sender.
    pub fn is_shm(&self) -> bool {
        self.bytes.as_shm().is_some()
    }

    /// Whether the bytes are shared memory whose zenoh watchdog expired
    /// while this process held them (see [`crate::Node::forward`]): readable
    /// here, but a receiver would drop them.
    pub fn is_stale(&self) -> bool {
        use zenoh::shm::ShmBuf;
        self.bytes.as_shm().is_some_and(|shm| !shm.is_valid())
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The payload as one slice: borrowed (zero-copy) when contiguous, which
    /// shared memory always is; else a copy, counted in the input's
    /// `copied_payloads`.
    pub fn as_slice(&self) -> Cow<'_, [u8]> {
        if let Some(shm) = self.bytes.as_shm() {
            return Cow::Borrowed(&shm[..]);
        }
        let bytes = self.bytes.to_bytes();
        if matches!(bytes, Cow::Owned(_)) {
            self.copies.fetch_add(1, Ordering::Relaxed);
        }
        bytes
    }

    /// The underlying zenoh bytes, to forward the same buffer without a copy.
    pub fn zbytes(&self) -> &ZBytes {
        &self.bytes
    }
}

/// A message received on an input.
#[derive(Debug, Clone)]
pub struct Message {
    pub header: Header,
    pub payload: Payload,
    pub seq: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yuv420_layout() {
        let l = PixelFormat::Yuv420p.packed_layout(1920, 1080);
        assert_eq!(l.size, 1920 * 1080 * 3 / 2);
        assert_eq!(l.offsets[1], 1920 * 1080);
        assert_eq!(l.strides[2], 960);
    }

    #[test]
    fn header_round_trip() {
        let env = Envelope {
            seq: 7,
            no_drop: false,
            header: Header::Audio(AudioFrame {
                format: SampleFormat::F32,
                sample_rate: 48_000,
                channels: 2,
                channel_layout: 3,
                samples: 1024,
                pts: 2048,
                time_base: TimeBase::new(1, 48_000),
                capture_ns: 5,
            }),
        };
        let back = Envelope::decode(&env.encode()).unwrap();
        assert_eq!(back.seq, 7);
        assert_eq!(back.header, env.header);
        assert_eq!(header_of_attachment(&env.encode()), Some(env.header));
        assert_eq!(header_of_attachment(b""), None);
    }
}
