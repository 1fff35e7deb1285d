//! Turns one input picture into one output picture: MJPEG decoding when
//! needed, then swscale straight into the output buffer's planes, with black
//! padding around the picture when the aspect ratio is kept.

use anyhow::{Context, Result};
use node_api::{PixelFormat, VideoFrame};
use node_media::video::{fits, packed_frame, MjpegDecoder, Planes, PlanesMut, Scaler};

use node_media::geometry::{padding, picture_rect, Rect};

/// The output picture every frame is converted to.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    pub format: PixelFormat,
    pub width: u32,
    pub height: u32,
    pub keep_aspect: bool,
}

pub struct Converter {
    target: Target,
    /// An output header used for its layout (pts etc. set per frame).
    template: VideoFrame,
    scaler: Scaler,
    mjpeg: Option<MjpegDecoder>,
    /// Input size the picture rectangle was computed for, and the rectangle.
    rect: Option<((u32, u32), Rect)>,
}

impl Converter {
    pub fn new(target: Target) -> Converter {
        let template = packed_frame(
            target.format,
            target.width,
            target.height,
            0,
            node_api::TimeBase::new(1, 1),
            0,
        );
        Converter {
            target,
            template,
            scaler: Scaler::bilinear(),
            mjpeg: None,
            rect: None,
        }
    }

    pub fn target(&self) -> Target {
        self.target
    }

    pub fn output_size(&self) -> usize {
        self.template.layout.size
    }

    /// Whether a frame already is what we output, so its `len`-byte payload
    /// can be forwarded as is (zero copy), whatever its plane layout.
    pub fn passes_through(&self, frame: &VideoFrame, len: usize) -> bool {
        frame.format == self.target.format
            && frame.width == self.target.width
            && frame.height == self.target.height
            && fits(frame, len)
    }

    /// Whether an MJPEG picture was decoded (the one a failed decode leaves in place).
    pub fn has_decoded(&self) -> bool {
        self.mjpeg
            .as_ref()
            .is_some_and(|d| d.last_frame().is_some())
    }

    /// Paints a whole output frame black.
    pub fn fill_black(&self, out: &mut [u8]) -> Result<()> {
        PlanesMut::from_buf(&self.template, out)?.fill_black()
    }

    /// Decodes an MJPEG frame; the picture stays available to
    /// [`Converter::convert_decoded`] until the next successful decode.
    pub fn decode(&mut self, data: &[u8]) -> Result<()> {
        if self.mjpeg.is_none() {
            self.mjpeg = Some(MjpegDecoder::new()?);
        }
        self.mjpeg.as_mut().expect("created above").decode(data)?;
        Ok(())
    }

    /// Converts a raw payload described by `frame` into `out`.
    pub fn convert_raw(&mut self, frame: &VideoFrame, data: &[u8], out: &mut [u8]) -> Result<()> {
        let src = Planes::from_payload(frame, data)?;
        self.convert(&src, out)
    }

    /// Converts the last decoded MJPEG picture into `out`.
    pub fn convert_decoded(&mut self, out: &mut [u8]) -> Result<()> {
        let Some(decoder) = self.mjpeg.as_ref() else {
            anyhow::bail!("no MJPEG picture decoded yet");
        };
        let picture = decoder
            .last_frame()
            .context("no MJPEG picture decoded yet")?;
        let src = Planes::from_frame(picture);
        let rect = rect_for(&mut self.rect, self.target, src.width, src.height);
        scale_into(&mut self.scaler, &self.template, rect, &src, out)
    }

    fn convert(&mut self, src: &Planes<'_>, out: &mut [u8]) -> Result<()> {
        let rect = rect_for(&mut self.rect, self.target, src.width, src.height);
        scale_into(&mut self.scaler, &self.template, rect, src, out)
    }
}

/// The picture rectangle for an input size, recomputed only when it changes.
fn rect_for(cache: &mut Option<((u32, u32), Rect)>, t: Target, w: u32, h: u32) -> Rect {
    match cache {
        Some((size, rect)) if *size == (w, h) => *rect,
        _ => {
            let rect = picture_rect(w, h, t.width, t.height, t.keep_aspect);
            if rect.w != t.width || rect.h != t.height {
                tracing::info!(
                    "{w}x{h} input placed at {}x{}+{}+{} with black padding",
                    rect.w,
                    rect.h,
                    rect.x,
                    rect.y
                );
            }
            *cache = Some(((w, h), rect));
            rect
        }
    }
}

/// Paints the padding black and scales `src` into the picture rectangle of `out`.
fn scale_into(
    scaler: &mut Scaler,
    template: &VideoFrame,
    rect: Rect,
    src: &Planes<'_>,
    out: &mut [u8],
) -> Result<()> {
    let mut dst = PlanesMut::from_buf(template, out)?;
    for pad in padding(rect, template.width, template.height) {
        dst.sub_rect(pad.x, pad.y, pad.w, pad.h)?.fill_black()?;
    }
    let mut pic = dst.sub_rect(rect.x, rect.y, rect.w, rect.h)?;
    scaler.scale(src, &mut pic)
}

