//! `sync`: puts up to eight cameras and eight audio streams on one timeline.

use super::{no_rules, no_value_rule, problems, KindSpec, PortSpec};
use crate::params::{ParamSpec, Params};
use crate::read::Reader;
use crate::{PortType, Problem};

pub const DEFAULT_BUFFER_MS: u32 = 500;
pub const DEFAULT_TOLERANCE_MS: f64 = 20.0;
pub const DEFAULT_MAX_DRIFT_PPM: f64 = 1000.0;
pub const DEFAULT_PAUSED: bool = false;
pub const DEFAULT_KEYFRAME_LEAD_MS: u32 = 300;

/// The params of `sync`, typed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    /// Mutable while running.
    pub buffer_ms: u32,
    /// Mutable while running.
    pub tolerance_ms: f64,
    pub max_drift_ppm: f64,
    /// Mutable while running: while true, nothing is recorded (the paused
    /// span is cut from every output alike).
    pub paused: bool,
    /// Packet inputs: how far ahead of now sync asks every camera's encoder
    /// for the keyframe the tracks start on.
    pub keyframe_lead_ms: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            buffer_ms: DEFAULT_BUFFER_MS,
            tolerance_ms: DEFAULT_TOLERANCE_MS,
            max_drift_ppm: DEFAULT_MAX_DRIFT_PPM,
            paused: DEFAULT_PAUSED,
            keyframe_lead_ms: DEFAULT_KEYFRAME_LEAD_MS,
        }
    }
}

impl Settings {
    pub fn from_params(p: &Params) -> Result<Settings, Problem> {
        let r = Reader::new(PARAMS, p);
        Ok(Settings {
            buffer_ms: r.int("buffer_ms", DEFAULT_BUFFER_MS.into())? as u32,
            tolerance_ms: r.float("tolerance_ms", DEFAULT_TOLERANCE_MS)?,
            max_drift_ppm: r.float("max_drift_ppm", DEFAULT_MAX_DRIFT_PPM)?,
            paused: r.flag("paused", DEFAULT_PAUSED)?,
            keyframe_lead_ms: r.int("keyframe_lead_ms", DEFAULT_KEYFRAME_LEAD_MS.into())? as u32,
        })
    }
}

/// Every input is optional; one at least is needed.
fn inputs_rule(inputs: &[String], _: &Params) -> Vec<Problem> {
    match inputs.is_empty() {
        true => vec![Problem::new(
            "inputs",
            "sync needs at least one input: `video` (and `video2` .. `video8`), `audio` (and `audio2` .. `audio8`)",
        )],
        false => Vec::new(),
    }
}

/// The rules for a sync whose cameras come as encoded packets, given the
/// camera inputs that carry packets and those that carry raw video (the
/// validator knows them once the edges are resolved). Packets pass through
/// unchanged: every camera must be packets (the tracks start together on
/// keyframes the encoders make on request, which raw frames have no part
/// in), and a pause cannot cut them (a track may only resume on a
/// keyframe, and nothing re-encodes): `paused` is refused.
pub fn packet_rules(encoded: &[String], raw_video: &[String], p: &Params) -> Vec<Problem> {
    let mut problems = Vec::new();
    if encoded.is_empty() {
        return problems;
    }
    if !raw_video.is_empty() {
        problems.push(
            Problem::new(
                "inputs",
                format!(
                    "sync takes its cameras all raw or all encoded: packets on {}, raw video on {}",
                    encoded.join(", "),
                    raw_video.join(", "),
                ),
            )
            .hint(format!(
            "encode {} on its camera's machine too, or feed sync raw frames on every camera input",
            raw_video.join(", ")
            )),
        );
    }
    if p.bool("paused") == Some(true) {
        problems.push(Problem::new(
            "paused",
            "sync cannot pause encoded camera inputs (a track resumes only on a keyframe, and packets are not re-encoded): pause at the mux (`recording: false`) or feed sync raw frames",
        ));
    }
    problems
}

fn rules(p: &Params) -> Vec<Problem> {
    problems(Settings::from_params(p))
}

