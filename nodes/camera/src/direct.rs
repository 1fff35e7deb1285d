//! Decoding straight into shared memory: the decoder's `get_buffer2` takes its
//! picture buffers from the node's output pool, so a decoded picture is sent
//! as it is, with no copy (the plane layout FFmpeg wants, padding and
//! alignment included, travels in the frame's header).
//!
//! The decoder may keep a picture it has output (as a reference) while the
//! graph reads it: both hold the same shared-memory buffer, which returns to
//! the pool once every holder is done. Decoders never write to a picture they
//! have output, so only codecs known to allocate a fresh picture per frame
//! are served (others get FFmpeg's own buffers, copied when sent).
//!
//! When the pool is exhausted because the graph downstream still holds its
//! buffers, the decoder waits, as the copying path would. When it is exhausted
//! by the pictures the decoder itself keeps (long reference lists), waiting
//! could never end, so the decoder gets FFmpeg's buffers instead.

use std::collections::HashSet;
use std::os::raw::{c_int, c_void};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use ff::ffi;
use ffmpeg_next as ff;
use node_api::{PixelFormat, PlaneLayout, PoolHandle, SharedBuf};
use node_media::video::from_pixel;

/// How long the decoder waits for the graph to release a buffer before it
/// takes one of FFmpeg's (and the picture is copied when sent).
const WAIT_FOR_RELEASE: Duration = Duration::from_millis(500);

/// Codecs whose decoders allocate every output picture anew and never write
/// to it after output. Others (e.g. delta codecs that patch the previous
/// picture in place) keep FFmpeg's buffers.
const SERVED: &[ffi::AVCodecID] = &[
    ffi::AVCodecID::AV_CODEC_ID_FFV1,
    ffi::AVCodecID::AV_CODEC_ID_H264,
    ffi::AVCodecID::AV_CODEC_ID_HEVC,
    ffi::AVCodecID::AV_CODEC_ID_VP8,
    ffi::AVCodecID::AV_CODEC_ID_VP9,
    ffi::AVCodecID::AV_CODEC_ID_MPEG1VIDEO,
    ffi::AVCodecID::AV_CODEC_ID_MPEG2VIDEO,
    ffi::AVCodecID::AV_CODEC_ID_MPEG4,
    ffi::AVCodecID::AV_CODEC_ID_MJPEG,
    ffi::AVCodecID::AV_CODEC_ID_PRORES,
    ffi::AVCodecID::AV_CODEC_ID_HUFFYUV,
    ffi::AVCodecID::AV_CODEC_ID_FFVHUFF,
    ffi::AVCodecID::AV_CODEC_ID_UTVIDEO,
];

/// Slack after the last plane: SIMD code may read a little past it.
const TAIL_SLACK: usize = 64;

/// Line and plane alignment of the buffers handed to the decoder.
const ALIGN: usize = 64;

/// What the decoder's threads share with the node's thread.
pub struct DirectBuffers {
    pool: OnceLock<PoolHandle>,
    /// Addresses of the [`Entry`]s whose FFmpeg buffer is still referenced
    /// (by the decoder, or by the frame the node thread is sending).
    live: Mutex<HashSet<usize>>,
}

/// One buffer handed to the decoder: the `opaque` of its AVBuffer.
struct Entry {
    owner: Arc<DirectBuffers>,
    buf: SharedBuf,
}

impl DirectBuffers {
    /// Installs the callback on a decoder context not yet opened. Until
    /// [`DirectBuffers::attach`] gives it a pool, every picture gets FFmpeg's
    /// buffers. `None` for codecs not served.
    pub fn install(ctx: &mut ff::codec::Context) -> Option<Arc<DirectBuffers>> {
        // SAFETY: reading and setting fields of a context we own, before it is opened.
        unsafe {
            let raw = ctx.as_mut_ptr();
            if !SERVED.contains(&(*raw).codec_id) {
                return None;
            }
            let shared = Arc::new(DirectBuffers {
                pool: OnceLock::new(),
                live: Mutex::new(HashSet::new()),
            });
            // The capture keeps `shared` alive longer than the decoder.
            (*raw).opaque = Arc::as_ptr(&shared) as *mut c_void;
            (*raw).get_buffer2 = Some(get_buffer);
            Some(shared)
        }
    }

