//! The built-in node kinds.

use crate::params::{ParamSpec, ParamType, Params};
use crate::PortType;

/// One port of a node kind.
#[derive(Debug, Clone, Copy)]
pub struct PortSpec {
    pub name: &'static str,
    pub ty: PortType,
    pub doc: &'static str,
    /// The node works without this input connected (e.g. sync's extra cameras).
    pub optional: bool,
    /// Queue depth of this input when the graph gives no `queue_size`.
    pub queue_size: usize,
}

/// The executable beside `runtime` that runs every built-in kind:
/// `mediagraph-nodes KIND [ARGS]`.
pub const BUILTIN_BINARY: &str = "mediagraph-nodes";

/// Queue depth of an input when neither the graph nor the port says otherwise.
pub const DEFAULT_QUEUE_SIZE: usize = 4;

impl PortSpec {
    /// A required port with the default queue depth.
    pub const fn new(name: &'static str, ty: PortType, doc: &'static str) -> PortSpec {
        PortSpec {
            name,
            ty,
            doc,
            optional: false,
            queue_size: DEFAULT_QUEUE_SIZE,
        }
    }
    /// An input the node works without.
    pub const fn optional(name: &'static str, ty: PortType, doc: &'static str) -> PortSpec {
        PortSpec {
            name,
            ty,
            doc,
            optional: true,
            queue_size: DEFAULT_QUEUE_SIZE,
        }
    }
    /// This input's queue holds `n` messages by default.
    pub const fn queue(self, n: usize) -> PortSpec {
        PortSpec {
            queue_size: n,
            ..self
        }
    }
}

/// A built-in node kind: what it consumes, produces and accepts as params.
#[derive(Debug, Clone, Copy)]
pub struct KindSpec {
    pub kind: &'static str,
    pub doc: &'static str,
    pub inputs: &'static [PortSpec],
    /// When set, the node accepts any number of inputs with any names, each of
    /// one of these types (the mux takes any number of tracks).
    pub any_inputs: Option<&'static [PortType]>,
    pub outputs: &'static [PortSpec],
    pub params: &'static [ParamSpec],
    /// Rules that involve several params of one node; returns (param, message).
    pub check: fn(&Params) -> Vec<(&'static str, String)>,
}

impl KindSpec {
    pub fn param(&self, name: &str) -> Option<&'static ParamSpec> {
        self.params.iter().find(|p| p.name == name)
    }
    pub fn input(&self, name: &str) -> Option<&'static PortSpec> {
        self.inputs.iter().find(|p| p.name == name)
    }
    pub fn output(&self, name: &str) -> Option<&'static PortSpec> {
        self.outputs.iter().find(|p| p.name == name)
    }
    /// A node with no inputs produces media from outside the graph.
    pub fn is_source(&self) -> bool {
        self.inputs.is_empty() && self.any_inputs.is_none()
    }
}

const fn p(
    name: &'static str,
    ty: ParamType,
    default: Option<&'static str>,
    doc: &'static str,
) -> ParamSpec {
    ParamSpec::new(name, ty, default, doc)
}

const DIM: ParamType = ParamType::Int { min: 16, max: 8192 };
const FPS: ParamType = ParamType::Rational { max: 1000.0 };
const PIXEL_FORMATS: &[&str] = &["yuv420p", "nv12", "rgb24", "bgra", "yuyv422"];
const SAMPLE_FORMATS: &[&str] = &["s16", "s24", "s32", "f32"];
const SAMPLE_RATE: ParamType = ParamType::Int {
    min: 8_000,
    max: 192_000,
};
const CHANNELS: ParamType = ParamType::Int { min: 1, max: 8 };

pub const VIDEO_CODECS: &[&str] = &["h264", "h265", "vp9", "av1"];
pub const AUDIO_CODECS: &[&str] = &["aac", "opus", "mp3"];
pub const CONTAINERS: &[&str] = &["auto", "mp4", "mkv", "webm"];

const RAW_VIDEO_OUT: &[PortSpec] = &[PortSpec::new(
    "video",
    PortType::RawVideo,
    "raw video frames",
)];
const RAW_AUDIO_OUT: &[PortSpec] = &[PortSpec::new(
    "audio",
    PortType::RawAudio,
    "raw audio frames",
)];

