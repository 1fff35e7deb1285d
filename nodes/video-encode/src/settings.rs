//! The node's params and what they mean for each encoder.
//!
//! The params, their defaults and the `quality` table (a CRF on the x264
//! scale and a speed preset per quality) are the catalog's
//! ([`node_catalog::kinds::video_encode`]). VP9 and AV1 CRFs run 0..=63:
//! the x264 value is scaled by 63/51. `crf` overrides the CRF (in the
//! codec's own scale), `bitrate` replaces it with ABR, or CBR with
//! `rate_control: cbr` (maxrate = bitrate, one second of VBV buffer).
//! `speed` overrides the preset; x264/x265 take it by name, the others map
//! it (see [`SpeedExt`]).

use anyhow::Result;
use node_api::Params;
use node_catalog::kinds::video_encode::{self as kind, RateMode};
use node_catalog::Rational;

pub use node_catalog::kinds::video_encode::{Codec, HwAccel, Speed};

/// What each codec is called by FFmpeg and which encoders make it.
pub trait CodecExt {
    /// The FFmpeg codec name carried in packets.
    fn stream_name(self) -> &'static str;
    /// Software encoders, in order of preference.
    fn software_encoders(self) -> &'static [&'static str];
    fn nvenc_encoder(self) -> Option<&'static str>;
    fn vaapi_encoder(self) -> &'static str;
}

impl CodecExt for Codec {
    fn stream_name(self) -> &'static str {
        match self {
            Codec::H264 => "h264",
            Codec::H265 => "hevc",
            Codec::Vp9 => "vp9",
            Codec::Av1 => "av1",
            Codec::Mjpeg => "mjpeg",
        }
    }

    fn software_encoders(self) -> &'static [&'static str] {
        match self {
            Codec::H264 => &["libx264"],
            Codec::H265 => &["libx265"],
            Codec::Vp9 => &["libvpx-vp9"],
            Codec::Av1 => &["libsvtav1", "libaom-av1"],
            Codec::Mjpeg => &["mjpeg"],
        }
    }

    fn nvenc_encoder(self) -> Option<&'static str> {
        match self {
            Codec::H264 => Some("h264_nvenc"),
            Codec::H265 => Some("hevc_nvenc"),
            Codec::Vp9 | Codec::Mjpeg => None,
            Codec::Av1 => Some("av1_nvenc"),
        }
    }

    fn vaapi_encoder(self) -> &'static str {
        match self {
            Codec::H264 => "h264_vaapi",
            Codec::H265 => "hevc_vaapi",
            Codec::Vp9 => "vp9_vaapi",
            Codec::Av1 => "av1_vaapi",
            Codec::Mjpeg => "mjpeg_vaapi",
        }
    }
}

