//! Encoded packets between node-api messages and ffmpeg-next: codec names,
//! stream parameters built from [`CodecParams`] (and read back), and packets
//! both ways.

use std::ffi::{c_int, CStr, CString};

use anyhow::{anyhow, bail, Result};
use ffmpeg_next::codec::{self, Id};
use ffmpeg_next::format::context::Output;
use ffmpeg_next::{ffi, media, Codec, Packet, Rational};
use node_api::{CodecParams, EncodedPacket, MediaKind, TimeBase};

/// The codecs carried between nodes: (FFmpeg codec name, id, media).
const CODECS: &[(&str, Id, MediaKind)] = &[
    ("h264", Id::H264, MediaKind::Video),
    ("hevc", Id::HEVC, MediaKind::Video),
    ("vp9", Id::VP9, MediaKind::Video),
    ("av1", Id::AV1, MediaKind::Video),
    // Lossless intra-only video (MKV only), as the ffv1-encoder example writes it.
    ("ffv1", Id::FFV1, MediaKind::Video),
    // Intra-only, the mezzanine of compressed links between machines.
    ("mjpeg", Id::MJPEG, MediaKind::Video),
    ("aac", Id::AAC, MediaKind::Audio),
    ("opus", Id::OPUS, MediaKind::Audio),
    ("mp3", Id::MP3, MediaKind::Audio),
];

/// FFmpeg's "no timestamp" value (AV_NOPTS_VALUE).
pub const NO_PTS: i64 = i64::MIN;

/// The codec id of an [`EncodedPacket::codec`] name (`h265` is accepted for `hevc`).
pub fn codec_id(name: &str) -> Option<Id> {
    let name = if name == "h265" { "hevc" } else { name };
    CODECS.iter().find(|c| c.0 == name).map(|c| c.1)
}

/// The [`EncodedPacket::codec`] name of a codec id.
pub fn codec_name(id: Id) -> Option<&'static str> {
    CODECS.iter().find(|c| c.1 == id).map(|c| c.0)
}

/// Whether a codec carries video or audio.
pub fn codec_media(name: &str) -> Option<MediaKind> {
    let id = codec_id(name)?;
    CODECS.iter().find(|c| c.1 == id).map(|c| c.2)
}

/// The name the node catalog uses for a codec (its container matrix says
/// `h265` where FFmpeg says `hevc`).
pub fn catalog_codec_name(name: &str) -> &str {
    if name == "hevc" {
        "h265"
    } else {
        name
    }
}

pub fn to_rational(tb: TimeBase) -> Rational {
    Rational::new(tb.num, tb.den)
}

pub fn from_rational(r: Rational) -> TimeBase {
    TimeBase::new(r.numerator(), r.denominator())
}

/// `MKTAG(a, b, c, d)`.
pub const fn fourcc(tag: &[u8; 4]) -> u32 {
    tag[0] as u32 | (tag[1] as u32) << 8 | (tag[2] as u32) << 16 | (tag[3] as u32) << 24
}

/// Fills FFmpeg codec parameters from a packet's codec name and params (what
/// a muxer needs to write the stream header).
pub fn fill_parameters(
    par: &mut codec::Parameters,
    media: MediaKind,
    codec: &str,
    params: &CodecParams,
) -> Result<()> {
    let id = codec_id(codec).ok_or_else(|| {
        anyhow!("unknown codec `{codec}` (h264, hevc, vp9, av1, ffv1, mjpeg, aac, opus, mp3)")
    })?;
    if codec_media(codec) != Some(media) {
        bail!("codec `{codec}` is not a {media:?} codec");
    }
    // SAFETY: `par` owns a valid AVCodecParameters; extradata is (re)allocated
    // with av_mallocz as FFmpeg requires, padding included and zeroed.
    unsafe {
        let p = &mut *par.as_mut_ptr();
        p.codec_id = id.into();
        p.codec_tag = 0;
        p.bit_rate = params.bit_rate.min(i64::MAX as u64) as i64;
        match media {
            MediaKind::Video => {
                p.codec_type = media::Type::Video.into();
                p.width = params.width as c_int;
                p.height = params.height as c_int;
                p.format = pixel_format_id(&params.pixel_format)?;
            }
            MediaKind::Audio => {
                p.codec_type = media::Type::Audio.into();
                p.sample_rate = params.sample_rate as c_int;
                p.frame_size = params.frame_size as c_int;
                p.initial_padding = params.initial_padding as c_int;
                set_channel_layout(&mut p.ch_layout, params.channels, params.channel_layout)?;
            }
        }
        ffi::av_freep(&mut p.extradata as *mut *mut u8 as *mut std::ffi::c_void);
        p.extradata_size = 0;
        if !params.extradata.is_empty() {
            let len = params.extradata.len();
            let buf = ffi::av_mallocz(len + ffi::AV_INPUT_BUFFER_PADDING_SIZE as usize) as *mut u8;
            if buf.is_null() {
                bail!("out of memory for {len} bytes of extradata");
            }
            std::ptr::copy_nonoverlapping(params.extradata.as_ptr(), buf, len);
            p.extradata = buf;
            p.extradata_size = len as c_int;
        }
    }
    Ok(())
}

