//! `audio-mix`: mixes up to [`MAX_INPUTS`] raw-audio inputs into one, with a
//! gain, mute and pan per input, by capture time.

use super::common::{self, SampleFormat};
use super::{no_rules, no_value_rule, problems, KindSpec, PortSpec};
use crate::params::{ParamSpec, Params};
use crate::read::Reader;
use crate::{PortType, Problem};

/// The most inputs one mixer takes: a mixer per group of microphones past
/// that (each input costs a queue, a converter and a meter).
pub const MAX_INPUTS: usize = 8;
/// The gain range of `gain_db`, dB: −60 is as good as muted; +24 lifts a
/// quiet lavalier to speech level.
pub const GAIN_RANGE_DB: (f64, f64) = (-60.0, 24.0);
/// Live inputs: how long (of audio) the mix waits for an input that is late
/// before it mixes that stretch without it. 100 ms covers a device's
/// callback period and a busy machine's scheduling; more only adds delay.
pub const DEFAULT_LATENCY_MS: f64 = 100.0;
/// Samples per output frame at 48 kHz: 20 ms, the size audio-encode and the
/// mux handle cheaply (each message costs every node it crosses).
pub const DEFAULT_FRAME_MS: f64 = 20.0;

/// The params of `audio-mix`, typed.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub sample_rate: u32,
    pub channels: u16,
    pub sample_format: SampleFormat,
    /// Per input (by name), dB; an input not named is at 0 dB.
    pub gain_db: Vec<(String, f64)>,
    /// Inputs muted.
    pub mute: Vec<String>,
    /// Per input, −1 (left) ..= 1 (right); an input not named is centred.
    pub pan: Vec<(String, f64)>,
    pub latency_ms: f64,
    pub frame_ms: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            sample_rate: common::DEFAULT_SAMPLE_RATE,
            channels: common::DEFAULT_CHANNELS,
            sample_format: common::DEFAULT_SAMPLE_FORMAT,
            gain_db: Vec::new(),
            mute: Vec::new(),
            pan: Vec::new(),
            latency_ms: DEFAULT_LATENCY_MS,
            frame_ms: DEFAULT_FRAME_MS,
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
            gain_db: r.number_map("gain_db")?,
            mute: r.names("mute")?,
            pan: r.number_map("pan")?,
            latency_ms: r.float("latency_ms", DEFAULT_LATENCY_MS)?,
            frame_ms: r.float("frame_ms", DEFAULT_FRAME_MS)?,
        })
    }

    /// The gain of `input`, dB (0 when not named).
    pub fn gain_of(&self, input: &str) -> f64 {
        lookup(&self.gain_db, input).unwrap_or(0.0)
    }

    /// The pan of `input`, −1..=1 (0 when not named).
    pub fn pan_of(&self, input: &str) -> f64 {
        lookup(&self.pan, input).unwrap_or(0.0)
    }

    pub fn is_muted(&self, input: &str) -> bool {
        self.mute.iter().any(|m| m == input)
    }
}

fn lookup(map: &[(String, f64)], name: &str) -> Option<f64> {
    map.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
}

fn rules(p: &Params) -> Vec<Problem> {
    problems(Settings::from_params(p))
}

/// At most [`MAX_INPUTS`] inputs; every input a per-input param names is
/// connected (a typo would silently leave a microphone at 0 dB).
fn inputs_rule(inputs: &[String], p: &Params) -> Vec<Problem> {
    let mut out = Vec::new();
    if inputs.len() > MAX_INPUTS {
        out.push(
            Problem::new(
                "inputs",
                format!(
                    "audio-mix takes at most {MAX_INPUTS} inputs, {} are connected",
                    inputs.len()
                ),
            )
            .hint("mix groups of inputs in separate audio-mix nodes, then mix their outputs"),
        );
    }
    let Ok(s) = Settings::from_params(p) else {
        return out; // reported by the rules
    };
    let named = [
        (
            "gain_db",
            s.gain_db.iter().map(|(n, _)| n).collect::<Vec<_>>(),
        ),
        ("mute", s.mute.iter().collect()),
        ("pan", s.pan.iter().map(|(n, _)| n).collect()),
    ];
    for (param, names) in named {
        for name in names.into_iter().filter(|n| !inputs.contains(n)) {
            out.push(
                Problem::new(param, format!("`{name}` is not an input of this audio-mix"))
                    .hint(format!("its inputs: {}", inputs.join(", "))),
            );
        }
    }
    out
}