/// Sync's ports: `video` and `audio`, and up to seven more cameras; every
/// input comes out on the output of the same name.
const SYNC_INPUTS: &[PortSpec] = &[
    PortSpec::new(
        "video",
        PortType::RawVideo,
        "raw video: the first camera, whose frame grid the timeline follows",
    ),
    PortSpec::optional(
        "audio",
        PortType::RawAudio,
        "raw audio (optional: a video-only rig needs none)",
    ),
    PortSpec::optional("video2", PortType::RawVideo, "raw video of a second camera"),
    PortSpec::optional("video3", PortType::RawVideo, "raw video of a third camera"),
    PortSpec::optional("video4", PortType::RawVideo, "raw video of a fourth camera"),
    PortSpec::optional("video5", PortType::RawVideo, "raw video of a fifth camera"),
    PortSpec::optional("video6", PortType::RawVideo, "raw video of a sixth camera"),
    PortSpec::optional(
        "video7",
        PortType::RawVideo,
        "raw video of a seventh camera",
    ),
    PortSpec::optional(
        "video8",
        PortType::RawVideo,
        "raw video of an eighth camera",
    ),
];
const SYNC_OUTPUTS: &[PortSpec] = &[
    PortSpec::new(
        "video",
        PortType::RawVideo,
        "`video` on the common timeline",
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
];

pub(crate) fn no_check(_: &Params) -> Vec<(&'static str, String)> {
    Vec::new()
}

/// 4:2:0 and 4:2:2 formats subsample chroma by two: odd sizes cannot be represented.
fn check_even_size(params: &Params) -> Vec<(&'static str, String)> {
    let mut errors = Vec::new();
    let fmt = params.str_or("pixel_format", "yuv420p");
    if matches!(fmt, "yuv420p" | "nv12" | "yuyv422") {
        for dim in ["width", "height"] {
            if let Some(v) = params.i64(dim) {
                if v % 2 != 0 && (dim == "width" || fmt != "yuyv422") {
                    errors.push((
                        dim,
                        format!(
                            "{dim} {v} is odd, but {fmt} needs even sizes (chroma is subsampled)"
                        ),
                    ));
                }
            }
        }
    }
    errors
}

/// A `file:` source must name a file that exists, so a typo stops the run
/// before any process starts (relative paths: from the current directory,
/// where the nodes run).
fn check_file_source(params: &Params) -> Vec<(&'static str, String)> {
    let Some(path) = params.str_or("source", "").strip_prefix("file:") else {
        return Vec::new();
    };
    let p = std::path::Path::new(path);
    if path.is_empty() {
        return vec![("source", "`file:` needs a path, e.g. file:take1.mkv".into())];
    }
    match std::fs::metadata(p) {
        Ok(m) if m.is_file() => Vec::new(),
        Ok(_) => vec![("source", format!("`{path}` is not a file"))],
        Err(e) => vec![(
            "source",
            format!("cannot read the source file `{path}`: {e}"),
        )],
    }
}

fn check_camera(params: &Params) -> Vec<(&'static str, String)> {
    let mut errors = check_even_size(params);
    errors.extend(check_file_source(params));
    errors
}

/// The shortest audio frame a graph is allowed to carry, seconds. Each
/// message costs every node it crosses ~0.1–0.2 ms of CPU, so a realtime
/// microphone sending frames of a few samples falls behind real time and
/// the recording misses most of its audio (1-sample frames at 48 kHz kept
/// 8 %; 8-sample frames 74 %, on 2 busy cores). 1 ms frames (48 samples at
/// 48 kHz) keep up with room to spare.
pub const MIN_AUDIO_FRAME_S: f64 = 0.001;

fn check_microphone(params: &Params) -> Vec<(&'static str, String)> {
    let mut errors = check_file_source(params);
    let samples = params.i64_or("frame_samples", 0);
    let rate = params.i64_or("sample_rate", 48_000);
    let min = (rate as f64 * MIN_AUDIO_FRAME_S).ceil() as i64;
    if samples > 0 && samples < min {
        errors.push((
            "frame_samples",
            format!(
                "frame_samples {samples} is below {min} (1 ms at {rate} Hz): {} messages a second cost more CPU than the graph has, and the audio falls behind real time; use 0 (automatic) or {min}..=65536",
                rate / samples
            ),
        ));
    }
    errors
}

fn check_video_encode(params: &Params) -> Vec<(&'static str, String)> {
    let mut errors = Vec::new();
    let codec = params.str_or("codec", "h264");
    if let Some(crf) = params.i64("crf") {
        let max = crf_max(codec);
        if crf > max {
            errors.push((
                "crf",
                format!("crf {crf} is out of range 0..={max} for {codec}"),
            ));
        }
    }
    if params.get("crf").is_some() && params.get("bitrate").is_some() {
        errors.push(("bitrate", "set either crf or bitrate, not both".to_string()));
    }
    errors
}

/// The largest CRF each codec accepts.
pub fn crf_max(codec: &str) -> i64 {
    match codec {
        "h264" | "h265" => 51,
        _ => 63,
    }
}

/// Whether a container can carry a codec (the codec × container matrix).
pub fn container_accepts(container: &str, codec: &str) -> bool {
    match container {
        "mp4" => matches!(
            codec,
            "h264" | "h265" | "vp9" | "av1" | "aac" | "opus" | "mp3"
        ),
        "mkv" => true,
        "webm" => matches!(codec, "vp9" | "av1" | "opus"),
        _ => false,
    }
}

/// The container a mux writes: its `container` param, else the path's extension.
pub fn container_for(container_param: &str, path: &str) -> Option<&'static str> {
    let pick = |name: &str| {
        CONTAINERS
            .iter()
            .copied()
            .find(|c| *c == name && *c != "auto")
    };
    if container_param != "auto" {
        return pick(container_param);
    }
    let ext = path.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase())?;
    match ext.as_str() {
        "mp4" | "m4v" | "mov" => Some("mp4"),
        "mkv" => Some("mkv"),
        "webm" => Some("webm"),
        _ => None,
    }
}

