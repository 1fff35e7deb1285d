//! What a recording is: [`RecordingConfig`] with its [`VideoSettings`] and
//! [`AudioSettings`], and the presets of the original design.
//!
//! The choices (codecs, quality presets, containers) are the catalog's own
//! enums, so a codec or preset exists once, for graph files and apps alike.
//! A config becomes a graph ([`crate::graph`]) and is validated by the same
//! validator as `runtime check`.

use runtime::control::ControlAddr;
use std::path::PathBuf;

use node_catalog::kinds::{app_audio, app_video, audio_encode, mux, screen, video_encode};
use node_catalog::Rational;

use crate::error::RecorderError;

/// Video codecs: H264, H265, Vp9, Av1.
pub type VideoCodec = video_encode::Codec;
/// Fast, Balanced, High, Ultra: CRF 28, 23, 18, 13.
pub type VideoQualityPreset = video_encode::Quality;
/// Aac, Opus, Mp3.
pub type AudioCodec = audio_encode::Codec;
/// Low, Voice, Standard, High, Maximum: 64, 96, 128, 192, 320 kb/s.
pub type AudioQualityPreset = audio_encode::Quality;
/// Mp4, Mkv, Webm (`Auto`: from the path's extension).
pub type Container = mux::Container;
/// The pixel layout an app submits: Rgb24, Rgba, Bgra, Nv12, Yuv420p (I420).
pub type PixelFormat = app_video::FrameFormat;
/// The sample layout an app submits: F32, S16 (interleaved), F32p, S16p (planar).
pub type SampleFormat = app_audio::SampleLayout;

/// Frame sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoResolution {
    /// 640×480.
    VGA,
    /// 1280×720.
    HD720p,
    /// 1920×1080.
    HD1080p,
    /// 3840×2160.
    UHD4K,
    /// Any size (4:2:0 formats need even sizes).
    Custom {
        /// Pixels.
        width: u32,
        /// Pixels.
        height: u32,
    },
}

impl VideoResolution {
    /// Width and height in pixels.
    pub fn dimensions(self) -> (u32, u32) {
        match self {
            VideoResolution::VGA => (640, 480),
            VideoResolution::HD720p => (1280, 720),
            VideoResolution::HD1080p => (1920, 1080),
            VideoResolution::UHD4K => (3840, 2160),
            VideoResolution::Custom { width, height } => (width, height),
        }
    }
}

/// Frame rates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FrameRate {
    /// 15 frames per second.
    FPS15,
    /// 24 frames per second (film).
    FPS24,
    /// 30 frames per second.
    FPS30,
    /// 60 frames per second.
    FPS60,
    /// Any rate in frames per second (29.97 is taken as 30000/1001).
    Custom(f64),
}

impl FrameRate {
    /// Frames per second.
    pub fn fps(self) -> f64 {
        match self {
            FrameRate::FPS15 => 15.0,
            FrameRate::FPS24 => 24.0,
            FrameRate::FPS30 => 30.0,
            FrameRate::FPS60 => 60.0,
            FrameRate::Custom(f) => f,
        }
    }

    /// As a fraction: whole rates exactly, NTSC rates as x/1001 (0/1 for
    /// a rate that is not a number, which validation refuses).
    pub fn rational(self) -> Rational {
        Rational::from_f64(self.fps()).unwrap_or(Rational { num: 0, den: 1 })
    }

    /// The duration of one frame.
    pub fn period(self) -> std::time::Duration {
        let r = self.rational();
        std::time::Duration::from_nanos((1_000_000_000 * r.den / r.num.max(1)) as u64)
    }
}

/// Where the pictures come from.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum VideoSource {
    /// Frames the app submits ([`crate::CombinedRecorder::submit_video_frame`]).
    #[default]
    Submitted,
    /// A camera: `None` the default one (a test pattern, with a warning, when there is none).
    Camera(Option<String>),
    /// The built-in moving test pattern.
    TestPattern,
    /// An X11 screen, all of it or a region, scaled to `resolution`
    /// (Wayland without Xwayland is not supported yet).
    Screen(ScreenSource),
}

/// A part of the screen in screen pixels: `x`, `y`, `width`, `height`.
pub type ScreenRegion = screen::Region;

/// What of a screen to record (the `screen` node's params).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScreenSource {
    /// The X display (and screen), e.g. `:0`; `None`: `$DISPLAY`.
    pub display: Option<String>,
    /// `None`: the whole screen.
    pub region: Option<ScreenRegion>,
    /// Draw the mouse pointer into the picture.
    pub cursor: bool,
}

impl Default for ScreenSource {
    fn default() -> Self {
        ScreenSource {
            display: screen::DEFAULT_DISPLAY.map(str::to_string),
            region: None,
            cursor: screen::DEFAULT_CURSOR,
        }
    }
}