    /// From now on pictures are decoded into `pool`'s buffers.
    pub fn attach(&self, pool: PoolHandle) {
        let _ = self.pool.set(pool);
    }

    /// The shared-memory buffer a decoded frame lies in, with its plane
    /// layout, when it is one of ours.
    pub fn shared_of(&self, frame: &ff::frame::Video) -> Option<(SharedBuf, PlaneLayout)> {
        // SAFETY: reading a valid frame's buffer pointers; an opaque is only
        // dereferenced when it is a live Entry of ours (no other allocation
        // can have the same address while it lives).
        unsafe {
            let raw = frame.as_ptr();
            let buf0 = (*raw).buf[0];
            if buf0.is_null() {
                return None;
            }
            let opaque = ffi::av_buffer_get_opaque(buf0) as usize;
            let live = self.live();
            if !live.contains(&opaque) {
                return None;
            }
            let entry = &*(opaque as *const Entry);
            let start = (*buf0).data as usize;
            let pixel = from_pixel(frame.format())?;
            let mut layout = PlaneLayout {
                size: entry.buf.len(),
                ..PlaneLayout::default()
            };
            layout.planes = pixel.packed_layout(frame.width(), frame.height()).planes;
            for p in 0..layout.planes as usize {
                let at = ((*raw).data[p] as usize).checked_sub(start)?;
                let stride = u32::try_from((*raw).linesize[p]).ok()?;
                layout.offsets[p] = u32::try_from(at).ok()?;
                layout.strides[p] = stride;
            }
            Some((entry.buf.clone(), layout))
        }
    }

