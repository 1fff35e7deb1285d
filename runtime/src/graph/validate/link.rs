//! The edges: every input names a node and an output that exist, the types
//! on both ends agree, every required input is connected, queue policies
//! suit what flows; then the validated nodes are built.

use std::collections::HashMap;

use node_catalog::{KindSpec, PortType, DEFAULT_QUEUE_SIZE};

use crate::graph::diagnostic::{did_you_mean, DiagnosticsBuilder};
use crate::graph::model::{InputDef, NodeDef, NodeProgram, OutputDef, QueuePolicy, RestartPolicy};
use crate::graph::yaml::join;

use super::cycles::cycles;
use super::fields::list_or_none;
use super::kind_rules::{containers, denoise_rates, encoder_sizes, sync_packets};
use super::nodes::{Draft, DraftInput, Program};

/// Checks ids, edges, port types, cycles and codec/container pairs, and
/// builds the nodes when everything is right.
pub(super) fn link(drafts: &[Draft], sink: &mut DiagnosticsBuilder<'_>) -> Option<Vec<NodeDef>> {
    let mut nodes = Lookup {
        drafts,
        ids: index_ids(drafts, sink),
        all_ids: drafts
            .iter()
            .map(|d| d.id.as_str())
            .filter(|id| !id.is_empty())
            .collect(),
        outputs: drafts.iter().map(outputs_of).collect(),
    };
    passed_through(drafts, &nodes.ids, &mut nodes.outputs);
    let mut resolved: Vec<Vec<InputDef>> = Vec::new();
    // Data-flow edges: (source draft, consumer draft, consumer input index).
    let mut edges: Vec<(usize, usize, usize)> = Vec::new();
    for (di, d) in drafts.iter().enumerate() {
        let kind = d.kind;
        let mut inputs = Vec::new();
        for (ii, input) in d.inputs.iter().enumerate() {
            inputs.push(resolve_input(&nodes, d, kind, input, sink));
            if let Some(&si) = nodes.ids.get(input.source_node.as_str()) {
                edges.push((si, di, ii));
            }
        }
        if let Some(k) = kind {
            required_inputs(k, d, drafts, &nodes.outputs, sink);
        }
        resolved.push(inputs);
    }
    cycles(drafts, &edges, sink);
    sync_packets(drafts, &resolved, sink);
    containers(drafts, sink);
    encoder_sizes(drafts, sink);
    denoise_rates(drafts, sink);

    if sink.has_errors() {
        return None;
    }
    Some(build_nodes(drafts, resolved, nodes.outputs))
}

/// What the edge checks look nodes up in.
struct Lookup<'a> {
    drafts: &'a [Draft],
    /// Each id's first node; a later one with the same id is reported.
    ids: HashMap<&'a str, usize>,
    /// Every id written, for hints.
    all_ids: Vec<&'a str>,
    /// Each node's outputs ([`outputs_of`]).
    outputs: Vec<Option<Vec<OutputDef>>>,
}

/// Each id's node; reports ids used twice.
fn index_ids<'a>(
    drafts: &'a [Draft],
    sink: &mut DiagnosticsBuilder<'_>,
) -> HashMap<&'a str, usize> {
    let mut ids: HashMap<&str, usize> = HashMap::new();
    for (i, d) in drafts.iter().enumerate() {
        if d.id.is_empty() {
            continue;
        }
        if let Some(&first) = ids.get(d.id.as_str()) {
            let message = format!(
                "duplicate id `{}` (also used by {})",
                d.id, drafts[first].field
            );
            sink.error(d.id_pos, join(&d.field, "id"), message, None);
        } else {
            ids.insert(&d.id, i);
        }
    }
    ids
}