/// Where the sound comes from.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum AudioSource {
    /// Samples the app submits ([`crate::CombinedRecorder::submit_audio_frame`]).
    #[default]
    Submitted,
    /// An input device: `None` the default one (a test tone, with a warning, when there is none).
    Microphone(Option<String>),
    /// The built-in test tone.
    TestTone,
}

/// What a submit does when the graph is behind (the encoder cannot keep up).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WhenBehind {
    /// The submit waits until there is room: nothing is lost (back-pressure).
    #[default]
    Wait,
    /// The submit returns at once; the oldest waiting video frame is
    /// dropped and counted (audio always waits).
    DropVideo,
}

/// The picture side of a recording.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoSettings {
    /// The size of the recorded picture (and of submitted frames).
    pub resolution: VideoResolution,
    /// Frames per second of the file.
    pub frame_rate: FrameRate,
    /// The video codec.
    pub codec: VideoCodec,
    /// CRF and encoder speed.
    pub quality_preset: VideoQualityPreset,
    /// Bits per second (average): replaces the CRF. `None`: the CRF rules.
    pub target_bitrate: Option<u32>,
    /// Constant rate factor on the x264 scale (0..=51). `None`: the preset's.
    pub crf: Option<u8>,
    /// Seconds between keyframes.
    pub keyframe_interval: u32,
    /// Frames waiting between the app (or camera) and the converter.
    pub buffer_size: u32,
    /// The layout of the frames the app submits.
    pub input_format: PixelFormat,
    /// Where the pictures come from.
    pub source: VideoSource,
}

/// The sound side of a recording.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioSettings {
    /// The audio codec.
    pub codec: AudioCodec,
    /// The bitrate, unless `target_bitrate` sets one.
    pub quality_preset: AudioQualityPreset,
    /// 8 kHz – 192 kHz.
    pub sample_rate: u32,
    /// 1 – 8.
    pub channels: u32,
    /// Bits per second. `None`: the preset's.
    pub target_bitrate: Option<u32>,
    /// Audio frames waiting between the app (or microphone) and the converter.
    pub buffer_size: u32,
    /// Loudness normalization to `target_loudness`.
    pub enable_normalization: bool,
    /// LUFS (-70 – -5).
    pub target_loudness: f32,
    /// Suppress steady background noise (fans, hum, hiss) in speech with
    /// RNNoise (the `noise-suppress` node), before loudness normalization;
    /// needs `sample_rate` 48 kHz.
    pub noise_suppression: bool,
    /// The layout of the samples the app submits.
    pub input_format: SampleFormat,
    /// Where the sound comes from.
    pub source: AudioSource,
}

/// A whole recording: what goes in, how it is encoded, what file comes out.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordingConfig {
    /// The picture side.
    pub video: VideoSettings,
    /// `None`: a recording without sound.
    pub audio: Option<AudioSettings>,
    /// `None` or `Auto`: from the output path's extension.
    pub container: Option<Container>,
    /// What a submit does when the graph is behind.
    pub when_behind: WhenBehind,
    /// Where the built-in nodes' executable is: `None` finds it (see
    /// [`crate::Runtime::node_dir`]).
    pub node_dir: Option<PathBuf>,
    /// Where each recording's node logs go (a directory per recording).
    pub run_dir: PathBuf,
    /// Serve the control API and its dashboard over each recording, as
    /// `runtime run --control` does (its URL and token in the recording's
    /// run directory, `control.json`): a dashboard, `runtime ctl` and the
    /// app then drive the same recording. `None`: not served.
    pub control: Option<ControlAddr>,
    /// Stream the recording live as well, from the same encoders (the
    /// `stream` node kind): `None`, recording only.
    pub stream: Option<StreamOutput>,
}

/// A live stream of a recording: an RTMP/RTMPS server or an SRT peer. The
/// stream has its own queue: a slow or unreachable server never costs the
/// recording a frame; it reconnects, and its losses are in the statistics
/// (node `stream`). With H.264 + AAC for RTMP (FLV).
#[derive(Debug, Clone, PartialEq)]
pub struct StreamOutput {
    /// `rtmp://host/app`, `rtmps://host/app` or `srt://host:port`.
    pub url: String,
    /// RTMP(S): the stream key, never shown in logs or statistics.
    pub key: Option<String>,
    /// SRT: the passphrase (10–79 characters), never shown either.
    pub passphrase: Option<String>,
}

/// Seconds between keyframes: video-encode's default.
pub const DEFAULT_KEYFRAME_INTERVAL: u32 = video_encode::DEFAULT_KEYFRAME_INTERVAL as u32;
/// Frames waiting before the video converter.
pub const DEFAULT_VIDEO_BUFFER: u32 = 8;
/// Audio frames waiting before the audio converter.
pub const DEFAULT_AUDIO_BUFFER: u32 = 16;
/// LUFS, when normalization is on (streaming platforms' level).
pub const DEFAULT_TARGET_LOUDNESS: f32 = -16.0;

