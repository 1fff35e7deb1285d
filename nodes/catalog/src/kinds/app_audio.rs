//! `app-audio`: audio frames an application hands to the graph, hosted in
//! the application's process like `app-video`. Samples leave in the
//! submitted layout; audio-normalize converts them.

use super::common::{self};
use super::{no_inputs_rule, no_rules, no_value_rule, KindSpec, PortSpec};
use crate::params::{ParamSpec, Params};
use crate::read::Reader;
use crate::{PortType, Problem};

crate::choice! {
    /// Sample layouts an application may submit: interleaved, or planar (`p`).
    pub enum SampleLayout { F32 = "f32", S16 = "s16", F32p = "f32p", S16p = "s16p" }
}

pub const DEFAULT_LAYOUT: SampleLayout = SampleLayout::F32;

/// The params of `app-audio`, typed: what every submitted frame must be.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    pub sample_rate: u32,
    pub channels: u16,
    pub sample_format: SampleLayout,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            sample_rate: common::DEFAULT_SAMPLE_RATE,
            channels: common::DEFAULT_CHANNELS,
            sample_format: DEFAULT_LAYOUT,
        }
    }
}

impl Settings {
    pub fn from_params(p: &Params) -> Result<Settings, Problem> {
        let r = Reader::new(PARAMS, p);
        Ok(Settings {
            sample_rate: r.int("sample_rate", common::DEFAULT_SAMPLE_RATE.into())? as u32,
            channels: r.int("channels", common::DEFAULT_CHANNELS.into())? as u16,
            sample_format: r.choice("sample_format", DEFAULT_LAYOUT)?,
        })
    }
}

fn rules(p: &Params) -> Vec<Problem> {
    super::problems(Settings::from_params(p))
}

const PARAMS: &[ParamSpec] = &[
    common::sample_rate("sample rate of every submitted frame, 8000..=192000"),
    common::channels("channel count of every submitted frame, 1..=8"),
    ParamSpec::choice(
        "sample_format",
        SampleLayout::NAMES,
        Some(DEFAULT_LAYOUT.name()),
        "layout of the submitted samples: interleaved f32 or s16, or planar (f32p, s16p)",
    ),
];

pub const SPEC: KindSpec = KindSpec {
    kind: "app-audio",
    doc: "Audio frames submitted by the application that embeds the runtime (CombinedRecorder, or Runtime::start and RunningGraph::audio_input): hosted in the app's process, so `runtime run` cannot run a graph with one.",
    inputs: &[],
    any_inputs: None,
    outputs: &[PortSpec::new("audio", PortType::RawAudio, "the submitted samples, in their own layout")],
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
    use crate::kinds::testing::assert_settings_parse;

    #[test]
    fn settings_from_defaults_and_every_choice() {
        assert_settings_parse(&SPEC, Settings::from_params);
    }
}