// The imperfections a test source can simulate (node_api::clock::SimulatedDevice),
// shared by the camera and the microphone.
const TEST_DURATION: ParamSpec = p("duration", ParamType::Float { min: 0.0, max: 1e7 }, None, "test source: end after this many seconds of media (absent: endless); with `realtime: false` a graph of such sources ends by itself");
const CLOCK_SKEW: ParamSpec = p("clock_skew_ppm", ParamType::Float { min: -10_000.0, max: 10_000.0 }, Some("0"), "test source: its own clock (frame or sample count) runs this many ppm fast (+) or slow (−) against the capture clock, like a real device's crystal");
const JITTER: ParamSpec = p(
    "jitter_ms",
    ParamType::Float {
        min: 0.0,
        max: 1000.0,
    },
    Some("0"),
    "test source: capture timestamps are off by up to ± this much (uniform, deterministic)",
);
const DROPOUT_AT: ParamSpec = p(
    "dropout_at",
    ParamType::Float { min: 0.0, max: 1e7 },
    None,
    "test source: a dropout starts this many seconds in (frames captured during it are lost)",
);
const DROPOUT_MS: ParamSpec = p(
    "dropout_ms",
    ParamType::Float {
        min: 0.0,
        max: 3_600_000.0,
    },
    Some("0"),
    "test source: length of the dropout",
);

