//! `video-encode`: H.264, H.265, VP9, AV1, or MJPEG (the intra-only
//! mezzanine codec of links between machines).
//!
//! `quality` picks a CRF and a speed preset ([`Quality::crf`],
//! [`Quality::speed`]); `crf` overrides the CRF (in the codec's own scale),
//! `bitrate` replaces it with ABR, or CBR with `rate_control: cbr`.

use serde_json::Value;

use super::{no_inputs_rule, problems, KindSpec, PortSpec};
use crate::params::{ParamSpec, Params};
use crate::read::Reader;
use crate::{PortType, Problem};

crate::choice! {
    /// Video codecs.
    pub enum Codec { H264 = "h264", H265 = "h265", Vp9 = "vp9", Av1 = "av1", Mjpeg = "mjpeg" }
}

impl Codec {
    /// The largest CRF the codec accepts.
    pub const fn crf_max(self) -> u32 {
        match self {
            Codec::H264 | Codec::H265 => 51,
            Codec::Vp9 | Codec::Av1 => 63,
            // MJPEG's quantizer scale (FFmpeg's `-q:v`).
            Codec::Mjpeg => 31,
        }
    }

    /// A CRF given on the x264 scale (0..=51), in this codec's scale.
    pub fn crf_from_x264_scale(self, crf: u32) -> u32 {
        match self {
            Codec::H264 | Codec::H265 => crf,
            Codec::Vp9 | Codec::Av1 => (crf * 63 + 25) / 51,
            // 13 / 18 / 23 / 28 (ultra..fast) to q 2 / 4 / 6 / 8: q 2 is
            // near-transparent, q 8 still shows no blocks on camera content.
            Codec::Mjpeg => ((crf.max(13) - 13) * 2 + 2) / 5 + 2,
        }
    }
}

crate::choice! {
    /// Speed presets, x264 names, fastest first.
    pub enum Speed {
        Ultrafast = "ultrafast",
        Superfast = "superfast",
        Veryfast = "veryfast",
        Faster = "faster",
        Fast = "fast",
        Medium = "medium",
        Slow = "slow",
        Slower = "slower",
        Veryslow = "veryslow",
    }
}

impl Speed {
    /// 0 (ultrafast) ..= 8 (veryslow).
    pub fn rank(self) -> u32 {
        self as u32
    }

    /// How many presets `other` is faster than this one.
    pub fn rank_distance(self, other: Speed) -> i32 {
        self.rank() as i32 - other.rank() as i32
    }

    /// The preset `delta` steps slower (positive) or faster (negative).
    pub fn step(self, delta: i32) -> Option<Speed> {
        let r = self.rank() as i32 + delta;
        <Speed as crate::Choice>::ALL
            .get(usize::try_from(r).ok()?)
            .copied()
    }
}

crate::choice! {
    /// The `quality` presets.
    pub enum Quality { Fast = "fast", Balanced = "balanced", High = "high", Ultra = "ultra" }
}

impl Quality {
    /// The CRF on the x264 scale.
    pub fn crf(self) -> u32 {
        match self {
            Quality::Fast => 28,
            Quality::Balanced => 23,
            Quality::High => 18,
            Quality::Ultra => 13,
        }
    }

    /// The speed preset.
    pub fn speed(self) -> Speed {
        match self {
            Quality::Fast | Quality::Balanced => Speed::Veryfast,
            Quality::High => Speed::Fast,
            Quality::Ultra => Speed::Medium,
        }
    }
}

crate::choice! {
    /// With `bitrate`: average or constant.
    pub enum RateMode { Abr = "abr", Cbr = "cbr" }
}

crate::choice! {
    /// Hardware encoders.
    pub enum HwAccel { Auto = "auto", None = "none", Nvenc = "nvenc", Vaapi = "vaapi" }
}

pub const DEFAULT_CODEC: Codec = Codec::H264;
pub const DEFAULT_QUALITY: Quality = Quality::Balanced;
pub const DEFAULT_RATE_CONTROL: RateMode = RateMode::Abr;
pub const DEFAULT_KEYFRAME_INTERVAL: f64 = 2.0;
/// 0: automatic.
pub const DEFAULT_THREADS: u32 = 0;
pub const DEFAULT_HWACCEL: HwAccel = HwAccel::Auto;
pub const DEFAULT_DEGRADE: bool = false;

/// The params of `video-encode`, typed.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub codec: Codec,
    pub quality: Quality,
    /// `None`: from `quality`.
    pub speed: Option<Speed>,
    /// In the codec's scale; `None`: from `quality`.
    pub crf: Option<u32>,
    /// Bits per second, instead of a CRF.
    pub bitrate: Option<u64>,
    pub rate_control: RateMode,
    /// Seconds between keyframes.
    pub keyframe_interval: f64,
    pub threads: u32,
    pub tune: Option<String>,
    pub hwaccel: HwAccel,
    pub degrade: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            codec: DEFAULT_CODEC,
            quality: DEFAULT_QUALITY,
            speed: None,
            crf: None,
            bitrate: None,
            rate_control: DEFAULT_RATE_CONTROL,
            keyframe_interval: DEFAULT_KEYFRAME_INTERVAL,
            threads: DEFAULT_THREADS,
            tune: None,
            hwaccel: DEFAULT_HWACCEL,
            degrade: DEFAULT_DEGRADE,
        }
    }
}