/// The AVPixelFormat value of an FFmpeg pixel format name ("" leaves it unset).
fn pixel_format_id(name: &str) -> Result<c_int> {
    if name.is_empty() {
        return Ok(ffi::AVPixelFormat::AV_PIX_FMT_NONE as c_int);
    }
    let c = CString::new(name).map_err(|_| anyhow!("bad pixel format name `{name}`"))?;
    // SAFETY: a valid NUL-terminated string.
    let fmt = unsafe { ffi::av_get_pix_fmt(c.as_ptr()) };
    if fmt == ffi::AVPixelFormat::AV_PIX_FMT_NONE {
        bail!("unknown pixel format `{name}`");
    }
    Ok(fmt as c_int)
}

/// Sets a channel layout from a mask, or the default layout for `channels`
/// when the mask is 0 or disagrees with the count.
///
/// # Safety
/// `layout` must be a valid (possibly default-initialized) AVChannelLayout.
unsafe fn set_channel_layout(
    layout: &mut ffi::AVChannelLayout,
    channels: u16,
    mask: u64,
) -> Result<()> {
    if channels == 0 {
        bail!("audio stream with 0 channels");
    }
    ffi::av_channel_layout_uninit(layout);
    if mask != 0
        && mask.count_ones() == channels as u32
        && ffi::av_channel_layout_from_mask(layout, mask) == 0
    {
        return Ok(());
    }
    ffi::av_channel_layout_default(layout, channels as c_int);
    Ok(())
}

/// Reads [`CodecParams`] back from FFmpeg codec parameters (a demuxed stream,
/// or an encoder's via `codec::Parameters::from(&encoder)`). `frame_rate` is
/// not part of AVCodecParameters: pass the stream's or the encoder's.
pub fn codec_params_from(par: &codec::Parameters, frame_rate: Rational) -> CodecParams {
    // SAFETY: `par` wraps a valid AVCodecParameters; extradata holds extradata_size bytes.
    unsafe {
        let p = &*par.as_ptr();
        let extradata = if p.extradata.is_null() || p.extradata_size <= 0 {
            Vec::new()
        } else {
            std::slice::from_raw_parts(p.extradata, p.extradata_size as usize).to_vec()
        };
        let (pixel_format, channels, channel_layout) = if p.codec_type == media::Type::Video.into()
        {
            // Only values inside the enum may become an AVPixelFormat.
            let name = if (0..ffi::AVPixelFormat::AV_PIX_FMT_NB as c_int).contains(&p.format) {
                let fmt: ffi::AVPixelFormat = std::mem::transmute(p.format);
                let name = ffi::av_get_pix_fmt_name(fmt);
                if name.is_null() {
                    String::new()
                } else {
                    CStr::from_ptr(name).to_string_lossy().into_owned()
                }
            } else {
                String::new()
            };
            (name, 0, 0)
        } else {
            let l = &p.ch_layout;
            let mask = if l.order == ffi::AVChannelOrder::AV_CHANNEL_ORDER_NATIVE {
                l.u.mask
            } else {
                0
            };
            (String::new(), l.nb_channels.max(0) as u16, mask)
        };
        CodecParams {
            width: p.width.max(0) as u32,
            height: p.height.max(0) as u32,
            pixel_format,
            frame_rate: (frame_rate.numerator(), frame_rate.denominator()),
            sample_rate: p.sample_rate.max(0) as u32,
            channels,
            channel_layout,
            frame_size: p.frame_size.max(0) as u32,
            initial_padding: p.initial_padding.max(0) as u32,
            bit_rate: p.bit_rate.max(0) as u64,
            extradata,
        }
    }
}