const PARAMS: &[ParamSpec] = &[
    ParamSpec::int("buffer_ms", (0, 10_000), Some(DEFAULT_BUFFER_MS as i64), "maximum latency added while waiting for the other stream").live(),
    ParamSpec::float("tolerance_ms", (0.0, 1000.0), Some(DEFAULT_TOLERANCE_MS), "timestamp error tolerated before gaps are filled or overlaps trimmed").live(),
    ParamSpec::float("max_drift_ppm", (0.0, 10_000.0), Some(DEFAULT_MAX_DRIFT_PPM), "largest audio clock drift corrected by resampling, in ppm (0: no drift correction; larger drift is caught up by the tolerance's hard resyncs)"),
    ParamSpec::bool("paused", DEFAULT_PAUSED, "pause the recording: media captured while paused is left out of every output, and what comes after goes on without a gap, in sync (the cut is rounded up to whole frames)").live(),
    ParamSpec::int("keyframe_lead_ms", (10, 10_000), Some(DEFAULT_KEYFRAME_LEAD_MS as i64), "with encoded camera inputs: how far ahead sync asks every camera's encoder for the keyframe all tracks start on; more than a frame's way from capture into the encoder plus a message's way to it"),
];

/// Sync's ports: `video` and `audio`, and up to seven more cameras and seven
/// more audio streams; every input comes out on the output of the same name.
const INPUTS: &[PortSpec] = &[
    PortSpec::optional(
        "video",
        PortType::RawVideo,
        "raw video, or encoded video packets (the encoder on the camera's machine): the first camera, whose frame grid the timeline follows (optional: an audio-only recording needs none)",
    )
    .or_passed(PortType::EncodedVideo),
    PortSpec::optional(
        "audio",
        PortType::RawAudio,
        "raw audio (optional: a video-only rig needs none)",
    ),
    PortSpec::optional("video2", PortType::RawVideo, "raw video or packets of a second camera")
        .or_passed(PortType::EncodedVideo),
    PortSpec::optional("video3", PortType::RawVideo, "raw video or packets of a third camera")
        .or_passed(PortType::EncodedVideo),
    PortSpec::optional("video4", PortType::RawVideo, "raw video or packets of a fourth camera")
        .or_passed(PortType::EncodedVideo),
    PortSpec::optional("video5", PortType::RawVideo, "raw video or packets of a fifth camera")
        .or_passed(PortType::EncodedVideo),
    PortSpec::optional("video6", PortType::RawVideo, "raw video or packets of a sixth camera")
        .or_passed(PortType::EncodedVideo),
    PortSpec::optional("video7", PortType::RawVideo, "raw video or packets of a seventh camera")
        .or_passed(PortType::EncodedVideo),
    PortSpec::optional("video8", PortType::RawVideo, "raw video or packets of an eighth camera")
        .or_passed(PortType::EncodedVideo),
    PortSpec::optional(
        "audio2",
        PortType::RawAudio,
        "raw audio of a second microphone, on its own clock",
    ),
    PortSpec::optional(
        "audio3",
        PortType::RawAudio,
        "raw audio of a third microphone",
    ),
    PortSpec::optional(
        "audio4",
        PortType::RawAudio,
        "raw audio of a fourth microphone",
    ),
    PortSpec::optional(
        "audio5",
        PortType::RawAudio,
        "raw audio of a fifth microphone",
    ),
    PortSpec::optional(
        "audio6",
        PortType::RawAudio,
        "raw audio of a sixth microphone",
    ),
    PortSpec::optional(
        "audio7",
        PortType::RawAudio,
        "raw audio of a seventh microphone",
    ),
    PortSpec::optional(
        "audio8",
        PortType::RawAudio,
        "raw audio of an eighth microphone",
    ),
];
const OUTPUTS: &[PortSpec] = &[
    PortSpec::new(
        "video",
        PortType::RawVideo,
        "`video` on the common timeline (packets when the input carries packets)",
    ),
    PortSpec::new(
        "audio",
        PortType::RawAudio,
        "`audio` on the common timeline",
    ),
    PortSpec::new(
        "video2",
        PortType::RawVideo,
        "`video2` on the common timeline",
    ),
    PortSpec::new(
        "video3",
        PortType::RawVideo,
        "`video3` on the common timeline",
    ),
    PortSpec::new(
        "video4",
        PortType::RawVideo,
        "`video4` on the common timeline",
    ),
    PortSpec::new(
        "video5",
        PortType::RawVideo,
        "`video5` on the common timeline",
    ),
    PortSpec::new(
        "video6",
        PortType::RawVideo,
        "`video6` on the common timeline",
    ),
    PortSpec::new(
        "video7",
        PortType::RawVideo,
        "`video7` on the common timeline",
    ),
    PortSpec::new(
        "video8",
        PortType::RawVideo,
        "`video8` on the common timeline",
    ),
    PortSpec::new(
        "audio2",
        PortType::RawAudio,
        "`audio2` on the common timeline",
    ),
    PortSpec::new(
        "audio3",
        PortType::RawAudio,
        "`audio3` on the common timeline",
    ),
    PortSpec::new(
        "audio4",
        PortType::RawAudio,
        "`audio4` on the common timeline",
    ),
    PortSpec::new(
        "audio5",
        PortType::RawAudio,
        "`audio5` on the common timeline",
    ),
    PortSpec::new(
        "audio6",
        PortType::RawAudio,
        "`audio6` on the common timeline",
    ),
    PortSpec::new(
        "audio7",
        PortType::RawAudio,
        "`audio7` on the common timeline",
    ),
    PortSpec::new(
        "audio8",
        PortType::RawAudio,
        "`audio8` on the common timeline",
    ),
];