    fn live(&self) -> MutexGuard<'_, HashSet<usize>> {
        // A poisoned set is still a correct set: every change is one call.
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The payload size of a picture decoded with FFmpeg's alignment rules
/// (what [`get_buffer`] allocates), or `None` for formats nodes do not carry.
///
/// # Safety
/// `avctx` must be a valid decoder context.
pub unsafe fn padded_size(
    avctx: *mut ffi::AVCodecContext,
    format: ff::format::Pixel,
    width: u32,
    height: u32,
) -> Option<usize> {
    // SAFETY: as the caller promises.
    unsafe { plane_layout(avctx, format.into(), width as c_int, height as c_int) }
        .map(|(_, _, size)| size)
}

/// Line sizes, plane offsets and total size of a `width`×`height` picture as
/// FFmpeg's default allocator would lay it out (dimensions rounded up for the
/// codec, every line and plane 64-byte aligned).
/// FFmpeg's pixel format numbered `raw`, when it is a raw format we carry
/// (any other number, even one outside FFmpeg's enum, gives `None`).
fn raw_pixel_format(raw: c_int) -> Option<ffi::AVPixelFormat> {
    PixelFormat::ALL
        .iter()
        .filter(|f| **f != PixelFormat::Mjpeg)
        .filter_map(|f| node_media::video::to_pixel(*f))
        .map(ffi::AVPixelFormat::from)
        .find(|p| *p as c_int == raw)
}

unsafe fn plane_layout(
    avctx: *mut ffi::AVCodecContext,
    format: ffi::AVPixelFormat,
    width: c_int,
    height: c_int,
) -> Option<([c_int; 4], [usize; 4], usize)> {
    let pixel = ff::format::Pixel::from(format);
    if from_pixel(pixel).is_none_or(|p| p == PixelFormat::Mjpeg) || width <= 0 || height <= 0 {
        return None;
    }
    let (mut w, mut h) = (width, height);
    let mut align = [0 as c_int; ffi::AV_NUM_DATA_POINTERS as usize];
    let mut linesize = [0 as c_int; 4];
    // SAFETY: valid context and arrays of the sizes FFmpeg writes.
    unsafe {
        ffi::avcodec_align_dimensions2(avctx, &mut w, &mut h, align.as_mut_ptr());
        // Widen until every line is aligned, as FFmpeg's own allocator does.
        loop {
            if ffi::av_image_fill_linesizes(linesize.as_mut_ptr(), format, w) < 0 {
                return None;
            }
            if linesize.iter().all(|&l| (l as usize).is_multiple_of(ALIGN)) {
                break;
            }
            w += w & !(w - 1);
        }
        let lines = linesize.map(|l| l as isize);
        let mut sizes = [0usize; 4];
        if ffi::av_image_fill_plane_sizes(sizes.as_mut_ptr(), format, h, lines.as_ptr()) < 0 {
            return None;
        }
        let mut offsets = [0usize; 4];
        let mut end = 0usize;
        for p in 0..4 {
            if sizes[p] == 0 {
                break;
            }
            offsets[p] = end.next_multiple_of(ALIGN);
            end = offsets[p] + sizes[p];
        }
        Some((linesize, offsets, end + TAIL_SLACK))
    }
}

/// The decoder's `get_buffer2`: a pool buffer when one can be had, else FFmpeg's.
unsafe extern "C" fn get_buffer(
    avctx: *mut ffi::AVCodecContext,
    frame: *mut ffi::AVFrame,
    flags: c_int,
) -> c_int {
    // SAFETY: FFmpeg passes the context whose opaque `install` set and a
    // frame to fill; `fill` only writes the fields get_buffer2 must set.
    unsafe {
        if fill(avctx, frame) {
            return 0;
        }
        ffi::avcodec_default_get_buffer2(avctx, frame, flags)
    }
}

unsafe fn fill(avctx: *mut ffi::AVCodecContext, frame: *mut ffi::AVFrame) -> bool {
    // SAFETY: see get_buffer; `opaque` points into an Arc the capture keeps.
    unsafe {
        let shared_ptr = (*avctx).opaque as *const DirectBuffers;
        let shared = &*shared_ptr;
        let Some(pool) = shared.pool.get() else {
            return false;
        };
        let Some(format) = raw_pixel_format((*frame).format) else {
            return false;
        };
        let Some((linesize, offsets, size)) =
            plane_layout(avctx, format, (*frame).width, (*frame).height)
        else {
            return false;
        };
        if size > pool.max_payload() {
            return false;
        }
        // Wait only for buffers the graph holds, which it will release.
        let wait = if shared.live().len() + 2 < pool.slots() {
            WAIT_FOR_RELEASE
        } else {
            Duration::ZERO
        };
        let Ok(Some((buf, start))) = pool.try_alloc_shared(size, wait) else {
            return false;
        };
        Arc::increment_strong_count(shared_ptr);
        let entry = Box::into_raw(Box::new(Entry {
            owner: Arc::from_raw(shared_ptr),
            buf,
        }));
        let buf_ref = ffi::av_buffer_create(start, size, Some(release), entry.cast(), 0);
        if buf_ref.is_null() {
            drop(Box::from_raw(entry));
            return false;
        }
        shared.live().insert(entry as usize);
        for p in 0..4 {
            if linesize[p] == 0 {
                (*frame).data[p] = std::ptr::null_mut();
                (*frame).linesize[p] = 0;
            } else {
                (*frame).data[p] = start.add(offsets[p]);
                (*frame).linesize[p] = linesize[p];
            }
        }
        (*frame).buf[0] = buf_ref;
        (*frame).extended_data = (*frame).data.as_mut_ptr();
        true
    }
}

/// The AVBuffer's free callback: the decoder and the frame are done with it;
/// the shared-memory buffer returns to the pool once the graph is done too.
unsafe extern "C" fn release(opaque: *mut c_void, _data: *mut u8) {
    // SAFETY: `opaque` is the Entry `fill` boxed for this AVBuffer, freed once.
    let entry = unsafe { Box::from_raw(opaque.cast::<Entry>()) };
    entry.owner.live().remove(&(opaque as usize));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_pixel_formats_we_carry_are_taken() {
        let yuv = ffi::AVPixelFormat::AV_PIX_FMT_YUV420P;
        assert_eq!(raw_pixel_format(yuv as c_int), Some(yuv));
        let nv12 = ffi::AVPixelFormat::AV_PIX_FMT_NV12;
        assert_eq!(raw_pixel_format(nv12 as c_int), Some(nv12));
        for raw in [-1, 99_999, ffi::AVPixelFormat::AV_PIX_FMT_P010LE as c_int] {
            assert_eq!(raw_pixel_format(raw), None, "{raw}");
        }
    }
}