/// What each speed preset means to each encoder.
pub trait SpeedExt {
    /// The x264 options of this preset that show in the stream headers
    /// (SPS/PPS): reference frames, B-frames, weighted prediction, CABAC,
    /// 8×8 transform. A faster preset given these writes the same headers.
    fn x264_header_options(self) -> &'static str;
    /// libvpx-vp9: the realtime deadline with cpu-used 8..5 for the four
    /// fastest presets, then the good deadline with cpu-used 4..0.
    fn vp9(self) -> (&'static str, u32);
    /// SVT-AV1 preset: 12 (ultrafast) ..= 4 (veryslow).
    fn svt_av1(self) -> u32;
    /// libaom: (usage, cpu-used 8 ..= 0); the two fastest use realtime usage.
    fn aom(self) -> (&'static str, u32);
    /// NVENC preset p1 (fastest) ..= p7 (best).
    fn nvenc(self) -> &'static str;
}

impl SpeedExt for Speed {
    fn x264_header_options(self) -> &'static str {
        match self {
            Speed::Ultrafast => "ref=1:bframes=0:weightp=0:weightb=0:cabac=0:8x8dct=0",
            Speed::Superfast | Speed::Veryfast => {
                "ref=1:bframes=3:b-pyramid=normal:weightp=1:weightb=1:cabac=1:8x8dct=1"
            }
            Speed::Faster => {
                "ref=2:bframes=3:b-pyramid=normal:weightp=1:weightb=1:cabac=1:8x8dct=1"
            }
            Speed::Fast => "ref=2:bframes=3:b-pyramid=normal:weightp=2:weightb=1:cabac=1:8x8dct=1",
            Speed::Medium => {
                "ref=3:bframes=3:b-pyramid=normal:weightp=2:weightb=1:cabac=1:8x8dct=1"
            }
            Speed::Slow => "ref=5:bframes=3:b-pyramid=normal:weightp=2:weightb=1:cabac=1:8x8dct=1",
            Speed::Slower => {
                "ref=8:bframes=3:b-pyramid=normal:weightp=2:weightb=1:cabac=1:8x8dct=1"
            }
            Speed::Veryslow => {
                "ref=16:bframes=8:b-pyramid=normal:weightp=2:weightb=1:cabac=1:8x8dct=1"
            }
        }
    }

    fn vp9(self) -> (&'static str, u32) {
        let r = self.rank();
        if r <= 3 {
            ("realtime", 8 - r)
        } else {
            ("good", 8 - r)
        }
    }

    fn svt_av1(self) -> u32 {
        12 - self.rank()
    }

    fn aom(self) -> (&'static str, u32) {
        let r = self.rank();
        (if r <= 1 { "realtime" } else { "good" }, 8 - r)
    }

    fn nvenc(self) -> &'static str {
        ["p1", "p2", "p3", "p3", "p4", "p5", "p6", "p7", "p7"][self.rank() as usize]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateControl {
    /// Constant quality, in the codec's CRF scale.
    Crf(u32),
    /// Average bitrate, bits/s.
    Abr(u64),
    /// Constant bitrate, bits/s.
    Cbr(u64),
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub codec: Codec,
    pub speed: Speed,
    pub rate: RateControl,
    /// Seconds between keyframes.
    pub keyframe_interval: f64,
    /// 0: automatic.
    pub threads: u32,
    pub tune: Option<String>,
    pub hwaccel: HwAccel,
    /// Switch to faster presets under load (see [`crate::overload`]).
    pub degrade: bool,
    /// A degraded encoder runs `speed` but keeps every choice of this preset
    /// that shows in the stream headers, so its packets fit the same file.
    pub headers_of: Option<Speed>,
}

impl Settings {
    pub fn from_params(p: &Params) -> Result<Settings> {
        let s = kind::Settings::from_params(p)?;
        let rate = match (s.bitrate, s.rate_control) {
            (Some(b), RateMode::Cbr) => RateControl::Cbr(b),
            (Some(b), RateMode::Abr) => RateControl::Abr(b),
            (None, _) => RateControl::Crf(s.effective_crf()),
        };
        Ok(Settings {
            codec: s.codec,
            speed: s.effective_speed(),
            rate,
            keyframe_interval: s.keyframe_interval,
            threads: s.threads,
            tune: s.tune,
            hwaccel: s.hwaccel,
            degrade: s.degrade,
            headers_of: None,
        })
    }

    /// The same settings one speed preset faster (`None`: already the fastest),
    /// keeping the stream headers of the configured preset.
    pub fn faster(&self) -> Option<Settings> {
        let speed = self.speed.step(-1)?;
        Some(Settings {
            speed,
            headers_of: Some(self.headers_of.unwrap_or(self.speed)),
            ..self.clone()
        })
    }

    /// One step back towards the configured preset.
    pub fn slower(&self) -> Option<Settings> {
        let base = self.headers_of?;
        let speed = self.speed.step(1)?;
        Some(Settings {
            speed,
            headers_of: (speed != base).then_some(base),
            ..self.clone()
        })
    }

    /// Frames between keyframes at `fps`: round(fps × interval), at least 1.
    pub fn gop(&self, fps: Rational) -> u32 {
        (fps.as_f64() * self.keyframe_interval).round().max(1.0) as u32
    }
}

/// FFmpeg's FF_QP2LAMBDA: `global_quality` for quantizer 1.
const LAMBDA_PER_QP: u32 = 118;

/// Options for one encoder, as FFmpeg option strings (generic codec options
/// such as `b`, `g`, `maxrate` and the encoder's private ones alike), plus
/// whether keyframes must be forced per frame to keep the interval.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub options: Vec<(String, String)>,
    /// The encoder ignores `g` on its own or may shift keyframes (scene cuts):
    /// mark every gop-th frame as a keyframe.
    pub force_keyframes: bool,
    /// `tune` was given but this encoder has no such option.
    pub tune_ignored: bool,
}

#[cfg(test)]
impl Plan {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.options
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// The options of `encoder` (e.g. `libx264`, `hevc_nvenc`) for these settings at `fps`.
pub fn plan(settings: &Settings, encoder: &str, fps: Rational) -> Plan {
    let mut o: Vec<(String, String)> = Vec::new();
    let mut set = |k: &str, v: String| o.push((k.to_string(), v));
    let gop = settings.gop(fps);
    set("g", gop.to_string());
    set(
        "threads",
        if settings.threads == 0 {
            "auto".into()
        } else {
            settings.threads.to_string()
        },
    );

    let x26x = matches!(encoder, "libx264" | "libx265");
    let nvenc = encoder.ends_with("_nvenc");
    let vaapi = encoder.ends_with("_vaapi");
    let mut extra: Vec<String> = Vec::new(); // x264-params / x265-params / svtav1-params

    match encoder {
        "libx264" | "libx265" => {
            set("preset", settings.speed.name().into());
            set("forced-idr", "1".into());
            if let (Some(base), "libx264") = (settings.headers_of, encoder) {
                extra.push(base.x264_header_options().into());
                // x264 lowers the chroma QP offset (a PPS field) by 2 when
                // psy-RD is on, which the presets from `fast` up enable.
                let psy = |s: Speed| if s >= Speed::Fast { -2 } else { 0 };
                let offset = psy(base) - psy(settings.speed);
                if offset != 0 {
                    extra.push(format!("chroma-qp-offset={offset}"));
                }
            }
            if encoder == "libx265" {
                extra.push("log-level=error".into());
                extra.push("open-gop=0".into());
                if settings.threads > 0 {
                    extra.push(format!("pools={}", settings.threads));
                }
            }
        }
        "libvpx-vp9" => {
            let (deadline, cpu_used) = settings.speed.vp9();
            set("deadline", deadline.into());
            set("cpu-used", cpu_used.to_string());
            set("row-mt", "1".into());
        }
        "libsvtav1" => {
            set("preset", settings.speed.svt_av1().to_string());
            if settings.threads > 0 {
                extra.push(format!("lp={}", settings.threads));
            }
        }
        "libaom-av1" => {
            let (usage, cpu_used) = settings.speed.aom();
            set("usage", usage.into());
            set("cpu-used", cpu_used.to_string());
            set("row-mt", "1".into());
        }
        "mjpeg" => {
            // Our frames are limited-range yuv420p: JPEG proper is full
            // range (yuvj420p). Sending the samples as they are, marked
            // unofficial, keeps them bit-exact through a link's decoder
            // (which returns them as they were, whatever range it names).
            set("strict", "unofficial".into());
        }
        _ if nvenc => {
            set("preset", settings.speed.nvenc().into());
            set("forced-idr", "1".into());
        }
        _ => {} // VAAPI: speed is a driver matter
    }

    match settings.rate {
        RateControl::Crf(crf) => {
            if nvenc {
                set("rc", "vbr".into());
                set("cq", crf.to_string());
                set("b", "0".into());
            } else if vaapi {
                set("rc_mode", "CQP".into());
                set("qp", crf.to_string());
            } else if encoder == "mjpeg" {
                // A fixed quantizer: `global_quality` is in lambda units.
                set("flags", "+qscale".into());
                set("global_quality", (crf.max(1) * LAMBDA_PER_QP).to_string());
            } else {
                set("crf", crf.to_string());
                // libvpx / libaom: no bitrate means constant quality.
                set("b", "0".into());
            }
        }
        RateControl::Abr(b) => {
            set("b", b.to_string());
            if nvenc {
                set("rc", "vbr".into());
            } else if vaapi {
                set("rc_mode", "VBR".into());
                set("maxrate", (b * 2).to_string());
            }
        }
        RateControl::Cbr(b) => {
            set("b", b.to_string());
            set("bufsize", b.to_string());
            if encoder == "libsvtav1" {
                // SVT-AV1 refuses maxrate == bitrate; its own CBR mode instead.
                extra.push("rc=2".into());
            } else {
                set("maxrate", b.to_string());
                set("minrate", b.to_string());
            }
            match encoder {
                "libx264" => extra.push("nal-hrd=cbr".into()),
                "libx265" => extra.push("strict-cbr=1".into()),
                _ if nvenc => set("rc", "cbr".into()),
                _ if vaapi => set("rc_mode", "CBR".into()),
                _ => {}
            }
        }
    }

    let mut tune_ignored = false;
    if let Some(tune) = &settings.tune {
        if x26x {
            set("tune", tune.clone());
        } else {
            tune_ignored = true;
        }
    }
    let params_key = match encoder {
        "libx264" => Some("x264-params"),
        "libx265" => Some("x265-params"),
        "libsvtav1" => Some("svtav1-params"),
        _ => None,
    };
    if let (Some(key), false) = (params_key, extra.is_empty()) {
        set(key, extra.join(":"));
    }
    Plan {
        options: o,
        // SVT-AV1 (FFmpeg 5.1) ignores per-frame keyframe requests and
        // keeps an exact period from `g`; everyone else honors them.
        force_keyframes: encoder != "libsvtav1",
        tune_ignored,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn settings(params: serde_json::Value) -> Settings {
        let map = params.as_object().unwrap().clone();
        Settings::from_params(&Params(map)).unwrap()
    }

    const FPS30: Rational = Rational { num: 30, den: 1 };

    #[test]
    fn quality_maps_to_crf_and_preset_per_codec() {
        for (quality, x264_crf, wide_crf, preset) in [
            ("fast", 28, 35, "veryfast"),
            ("balanced", 23, 28, "veryfast"),
            ("high", 18, 22, "fast"),
            ("ultra", 13, 16, "medium"),
        ] {
            for codec in ["h264", "h265", "vp9", "av1"] {
                let s = settings(json!({ "codec": codec, "quality": quality }));
                let crf = if matches!(codec, "h264" | "h265") {
                    x264_crf
                } else {
                    wide_crf
                };
                assert_eq!(s.rate, RateControl::Crf(crf), "{codec} {quality}");
                assert_eq!(s.speed.name(), preset);
            }
        }
    }

    #[test]
    fn x264_and_x265_take_preset_crf_and_tune() {
        let s = settings(json!({ "codec": "h264", "quality": "high", "tune": "zerolatency" }));
        let p = plan(&s, "libx264", FPS30);
        assert_eq!(p.get("preset"), Some("fast"));
        assert_eq!(p.get("crf"), Some("18"));
        assert_eq!(p.get("tune"), Some("zerolatency"));
        assert_eq!(p.get("g"), Some("60"));
        assert!(p.force_keyframes && !p.tune_ignored);
        let s = settings(json!({ "codec": "h265", "speed": "slow", "crf": 30, "threads": 2 }));
        let p = plan(&s, "libx265", FPS30);
        assert_eq!(p.get("preset"), Some("slow"));
        assert_eq!(p.get("crf"), Some("30"));
        assert_eq!(p.get("threads"), Some("2"));
        assert_eq!(
            p.get("x265-params"),
            Some("log-level=error:open-gop=0:pools=2")
        );
    }

    #[test]
    fn vp9_speed_maps_to_deadline_and_cpu_used() {
        let expect = [
            ("ultrafast", "realtime", "8"),
            ("veryfast", "realtime", "6"),
            ("faster", "realtime", "5"),
            ("fast", "good", "4"),
            ("medium", "good", "3"),
            ("veryslow", "good", "0"),
        ];
        for (speed, deadline, cpu) in expect {
            let s = settings(json!({ "codec": "vp9", "speed": speed, "tune": "film" }));
            let p = plan(&s, "libvpx-vp9", FPS30);
            assert_eq!(
                (p.get("deadline"), p.get("cpu-used")),
                (Some(deadline), Some(cpu)),
                "{speed}"
            );
            assert_eq!(p.get("crf"), Some("28"));
            assert_eq!(p.get("b"), Some("0"));
            assert!(p.tune_ignored);
            assert_eq!(p.get("tune"), None);
        }
    }

    #[test]
    fn av1_speed_maps_to_svt_presets_and_aom_cpu_used() {
        for (speed, svt, aom) in [
            ("ultrafast", "12", "8"),
            ("veryfast", "10", "6"),
            ("medium", "7", "3"),
            ("veryslow", "4", "0"),
        ] {
            let s = settings(json!({ "codec": "av1", "speed": speed }));
            assert_eq!(
                plan(&s, "libsvtav1", FPS30).get("preset"),
                Some(svt),
                "{speed}"
            );
            assert_eq!(
                plan(&s, "libaom-av1", FPS30).get("cpu-used"),
                Some(aom),
                "{speed}"
            );
        }
        let s = settings(json!({ "codec": "av1", "speed": "ultrafast" }));
        assert_eq!(plan(&s, "libaom-av1", FPS30).get("usage"), Some("realtime"));
        assert!(!plan(&s, "libsvtav1", FPS30).force_keyframes);
    }

    #[test]
    fn bitrate_modes() {
        let s = settings(json!({ "codec": "h264", "bitrate": 4_000_000 }));
        assert_eq!(s.rate, RateControl::Abr(4_000_000));
        let p = plan(&s, "libx264", FPS30);
        assert_eq!(p.get("b"), Some("4000000"));
        assert_eq!(p.get("crf"), None);
        assert_eq!(p.get("maxrate"), None);

        let s = settings(json!({ "codec": "h264", "bitrate": 2_000_000, "rate_control": "cbr" }));
        let p = plan(&s, "libx264", FPS30);
        assert_eq!(
            (p.get("maxrate"), p.get("bufsize")),
            (Some("2000000"), Some("2000000"))
        );
        assert_eq!(p.get("x264-params"), Some("nal-hrd=cbr"));

        let s = settings(json!({ "codec": "av1", "bitrate": 1_000_000, "rate_control": "cbr" }));
        let p = plan(&s, "libsvtav1", FPS30);
        assert_eq!(p.get("maxrate"), None);
        assert_eq!(p.get("svtav1-params"), Some("rc=2"));

        let s = settings(json!({ "codec": "vp9", "bitrate": 1_000_000, "rate_control": "cbr" }));
        let p = plan(&s, "libvpx-vp9", FPS30);
        assert_eq!(
            (p.get("minrate"), p.get("maxrate")),
            (Some("1000000"), Some("1000000"))
        );
    }

    #[test]
    fn hardware_plans() {
        let s = settings(json!({ "codec": "h264", "quality": "balanced" }));
        let p = plan(&s, "h264_nvenc", FPS30);
        assert_eq!(
            (p.get("preset"), p.get("rc"), p.get("cq")),
            (Some("p3"), Some("vbr"), Some("23"))
        );
        let p = plan(&s, "h264_vaapi", FPS30);
        assert_eq!((p.get("rc_mode"), p.get("qp")), (Some("CQP"), Some("23")));
    }

    #[test]
    fn gop_from_interval() {
        let s = settings(json!({ "keyframe_interval": 1.5 }));
        assert_eq!(s.gop(Rational::new(30000, 1001)), 45);
        assert_eq!(s.gop(Rational::new(60, 1)), 90);
        let s = settings(json!({ "keyframe_interval": 0.1 }));
        assert_eq!(s.gop(Rational::new(5, 1)), 1);
    }
}
