//! Raw video between node-api messages and FFmpeg: pixel format mapping,
//! plane views over payloads and frames, a reusable swscale wrapper that writes
//! straight into shared-memory output buffers, and an MJPEG decoder.
//!
//! Views are raw plane pointers plus line sizes, the shape swscale and the
//! libavutil image helpers take, so a payload, an `OutBuf` and an FFmpeg frame
//! are all handled the same way and nothing is copied to bridge them.

use std::marker::PhantomData;

use anyhow::{anyhow, bail, Context as _, Result};
use ff::ffi;
use ff::format::Pixel;
use ff::packet::Mut as _;
use ff::software::scaling;
use ffmpeg_next as ff;
use node_api::{PixelFormat, PlaneLayout, TimeBase, VideoFrame};

/// The FFmpeg pixel format of a node-api format (`None` for MJPEG, which is compressed).
pub fn to_pixel(format: PixelFormat) -> Option<Pixel> {
    Some(match format {
        PixelFormat::Yuv420p => Pixel::YUV420P,
        PixelFormat::Nv12 => Pixel::NV12,
        PixelFormat::Rgb24 => Pixel::RGB24,
        PixelFormat::Bgra => Pixel::BGRA,
        PixelFormat::Rgba => Pixel::RGBA,
        PixelFormat::Yuyv422 => Pixel::YUYV422,
        PixelFormat::Gray8 => Pixel::GRAY8,
        PixelFormat::Mjpeg => return None,
    })
}

/// The node-api format of an FFmpeg pixel format, when nodes can carry it as is.
pub fn from_pixel(pixel: Pixel) -> Option<PixelFormat> {
    Some(match pixel {
        Pixel::YUV420P => PixelFormat::Yuv420p,
        Pixel::NV12 => PixelFormat::Nv12,
        Pixel::RGB24 => PixelFormat::Rgb24,
        Pixel::BGRA => PixelFormat::Bgra,
        Pixel::RGBA => PixelFormat::Rgba,
        Pixel::YUYV422 => PixelFormat::Yuyv422,
        Pixel::GRAY8 => PixelFormat::Gray8,
        _ => return None,
    })
}

/// A raw frame header with the tightly packed layout every node sends.
pub fn packed_frame(
    format: PixelFormat,
    width: u32,
    height: u32,
    pts: i64,
    time_base: TimeBase,
    capture_ns: u64,
) -> VideoFrame {
    VideoFrame {
        format,
        width,
        height,
        layout: format.packed_layout(width, height),
        pts,
        time_base,
        duration: 1,
        capture_ns,
    }
}

/// Rows of plane `plane` of a `height`-row picture (chroma planes of 4:2:0 are halved).
fn plane_rows(pixel: Pixel, plane: usize, height: u32) -> usize {
    let shift = match pixel.descriptor() {
        Some(d) if plane == 1 || plane == 2 => d.log2_chroma_h(),
        _ => 0,
    };
    (height as usize).div_ceil(1 << shift)
}

fn pixel_of(format: PixelFormat) -> Result<Pixel> {
    to_pixel(format)
        .ok_or_else(|| anyhow!("{} frames are compressed: decode them first", format.name()))
}

/// Whether a `len`-byte payload holds the frame its header describes, in any
/// plane layout (packed, or padded as a decoder allocates it).
pub fn fits(frame: &VideoFrame, len: usize) -> bool {
    check_layout(frame.format, frame.width, frame.height, &frame.layout, len).is_ok()
}

/// Checks that `layout` describes `format` at `width`×`height` within `len` bytes.
fn check_layout(
    format: PixelFormat,
    width: u32,
    height: u32,
    layout: &PlaneLayout,
    len: usize,
) -> Result<Pixel> {
    let pixel = pixel_of(format)?;
    let expected = format.packed_layout(width, height);
    if layout.planes != expected.planes {
        bail!(
            "{} {width}x{height} frame has {} planes, expected {}",
            format.name(),
            layout.planes,
            expected.planes
        );
    }
    for p in 0..layout.planes as usize {
        if layout.strides[p] < expected.strides[p] {
            bail!(
                "{} {width}x{height} plane {p}: stride {} < {}",
                format.name(),
                layout.strides[p],
                expected.strides[p]
            );
        }
        let end =
            layout.offsets[p] as usize + layout.strides[p] as usize * plane_rows(pixel, p, height);
        if end > len {
            bail!(
                "{} {width}x{height} plane {p} ends at byte {end}, past the {len}-byte payload",
                format.name()
            );
        }
    }
    Ok(pixel)
}

