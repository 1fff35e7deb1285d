//! [`RecordingConfigOptions`]: the all-optional form a frontend sends (JSON
//! from a web view, a Tauri command's argument), made into a
//! [`RecordingConfig`] with errors naming the field and what it accepts.

use serde::Deserialize;

use crate::config::{Container, FrameRate, RecordingConfig, StreamOutput, VideoResolution};
use crate::error::{RecorderError, Result};

/// Every field optional; absent ones keep [`RecordingConfig::default`]'s.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecordingConfigOptions {
    /// `vga`, `720p`, `1080p`, `4k`, or `WIDTHxHEIGHT`.
    pub video_resolution: Option<String>,
    /// `fast`, `balanced`, `high`, `ultra`.
    pub video_quality: Option<String>,
    /// Frames per second (29.97 is taken as 30000/1001).
    pub frame_rate: Option<f64>,
    /// `h264`, `h265`, `vp9`, `av1`.
    pub video_codec: Option<String>,
    /// Bits per second (replaces the CRF).
    pub video_bitrate: Option<u32>,
    /// Constant rate factor on the x264 scale (0..=51), instead of the quality's.
    pub crf: Option<u8>,
    /// Seconds between keyframes.
    pub keyframe_interval: Option<u32>,
    /// `aac`, `opus`, `mp3`.
    pub audio_codec: Option<String>,
    /// `low`, `voice`, `standard`, `high`, `maximum`.
    pub audio_quality: Option<String>,
    /// Bits per second, instead of the quality's.
    pub audio_bitrate: Option<u32>,
    /// 8000..=192000.
    pub sample_rate: Option<u32>,
    /// 1..=8.
    pub channels: Option<u32>,
    /// Loudness normalization.
    pub enable_normalization: Option<bool>,
    /// LUFS, -70..=-5.
    pub target_loudness: Option<f32>,
    /// Background noise suppression (48 kHz only).
    pub noise_suppression: Option<bool>,
    /// `mp4`, `mkv`, `webm` (absent: from the path).
    pub container: Option<String>,
    /// Stream live as well: `rtmp://host/app`, `rtmps://...`, `srt://host:port`.
    pub stream_url: Option<String>,
    /// RTMP(S) stream key (with `stream_url`).
    pub stream_key: Option<String>,
    /// SRT passphrase (with `stream_url`).
    pub stream_passphrase: Option<String>,
}

impl RecordingConfigOptions {
    /// The config these options describe, checked like any config.
    pub fn into_config(self) -> Result<RecordingConfig> {
        let mut c = RecordingConfig::default();
        let v = &mut c.video;
        if let Some(r) = &self.video_resolution {
            v.resolution = resolution(r)?;
        }
        set(&mut v.quality_preset, "video_quality", &self.video_quality)?;
        set(&mut v.codec, "video_codec", &self.video_codec)?;
        if let Some(f) = self.frame_rate {
            v.frame_rate = FrameRate::Custom(f);
        }
        v.target_bitrate = self.video_bitrate.or(v.target_bitrate);
        v.crf = self.crf.or(v.crf);
        v.keyframe_interval = self.keyframe_interval.unwrap_or(v.keyframe_interval);
        let a = c.audio.as_mut().expect("the default config has audio");
        set(&mut a.codec, "audio_codec", &self.audio_codec)?;
        set(&mut a.quality_preset, "audio_quality", &self.audio_quality)?;
        a.target_bitrate = self.audio_bitrate.or(a.target_bitrate);
        a.sample_rate = self.sample_rate.unwrap_or(a.sample_rate);
        a.channels = self.channels.unwrap_or(a.channels);
        a.enable_normalization = self.enable_normalization.unwrap_or(a.enable_normalization);
        a.target_loudness = self.target_loudness.unwrap_or(a.target_loudness);
        a.noise_suppression = self.noise_suppression.unwrap_or(a.noise_suppression);
        if let Some(text) = &self.container {
            let mut container = Container::Auto;
            set(&mut container, "container", &Some(text.clone()))?;
            c.container = Some(container);
        }
        c.stream = self.stream()?;
        c.validate()?;
        Ok(c)
    }

    /// The live stream these options ask for, if any.
    fn stream(&self) -> Result<Option<StreamOutput>> {
        let Some(url) = &self.stream_url else {
            if self.stream_key.is_some() || self.stream_passphrase.is_some() {
                return Err(RecorderError::InvalidOption {
                    field: "stream_url",
                    value: String::new(),
                    accepted: "a URL (rtmp://, rtmps://, srt://) when stream_key or stream_passphrase is set".into(),
                });
            }
            return Ok(None);
        };
        Ok(Some(StreamOutput {
            url: url.clone(),
            key: self.stream_key.clone(),
            passphrase: self.stream_passphrase.clone(),
        }))
    }
}