/// Adds an output stream for the track whose first packet is `first`, with
/// its codec parameters and its time base and frame rate as hints (the muxer
/// may change the time base in `write_header`). `mp4` tags HEVC `hvc1`, the
/// tag browsers and QuickTime accept. Returns the stream index.
pub fn add_stream(out: &mut Output, container: &str, first: &EncodedPacket) -> Result<usize> {
    let mut par = codec::Parameters::new();
    fill_parameters(&mut par, first.media, &first.codec, &first.params)?;
    let mut stream = out
        .add_stream(None::<Codec>)
        .map_err(|e| anyhow!("cannot add a stream: {e}"))?;
    stream.set_parameters(par);
    if first.time_base.num > 0 && first.time_base.den > 0 {
        stream.set_time_base(to_rational(first.time_base));
    }
    let (num, den) = first.params.frame_rate;
    if first.media == MediaKind::Video && num > 0 && den > 0 {
        stream.set_avg_frame_rate(Rational::new(num, den));
        stream.set_rate(Rational::new(num, den));
    }
    if container == "mp4" && codec_id(&first.codec) == Some(Id::HEVC) {
        // SAFETY: the stream and its codecpar were just created by avformat_new_stream.
        unsafe { (*(*stream.as_mut_ptr()).codecpar).codec_tag = fourcc(b"hvc1") };
    }
    Ok(stream.index())
}

/// An FFmpeg packet holding a copy of `data` (the muxer keeps packets queued
/// for interleaving, so it needs its own reference-counted buffer), with the
/// header's timestamps in its own time base.
pub fn to_ffmpeg(header: &EncodedPacket, data: &[u8]) -> Packet {
    let mut pkt = Packet::copy(data);
    pkt.set_pts((header.pts != NO_PTS).then_some(header.pts));
    pkt.set_dts((header.dts != NO_PTS).then_some(header.dts));
    pkt.set_duration(header.duration);
    if header.keyframe {
        pkt.set_flags(codec::packet::Flags::KEY);
    }
    pkt.set_time_base(to_rational(header.time_base));
    pkt
}

/// The [`EncodedPacket`] header of an FFmpeg packet (encoders, demuxers);
/// a missing dts is taken as the pts.
pub fn from_ffmpeg(
    pkt: &Packet,
    media: MediaKind,
    codec: &str,
    params: CodecParams,
    time_base: TimeBase,
    capture_ns: u64,
) -> EncodedPacket {
    let pts = pkt.pts().or(pkt.dts()).unwrap_or(NO_PTS);
    EncodedPacket {
        media,
        codec: codec.to_string(),
        params,
        pts,
        dts: pkt.dts().unwrap_or(pts),
        duration: pkt.duration(),
        time_base,
        keyframe: pkt.is_key(),
        capture_ns,
    }
}

/// A packet's presentation start in seconds of stream time.
pub fn start_seconds(p: &EncodedPacket) -> f64 {
    p.time_base
        .seconds(if p.pts == NO_PTS { p.dts } else { p.pts })
}

/// A packet's presentation end in seconds of stream time.
pub fn end_seconds(p: &EncodedPacket) -> f64 {
    p.time_base
        .seconds(if p.pts == NO_PTS { p.dts } else { p.pts } + p.duration)
}

/// A packet's decoding time in seconds (its pts when it has no dts).
pub fn decode_seconds(p: &EncodedPacket) -> f64 {
    p.time_base
        .seconds(if p.dts == NO_PTS { p.pts } else { p.dts })
}

/// Whether a packet can start a track: any audio packet, a video keyframe.
pub fn starts_gop(p: &EncodedPacket) -> bool {
    p.keyframe || p.media == MediaKind::Audio
}

/// Whether a packet continues the same stream: the same codec and codec
/// parameters (a restarted encoder may bring new ones).
pub fn same_stream(a: &EncodedPacket, b: &EncodedPacket) -> bool {
    let (p, q) = (&a.params, &b.params);
    a.codec == b.codec
        && a.media == b.media
        && p.extradata == q.extradata
        && p.width == q.width
        && p.height == q.height
        && p.sample_rate == q.sample_rate
        && p.channels == q.channels
}

