//! The graph loader through its public API: valid graphs, one fixture per
//! class of error (each asserting the place, the field and the message),
//! `--set` overrides, `${var}` substitution and rendering.

use std::collections::BTreeMap;
use std::path::Path;

use node_catalog::PortType;
use runtime::graph::{
    load, load_str, render, Diagnostic, Diagnostics, Graph, NodeProgram, Override, QueuePolicy,
    RenderFormat, RestartPolicy,
};
use serde_json::json;

mod support;
use support::{builtins, fixture, node};

fn sets(args: &[&str]) -> Vec<Override> {
    args.iter().map(|a| Override::parse(a).unwrap()).collect()
}

fn load_ok(name: &str, overrides: &[&str]) -> Graph {
    load(&fixture(name), &sets(overrides), &builtins()).unwrap_or_else(|d| panic!("{name}:\n{d}"))
}

fn load_err(name: &str, overrides: &[&str]) -> Diagnostics {
    match load(&fixture(name), &sets(overrides), &builtins()) {
        Ok(_) => panic!("{name} should not validate"),
        Err(d) => d,
    }
}

/// Loads `errors/<name>.yaml`, which must hold exactly one error, there.
#[track_caller]
fn one_error(name: &str, line: usize, col: usize, field: &str, fragment: &str) -> Diagnostic {
    let file = fixture(&format!("errors/{name}.yaml"));
    let diags = match load(&file, &[], &builtins()) {
        Ok(_) => panic!("{name} should not validate"),
        Err(d) => d,
    };
    assert_eq!(diags.len(), 1, "{name}: expected one error, got:\n{diags}");
    let d = diags.0[0].clone();
    assert_eq!(d.file, file);
    assert_eq!((d.line, d.col), (line, col), "{name}: wrong place: {d}");
    assert_eq!(d.field, field, "{name}: wrong field: {d}");
    assert!(
        d.message.contains(fragment),
        "{name}: `{}` lacks `{fragment}`",
        d.message
    );
    let prefix = format!("{}:{line}:{col}: ", file.display());
    assert!(d.to_string().starts_with(&prefix), "{name}: {d}");
    d
}

fn hint(d: &Diagnostic) -> &str {
    d.hint.as_deref().unwrap_or("")
}

// ------------------------------------------------------------ valid graphs

#[test]
fn recording_pipeline_validates() {
    let g = load_ok("recording.yaml", &[]);
    assert_eq!(g.name, "recording");
    assert_eq!(g.file, fixture("recording.yaml"));
    let ids: Vec<&str> = g.nodes.iter().map(|n| n.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "camera",
            "microphone",
            "video-normalize",
            "audio-normalize",
            "sync",
            "video-encode",
            "audio-encode",
            "mux"
        ]
    );

    let camera = node(&g, "camera");
    assert_eq!(camera.program, NodeProgram::Builtin("camera".into()));
    assert!(camera.is_source());
    assert_eq!(camera.params.i64("width"), Some(1280));
    assert_eq!(camera.params.str("fps"), Some("30/1"));
    // Defaults are filled in.
    assert_eq!(camera.params.str("pixel_format"), Some("yuv420p"));
    assert_eq!(camera.restart, RestartPolicy::OnFailure);
    assert_eq!(camera.max_restarts, 3);
    assert_eq!(camera.outputs.len(), 1);
    assert_eq!(camera.outputs[0].ty, PortType::RawVideo);

    let sync = node(&g, "sync");
    let edges: Vec<(&str, &str, &str)> = sync
        .inputs
        .iter()
        .map(|i| {
            (
                i.name.as_str(),
                i.source_node.as_str(),
                i.source_output.as_str(),
            )
        })
        .collect();
    assert_eq!(
        edges,
        [
            ("video", "video-normalize", "video"),
            ("audio", "audio-normalize", "audio")
        ]
    );
    // Raw video may drop its oldest frame under overload; raw audio blocks
    // (a lost audio frame is an audible gap).
    let policies: Vec<(&str, PortType, QueuePolicy)> = sync
        .inputs
        .iter()
        .map(|i| (i.name.as_str(), i.ty, i.policy))
        .collect();
    assert_eq!(
        policies,
        [
            ("video", PortType::RawVideo, QueuePolicy::DropOldest),
            ("audio", PortType::RawAudio, QueuePolicy::Block)
        ]
    );
    for input in &sync.inputs {
        assert_eq!(input.queue_size, 4);
    }
    assert_eq!(node(&g, "video-encode").inputs[0].source_node, "sync");
    assert_eq!(node(&g, "audio-encode").inputs[0].source_output, "audio");

    let mux = node(&g, "mux");
    assert_eq!(mux.params.str("path"), Some("tests/20240501-120000.mp4"));
    let tracks: Vec<(&str, &str, PortType, QueuePolicy)> = mux
        .inputs
        .iter()
        .map(|i| (i.name.as_str(), i.source_node.as_str(), i.ty, i.policy))
        .collect();
    assert_eq!(
        tracks,
        [
            (
                "video",
                "video-encode",
                PortType::EncodedVideo,
                QueuePolicy::Block
            ),
            (
                "audio",
                "audio-encode",
                PortType::EncodedAudio,
                QueuePolicy::Block
            ),
        ]
    );
}