#[cfg(test)]
mod tests {
    use super::*;
    use node_api::TimeBase;

    fn target(format: PixelFormat, width: u32, height: u32, keep_aspect: bool) -> Target {
        Target {
            format,
            width,
            height,
            keep_aspect,
        }
    }

    #[test]
    fn passthrough_only_for_identical_pictures() {
        let c = Converter::new(target(PixelFormat::Yuv420p, 64, 48, true));
        let same = packed_frame(PixelFormat::Yuv420p, 64, 48, 0, TimeBase::new(1, 30), 0);
        let len = same.layout.size;
        assert!(c.passes_through(&same, len));
        let other = packed_frame(PixelFormat::Nv12, 64, 48, 0, TimeBase::new(1, 30), 0);
        assert!(!c.passes_through(&other, len));
        let bigger = packed_frame(PixelFormat::Yuv420p, 64, 50, 0, TimeBase::new(1, 30), 0);
        assert!(!c.passes_through(&bigger, bigger.layout.size));
        // A decoder's padded layout (128-byte lines, 64 rows) passes too...
        let mut padded = same.clone();
        padded.layout.strides = [128, 64, 64, 0];
        padded.layout.offsets = [0, 128 * 64, 128 * 64 + 64 * 32, 0];
        padded.layout.size = 128 * 64 + 2 * 64 * 32;
        assert!(c.passes_through(&padded, padded.layout.size));
        // ...but not a payload too short for the planes its header describes.
        assert!(!c.passes_through(&padded, len));
    }

    #[test]
    fn pillarbox_is_black_and_picture_is_scaled() {
        ffmpeg_next::init().unwrap();
        // A white 4:3 gray picture into a 16:9 yuv420p frame.
        let src = packed_frame(PixelFormat::Gray8, 40, 30, 0, TimeBase::new(1, 30), 0);
        let data = vec![255u8; src.layout.size];
        let mut c = Converter::new(target(PixelFormat::Yuv420p, 64, 36, true));
        let mut out = vec![0u8; c.output_size()];
        c.convert_raw(&src, &data, &mut out).unwrap();
        let luma = |x: usize, y: usize| out[y * 64 + x];
        // 48x36 picture centered at x = 8.
        assert_eq!(luma(0, 10), 16);
        assert_eq!(luma(63, 10), 16);
        assert_eq!(luma(32, 18), 235);
        assert!(out[64 * 36..].iter().all(|&c| (127..=129).contains(&c)));
    }

    #[test]
    fn stretch_covers_everything() {
        ffmpeg_next::init().unwrap();
        let src = packed_frame(PixelFormat::Rgb24, 40, 30, 0, TimeBase::new(1, 30), 0);
        let data = vec![255u8; src.layout.size];
        let mut c = Converter::new(target(PixelFormat::Bgra, 64, 36, false));
        let mut out = vec![0u8; c.output_size()];
        c.convert_raw(&src, &data, &mut out).unwrap();
        assert!(out.chunks(4).all(|px| px == [255, 255, 255, 255]));
    }

    /// A JPEG of a flat gray picture, from FFmpeg's MJPEG encoder.
    fn jpeg(width: u32, height: u32, luma: u8) -> Vec<u8> {
        use ffmpeg_next as ff;
        let codec = ff::encoder::find(ff::codec::Id::MJPEG).unwrap();
        let mut enc = ff::codec::Context::new_with_codec(codec)
            .encoder()
            .video()
            .unwrap();
        enc.set_width(width);
        enc.set_height(height);
        enc.set_format(ff::format::Pixel::YUVJ422P);
        enc.set_time_base((1, 30));
        let mut enc = enc.open_as(codec).unwrap();
        let mut pic = ff::frame::Video::new(ff::format::Pixel::YUVJ422P, width, height);
        for plane in 0..3 {
            let fill = if plane == 0 { luma } else { 128 };
            pic.data_mut(plane).fill(fill);
        }
        pic.set_pts(Some(0));
        enc.send_frame(&pic).unwrap();
        enc.send_eof().unwrap();
        let mut pkt = ff::Packet::empty();
        enc.receive_packet(&mut pkt).unwrap();
        pkt.data().unwrap().to_vec()
    }

    #[test]
    fn mjpeg_is_decoded_and_converted() {
        ffmpeg_next::init().unwrap();
        let data = jpeg(64, 48, 255);
        let mut c = Converter::new(target(PixelFormat::Yuv420p, 32, 24, true));
        let mut out = vec![0u8; c.output_size()];
        c.decode(&data).unwrap();
        c.convert_decoded(&mut out).unwrap();
        // Full-range white from the JPEG becomes limited-range white.
        assert!(out[..32 * 24].iter().all(|&y| y >= 234), "{:?}", &out[..8]);
        // The picture stays available for repeats.
        let mut again = vec![0u8; c.output_size()];
        c.convert_decoded(&mut again).unwrap();
        assert_eq!(out, again);
    }
}