pub const SPEC: KindSpec = KindSpec {
    kind: "sync",
    doc: "Puts up to 8 cameras (`video`, `video2` .. `video8`) and up to 8 audio streams (`audio`, `audio2` .. `audio8`) on one timeline from their capture timestamps; every output's pts start at 0 at one instant T0 (the latest first capture, on the first camera's frame grid). Each input comes out on the output of the same name. Each audio stream's clock drift is measured and corrected by resampling on its own (two microphones run on two crystals). While `paused` (a live param), nothing is recorded: the paused span, rounded up to whole frames, is cut from every output alike, which go on after it without a gap and in sync; what a pause leaves out is not counted as dropped.",
    inputs: INPUTS,
    any_inputs: None,
    outputs: OUTPUTS,
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

    #[test]
    fn settings_from_defaults() {
        assert_settings_parse(&SPEC, Settings::from_params);
        let s = Settings::from_params(&with(&SPEC, "tolerance_ms", json!(5))).unwrap();
        assert_eq!(s.tolerance_ms, 5.0);
        assert!(!s.paused);
        let s = Settings::from_params(&with(&SPEC, "paused", json!(true))).unwrap();
        assert!(s.paused);
        let mutable: Vec<&str> = PARAMS.iter().filter(|p| p.live).map(|p| p.name).collect();
        assert_eq!(mutable, ["buffer_ms", "tolerance_ms", "paused"]);
        assert_eq!(
            Settings::default().keyframe_lead_ms,
            DEFAULT_KEYFRAME_LEAD_MS
        );
    }

    #[test]
    fn every_camera_input_passes_packets_through() {
        for port in SPEC.inputs {
            let expected = port
                .name
                .starts_with("video")
                .then_some(PortType::EncodedVideo);
            assert_eq!(port.passes, expected, "{}", port.name);
        }
    }

    #[test]
    fn packet_cameras_are_all_encoded_and_never_paused() {
        let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let defaults = with(&SPEC, "buffer_ms", json!(500));
        assert!(packet_rules(&[], &names(&["video"]), &defaults).is_empty());
        assert!(packet_rules(&names(&["video", "video2"]), &[], &defaults).is_empty());
        let mixed = packet_rules(&names(&["video"]), &names(&["video2"]), &defaults);
        assert_eq!(mixed.len(), 1);
        assert_eq!(mixed[0].param, "inputs");
        assert!(
            mixed[0].message.contains("raw video on video2"),
            "{}",
            mixed[0].message
        );
        let paused = packet_rules(&names(&["video"]), &[], &with(&SPEC, "paused", json!(true)));
        assert_eq!(paused.len(), 1);
        assert_eq!(paused[0].param, "paused");
    }
}
