//! The rules of the built-in kinds (which live in the catalog, with each
//! kind) as the graph loader applies them, and param updates checked
//! against the kinds' schemas.

use std::path::Path;

use runtime::graph::load;

mod support;
use support::{builtins, fixture, node};

/// A kind's pure rules (the `source` grammar, even sizes, the container
/// of a path) hold wherever the node runs, so the machine that checks the
/// whole graph reports them for the other machines' nodes too; only the
/// checks of files and directories are left to the machine concerned.
#[test]
fn pure_rules_are_checked_for_every_machine() {
    let text = "name: rig
network:
  cam: { listen: [\"tcp/127.0.0.1:7447\"] }
  rec: { connect: [\"tcp/127.0.0.1:7447\"] }
nodes:
  - id: camera
    node: camera
    deploy: { machine: cam }
    params: { source: SOURCE, width: WIDTH }
  - id: encode
    node: video-encode
    deploy: { machine: rec }
    inputs: { video: camera/video }
  - id: mux
    node: mux
    deploy: { machine: rec }
    inputs: { video: encode/video }
    params: { path: PATH }
";
    let on_rec = |source: &str, width: &str, path: &str| {
        let mut b = builtins();
        b.insert(runtime::graph::MACHINE_BUILTIN.to_string(), "rec".into());
        let text = text
            .replace("SOURCE", source)
            .replace("WIDTH", width)
            .replace("PATH", path);
        runtime::graph::load_str(&text, Path::new("rig.yaml"), &[], &b)
    };
    assert!(on_rec("test", "640", "take.mkv").is_ok());
    // A missing file on the camera's machine is that machine's business.
    assert!(on_rec("\"file:/no/such/clip.mkv\"", "640", "take.mkv").is_ok());
    for (source, width, path, field, fragment) in [
        (
            "bogus",
            "640",
            "take.mkv",
            "nodes[0].params.source",
            "unknown source `bogus`",
        ),
        (
            "test",
            "641",
            "take.mkv",
            "nodes[0].params.width",
            "width 641 is odd",
        ),
        (
            "test",
            "640",
            "take.avi",
            "nodes[2].params.path",
            "cannot tell the container",
        ),
    ] {
        let d = on_rec(source, width, path).unwrap_err().to_string();
        assert!(d.contains(field) && d.contains(fragment), "{d}");
    }
}

/// An update of a running node's param is checked against its kind's
/// schema before it is sent: only mutable params, with values of their type.
#[test]
fn param_updates_are_checked_against_the_schema() {
    let g = load(&fixture("recording.yaml"), &[], &builtins()).unwrap();
    let sync = node(&g, "sync");
    assert_eq!(
        sync.check_param_update("tolerance_ms", &serde_json::json!(30)),
        Ok(serde_json::json!(30.0))
    );
    let refused = [
        (
            "sync",
            "tolerance_ms",
            serde_json::json!("soon"),
            "expected a number",
        ),
        (
            "sync",
            "max_drift_ppm",
            serde_json::json!(5),
            "cannot change while running",
        ),
        (
            "camera",
            "fps",
            serde_json::json!(60),
            "cannot change while running",
        ),
        (
            "sync",
            "nope",
            serde_json::json!(1),
            "sync has no param `nope`",
        ),
        ("ghost", "x", serde_json::json!(1), "no node `ghost`"),
    ];
    for (id, name, value, fragment) in refused {
        let e = g.check_param_update(id, name, &value).unwrap_err();
        assert!(e.contains(fragment), "{id}.{name}: {e}");
    }
}

/// The shipped graphs choose their sound by the quality preset, so setting
/// another preset changes the bitrate (a pinned `bitrate` used to win
/// silently: `--set audio-encode.quality=low` still gave 128 kb/s).
#[test]
fn the_audio_quality_preset_of_every_shipped_graph_takes_effect() {
    use node_catalog::kinds::audio_encode::Settings;
    let graphs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../graphs");
    let mut checked = 0;
    for entry in std::fs::read_dir(&graphs).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        if path.extension().is_none_or(|e| e != "yaml") || !text.contains("node: audio-encode") {
            continue;
        }
        let sets = ["mux.path=/tmp/x.mp4", "audio-encode.quality=low"]
            .map(|s| runtime::graph::Override::parse(s).unwrap());
        let Ok(graph) = load(&path, &sets, &builtins()) else {
            continue; // a graph needing vars of its own (checked elsewhere)
        };
        for n in graph
            .nodes
            .iter()
            .filter(|n| n.kind_name() == "audio-encode")
        {
            let s = Settings::from_params(&n.params).unwrap();
            assert_eq!(s.effective_bitrate(), 64_000, "{} {}", path.display(), n.id);
            checked += 1;
        }
    }
    assert!(checked >= 8, "{checked} audio encoders checked");
}

/// An odd size that a node's own format allows (RGB has no subsampling)
/// is refused where it meets a video encoder, which takes 4:2:0 only: it
/// used to pass `check`, fail the encoder three times and leave a file
/// without video.
#[test]
fn an_odd_size_going_into_an_encoder_is_refused_before_the_start() {
    let text = "name: odd
nodes:
  - id: camera
    node: camera
    params: { source: test, width: 640, height: 480 }
  - id: scale
    node: video-normalize
    inputs: { video: camera/video }
    params: { width: WIDTH, height: 480, pixel_format: rgb24 }
  - id: encode
    node: video-encode
    inputs: { video: scale/video }
  - id: mux
    node: mux
    inputs: { video: encode/video }
    params: { path: take.mkv }
";
    let load = |width: &str| {
        let text = text.replace("WIDTH", width);
        runtime::graph::load_str(&text, Path::new("odd.yaml"), &[], &builtins())
    };
    assert!(load("640").is_ok());
    let d = load("641").unwrap_err().to_string();
    assert!(
        d.contains("odd.yaml:12:") && d.contains("nodes[2].inputs.video"),
        "{d}"
    );
    assert!(d.contains("`scale` sends 641x480 frames"), "{d}");
    assert!(d.contains("`round_to_even: true` to send 640x480"), "{d}");
}
