//! A node's `inputs:` and `outputs:` as written; whether they connect is
//! checked in [`super::link`].

use node_catalog::{KindSpec, PortType};

use crate::graph::diagnostic::{did_you_mean, DiagnosticsBuilder};
use crate::graph::model::{OutputDef, QueuePolicy};
use crate::graph::yaml::{join, Entry, NodeKind};

use super::fields::{choice, int_in, list_or_none, unknown_fields};
use super::nodes::DraftInput;

const INPUT_FIELDS: &[&str] = &["source", "queue_size", "policy", "link"];
const POLICIES: &[&str] = &["drop-oldest", "block"];
const PORT_TYPES: &[&str] = &[
    "raw-video",
    "raw-audio",
    "encoded-video",
    "encoded-audio",
    "stats",
    "any",
];
const MAX_QUEUE_SIZE: i64 = 1024;

pub(super) fn read_inputs(
    e: &Entry,
    field: &str,
    sink: &mut DiagnosticsBuilder<'_>,
) -> Vec<DraftInput> {
    let f = join(field, "inputs");
    let Some(entries) = e.value.as_map() else {
        if e.value.as_scalar().is_none_or(|s| !s.value.is_null()) {
            let message = format!(
                "expected a mapping of input names to sources, found {}",
                e.value.describe()
            );
            sink.error(
                e.value.pos,
                f,
                message,
                Some("e.g. `video: camera/video`".into()),
            );
        }
        return Vec::new();
    };
    let mut inputs = Vec::new();
    for i in entries {
        let inf = join(&f, &i.key);
        let (source, source_pos, queue_size, policy, link) = match &i.value.kind {
            NodeKind::Map(_) => {
                unknown_fields(&i.value, &inf, INPUT_FIELDS, sink);
                let Some(src) = i.value.get("source") else {
                    let hint = Some("e.g. `source: camera/video`".into());
                    sink.error(
                        i.value.pos,
                        join(&inf, "source"),
                        "missing required field `source`",
                        hint,
                    );
                    continue;
                };
                let queue_size = i.value.get("queue_size").and_then(|q| {
                    int_in(&q.value, &join(&inf, "queue_size"), 1, MAX_QUEUE_SIZE, sink)
                        .map(|n| n as usize)
                });
                let policy = i.value.get("policy").and_then(|p| {
                    let choice = choice(&p.value, &join(&inf, "policy"), POLICIES, sink)?;
                    let policy = if choice == "block" {
                        QueuePolicy::Block
                    } else {
                        QueuePolicy::DropOldest
                    };
                    Some((policy, p.value.pos))
                });
                (
                    &src.value,
                    src.value.pos,
                    queue_size,
                    policy,
                    i.value.get("link").cloned(),
                )
            }
            _ => (&i.value, i.value.pos, None, None, None),
        };
        let parsed = source
            .as_scalar()
            .filter(|s| s.value.is_string())
            .and_then(|s| s.text.split_once('/'))
            .filter(|(n, o)| !n.is_empty() && !o.is_empty());
        let Some((node, output)) = parsed else {
            let message = format!("expected `<node-id>/<output>`, found {}", source.describe());
            sink.error(
                source_pos,
                &inf,
                message,
                Some("e.g. `camera/video`".into()),
            );
            continue;
        };
        inputs.push(DraftInput {
            name: i.key.clone(),
            name_pos: i.key_pos,
            field: inf,
            source_node: node.to_string(),
            source_output: output.to_string(),
            source_pos,
            queue_size,
            policy,
            link,
        });
    }
    inputs
}