impl Settings {
    pub fn from_params(p: &Params) -> Result<Settings, Problem> {
        let r = Reader::new(PARAMS, p);
        Ok(Settings {
            codec: r.choice("codec", DEFAULT_CODEC)?,
            quality: r.choice("quality", DEFAULT_QUALITY)?,
            speed: r.choice_opt("speed")?,
            crf: r.int_opt("crf")?.map(|c| c as u32),
            bitrate: r.bitrate_opt("bitrate")?,
            rate_control: r.choice("rate_control", DEFAULT_RATE_CONTROL)?,
            keyframe_interval: r.float("keyframe_interval", DEFAULT_KEYFRAME_INTERVAL)?,
            threads: r.int("threads", DEFAULT_THREADS.into())? as u32,
            tune: r.text_opt("tune")?,
            hwaccel: r.choice("hwaccel", DEFAULT_HWACCEL)?,
            degrade: r.flag("degrade", DEFAULT_DEGRADE)?,
        })
    }

    /// The speed preset: `speed`, else the quality's.
    pub fn effective_speed(&self) -> Speed {
        self.speed.unwrap_or(self.quality.speed())
    }

    /// The CRF in the codec's scale: `crf`, else the quality's.
    pub fn effective_crf(&self) -> u32 {
        self.crf
            .unwrap_or_else(|| self.codec.crf_from_x264_scale(self.quality.crf()))
    }
}

/// `crf` beyond what `codec` takes.
fn crf_out_of_range(crf: i64, codec: Codec) -> Option<Problem> {
    let max = codec.crf_max();
    (!(0..=max as i64).contains(&crf)).then(|| {
        Problem::new(
            "crf",
            format!("crf {crf} is out of range 0..={max} for {codec}"),
        )
        .hint("h264 and h265 take crf 0..=51, vp9 and av1 0..=63, mjpeg its quantizer 1..=31; lower is better quality")
    })
}

fn rules(p: &Params) -> Vec<Problem> {
    let s = match Settings::from_params(p) {
        Ok(s) => s,
        read => return problems(read),
    };
    let mut out = Vec::new();
    if let Some(crf) = s.crf {
        out.extend(crf_out_of_range(crf.into(), s.codec));
    }
    if s.crf.is_some() && s.bitrate.is_some() {
        out.push(Problem::new(
            "bitrate",
            "set either crf or bitrate, not both",
        ));
    }
    out
}

/// `crf` is checked against the range of the codec given (else the
/// default), before the param's own type range (0..=63, every codec's).
fn value_rule(name: &str, value: &Value, written: &Params) -> Option<Problem> {
    if name != "crf" {
        return None;
    }
    let codec = written
        .str("codec")
        .and_then(<Codec as crate::Choice>::from_name)
        .unwrap_or(DEFAULT_CODEC);
    crf_out_of_range(value.as_i64()?, codec)
}

const PARAMS: &[ParamSpec] = &[
    ParamSpec::choice("codec", Codec::NAMES, Some(DEFAULT_CODEC.name()), "video codec"),
    ParamSpec::choice("quality", Quality::NAMES, Some(DEFAULT_QUALITY.name()), QUALITY_DOC),
    ParamSpec::choice("speed", Speed::NAMES, None, "encoder speed preset (x264/x265 names); VP9: realtime cpu-used 8..5 for ultrafast..faster, then good cpu-used 4..0; SVT-AV1: preset 12..4; libaom: cpu-used 8..0; absent: from quality"),
    ParamSpec::int("crf", (0, Codec::Vp9.crf_max() as i64), None, "constant rate factor (0..=51 for h264/h265, 0..=63 for vp9/av1; mjpeg: its quantizer 1..=31); absent: from quality; live with libx264 (a CRF encode), other encoders keep theirs and log why").live(),
    ParamSpec::bitrate("bitrate", (10_000, 400_000_000), "target bitrate (ABR): set, it replaces the CRF of `quality` and `crf`; live with libx264 (an ABR or CBR encode), other encoders keep theirs and log why").live(),
    ParamSpec::choice("rate_control", RateMode::NAMES, Some(DEFAULT_RATE_CONTROL.name()), "with `bitrate`: average (abr) or constant (cbr: maxrate = bitrate, 1 s VBV buffer)"),
    ParamSpec::float("keyframe_interval", (0.1, 60.0), Some(DEFAULT_KEYFRAME_INTERVAL), "seconds between keyframes"),
    ParamSpec::int("threads", (0, 64), Some(DEFAULT_THREADS as i64), "encoder threads; 0: automatic"),
    ParamSpec::text("tune", None, "x264/x265 tune, e.g. zerolatency, film, animation (other encoders: ignored with a warning)"),
    ParamSpec::choice("hwaccel", HwAccel::NAMES, Some(DEFAULT_HWACCEL.name()), "hardware encoder: `auto` uses one when there is one, else software with a log line; `nvenc` or `vaapi` asked for by name fails the run at start, with the reason, when it cannot be used; `none`: software"),
    ParamSpec::bool("keyframe", false, "an action: `true` makes the first frame captured at or after the update's instant a keyframe (the control API asks for one where a recording starts or splits, so the file begins there)").action(),
    ParamSpec::bool("degrade", DEFAULT_DEGRADE, "graceful degradation (libx264): when the input queue stays full or frames are skipped for 2 s, switch to the next faster speed preset (same stream headers, same file); back one step after 10 s without pressure. Never with no_drop (replayed) input"),
];

