//! `noise-suppress`: removes steady background noise (fans, hum, hiss)
//! from speech with RNNoise (the `nnnoiseless` port), per channel.

use super::{no_inputs_rule, no_rules, no_value_rule, problems, KindSpec, PortSpec};
use crate::params::{ParamSpec, Params};
use crate::read::Reader;
use crate::{PortType, Problem};

/// The one rate RNNoise's network was trained at: input at another rate is
/// refused (by `runtime check` where the producer's rate is known, else by
/// the node), not resampled behind the user's back.
pub const SAMPLE_RATE: u32 = 48_000;
/// All of the denoised signal: what a user turning the node on expects.
pub const DEFAULT_MIX: f64 = 1.0;

/// The params of `noise-suppress`, typed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    /// 0: the input untouched (dry); 1: only the denoised signal (wet).
    pub mix: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { mix: DEFAULT_MIX }
    }
}

impl Settings {
    pub fn from_params(p: &Params) -> Result<Settings, Problem> {
        let r = Reader::new(PARAMS, p);
        Ok(Settings {
            mix: r.float("mix", DEFAULT_MIX)?,
        })
    }
}

fn rules(p: &Params) -> Vec<Problem> {
    problems(Settings::from_params(p))
}

const PARAMS: &[ParamSpec] = &[
    ParamSpec::float("mix", (0.0, 1.0), Some(DEFAULT_MIX), "wet/dry: 1 sends only the denoised signal, 0 the input untouched, 0.5 half of each (the noise about 6 dB down where full suppression takes it away); ramped over one frame when it changes").live(),
];

pub const SPEC: KindSpec = KindSpec {
    kind: "noise-suppress",
    doc: "Suppresses background noise in speech with RNNoise (nnnoiseless), each channel on its own; 48 kHz input, same format out, timestamps unchanged (the 10 ms the network looks ahead is compensated).",
    inputs: &[PortSpec::new("audio", PortType::RawAudio, "raw audio at 48 kHz, any channel count and sample format")],
    any_inputs: None,
    outputs: &[PortSpec::new("audio", PortType::RawAudio, "the audio denoised, in the input's format")],
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
    fn settings_from_defaults() {
        assert_settings_parse(&SPEC, Settings::from_params);
        let s = Settings::from_params(&with(&SPEC, "mix", json!(0.5))).unwrap();
        assert_eq!(s.mix, 0.5);
        assert!(!rules(&with(&SPEC, "mix", json!(2))).is_empty());
    }
}