static KINDS: &[KindSpec] = &[
    KindSpec {
        kind: "camera",
        doc: "Video capture: a camera (nokhwa, frames in the camera's own format), a file or URL (FFmpeg demux + decode, native size and timestamps), or a deterministic test pattern (scrolling bars, moving box, burned-in frame counter and clock).",
        inputs: &[],
        any_inputs: None,
        outputs: RAW_VIDEO_OUT,
        params: &[
            p("source", ParamType::Str, Some("auto"), "`auto` (first camera, else the test pattern with a warning), `device:<index|name>`, `test`, `file:<path>` or a URL; a still image (`file:logo.png`) is shown as a continuous video at `fps` until the run stops (or for `duration`)"),
            p("realtime", ParamType::Bool, Some("true"), "pace frames at the native rate; false: as fast as downstream accepts, nothing dropped"),
            p("width", DIM, Some("1920"), "frame width in pixels (test pattern, camera request; files keep their own size)"),
            p("height", DIM, Some("1080"), "frame height in pixels (test pattern, camera request)"),
            p("fps", FPS, Some("30"), "frame rate, e.g. 30, 60 or 30000/1001 (test pattern, camera request, still image; files keep their own rate)"),
            p("pixel_format", ParamType::Enum(PIXEL_FORMATS), Some("yuv420p"), "test pattern format; for cameras the preferred capture format"),
            p("pattern", ParamType::Enum(&["bars", "clapper"]), Some("bars"), "test pattern: moving bars with frame counter and clock; `clapper`: also an all-white frame at every whole second (the first frame at or after it)"),
            p("loop", ParamType::Bool, Some("false"), "file sources: start over at the end"),
            TEST_DURATION,
            CLOCK_SKEW,
            JITTER,
            DROPOUT_AT,
            DROPOUT_MS,
        ],
        check: check_camera,
    },
    KindSpec {
        kind: "microphone",
        doc: "Audio capture: the default or a named input device (cpal), a file (FFmpeg), or a test tone. Metrics: dropped (device overruns), behind_s (how far a realtime test source is behind real time: audio it never produced).",
        inputs: &[],
        any_inputs: None,
        outputs: RAW_AUDIO_OUT,
        params: &[
            p("source", ParamType::Str, Some("auto"), "`auto` (default input device, else a test tone with a warning), `device:<name>`, `test`, `file:<path>`"),
            p("realtime", ParamType::Bool, Some("true"), "pace audio at the native rate; false: as fast as downstream accepts"),
            p("sample_rate", SAMPLE_RATE, Some("48000"), "samples per second, 8000..=192000"),
            p("channels", CHANNELS, Some("2"), "channel count, 1..=8"),
            p("sample_format", ParamType::Enum(SAMPLE_FORMATS), Some("f32"), "sample format delivered (interleaved); s24 travels as s32 with the low byte zero"),
            p("frequency", ParamType::Float { min: 1.0, max: 20_000.0 }, Some("440"), "test tone frequency in Hz"),
            p("pattern", ParamType::Enum(&["tone", "clapper"]), Some("tone"), "test signal: a steady tone; `clapper`: a 1 kHz beep at every whole second"),
            p("loop", ParamType::Bool, Some("false"), "file sources: start over at the end"),
            p("frame_samples", ParamType::Int { min: 0, max: 65_536 }, Some("0"), "samples per frame sent; 0: automatic, 1024 (21 ms at 48 kHz), or 8192 for a file replayed faster than real time, where latency does not matter and every message costs CPU in each node it crosses; at least 1 ms of audio (48 at 48 kHz)"),
            TEST_DURATION,
            CLOCK_SKEW,
            JITTER,
            DROPOUT_AT,
            DROPOUT_MS,
        ],
        check: check_microphone,
    },
    KindSpec {
        kind: "video-normalize",
        doc: "Scales, converts the pixel format (MJPEG decoded) and conforms to a constant frame rate (swscale); frames already in the output format and size are forwarded without a copy. Metrics: duplicated, dropped_cfr.",
        inputs: &[PortSpec::new("video", PortType::RawVideo, "raw video in any supported format")],
        any_inputs: None,
        outputs: RAW_VIDEO_OUT,
        params: &[
            p("width", DIM, Some("1920"), "output width"),
            p("height", DIM, Some("1080"), "output height"),
            p("pixel_format", ParamType::Enum(PIXEL_FORMATS), Some("yuv420p"), "output pixel format"),
            p("fps", FPS, Some("30"), "constant output frame rate: frames are duplicated or dropped to conform"),
            p("keep_aspect", ParamType::Bool, Some("true"), "scale to fit and pad with black instead of stretching"),
        ],
        check: check_even_size,
    },
    KindSpec {
        kind: "audio-normalize",
        doc: "Resamples, rechannels and reformats audio (swresample); optional EBU R128 loudness normalization.",
        inputs: &[PortSpec::new("audio", PortType::RawAudio, "raw audio")],
        any_inputs: None,
        outputs: RAW_AUDIO_OUT,
        params: &[
            p("sample_rate", SAMPLE_RATE, Some("48000"), "output sample rate"),
            p("channels", CHANNELS, Some("2"), "output channel count"),
            p("sample_format", ParamType::Enum(SAMPLE_FORMATS), Some("f32"), "output sample format (interleaved); s24 travels as s32 with the low byte zero"),
            p("target_lufs", ParamType::Float { min: -70.0, max: -5.0 }, None, "loudness target in LUFS: a gain follows the short-term loudness over seconds; absent: no loudness normalization"),
            p("true_peak_db", ParamType::Float { min: -12.0, max: 0.0 }, Some("-1.0"), "true-peak ceiling of the limiter in dBTP"),
        ],
        check: no_check,
    },
    KindSpec {
        kind: "sync",
        doc: "Puts up to 8 cameras (`video`, `video2` .. `video8`) and one audio stream on one timeline from their capture timestamps; every output's pts start at 0 at one instant T0 (the latest first capture, on the first camera's frame grid). Each input comes out on the output of the same name. Audio clock drift is measured and corrected by resampling. Metrics: av_offset_ms (positive: sound late), sync_score (100: together, 0: 40 ms or more apart), drift_ppm, drift_correction_ppm, audio_clock_jumps, start_spread_ms (capture-time spread of the first frames placed at pts 0 across all tracks), first_offset_ms_<output>, audio_gap_fills, audio_overlap_trims (samples), video_dups_dropped, video_gaps (frames), dropped.",
        inputs: SYNC_INPUTS,
        any_inputs: None,
        outputs: SYNC_OUTPUTS,
        params: &[
            p("buffer_ms", ParamType::Int { min: 0, max: 10_000 }, Some("500"), "maximum latency added while waiting for the other stream").live(),
            p("tolerance_ms", ParamType::Float { min: 0.0, max: 1000.0 }, Some("20"), "timestamp error tolerated before gaps are filled or overlaps trimmed").live(),
            p("max_drift_ppm", ParamType::Float { min: 0.0, max: 10_000.0 }, Some("1000"), "largest audio clock drift corrected by resampling, in ppm (0: no drift correction; larger drift is caught up by the tolerance's hard resyncs)"),
        ],
        check: no_check,
    },
    KindSpec {
        kind: "compose",
        doc: "Composes several cameras into one program feed (swscale): a grid, or the first input full frame with the others as picture-in-picture insets. Inputs are raw video on one timeline (after sync), any names, laid out in the graph's order; frames are paired by pts, an input without a frame at that pts shows its last one. Metrics: composed, stale_tiles, forced.",
        inputs: &[],
        any_inputs: Some(&[PortType::RawVideo]),
        outputs: RAW_VIDEO_OUT,
        params: &[
            p("layout", ParamType::Enum(&["grid", "pip"]), Some("grid"), "`grid`: equal tiles in graph order; `pip`: the first input fills the frame, the others are insets"),
            p("width", DIM, Some("1920"), "output width"),
            p("height", DIM, Some("1080"), "output height"),
            p("pixel_format", ParamType::Enum(PIXEL_FORMATS), Some("yuv420p"), "output pixel format"),
            p("columns", ParamType::Int { min: 0, max: 8 }, Some("0"), "grid columns; 0: the smallest square grid that holds every input (2x2 for 3 or 4)"),
            p("pip_size", ParamType::Float { min: 0.05, max: 0.5 }, Some("0.25"), "pip: inset width as a fraction of the output width"),
            p("pip_corner", ParamType::Enum(&["top-left", "top-right", "bottom-left", "bottom-right"]), Some("bottom-right"), "pip: the corner the insets stack from"),
            p("pip_margin", ParamType::Int { min: 0, max: 1024 }, Some("16"), "pip: pixels between the insets and the frame's edges"),
            p("max_held", ParamType::Int { min: 1, max: 64 }, Some("8"), "frames held per input while waiting for the others; beyond it a frame goes out with the late inputs' last frames"),
        ],
        check: check_even_size,
    },
    KindSpec {
        kind: "video-encode",
        doc: "Encodes raw video: H.264 (libx264), H.265 (libx265), VP9 (libvpx-vp9), AV1 (SVT-AV1, else libaom). Metrics: bitrate_bps, delay_frames and delay_s (the most frames the encoder held before their packet came out: lookahead, B-frames, frame threads; lost in a crash of everything).",
        // An encoder's time per frame is uneven (start-up, keyframes, frame
        // threads finishing together): 8 frames absorb that without a skip at
        // 60 fps where 4 did not.
        inputs: &[
            PortSpec::new("video", PortType::RawVideo, "raw video (yuv420p preferred)").queue(8),
        ],
        any_inputs: None,
        outputs: &[PortSpec::new("video", PortType::EncodedVideo, "encoded video packets")],
        params: &[
            p("codec", ParamType::Enum(VIDEO_CODECS), Some("h264"), "video codec"),
            p("quality", ParamType::Enum(&["fast", "balanced", "high", "ultra"]), Some("balanced"), "CRF 28 / 23 / 18 / 13 (h264/h265; vp9/av1: 35 / 28 / 22 / 16) with speed presets veryfast / veryfast / fast / medium"),
            p("speed", ParamType::Enum(&["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"]), None, "encoder speed preset (x264/x265 names); VP9: realtime cpu-used 8..5 for ultrafast..faster, then good cpu-used 4..0; SVT-AV1: preset 12..4; libaom: cpu-used 8..0; absent: from quality"),
            p("crf", ParamType::Int { min: 0, max: 63 }, None, "constant rate factor (0..=51 for h264/h265, 0..=63 for vp9/av1); absent: from quality"),
            p("bitrate", ParamType::Bitrate { min: 10_000, max: 400_000_000 }, None, "target bitrate (ABR) instead of CRF"),
            p("rate_control", ParamType::Enum(&["abr", "cbr"]), Some("abr"), "with `bitrate`: average (abr) or constant (cbr: maxrate = bitrate, 1 s VBV buffer)"),
            p("keyframe_interval", ParamType::Float { min: 0.1, max: 60.0 }, Some("2"), "seconds between keyframes"),
            p("threads", ParamType::Int { min: 0, max: 64 }, Some("0"), "encoder threads; 0: automatic"),
            p("tune", ParamType::Str, None, "x264/x265 tune, e.g. zerolatency, film, animation (other encoders: ignored with a warning)"),
            p("hwaccel", ParamType::Enum(&["auto", "none", "nvenc", "vaapi"]), Some("auto"), "hardware encoder; falls back to software with a log line when none exists"),
            p("degrade", ParamType::Bool, Some("false"), "graceful degradation (libx264): when the input queue stays full or frames are skipped for 2 s, switch to the next faster speed preset (same stream headers, same file); back one step after 10 s without pressure. Never with lossless (replayed) input"),
        ],
        check: check_video_encode,
    },
    KindSpec {
        kind: "audio-encode",
        doc: "Encodes raw audio: AAC, Opus (libopus), MP3 (libmp3lame).",
        inputs: &[PortSpec::new("audio", PortType::RawAudio, "raw audio")],
        any_inputs: None,
        outputs: &[PortSpec::new("audio", PortType::EncodedAudio, "encoded audio packets")],
        params: &[
            p("codec", ParamType::Enum(AUDIO_CODECS), Some("aac"), "audio codec"),
            p("quality", ParamType::Enum(&["low", "voice", "standard", "high", "maximum"]), Some("standard"), "64 / 96 / 128 / 192 / 320 kb/s"),
            p("bitrate", ParamType::Bitrate { min: 6_000, max: 512_000 }, None, "bitrate instead of the quality preset"),
        ],
        check: no_check,
    },
    KindSpec {
        kind: "mux",
        doc: "Writes encoded tracks into MP4, MKV or WebM (any number of video and audio tracks, one stream per input in the graph's order). MP4 is written as fragments while recording (crash-safe) and made a normal faststart MP4 at a clean stop. A restarted mux continues in the next numbered file (created once its first fragment is written). Metrics: bytes_written, bitrate_bps, files, discarded, lost_packets_<input> and lost_seconds_<input> (not in any file after a restart), restart_lost_s, restart_lost_frames, crash_loss_bound_s (the most a crash of everything loses at the end: fragment_duration, one packet and the longest capture-to-mux delay seen), packets_<input>, latency_p50_ms_<input>, latency_p99_ms_<input>.",
        inputs: &[],
        any_inputs: Some(&[PortType::EncodedVideo, PortType::EncodedAudio]),
        outputs: &[],
        params: &[
            p("path", ParamType::Str, Some("recordings/${timestamp}.mp4"), "output file (its directory must exist); `${timestamp}` is the run's start time"),
            p("container", ParamType::Enum(CONTAINERS), Some("auto"), "container; auto: from the path's extension"),
            p("faststart", ParamType::Bool, Some("true"), "MP4: put the index (moov) before the media data"),
            p("overwrite", ParamType::Bool, Some("false"), "replace an existing file instead of refusing"),
            p("output_dir", ParamType::Str, None, "when set, `path` must lie inside this directory (after resolving `..` and symbolic links): a graph that would write anywhere else is refused before it starts, and the mux checks again when it creates each file; absent: anywhere the user can write. A symbolic link as the output file is always refused"),
            p("fragment_duration", ParamType::Float { min: 0.1, max: 1.0 }, Some("0.5"), "seconds of media per MP4 fragment / MKV cluster written while recording: after a crash or `kill -9` of everything the file misses at most this plus the media still on its way to the mux (the encoder's lookahead, sync's buffer: metric crash_loss_bound_s) at the end (a clean stop turns the MP4 into a normal one; `runtime recover FILE` after a crash)"),
            p("max_duration", ParamType::Float { min: 1.0, max: 604_800.0 }, None, "seconds of media per file: at the first video keyframe past it the mux starts the next numbered file (`take.mp4`, `take-001.mp4`, ...) or stops (`on_limit`); absent: no limit"),
            p("max_file_size", ParamType::Int { min: 1, max: 16_000_000 }, None, "megabytes (10^6 bytes) per file, like `max_duration`: a file ends at the first keyframe past the size, so it may exceed it by up to one keyframe interval; absent: no limit"),
            p("on_limit", ParamType::Enum(&["split", "stop"]), Some("split"), "at `max_duration` / `max_file_size`: `split` continues in the next numbered file with no gap or overlap; `stop` finalizes the file and records nothing more (counted as `discarded`)"),
            p("min_free_space", ParamType::Int { min: 0, max: 1_000_000 }, Some("100"), "megabytes that must stay free on the output's file system: checked before the start and every second while recording; below it the file is finalized and the run fails"),
        ],
        check: check_mux,
    },
];

