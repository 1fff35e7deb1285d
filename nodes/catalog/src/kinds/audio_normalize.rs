//! `audio-normalize`: resamples, rechannels and reformats audio; optional loudness normalization.

use super::common::{self, SampleFormat};
use super::{no_inputs_rule, no_rules, no_value_rule, problems, KindSpec, PortSpec};
use crate::params::{ParamSpec, Params};
use crate::read::Reader;
use crate::{PortType, Problem};

crate::choice! {
    /// How the loudness gain is found: `live` from the last 30 s as audio
    /// goes through; `two-pass` from the whole program, the audio held until
    /// the end of stream (replays only).
    pub enum Mode { Live = "live", TwoPass = "two-pass" }
}

pub const DEFAULT_MODE: Mode = Mode::Live;
pub const DEFAULT_TRUE_PEAK_DB: f64 = -1.0;
/// Measured: AAC at 128 kb/s put the file's true peak up to 0.55 dB over
/// the limiter's ceiling (README, Loudness).
pub const DEFAULT_TRUE_PEAK_MARGIN_DB: f64 = 0.7;
/// Measured: AAC at 128 kb/s read 0.14–0.2 LU under its input (README, Loudness).
pub const DEFAULT_ENCODER_LOSS_LU: f64 = 0.15;
pub const DEFAULT_LOOKAHEAD_S: f64 = 0.0;

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
    pub mode: Mode,
    /// Seconds the live loudness gain looks ahead: the audio leaves this
    /// much later (its capture times stay true).
    pub lookahead_s: f64,
    /// LU the two-pass mode aims over the target for the encoder's loss.
    pub encoder_loss_lu: f64,
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
            mode: DEFAULT_MODE,
            lookahead_s: DEFAULT_LOOKAHEAD_S,
            encoder_loss_lu: DEFAULT_ENCODER_LOSS_LU,
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
            mode: r.choice("mode", DEFAULT_MODE)?,
            lookahead_s: r.float("lookahead_s", DEFAULT_LOOKAHEAD_S)?,
            encoder_loss_lu: r.float("encoder_loss_lu", DEFAULT_ENCODER_LOSS_LU)?,
        })
    }
}

fn rules(p: &Params) -> Vec<Problem> {
    match Settings::from_params(p) {
        Ok(s) if s.mode == Mode::TwoPass && s.target_lufs.is_none() => vec![Problem::new(
            "mode",
            "`two-pass` measures the program for a loudness target: set `target_lufs`",
        )],
        other => problems(other),
    }
}

const PARAMS: &[ParamSpec] = &[
    common::sample_rate("output sample rate"),
    common::channels("output channel count"),
    common::sample_format("output sample format (interleaved); s24 travels as s32 with the low byte zero"),
    ParamSpec::float("target_lufs", (-70.0, -5.0), None, "loudness target in LUFS: the gain is the target minus the gated (integrated, BS.1770) loudness of the last 30 s of input, plus what the limiter took off, so the output's integrated loudness is the target; absent: no loudness normalization. Live when the node started with one").live(),
    ParamSpec::float("gain_db", (-60.0, 24.0), None, "a fixed gain in dB before the limiter (after loudness normalization), ramped over one block when it changes; absent: no gain stage (samples pass untouched where nothing else changes them). Live when the node started with it or with target_lufs").live(),
    ParamSpec::float("true_peak_db", (-12.0, 0.0), Some(DEFAULT_TRUE_PEAK_DB), "true-peak ceiling in dBTP of the encoded output: the limiter (4× oversampled detection) holds `true_peak_db − true_peak_margin_db`"),
    ParamSpec::float("true_peak_margin_db", (0.0, 3.0), Some(DEFAULT_TRUE_PEAK_MARGIN_DB), "dB the limiter stays under `true_peak_db` for the inter-sample overshoot a lossy encoder adds (AAC 128 kb/s: up to 0.55 dB measured); 0 for PCM or lossless"),
    ParamSpec::choice("mode", Mode::NAMES, Some(DEFAULT_MODE.name()), "`live`: the gain follows the last 30 s as audio goes through; `two-pass`: on a replay (a no_drop stream) the whole input is held (in a temp file) to its end, measured, given one gain (the limiter's take made up by iterating on the held audio) and sent; on a live stream it warns and works as `live`"),
    ParamSpec::float("lookahead_s", (0.0, 10.0), Some(DEFAULT_LOOKAHEAD_S), "live mode: seconds of input measured before their gain is set, so a loud passage lowers the gain before it is heard instead of after; the audio leaves this much later (capture times stay true; a graph through sync needs `buffer_ms` above it)"),
    ParamSpec::float("encoder_loss_lu", (0.0, 1.0), Some(DEFAULT_ENCODER_LOSS_LU), "two-pass: LU aimed over the target for the loudness a lossy encoder takes off (AAC 128 kb/s: 0.14–0.2 LU measured); 0 for PCM or lossless"),
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
        let s = Settings::from_params(&with(&SPEC, "target_lufs", json!(-23))).unwrap();
        assert_eq!(s.target_lufs, Some(-23.0));
    }

    #[test]
    fn two_pass_needs_a_target() {
        let p = with(&SPEC, "mode", json!("two-pass"));
        let problems = rules(&p);
        assert!(
            problems.iter().any(|p| p.message.contains("target_lufs")),
            "{problems:?}"
        );
        let mut p = with(&SPEC, "target_lufs", json!(-16));
        p.0.insert("mode".into(), json!("two-pass"));
        assert!(rules(&p).is_empty());
        assert_eq!(Settings::from_params(&p).unwrap().mode, Mode::TwoPass);
    }
}
