//! Cameras through nokhwa (V4L2 on Linux, AVFoundation, Media Foundation).
//!
//! Frames go out in the camera's own format (YUYV, NV12, MJPEG, ...): the
//! video-normalize node converts them, so capture only copies each frame once,
//! into shared memory.

use anyhow::{anyhow, bail, Context, Result};
use node_api::{clock, Node, PixelFormat, PlaneLayout, TimeBase, VideoFrame};
use nokhwa::utils::{
    ApiBackend, CameraFormat, CameraInfo, FrameFormat, RequestedFormat, RequestedFormatType,
    Resolution,
};
use nokhwa::Camera;

use crate::capture::Capture;

/// Formats we can carry between nodes, in no particular preference: the
/// request's closest match decides.
static CARRIED: [FrameFormat; 5] = [
    FrameFormat::YUYV,
    FrameFormat::MJPEG,
    FrameFormat::NV12,
    FrameFormat::GRAY,
    FrameFormat::RAWRGB,
];

/// The cameras the system reports (an empty list when the query itself fails,
/// e.g. no video subsystem; the reason is returned beside it).
pub fn cameras() -> (Vec<CameraInfo>, Option<String>) {
    match nokhwa::query(ApiBackend::Auto) {
        Ok(list) => (list, None),
        Err(e) => (Vec::new(), Some(e.to_string())),
    }
}