#[test]
fn custom_nodes_and_network() {
    let g = load_ok("custom.yaml", &[]);
    assert_eq!(
        g.name, "custom",
        "the file stem names a graph without `name:`"
    );
    let det = node(&g, "detector");
    let NodeProgram::Custom(path) = &det.program else {
        panic!("{:?}", det.program)
    };
    assert!(path.is_absolute());
    assert!(path.ends_with("fixtures/nodes/detector.sh"));
    assert_eq!(det.args, ["--model", "yolo.onnx", "--verbose"]);
    assert_eq!(det.env["THRESHOLD"], "0.5");
    assert_eq!(det.env["LITERAL"], "${not-a-var}", "`$${{` escapes");
    assert_eq!(det.params.get("threshold"), Some(&json!(0.5)));
    assert_eq!(det.params.get("labels"), Some(&json!(["person", "car"])));
    assert_eq!(det.params.get("box"), Some(&json!({"min": 16, "max": 512})));
    assert_eq!(
        det.restart,
        RestartPolicy::Never,
        "custom nodes are not restarted by default"
    );
    let outs: Vec<(&str, PortType)> = det
        .outputs
        .iter()
        .map(|o| (o.name.as_str(), o.ty))
        .collect();
    assert_eq!(
        outs,
        [
            ("detections", PortType::Any),
            ("overlay", PortType::RawVideo)
        ]
    );
    // A custom input takes the type of what feeds it.
    assert_eq!(det.inputs[0].ty, PortType::RawVideo);
    assert_eq!(det.inputs[0].queue_size, 2);
    assert_eq!(det.machine.as_deref(), Some("gpu-box"));

    let enc = node(&g, "video-encode");
    assert_eq!(enc.restart, RestartPolicy::Always);
    assert_eq!(enc.max_restarts, 10);
    assert_eq!(g.network.machines["studio"].listen, ["tcp/0.0.0.0:7447"]);
    assert_eq!(
        g.network.machines["gpu-box"].connect,
        ["tcp/192.168.1.20:7447"]
    );
}

#[test]
fn load_str_resolves_paths_against_the_named_file() {
    let text = std::fs::read_to_string(fixture("custom.yaml")).unwrap();
    let g = load_str(&text, &fixture("custom.yaml"), &[], &builtins()).unwrap();
    // Its four nodes, and the two ends of the compressed link the runtime
    // puts where raw video crosses from one machine to the other.
    assert_eq!(g.nodes.iter().filter(|n| n.link.is_none()).count(), 4);
    assert_eq!(g.nodes.len(), 6);
    let err = load_str(&text, Path::new("/elsewhere/custom.yaml"), &[], &builtins()).unwrap_err();
    assert_eq!(err.len(), 1, "{err}");
    assert_eq!(err.0[0].field, "nodes[1].path");
}

// ------------------------------------------------------- one per error class

#[test]
fn malformed_yaml() {
    one_error("malformed_yaml", 5, 7, "", "invalid YAML");
}

