//! `overlay-filter`: an example custom filter node, not one of the built-in
//! kinds. A graph uses it with `path:` (see examples/graphs/overlay.yaml):
//!
//! ```yaml
//! - id: overlay
//!   path: ../../target/release/overlay-filter
//!   inputs: { video: video-normalize/video }
//!   outputs: [video: raw-video]
//!   params: { corner: bottom-left, scale: 2 }
//! ```
//!
//! Every raw video frame on input `video` goes out on output `video` with two
//! lines burned into a black plate: its time on the timeline (`HH:MM:SS.mmm`,
//! from its pts) and its number (counted from 0), and a third with `text`
//! when it is set. A sender's frame is read
//! in place from its shared memory, but not changed there (other nodes may
//! read it too): it is copied once into a buffer of this node's own pool, and
//! the text is drawn into that copy.
//!
//! Params, declared with the ports in [`SCHEMA`] (`overlay-filter
//! --describe` prints it, and `runtime check` checks this node's params and
//! edges against it like a built-in's) and read into [`Settings`]; each
//! default is a `DEFAULT_*` constant both use:
//! - `corner`: `top-left`, `top-right`, `bottom-left` (default) or `bottom-right`
//! - `scale`: font pixel size, 1..=16 (default 2)
//! - `margin`: pixels from the frame's edges, 0..=256 (default 8)
//! - `text`: a line of text under the number (letters, digits, space and
//!   `:.-!?,'/`; at most 64 characters shown), absent by default
//!
//! Every param is live: changed while running (the control API's
//! `POST /api/params`, `runtime ctl param overlay text "Take 2"`), it
//! applies from the next frame.
//! Metric: `frames`.

use std::io::Write as _;

use anyhow::{bail, Context, Result};
use node_api::{
    Event, Header, Node, NodeSchema, ParamSpec, Params, Payload, PortSpec, PortType, Problem,
    Reader, VideoFrame,
};
use node_media::canvas::{Canvas, Rgb};
use node_media::font;

fn main() {
    node_api::run_main(run);
}

node_api::choice! {
    /// The corner the plate goes in.
    enum Corner {
        TopLeft = "top-left",
        TopRight = "top-right",
        BottomLeft = "bottom-left",
        BottomRight = "bottom-right",
    }
}

const DEFAULT_CORNER: Corner = Corner::BottomLeft;
const DEFAULT_SCALE: i64 = 2;
const DEFAULT_MARGIN: i64 = 8;

/// The params: each with its type, range or choices, and default.
const PARAMS: &[ParamSpec] = &[
    ParamSpec::choice(
        "corner",
        Corner::NAMES,
        Some(DEFAULT_CORNER.name()),
        "the corner the plate goes in",
    )
    .live(),
    ParamSpec::int("scale", (1, 16), Some(DEFAULT_SCALE), "font pixel size").live(),
    ParamSpec::int(
        "margin",
        (0, 256),
        Some(DEFAULT_MARGIN),
        "pixels between the plate and the frame's edges",
    )
    .live(),
    ParamSpec::text(
        "text",
        None,
        "a line of text under the number (letters, digits, space, `:.-!?,'/`; 64 characters shown)",
    )
    .live(),
];

/// The longest `text` line drawn.
const MAX_TEXT: usize = 64;

/// What this node takes, sends and accepts as params.
static SCHEMA: NodeSchema = NodeSchema::new(
    "overlay-filter",
    "Burns each frame's time and number into a black plate on raw video",
)
.with_inputs(&[PortSpec::new("video", PortType::RawVideo, "raw video")])
.with_outputs(&[PortSpec::new(
    "video",
    PortType::RawVideo,
    "the video with the plate",
)])
.with_params(PARAMS);

/// The params, typed: where the plate goes and how large its text is.
#[derive(Debug, Clone, Copy)]
struct Settings {
    corner: Corner,
    scale: u32,
    margin: u32,
}

impl Settings {
    /// From params already checked against [`SCHEMA`]; the [`Reader`] checks
    /// each against its spec again all the same (a wrong value can never
    /// draw out of place) and takes the defaults for absent ones.
    fn from_params(p: &Params) -> Result<Settings, Problem> {
        let r = Reader::new(PARAMS, p);
        Ok(Settings {
            corner: r.choice("corner", DEFAULT_CORNER)?,
            scale: r.int("scale", DEFAULT_SCALE)? as u32,
            margin: r.int("margin", DEFAULT_MARGIN)? as u32,
        })
    }