/// Sets `field` from `text` (one of the choice's names, any case).
fn set<C: node_catalog::Choice>(
    field: &mut C,
    name: &'static str,
    text: &Option<String>,
) -> Result<()> {
    let Some(text) = text else {
        return Ok(());
    };
    let lower = text.trim().to_ascii_lowercase();
    match C::ALL.iter().find(|c| c.name() == lower) {
        Some(c) => {
            *field = *c;
            Ok(())
        }
        None => Err(RecorderError::InvalidOption {
            field: name,
            value: text.clone(),
            accepted: C::NAMES.join(", "),
        }),
    }
}

fn resolution(text: &str) -> Result<VideoResolution> {
    let lower = text.trim().to_ascii_lowercase();
    let named = match lower.as_str() {
        "vga" | "480p" => Some(VideoResolution::VGA),
        "720p" | "hd" => Some(VideoResolution::HD720p),
        "1080p" | "fullhd" | "full hd" => Some(VideoResolution::HD1080p),
        "4k" | "2160p" | "uhd" => Some(VideoResolution::UHD4K),
        _ => None,
    };
    if let Some(r) = named {
        return Ok(r);
    }
    let custom = lower.split_once('x').and_then(|(w, h)| {
        Some(VideoResolution::Custom {
            width: w.trim().parse().ok()?,
            height: h.trim().parse().ok()?,
        })
    });
    custom.ok_or_else(|| RecorderError::InvalidOption {
        field: "video_resolution",
        value: text.to_string(),
        accepted: "vga, 720p, 1080p, 4k, or WIDTHxHEIGHT (e.g. 1600x900)".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seeds_tauri_options() {
        let o: RecordingConfigOptions = serde_json::from_str(
            r#"{"video_resolution":"1080p","video_quality":"high","frame_rate":60.0,"audio_bitrate":192000}"#,
        )
        .unwrap();
        let c = o.into_config().unwrap();
        assert_eq!(c.video.resolution, VideoResolution::HD1080p);
        assert_eq!(c.video.effective_crf(), 18);
        assert_eq!(c.video.frame_rate.fps(), 60.0);
        assert_eq!(c.audio.unwrap().effective_bitrate(), 192_000);
    }

    #[test]
    fn a_stream_is_checked_like_the_graph_checks_it() {
        let o: RecordingConfigOptions = serde_json::from_str(
            r#"{"stream_url":"rtmp://live.example.com/app","stream_key":"k"}"#,
        )
        .unwrap();
        let stream = o.into_config().unwrap().stream.unwrap();
        assert_eq!(
            (stream.url.as_str(), stream.key.as_deref()),
            ("rtmp://live.example.com/app", Some("k"))
        );
        let bad = RecordingConfigOptions {
            stream_url: Some("http://example.com/live".into()),
            ..Default::default()
        };
        let e = bad.into_config().unwrap_err().to_string();
        assert!(
            e.contains("stream") && e.contains("cannot stream to `http://`"),
            "{e}"
        );
        let keyless = RecordingConfigOptions {
            stream_key: Some("k".into()),
            ..Default::default()
        };
        assert!(keyless
            .into_config()
            .unwrap_err()
            .to_string()
            .contains("stream_url"));
    }

    #[test]
    fn errors_name_the_field_and_the_accepted_values() {
        let o = RecordingConfigOptions {
            video_quality: Some("extreme".into()),
            ..Default::default()
        };
        let e = o.into_config().unwrap_err().to_string();
        assert!(
            e.contains("video_quality") && e.contains("fast, balanced, high, ultra"),
            "{e}"
        );
        let o = RecordingConfigOptions {
            video_resolution: Some("huge".into()),
            ..Default::default()
        };
        assert!(o
            .into_config()
            .unwrap_err()
            .to_string()
            .contains("WIDTHxHEIGHT"));
        // Out of range: the graph validator's words.
        let o = RecordingConfigOptions {
            sample_rate: Some(4000),
            ..Default::default()
        };
        let e = o.into_config().unwrap_err().to_string();
        assert!(e.contains("sample_rate"), "{e}");
        let unknown = serde_json::from_str::<RecordingConfigOptions>(r#"{"fps":30}"#);
        assert!(unknown
            .unwrap_err()
            .to_string()
            .contains("unknown field `fps`"));
    }
}
