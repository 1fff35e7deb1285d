//! Channel layouts. Messages carry FFmpeg layout masks (0: the default layout
//! of the channel count); FFmpeg 5.1 wants `AVChannelLayout` structs.

use anyhow::{anyhow, Result};
use ffmpeg_next::ffi;
use ffmpeg_next::format::Sample;
use ffmpeg_next::frame;

/// FFmpeg's default layout mask for a channel count (mono, stereo, 3.0, quad,
/// 5.0, 5.1, 6.1, 7.1 ...); 0 when FFmpeg has none.
pub fn default_layout(channels: u16) -> u64 {
    let mut layout = Layout::zeroed();
    // SAFETY: av_channel_layout_default fills the struct we own.
    unsafe { ffi::av_channel_layout_default(&mut layout.0, channels as i32) };
    layout.mask()
}

/// `mask` when it describes `channels` channels, else the default layout.
pub fn layout_for(mask: u64, channels: u16) -> u64 {
    if mask != 0 && mask.count_ones() == channels as u32 {
        mask
    } else {
        default_layout(channels)
    }
}

/// An owned `AVChannelLayout`, released on drop.
pub(crate) struct Layout(pub(crate) ffi::AVChannelLayout);

impl Layout {
    fn zeroed() -> Layout {
        // SAFETY: an all-zero AVChannelLayout is the documented "unspecified" state.
        Layout(unsafe { std::mem::zeroed() })
    }

    /// The layout of `channels` channels: `mask` when it fits, else the
    /// default; channels without a native layout get an unspecified order.
    pub(crate) fn new(mask: u64, channels: u16) -> Layout {
        let mut layout = Layout::zeroed();
        let mask = layout_for(mask, channels);
        // SAFETY: both calls fill the struct we own.
        unsafe {
            if mask == 0 || ffi::av_channel_layout_from_mask(&mut layout.0, mask) < 0 {
                layout.0.order = ffi::AVChannelOrder::AV_CHANNEL_ORDER_UNSPEC;
                layout.0.nb_channels = channels as i32;
            }
        }
        layout
    }

    fn mask(&self) -> u64 {
        if self.0.order == ffi::AVChannelOrder::AV_CHANNEL_ORDER_NATIVE {
            // SAFETY: native order uses the mask member of the union.
            unsafe { self.0.u.mask }
        } else {
            0
        }
    }
}

impl Drop for Layout {
    fn drop(&mut self) {
        // SAFETY: uninit frees what the layout owns (nothing for native/unspec orders).
        unsafe { ffi::av_channel_layout_uninit(&mut self.0) };
    }
}

/// The (mask, channel count) of a decoded frame; mask 0 when its order is not native.
pub fn frame_layout(frame: &frame::Audio) -> (u64, u16) {
    // SAFETY: reading plain fields of a valid frame.
    unsafe {
        let l = &(*frame.as_ptr()).ch_layout;
        let mask = if l.order == ffi::AVChannelOrder::AV_CHANNEL_ORDER_NATIVE {
            l.u.mask
        } else {
            0
        };
        (mask, l.nb_channels.max(0) as u16)
    }
}

/// A frame of `samples` samples with its own buffers (the encoders' input frame).
pub fn alloc_frame(
    format: Sample,
    samples: usize,
    mask: u64,
    channels: u16,
) -> Result<frame::Audio> {
    let mut frame = frame::Audio::empty();
    let layout = Layout::new(mask, channels);
    // SAFETY: we fill the fields av_frame_get_buffer reads, on a frame we own.
    unsafe {
        let f = frame.as_mut_ptr();
        (*f).format = ffi::AVSampleFormat::from(format) as i32;
        (*f).nb_samples = samples as i32;
        if ffi::av_channel_layout_copy(&mut (*f).ch_layout, &layout.0) < 0 {
            return Err(anyhow!("cannot set the channel layout of an audio frame"));
        }
        // FFmpeg 5.1 still reads the deprecated fields in places: keep them in step.
        (*f).channels = channels as i32;
        (*f).channel_layout = layout.mask();
        let e = ffi::av_frame_get_buffer(f, 0);
        if e < 0 {
            return Err(anyhow!(
                "cannot allocate an audio frame of {samples} samples: {}",
                ffmpeg_next::Error::from(e)
            ));
        }
    }
    Ok(frame)
}

/// Sets an encoder's channel layout (before it is opened).
pub fn set_codec_layout(
    ctx: &mut ffmpeg_next::codec::context::Context,
    mask: u64,
    channels: u16,
) -> Result<()> {
    let layout = Layout::new(mask, channels);
    // SAFETY: the context is not opened yet; copy replaces its (unset) layout.
    unsafe {
        let c = ctx.as_mut_ptr();
        ffi::av_channel_layout_uninit(&mut (*c).ch_layout);
        if ffi::av_channel_layout_copy(&mut (*c).ch_layout, &layout.0) < 0 {
            return Err(anyhow!("cannot set the encoder's channel layout"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        assert_eq!(default_layout(1), 0x4); // FC
        assert_eq!(default_layout(2), 0x3); // FL+FR
        assert_eq!(default_layout(6).count_ones(), 6);
        assert_eq!(default_layout(8).count_ones(), 8);
        assert_eq!(layout_for(0, 2), 0x3);
        // A mask that disagrees with the channel count is replaced.
        assert_eq!(layout_for(0x3, 1), 0x4);
        assert_eq!(layout_for(0x7, 3), 0x7);
    }

    #[test]
    fn frames_carry_the_layout() {
        let f = alloc_frame(
            Sample::F32(ffmpeg_next::format::sample::Type::Planar),
            1024,
            0,
            2,
        )
        .unwrap();
        assert_eq!(frame_layout(&f), (0x3, 2));
        assert_eq!(f.samples(), 1024);
        assert_eq!(f.planes(), 2);
    }
}
