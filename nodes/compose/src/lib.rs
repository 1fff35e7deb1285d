//! `mediagraph-nodes compose`: composes several cameras into one program feed, a grid or
//! picture-in-picture, for one more track in the recording.
//!
//! Inputs are raw video on one timeline (the outputs of sync), laid out in the
//! graph's order. Frames are paired by time (see [`pairing`]); each output
//! frame is painted black, then every input's current picture is scaled into
//! its place with swscale straight into the shared-memory output buffer. The
//! buffers come from the output's pool and the scalers and queues are reused,
//! so nothing is allocated per frame. Output pts follow the first input's
//! frame grid. Metrics: `composed`, `stale_tiles` (tiles that repeated an
//! input's previous frame), `forced` (frames made without waiting for a late
//! input), `late_dropped`, `superseded`.

mod layout;
mod pairing;

use anyhow::{anyhow, bail, Result};
use node_api::{metrics, Event, Header, Node, Payload, PixelFormat, TimeBase, VideoFrame};
use node_media::video::{packed_frame, Planes, PlanesMut, Scaler};

use layout::Layout;
use node_catalog::kinds::compose as kind;
use node_media::geometry::Rect;
use pairing::Pairing;

/// Entry point, with the arguments after the kind (none are taken).
pub fn main(_args: &[String]) {
    node_api::run_main(run);
}

const NS_PER_S: i128 = 1_000_000_000;

fn run() -> Result<()> {
    node_media::init()?;
    let mut node = Node::init()?;
    let settings = Settings::from_node(&node)?;
    let inputs = node.input_names();
    let areas = layout::areas(
        settings.layout,
        inputs.len(),
        settings.width,
        settings.height,
    )?;
    let frame_bytes = settings
        .format
        .packed_layout(settings.width, settings.height)
        .size;
    node.reserve("video", frame_bytes)?;
    tracing::info!(
        "composing {} ({}) into {}x{} {}",
        inputs.join(", "),
        describe(settings.layout),
        settings.width,
        settings.height,
        settings.format.name()
    );
    let mut composer = Composer::new(settings, inputs, areas);
    while let Some(event) = node.next_event()? {
        match event {
            Event::Input { input, message } => {
                match message.header {
                    Header::Video(frame) => {
                        composer.on_frame(&mut node, &input, frame, message.payload)?
                    }
                    Header::EndOfStream | Header::Stats(_) => {}
                    Header::Audio(_) | Header::Packet(_) => {
                        bail!("input `{input}` does not carry raw video: compose takes raw video frames")
                    }
                }
            }
            Event::InputClosed { input } => {
                let i = composer.index(&input)?;
                composer.pairing.close(i);
                composer.drain(&mut node)?;
            }
            // The layout params: the node's params already follow the update.
            Event::ParamUpdate { name, .. } => match relayout(&node, &mut composer) {
                Ok(layout) => tracing::info!("{name} changed: now {layout}"),
                Err(e) => tracing::warn!("{name} not applied: {e:#}"),
            },
            Event::Stop => {}
        }
    }
    composer.pairing.close_all();
    composer.drain(&mut node)?;
    composer.publish(&node);
    tracing::info!(
        "composed {} frames ({} tiles repeated a previous frame, {} made without waiting, {} late frames dropped)",
        composer.composed,
        composer.stale_tiles,
        composer.forced,
        composer.late_dropped
    );
    node.finish()
}

/// Lays the tiles out anew from the node's params (a live layout change);
/// the next frame composed uses them. Returns the new layout's description.
fn relayout(node: &Node, composer: &mut Composer) -> Result<String> {
    let settings = Settings::from_node(node)?;
    let inputs = composer.inputs.len();
    let areas = layout::areas(settings.layout, inputs, settings.width, settings.height)?;
    let described = describe(settings.layout);
    composer.settings = settings;
    composer.areas = areas;
    Ok(described)
}

struct Settings {
    layout: Layout,
    width: u32,
    height: u32,
    format: PixelFormat,
    max_held: usize,
}

impl Settings {
    fn from_node(node: &Node) -> Result<Settings> {
        let s = kind::Settings::from_params(node.params())?;
        let layout = match s.layout {
            kind::Layout::Grid => Layout::Grid { columns: s.columns },
            kind::Layout::Pip => Layout::Pip {
                size: s.pip_size,
                corner: s.pip_corner,
                margin: s.pip_margin,
            },
        };
        Ok(Settings {
            layout,
            width: s.width,
            height: s.height,
            format: s.pixel_format.into(),
            max_held: s.max_held.max(1) as usize,
        })
    }
}

fn describe(layout: Layout) -> String {
    match layout {
        Layout::Grid { columns: 0 } => "grid".into(),
        Layout::Grid { columns } => format!("grid of {columns} columns"),
        Layout::Pip { size, corner, .. } => {
            format!("picture-in-picture, insets {size} wide from {corner:?}")
        }
    }
}

/// A frame's time on the shared timeline, ns.
fn time_ns(pts: i64, tb: TimeBase) -> i128 {
    pts as i128 * tb.num as i128 * NS_PER_S / tb.den.max(1) as i128
}

/// `t` ns in ticks of `tb`, rounded to the nearest.
fn pts_at(t: i128, tb: TimeBase) -> i64 {
    let unit = tb.num.max(1) as i128 * NS_PER_S;
    let scaled = t * tb.den as i128;
    ((scaled + unit / 2).div_euclid(unit)) as i64
}