const PARAMS: &[ParamSpec] = &[
    common::sample_rate("output sample rate; inputs at other rates are resampled (swresample)"),
    common::channels("output channel count; a mono input goes to every channel at its level, others are rematrixed (swresample)"),
    common::sample_format("output sample format (interleaved); s24 travels as s32 with the low byte zero"),
    ParamSpec::number_map("gain_db", GAIN_RANGE_DB, "gain per input in dB, by input name (`{mic1: -6, mic2: 3}`); an input not named is at 0 dB. A change ramps over one frame (no click); a live update replaces the whole mapping").live(),
    ParamSpec::names("mute", "inputs muted, by name (`[mic2]`): they are mixed as silence and their meters read the floor; a live update replaces the whole list").live(),
    ParamSpec::number_map("pan", (-1.0, 1.0), "balance per input for a stereo output, by input name: -1 left only, 0 centre (both channels at the input's level), 1 right only; the far side is lowered linearly. A live update replaces the whole mapping").live(),
    ParamSpec::float("latency_ms", (0.0, 2000.0), Some(DEFAULT_LATENCY_MS), "live inputs: how much audio the mix waits for an input that is late (or has stopped sending) before it mixes that stretch without it; replayed (no_drop) inputs are always waited for"),
    ParamSpec::float("frame_ms", (1.0, 100.0), Some(DEFAULT_FRAME_MS), "duration of each output frame, ms"),
];

pub const SPEC: KindSpec = KindSpec {
    kind: "audio-mix",
    doc: "Mixes up to 8 raw-audio inputs (named freely) by capture time into one, with a gain, mute and pan per input and a level meter per input and for the mix.",
    inputs: &[],
    any_inputs: Some(&[PortType::RawAudio]),
    outputs: &[PortSpec::new("audio", PortType::RawAudio, "the mix, raw audio")],
    params: PARAMS,
    rules,
    host_checks: no_rules,
    value_rule: no_value_rule,
    inputs_rule,
    format: None,
    hosted: false,
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::testing::{assert_settings_parse, with};
    use serde_json::json;

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn settings_from_defaults_and_maps() {
        assert_settings_parse(&SPEC, Settings::from_params);
        let mut p = with(&SPEC, "gain_db", json!({"mic1": -6, "mic2": 3}));
        p.0.insert("mute".into(), json!(["mic2"]));
        let s = Settings::from_params(&p).unwrap();
        assert_eq!(s.gain_of("mic1"), -6.0);
        assert_eq!(s.gain_of("mic3"), 0.0);
        assert!(s.is_muted("mic2") && !s.is_muted("mic1"));
        assert!(inputs_rule(&names(&["mic1", "mic2"]), &p).is_empty());
    }

    #[test]
    fn too_many_inputs_and_unknown_names_are_problems() {
        let nine: Vec<String> = (1..=9).map(|i| format!("mic{i}")).collect();
        let p = with(&SPEC, "pan", json!({"mic1": 0.5}));
        let problems = inputs_rule(&nine, &p);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].param, "inputs");
        assert!(problems[0].message.contains("at most 8"), "{problems:?}");
        let p = with(&SPEC, "gain_db", json!({"mic3": -6}));
        let problems = inputs_rule(&names(&["mic1", "mic2"]), &p);
        assert_eq!(problems[0].param, "gain_db");
        assert!(problems[0].message.contains("`mic3` is not an input"));
        let out_of_range = with(&SPEC, "gain_db", json!({"mic1": 30}));
        assert!(rules(&out_of_range)[0].message.contains("out of range"));
    }
}