#[test]
fn top_level_not_a_mapping() {
    one_error("not_a_mapping", 1, 1, "", "must be a mapping with `nodes:`");
}

#[test]
fn unknown_field() {
    let d = one_error(
        "unknown_field",
        4,
        5,
        "nodes[0].parms",
        "unknown field `parms`",
    );
    assert_eq!(hint(&d), "did you mean `params`?");
}

#[test]
fn missing_id() {
    one_error(
        "missing_id",
        4,
        5,
        "nodes[1].id",
        "missing required field `id`",
    );
}

#[test]
fn missing_nodes() {
    one_error(
        "missing_nodes",
        1,
        1,
        "nodes",
        "missing required field `nodes`",
    );
}

#[test]
fn both_node_and_path() {
    one_error(
        "node_and_path",
        4,
        5,
        "nodes[0].path",
        "either `node` (a built-in kind) or `path`",
    );
}

#[test]
fn neither_node_nor_path() {
    let d = one_error(
        "neither_node_nor_path",
        4,
        5,
        "nodes[1]",
        "needs `node:` or `path:`",
    );
    assert!(hint(&d).contains("runtime nodes"));
}

#[test]
fn unknown_node_kind() {
    let d = one_error(
        "unknown_kind",
        3,
        11,
        "nodes[0].node",
        "unknown node kind `camra`",
    );
    assert_eq!(hint(&d), "did you mean `camera`?");
}

#[test]
fn missing_executable() {
    let d = one_error(
        "missing_path",
        5,
        11,
        "nodes[1].path",
        "`nodes/missing.sh` does not exist",
    );
    assert!(
        d.message.contains("fixtures/errors/nodes/missing.sh"),
        "resolved next to the graph: {d}"
    );
}

#[test]
fn not_executable() {
    let d = one_error(
        "not_executable",
        5,
        11,
        "nodes[1].path",
        "is not executable",
    );
    assert!(hint(&d).starts_with("chmod +x"));
}

#[test]
fn duplicate_id() {
    one_error(
        "duplicate_id",
        4,
        9,
        "nodes[1].id",
        "duplicate id `camera` (also used by nodes[0])",
    );
}

#[test]
fn invalid_id_characters() {
    let d = one_error(
        "invalid_id",
        2,
        9,
        "nodes[0].id",
        "invalid id `Front Camera`",
    );
    assert_eq!(hint(&d), "try `front-camera`");
}

#[test]
fn dangling_input_node() {
    let d = one_error(
        "dangling_node",
        7,
        14,
        "nodes[1].inputs.video",
        "unknown node `camra`",
    );
    assert_eq!(hint(&d), "did you mean `camera`?");
}

#[test]
fn dangling_input_output() {
    let d = one_error(
        "dangling_output",
        7,
        14,
        "nodes[1].inputs.video",
        "node `camera` has no output `vidoe`",
    );
    assert_eq!(hint(&d), "did you mean `video`?");
}

#[test]
fn input_not_an_input_of_the_kind() {
    let d = one_error(
        "unknown_input",
        8,
        7,
        "nodes[1].inputs.vidoe",
        "`vidoe` is not an input of video-encode",
    );
    assert_eq!(hint(&d), "did you mean `video`?");
}

#[test]
fn required_input_not_connected() {
    let d = one_error(
        "missing_input",
        6,
        5,
        "nodes[1].inputs",
        "video-encode needs input `video` (raw-video)",
    );
    assert_eq!(hint(&d), "add `video: camera/video`");
}

#[test]
fn type_mismatch_raw_audio_into_raw_video() {
    one_error(
        "type_mismatch",
        7,
        14,
        "nodes[1].inputs.video",
        "`microphone/audio` is raw-audio, but input `video` of video-encode takes raw-video",
    );
}

#[test]
fn type_mismatch_encoded_into_raw() {
    one_error(
        "encoded_into_raw",
        11,
        14,
        "nodes[2].inputs.video",
        "is encoded-video, but input `video` of video-normalize takes raw-video",
    );
}