fn check_mux(params: &Params) -> Vec<(&'static str, String)> {
    let path = params.str_or("path", "");
    let container = params.str_or("container", "auto");
    if container_for(container, path).is_none() {
        return vec![(
            "path",
            format!("cannot tell the container of `{path}`: use a .mp4, .mkv or .webm extension or set `container`"),
        )];
    }
    let overwrite = params.bool("overwrite").unwrap_or(false);
    match check_output_path(
        std::path::Path::new(path),
        overwrite,
        params.str("output_dir").map(std::path::Path::new),
    ) {
        Ok(()) => Vec::new(),
        Err((param, message)) => vec![(param, message)],
    }
}

/// Where a recording may be written, checked before any process starts (the
/// mux checks again when it opens each file): its directory exists and is
/// writable, the file does not exist unless `overwrite`, and it lies inside
/// `output_dir` when one is configured.
fn check_output_path(
    path: &std::path::Path,
    overwrite: bool,
    output_dir: Option<&std::path::Path>,
) -> Result<(), (&'static str, String)> {
    use std::os::unix::ffi::OsStrExt;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => std::path::Path::new("."),
    };
    if !dir.is_dir() {
        return Err((
            "path",
            format!("output directory `{}` does not exist", dir.display()),
        ));
    }
    let c_dir = std::ffi::CString::new(dir.as_os_str().as_bytes()).unwrap_or_default();
    // SAFETY: a valid NUL-terminated path; access(2) only reads it.
    if unsafe { libc::access(c_dir.as_ptr(), libc::W_OK) } != 0 {
        let e = std::io::Error::last_os_error();
        return Err((
            "path",
            format!("output directory `{}` is not writable: {e}", dir.display()),
        ));
    }
    // A link as the file would send the recording wherever it points (a
    // dangling one even passes the "exists" check); the mux refuses links
    // when it creates the file too.
    if let Ok(target) = std::fs::read_link(path) {
        return Err((
            "path",
            format!(
                "`{}` is a symbolic link (to `{}`): the mux writes only a file of its own, never through a link",
                path.display(),
                target.display()
            ),
        ));
    }
    if path.is_dir() {
        return Err(("path", format!("`{}` is a directory", path.display())));
    }
    if path.exists() && !overwrite {
        return Err((
            "path",
            format!(
                "`{}` already exists; set `overwrite: true` to replace it",
                path.display()
            ),
        ));
    }
    if let Some(root) = output_dir {
        let inside = match (root.canonicalize(), dir.canonicalize()) {
            (Ok(root), Ok(dir)) => dir.starts_with(&root),
            (Err(e), _) => {
                return Err(("output_dir", format!("`{}`: {e}", root.display())));
            }
            _ => false,
        };
        if !inside {
            return Err((
                "path",
                format!(
                    "`{}` is outside the output directory `{}`",
                    path.display(),
                    root.display()
                ),
            ));
        }
    }
    Ok(())
}

