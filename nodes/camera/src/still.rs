//! A still image (PNG, JPEG, ... one picture) as a source: shown as a
//! continuous video at the camera's frame rate for as long as the recording
//! runs, like OBS's image source or `ffmpeg -loop 1`. Replayed as a file,
//! its one frame would make a video track of one picture, which the
//! encoder and the mux cannot make a stream of.

use anyhow::{anyhow, bail, Context, Result};
use ffmpeg_next as ff;
use node_api::{Node, PixelFormat, TimeBase};
use node_catalog::Rational;
use node_media::video::{from_pixel, packed_frame, Planes, PlanesMut, Scaler};

use crate::capture::{Capture, Pacer};
use crate::pattern::frame_offset_ns;

pub struct StillCapture {
    path: String,
    format: PixelFormat,
    width: u32,
    height: u32,
    /// The picture, packed as every frame carries it.
    picture: Vec<u8>,
    fps: Rational,
    pacer: Pacer,
    duration_ns: Option<u64>,
}

/// Whether `path` is a single picture: a local file that an image demuxer
/// (`image2`, or a `*_pipe` one FFmpeg picks by probing) reads as exactly
/// one video packet. URLs are streams, not probed twice.
pub fn is_still_image(path: &str) -> bool {
    if path.contains("://") {
        return false;
    }
    let Ok(mut input) = ff::format::input(&path) else {
        return false;
    };
    let name = input.format().name().to_string();
    if name != "image2" && !name.ends_with("_pipe") {
        return false;
    }
    let Some(stream) = input.streams().best(ff::media::Type::Video) else {
        return false;
    };
    let index = stream.index();
    let packets = input
        .packets()
        .filter(|(s, _)| s.index() == index)
        .take(2)
        .count();
    packets == 1
}

impl StillCapture {
    /// Decodes the picture of `path`; frames then go out at `fps` (paced
    /// when `realtime`, from `epoch_ns` like the other sources of the run)
    /// until the graph stops or `duration_ns` of video was sent.
    pub fn open(
        path: &str,
        fps: Rational,
        realtime: bool,
        epoch_ns: u64,
        duration_ns: Option<u64>,
    ) -> Result<StillCapture> {
        let picture = decode_picture(path)?;
        let format = from_pixel(picture.format()).unwrap_or(PixelFormat::Yuv420p);
        let (width, height) = (picture.width(), picture.height());
        let layout = format.packed_layout(width, height);
        let header = packed_frame(format, width, height, 0, TimeBase::new(1, 1), 0);
        let mut packed = vec![0u8; layout.size];
        {
            let src = Planes::from_frame(&picture);
            let mut dst = PlanesMut::from_buf(&header, &mut packed)?;
            if src.pixel == dst.pixel {
                dst.copy_from(&src)?;
            } else {
                Scaler::bilinear()
                    .scale(&src, &mut dst)
                    .with_context(|| format!("`{path}`: converting to yuv420p"))?;
            }
        }
        tracing::info!(
            "`{path}`: a still image, {width}x{height} {}, shown at {} fps",
            format.name(),
            fps.as_f64()
        );
        Ok(StillCapture {
            path: path.to_string(),
            format,
            width,
            height,
            picture: packed,
            fps,
            pacer: match epoch_ns {
                0 => Pacer::new(realtime),
                epoch => Pacer::starting_at(realtime, epoch),
            },
            duration_ns,
        })
    }
}

/// The one picture of an image file.
fn decode_picture(path: &str) -> Result<ff::frame::Video> {
    let mut input = ff::format::input(&path).map_err(|e| anyhow!("cannot open `{path}`: {e}"))?;
    let stream = input
        .streams()
        .best(ff::media::Type::Video)
        .ok_or_else(|| anyhow!("`{path}` has no picture"))?;
    let index = stream.index();
    let mut decoder = ff::codec::Context::from_parameters(stream.parameters())
        .and_then(|c| c.decoder().video())
        .map_err(|e| anyhow!("`{path}`: cannot open the image decoder: {e}"))?;
    for (s, packet) in input.packets() {
        if s.index() == index {
            decoder
                .send_packet(&packet)
                .map_err(|e| anyhow!("`{path}`: cannot decode the picture: {e}"))?;
        }
    }
    decoder.send_eof().map_err(|e| anyhow!("`{path}`: {e}"))?;
    let mut frame = ff::frame::Video::empty();
    if decoder.receive_frame(&mut frame).is_err() {
        bail!("`{path}`: no picture could be decoded");
    }
    Ok(frame)
}

impl Capture for StillCapture {
    fn unpaced(&self) -> bool {
        !self.pacer.realtime()
    }

    fn max_frame_bytes(&self) -> usize {
        self.picture.len()
    }

    fn run(&mut self, node: &mut Node) -> Result<u64> {
        let time_base = TimeBase::new(self.fps.den as i32, self.fps.num as i32);
        let mut sent = 0u64;
        while !node.stop_requested() {
            let at_ns = frame_offset_ns(sent, self.fps);
            if self.duration_ns.is_some_and(|d| at_ns >= d) {
                break;
            }
            let capture_ns = self.pacer.wait(at_ns, || node.stop_requested());
            if node.stop_requested() {
                break;
            }
            let mut buf = node.alloc("video", self.picture.len())?;
            buf.copy_from_slice(&self.picture);
            let frame = packed_frame(
                self.format,
                self.width,
                self.height,
                sent as i64,
                time_base,
                capture_ns,
            );
            node.send_video("video", frame, buf)?;
            sent += 1;
        }
        tracing::info!("`{}`: the still image sent as {sent} frames", self.path);
        Ok(sent)
    }
}