/// Read-only planes of one picture: a received payload or an FFmpeg frame.
#[derive(Clone, Copy)]
pub struct Planes<'a> {
    data: [*const u8; 4],
    linesize: [i32; 4],
    pub pixel: Pixel,
    pub width: u32,
    pub height: u32,
    _borrow: PhantomData<&'a [u8]>,
}

impl<'a> Planes<'a> {
    /// The planes of a payload as its header describes them (checked against its length).
    pub fn from_payload(frame: &VideoFrame, data: &'a [u8]) -> Result<Planes<'a>> {
        let pixel = check_layout(
            frame.format,
            frame.width,
            frame.height,
            &frame.layout,
            data.len(),
        )?;
        let mut planes = Planes {
            data: [std::ptr::null(); 4],
            linesize: [0; 4],
            pixel,
            width: frame.width,
            height: frame.height,
            _borrow: PhantomData,
        };
        for p in 0..frame.layout.planes as usize {
            // In bounds: check_layout verified every plane ends within `data`.
            planes.data[p] = data[frame.layout.offsets[p] as usize..].as_ptr();
            planes.linesize[p] = frame.layout.strides[p] as i32;
        }
        Ok(planes)
    }

    /// The planes of a decoded (or allocated) FFmpeg frame.
    pub fn from_frame(frame: &'a ff::frame::Video) -> Planes<'a> {
        // SAFETY: reading the pointers and line sizes of a valid AVFrame; the
        // borrow keeps the frame (and so its buffers) alive.
        let f = unsafe { &*frame.as_ptr() };
        // Pictures have at most 4 planes; AVFrame has room for 8.
        let data = std::array::from_fn(|p| f.data[p] as *const u8);
        let linesize = std::array::from_fn(|p| f.linesize[p]);
        Planes {
            data,
            linesize,
            pixel: frame.format(),
            width: frame.width(),
            height: frame.height(),
            _borrow: PhantomData,
        }
    }
}

/// An FFmpeg frame whose planes are a payload lent to it (e.g. a view of the
/// sender's shared memory), for encoders that copy their input while it is
/// sent: the picture reaches the encoder without a copy of ours.
///
/// The frame holds a reference-counted buffer that owns nothing, so FFmpeg
/// shares it (rather than copying the picture) when it takes a reference, and
/// never frees the payload. [`LentFrame::still_referenced`] tells whether
/// anything kept such a reference: the payload must outlive it.
pub struct LentFrame<'a> {
    frame: ff::frame::Video,
    _borrow: PhantomData<&'a [u8]>,
}

/// The buffer's owner is the payload's sender: nothing to free.
unsafe extern "C" fn lent_buffer_free(_opaque: *mut std::ffi::c_void, _data: *mut u8) {}

impl<'a> LentFrame<'a> {
    pub fn new(frame: &VideoFrame, data: &'a [u8]) -> Result<LentFrame<'a>> {
        let planes = Planes::from_payload(frame, data)?;
        let mut video = ff::frame::Video::empty();
        // SAFETY: filling in a blank AVFrame we own; the plane pointers lie in
        // `data` (checked by from_payload), which the lifetime keeps alive.
        unsafe {
            let f = &mut *video.as_mut_ptr();
            f.format = ffi::AVPixelFormat::from(planes.pixel) as i32;
            f.width = planes.width as i32;
            f.height = planes.height as i32;
            for p in 0..4 {
                f.data[p] = planes.data[p] as *mut u8;
                f.linesize[p] = planes.linesize[p];
            }
            f.buf[0] = ffi::av_buffer_create(
                data.as_ptr() as *mut u8,
                data.len(),
                Some(lent_buffer_free),
                std::ptr::null_mut(),
                ffi::AV_BUFFER_FLAG_READONLY,
            );
            if f.buf[0].is_null() {
                bail!("cannot wrap a {}-byte payload as a frame", data.len());
            }
        }
        Ok(LentFrame {
            frame: video,
            _borrow: PhantomData,
        })
    }

    pub fn frame_mut(&mut self) -> &mut ff::frame::Video {
        &mut self.frame
    }

    /// Whether something besides this frame still references the payload.
    pub fn still_referenced(&self) -> bool {
        // SAFETY: buf[0] was set (non-null) by `new`.
        unsafe { ffi::av_buffer_get_ref_count((*self.frame.as_ptr()).buf[0]) > 1 }
    }
}

/// Writable planes of one picture: an output buffer or an FFmpeg frame.
pub struct PlanesMut<'a> {
    data: [*mut u8; 4],
    linesize: [i32; 4],
    pub pixel: Pixel,
    pub width: u32,
    pub height: u32,
    _borrow: PhantomData<&'a mut [u8]>,
}

impl<'a> PlanesMut<'a> {
    /// The planes of a buffer to send, laid out as `frame` says.
    pub fn from_buf(frame: &VideoFrame, buf: &'a mut [u8]) -> Result<PlanesMut<'a>> {
        let pixel = check_layout(
            frame.format,
            frame.width,
            frame.height,
            &frame.layout,
            buf.len(),
        )?;
        let base = buf.as_mut_ptr();
        let mut data = [std::ptr::null_mut(); 4];
        let mut linesize = [0; 4];
        for p in 0..frame.layout.planes as usize {
            // SAFETY: check_layout verified the offset lies within `buf`.
            data[p] = unsafe { base.add(frame.layout.offsets[p] as usize) };
            linesize[p] = frame.layout.strides[p] as i32;
        }
        Ok(PlanesMut {
            data,
            linesize,
            pixel,
            width: frame.width,
            height: frame.height,
            _borrow: PhantomData,
        })
    }

    /// The planes of an FFmpeg frame with buffers (the caller made it writable).
    pub fn from_frame(frame: &'a mut ff::frame::Video) -> PlanesMut<'a> {
        let (pixel, width, height) = (frame.format(), frame.width(), frame.height());
        // SAFETY: the exclusive borrow of a valid AVFrame covers its buffers.
        let f = unsafe { &mut *frame.as_mut_ptr() };
        let data = std::array::from_fn(|p| f.data[p]);
        let linesize = std::array::from_fn(|p| f.linesize[p]);
        PlanesMut {
            data,
            linesize,
            pixel,
            width,
            height,
            _borrow: PhantomData,
        }
    }

    /// The `w`×`h` rectangle at (`x`, `y`): the same buffers, offset. The corner
    /// must fall on a chroma sample (even coordinates for 4:2:0 / 4:2:2).
    pub fn sub_rect(&mut self, x: u32, y: u32, w: u32, h: u32) -> Result<PlanesMut<'_>> {
        let desc = self
            .pixel
            .descriptor()
            .ok_or_else(|| anyhow!("unknown pixel format {:?}", self.pixel))?;
        let (cw, ch) = (1u32 << desc.log2_chroma_w(), 1u32 << desc.log2_chroma_h());
        if !x.is_multiple_of(cw)
            || !y.is_multiple_of(ch)
            || x + w > self.width
            || y + h > self.height
        {
            bail!(
                "rectangle {w}x{h}+{x}+{y} does not fit a {}x{} {:?} picture on chroma boundaries",
                self.width,
                self.height,
                self.pixel
            );
        }
        let mut data = [std::ptr::null_mut(); 4];
        for (p, plane) in data.iter_mut().enumerate() {
            if self.data[p].is_null() {
                continue;
            }
            // SAFETY: pure computation on the format descriptor.
            let dx = unsafe { ffi::av_image_get_linesize(self.pixel.into(), x as i32, p as i32) };
            if dx < 0 {
                bail!("cannot offset plane {p} of {:?}", self.pixel);
            }
            let dy = if p == 1 || p == 2 {
                y >> desc.log2_chroma_h()
            } else {
                y
            } as isize;
            // SAFETY: the rectangle lies inside the picture (checked above), so
            // the offset stays inside the plane.
            *plane = unsafe { self.data[p].offset(dy * self.linesize[p] as isize + dx as isize) };
        }
        Ok(PlanesMut {
            data,
            linesize: self.linesize,
            pixel: self.pixel,
            width: w,
            height: h,
            _borrow: PhantomData,
        })
    }

    /// Paints the whole picture black (limited-range YUV, full-range gray, RGB 0).
    pub fn fill_black(&mut self) -> Result<()> {
        let linesize = self.linesize.map(|l| l as isize);
        let range = if self.pixel == Pixel::GRAY8 {
            ffi::AVColorRange::AVCOL_RANGE_JPEG
        } else {
            ffi::AVColorRange::AVCOL_RANGE_MPEG
        };
        // SAFETY: the planes cover width×height (checked when the view was made).
        let r = unsafe {
            ffi::av_image_fill_black(
                self.data.as_mut_ptr(),
                linesize.as_ptr(),
                self.pixel.into(),
                range,
                self.width as i32,
                self.height as i32,
            )
        };
        if r < 0 {
            bail!(
                "cannot paint {:?} black: {}",
                self.pixel,
                ff::Error::from(r)
            );
        }
        Ok(())
    }

    /// Copies `src`, which must have the same format and size, row by row.
    pub fn copy_from(&mut self, src: &Planes<'_>) -> Result<()> {
        if (src.pixel, src.width, src.height) != (self.pixel, self.width, self.height) {
            bail!(
                "cannot copy a {}x{} {:?} picture into a {}x{} {:?} one",
                src.width,
                src.height,
                src.pixel,
                self.width,
                self.height,
                self.pixel
            );
        }
        let mut src_data = src.data;
        // SAFETY: both views cover width×height of the same format.
        unsafe {
            ffi::av_image_copy(
                self.data.as_mut_ptr(),
                self.linesize.as_mut_ptr(),
                src_data.as_mut_ptr(),
                src.linesize.as_ptr(),
                self.pixel.into(),
                self.width as i32,
                self.height as i32,
            )
        };
        Ok(())
    }
}

/// Scales and converts pictures with one swscale context, made on first use
/// and made again only when the source or destination geometry changes.
pub struct Scaler {
    context: Option<scaling::Context>,
    flags: scaling::Flags,
}

impl Scaler {
    pub fn new(flags: scaling::Flags) -> Scaler {
        Scaler {
            context: None,
            flags,
        }
    }

