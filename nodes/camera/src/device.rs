//! Cameras through nokhwa (V4L2 on Linux, AVFoundation, Media Foundation).
//!
//! Frames go out in the camera's own format (YUYV, NV12, MJPEG, ...): the
//! video-normalize node converts them, so capture only copies each frame once,
//! into shared memory.

use anyhow::{anyhow, bail, Context, Result};
use node_api::{clock, Node, PixelFormat, PlaneLayout, TimeBase, VideoFrame};
use nokhwa::utils::{
    ApiBackend, CameraFormat, CameraIndex, CameraInfo, FrameFormat, RequestedFormat,
    RequestedFormatType, Resolution,
};
use nokhwa::{Camera, NokhwaError};
use serde::Serialize;

use crate::capture::{Capture, Slots};
use node_catalog::Rational;

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

/// Every frame format nokhwa reads, to open a camera just for listing.
static ALL: [FrameFormat; 6] = [
    FrameFormat::MJPEG,
    FrameFormat::YUYV,
    FrameFormat::NV12,
    FrameFormat::GRAY,
    FrameFormat::RAWRGB,
    FrameFormat::RAWBGR,
];

/// One camera as `--list-devices` reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct Listing {
    pub index: CameraIndex,
    pub name: String,
    pub description: String,
    pub formats: Vec<FormatListing>,
    /// Why the formats could not be read (e.g. the camera is busy).
    pub error: Option<String>,
}

/// The sizes and rates of one frame format.
#[derive(Debug, Clone, PartialEq)]
pub struct FormatListing {
    pub format: FrameFormat,
    /// (width, height, frame rates), largest size and highest rate first.
    pub sizes: Vec<(u32, u32, Vec<u32>)>,
}

/// The cameras with the formats, sizes and rates each offers. A query that
/// fails is an error (unlike [`cameras`]): the listing must not claim there
/// are none when it could not look.
pub fn list() -> Result<Vec<Listing>> {
    let infos = nokhwa::query(ApiBackend::Auto).map_err(|e| anyhow!("querying cameras: {e}"))?;
    let mut out = Vec::with_capacity(infos.len());
    for info in infos {
        let mut listing = Listing {
            index: info.index().clone(),
            name: info.human_name(),
            description: info.description().to_string(),
            formats: Vec::new(),
            error: None,
        };
        // Formats are only known once the device is open; nokhwa opens it in
        // its first format (possibly changing the format the device keeps).
        let request = RequestedFormat::with_formats(RequestedFormatType::None, &ALL);
        match Camera::new(info.index().clone(), request) {
            Ok(mut camera) => {
                if let Err(e) = read_formats(&mut camera, &mut listing.formats) {
                    listing.error = Some(e.to_string());
                }
            }
            // No format nokhwa reads: not a video capture device (V4L2 gives
            // each UVC camera a metadata node too); the node cannot use it.
            Err(NokhwaError::GetPropertyError { property, error })
                if property == "CameraFormat" =>
            {
                tracing::debug!(
                    "{}: skipped, no capture format ({error})",
                    info.human_name()
                );
                continue;
            }
            Err(e) => listing.error = Some(e.to_string()),
        }
        out.push(listing);
    }
    Ok(out)
}

fn read_formats(camera: &mut Camera, formats: &mut Vec<FormatListing>) -> Result<(), NokhwaError> {
    for format in camera.compatible_fourcc()? {
        let mut sizes: Vec<(u32, u32, Vec<u32>)> = camera
            .compatible_list_by_resolution(format)?
            .into_iter()
            .map(|(res, mut rates)| {
                rates.sort_unstable_by(|a, b| b.cmp(a));
                rates.dedup();
                (res.width(), res.height(), rates)
            })
            .collect();
        sizes.sort_unstable_by_key(|&(w, h, _)| std::cmp::Reverse((w as u64 * h as u64, w)));
        formats.push(FormatListing { format, sizes });
    }
    Ok(())
}

