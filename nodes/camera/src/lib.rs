//! `mediagraph-nodes camera`: the video source. A camera (nokhwa), a file or URL (FFmpeg),
//! or a deterministic test pattern, on output `video`.
//!
//! Raw frames leave with pts = frame index and time_base = 1/fps (test pattern,
//! cameras, a still image repeated) or the stream's own timestamps (files),
//! and capture_ns on the capture clock.
//!
//! `mediagraph-nodes camera --list-devices` prints the cameras as a JSON array and exits
//! (used by `runtime devices`; no graph environment needed).
//!
//! `mediagraph-nodes screen` is the screen (X11, FFmpeg's x11grab) as the
//! same kind of source: it shares the capture loop contract, the live
//! sources' pts grid and the FFmpeg input code with the camera, so it lives
//! here rather than in a crate of its own.

mod capture;
mod device;
mod direct;
mod media;
/// The test pattern, for benches that draw the same picture as `source: test`.
pub mod pattern;
mod screen;
mod still;
mod testsrc;

use anyhow::Result;
use node_api::{Node, NodeConfig, Params, PixelFormat};
use node_catalog::kinds::camera::{self as kind, Pattern, Source};
use node_catalog::Rational;

use crate::capture::Capture;
use crate::pattern::{PatternConfig, TestPattern};

/// Entry point, with the arguments after the kind.
pub fn main(args: &[String]) {
    // Before anything reads the runtime's environment, which a listing lacks.
    if args.iter().any(|a| a == "--list-devices") {
        node_api::run_main(list_devices);
    } else {
        node_api::run_main(run);
    }
}

/// Entry point of the `screen` kind, with the arguments after the kind.
pub fn screen_main(args: &[String]) {
    if args.iter().any(|a| a == "--list-devices") {
        node_api::run_main(|| {
            node_api::logging::init();
            let list = screen::list();
            println!("{}", serde_json::to_string(&list)?);
            Ok(())
        });
    } else {
        node_api::run_main(run_screen);
    }
}

fn run_screen() -> Result<()> {
    node_api::logging::init();
    let config = NodeConfig::from_env()?;
    node_media::init()?;
    let settings = node_catalog::kinds::screen::Settings::from_params(&config.params)?;
    // Before joining the graph: a display gone since the check fails the
    // run at once, before anything waits on this node.
    let capture: Box<dyn Capture> = Box::new(screen::ScreenCapture::open(&settings)?);
    run_capture(config, capture)
}

/// What this node runs with: its params (typed by the catalog) and the run's epoch.
struct Settings {
    source: Source,
    realtime: bool,
    width: u32,
    height: u32,
    fps: Rational,
    pixel_format: PixelFormat,
    clapper: bool,
    noise: u32,
    looping: bool,
    device: node_api::clock::SimulatedDevice,
    duration_ns: Option<u64>,
    epoch_ns: u64,
}

impl Settings {
    fn from_params(p: &Params, epoch_ns: u64) -> Result<Settings> {
        let s = kind::Settings::from_params(p)?;
        Ok(Settings {
            realtime: s.realtime,
            width: s.width,
            height: s.height,
            fps: s.fps,
            pixel_format: s.pixel_format.into(),
            clapper: s.pattern == Pattern::Clapper,
            noise: s.noise,
            looping: s.looping,
            device: node_api::clock::SimulatedDevice::new(&s.test_device),
            duration_ns: s.test_device.duration.map(|d| (d.max(0.0) * 1e9) as u64),
            source: s.source,
            epoch_ns,
        })
    }

    fn test_pattern(&self) -> Result<Box<dyn Capture>> {
        let pattern = TestPattern::new(PatternConfig {
            width: self.width,
            height: self.height,
            format: self.pixel_format,
            fps: self.fps,
            clapper: self.clapper,
            noise: self.noise,
        })?;
        Ok(Box::new(testsrc::PatternCapture::new(
            pattern,
            self.realtime,
            self.epoch_ns,
            self.device.clone(),
            self.duration_ns,
        )))
    }

    fn open_camera(&self, info: &nokhwa::utils::CameraInfo) -> Result<Box<dyn Capture>> {
        let cam = device::DeviceCapture::open(
            info,
            self.width,
            self.height,
            self.fps.as_f64(),
            self.pixel_format,
        )?;
        Ok(Box::new(cam))
    }
}

fn list_devices() -> Result<()> {
    node_api::logging::init();
    println!("{}", device::listing_json(&device::list()?));
    Ok(())
}

fn run() -> Result<()> {
    node_api::logging::init();
    let config = NodeConfig::from_env()?;
    node_media::init()?;
    let settings = Settings::from_params(&config.params, config.epoch_ns)?;

    // Open the source before joining the graph, so a missing device or file
    // fails the run at once, before anything waits on this node.
    let capture: Box<dyn Capture> = match &settings.source {
        Source::Test => settings.test_pattern()?,
        Source::Auto => match device::cameras() {
            (list, _) if !list.is_empty() => settings.open_camera(&list[0])?,
            (_, error) => {
                if let Some(e) = error {
                    tracing::debug!("camera query failed: {e}");
                }
                tracing::warn!("no camera found; using the test pattern");
                settings.test_pattern()?
            }
        },
        Source::Device(spec) => settings.open_camera(&device::find(spec)?)?,
        Source::Media(path) if still::is_still_image(path) => Box::new(still::StillCapture::open(
            path,
            settings.fps,
            settings.realtime,
            settings.epoch_ns,
            settings.duration_ns,
        )?),
        Source::Media(path) => Box::new(media::MediaCapture::open(
            path,
            settings.realtime,
            settings.looping,
            settings.epoch_ns,
        )?),
    };
    run_capture(config, capture)
}

/// Joins the graph and runs `capture` until the run stops or it ends.
fn run_capture(config: NodeConfig, mut capture: Box<dyn Capture>) -> Result<()> {
    let mut node = Node::from_config(config)?;
    // Replaying faster than real time: every queue downstream must block
    // rather than drop, or the file's frames would be lost.
    node.set_no_drop(capture.unpaced());
    node.reserve("video", capture.max_frame_bytes())?;
    if node.wait_for_start()? {
        capture.run(&mut node)?;
    }
    // A decoder keeps pictures in the pool; finish waits for the pool.
    drop(capture);
    node.finish()
}
