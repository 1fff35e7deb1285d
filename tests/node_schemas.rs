//! Custom nodes that publish their schema (`NODE --describe`, answered by
//! `Node::init_with_schema`): `runtime check` and `runtime run` check their
//! params and edges before anything starts, exactly as a built-in's, with
//! the file, line and column of the field and exit code 2. A node that
//! publishes none is run as before. The described node here is the example
//! overlay filter (examples/overlay-filter).

use std::path::Path;
use std::process::Command;

use graph_tests::{bin_dir, read_json, runtime_bin, testkit_bin, Scratch};
use serde_json::json;

/// A test pattern through the overlay filter into an MP4; each test
/// changes one thing in it.
const GRAPH: &str = "name: schemas
nodes:
  - id: camera
    node: camera
    params: { source: test, width: 320, height: 240, realtime: false, duration: 1 }
  - id: overlay
    path: {bin}/overlay-filter
    inputs: { video: camera/video }
    params: { corner: top-right, scale: 4 }
  - id: video-encode
    node: video-encode
    inputs: { video: overlay/video }
  - id: mux
    node: mux
    inputs: { video: video-encode/video }
    params: { path: {dir}/out.mp4 }
";

/// The graph with `from` replaced by `to` (which must occur).
fn with(from: &str, to: &str) -> String {
    assert!(GRAPH.contains(from), "{from}");
    GRAPH
        .replacen(from, to, 1)
        .replace("{bin}", &bin_dir().display().to_string())
}

/// `line:col` of the first `needle` in `text` (1-based, as diagnostics say).
fn position(text: &str, needle: &str) -> String {
    let at = text.find(needle).unwrap_or_else(|| panic!("{needle}"));
    let line = text[..at].matches('\n').count() + 1;
    let col = at - text[..at].rfind('\n').map_or(0, |n| n + 1) + 1;
    format!("{line}:{col}")
}