#[test]
fn type_mismatch_into_any_inputs() {
    let d = one_error(
        "raw_into_mux",
        7,
        14,
        "nodes[1].inputs.video",
        "mux takes encoded-video or encoded-audio",
    );
    assert!(hint(&d).contains("video-encode"));
}

#[test]
fn cycle_names_its_nodes() {
    one_error(
        "cycle",
        7,
        14,
        "nodes[1].inputs.video",
        "cycle in the graph: scale-a → scale-b → scale-a",
    );
}

#[test]
fn unknown_param() {
    let d = one_error(
        "unknown_param",
        5,
        7,
        "nodes[0].params.fsp",
        "unknown param `fsp` for camera",
    );
    assert_eq!(hint(&d), "did you mean `fps`?");
}

#[test]
fn param_of_the_wrong_type() {
    let d = one_error(
        "bad_param_type",
        5,
        14,
        "nodes[0].params.width",
        "expected an integer, found \"wide\"",
    );
    assert_eq!(hint(&d), "`width` takes integer 16..=8192");
}

#[test]
fn param_out_of_range() {
    one_error(
        "param_out_of_range",
        5,
        14,
        "nodes[0].params.width",
        "10 is out of range 16..=8192",
    );
}

#[test]
fn param_not_one_of_the_choices() {
    let d = one_error(
        "bad_enum",
        5,
        21,
        "nodes[0].params.pixel_format",
        "`yuv42p` is not one of yuv420p",
    );
    assert_eq!(hint(&d), "did you mean `yuv420p`?");
}

#[test]
fn kind_cross_check_odd_size() {
    one_error(
        "odd_width",
        5,
        14,
        "nodes[0].params.width",
        "width 1281 is odd, but yuv420p needs even sizes",
    );
}

#[test]
fn kind_cross_check_crf_for_codec() {
    one_error(
        "crf_for_codec",
        10,
        12,
        "nodes[1].params.crf",
        "crf 55 is out of range 0..=51 for h264",
    );
}

#[test]
fn kind_cross_check_crf_and_bitrate() {
    one_error(
        "crf_and_bitrate",
        10,
        16,
        "nodes[1].params.bitrate",
        "set either crf or bitrate, not both",
    );
}

#[test]
fn codec_container_pair() {
    let d = one_error(
        "codec_container",
        11,
        14,
        "nodes[2].inputs.video",
        "h264 cannot go in a webm file (webm takes vp9, av1, opus)",
    );
    assert!(hint(&d).contains("mp4 or mkv"));
}

#[test]
fn encoded_inputs_are_never_dropped() {
    one_error(
        "encoded_drop",
        13,
        17,
        "nodes[2].inputs.video.policy",
        "encoded packets are never dropped",
    );
}

#[test]
fn queue_size_range() {
    one_error(
        "queue_size",
        9,
        21,
        "nodes[1].inputs.video.queue_size",
        "2000 is out of range 1..=1024",
    );
}

#[test]
fn max_restarts_range() {
    one_error(
        "max_restarts",
        4,
        19,
        "nodes[0].max_restarts",
        "101 is out of range 0..=100",
    );
}

#[test]
fn unknown_deploy_machine() {
    let d = one_error(
        "deploy_machine",
        10,
        16,
        "nodes[0].deploy.machine",
        "unknown machine `gpubox`",
    );
    assert_eq!(hint(&d), "did you mean `gpu-box`?");
}

#[test]
fn duplicate_mapping_key() {
    one_error(
        "duplicate_key",
        7,
        7,
        "nodes[0].params.width",
        "duplicate key `width` (first set at line 5, column 7)",
    );
}

#[test]
fn undefined_variable() {
    let d = one_error(
        "undefined_var",
        7,
        12,
        "nodes[0].params.fps",
        "undefined variable `fsp`",
    );
    assert_eq!(hint(&d), "did you mean `fps`?");
}

#[test]
fn graph_var_cannot_redefine_a_builtin() {
    one_error(
        "builtin_var",
        2,
        3,
        "vars.timestamp",
        "`timestamp` is a built-in variable",
    );
}