#[cfg(test)]
mod tests {
    use super::*;

    fn audio_params() -> CodecParams {
        CodecParams {
            sample_rate: 48_000,
            channels: 2,
            channel_layout: 3,
            frame_size: 1024,
            initial_padding: 1024,
            bit_rate: 128_000,
            extradata: vec![0x11, 0x90],
            ..CodecParams::default()
        }
    }

    #[test]
    fn codec_names() {
        assert_eq!(codec_id("hevc"), Some(Id::HEVC));
        assert_eq!(codec_id("h265"), Some(Id::HEVC));
        assert_eq!(codec_id("vorbis"), None);
        assert_eq!(codec_name(Id::OPUS), Some("opus"));
        assert_eq!(codec_media("av1"), Some(MediaKind::Video));
        assert_eq!(codec_media("mp3"), Some(MediaKind::Audio));
        assert_eq!(catalog_codec_name("hevc"), "h265");
        assert_eq!(fourcc(b"hvc1"), 0x3163_7668);
    }

    #[test]
    fn parameters_round_trip_audio() {
        let params = audio_params();
        let mut par = codec::Parameters::new();
        fill_parameters(&mut par, MediaKind::Audio, "aac", &params).unwrap();
        assert_eq!(par.id(), Id::AAC);
        assert_eq!(par.medium(), media::Type::Audio);
        assert_eq!(
            codec_params_from(&par, Rational::new(0, 1)),
            CodecParams {
                frame_rate: (0, 1),
                ..params
            }
        );
    }

    #[test]
    fn parameters_round_trip_video() {
        let params = CodecParams {
            width: 1920,
            height: 1080,
            pixel_format: "yuv420p".into(),
            frame_rate: (30, 1),
            bit_rate: 4_000_000,
            extradata: vec![1, 0x64, 0, 0x28],
            ..CodecParams::default()
        };
        let mut par = codec::Parameters::new();
        fill_parameters(&mut par, MediaKind::Video, "h264", &params).unwrap();
        assert_eq!(codec_params_from(&par, Rational::new(30, 1)), params);
        // Refilling replaces the extradata rather than leaking or appending.
        fill_parameters(
            &mut par,
            MediaKind::Video,
            "hevc",
            &CodecParams {
                extradata: vec![],
                ..params.clone()
            },
        )
        .unwrap();
        assert!(codec_params_from(&par, Rational::new(30, 1))
            .extradata
            .is_empty());
    }

    #[test]
    fn channel_layout_falls_back_to_default() {
        let params = CodecParams {
            channels: 6,
            channel_layout: 3,
            ..audio_params()
        };
        let mut par = codec::Parameters::new();
        fill_parameters(&mut par, MediaKind::Audio, "opus", &params).unwrap();
        let back = codec_params_from(&par, Rational::new(0, 1));
        assert_eq!(back.channels, 6);
        assert_eq!(back.channel_layout.count_ones(), 6);
    }

    #[test]
    fn bad_params_are_refused() {
        let mut par = codec::Parameters::new();
        assert!(fill_parameters(&mut par, MediaKind::Audio, "h264", &audio_params()).is_err());
        assert!(
            fill_parameters(&mut par, MediaKind::Audio, "aac", &CodecParams::default()).is_err()
        );
        let bad_pix = CodecParams {
            pixel_format: "nope".into(),
            ..CodecParams::default()
        };
        assert!(fill_parameters(&mut par, MediaKind::Video, "vp9", &bad_pix).is_err());
    }

    #[test]
    fn packet_round_trip() {
        let header = EncodedPacket {
            media: MediaKind::Video,
            codec: "h264".into(),
            params: CodecParams::default(),
            pts: 2,
            dts: NO_PTS,
            duration: 1,
            time_base: TimeBase::new(1, 30),
            keyframe: true,
            capture_ns: 42,
        };
        let pkt = to_ffmpeg(&header, &[0, 0, 0, 1, 0x65]);
        assert_eq!(pkt.data(), Some(&[0u8, 0, 0, 1, 0x65][..]));
        assert_eq!(pkt.dts(), None);
        let back = from_ffmpeg(
            &pkt,
            MediaKind::Video,
            "h264",
            CodecParams::default(),
            header.time_base,
            42,
        );
        assert_eq!(back, EncodedPacket { dts: 2, ..header });
    }
}