/// `runtime ARGS` in the scratch directory: (exit code, stderr).
fn runtime(s: &Scratch, args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(runtime_bin())
        .args(args)
        .current_dir(s.dir.path())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `runtime check` and `runtime run` both refuse `text` with exit 2 and
/// `error` at the place of `at` in the file (`--set`s aside); nothing starts.
fn refused(text: &str, at: &str, error: &str) {
    let s = Scratch::new();
    let g = s.graph("g.yaml", text);
    let g = g.to_str().unwrap();
    let expected = format!("g.yaml:{}: {error}", position(text, at));
    let run_dir = s.path("run");
    let run_dir = run_dir.to_str().unwrap();
    for args in [vec!["check", g], vec!["run", g, "--run-dir", run_dir]] {
        let (code, stderr) = runtime(&s, &args);
        assert_eq!(code, Some(2), "runtime {}: {stderr}", args[0]);
        assert!(
            stderr.contains(&expected),
            "runtime {}: expected `{expected}` in:\n{stderr}",
            args[0]
        );
    }
    assert!(!Path::new(run_dir).exists(), "nothing started");
    assert!(!s.path("out.mp4").exists());
}

#[test]
fn the_example_nodes_answer_describe() {
    for (node, kind, param) in [
        ("overlay-filter", "overlay-filter", "scale"),
        ("ffv1-encoder", "ffv1-encoder", "slices"),
    ] {
        let out = Command::new(bin_dir().join(node))
            .arg("--describe")
            .env_remove("MEDIAGRAPH_NODE_CONFIG")
            .output()
            .unwrap();
        assert!(out.status.success(), "{node} --describe: {out:?}");
        let schema: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(schema["node_schema"], 1, "{schema}");
        assert_eq!(schema["kind"], kind);
        assert_eq!(schema["inputs"][0]["type"], "raw-video");
        let params = schema["params"].as_array().unwrap();
        assert!(params.iter().any(|p| p["name"] == param), "{schema}");
    }
}

#[test]
fn a_param_out_of_range_is_refused_at_its_place() {
    refused(
        &with("scale: 4", "scale: 99"),
        "99",
        "nodes[1].params.scale: 99 is out of range 1..=16",
    );
}

#[test]
fn a_param_of_the_wrong_type_is_refused_at_its_place() {
    refused(
        &with("scale: 4", "scale: big"),
        "big",
        "nodes[1].params.scale: expected an integer, found \"big\"",
    );
    refused(
        &with("corner: top-right", "corner: middle"),
        "middle",
        "nodes[1].params.corner: `middle` is not one of top-left, top-right, bottom-left, bottom-right",
    );
}

#[test]
fn an_unknown_param_is_refused_at_its_place() {
    refused(
        &with("scale: 4", "scale: 4, colour: red"),
        "colour",
        "nodes[1].params.colour: unknown param `colour` for overlay-filter",
    );
}

#[test]
fn the_schemas_port_types_check_the_edges() {
    // No `outputs:` in the graph: the schema says `video` is raw video,
    // which a mux cannot take.
    refused(
        &with("inputs: { video: video-encode/video }", "inputs: { video: overlay/video }"),
        "overlay/video }\n    params: { path",
        "nodes[3].inputs.video: type mismatch: `overlay/video` is raw-video, but input `video` of mux takes encoded-video or encoded-audio",
    );
}

#[test]
fn a_valid_graph_passes_and_a_param_set_from_the_command_line_is_checked() {
    let s = Scratch::new();
    let g = s.graph("g.yaml", &with("", ""));
    let g = g.to_str().unwrap();
    let (code, stderr) = runtime(&s, &["check", g]);
    assert_eq!(code, Some(0), "{stderr}");
    let (code, stderr) = runtime(&s, &["check", g, "--set", "overlay.margin=300"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("--set overlay.margin: 300 is out of range 0..=256"),
        "{stderr}"
    );
}

/// An executable that does not publish a schema: the test kit node (built
/// with `Node::init`, it refuses `--describe`) and a script that hangs when
/// asked. Their params are anything and their outputs untyped, as before.
#[test]
fn nodes_without_a_schema_work_as_before() {
    let s = Scratch::new();
    let hangs = s.script("hangs.sh", "#!/bin/sh\nexec sleep 60\n");
    let yaml = r#"
name: no-schema
nodes:
  - id: source
    path: {testkit}
    outputs: [video]
    params: { mode: source, count: 20, anything: [1, 2], nested: { a: 1 } }
  - id: sink
    path: {testkit}
    inputs: { video: source/video }
    params: { mode: sink, result: "{dir}/sink.json" }
"#;
    let g = s.graph("g.yaml", yaml);
    let (code, stderr) = runtime(&s, &["check", g.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{stderr}");
    let r = s.run(&g, &[]);
    r.assert_ok();
    let sink = read_json(&s.path("sink.json"));
    assert_eq!(sink["received"], 20, "{sink}");
    assert_eq!(r.node("source")["frames_out"], 20);

    // A node that never answers is asked for at most a moment, then checked
    // as before.
    let hanging = format!(
        "nodes:\n  - id: h\n    path: {}\n    outputs: [out]\n    params: {{ x: [1] }}\n",
        hangs.display()
    );
    let g = s.graph("hangs.yaml", &hanging);
    let (code, stderr) = runtime(&s, &["check", g.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{stderr}");
}

/// A schema with a param that may change while running (`gain`), for a
/// script that answers `--describe` with it and otherwise runs the test
/// kit's sink, which records every param update it gets (the test kit
/// itself publishes no schema, so it checks none).
const SINK_SCHEMA: &str = r#"{"node_schema": 1, "kind": "recording-sink",
  "inputs": [{"name": "video", "type": "raw-video"}],
  "params": [
    {"name": "mode", "type": "string", "default": "sink"},
    {"name": "result", "type": "string"},
    {"name": "gain", "type": "float", "min": 0, "max": 10, "default": 1, "live": true}]}"#;

/// The runtime keeps the schema a custom node described and checks the
/// node's param updates against it before they are sent, as a built-in's:
/// an unknown param, one that cannot change while running, a value of the
/// wrong type or out of range are refused (and logged); a good one arrives.
#[test]
fn param_updates_to_a_described_node_are_checked_by_the_runtime() {
    let s = Scratch::new();
    s.script(
        "sink.sh",
        &format!(
            "#!/bin/sh\nif [ \"$1\" = --describe ]; then\ncat <<'EOF'\n{SINK_SCHEMA}\nEOF\nexit 0\nfi\nexec {} \"$@\"\n",
            testkit_bin().display()
        ),
    );
    let yaml = r#"
name: live-updates
nodes:
  - id: source
    path: {testkit}
    outputs: [video: raw-video]
    params: { mode: source, count: 0, fps: 50 }
  - id: sink
    path: sink.sh
    inputs: { video: source/video }
    params: { result: "{dir}/sink.json" }
"#;
    let path = s.graph("g.yaml", yaml);
    let report = s.run_embedded(&path, "sink", |control| {
        for (name, value) in [
            ("gain", json!(99)),      // out of range
            ("gain", json!("loud")),  // of the wrong type
            ("mode", json!("relay")), // cannot change while running
            ("colour", json!("red")), // unknown
            ("gain", json!(2.5)),     // good
        ] {
            control.set_param("sink", name, value);
        }
    });
    assert_eq!(report.exit_code, 0, "{:?}", report.error);
    // The test kit's sink lists every update it got.
    let sink = read_json(&s.path("sink.json"));
    let updates = sink["param_updates"].as_array().unwrap();
    let good = json!({ "gain": 2.5 });
    assert_eq!(updates, &[good], "only the good update arrives: {sink}");
}
