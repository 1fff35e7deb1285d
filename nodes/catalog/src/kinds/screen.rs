//! `screen`: video capture of an X11 screen (FFmpeg's x11grab), all of it or
//! a region, as raw video like a camera's.

use super::common;
use super::{no_inputs_rule, no_value_rule, KindSpec, PortSpec};
use crate::params::{ParamSpec, Params};
use crate::read::Reader;
use crate::value::Rational;
use crate::x11::{self, DisplayError};
use crate::{PortType, Problem};

/// No `display` param: the machine's `$DISPLAY`.
pub const DEFAULT_DISPLAY: Option<&str> = None;
/// The region's top-left corner: the screen's.
pub const DEFAULT_X: u32 = 0;
pub const DEFAULT_Y: u32 = 0;
/// No `width`/`height`: to the screen's right and bottom edges.
pub const DEFAULT_WIDTH: Option<u32> = None;
pub const DEFAULT_HEIGHT: Option<u32> = None;
pub const DEFAULT_CURSOR: bool = true;
pub const DEFAULT_FPS: Rational = common::DEFAULT_FPS;
/// X screens are at most 32767 pixels either way (the protocol's INT16).
pub const COORD_RANGE: (i64, i64) = (0, 32767);
pub const SIZE_RANGE: (i64, i64) = (1, 32767);

/// The screen's params, typed.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// `None`: `$DISPLAY` (see [`x11::resolve`]).
    pub display: Option<String>,
    pub x: u32,
    pub y: u32,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub cursor: bool,
    pub fps: Rational,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            display: DEFAULT_DISPLAY.map(str::to_string),
            x: DEFAULT_X,
            y: DEFAULT_Y,
            width: DEFAULT_WIDTH,
            height: DEFAULT_HEIGHT,
            cursor: DEFAULT_CURSOR,
            fps: DEFAULT_FPS,
        }
    }
}

/// The part of the screen captured, in screen pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

impl Settings {
    pub fn from_params(p: &Params) -> Result<Settings, Problem> {
        let r = Reader::new(PARAMS, p);
        let size = |name| Ok::<_, Problem>(r.int_opt(name)?.map(|v| v as u32));
        Ok(Settings {
            display: r.text_opt("display")?,
            x: r.int("x", DEFAULT_X.into())? as u32,
            y: r.int("y", DEFAULT_Y.into())? as u32,
            width: size("width")?,
            height: size("height")?,
            cursor: r.flag("cursor", DEFAULT_CURSOR)?,
            fps: r.rational("fps", DEFAULT_FPS)?,
        })
    }

    /// The display captured: the param, else `$DISPLAY`.
    pub fn display(&self) -> Result<String, Problem> {
        x11::resolve(self.display.as_deref()).map_err(display_problem)
    }

    /// The region on a screen of `screen_width` x `screen_height`: the
    /// params', with absent sizes reaching the screen's edges; an error
    /// names the param that puts it off the screen.
    pub fn region(&self, screen_width: u32, screen_height: u32) -> Result<Region, Problem> {
        let screen = format!("{screen_width}x{screen_height}");
        let (x, width) = span(("x", self.x), ("width", self.width), screen_width, &screen)?;
        let (y, height) = span(
            ("y", self.y),
            ("height", self.height),
            screen_height,
            &screen,
        )?;
        Ok(Region {
            x,
            y,
            width,
            height,
        })
    }
}