#[test]
fn network_endpoint_needs_a_port() {
    one_error(
        "bad_endpoint",
        3,
        14,
        "network.studio.listen[0]",
        "`tcp/0.0.0.0` has no valid port",
    );
}

#[test]
fn unknown_port_type_of_a_custom_output() {
    let d = one_error(
        "unknown_port_type",
        9,
        16,
        "nodes[1].outputs[0].boxes",
        "unknown port type `rawvideo`",
    );
    assert_eq!(hint(&d), "did you mean `raw-video`?");
}

#[test]
fn builtin_outputs_must_be_a_subset() {
    one_error(
        "not_an_output",
        4,
        22,
        "nodes[0].outputs[1]",
        "`audio` is not an output of camera",
    );
}

#[test]
fn args_are_for_custom_nodes() {
    one_error(
        "args_on_builtin",
        4,
        5,
        "nodes[0].args",
        "`args` only applies to custom nodes",
    );
}

#[test]
fn every_error_of_a_file_is_reported() {
    let diags = load_err("errors/multiple.yaml", &[]);
    let found: Vec<(usize, usize, &str)> = diags
        .iter()
        .map(|d| (d.line, d.col, d.field.as_str()))
        .collect();
    assert_eq!(
        found,
        [
            (9, 12, "nodes[0].params.fps"),
            (10, 14, "nodes[0].params.width"),
            (12, 11, "nodes[1].node"),
            (16, 14, "nodes[2].inputs.video"),
            (18, 12, "nodes[2].params.crf"),
            (21, 14, "nodes[3].restart"),
            (23, 14, "nodes[3].inputs.video"),
        ],
        "\n{diags}"
    );
    let text = diags.to_string();
    assert_eq!(text.lines().count(), 7);
    let file = fixture("errors/multiple.yaml").display().to_string();
    assert!(text.contains(&format!(
        "{file}:18:12: nodes[2].params.crf: crf 70 is out of range 0..=51 for h264 (hint: "
    )));
    assert!(text.contains("undefined variable `fsp`"));
    assert!(text.contains("unknown node kind `microphon`"));
    assert!(text.contains("h264 cannot go in a webm file"));
}

// ---------------------------------------------------------------- overrides