struct Composer {
    settings: Settings,
    inputs: Vec<String>,
    areas: Vec<Rect>,
    scalers: Vec<Scaler>,
    pairing: Pairing<(VideoFrame, Payload)>,
    /// Output time base: the first input's, once its first frame is seen.
    time_base: Option<TimeBase>,
    last_pts: Option<i64>,
    composed: u64,
    stale_tiles: u64,
    forced: u64,
    late_dropped: u64,
    same_slot: u64,
}

impl Composer {
    fn new(settings: Settings, inputs: Vec<String>, areas: Vec<Rect>) -> Composer {
        let n = inputs.len();
        Composer {
            settings,
            inputs,
            areas,
            scalers: (0..n).map(|_| Scaler::bilinear()).collect(),
            pairing: Pairing::new(n),
            time_base: None,
            last_pts: None,
            composed: 0,
            stale_tiles: 0,
            forced: 0,
            late_dropped: 0,
            same_slot: 0,
        }
    }

    fn index(&self, input: &str) -> Result<usize> {
        self.inputs
            .iter()
            .position(|i| i == input)
            .ok_or_else(|| anyhow!("frame on unknown input `{input}`"))
    }

    fn on_frame(
        &mut self,
        node: &mut Node,
        input: &str,
        frame: VideoFrame,
        payload: Payload,
    ) -> Result<()> {
        let i = self.index(input)?;
        if i == 0 && self.time_base.is_none() {
            self.time_base = Some(frame.time_base);
        }
        let t = time_ns(frame.pts, frame.time_base);
        if !self.pairing.push(i, t, (frame, payload)) {
            self.late_dropped += 1;
            tracing::debug!("`{input}`: a frame older than the last composed one dropped");
        }
        self.drain(node)
    }

    /// Composes every output frame that can be decided now.
    fn drain(&mut self, node: &mut Node) -> Result<()> {
        // A no_drop (replayed) stream must not lose frames: wait for every
        // input however long; live, a stalled camera must not stall the feed.
        let max_held = (!node.is_no_drop()).then_some(self.settings.max_held);
        while let Some(step) = self.pairing.next(max_held) {
            if step.forced {
                self.forced += 1;
            }
            self.compose(node, step.t)?;
        }
        self.publish(node);
        Ok(())
    }

    fn compose(&mut self, node: &mut Node, t: i128) -> Result<()> {
        let time_base = match self.time_base {
            Some(tb) => tb,
            // The first input has not sent a frame: take another's grid.
            None => *self
                .time_base
                .get_or_insert(self.first_time_base().unwrap_or(TimeBase::new(1, 30))),
        };
        let pts = pts_at(t, time_base);
        if self.last_pts.is_some_and(|last| pts <= last) {
            // A faster input's frame between two of the output's slots.
            self.same_slot += 1;
            return Ok(());
        }
        let s = &self.settings;
        let header = packed_frame(s.format, s.width, s.height, pts, time_base, 0);
        let mut buf = node.alloc("video", header.layout.size)?;
        let mut capture_ns = 0;
        {
            let mut out = PlanesMut::from_buf(&header, &mut buf)?;
            out.fill_black()?;
            for i in 0..self.pairing.inputs() {
                let Some(((frame, payload), fresh)) = self.pairing.current(i) else {
                    continue; // not begun: its tile stays black
                };
                if !fresh {
                    self.stale_tiles += 1;
                }
                capture_ns = capture_ns.max(frame.capture_ns);
                let data = payload.as_slice();
                let src = Planes::from_payload(frame, &data)?;
                let area = self.areas[i];
                if i > 0 && matches!(s.layout, Layout::Pip { .. }) {
                    // An inset covers the main picture, bars included.
                    out.sub_rect(area.x, area.y, area.w, area.h)?.fill_black()?;
                }
                let r = layout::fit(area, frame.width, frame.height);
                let mut dst = out.sub_rect(r.x, r.y, r.w, r.h)?;
                self.scalers[i].scale(&src, &mut dst)?;
            }
        }
        let header = VideoFrame {
            capture_ns,
            ..header
        };
        node.send_video("video", header, buf)?;
        self.last_pts = Some(pts);
        self.composed += 1;
        Ok(())
    }

    fn first_time_base(&self) -> Option<TimeBase> {
        (0..self.pairing.inputs())
            .find_map(|i| self.pairing.current(i).map(|((f, _), _)| f.time_base))
    }

    fn publish(&self, node: &Node) {
        let m = node.metrics();
        m.set(metrics::COMPOSED, self.composed as f64);
        m.set(metrics::STALE_TILES, self.stale_tiles as f64);
        m.set(metrics::FORCED, self.forced as f64);
        m.set(metrics::LATE_DROPPED, self.late_dropped as f64);
        m.set(
            metrics::SUPERSEDED,
            (self.pairing.superseded + self.same_slot) as f64,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip_through_the_output_grid() {
        let tb = TimeBase::new(1, 30);
        for pts in [0, 1, 29, 30, 12345] {
            assert_eq!(pts_at(time_ns(pts, tb), tb), pts);
        }
        let ntsc = TimeBase::new(1001, 30000);
        assert_eq!(pts_at(time_ns(7, ntsc), ntsc), 7);
        // A 60 fps frame between two 30 fps slots rounds to the nearest.
        assert_eq!(pts_at(time_ns(3, TimeBase::new(1, 60)), tb), 2);
    }
}