/// One axis of the region: its start and length on a screen `limit` long.
fn span(
    (start_name, start): (&'static str, u32),
    (len_name, len): (&'static str, Option<u32>),
    limit: u32,
    screen: &str,
) -> Result<(u32, u32), Problem> {
    if start >= limit {
        let m = format!("{start_name} {start} is off the screen ({screen})");
        return Err(Problem::new(start_name, m));
    }
    let len = len.unwrap_or(limit - start);
    if start + len > limit {
        let m = format!(
            "the region ends at {start_name} {}, past the screen's edge ({screen}): \
             {start_name} + {len_name} must be at most {limit}",
            start + len
        );
        return Err(Problem::new(len_name, m));
    }
    Ok((start, len))
}

/// A display error, pointed at the `display` param.
fn display_problem(e: DisplayError) -> Problem {
    Problem::new("display", e.to_string())
}

fn rules(p: &Params) -> Vec<Problem> {
    match Settings::from_params(p) {
        Ok(Settings {
            display: Some(name),
            ..
        }) => x11::check_name(&name)
            .map_err(display_problem)
            .err()
            .into_iter()
            .collect(),
        Ok(_) => Vec::new(),
        Err(problem) => vec![problem],
    }
}

/// The display is reachable from the machine that runs the node and the
/// region lies on its screen: a typo or a closed session stops the run
/// before anything starts.
fn host_checks(p: &Params) -> Vec<Problem> {
    let Ok(s) = Settings::from_params(p) else {
        return Vec::new(); // a rule reports it
    };
    let checked = s.display().and_then(|display| {
        let screen = x11::probe(&display).map_err(display_problem)?;
        s.region(screen.width, screen.height)
    });
    checked.err().into_iter().collect()
}

const PARAMS: &[ParamSpec] = &[
    ParamSpec::text("display", DEFAULT_DISPLAY, "the X display (and screen) to capture, e.g. `:0` or `:0.1`; absent: $DISPLAY. Wayland without Xwayland is not supported yet"),
    ParamSpec::int("x", COORD_RANGE, Some(DEFAULT_X as i64), "left edge of the captured region, pixels from the screen's left"),
    ParamSpec::int("y", COORD_RANGE, Some(DEFAULT_Y as i64), "top edge of the captured region, pixels from the screen's top"),
    ParamSpec::int("width", SIZE_RANGE, None, "width of the captured region; absent: to the screen's right edge"),
    ParamSpec::int("height", SIZE_RANGE, None, "height of the captured region; absent: to the screen's bottom edge"),
    ParamSpec::bool("cursor", DEFAULT_CURSOR, "draw the mouse pointer into the picture"),
    common::fps("frames per second grabbed, e.g. 30, 60 or 30000/1001"),
];

pub const SPEC: KindSpec = KindSpec {
    kind: "screen",
    doc: "Video capture of an X11 screen or a region of it (FFmpeg's x11grab), frames in the screen's own format (bgra) with capture times like a camera's, so it can stand in for a camera in any graph. Wayland (desktop portal + PipeWire) is not supported yet.",
    inputs: &[],
    any_inputs: None,
    outputs: &[PortSpec::new("video", PortType::RawVideo, "raw video frames")],
    params: PARAMS,
    rules,
    host_checks,
    value_rule: no_value_rule,
    inputs_rule: no_inputs_rule,
    format: None,
    hosted: false,
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::testing::{assert_settings_parse, with};
    use serde_json::json;

    #[test]
    fn settings_from_defaults() {
        assert_settings_parse(&SPEC, Settings::from_params);
    }

    #[test]
    fn the_region_reaches_the_edges_unless_sized() {
        let s = Settings::default();
        let whole = s.region(1920, 1080).unwrap();
        assert_eq!(
            (whole.x, whole.y, whole.width, whole.height),
            (0, 0, 1920, 1080)
        );
        let mut p = with(&SPEC, "x", json!(100));
        p.0.insert("height".into(), json!(200));
        let s = Settings::from_params(&p).unwrap();
        assert_eq!(
            s.region(640, 480).unwrap(),
            Region {
                x: 100,
                y: 0,
                width: 540,
                height: 200
            }
        );
    }

    #[test]
    fn a_region_off_the_screen_names_its_param() {
        let s = Settings::from_params(&with(&SPEC, "x", json!(640))).unwrap();
        let e = s.region(640, 480).unwrap_err();
        assert_eq!(e.param, "x");
        assert_eq!(e.message, "x 640 is off the screen (640x480)");
        let mut p = with(&SPEC, "y", json!(400));
        p.0.insert("height".into(), json!(100));
        let e = Settings::from_params(&p)
            .unwrap()
            .region(640, 480)
            .unwrap_err();
        assert_eq!(e.param, "height");
        assert!(e.message.contains("y + height must be at most 480"), "{e}");
    }

    #[test]
    fn the_display_name_is_a_rule_and_its_server_a_host_check() {
        let bad = rules(&with(&SPEC, "display", json!("screen0")));
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].param, "display");
        assert!(bad[0].message.contains("not an X display name"));
        let nobody = with(&SPEC, "display", json!(":4093"));
        assert_eq!(rules(&nobody), vec![]);
        let problems = host_checks(&nobody);
        assert_eq!(problems.len(), 1);
        assert!(problems[0]
            .message
            .contains("cannot open X display `:4093`"));
    }
}