pub(super) fn read_outputs(
    e: &Entry,
    field: &str,
    kind: Option<&KindSpec>,
    builtin: bool,
    sink: &mut DiagnosticsBuilder<'_>,
) -> Option<Vec<OutputDef>> {
    let f = join(field, "outputs");
    let Some(items) = e.value.as_seq() else {
        let message = format!(
            "expected a list of output names, found {}",
            e.value.describe()
        );
        sink.error(
            e.value.pos,
            f,
            message,
            Some("e.g. `outputs: [detections, image: raw-video]`".into()),
        );
        return None;
    };
    let mut outputs: Vec<OutputDef> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let itf = format!("{f}[{i}]");
        let (name, ty) = match &item.kind {
            NodeKind::Scalar(s) if s.value.is_string() => (s.text.clone(), PortType::Any),
            NodeKind::Map(entries) if entries.len() == 1 && !builtin => {
                let t = &entries[0];
                let type_name = t
                    .value
                    .as_scalar()
                    .map(|s| s.text.clone())
                    .unwrap_or_default();
                match PortType::from_name(&type_name) {
                    Some(ty) => (t.key.clone(), ty),
                    None => {
                        let hint = did_you_mean(&type_name, PORT_TYPES.iter().copied())
                            .or_else(|| Some(format!("port types: {}", PORT_TYPES.join(", "))));
                        let message = format!("unknown port type `{type_name}`");
                        sink.error(t.value.pos, join(&itf, &t.key), message, hint);
                        continue;
                    }
                }
            }
            _ => {
                let expected = if builtin {
                    "an output name"
                } else {
                    "`name` or `name: type`"
                };
                let message = format!("expected {expected}, found {}", item.describe());
                sink.error(item.pos, itf, message, None);
                continue;
            }
        };
        if name.is_empty() || name.contains(['/', ' ']) {
            sink.error(
                item.pos,
                itf,
                format!("invalid output name `{name}`"),
                Some("no `/` or spaces".into()),
            );
            continue;
        }
        if outputs.iter().any(|o| o.name == name) {
            sink.error(
                item.pos,
                itf,
                format!("output `{name}` is listed twice"),
                None,
            );
            continue;
        }
        if let Some(k) = kind {
            let Some(port) = k.output(&name) else {
                let names: Vec<&str> = k.outputs.iter().map(|o| o.name).collect();
                let hint = did_you_mean(&name, names.iter().copied())
                    .or_else(|| Some(format!("outputs of {}: {}", k.kind, list_or_none(&names))));
                sink.error(
                    item.pos,
                    itf,
                    format!("`{name}` is not an output of {}", k.kind),
                    hint,
                );
                continue;
            };
            // A custom node's schema gives the type; `name: type` must agree.
            if ty != PortType::Any && ty != port.ty {
                let message = format!("output `{name}` of {} is {}, not {ty}", k.kind, port.ty);
                let hint = Some(format!("write `{name}` or `{name}: {}`", port.ty));
                sink.error(item.pos, itf, message, hint);
                continue;
            }
            outputs.push(OutputDef { name, ty: port.ty });
            continue;
        }
        outputs.push(OutputDef { name, ty });
    }
    Some(outputs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::validate::test_util::*;

    #[test]
    fn explicit_block_on_raw_input_and_long_form() {
        let text = with_camera("").replace(
            "inputs: {video: cam/video}",
            "inputs:\n      video: {source: cam/video, policy: block, queue_size: 16}",
        );
        let g = check(&text).unwrap();
        let input = &g.nodes[1].inputs[0];
        assert_eq!((input.policy, input.queue_size), (QueuePolicy::Block, 16));
    }

    #[test]
    fn long_form_input_errors() {
        let text = with_camera("").replace(
            "inputs: {video: cam/video}",
            "inputs:\n      video: {from: cam/video}",
        );
        let diags = check(&text).unwrap_err();
        let found: Vec<_> = diags
            .iter()
            .map(|d| (d.field.as_str(), d.message.as_str()))
            .collect();
        assert_eq!(
            found,
            [
                (
                    "nodes[1].inputs.video.source",
                    "missing required field `source`"
                ),
                ("nodes[1].inputs.video.from", "unknown field `from`"),
            ],
            "{diags}"
        );
        let text = with_camera("").replace("video: cam/video", "video: cam");
        assert_eq!(
            error(&text),
            "6:21 nodes[1].inputs.video: expected `<node-id>/<output>`, found the string \"cam\""
        );
        let text = with_camera("").replace(
            "inputs: {video: cam/video}",
            "inputs: {video: {source: cam/video, policy: drop}}",
        );
        let diags = check(&text).unwrap_err();
        assert_eq!(
            diags.0[0].hint.as_deref(),
            Some("did you mean `drop-oldest`?")
        );
    }

    #[test]
    fn outputs_listed_twice_and_typed_builtin_outputs() {
        let text = with_camera("    outputs: [video, video]\n");
        assert_eq!(
            error(&text),
            "4:22 nodes[0].outputs[1]: output `video` is listed twice"
        );
        let text = with_camera("    outputs: [{video: raw-video}]\n");
        assert!(error(&text).contains("expected an output name, found a mapping"));
    }
}