    /// Bilinear, the usual speed/quality trade-off for live video.
    pub fn bilinear() -> Scaler {
        Scaler::new(scaling::Flags::BILINEAR)
    }

    /// Scales `src` into `dst` (whatever their formats and sizes).
    pub fn scale(&mut self, src: &Planes<'_>, dst: &mut PlanesMut<'_>) -> Result<()> {
        let input = scaling::context::Definition {
            format: src.pixel,
            width: src.width,
            height: src.height,
        };
        let output = scaling::context::Definition {
            format: dst.pixel,
            width: dst.width,
            height: dst.height,
        };
        let stale = self
            .context
            .as_ref()
            .is_none_or(|c| *c.input() != input || *c.output() != output);
        if stale {
            self.context = None;
            let ctx = scaling::Context::get(
                input.format,
                input.width,
                input.height,
                output.format,
                output.width,
                output.height,
                self.flags,
            )
            .with_context(|| {
                format!(
                    "swscale cannot convert {}x{} {:?} to {}x{} {:?}",
                    input.width,
                    input.height,
                    input.format,
                    output.width,
                    output.height,
                    output.format
                )
            })?;
            tracing::debug!(?input, ?output, "swscale context created");
            self.context = Some(ctx);
        }
        let ctx = self.context.as_mut().expect("context set above");
        // SAFETY: the views cover their pictures and match the context's geometry.
        let rows = unsafe {
            ffi::sws_scale(
                ctx.as_mut_ptr(),
                src.data.as_ptr(),
                src.linesize.as_ptr(),
                0,
                src.height as i32,
                dst.data.as_ptr(),
                dst.linesize.as_ptr(),
            )
        };
        if rows < 0 {
            bail!("swscale failed: {}", ff::Error::from(rows));
        }
        Ok(())
    }
}

/// Decodes MJPEG camera frames, reusing its packet and frames between calls.
/// A frame that fails to decode leaves the last good picture in place, so a
/// corrupt frame from a camera can be covered by repeating it.
pub struct MjpegDecoder {
    decoder: ff::decoder::Video,
    packet: ff::Packet,
    capacity: usize,
    /// The last good picture.
    frame: ff::frame::Video,
    /// Receives the next picture; swapped with `frame` on success.
    scratch: ff::frame::Video,
    decoded: bool,
}

impl MjpegDecoder {
    pub fn new() -> Result<MjpegDecoder> {
        let codec = ff::decoder::find(ff::codec::Id::MJPEG)
            .ok_or_else(|| anyhow!("FFmpeg has no MJPEG decoder"))?;
        let mut ctx = ff::codec::Context::new_with_codec(codec);
        // One frame in, one frame out: frame threading would only add delay.
        ctx.set_threading(ff::threading::Config {
            kind: ff::threading::Type::Slice,
            count: 1,
            ..Default::default()
        });
        let decoder = ctx.decoder().video().context("opening the MJPEG decoder")?;
        Ok(MjpegDecoder {
            decoder,
            packet: ff::Packet::empty(),
            capacity: 0,
            frame: ff::frame::Video::empty(),
            scratch: ff::frame::Video::empty(),
            decoded: false,
        })
    }

