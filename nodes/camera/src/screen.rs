//! The screen through FFmpeg's x11grab (libavdevice): every frame the X
//! server gives, in its own format (bgr0 on a 24-bit screen, carried as
//! bgra), copied once into shared memory, stamped like a camera's frames.
//!
//! x11grab paces itself at the requested rate, one grab per frame period
//! (catching up in a burst when it fell behind), so each grab takes the next
//! slot of the 1/fps grid ([`Slots::claim`]) unless it came more than
//! [`LATE_SLOTS`] periods late: then the slots it passed are gaps, counted
//! as `dropped`, that video-normalize fills.

use std::ffi::CString;

use anyhow::{anyhow, bail, Result};
use ffmpeg_next as ff;
use node_api::{clock, metrics, Node, PixelFormat, PlaneLayout, TimeBase, VideoFrame};
use node_catalog::kinds::screen::{Region, Settings};
use node_catalog::{x11, Rational};

use crate::capture::{Capture, Slots};

/// How many frame periods late a grab may come and still take the next
/// slot: later, the slots it passed are counted as dropped.
const LATE_SLOTS: i64 = 3;

pub struct ScreenCapture {
    /// Opened once before the graph starts (so a display that refuses the
    /// grab fails the run at once) and again when it starts: x11grab paces
    /// from its opening, and would otherwise burst the grabs it owes for
    /// the wait.
    input: Option<ff::format::context::Input>,
    /// `:0.0`: the display and screen grabbed.
    display: String,
    region: Region,
    format: PixelFormat,
    fps: Rational,
    cursor: bool,
    packet: ff::Packet,
}

impl ScreenCapture {
    /// Opens the display (the param, else `$DISPLAY`) and checks the region
    /// against its screen: the same checks, and messages, as `runtime
    /// check`'s, for a node started some other way.
    pub fn open(s: &Settings) -> Result<ScreenCapture> {
        let (mut screens, _held) = x11::connect(&s.display()?)?;
        let screen = screens.remove(0);
        let region = s.region(screen.width, screen.height)?;
        let input = open_x11grab(&screen.display, region, s.fps, s.cursor)?;
        let stream = input
            .streams()
            .best(ff::media::Type::Video)
            .ok_or_else(|| anyhow!("x11grab on `{}` gave no video stream", screen.display))?;
        let pixel = ff::codec::Context::from_parameters(stream.parameters())
            .and_then(|c| c.decoder().video())
            .map_err(|e| anyhow!("x11grab on `{}`: {e}", screen.display))?
            .format();
        let format = carried(pixel).ok_or_else(|| {
            anyhow!(
                "screen `{}` (depth {}) gives {pixel:?} pixels, which nodes cannot carry: \
                 use a 24- or 32-bit screen",
                screen.display,
                screen.depth
            )
        })?;
        tracing::info!(
            "screen `{}` ({}x{}): grabbing {}x{} at +{}+{}, {} at {}/{} fps, cursor {}",
            screen.display,
            screen.width,
            screen.height,
            region.width,
            region.height,
            region.x,
            region.y,
            format.name(),
            s.fps.num,
            s.fps.den,
            if s.cursor { "drawn" } else { "hidden" }
        );
        Ok(ScreenCapture {
            input: Some(input),
            display: screen.display,
            region,
            format,
            fps: s.fps,
            cursor: s.cursor,
            packet: ff::Packet::empty(),
        })
    }

    fn layout(&self) -> PlaneLayout {
        self.format
            .packed_layout(self.region.width, self.region.height)
    }

    /// Opens the grab again, now: its pacing starts here. The old one
    /// closes after, so the server never sees all our clients gone.
    fn reopen(&mut self) -> Result<()> {
        let grab = open_x11grab(&self.display, self.region, self.fps, self.cursor)?;
        self.input = Some(grab);
        Ok(())
    }

    /// Reads the next grabbed picture into `self.packet`.
    fn read(&mut self) -> Result<()> {
        let input = self.input.as_mut().expect("opened");
        // SAFETY: the packet is ours; av_read_frame expects a blank one.
        unsafe { ff::ffi::av_packet_unref(ff::packet::Mut::as_mut_ptr(&mut self.packet)) };
        self.packet
            .read(input)
            .map_err(|e| anyhow!("grabbing screen `{}`: {e}", self.display))
    }
}

/// x11grab on `display`: `region` at `fps`, the pointer drawn or not.
fn open_x11grab(
    display: &str,
    region: Region,
    fps: Rational,
    cursor: bool,
) -> Result<ff::format::context::Input> {
    ff::device::register_all();
    let name = CString::new("x11grab").expect("no NUL");
    // SAFETY: a lookup in FFmpeg's static table of formats.
    let grab = unsafe { ff::ffi::av_find_input_format(name.as_ptr()) };
    if grab.is_null() {
        bail!("this FFmpeg has no x11grab input (libavdevice built without XCB)");
    }
    let mut options = ff::Dictionary::new();
    options.set("framerate", &format!("{}/{}", fps.num, fps.den));
    options.set("video_size", &format!("{}x{}", region.width, region.height));
    options.set("grab_x", &region.x.to_string());
    options.set("grab_y", &region.y.to_string());
    options.set("draw_mouse", if cursor { "1" } else { "0" });
    // x11grab says what it gives in its header; without these, opening it
    // reads up to 20 grabs (a small region at a low rate: over a second)
    // to guess the rate, then hands them out in one burst.
    options.set("probesize", "32");
    options.set("analyzeduration", "0");
    options.set("fpsprobesize", "0");
    // SAFETY: `grab` is a registered input format, alive for the process.
    let format = ff::Format::Input(unsafe { ff::format::format::Input::wrap(grab as *mut _) });
    match ff::format::open_with(display, &format, options) {
        Ok(ff::format::context::Context::Input(input)) => Ok(input),
        Ok(_) => unreachable!("an input format opens an input"),
        Err(e) => bail!("x11grab cannot open screen `{display}`: {e}"),
    }
}