impl Default for VideoSettings {
    /// 1080p30 H.264, balanced (CRF 23).
    fn default() -> Self {
        VideoSettings {
            resolution: VideoResolution::HD1080p,
            frame_rate: FrameRate::FPS30,
            codec: video_encode::DEFAULT_CODEC,
            quality_preset: video_encode::DEFAULT_QUALITY,
            target_bitrate: None,
            crf: None,
            keyframe_interval: DEFAULT_KEYFRAME_INTERVAL,
            buffer_size: DEFAULT_VIDEO_BUFFER,
            input_format: PixelFormat::Rgb24,
            source: VideoSource::Submitted,
        }
    }
}

impl Default for AudioSettings {
    /// AAC 128 kb/s, 48 kHz stereo.
    fn default() -> Self {
        AudioSettings {
            codec: audio_encode::DEFAULT_CODEC,
            quality_preset: audio_encode::DEFAULT_QUALITY,
            sample_rate: node_catalog::kinds::common::DEFAULT_SAMPLE_RATE,
            channels: node_catalog::kinds::common::DEFAULT_CHANNELS.into(),
            target_bitrate: None,
            buffer_size: DEFAULT_AUDIO_BUFFER,
            enable_normalization: false,
            target_loudness: DEFAULT_TARGET_LOUDNESS,
            noise_suppression: false,
            input_format: SampleFormat::F32,
            source: AudioSource::Submitted,
        }
    }
}

impl Default for RecordingConfig {
    /// 1080p30 H.264 balanced + AAC 128 kb/s, container from the path.
    fn default() -> Self {
        RecordingConfig {
            video: VideoSettings::default(),
            audio: Some(AudioSettings::default()),
            container: None,
            when_behind: WhenBehind::Wait,
            node_dir: None,
            run_dir: PathBuf::from("runs"),
            control: None,
            stream: None,
        }
    }
}

impl RecordingConfig {
    /// 720p30, balanced video, standard audio.
    pub fn hd_720p() -> Self {
        let mut c = RecordingConfig::default();
        c.video.resolution = VideoResolution::HD720p;
        c
    }

    /// 1080p30, balanced video (CRF 23), standard audio (128 kb/s).
    pub fn hd_1080p() -> Self {
        RecordingConfig::default()
    }

    /// 2160p30, high quality video (CRF 18), high quality audio (192 kb/s).
    pub fn uhd_4k() -> Self {
        let mut c = RecordingConfig::default();
        c.video.resolution = VideoResolution::UHD4K;
        c.video.quality_preset = VideoQualityPreset::High;
        if let Some(a) = &mut c.audio {
            a.quality_preset = AudioQualityPreset::High;
        }
        c
    }

    /// The same errors as `runtime check` on the graph this config becomes.
    pub fn validate(&self) -> Result<(), RecorderError> {
        crate::graph::build(self, std::path::Path::new("recording.mp4")).map(|_| ())
    }
}

impl VideoSettings {
    /// The CRF in effect: the one set, else the preset's.
    pub fn effective_crf(&self) -> u32 {
        self.crf.map_or(self.quality_preset.crf(), u32::from)
    }
}

impl AudioSettings {
    /// Bits per second in effect: the one set, else the preset's.
    pub fn effective_bitrate(&self) -> u64 {
        self.target_bitrate
            .map_or(self.quality_preset.bitrate(), u64::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_the_seeds() {
        let hd = RecordingConfig::hd_1080p();
        assert_eq!(hd.video.resolution.dimensions(), (1920, 1080));
        assert_eq!(hd.video.effective_crf(), 23);
        assert_eq!(hd.audio.as_ref().unwrap().effective_bitrate(), 128_000);
        assert_eq!(
            RecordingConfig::hd_720p().video.resolution.dimensions(),
            (1280, 720)
        );
        let uhd = RecordingConfig::uhd_4k();
        assert_eq!(uhd.video.effective_crf(), 18);
        assert_eq!(uhd.audio.unwrap().effective_bitrate(), 192_000);
        let crfs: Vec<u32> = [
            VideoQualityPreset::Fast,
            VideoQualityPreset::Balanced,
            VideoQualityPreset::High,
            VideoQualityPreset::Ultra,
        ]
        .iter()
        .map(|q| q.crf())
        .collect();
        assert_eq!(crfs, [28, 23, 18, 13]);
    }

    #[test]
    fn frame_rates_as_fractions() {
        assert_eq!(FrameRate::FPS60.rational(), Rational { num: 60, den: 1 });
        assert_eq!(
            FrameRate::Custom(29.97).rational(),
            Rational {
                num: 30000,
                den: 1001
            }
        );
        assert_eq!(
            FrameRate::Custom(12.5).rational(),
            Rational { num: 25, den: 2 }
        );
        assert_eq!(FrameRate::FPS30.period().as_nanos(), 33_333_333);
    }
}
