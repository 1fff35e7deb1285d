//! `app-video`: video frames an application hands to the graph.
//!
//! The node is hosted by the application that embeds the runtime (the
//! `recorder` crate's `CombinedRecorder`, or any app through
//! `Runtime::start`): the runtime starts no process for it, the app's own
//! process joins the graph as this node and sends what it submits. Frames
//! leave in the format they were submitted in; video-normalize converts them.

use super::common;
use super::{no_inputs_rule, no_rules, no_value_rule, KindSpec, PortSpec};
use crate::params::{ParamSpec, Params};
use crate::read::Reader;
use crate::{PortType, Problem, Rational};

crate::choice! {
    /// The pixel layouts an application may submit (`yuv420p` is I420).
    pub enum FrameFormat {
        Rgb24 = "rgb24",
        Rgba = "rgba",
        Bgra = "bgra",
        Nv12 = "nv12",
        Yuv420p = "yuv420p",
    }
}

pub const DEFAULT_FORMAT: FrameFormat = FrameFormat::Rgba;

/// The params of `app-video`, typed: what every submitted frame must be.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    pub width: u32,
    pub height: u32,
    pub fps: Rational,
    pub pixel_format: FrameFormat,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            width: common::DEFAULT_WIDTH,
            height: common::DEFAULT_HEIGHT,
            fps: common::DEFAULT_FPS,
            pixel_format: DEFAULT_FORMAT,
        }
    }
}

impl Settings {
    pub fn from_params(p: &Params) -> Result<Settings, Problem> {
        let r = Reader::new(PARAMS, p);
        Ok(Settings {
            width: r.int("width", common::DEFAULT_WIDTH.into())? as u32,
            height: r.int("height", common::DEFAULT_HEIGHT.into())? as u32,
            fps: r.rational("fps", common::DEFAULT_FPS)?,
            pixel_format: r.choice("pixel_format", DEFAULT_FORMAT)?,
        })
    }

    /// 4:2:0 formats need even sizes.
    fn check_size(&self) -> Vec<Problem> {
        let subsampled = matches!(self.pixel_format, FrameFormat::Nv12 | FrameFormat::Yuv420p);
        let halved = (subsampled, subsampled);
        common::even_size_for(self.pixel_format.name(), halved, self.width, self.height)
    }
}

fn rules(p: &Params) -> Vec<Problem> {
    match Settings::from_params(p) {
        Ok(s) => s.check_size(),
        Err(problem) => vec![problem],
    }
}

const PARAMS: &[ParamSpec] = &[
    common::width("width of every submitted frame, pixels"),
    common::height("height of every submitted frame, pixels"),
    common::fps("the frame rate the app submits at: frame n's default timestamp is n/fps, and video-normalize holds the output to it"),
    ParamSpec::choice("pixel_format", FrameFormat::NAMES, Some(DEFAULT_FORMAT.name()), "layout of the submitted pixels (yuv420p is I420); converted in the graph, not in the app's thread"),
];

pub const SPEC: KindSpec = KindSpec {
    kind: "app-video",
    doc: "Video frames submitted by the application that embeds the runtime (CombinedRecorder, or Runtime::start and RunningGraph::video_input): hosted in the app's process, so `runtime run` cannot run a graph with one.",
    inputs: &[],
    any_inputs: None,
    outputs: &[PortSpec::new("video", PortType::RawVideo, "the submitted frames, in their own format")],
    params: PARAMS,
    rules,
    host_checks: no_rules,
    value_rule: no_value_rule,
    inputs_rule: no_inputs_rule,
    format: None,
    hosted: true,
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::testing::{assert_settings_parse, with};
    use serde_json::json;

    #[test]
    fn settings_from_defaults_and_every_choice() {
        assert_settings_parse(&SPEC, Settings::from_params);
    }

    #[test]
    fn odd_sizes_only_for_packed_formats() {
        let mut p = with(&SPEC, "width", json!(641));
        assert!(rules(&p).is_empty(), "rgba takes odd sizes");
        p.0.insert("pixel_format".into(), json!("nv12"));
        assert_eq!(rules(&p)[0].param, "width");
    }
}
