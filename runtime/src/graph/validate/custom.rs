//! Custom nodes that publish a schema: each is asked (`path --describe`,
//! all at once, see [`crate::graph::describe`]) before its params and ports
//! are read, and one that answers is checked against its schema exactly as
//! a built-in kind against its catalog entry.

use crate::graph::describe::{describe_all, Described, Request};
use crate::graph::diagnostic::DiagnosticsBuilder;
use crate::graph::yaml::join;

use super::nodes::{Draft, Program};

/// Sets the kind of every custom node that describes itself; reports a
/// node that answers with a broken schema at its `path:`.
pub(super) fn describe_custom_nodes(
    drafts: &mut [Option<Draft>],
    sink: &mut DiagnosticsBuilder<'_>,
) {
    let mut asked: Vec<(usize, Request)> = Vec::new();
    for (i, d) in drafts.iter().enumerate() {
        if let Some(Draft {
            program: Some(Program::Custom(path)),
            args,
            env,
            ..
        }) = d
        {
            let request = Request {
                program: path.clone(),
                args: args.clone(),
                env: env.clone(),
            };
            asked.push((i, request));
        }
    }
    if asked.is_empty() {
        return;
    }
    let requests: Vec<Request> = asked.iter().map(|(_, r)| r.clone()).collect();
    let answers = describe_all(&requests);
    for ((i, request), answer) in asked.into_iter().zip(answers) {
        let Some(d) = drafts[i].as_mut() else {
            continue;
        };
        match answer {
            Described::Schema(kind) => d.kind = Some(kind),
            Described::Nothing(_) => {}
            Described::Invalid(problem) => {
                let message = format!(
                    "`{} --describe` printed a node schema that is not valid: {problem}",
                    request.program.display()
                );
                let hint = Some(
                    "fix the schema the node declares (Node::init_with_schema), or let it not answer --describe"
                        .to_string(),
                );
                sink.error(d.program_pos, join(&d.field, "path"), message, hint);
                // What it would have said about its outputs is unknown:
                // no follow-on errors about them.
                d.outputs_ok = false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use crate::graph::validate::test_util::*;
    use crate::graph::NodeProgram;

    /// A schema like the overlay example's: raw video in and out, three
    /// params, and one that may change while running.
    const SCHEMA: &str = r#"{"node_schema": 1, "kind": "my-filter",
      "inputs": [{"name": "video", "type": "raw-video", "queue_size": 6}],
      "outputs": [{"name": "video", "type": "raw-video"}],
      "params": [
        {"name": "scale", "type": "int", "min": 1, "max": 16, "default": 2},
        {"name": "corner", "type": "enum", "choices": ["top-left", "bottom-left"], "default": "bottom-left"},
        {"name": "label", "type": "string"},
        {"name": "opacity", "type": "float", "min": 0, "max": 1, "default": 1, "live": true}]}"#;

    /// A node script answering `--describe` with `answer` in a directory of
    /// its own (removed on drop).
    struct Script {
        dir: PathBuf,
        path: PathBuf,
    }

    impl Script {
        fn new(name: &str, answer: &str) -> Script {
            use std::os::unix::fs::PermissionsExt;
            let dir =
                std::env::temp_dir().join(format!("validate-custom-{name}-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join("node.sh");
            let body = format!(
                "#!/bin/sh\n[ \"$1\" = --describe ] || exit 1\ncat <<'EOF'\n{answer}\nEOF\n"
            );
            std::fs::write(&path, body).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
            Script { dir, path }
        }

        /// A graph: a camera, this node (with `extra` lines) and an encoder
        /// reading `flt/video`.
        fn graph(&self, extra: &str) -> String {
            format!(
                "nodes:\n  - id: cam\n    node: camera\n  - id: flt\n    path: {}\n    inputs: {{video: cam/video}}\n{extra}  - id: enc\n    node: video-encode\n    inputs: {{video: flt/video}}\n",
                self.path.display()
            )
        }
    }

    impl Drop for Script {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    #[test]
    fn params_are_checked_and_filled_in_like_a_builtins() {
        let s = Script::new("params", SCHEMA);
        let g = check(&s.graph("    params: {scale: 4}\n")).unwrap();
        let flt = &g.nodes[1];
        assert_eq!(flt.program, NodeProgram::Custom(s.path.clone()));
        assert_eq!(flt.params.i64("scale"), Some(4));
        assert_eq!(flt.params.str("corner"), Some("bottom-left"), "default");
        assert_eq!(flt.params.get("label"), None, "no default: absent");
        // The outputs come from the schema; the input's queue from its port.
        assert_eq!(flt.outputs[0].ty, node_catalog::PortType::RawVideo);
        assert_eq!(flt.inputs[0].queue_size, 6);
        assert_eq!(
            flt.restart,
            crate::graph::RestartPolicy::Never,
            "still a custom node"
        );

        assert_eq!(
            error(&s.graph("    params: {scale: 99}\n")),
            "7:21 nodes[1].params.scale: 99 is out of range 1..=16"
        );
        assert_eq!(
            error(&s.graph("    params: {scale: big}\n")),
            "7:21 nodes[1].params.scale: expected an integer, found \"big\""
        );
        let diags = check(&s.graph("    params: {corners: top-left}\n")).unwrap_err();
        assert_eq!(diags.len(), 1, "{diags}");
        let d = &diags.0[0];
        assert_eq!(
            (d.line, d.col, d.message.as_str()),
            (7, 14, "unknown param `corners` for my-filter")
        );
        assert_eq!(d.hint.as_deref(), Some("did you mean `corner`?"));
        assert_eq!(
            error(&s.graph("    params: {corner: top-right}\n")),
            "7:22 nodes[1].params.corner: `top-right` is not one of top-left, bottom-left"
        );
    }

    /// The schema outlives the check: a param update while running is
    /// checked against it, as a built-in's against the catalog.
    #[test]
    fn param_updates_are_checked_against_the_schema() {
        let s = Script::new("updates", SCHEMA);
        let g = check(&s.graph("")).unwrap();
        use serde_json::json;
        let cases = [
            ("opacity", json!(0.5), Ok(json!(0.5))),
            ("opacity", json!(2), Err("2 is out of range 0..=1")),
            (
                "opacity",
                json!("half"),
                Err("expected a number, found \"half\""),
            ),
            (
                "scale",
                json!(4),
                Err("`scale` cannot change while running (of my-filter, only opacity can)"),
            ),
            (
                "colour",
                json!("red"),
                Err("my-filter has no param `colour`"),
            ),
        ];
        for (name, value, expected) in cases {
            let got = g.check_param_update("flt", name, &value);
            assert_eq!(got, expected.map_err(String::from), "{name} = {value}");
        }

        // Without a schema, updates go as they are.
        let s = Script::new("updates-no-schema", "usage: node.sh FILE");
        let g = check(&s.graph("    outputs: [video: raw-video]\n")).unwrap();
        assert_eq!(
            g.check_param_update("flt", "anything", &json!([1])),
            Ok(json!([1]))
        );
    }

    #[test]
    fn ports_are_checked_against_the_schema() {
        let s = Script::new("ports", SCHEMA);
        let text = s
            .graph("")
            .replace("{video: cam/video}", "{image: cam/video}");
        let diags = check(&text).unwrap_err();
        let found: Vec<&str> = diags.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(
            found,
            [
                "my-filter needs input `video` (raw-video) connected",
                "`image` is not an input of my-filter"
            ],
            "{diags}"
        );
        assert_eq!(
            error(&s.graph("    outputs: [video: encoded-video]\n")),
            "7:15 nodes[1].outputs[0]: output `video` of my-filter is raw-video, not encoded-video"
        );
        assert_eq!(
            error(&s.graph("    outputs: [mask]\n")),
            "7:15 nodes[1].outputs[0]: `mask` is not an output of my-filter"
        );
        // An edge of the wrong type, now that the output's type is known.
        let text = s
            .graph("")
            .replace("node: video-encode", "node: audio-encode")
            .replace("{video: flt/video}", "{audio: flt/video}");
        assert!(
            error(&text).ends_with(
                "type mismatch: `flt/video` is raw-video, but input `audio` of audio-encode takes raw-audio"
            ),
            "{}",
            error(&text)
        );
    }

    #[test]
    fn a_broken_schema_is_an_error_at_the_path() {
        let s = Script::new(
            "broken",
            r#"{"node_schema": 1, "kind": "x", "params": [{"name": "n"}]}"#,
        );
        let e = error(&s.graph(""));
        assert!(
            e.starts_with("5:11 nodes[1].path: `") && e.ends_with(
                "--describe` printed a node schema that is not valid: params[0]: `n`: no `type`"
            ),
            "{e}"
        );
    }

    #[test]
    fn without_a_schema_nothing_changes() {
        // Answers with something that is no schema: params pass as written.
        let s = Script::new("no-schema", "usage: node.sh FILE");
        let g =
            check(&s.graph(
                "    params: {scale: 99, anything: [1, 2]}\n    outputs: [video: raw-video]\n",
            ))
            .unwrap();
        assert_eq!(g.nodes[1].params.i64("scale"), Some(99));
        assert_eq!(g.nodes[1].params.get("corner"), None);
        assert_eq!(
            g.nodes[1].inputs[0].queue_size,
            node_catalog::DEFAULT_QUEUE_SIZE
        );
    }
}