/// One input of `d`: the output it reads exists and its type fits; the
/// input's type, queue size and policy.
fn resolve_input(
    nodes: &Lookup<'_>,
    d: &Draft,
    kind: Option<&KindSpec>,
    input: &DraftInput,
    sink: &mut DiagnosticsBuilder<'_>,
) -> InputDef {
    // What the consumer accepts: None when it cannot be known.
    let accepts: Option<Accepts> = match (&d.program, kind) {
        (Some(_), Some(k)) => input_port(k, input, sink),
        (Some(Program::Custom(_)), _) => Some(Accepts::One(PortType::Any)),
        _ => None,
    };
    let source_ty = source_type(
        input,
        &nodes.ids,
        &nodes.all_ids,
        nodes.drafts,
        &nodes.outputs,
        sink,
    );
    let mut ty = match accepts {
        Some(Accepts::One(t)) if t != PortType::Any => t,
        _ => source_ty.unwrap_or(PortType::Any),
    };
    if let (Some(accepts), Some(src)) = (&accepts, source_ty) {
        if let Err((message, hint)) = accepts.check(src, input, d, kind) {
            sink.error(input.source_pos, &input.field, message, hint);
            ty = PortType::Any;
        }
    }
    InputDef {
        name: input.name.clone(),
        source_node: input.source_node.clone(),
        source_output: input.source_output.clone(),
        queue_size: input.queue_size.unwrap_or_else(|| {
            kind.and_then(|k| k.input(&input.name))
                .map_or(DEFAULT_QUEUE_SIZE, |port| port.queue_size)
        }),
        policy: queue_policy(input, ty, sink),
        ty,
    }
}

/// The input's queue policy: as set, else by what it carries. Encoded
/// packets are never dropped.
fn queue_policy(
    input: &DraftInput,
    ty: PortType,
    sink: &mut DiagnosticsBuilder<'_>,
) -> QueuePolicy {
    let encoded = matches!(ty, PortType::EncodedVideo | PortType::EncodedAudio);
    match input.policy {
        Some((QueuePolicy::DropOldest, pos)) if encoded => {
            let message = format!(
                "encoded packets are never dropped: `{}` carries {ty}",
                input.name
            );
            let hint = Some("remove `policy`: encoded inputs always block".to_string());
            sink.error(pos, join(&input.field, "policy"), message, hint);
            QueuePolicy::Block
        }
        Some((p, _)) => p,
        // Raw video may skip a frame under overload (the next one
        // replaces it); audio never drops by default, since a lost
        // audio frame is an audible gap and shifts everything after it.
        None if ty == PortType::RawVideo => QueuePolicy::DropOldest,
        None => QueuePolicy::Block,
    }
}

/// The validated nodes, once there is no error.
fn build_nodes(
    drafts: &[Draft],
    resolved: Vec<Vec<InputDef>>,
    outputs: Vec<Option<Vec<OutputDef>>>,
) -> Vec<NodeDef> {
    drafts
        .iter()
        .zip(resolved)
        .zip(outputs)
        .map(|((d, inputs), outputs)| NodeDef {
            id: d.id.clone(),
            program: match &d.program {
                Some(Program::Builtin(k)) => NodeProgram::Builtin(k.kind.to_string()),
                Some(Program::Custom(p)) => NodeProgram::Custom(p.clone()),
                None => unreachable!("a node without a program is an error"),
            },
            args: d.args.clone(),
            env: d.env.clone(),
            params: d.params.clone(),
            inputs,
            outputs: outputs.unwrap_or_default(),
            restart: d.restart.unwrap_or(if d.builtin {
                RestartPolicy::OnFailure
            } else {
                RestartPolicy::Never
            }),
            max_restarts: d.max_restarts,
            machine: d.machine.clone(),
            link: d.link.clone(),
            described: d.kind.filter(|_| !d.builtin),
        })
        .collect()
}

/// A node's outputs: as listed, else its kind's (built-in or described),
/// else none; `None` when its program is unknown (already reported).
pub(super) fn outputs_of(d: &Draft) -> Option<Vec<OutputDef>> {
    match (&d.program, &d.outputs, d.kind) {
        (None, _, _) => None,
        (Some(_), Some(declared), _) => Some(declared.clone()),
        (Some(_), None, Some(k)) => Some(
            k.outputs
                .iter()
                .map(|o| OutputDef {
                    name: o.name.to_string(),
                    ty: o.ty,
                })
                .collect(),
        ),
        (Some(_), None, None) => Some(Vec::new()),
    }
}

/// An output named like an input that passes another type through
/// ([`node_catalog::PortSpec::passes`]) carries that type when the input is
/// connected to it: sync's `video2` output is packets when its `video2`
/// input is. Repeated so a chain of such nodes follows (bounded by the
/// node count; a cycle is reported by its own check).
fn passed_through(
    drafts: &[Draft],
    ids: &HashMap<&str, usize>,
    outputs: &mut [Option<Vec<OutputDef>>],
) {
    for _ in 0..drafts.len() {
        let mut changed = false;
        for (di, d) in drafts.iter().enumerate() {
            let Some(k) = d.kind.filter(|_| d.builtin) else {
                continue;
            };
            for input in &d.inputs {
                let Some(passes) = k.input(&input.name).and_then(|p| p.passes) else {
                    continue;
                };
                let Some(&si) = ids.get(input.source_node.as_str()) else {
                    continue;
                };
                let src_ty = outputs[si]
                    .as_ref()
                    .and_then(|outs| outs.iter().find(|o| o.name == input.source_output))
                    .map(|o| o.ty);
                if src_ty != Some(passes) {
                    continue;
                }
                let out = outputs[di]
                    .as_mut()
                    .and_then(|outs| outs.iter_mut().find(|o| o.name == input.name));
                if let Some(out) = out.filter(|o| o.ty != passes) {
                    out.ty = passes;
                    changed = true;
                }
            }
        }
        if !changed {
            return;
        }
    }
}