/// A camera by index (`0`) or by name (exact, else case-insensitive substring).
pub fn find(spec: &str) -> Result<CameraInfo> {
    let (list, error) = cameras();
    let by_index = spec.parse::<u32>().ok();
    let found = list
        .iter()
        .find(|c| by_index.is_some_and(|i| c.index().as_index().is_ok_and(|n| n == i)))
        .or_else(|| list.iter().find(|c| c.human_name() == spec))
        .or_else(|| {
            let lower = spec.to_lowercase();
            list.iter()
                .find(|c| c.human_name().to_lowercase().contains(&lower))
        });
    if let Some(c) = found {
        return Ok(c.clone());
    }
    let names = if list.is_empty() {
        "none".to_string()
    } else {
        list.iter()
            .map(|c| format!("{}: {}", c.index(), c.human_name()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match error {
        Some(e) => {
            bail!("camera `{spec}` not found (cameras: {names}; the camera query failed: {e})")
        }
        None => bail!("camera `{spec}` not found (cameras: {names})"),
    }
}

/// The carried pixel format of a camera frame format.
fn carried(format: FrameFormat) -> Option<PixelFormat> {
    Some(match format {
        FrameFormat::YUYV => PixelFormat::Yuyv422,
        FrameFormat::MJPEG => PixelFormat::Mjpeg,
        FrameFormat::NV12 => PixelFormat::Nv12,
        FrameFormat::GRAY => PixelFormat::Gray8,
        FrameFormat::RAWRGB => PixelFormat::Rgb24,
        FrameFormat::RAWBGR => return None,
    })
}

/// The camera format to ask for first, from the `pixel_format` param.
fn preferred(pixel_format: PixelFormat) -> FrameFormat {
    match pixel_format {
        PixelFormat::Nv12 => FrameFormat::NV12,
        PixelFormat::Rgb24 => FrameFormat::RAWRGB,
        PixelFormat::Gray8 => FrameFormat::GRAY,
        PixelFormat::Mjpeg => FrameFormat::MJPEG,
        _ => FrameFormat::YUYV,
    }
}

pub struct DeviceCapture {
    camera: Camera,
    name: String,
    format: PixelFormat,
    width: u32,
    height: u32,
    fps: u32,
}

impl DeviceCapture {
    /// Opens `info` as close as it allows to the requested size, rate and format.
    pub fn open(
        info: &CameraInfo,
        width: u32,
        height: u32,
        fps: f64,
        pixel_format: PixelFormat,
    ) -> Result<Self> {
        let name = info.human_name();
        let want = CameraFormat::new(
            Resolution::new(width, height),
            preferred(pixel_format),
            fps.round().max(1.0) as u32,
        );
        let request = RequestedFormat::with_formats(RequestedFormatType::Closest(want), &CARRIED);
        let mut camera = Camera::new(info.index().clone(), request)
            .with_context(|| format!("opening camera `{name}`"))?;
        camera
            .open_stream()
            .with_context(|| format!("starting camera `{name}`"))?;
        let got = camera.camera_format();
        let format = carried(got.format()).ok_or_else(|| {
            anyhow!(
                "camera `{name}` delivers {} frames, which nodes cannot carry",
                got.format()
            )
        })?;
        tracing::info!(
            "camera `{name}`: {}x{} {} at {} fps (asked {width}x{height} at {fps:.3})",
            got.width(),
            got.height(),
            got.format(),
            got.frame_rate()
        );
        Ok(DeviceCapture {
            camera,
            name,
            format,
            width: got.width(),
            height: got.height(),
            fps: got.frame_rate().max(1),
        })
    }

    fn raw_layout(&self) -> PlaneLayout {
        self.format.packed_layout(self.width, self.height)
    }
}

impl Capture for DeviceCapture {
    fn max_frame_bytes(&self) -> usize {
        // MJPEG frames are smaller than raw YUYV of the same size in practice.
        self.raw_layout()
            .size
            .max(self.width as usize * self.height as usize * 2)
    }

    fn run(&mut self, node: &mut Node) -> Result<u64> {
        let time_base = TimeBase::new(1, self.fps as i32);
        let period_ns = 1_000_000_000 / self.fps as u64;
        let mut first_ns = None;
        let mut last_pts = -1i64;
        let mut sent = 0u64;
        let mut short = 0u64;
        let raw_layout = self.raw_layout();
        while !node.stop_requested() {
            let data = self
                .camera
                .frame_raw()
                .with_context(|| format!("reading camera `{}`", self.name))?;
            let capture_ns = clock::now_ns();
            // pts is the frame slot of the capture time, so frames the camera
            // skipped leave gaps that video-normalize fills.
            let first = *first_ns.get_or_insert(capture_ns);
            let slot = ((capture_ns - first + period_ns / 2) / period_ns) as i64;
            let pts = slot.max(last_pts + 1);
            last_pts = pts;
            let layout = if self.format == PixelFormat::Mjpeg {
                PlaneLayout {
                    planes: 1,
                    strides: [0; 4],
                    offsets: [0; 4],
                    size: data.len(),
                }
            } else {
                raw_layout
            };
            if data.len() < layout.size {
                short += 1;
                tracing::debug!(
                    "camera frame of {} bytes, expected {}: skipped",
                    data.len(),
                    layout.size
                );
                continue;
            }
            let mut buf = node.alloc("video", layout.size)?;
            buf.copy_from_slice(&data[..layout.size]);
            let frame = VideoFrame {
                format: self.format,
                width: self.width,
                height: self.height,
                layout,
                pts,
                time_base,
                duration: 1,
                capture_ns,
            };
            node.send_video("video", frame, buf)?;
            sent += 1;
        }
        if short > 0 {
            tracing::warn!("camera `{}`: {short} truncated frames skipped", self.name);
        }
        self.camera
            .stop_stream()
            .with_context(|| format!("stopping camera `{}`", self.name))?;
        tracing::info!("camera `{}`: {sent} frames", self.name);
        Ok(sent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carried_formats_round_trip() {
        for f in CARRIED {
            let p = carried(f).unwrap();
            assert_eq!(preferred(p), f);
        }
        assert_eq!(carried(FrameFormat::RAWBGR), None);
    }

    #[test]
    fn unknown_camera_is_named_in_the_error() {
        // Whatever cameras this machine has, this one does not exist.
        let e = find("no-such-camera-4c1f").unwrap_err().to_string();
        assert!(
            e.starts_with("camera `no-such-camera-4c1f` not found (cameras: "),
            "{e}"
        );
    }
}
