//! A [`RecordingConfig`] as a graph: the same nodes as `graphs/1080p.yaml`,
//! with `app-video` / `app-audio` where the app submits frames, validated
//! by the runtime's one validator.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

use runtime::graph::{load_str, Graph};

use crate::config::{
    AudioSettings, AudioSource, RecordingConfig, ScreenSource, StreamOutput, VideoSource,
    WhenBehind,
};
use crate::error::{RecorderError, Result};

/// The id of the node that takes submitted video frames.
pub const APP_VIDEO: &str = "app-video";
/// The id of the node that takes submitted audio frames.
pub const APP_AUDIO: &str = "app-audio";

/// What validation errors name as the graph's file.
const CONFIG_FILE: &str = "RecordingConfig";

/// One node of the generated graph.
struct NodeText {
    id: &'static str,
    kind: &'static str,
    inputs: Vec<(&'static str, String)>,
    params: Vec<(&'static str, String)>,
}

impl NodeText {
    fn new(id: &'static str, kind: &'static str) -> Self {
        NodeText {
            id,
            kind,
            inputs: Vec::new(),
            params: Vec::new(),
        }
    }

    fn param(mut self, name: &'static str, value: impl ToString) -> Self {
        self.params.push((name, value.to_string()));
        self
    }

    fn input(mut self, name: &'static str, edge: String) -> Self {
        self.inputs.push((name, edge));
        self
    }
}

/// The graph of `config` recording to `path`, validated.
pub fn build(config: &RecordingConfig, path: &Path) -> Result<Graph> {
    let nodes = nodes(config, path);
    let text = yaml(&nodes);
    let builtins = BTreeMap::new();
    load_str(&text, Path::new(CONFIG_FILE), &[], &builtins).map_err(|diags| {
        let ids: Vec<&str> = nodes.iter().map(|n| n.id).collect();
        RecorderError::InvalidConfig(
            diags
                .0
                .iter()
                .map(|d| format!("{}: {}", field_name(&d.field, &ids), d.message))
                .collect(),
        )
    })
}

/// `nodes[6].params.crf` as `video-encode.crf`.
fn field_name(field: &str, ids: &[&str]) -> String {
    let Some(rest) = field.strip_prefix("nodes[") else {
        return field.to_string();
    };
    let Some((index, tail)) = rest.split_once(']') else {
        return field.to_string();
    };
    let id = index.parse::<usize>().ok().and_then(|i| ids.get(i));
    match id {
        Some(id) => format!("{id}{}", tail.replacen(".params", "", 1)),
        None => field.to_string(),
    }
}

fn nodes(config: &RecordingConfig, path: &Path) -> Vec<NodeText> {
    let v = &config.video;
    let (width, height) = v.resolution.dimensions();
    let fps = v.frame_rate.rational();
    let policy = match config.when_behind {
        WhenBehind::Wait => "block",
        WhenBehind::DropVideo => "drop-oldest",
    };
    let mut out = vec![video_source(config)];
    out.push(
        NodeText::new("video-normalize", "video-normalize")
            .input(
                "video",
                edge(out[0].id, "video", v.buffer_size, Some(policy)),
            )
            .param("width", width)
            .param("height", height)
            .param("fps", fps)
            .param("pixel_format", "yuv420p"),
    );
    let mut sync = NodeText::new("sync", "sync").input("video", "video-normalize/video".into());
    if let Some(a) = &config.audio {
        let source = audio_source(a);
        let mut upstream = source.id;
        out.push(source);
        if a.noise_suppression {
            // Before the loudness gain, so the gain is set on the speech,
            // not on the noise it takes away.
            let edge = edge(upstream, "audio", a.buffer_size, None);
            out.push(NodeText::new("noise-suppress", "noise-suppress").input("audio", edge));
            upstream = "noise-suppress";
        }
        out.push(audio_normalize(a, upstream));
        sync = sync.input("audio", "audio-normalize/audio".into());
    }
    out.push(sync);
    out.push(video_encode(config));
    let mut mux = NodeText::new("mux", "mux").input("video", "video-encode/video".into());
    if let Some(a) = &config.audio {
        out.push(
            NodeText::new("audio-encode", "audio-encode")
                .input("audio", "sync/audio".into())
                .param("codec", a.codec)
                .param("bitrate", a.effective_bitrate()),
        );
        mux = mux.input("audio", "audio-encode/audio".into());
    }
    mux = mux.param("path", quoted(&path.display().to_string()));
    if let Some(c) = config.container {
        mux = mux.param("container", c);
    }
    if let Some(stream) = &config.stream {
        out.push(stream_node(stream, &mux));
    }
    out.push(mux);
    out
}

/// The live stream, fed by the encoders that feed the mux.
fn stream_node(s: &StreamOutput, mux: &NodeText) -> NodeText {
    let mut node = NodeText::new("stream", "stream");
    for (name, edge) in &mux.inputs {
        node = node.input(name, edge.clone());
    }
    node = node.param("url", quoted(&s.url));
    if let Some(key) = &s.key {
        node = node.param("key", quoted(key));
    }
    if let Some(p) = &s.passphrase {
        node = node.param("passphrase", quoted(p));
    }
    node
}

fn video_source(config: &RecordingConfig) -> NodeText {
    let v = &config.video;
    let (width, height) = v.resolution.dimensions();
    let fps = v.frame_rate.rational();
    let node = match &v.source {
        VideoSource::Submitted => {
            return NodeText::new(APP_VIDEO, "app-video")
                .param("width", width)
                .param("height", height)
                .param("fps", fps)
                .param("pixel_format", v.input_format)
        }
        VideoSource::Camera(None) => NodeText::new("camera", "camera").param("source", "auto"),
        VideoSource::Camera(Some(name)) => {
            NodeText::new("camera", "camera").param("source", quoted(&format!("device:{name}")))
        }
        VideoSource::TestPattern => NodeText::new("camera", "camera").param("source", "test"),
        // Its size is the screen's (or the region's): video-normalize scales it.
        VideoSource::Screen(screen) => return screen_node(screen).param("fps", fps),
    };
    node.param("width", width)
        .param("height", height)
        .param("fps", fps)
}

fn screen_node(s: &ScreenSource) -> NodeText {
    let mut node = NodeText::new("screen", "screen").param("cursor", s.cursor);
    if let Some(display) = &s.display {
        node = node.param("display", quoted(display));
    }
    if let Some(r) = s.region {
        node = node
            .param("x", r.x)
            .param("y", r.y)
            .param("width", r.width)
            .param("height", r.height);
    }
    node
}

fn audio_source(a: &AudioSettings) -> NodeText {
    let node = match &a.source {
        AudioSource::Submitted => {
            return NodeText::new(APP_AUDIO, "app-audio")
                .param("sample_rate", a.sample_rate)
                .param("channels", a.channels)
                .param("sample_format", a.input_format)
        }
        AudioSource::Microphone(None) => {
            NodeText::new("microphone", "microphone").param("source", "auto")
        }
        AudioSource::Microphone(Some(name)) => NodeText::new("microphone", "microphone")
            .param("source", quoted(&format!("device:{name}"))),
        AudioSource::TestTone => NodeText::new("microphone", "microphone").param("source", "test"),
    };
    node.param("sample_rate", a.sample_rate)
        .param("channels", a.channels)
}

fn audio_normalize(a: &AudioSettings, source: &str) -> NodeText {
    let mut n = NodeText::new("audio-normalize", "audio-normalize")
        .input("audio", edge(source, "audio", a.buffer_size, None))
        .param("sample_rate", a.sample_rate)
        .param("channels", a.channels);
    if a.enable_normalization {
        n = n.param("target_lufs", a.target_loudness);
    }
    n
}

fn video_encode(config: &RecordingConfig) -> NodeText {
    let v = &config.video;
    let mut n = NodeText::new("video-encode", "video-encode")
        .input("video", "sync/video".into())
        .param("codec", v.codec)
        .param("quality", v.quality_preset)
        .param("keyframe_interval", v.keyframe_interval);
    match v.target_bitrate {
        Some(bps) => n = n.param("bitrate", bps),
        None => n = n.param("crf", v.codec.crf_from_x264_scale(v.effective_crf())),
    }
    n
}

/// An input edge with its queue size and (optional) policy.
fn edge(node: &str, output: &str, queue: u32, policy: Option<&str>) -> String {
    let mut e = format!("{{ source: {node}/{output}, queue_size: {queue}");
    if let Some(p) = policy {
        let _ = write!(e, ", policy: {p}");
    }
    e + " }"
}

/// A YAML double-quoted scalar (JSON's string syntax is YAML's).
fn quoted(text: &str) -> String {
    serde_json::Value::from(text).to_string()
}

fn yaml(nodes: &[NodeText]) -> String {
    let mut y = String::from("name: recording\nnodes:\n");
    for n in nodes {
        let _ = writeln!(y, "  - id: {}\n    node: {}", n.id, n.kind);
        if !n.inputs.is_empty() {
            y += "    inputs:\n";
            for (name, e) in &n.inputs {
                let _ = writeln!(y, "      {name}: {e}");
            }
        }
        if !n.params.is_empty() {
            y += "    params:\n";
            for (name, v) in &n.params {
                let _ = writeln!(y, "      {name}: {v}");
            }
        }
    }
    y
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{VideoCodec, VideoResolution};

    #[test]
    fn the_default_config_is_a_valid_graph_with_app_inputs() {
        let g = build(&RecordingConfig::default(), Path::new("out.mp4")).unwrap();
        let ids: Vec<&str> = g.nodes.iter().map(|n| n.id.as_str()).collect();
        assert!(
            ids.contains(&APP_VIDEO) && ids.contains(&APP_AUDIO),
            "{ids:?}"
        );
        let enc = g.nodes.iter().find(|n| n.id == "video-encode").unwrap();
        assert_eq!(enc.params.0["crf"], serde_json::json!(23));
    }

    #[test]
    fn errors_name_the_node_and_field_as_runtime_check_does() {
        let mut c = RecordingConfig::default();
        c.video.resolution = VideoResolution::Custom {
            width: 641,
            height: 480,
        };
        c.video.input_format = crate::config::PixelFormat::Nv12;
        c.video.crf = Some(60);
        let Err(RecorderError::InvalidConfig(problems)) = c.validate() else {
            panic!("an odd width in nv12 and crf 60 are errors");
        };
        let all = problems.join("\n");
        assert!(all.contains("app-video.width"), "{all}");
        assert!(all.contains("video-encode.crf"), "{all}");
    }

    #[test]
    fn the_screen_is_a_screen_node_with_its_region() {
        let mut c = RecordingConfig::default();
        c.video.source = VideoSource::Screen(ScreenSource {
            display: Some(":4093".into()),
            region: Some(crate::config::ScreenRegion {
                x: 10,
                y: 20,
                width: 640,
                height: 360,
            }),
            cursor: false,
        });
        let text = yaml(&nodes(&c, Path::new("out.mp4")));
        assert!(
            text.contains("  - id: screen\n    node: screen\n"),
            "{text}"
        );
        for param in [
            "display: \":4093\"",
            "x: 10",
            "y: 20",
            "width: 640",
            "height: 360",
        ] {
            assert!(text.contains(param), "{param} in {text}");
        }
        // Nobody serves that display: the config is refused as `runtime check` would.
        let Err(RecorderError::InvalidConfig(problems)) = c.validate() else {
            panic!("an unreachable display is an error");
        };
        let all = problems.join("\n");
        assert!(
            all.contains("screen.display: cannot open X display `:4093`"),
            "{all}"
        );
    }

    #[test]
    fn noise_suppression_goes_before_the_loudness_gain_at_48_khz_only() {
        let mut c = RecordingConfig::default();
        let a = c.audio.as_mut().unwrap();
        a.noise_suppression = true;
        a.enable_normalization = true;
        let g = build(&c, Path::new("out.mp4")).unwrap();
        let input_of = |id: &str| {
            let n = g.nodes.iter().find(|n| n.id == id).unwrap();
            n.inputs[0].source_node.clone()
        };
        assert_eq!(input_of("noise-suppress"), APP_AUDIO);
        assert_eq!(input_of("audio-normalize"), "noise-suppress");
        c.audio.as_mut().unwrap().sample_rate = 44_100;
        let Err(RecorderError::InvalidConfig(problems)) = c.validate() else {
            panic!("RNNoise takes 48 kHz only");
        };
        let all = problems.join("\n");
        assert!(all.contains("48"), "{all}");
    }

    #[test]
    fn a_vp9_crf_is_given_on_its_own_scale() {
        let mut c = RecordingConfig::default();
        c.video.codec = VideoCodec::Vp9;
        c.container = Some(crate::config::Container::Webm);
        c.audio.as_mut().unwrap().codec = crate::config::AudioCodec::Opus;
        let g = build(&c, Path::new("out.webm")).unwrap();
        let enc = g.nodes.iter().find(|n| n.id == "video-encode").unwrap();
        assert_eq!(enc.params.0["crf"], serde_json::json!(28));
    }
}
