//! `audio-normalize`: resamples, rechannels and reformats audio; optional loudness normalization.

use super::common::{self, SampleFormat};
use super::{no_rules, no_value_rule, problems, KindSpec, PortSpec};
use crate::params::{ParamSpec, Params};
use crate::read::Reader;
use crate::{PortType, Problem};

pub const DEFAULT_TRUE_PEAK_DB: f64 = -1.0;
/// Measured: AAC at 128 kb/s put the file's true peak up to 0.55 dB over
/// the limiter's ceiling (README, Loudness).
pub const DEFAULT_TRUE_PEAK_MARGIN_DB: f64 = 0.7;

/// The params of `audio-normalize`, typed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    pub sample_rate: u32,
    pub channels: u16,
    pub sample_format: SampleFormat,
    /// LUFS; `None`: no loudness normalization.
    pub target_lufs: Option<f64>,
    /// dB.
    pub gain_db: Option<f64>,
    pub true_peak_db: f64,
    /// dB the limiter stays under `true_peak_db`.
    pub true_peak_margin_db: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            sample_rate: common::DEFAULT_SAMPLE_RATE,
            channels: common::DEFAULT_CHANNELS,
            sample_format: common::DEFAULT_SAMPLE_FORMAT,
            target_lufs: None,
            gain_db: None,
            true_peak_db: DEFAULT_TRUE_PEAK_DB,
            true_peak_margin_db: DEFAULT_TRUE_PEAK_MARGIN_DB,
        }
    }
}

impl Settings {
    pub fn from_params(p: &Params) -> Result<Settings, Problem> {
        let r = Reader::new(PARAMS, p);
        Ok(Settings {
            sample_rate: r.int("sample_rate", common::DEFAULT_SAMPLE_RATE.into())? as u32,
            channels: r.int("channels", common::DEFAULT_CHANNELS.into())? as u16,
            sample_format: r.choice("sample_format", common::DEFAULT_SAMPLE_FORMAT)?,
            target_lufs: r.float_opt("target_lufs")?,
            gain_db: r.float_opt("gain_db")?,
            true_peak_db: r.float("true_peak_db", DEFAULT_TRUE_PEAK_DB)?,
            true_peak_margin_db: r.float("true_peak_margin_db", DEFAULT_TRUE_PEAK_MARGIN_DB)?,
        })
    }
}

fn rules(p: &Params) -> Vec<Problem> {
    problems(Settings::from_params(p))
}

const PARAMS: &[ParamSpec] = &[
    common::sample_rate("output sample rate"),
    common::channels("output channel count"),
    common::sample_format("output sample format (interleaved); s24 travels as s32 with the low byte zero"),
    ParamSpec::float("target_lufs", (-70.0, -5.0), None, "loudness target in LUFS: the gain is the target minus the gated (integrated, BS.1770) loudness of the last 30 s of input, plus what the limiter took off, so the output's integrated loudness is the target; absent: no loudness normalization. Live when the node started with one").live(),
    ParamSpec::float("gain_db", (-60.0, 24.0), None, "a fixed gain in dB before the limiter (after loudness normalization), ramped over one block when it changes; absent: no gain stage (samples pass untouched where nothing else changes them). Live when the node started with it or with target_lufs").live(),
    ParamSpec::float("true_peak_db", (-12.0, 0.0), Some(DEFAULT_TRUE_PEAK_DB), "true-peak ceiling in dBTP of the encoded output: the limiter (4× oversampled detection) holds `true_peak_db − true_peak_margin_db`"),
    ParamSpec::float("true_peak_margin_db", (0.0, 3.0), Some(DEFAULT_TRUE_PEAK_MARGIN_DB), "dB the limiter stays under `true_peak_db` for the inter-sample overshoot a lossy encoder adds (AAC 128 kb/s: up to 0.55 dB measured); 0 for PCM or lossless"),
];

pub const SPEC: KindSpec = KindSpec {
    kind: "audio-normalize",
    doc: "Resamples, rechannels and reformats audio (swresample); optional EBU R128 loudness normalization.",
    inputs: &[PortSpec::new("audio", PortType::RawAudio, "raw audio")],
    any_inputs: None,
    outputs: &[PortSpec::new("audio", PortType::RawAudio, "raw audio frames")],
    params: PARAMS,
    rules,
    host_checks: no_rules,
    value_rule: no_value_rule,
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
        let s = Settings::from_params(&with(&SPEC, "target_lufs", json!(-23))).unwrap();
        assert_eq!(s.target_lufs, Some(-23.0));
    }
}