/// When a grab stamped `pts` (microseconds) was made, on the capture
/// clock: the grabs FFmpeg read ahead while opening come out later in a
/// burst, and must keep their own times. x11grab stamps with the wall clock
/// or the monotonic one (by FFmpeg version): the one `pts` is close to.
fn grabbed_at(pts: Option<i64>) -> u64 {
    let now = clock::now_ns();
    let Some(pts) = pts else {
        return now;
    };
    // SAFETY: plain clock reads.
    let (wall, mono) = unsafe { (ff::ffi::av_gettime(), ff::ffi::av_gettime_relative()) };
    let age_us = [wall - pts, mono - pts]
        .into_iter()
        .min_by_key(|age| age.abs())
        .unwrap_or(0);
    // Seconds old at most: anything else is not a grab time.
    match age_us {
        0..=10_000_000 => now.saturating_sub(age_us as u64 * 1000),
        _ => now,
    }
}

/// The carried format of the pixels x11grab gives: the fourth byte of bgr0
/// is padding, which no node reads as alpha.
fn carried(pixel: ff::format::Pixel) -> Option<PixelFormat> {
    use ff::format::Pixel;
    Some(match pixel {
        Pixel::BGRZ | Pixel::BGRA => PixelFormat::Bgra,
        Pixel::RGBZ | Pixel::RGBA => PixelFormat::Rgba,
        Pixel::RGB24 => PixelFormat::Rgb24,
        _ => return None,
    })
}

impl Capture for ScreenCapture {
    fn max_frame_bytes(&self) -> usize {
        self.layout().size
    }

    fn run(&mut self, node: &mut Node) -> Result<u64> {
        let (w, h) = (self.region.width, self.region.height);
        let layout = self.layout();
        let time_base = TimeBase::new(self.fps.den as i32, self.fps.num as i32);
        let mut slots = Slots::new(self.fps);
        let (mut grabs, mut missed, mut late) = (0u64, 0u64, 0u64);
        node.metrics().set(metrics::DROPPED, 0.0);
        self.reopen()?;
        while !node.stop_requested() {
            self.read()?;
            // Two grabs in one slot (x11grab fell behind and caught up):
            // the later one is skipped, the slot has a frame.
            let Some((pts, gap)) = slots.claim(grabbed_at(self.packet.pts()), LATE_SLOTS) else {
                late += 1;
                continue;
            };
            // x11grab grabs on a grid of its own, its period in whole
            // microseconds: the slot's time is the grab's within its sleep's
            // jitter, and keeps `--duration` to exactly its frames.
            let capture_ns = slots.time_of(pts);
            let data = self.packet.data().unwrap_or_default();
            if data.len() < layout.size {
                bail!(
                    "screen `{}`: a grab of {} bytes, expected {} for {w}x{h} {}",
                    self.display,
                    data.len(),
                    layout.size,
                    self.format.name()
                );
            }
            if gap > 0 {
                missed += gap;
                node.metrics().add(metrics::DROPPED, gap as f64);
            }
            let mut buf = node.alloc("video", layout.size)?;
            buf.copy_from_slice(&data[..layout.size]);
            let frame = VideoFrame {
                format: self.format,
                width: w,
                height: h,
                layout,
                pts,
                time_base,
                duration: 1,
                capture_ns,
            };
            // Past `--duration` the node API drops it and ends the run.
            node.send_video("video", frame, buf)?;
            grabs += 1;
        }
        tracing::info!(
            "screen `{}`: {grabs} grabs sent, {missed} slots missed (dropped), {late} catch-up grabs skipped",
            self.display
        );
        Ok(grabs)
    }
}

/// One screen as `mediagraph-nodes screen --list-devices` reports it (the
/// shape `runtime devices` reads).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Listing {
    /// What `screen.display` takes: `:0.0`.
    pub display: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// Why it cannot be captured.
    pub error: Option<String>,
}

/// The screens of `$DISPLAY`; none without one. A display that cannot be
/// reached, or a Wayland session without Xwayland, is listed with why.
pub fn list() -> Vec<Listing> {
    let failed = |display: String, e: x11::DisplayError| Listing {
        display,
        width: None,
        height: None,
        error: Some(e.to_string()),
    };
    let display = match x11::resolve(None) {
        Ok(d) => d,
        Err(x11::DisplayError::NoDisplay) => return Vec::new(),
        Err(e @ x11::DisplayError::WaylandOnly(_)) => {
            let wayland = std::env::var(x11::WAYLAND_ENV).unwrap_or_default();
            return vec![failed(wayland, e)];
        }
        Err(e) => return vec![failed(String::new(), e)],
    };
    match x11::probe_all(&display) {
        Ok(screens) => screens
            .into_iter()
            .map(|s| Listing {
                display: s.display,
                width: Some(s.width),
                height: Some(s.height),
                error: None,
            })
            .collect(),
        Err(e) => vec![failed(display, e)],
    }
}