/// Every built-in kind, in pipeline order.
pub fn builtin_kinds() -> &'static [KindSpec] {
    KINDS
}

/// The built-in kind of that name.
pub fn kind(name: &str) -> Option<&'static KindSpec> {
    KINDS.iter().find(|k| k.kind == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_is_valid() {
        for k in builtin_kinds() {
            for p in k.params {
                let _ = p.default_value();
            }
        }
    }

    #[test]
    fn output_paths_are_checked_before_the_start() {
        let dir = std::env::temp_dir().join(format!("catalog-output-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("inner")).unwrap();
        let taken = dir.join("taken.mp4");
        std::fs::write(&taken, b"x").unwrap();
        let check = |p: &std::path::Path, overwrite, root: Option<&std::path::Path>| {
            check_output_path(p, overwrite, root).map_err(|(_, m)| m)
        };
        assert_eq!(check(&dir.join("new.mp4"), false, None), Ok(()));
        assert!(check(&dir.join("no/new.mp4"), false, None)
            .unwrap_err()
            .contains("does not exist"));
        assert!(check(&taken, false, None)
            .unwrap_err()
            .contains("already exists"));
        assert_eq!(check(&taken, true, None), Ok(()));
        assert!(check(std::path::Path::new("/proc/self/x.mp4"), false, None)
            .unwrap_err()
            .contains("not writable"));
        let root = dir.join("inner");
        assert_eq!(check(&root.join("a.mp4"), false, Some(&root)), Ok(()));
        assert!(check(&root.join("../a.mp4"), false, Some(&root))
            .unwrap_err()
            .contains("outside the output directory"));
        // A link as the file, dangling or not, inside or outside the root.
        std::os::unix::fs::symlink("/nonexistent/escape.mp4", root.join("link.mp4")).unwrap();
        std::os::unix::fs::symlink("a.mp4", root.join("inner-link.mp4")).unwrap();
        for name in ["link.mp4", "inner-link.mp4"] {
            assert!(check(&root.join(name), true, Some(&root))
                .unwrap_err()
                .contains("is a symbolic link"));
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn container_matrix() {
        assert!(container_accepts("mp4", "h264"));
        assert!(!container_accepts("webm", "h264"));
        assert!(!container_accepts("webm", "aac"));
        assert!(container_accepts("mkv", "mp3"));
        assert_eq!(container_for("auto", "a/b.WEBM"), Some("webm"));
        assert_eq!(container_for("auto", "a/b.avi"), None);
        assert_eq!(container_for("mkv", "x.mp4"), Some("mkv"));
    }

    #[test]
    fn audio_frames_last_at_least_a_millisecond() {
        let params = |samples: i64, rate: i64| {
            let mut m = serde_json::Map::new();
            m.insert("frame_samples".into(), samples.into());
            m.insert("sample_rate".into(), rate.into());
            Params(m)
        };
        assert!(check_microphone(&params(0, 48_000)).is_empty());
        assert!(check_microphone(&params(48, 48_000)).is_empty());
        let e = check_microphone(&params(47, 48_000));
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].0, "frame_samples");
        assert!(
            e[0].1.starts_with("frame_samples 47 is below 48"),
            "{}",
            e[0].1
        );
        assert!(check_microphone(&params(8, 8_000)).is_empty());
        assert_eq!(check_microphone(&params(1, 8_000)).len(), 1);
    }

    #[test]
    fn file_sources_must_exist() {
        let params = |source: &str| {
            let mut m = serde_json::Map::new();
            m.insert("source".into(), source.into());
            Params(m)
        };
        let this_file = concat!(env!("CARGO_MANIFEST_DIR"), "/src/kinds.rs");
        assert!(check_file_source(&params(&format!("file:{this_file}"))).is_empty());
        assert!(check_file_source(&params("test")).is_empty());
        let missing = check_file_source(&params("file:/no/such/file.mkv"));
        assert_eq!(missing.len(), 1);
        assert!(missing[0]
            .1
            .contains("cannot read the source file `/no/such/file.mkv`"));
        assert_eq!(
            check_file_source(&params("file:/"))[0].1,
            "`/` is not a file"
        );
    }
}
