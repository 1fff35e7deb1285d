//! `compose`: several cameras in one program feed, as a grid or picture-in-picture.

use super::common::{self, PixelFormat};
use super::{no_inputs_rule, no_rules, no_value_rule, problems, KindSpec, PortSpec};
use crate::params::{ParamSpec, Params};
use crate::read::Reader;
use crate::{PortType, Problem};

crate::choice! {
    /// How the inputs are laid out.
    pub enum Layout { Grid = "grid", Pip = "pip" }
}

crate::choice! {
    /// The corner picture-in-picture insets stack from.
    pub enum Corner {
        TopLeft = "top-left",
        TopRight = "top-right",
        BottomLeft = "bottom-left",
        BottomRight = "bottom-right",
    }
}

pub const DEFAULT_LAYOUT: Layout = Layout::Grid;
/// 0: the smallest square grid that holds every input.
pub const DEFAULT_COLUMNS: u32 = 0;
pub const DEFAULT_PIP_SIZE: f64 = 0.25;
pub const DEFAULT_PIP_CORNER: Corner = Corner::BottomRight;
pub const DEFAULT_PIP_MARGIN: u32 = 16;
pub const DEFAULT_MAX_HELD: u32 = 8;

/// The params of `compose`, typed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    pub layout: Layout,
    pub width: u32,
    pub height: u32,
    pub pixel_format: PixelFormat,
    pub columns: u32,
    pub pip_size: f64,
    pub pip_corner: Corner,
    pub pip_margin: u32,
    pub max_held: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            layout: DEFAULT_LAYOUT,
            width: common::DEFAULT_WIDTH,
            height: common::DEFAULT_HEIGHT,
            pixel_format: common::DEFAULT_PIXEL_FORMAT,
            columns: DEFAULT_COLUMNS,
            pip_size: DEFAULT_PIP_SIZE,
            pip_corner: DEFAULT_PIP_CORNER,
            pip_margin: DEFAULT_PIP_MARGIN,
            max_held: DEFAULT_MAX_HELD,
        }
    }
}

impl Settings {
    pub fn from_params(p: &Params) -> Result<Settings, Problem> {
        let r = Reader::new(PARAMS, p);
        Ok(Settings {
            layout: r.choice("layout", DEFAULT_LAYOUT)?,
            width: r.int("width", common::DEFAULT_WIDTH.into())? as u32,
            height: r.int("height", common::DEFAULT_HEIGHT.into())? as u32,
            pixel_format: r.choice("pixel_format", common::DEFAULT_PIXEL_FORMAT)?,
            columns: r.int("columns", DEFAULT_COLUMNS.into())? as u32,
            pip_size: r.float("pip_size", DEFAULT_PIP_SIZE)?,
            pip_corner: r.choice("pip_corner", DEFAULT_PIP_CORNER)?,
            pip_margin: r.int("pip_margin", DEFAULT_PIP_MARGIN.into())? as u32,
            max_held: r.int("max_held", DEFAULT_MAX_HELD.into())? as u32,
        })
    }
}

fn rules(p: &Params) -> Vec<Problem> {
    match Settings::from_params(p) {
        Ok(s) => common::even_size(s.pixel_format, s.width, s.height),
        read => problems(read),
    }
}

const PARAMS: &[ParamSpec] = &[
    ParamSpec::choice("layout", Layout::NAMES, Some(DEFAULT_LAYOUT.name()), "`grid`: equal tiles in graph order; `pip`: the first input fills the frame, the others are insets").live(),
    common::width("output width"),
    common::height("output height"),
    common::pixel_format("output pixel format"),
    ParamSpec::int("columns", (0, 8), Some(DEFAULT_COLUMNS as i64), "grid columns; 0: the smallest square grid that holds every input (2x2 for 3 or 4)").live(),
    ParamSpec::float("pip_size", (0.05, 0.5), Some(DEFAULT_PIP_SIZE), "pip: inset width as a fraction of the output width").live(),
    ParamSpec::choice("pip_corner", Corner::NAMES, Some(DEFAULT_PIP_CORNER.name()), "pip: the corner the insets stack from").live(),
    ParamSpec::int("pip_margin", (0, 1024), Some(DEFAULT_PIP_MARGIN as i64), "pip: pixels between the insets and the frame's edges").live(),
    ParamSpec::int("max_held", (1, 64), Some(DEFAULT_MAX_HELD as i64), "frames held per input while waiting for the others; beyond it a frame goes out with the late inputs' last frames"),
];

pub const SPEC: KindSpec = KindSpec {
    kind: "compose",
    doc: "Composes several cameras into one program feed (swscale): a grid, or the first input full frame with the others as picture-in-picture insets. Inputs are raw video on one timeline (after sync), any names, laid out in the graph's order; frames are paired by pts, an input without a frame at that pts shows its last one.",
    inputs: &[],
    any_inputs: Some(&[PortType::RawVideo]),
    outputs: &[PortSpec::new("video", PortType::RawVideo, "raw video frames")],
    params: PARAMS,
    rules,
    host_checks: no_rules,
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
    fn settings_from_defaults_and_every_choice() {
        assert_settings_parse(&SPEC, Settings::from_params);
        let s = Settings::from_params(&with(&SPEC, "pip_corner", json!("top-left"))).unwrap();
        assert_eq!(s.pip_corner, Corner::TopLeft);
        let e = Settings::from_params(&with(&SPEC, "layout", json!("mosaic"))).unwrap_err();
        assert_eq!(e.param, "layout");
        assert!(e.message.contains("grid, pip"), "{}", e.message);
    }
}
