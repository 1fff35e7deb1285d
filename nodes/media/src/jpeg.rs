//! A raw video frame made into a small JPEG: scaled with swscale, encoded
//! with FFmpeg's MJPEG encoder, for the control API's snapshots. The runtime
//! links no codec library: it asks `mediagraph-nodes --jpeg-server` (see
//! [`serve`] and `node_api::snapshot`), a helper process kept for the run.

use std::io::{BufRead, Write};
use std::sync::OnceLock;

use anyhow::{anyhow, bail, Context, Result};
use ff::format::Pixel;
use ffmpeg_next as ff;
use node_api::snapshot::{JpegReply, JpegRequest};
use node_api::{PixelFormat, VideoFrame};

use crate::video::{Planes, PlanesMut, Scaler};

/// MJPEG quantizer bounds (2 best .. 31 worst): a sharp preview whatever
/// bit rate the encoder's rate control would aim at for a lone frame.
const QMIN: i32 = 2;
const QMAX: i32 = 6;

/// The size of a snapshot `width` wide of a `src_w`×`src_h` picture: the
/// same aspect, both dimensions even (4:2:0 chroma), at least 2×2.
pub fn scaled_size(src_w: u32, src_h: u32, width: u32) -> (u32, u32) {
    let even = |v: u64| (v.max(2) & !1) as u32;
    let w = even(width as u64);
    let h = (w as u64 * src_h as u64 + src_w as u64 / 2) / (src_w.max(1) as u64);
    (w, even(h))
}

fn init() -> Result<()> {
    static INIT: OnceLock<Result<(), String>> = OnceLock::new();
    INIT.get_or_init(|| crate::init().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(|e| anyhow!(e))
}

/// The JPEG of `frame` (its pixels in `data`), `width` wide.
pub fn encode(frame: &VideoFrame, data: &[u8], width: u32) -> Result<Vec<u8>> {
    init()?;
    if frame.format == PixelFormat::Mjpeg {
        bail!("its frames are MJPEG-compressed, not raw pixels");
    }
    let src = Planes::from_payload(frame, data).context("the frame's planes")?;
    let (w, h) = scaled_size(frame.width, frame.height, width);
    // Full-range 4:2:0, what JPEG holds; swscale converts the range too.
    let mut picture = ff::frame::Video::new(Pixel::YUVJ420P, w, h);
    Scaler::bilinear()
        .scale(&src, &mut PlanesMut::from_frame(&mut picture))
        .with_context(|| format!("scaling {}x{} to {w}x{h}", frame.width, frame.height))?;
    picture.set_pts(Some(0));
    compress(&picture).with_context(|| format!("encoding a {w}x{h} JPEG"))
}

fn compress(picture: &ff::frame::Video) -> Result<Vec<u8>> {
    let codec = ff::encoder::find(ff::codec::Id::MJPEG).context("FFmpeg has no MJPEG encoder")?;
    let mut enc = ff::codec::Context::new_with_codec(codec)
        .encoder()
        .video()?;
    enc.set_width(picture.width());
    enc.set_height(picture.height());
    enc.set_format(Pixel::YUVJ420P);
    enc.set_time_base((1, 25));
    enc.set_qmin(QMIN);
    enc.set_qmax(QMAX);
    let mut enc = enc.open_as(codec)?;
    enc.send_frame(picture)?;
    enc.send_eof()?;
    let mut packet = ff::Packet::empty();
    enc.receive_packet(&mut packet)?;
    Ok(packet.data().context("an empty packet")?.to_vec())
}

/// Answers [`JpegRequest`]s from `input` on `output` until `input` ends:
/// each a JSON line and its payload, each answer a JSON line of
/// [`JpegReply`] and the JPEG's bytes.
pub fn serve(mut input: impl BufRead, mut output: impl Write) -> Result<()> {
    let mut line = String::new();
    loop {
        line.clear();
        if input.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let req: JpegRequest = serde_json::from_str(&line).context("a snapshot request")?;
        let mut data = vec![0u8; req.len];
        input
            .read_exact(&mut data)
            .context("a snapshot's payload")?;
        let (reply, jpeg) = match encode(&req.frame, &data, req.width) {
            Ok(jpeg) => (JpegReply::Jpeg { len: jpeg.len() }, jpeg),
            Err(e) => (JpegReply::Error(format!("{e:#}")), Vec::new()),
        };
        serde_json::to_writer(&mut output, &reply)?;
        output.write_all(b"\n")?;
        output.write_all(&jpeg)?;
        output.flush()?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use node_api::TimeBase;

    #[test]
    fn sizes_keep_the_aspect_and_are_even() {
        assert_eq!(scaled_size(1920, 1080, 320), (320, 180));
        assert_eq!(scaled_size(160, 120, 320), (320, 240));
        assert_eq!(scaled_size(1920, 1080, 321), (320, 180));
        assert_eq!(scaled_size(1280, 720, 100), (100, 56));
        assert_eq!(scaled_size(640, 10, 16), (16, 2));
        assert_eq!(scaled_size(0, 0, 0), (2, 2));
    }

    fn frame(format: PixelFormat, width: u32, height: u32) -> VideoFrame {
        VideoFrame {
            format,
            width,
            height,
            layout: format.packed_layout(width, height),
            pts: 0,
            time_base: TimeBase::new(1, 30),
            duration: 1,
            capture_ns: 0,
        }
    }

    #[test]
    fn a_frame_becomes_a_jpeg_of_the_asked_width() {
        let f = frame(PixelFormat::Rgb24, 160, 90);
        let pixels: Vec<u8> = (0..f.layout.size).map(|i| (i % 251) as u8).collect();
        let jpeg = encode(&f, &pixels, 64).unwrap();
        assert_eq!(&jpeg[..2], &[0xff, 0xd8], "JPEG start of image");
        let mut decoder = crate::video::MjpegDecoder::new().unwrap();
        let back = decoder.decode(&jpeg).unwrap();
        assert_eq!((back.width(), back.height()), (64, 36));
    }

    #[test]
    fn the_server_answers_each_request_in_turn() {
        let f = frame(PixelFormat::Yuv420p, 64, 48);
        let mut input = Vec::new();
        for len in [f.layout.size, 10] {
            let req = JpegRequest {
                frame: f.clone(),
                width: 32,
                len,
            };
            serde_json::to_writer(&mut input, &req).unwrap();
            input.push(b'\n');
            input.extend(std::iter::repeat_n(128u8, len));
        }
        let mut output = Vec::new();
        serve(&input[..], &mut output).unwrap();
        let mut out = &output[..];
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        let JpegReply::Jpeg { len } = serde_json::from_str(&line).unwrap() else {
            panic!("{line}");
        };
        assert_eq!(&out[..2], &[0xff, 0xd8]);
        out = &out[len..];
        line.clear();
        out.read_line(&mut line).unwrap();
        let reply: JpegReply = serde_json::from_str(&line).unwrap();
        assert!(
            matches!(reply, JpegReply::Error(_)),
            "a short payload: {line}"
        );
    }

    #[test]
    fn short_payloads_and_mjpeg_are_refused() {
        let f = frame(PixelFormat::Yuv420p, 64, 48);
        let short = vec![0u8; f.layout.size - 1];
        assert!(encode(&f, &short, 32).is_err());
        let m = VideoFrame {
            format: PixelFormat::Mjpeg,
            ..f
        };
        let why = encode(&m, &[0xff, 0xd8], 32).unwrap_err();
        assert!(format!("{why:#}").contains("MJPEG"), "{why:#}");
    }
}
