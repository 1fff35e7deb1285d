//! Hardware encoders: NVENC takes system-memory yuv420p frames like the
//! software encoders; VAAPI needs a device, a pool of surfaces and an upload
//! of every frame. Both are probed quietly: on a machine without them the only
//! trace is the one fallback line the caller logs.

use std::ptr;

use anyhow::{bail, Result};
use ff::ffi;
use ffmpeg_next as ff;

/// Runs `f` with FFmpeg's own logging silenced (probing a missing GPU makes
/// drivers and wrappers print errors that are expected here).
pub fn quietly<T>(f: impl FnOnce() -> T) -> T {
    // SAFETY: plain getters/setters of FFmpeg's global log level.
    let level = unsafe { ffi::av_log_get_level() };
    unsafe { ffi::av_log_set_level(ffi::AV_LOG_QUIET) };
    let out = f();
    unsafe { ffi::av_log_set_level(level) };
    out
}

/// A VAAPI device and a pool of NV12 surfaces of one size.
pub struct Vaapi {
    device: *mut ffi::AVBufferRef,
    frames: *mut ffi::AVBufferRef,
    surface: ff::frame::Video,
}

impl Vaapi {
    /// Opens the default VAAPI device (the first DRM render node).
    pub fn open(width: u32, height: u32) -> Result<Vaapi> {
        let mut device = ptr::null_mut();
        // SAFETY: FFmpeg allocates the device context into `device`.
        let r = unsafe {
            ffi::av_hwdevice_ctx_create(
                &mut device,
                ffi::AVHWDeviceType::AV_HWDEVICE_TYPE_VAAPI,
                ptr::null(),
                ptr::null_mut(),
                0,
            )
        };
        if r < 0 {
            bail!("no VAAPI device: {}", ff::Error::from(r));
        }
        let mut vaapi = Vaapi {
            device,
            frames: ptr::null_mut(),
            surface: ff::frame::Video::empty(),
        };
        // SAFETY: the device is valid; the frames context is configured before
        // av_hwframe_ctx_init, as the API requires.
        unsafe {
            vaapi.frames = ffi::av_hwframe_ctx_alloc(device);
            if vaapi.frames.is_null() {
                bail!("cannot allocate VAAPI frames");
            }
            let fc = (*vaapi.frames).data as *mut ffi::AVHWFramesContext;
            (*fc).format = ffi::AVPixelFormat::AV_PIX_FMT_VAAPI;
            (*fc).sw_format = ffi::AVPixelFormat::AV_PIX_FMT_NV12;
            (*fc).width = width as i32;
            (*fc).height = height as i32;
            (*fc).initial_pool_size = 20;
            let r = ffi::av_hwframe_ctx_init(vaapi.frames);
            if r < 0 {
                bail!(
                    "cannot create {width}x{height} VAAPI surfaces: {}",
                    ff::Error::from(r)
                );
            }
        }
        Ok(vaapi)
    }

    /// A new reference to the surface pool, for the encoder's `hw_frames_ctx`.
    pub fn frames_ref(&self) -> *mut ffi::AVBufferRef {
        // SAFETY: `frames` is a valid, initialized buffer reference.
        unsafe { ffi::av_buffer_ref(self.frames) }
    }

    /// Uploads an NV12 frame into a pooled surface (with its pts and picture type).
    pub fn upload(&mut self, frame: &ff::frame::Video) -> Result<&ff::frame::Video> {
        // SAFETY: the surface frame is ours; it is unreferenced before being
        // refilled from the pool, and the transfer copies from a valid frame.
        unsafe {
            let hw = self.surface.as_mut_ptr();
            ffi::av_frame_unref(hw);
            let r = ffi::av_hwframe_get_buffer(self.frames, hw, 0);
            if r < 0 {
                bail!("no free VAAPI surface: {}", ff::Error::from(r));
            }
            let r = ffi::av_hwframe_transfer_data(hw, frame.as_ptr(), 0);
            if r < 0 {
                bail!("uploading a frame to VAAPI: {}", ff::Error::from(r));
            }
            (*hw).pts = (*frame.as_ptr()).pts;
            (*hw).pict_type = (*frame.as_ptr()).pict_type;
        }
        Ok(&self.surface)
    }
}

impl Drop for Vaapi {
    fn drop(&mut self) {
        // SAFETY: releasing our own references (null-safe).
        unsafe {
            ffi::av_frame_unref(self.surface.as_mut_ptr());
            ffi::av_buffer_unref(&mut self.frames);
            ffi::av_buffer_unref(&mut self.device);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quietly_restores_the_log_level() {
        let before = unsafe { ffi::av_log_get_level() };
        let inside = quietly(|| unsafe { ffi::av_log_get_level() });
        assert_eq!(inside, ffi::AV_LOG_QUIET);
        assert_eq!(unsafe { ffi::av_log_get_level() }, before);
    }

    #[test]
    fn missing_vaapi_is_an_error_not_a_crash() {
        // On machines with a GPU this opens; without one it must fail cleanly.
        match quietly(|| Vaapi::open(64, 64)) {
            Ok(v) => assert!(!v.frames_ref().is_null()),
            Err(e) => assert!(e.to_string().contains("VAAPI"), "{e}"),
        }
    }
}