/// What [`Quality::crf`] and [`Quality::speed`] say, for `runtime nodes`
/// (a unit test holds the two together).
const QUALITY_DOC: &str = "CRF 28 / 23 / 18 / 13 (h264/h265; vp9/av1: 35 / 28 / 22 / 16) with speed presets veryfast / veryfast / fast / medium";

pub const SPEC: KindSpec = KindSpec {
    kind: "video-encode",
    doc: "Encodes raw video: H.264 (libx264), H.265 (libx265), VP9 (libvpx-vp9), AV1 (SVT-AV1, else libaom), MJPEG (intra-only, FFmpeg's own: the mezzanine of links between machines).",
    // An encoder's time per frame is uneven (start-up, keyframes, frame
    // threads finishing together): 8 frames absorb that without a skip at
    // 60 fps where 4 did not.
    inputs: &[PortSpec::new("video", PortType::RawVideo, "raw video (yuv420p preferred)").queue(8)],
    any_inputs: None,
    outputs: &[PortSpec::new("video", PortType::EncodedVideo, "encoded video packets")],
    params: PARAMS,
    rules,
    host_checks: super::no_rules,
    value_rule,
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
        let s = Settings::from_params(&with(&SPEC, "speed", json!("slower"))).unwrap();
        assert_eq!(s.effective_speed(), Speed::Slower);
        let s = Settings::from_params(&with(&SPEC, "bitrate", json!("4M"))).unwrap();
        assert_eq!(s.bitrate, Some(4_000_000));
    }

    #[test]
    fn hevc_is_not_a_codec_name() {
        assert_eq!(Codec::from_name("hevc"), None);
        assert_eq!(
            rules(&with(&SPEC, "codec", json!("hevc")))[0].param,
            "codec"
        );
    }

    #[test]
    fn the_quality_doc_is_the_quality_table() {
        let all = Quality::ALL;
        let crfs = |codec: Codec| {
            all.iter()
                .map(|q| codec.crf_from_x264_scale(q.crf()).to_string())
                .collect::<Vec<_>>()
                .join(" / ")
        };
        let speeds: Vec<&str> = all.iter().map(|q| q.speed().name()).collect();
        let doc = format!(
            "CRF {} (h264/h265; vp9/av1: {}) with speed presets {}",
            crfs(Codec::H264),
            crfs(Codec::Vp9),
            speeds.join(" / ")
        );
        assert_eq!(QUALITY_DOC, doc);
    }

    #[test]
    fn crf_range_depends_on_the_codec() {
        let p = |crf: i64, codec: &str| {
            let mut p = with(&SPEC, "crf", json!(crf));
            p.0.insert("codec".into(), json!(codec));
            p
        };
        assert_eq!(rules(&p(51, "h264")), vec![]);
        let e = rules(&p(55, "h264"));
        assert_eq!(e[0].message, "crf 55 is out of range 0..=51 for h264");
        assert_eq!(rules(&p(63, "av1")), vec![]);
        let written =
            |codec: &str| Params(serde_json::Map::from_iter([("codec".into(), json!(codec))]));
        assert!(value_rule("crf", &json!(70), &written("vp9")).is_some());
        assert!(value_rule("crf", &json!(55), &written("vp9")).is_none());
        assert!(value_rule("crf", &json!(55), &written("nope")).is_some());
        assert!(value_rule("crf", &json!(55), &Params::default()).is_some());
        assert!(value_rule("threads", &json!(99), &Params::default()).is_none());
        let mut both = p(20, "h264");
        both.0.insert("bitrate".into(), json!(1_000_000));
        assert_eq!(
            rules(&both)[0].message,
            "set either crf or bitrate, not both"
        );
    }

    #[test]
    fn speeds_step() {
        assert_eq!(Speed::Veryfast.step(-1), Some(Speed::Superfast));
        assert_eq!(Speed::Ultrafast.step(-1), None);
        assert_eq!(Speed::Veryslow.step(1), None);
        assert_eq!(Speed::Medium.rank_distance(Speed::Veryfast), 3);
    }
}