/// The listing as the JSON array `--list-devices` prints (the shape
/// `runtime devices` reads).
pub fn listing_json(list: &[Listing]) -> String {
    let cameras: Vec<CameraJson> = list.iter().map(CameraJson::from).collect();
    serde_json::to_string(&cameras).expect("a camera listing always serializes")
}

/// A [`Listing`] as JSON: nokhwa's types are not serializable.
#[derive(Serialize)]
struct CameraJson<'a> {
    index: IndexJson<'a>,
    name: &'a str,
    description: &'a str,
    formats: Vec<FormatJson<'a>>,
    error: Option<&'a str>,
}

/// A number, or a string on systems that name their cameras.
#[derive(Serialize)]
#[serde(untagged)]
enum IndexJson<'a> {
    Number(u32),
    Name(&'a str),
}

#[derive(Serialize)]
struct FormatJson<'a> {
    format: String,
    pixel_format: Option<&'static str>,
    sizes: Vec<SizeJson<'a>>,
}

#[derive(Serialize)]
struct SizeJson<'a> {
    width: u32,
    height: u32,
    rates: &'a [u32],
}

impl<'a> From<&'a Listing> for CameraJson<'a> {
    fn from(l: &'a Listing) -> Self {
        CameraJson {
            index: match &l.index {
                CameraIndex::Index(i) => IndexJson::Number(*i),
                CameraIndex::String(s) => IndexJson::Name(s),
            },
            name: &l.name,
            description: &l.description,
            formats: l
                .formats
                .iter()
                .map(|f| FormatJson {
                    format: f.format.to_string(),
                    pixel_format: carried(f.format).map(|p| p.name()),
                    sizes: f
                        .sizes
                        .iter()
                        .map(|(width, height, rates)| SizeJson {
                            width: *width,
                            height: *height,
                            rates,
                        })
                        .collect(),
                })
                .collect(),
            error: l.error.as_deref(),
        }
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
        let mut slots = Slots::new(Rational {
            num: self.fps.into(),
            den: 1,
        });
        let mut sent = 0u64;
        let mut short = 0u64;
        let raw_layout = self.raw_layout();
        while !node.stop_requested() {
            let data = self
                .camera
                .frame_raw()
                .with_context(|| format!("reading camera `{}`", self.name))?;
            let capture_ns = clock::now_ns();
            let (pts, _) = slots.place(capture_ns);
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
    fn listing_json_shape() {
        let list = [
            Listing {
                index: CameraIndex::Index(0),
                name: "Cam \"HD\"".into(),
                description: "Video4Linux Device @ /dev/video0".into(),
                formats: vec![
                    FormatListing {
                        format: FrameFormat::YUYV,
                        sizes: vec![(1280, 720, vec![10]), (640, 480, vec![30, 15])],
                    },
                    FormatListing {
                        format: FrameFormat::RAWBGR,
                        sizes: vec![],
                    },
                ],
                error: None,
            },
            Listing {
                index: CameraIndex::String("usb\\1".into()),
                name: "Busy\tcam".into(),
                description: String::new(),
                formats: vec![],
                error: Some("Device busy\u{1}".into()),
            },
        ];
        assert_eq!(
            listing_json(&list),
            concat!(
                r#"[{"index":0,"name":"Cam \"HD\"","description":"Video4Linux Device @ /dev/video0","#,
                r#""formats":[{"format":"YUYV","pixel_format":"yuyv422","sizes":["#,
                r#"{"width":1280,"height":720,"rates":[10]},{"width":640,"height":480,"rates":[30,15]}]},"#,
                r#"{"format":"RAWBGR","pixel_format":null,"sizes":[]}],"error":null},"#,
                r#"{"index":"usb\\1","name":"Busy\tcam","description":"","formats":[],"#,
                r#""error":"Device busy\u0001"}]"#
            )
        );
        assert_eq!(listing_json(&[]), "[]");
    }

    #[test]
    fn listing_matches_the_query() {
        // Every listed camera comes from the query (on a machine without
        // cameras both are empty).
        let (cameras, _) = cameras();
        for l in list().unwrap() {
            assert!(cameras.iter().any(|c| *c.index() == l.index), "{l:?}");
        }
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
