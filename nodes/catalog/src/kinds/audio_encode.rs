//! `audio-encode`: AAC, Opus or MP3.

use super::{no_inputs_rule, no_rules, no_value_rule, problems, KindSpec, PortSpec};
use crate::params::{ParamSpec, Params};
use crate::read::Reader;
use crate::{PortType, Problem};

crate::choice! {
    /// Audio codecs.
    pub enum Codec { Aac = "aac", Opus = "opus", Mp3 = "mp3" }
}

crate::choice! {
    /// The `quality` presets.
    pub enum Quality {
        Low = "low",
        Voice = "voice",
        Standard = "standard",
        High = "high",
        Maximum = "maximum",
    }
}

impl Quality {
    /// Bits per second.
    pub fn bitrate(self) -> u64 {
        match self {
            Quality::Low => 64_000,
            Quality::Voice => 96_000,
            Quality::Standard => 128_000,
            Quality::High => 192_000,
            Quality::Maximum => 320_000,
        }
    }
}

pub const DEFAULT_CODEC: Codec = Codec::Aac;
pub const DEFAULT_QUALITY: Quality = Quality::Standard;

/// The params of `audio-encode`, typed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    pub codec: Codec,
    pub quality: Quality,
    /// Bits per second instead of the quality's.
    pub bitrate: Option<u64>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            codec: DEFAULT_CODEC,
            quality: DEFAULT_QUALITY,
            bitrate: None,
        }
    }
}

impl Settings {
    pub fn from_params(p: &Params) -> Result<Settings, Problem> {
        let r = Reader::new(PARAMS, p);
        Ok(Settings {
            codec: r.choice("codec", DEFAULT_CODEC)?,
            quality: r.choice("quality", DEFAULT_QUALITY)?,
            bitrate: r.bitrate_opt("bitrate")?,
        })
    }

    /// Bits per second: `bitrate`, else the quality's.
    pub fn effective_bitrate(&self) -> u64 {
        self.bitrate.unwrap_or(self.quality.bitrate())
    }
}

fn rules(p: &Params) -> Vec<Problem> {
    problems(Settings::from_params(p))
}

/// What [`Quality::bitrate`] says, for `runtime nodes` (a unit test holds
/// the two together).
const QUALITY_DOC: &str = "64 / 96 / 128 / 192 / 320 kb/s";

const PARAMS: &[ParamSpec] = &[
    ParamSpec::choice(
        "codec",
        Codec::NAMES,
        Some(DEFAULT_CODEC.name()),
        "audio codec",
    ),
    ParamSpec::choice(
        "quality",
        Quality::NAMES,
        Some(DEFAULT_QUALITY.name()),
        QUALITY_DOC,
    ),
    ParamSpec::bitrate(
        "bitrate",
        (6_000, 512_000),
        "bits per second; set, it replaces the quality preset (`quality` is then not used: set one or the other)",
    ),
];

pub const SPEC: KindSpec = KindSpec {
    kind: "audio-encode",
    doc: "Encodes raw audio: AAC, Opus (libopus), MP3 (libmp3lame).",
    inputs: &[PortSpec::new("audio", PortType::RawAudio, "raw audio")],
    any_inputs: None,
    outputs: &[PortSpec::new(
        "audio",
        PortType::EncodedAudio,
        "encoded audio packets",
    )],
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
    use crate::Choice;
    use serde_json::json;

    #[test]
    fn settings_from_defaults_and_every_choice() {
        assert_settings_parse(&SPEC, Settings::from_params);
        let s = Settings::from_params(&with(&SPEC, "quality", json!("voice"))).unwrap();
        assert_eq!(s.effective_bitrate(), 96_000);
        let s = Settings::from_params(&with(&SPEC, "bitrate", json!("100k"))).unwrap();
        assert_eq!(s.effective_bitrate(), 100_000);
    }

    #[test]
    fn quality_to_bitrate() {
        let got: Vec<u64> = ["low", "voice", "standard", "high", "maximum"]
            .iter()
            .map(|q| Quality::from_name(q).unwrap().bitrate())
            .collect();
        assert_eq!(got, [64_000, 96_000, 128_000, 192_000, 320_000]);
        assert!(Quality::from_name("loud").is_none());
        let doc: Vec<String> = Quality::ALL
            .iter()
            .map(|q| (q.bitrate() / 1000).to_string())
            .collect();
        assert_eq!(QUALITY_DOC, format!("{} kb/s", doc.join(" / ")));
    }
}
