//! `video-normalize`: scales, converts the pixel format and conforms to a constant frame rate.

use super::common::{self, PixelFormat};
use super::{no_inputs_rule, no_value_rule, problems, KindSpec, PortSpec};
use crate::params::{ParamSpec, Params};
use crate::read::Reader;
use crate::value::Rational;
use crate::{PortType, Problem};

pub const DEFAULT_KEEP_ASPECT: bool = true;

/// The params of `video-normalize`, typed: the output it conforms to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    /// The size made: the params', each odd one rounded down with `round_to_even`.
    pub width: u32,
    pub height: u32,
    pub pixel_format: PixelFormat,
    pub fps: Rational,
    pub keep_aspect: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            width: common::DEFAULT_WIDTH,
            height: common::DEFAULT_HEIGHT,
            pixel_format: common::DEFAULT_PIXEL_FORMAT,
            fps: common::DEFAULT_FPS,
            keep_aspect: DEFAULT_KEEP_ASPECT,
        }
    }
}

impl Settings {
    pub fn from_params(p: &Params) -> Result<Settings, Problem> {
        let r = Reader::new(PARAMS, p);
        let (width, height) = common::read_size(&r)?;
        Ok(Settings {
            width,
            height,
            pixel_format: r.choice("pixel_format", common::DEFAULT_PIXEL_FORMAT)?,
            fps: r.rational("fps", common::DEFAULT_FPS)?,
            keep_aspect: r.flag("keep_aspect", DEFAULT_KEEP_ASPECT)?,
        })
    }
}

fn rules(p: &Params) -> Vec<Problem> {
    match Settings::from_params(p) {
        Ok(s) => common::even_size_or_round(s.pixel_format, s.width, s.height),
        read => problems(read),
    }
}

const PARAMS: &[ParamSpec] = &[
    common::width("output width"),
    common::height("output height"),
    common::pixel_format("output pixel format"),
    common::round_to_even_param(),
    common::fps("constant output frame rate: frames are duplicated or dropped to conform"),
    ParamSpec::bool(
        "keep_aspect",
        DEFAULT_KEEP_ASPECT,
        "scale to fit and pad with black instead of stretching",
    ),
];

pub const SPEC: KindSpec = KindSpec {
    kind: "video-normalize",
    doc: "Scales, converts the pixel format (MJPEG decoded) and conforms to a constant frame rate (swscale); frames already in the output format and size are forwarded without a copy.",
    inputs: &[PortSpec::new("video", PortType::RawVideo, "raw video in any supported format")],
    any_inputs: None,
    outputs: &[PortSpec::new("video", PortType::RawVideo, "raw video frames")],
    params: PARAMS,
    rules,
    host_checks: super::no_rules,
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
        let s = Settings::from_params(&with(&SPEC, "fps", json!("30000/1001"))).unwrap();
        assert_eq!(s.fps, Rational::new(30000, 1001));
        assert_eq!(rules(&with(&SPEC, "height", json!(241)))[0].param, "height");
    }

    #[test]
    fn round_to_even_makes_an_odd_size_even_and_the_error_names_it() {
        let mut p = with(&SPEC, "width", json!(1279));
        p.0.insert("height".into(), json!(721));
        let odd = rules(&p);
        assert_eq!(odd.len(), 2);
        let hint = odd[0].hint.as_deref().unwrap();
        assert!(
            hint.contains("`round_to_even: true` to get 1278x720"),
            "{hint}"
        );
        p.0.insert("round_to_even".into(), json!(true));
        let s = Settings::from_params(&p).unwrap();
        assert_eq!((s.width, s.height), (1278, 720));
        assert_eq!(rules(&p), vec![]);
        // Even sizes stay as they are.
        let s = Settings::from_params(&with(&SPEC, "round_to_even", json!(true))).unwrap();
        assert_eq!((s.width, s.height), (1920, 1080));
    }
}