#[test]
fn override_sets_a_param() {
    // A value may hold `=`; a file source must exist.
    let dir = std::env::temp_dir().join(format!("graph-validation-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join("in=1.mp4");
    std::fs::write(&input, b"").unwrap();
    let source = format!("camera.source=file:{}", input.display());
    let g = load_ok(
        "recording.yaml",
        &["camera.fps=60", &source, "mux.overwrite=true"],
    );
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(node(&g, "camera").params.str("fps"), Some("60/1"));
    assert_eq!(
        node(&g, "camera").params.str("source"),
        Some(source.trim_start_matches("camera.source="))
    );
    assert_eq!(node(&g, "mux").params.bool("overwrite"), Some(true));
    // A param the file did not set at all.
    let g = load_ok("recording.yaml", &["sync.buffer_ms=250"]);
    assert_eq!(node(&g, "sync").params.i64("buffer_ms"), Some(250));
}

#[test]
fn override_sets_a_variable() {
    let g = load_ok("recording.yaml", &["width=640", "height=360"]);
    assert_eq!(node(&g, "camera").params.i64("width"), Some(640));
    assert_eq!(node(&g, "video-normalize").params.i64("height"), Some(360));
}

#[test]
fn override_values_expand_variables() {
    let g = load_ok("recording.yaml", &["mux.path=tests/${timestamp}.mkv"]);
    assert_eq!(
        node(&g, "mux").params.str("path"),
        Some("tests/20240501-120000.mkv")
    );
}

#[test]
fn override_of_an_unknown_node() {
    let diags = load_err("recording.yaml", &["camra.fps=60"]);
    assert_eq!(diags.len(), 1, "{diags}");
    let d = &diags.0[0];
    assert_eq!((d.line, d.col, d.field.as_str()), (0, 0, "--set camra.fps"));
    assert!(d.message.contains("no node `camra`"));
    assert_eq!(hint(d), "did you mean `camera`?");
    let file = fixture("recording.yaml").display().to_string();
    assert_eq!(
        d.to_string(),
        format!(
            "{file}: --set camra.fps: no node `camra` in this graph (hint: did you mean `camera`?)"
        )
    );
}

#[test]
fn override_of_an_unknown_variable() {
    let diags = load_err("recording.yaml", &["widht=640"]);
    assert_eq!(diags.len(), 1, "{diags}");
    assert_eq!(diags.0[0].field, "--set widht");
    assert!(diags.0[0].message.contains("no variable `widht`"));
    assert_eq!(hint(&diags.0[0]), "did you mean `width`?");
}

#[test]
fn override_errors_point_at_the_override() {
    let diags = load_err(
        "recording.yaml",
        &["camera.fsp=60", "camera.width=wide", "timestamp=now"],
    );
    let found: Vec<(usize, &str, &str)> = diags
        .iter()
        .map(|d| (d.line, d.field.as_str(), d.message.as_str()))
        .collect();
    assert_eq!(
        found,
        [
            (0, "--set camera.fsp", "unknown param `fsp` for camera"),
            (
                0,
                "--set camera.width",
                "expected an integer, found \"wide\""
            ),
            (
                0,
                "--set timestamp",
                "`timestamp` is a built-in variable and cannot be set"
            ),
        ],
        "\n{diags}"
    );
}

#[test]
fn override_can_fix_a_file() {
    // The file's crf is out of range; the override replaces it.
    let g = load(
        &fixture("errors/crf_for_codec.yaml"),
        &sets(&["video-encode.crf=23"]),
        &builtins(),
    )
    .unwrap();
    assert_eq!(node(&g, "video-encode").params.i64("crf"), Some(23));
}

#[test]
fn override_parse_errors() {
    assert!(Override::parse("camera.fps")
        .unwrap_err()
        .contains("NODE.PARAM=VALUE"));
    assert_eq!(
        Override::parse("camera.source=test").unwrap(),
        Override {
            target: "camera.source".into(),
            value: "test".into()
        }
    );
}

// ---------------------------------------------------------------- variables

const VAR_GRAPH: &str = "\
vars:
  w: 640
  h: \"480\"
  dir: tests
  file: ${dir}/${timestamp}.mkv
nodes:
  - id: camera
    node: camera
    params:
      width: ${w}
      source: 'device:test-${w}x${h}'
  - id: video-encode
    node: video-encode
    inputs: {video: camera/video}
    params:
      crf: 2${w}
  - id: mux
    node: mux
    inputs: {video: video-encode/video}
    params:
      path: ${file}
";

#[test]
fn variables_substitute_with_their_types() {
    let text = VAR_GRAPH.replace("crf: 2${w}", "codec: h264");
    let g =
        load_str(&text, Path::new("vars.yaml"), &[], &builtins()).unwrap_or_else(|d| panic!("{d}"));
    let camera = node(&g, "camera");
    assert_eq!(
        camera.params.i64("width"),
        Some(640),
        "a whole `${{w}}` keeps w's type"
    );
    assert_eq!(camera.params.str("source"), Some("device:test-640x480"));
    // Vars may use built-ins and other vars.
    assert_eq!(
        node(&g, "mux").params.str("path"),
        Some("tests/20240501-120000.mkv")
    );
    assert_eq!(g.name, "vars");
}

#[test]
fn expanded_plain_text_is_read_as_yaml() {
    // `2${w}` becomes 2640, a number, which is then out of range for crf.
    let diags = load_str(VAR_GRAPH, Path::new("vars.yaml"), &[], &builtins()).unwrap_err();
    assert_eq!(diags.len(), 1, "{diags}");
    assert_eq!((diags.0[0].line, diags.0[0].col), (16, 12));
    assert!(
        diags.0[0].message.contains("crf 2640 is out of range"),
        "{diags}"
    );
}

#[test]
fn quoted_variable_stays_a_string() {
    let text = VAR_GRAPH.replace("crf: 2${w}", "threads: ${h}");
    let diags = load_str(&text, Path::new("vars.yaml"), &[], &builtins()).unwrap_err();
    assert_eq!(diags.len(), 1, "{diags}");
    assert!(
        diags.0[0]
            .message
            .contains("expected an integer, found \"480\""),
        "{diags}"
    );
}

#[test]
fn undefined_variables_are_all_named() {
    let text = VAR_GRAPH.replace(
        "source: 'device:test-${w}x${h}'",
        "source: 'device:${a}-${b}'",
    );
    let diags = load_str(&text, Path::new("vars.yaml"), &[], &builtins()).unwrap_err();
    let messages: Vec<&str> = diags
        .iter()
        .filter(|d| d.line == 11)
        .map(|d| d.message.as_str())
        .collect();
    assert_eq!(
        messages,
        ["undefined variable `a`", "undefined variable `b`"],
        "{diags}"
    );
}

#[test]
fn builtins_missing_from_the_call_are_undefined() {
    let diags = load_str(VAR_GRAPH, Path::new("vars.yaml"), &[], &BTreeMap::new()).unwrap_err();
    assert!(
        diags
            .iter()
            .any(|d| d.field == "vars.file" && d.message == "undefined variable `timestamp`"),
        "{diags}"
    );
}

#[test]
fn variable_loops_are_reported_once() {
    let text = "vars:\n  a: ${b}\n  b: ${a}\nnodes:\n  - id: camera\n    node: camera\n    params: {source: \"${a}\"}\n";
    let diags = load_str(text, Path::new("loop.yaml"), &[], &builtins()).unwrap_err();
    assert_eq!(diags.len(), 1, "{diags}");
    assert!(diags.0[0].message.contains("a → b → a"), "{diags}");
}

// ---------------------------------------------------------------- rendering

#[test]
fn render_recording_pipeline() {
    let g = load_ok("recording.yaml", &[]);
    let mermaid = render(&g, RenderFormat::Mermaid);
    assert!(mermaid.starts_with("flowchart LR\n"));
    assert!(
        mermaid.contains("n0([\"camera<br/>(camera)\"])"),
        "{mermaid}"
    );
    assert!(mermaid.contains("n4[\"sync<br/>(sync)\"]"), "{mermaid}");
    // video-encode (n5) → mux (n7), labeled with the ports and the type.
    assert!(
        mermaid.contains("n5 -->|\"video → video<br/>encoded-video\"| n7"),
        "{mermaid}"
    );
    assert_eq!(
        mermaid.matches("-->").count(),
        8,
        "one arrow per edge:\n{mermaid}"
    );

    let dot = render(&g, RenderFormat::Dot);
    assert!(dot.starts_with("digraph \"recording\" {"), "{dot}");
    assert!(dot.contains("\"sync\" [label=\"sync\\n(sync)\"];"), "{dot}");
    assert!(
        dot.contains("\"sync\" -> \"audio-encode\" [label=\"audio → audio\\nraw-audio\"];"),
        "{dot}"
    );
    assert_eq!(dot.matches(" -> ").count(), 8);
}

#[test]
fn files_of_nodes_on_other_machines_are_checked_there() {
    let text = "name: rig
network:
  cam: { listen: [\"tcp/127.0.0.1:7447\"] }
  rec: { connect: [\"tcp/127.0.0.1:7447\"] }
nodes:
  - id: camera
    node: camera
    deploy: { machine: cam }
  - id: encode
    node: video-encode
    deploy: { machine: rec }
    inputs: { video: camera/video }
  - id: mux
    node: mux
    deploy: { machine: rec }
    inputs: { video: encode/video }
    params: { path: no-such-dir/take.mp4 }
";
    let on = |machine: Option<&str>| {
        let mut b = builtins();
        if let Some(m) = machine {
            b.insert(runtime::graph::MACHINE_BUILTIN.to_string(), m.to_string());
        }
        runtime::graph::load_str(text, Path::new("rig.yaml"), &[], &b)
    };
    assert!(on(Some("cam")).is_ok(), "the camera machine writes no file");
    for machine in [Some("rec"), None] {
        let d = on(machine).unwrap_err().to_string();
        assert!(d.contains("nodes[2].params.path"), "{machine:?}: {d}");
        assert!(d.contains("does not exist"), "{machine:?}: {d}");
    }
}