enum Accepts {
    One(PortType),
    /// A port's own type, or the type it passes through.
    Either(PortType, PortType),
    AnyOf(&'static [PortType]),
}

fn compatible(output: PortType, input: PortType) -> bool {
    output == input || output == PortType::Any || input == PortType::Any
}

impl Accepts {
    fn check(
        &self,
        src: PortType,
        input: &DraftInput,
        d: &Draft,
        kind: Option<&KindSpec>,
    ) -> Result<(), (String, Option<String>)> {
        let consumer = kind.map_or_else(|| format!("node `{}`", d.id), |k| k.kind.to_string());
        let from = format!("`{}/{}`", input.source_node, input.source_output);
        let (ok, wants) = match self {
            Accepts::One(t) => (compatible(src, *t), t.to_string()),
            Accepts::Either(a, b) => (
                compatible(src, *a) || compatible(src, *b),
                format!("{a} or {b}"),
            ),
            Accepts::AnyOf(list) => (
                src == PortType::Any || list.contains(&src),
                list.iter()
                    .map(|t| t.name())
                    .collect::<Vec<_>>()
                    .join(" or "),
            ),
        };
        if ok {
            return Ok(());
        }
        let message = format!(
            "type mismatch: {from} is {src}, but input `{}` of {consumer} takes {wants}",
            input.name
        );
        let hint = match src {
            PortType::RawVideo if wants.contains("encoded-video") => {
                Some("encode it first with a `video-encode` node")
            }
            PortType::RawAudio if wants.contains("encoded-audio") => {
                Some("encode it first with an `audio-encode` node")
            }
            PortType::EncodedVideo | PortType::EncodedAudio if wants.starts_with("raw") => {
                Some("this input takes raw frames: connect it before the encoder")
            }
            _ => None,
        };
        Err((message, hint.map(str::to_string)))
    }
}

/// The port an input of a kind (built-in or described) connects to;
/// reports unknown names.
fn input_port(
    k: &KindSpec,
    input: &DraftInput,
    sink: &mut DiagnosticsBuilder<'_>,
) -> Option<Accepts> {
    if let Some(types) = k.any_inputs {
        return Some(Accepts::AnyOf(types));
    }
    if let Some(port) = k.input(&input.name) {
        return Some(match port.passes {
            Some(other) => Accepts::Either(port.ty, other),
            None => Accepts::One(port.ty),
        });
    }
    let names: Vec<&str> = k.inputs.iter().map(|p| p.name).collect();
    let (message, hint) = if names.is_empty() {
        (format!("{} takes no inputs (it is a source)", k.kind), None)
    } else {
        let hint = did_you_mean(&input.name, names.iter().copied())
            .or_else(|| Some(format!("inputs of {}: {}", k.kind, names.join(", "))));
        (
            format!("`{}` is not an input of {}", input.name, k.kind),
            hint,
        )
    };
    sink.error(input.name_pos, &input.field, message, hint);
    None
}

/// The type of the output an input reads; reports dangling references.
fn source_type(
    input: &DraftInput,
    ids: &HashMap<&str, usize>,
    all_ids: &[&str],
    drafts: &[Draft],
    outputs: &[Option<Vec<OutputDef>>],
    sink: &mut DiagnosticsBuilder<'_>,
) -> Option<PortType> {
    let Some(&si) = ids.get(input.source_node.as_str()) else {
        let hint = did_you_mean(&input.source_node, all_ids.iter().copied())
            .or_else(|| Some(format!("node ids: {}", all_ids.join(", "))));
        let message = format!("unknown node `{}`", input.source_node);
        sink.error(input.source_pos, &input.field, message, hint);
        return None;
    };
    let outs = outputs[si].as_ref()?;
    if let Some(o) = outs.iter().find(|o| o.name == input.source_output) {
        return Some(o.ty);
    }
    let src = &drafts[si];
    if !src.outputs_ok {
        return None; // its `outputs:` is already reported
    }
    let names: Vec<&str> = outs.iter().map(|o| o.name.as_str()).collect();
    let hint = if names.is_empty() && src.kind.is_none() {
        Some(format!(
            "`{}` declares no outputs: list them under its `outputs:`",
            src.id
        ))
    } else {
        did_you_mean(&input.source_output, names.iter().copied())
            .or_else(|| Some(format!("outputs of `{}`: {}", src.id, list_or_none(&names))))
    };
    let message = format!("node `{}` has no output `{}`", src.id, input.source_output);
    sink.error(input.source_pos, &input.field, message, hint);
    None
}

/// Every required input of a kind (built-in or described) must be connected.
fn required_inputs(
    k: &KindSpec,
    d: &Draft,
    drafts: &[Draft],
    outputs: &[Option<Vec<OutputDef>>],
    sink: &mut DiagnosticsBuilder<'_>,
) {
    let field = join(&d.field, "inputs");
    if let Some(types) = k.any_inputs {
        if d.input_names.is_empty() {
            let wants = types
                .iter()
                .map(|t| t.name())
                .collect::<Vec<_>>()
                .join(" or ");
            let message = format!("{} needs at least one input ({wants})", k.kind);
            sink.error(
                d.inputs_pos,
                field,
                message,
                Some(example_source(types, d, drafts, outputs)),
            );
        }
        return;
    }
    for port in k.inputs {
        if port.optional || d.input_names.iter().any(|n| n == port.name) {
            continue;
        }
        let message = format!(
            "{} needs input `{}` ({}) connected",
            k.kind, port.name, port.ty
        );
        let hint = example_source(&[port.ty], d, drafts, outputs);
        sink.error(
            d.inputs_pos,
            &field,
            message,
            Some(format!("add `{}: {}`", port.name, hint)),
        );
    }
}

/// A `<node>/<output>` of the wanted type from another node, for hints.
fn example_source(
    types: &[PortType],
    d: &Draft,
    drafts: &[Draft],
    outputs: &[Option<Vec<OutputDef>>],
) -> String {
    for (other, outs) in drafts.iter().zip(outputs) {
        if other.id == d.id {
            continue;
        }
        if let Some(o) = outs.iter().flatten().find(|o| types.contains(&o.ty)) {
            return format!("{}/{}", other.id, o.name);
        }
    }
    "<node-id>/<output>".into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::validate::test_util::*;

    #[test]
    fn queue_size_defaults_come_from_the_port() {
        let g = check(&with_camera("")).unwrap();
        // video-encode's input absorbs uneven encode times; the mux's is the usual depth.
        assert_eq!(g.nodes[1].inputs[0].queue_size, 8);
        assert_eq!(g.nodes[2].inputs[0].queue_size, DEFAULT_QUEUE_SIZE);
        let short = with_camera("").replace(
            "inputs: {video: cam/video}",
            "inputs:\n      video: {source: cam/video, queue_size: 2}",
        );
        assert_eq!(check(&short).unwrap().nodes[1].inputs[0].queue_size, 2);
    }

    #[test]
    fn mux_needs_an_input() {
        let text = "nodes:\n  - id: mux\n    node: mux\n    params: {path: a.mp4}\n";
        assert_eq!(
            error(text),
            "2:5 nodes[0].inputs: mux needs at least one input (encoded-video or encoded-audio)"
        );
    }

    #[test]
    fn sources_take_no_inputs() {
        let text = with_camera("    inputs: {video: enc/video}\n");
        let diags = check(&text).unwrap_err();
        assert!(
            diags
                .iter()
                .any(|d| d.message == "camera takes no inputs (it is a source)"),
            "{diags}"
        );
    }

    #[test]
    fn custom_outputs_must_be_declared() {
        let dir = env!("CARGO_MANIFEST_DIR");
        let text = format!(
            "nodes:\n  - id: det\n    path: {dir}/tests/fixtures/nodes/detector.sh\n  - id: enc\n    node: video-encode\n    inputs: {{video: det/image}}\n"
        );
        let diags = check(&text).unwrap_err();
        let d = diags
            .iter()
            .find(|d| d.field == "nodes[1].inputs.video")
            .unwrap();
        assert_eq!(d.message, "node `det` has no output `image`");
        assert_eq!(
            d.hint.as_deref(),
            Some("`det` declares no outputs: list them under its `outputs:`")
        );
    }
}