    /// Decodes one JPEG picture. The frame stays valid until the next
    /// successful call.
    pub fn decode(&mut self, jpeg: &[u8]) -> Result<&ff::frame::Video> {
        if jpeg.is_empty() {
            bail!("empty MJPEG frame");
        }
        self.fill_packet(jpeg);
        self.decoder
            .send_packet(&self.packet)
            .context("MJPEG decoder rejected the frame")?;
        self.decoder
            .receive_frame(&mut self.scratch)
            .context("decoding an MJPEG frame")?;
        std::mem::swap(&mut self.frame, &mut self.scratch);
        self.decoded = true;
        Ok(&self.frame)
    }

    /// The picture of the last successful [`MjpegDecoder::decode`].
    pub fn last_frame(&self) -> Option<&ff::frame::Video> {
        self.decoded.then_some(&self.frame)
    }

    /// Copies `data` into the reused packet buffer, reallocating only when it
    /// is too small or the decoder still holds a reference to it.
    fn fill_packet(&mut self, data: &[u8]) {
        // SAFETY: the packet is a valid AVPacket; its buffer is only written
        // when we hold the only reference and it is large enough.
        unsafe {
            let pkt = self.packet.as_mut_ptr();
            let reusable = !(*pkt).buf.is_null()
                && ffi::av_buffer_is_writable((*pkt).buf) != 0
                && self.capacity >= data.len();
            if !reusable {
                self.capacity = data.len().next_power_of_two();
                self.packet = ff::Packet::new(self.capacity);
            }
            let pkt = self.packet.as_mut_ptr();
            std::ptr::copy_nonoverlapping(data.as_ptr(), (*pkt).data, data.len());
            // Keep the zeroed padding after the data that decoders rely on.
            std::ptr::write_bytes(
                (*pkt).data.add(data.len()),
                0,
                ffi::AV_INPUT_BUFFER_PADDING_SIZE as usize,
            );
            (*pkt).size = data.len() as i32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn init() {
        ff::init().unwrap();
    }

    fn frame(format: PixelFormat, w: u32, h: u32) -> VideoFrame {
        packed_frame(format, w, h, 0, TimeBase::new(1, 30), 0)
    }

    #[test]
    fn pixel_mapping_round_trips() {
        for f in [
            PixelFormat::Yuv420p,
            PixelFormat::Nv12,
            PixelFormat::Rgb24,
            PixelFormat::Bgra,
            PixelFormat::Rgba,
            PixelFormat::Yuyv422,
            PixelFormat::Gray8,
        ] {
            assert_eq!(from_pixel(to_pixel(f).unwrap()), Some(f));
        }
        assert_eq!(to_pixel(PixelFormat::Mjpeg), None);
        assert_eq!(from_pixel(Pixel::YUVJ420P), None);
    }

    #[test]
    fn lent_frame_points_at_the_payload_and_is_shared_not_copied() {
        init();
        let f = frame(PixelFormat::Yuv420p, 64, 48);
        let data: Vec<u8> = (0..f.layout.size).map(|i| i as u8).collect();
        let mut lent = LentFrame::new(&f, &data).unwrap();
        let v = lent.frame_mut();
        assert_eq!(
            (v.width(), v.height(), v.format()),
            (64, 48, Pixel::YUV420P)
        );
        assert_eq!(v.data(0).as_ptr(), data.as_ptr());
        assert_eq!(
            v.data(1).as_ptr(),
            data[f.layout.offsets[1] as usize..].as_ptr()
        );
        assert_eq!(v.stride(2), f.layout.strides[2] as usize);
        assert!(!lent.still_referenced());
        // What an encoder's send_frame does: take a reference (no copy).
        let mut taken = ff::frame::Video::empty();
        // SAFETY: both frames are valid; av_frame_ref fills the blank one.
        unsafe { ffi::av_frame_ref(taken.as_mut_ptr(), lent.frame_mut().as_ptr()) };
        assert_eq!(taken.data(0).as_ptr(), data.as_ptr());
        assert!(lent.still_referenced());
        drop(taken);
        assert!(!lent.still_referenced());
    }

    #[test]
    fn short_payload_is_rejected() {
        let f = frame(PixelFormat::Yuv420p, 64, 48);
        let data = vec![0u8; f.layout.size - 1];
        assert!(Planes::from_payload(&f, &data).is_err());
    }

    #[test]
    fn black_and_copy() {
        init();
        let f = frame(PixelFormat::Yuv420p, 64, 48);
        let mut buf = vec![7u8; f.layout.size];
        PlanesMut::from_buf(&f, &mut buf)
            .unwrap()
            .fill_black()
            .unwrap();
        assert!(buf[..64 * 48].iter().all(|&b| b == 16));
        assert!(buf[64 * 48..].iter().all(|&b| b == 128));
        let src = vec![99u8; f.layout.size];
        let planes = Planes::from_payload(&f, &src).unwrap();
        PlanesMut::from_buf(&f, &mut buf)
            .unwrap()
            .copy_from(&planes)
            .unwrap();
        assert_eq!(buf, src);
    }

    #[test]
    fn sub_rect_paints_only_the_rectangle() {
        init();
        let f = frame(PixelFormat::Rgb24, 8, 4);
        let mut buf = vec![255u8; f.layout.size];
        let mut planes = PlanesMut::from_buf(&f, &mut buf).unwrap();
        planes.sub_rect(2, 1, 4, 2).unwrap().fill_black().unwrap();
        for y in 0..4 {
            for x in 0..8 {
                let inside = (2..6).contains(&x) && (1..3).contains(&y);
                assert_eq!(buf[y * 24 + x * 3] == 0, inside, "pixel {x},{y}");
            }
        }
        let f = frame(PixelFormat::Yuv420p, 8, 4);
        let mut buf = vec![0u8; f.layout.size];
        assert!(PlanesMut::from_buf(&f, &mut buf)
            .unwrap()
            .sub_rect(1, 0, 2, 2)
            .is_err());
    }

    #[test]
    fn scales_gray_to_yuv_and_back() {
        init();
        let src_h = frame(PixelFormat::Gray8, 32, 16);
        let src = vec![200u8; src_h.layout.size];
        let dst_h = frame(PixelFormat::Yuv420p, 64, 32);
        let mut dst = vec![0u8; dst_h.layout.size];
        let mut scaler = Scaler::bilinear();
        let planes = Planes::from_payload(&src_h, &src).unwrap();
        scaler
            .scale(&planes, &mut PlanesMut::from_buf(&dst_h, &mut dst).unwrap())
            .unwrap();
        // Full-range gray 200 is limited-range luma 16 + 200 * 219 / 255 ≈ 188.
        let y = dst[64 * 10 + 10];
        assert!((186..=190).contains(&y), "luma {y}");
        assert!(dst[64 * 32..].iter().all(|&c| (127..=129).contains(&c)));
        // Same geometry again: the context is reused.
        scaler
            .scale(&planes, &mut PlanesMut::from_buf(&dst_h, &mut dst).unwrap())
            .unwrap();
    }

    #[test]
    fn decodes_mjpeg() {
        init();
        // Encode a picture with FFmpeg's MJPEG encoder, then decode it.
        let codec = ff::encoder::find(ff::codec::Id::MJPEG).unwrap();
        let mut enc = ff::codec::Context::new_with_codec(codec)
            .encoder()
            .video()
            .unwrap();
        enc.set_width(32);
        enc.set_height(16);
        enc.set_format(Pixel::YUVJ420P);
        enc.set_time_base((1, 30));
        let mut enc = enc.open_as(codec).unwrap();
        let mut pic = ff::frame::Video::new(Pixel::YUVJ420P, 32, 16);
        PlanesMut::from_frame(&mut pic).fill_black().unwrap();
        pic.set_pts(Some(0));
        enc.send_frame(&pic).unwrap();
        enc.send_eof().unwrap();
        let mut pkt = ff::Packet::empty();
        enc.receive_packet(&mut pkt).unwrap();
        let jpeg = pkt.data().unwrap().to_vec();
        let mut dec = MjpegDecoder::new().unwrap();
        assert!(dec.last_frame().is_none());
        for _ in 0..3 {
            let out = dec.decode(&jpeg).unwrap();
            assert_eq!((out.width(), out.height()), (32, 16));
        }
        assert!(dec.last_frame().is_some());
        assert!(dec.decode(b"not a jpeg").is_err());
        assert!(dec.decode(b"").is_err());
        // The last good picture survives a corrupt frame, and decoding resumes.
        assert_eq!(dec.last_frame().map(|f| f.width()), Some(32));
        assert_eq!(dec.decode(&jpeg).unwrap().height(), 16);
    }
}