    /// The plate's rectangle for `chars` characters on `lines` lines in a
    /// `width`×`height` frame: (x, y, w, h), clipped by the canvas if larger.
    fn plate(&self, chars: usize, lines: u32, width: u32, height: u32) -> (u32, u32, u32, u32) {
        let s = self.scale;
        let w = font::text_width(chars, s) + 2 * s;
        let h = lines * (font::GLYPH_H + 2) * s;
        let right = matches!(self.corner, Corner::TopRight | Corner::BottomRight);
        let bottom = matches!(self.corner, Corner::BottomLeft | Corner::BottomRight);
        let x = if right {
            width.saturating_sub(self.margin + w)
        } else {
            self.margin
        };
        let y = if bottom {
            height.saturating_sub(self.margin + h)
        } else {
            self.margin
        };
        (x, y, w, h)
    }
}

/// The overlay's state: where to draw, and the text buffers reused for every
/// frame (nothing is allocated per frame).
struct Overlay {
    settings: Settings,
    frames: u64,
    clock: Vec<u8>,
    counter: Vec<u8>,
    /// The `text` line; empty: none.
    text: Vec<u8>,
}

impl Overlay {
    /// Sends `frame` on `video` with the plate drawn over a copy of it.
    fn on_frame(&mut self, node: &mut Node, frame: VideoFrame, payload: &Payload) -> Result<()> {
        let data = payload.as_slice();
        if data.len() < frame.layout.size {
            bail!(
                "a {}x{} {} frame of {} bytes, expected {}",
                frame.width,
                frame.height,
                frame.format.name(),
                data.len(),
                frame.layout.size
            );
        }
        let mut buf = node.alloc("video", frame.layout.size)?;
        buf.copy_from_slice(&data[..frame.layout.size]);

        let ms = (frame.time_base.seconds(frame.pts) * 1000.0)
            .round()
            .max(0.0) as u64;
        self.clock.clear();
        write!(
            self.clock,
            "{:02}:{:02}:{:02}.{:03}",
            ms / 3_600_000,
            ms / 60_000 % 60,
            ms / 1000 % 60,
            ms % 1000
        )?;
        self.counter.clear();
        write!(self.counter, "{:06}", self.frames)?;

        let p = self.settings;
        let chars = self
            .clock
            .len()
            .max(self.counter.len())
            .max(self.text.len());
        let lines = if self.text.is_empty() { 2 } else { 3 };
        let (x, y, w, h) = p.plate(chars, lines, frame.width, frame.height);
        let mut canvas = Canvas::new(
            &mut buf,
            frame.format,
            frame.width,
            frame.height,
            frame.layout,
        );
        canvas.fill_rect(x, y, w, h, Rgb::BLACK);
        let line = (font::GLYPH_H + 2) * p.scale;
        let (tx, ty) = (x + p.scale, y + p.scale);
        font::draw_text(&mut canvas, &self.clock, tx, ty, p.scale, Rgb::WHITE);
        font::draw_text(
            &mut canvas,
            &self.counter,
            tx,
            ty + line,
            p.scale,
            Rgb::WHITE,
        );
        if !self.text.is_empty() {
            font::draw_text(
                &mut canvas,
                &self.text,
                tx,
                ty + 2 * line,
                p.scale,
                Rgb::WHITE,
            );
        }

        node.send_video("video", frame, buf)?;
        self.frames += 1;
        node.metrics().set("frames", self.frames as f64);
        Ok(())
    }
}

/// The `text` param as drawn: at most [`MAX_TEXT`] characters.
fn text_line(params: &Params) -> Vec<u8> {
    let text = params.0.get("text").and_then(|t| t.as_str()).unwrap_or("");
    text.bytes().take(MAX_TEXT).collect()
}

fn run() -> Result<()> {
    // `overlay-filter --describe` prints SCHEMA and exits here; otherwise
    // the params are checked against it, defaults filled in.
    let mut node = Node::init_with_schema(&SCHEMA)?;
    let settings = Settings::from_params(node.params()).context("overlay-filter")?;
    let mut overlay = Overlay {
        settings,
        frames: 0,
        clock: Vec::with_capacity(16),
        counter: Vec::with_capacity(16),
        text: text_line(node.params()),
    };
    tracing::info!("overlay: {settings:?}");
    while let Some(event) = node.next_event()? {
        match event {
            Event::Input { input, message } => match message.header {
                Header::Video(frame) => overlay.on_frame(&mut node, frame, &message.payload)?,
                Header::EndOfStream | Header::Stats(_) => {}
                Header::Audio(_) | Header::Packet(_) => {
                    bail!("input `{input}` does not carry raw video: connect a raw video output")
                }
            },
            // Keep going until the input closes (next_event then returns None).
            Event::InputClosed { .. } | Event::Stop => {}
            // The params already follow the update (checked against SCHEMA).
            Event::ParamUpdate { name, value, .. } => {
                overlay.settings =
                    Settings::from_params(node.params()).context("overlay-filter")?;
                overlay.text = text_line(node.params());
                tracing::info!("{name} = {value}: {:?}", overlay.settings);
            }
        }
    }
    tracing::info!("overlay: {} frames", overlay.frames);
    node.finish()
}
