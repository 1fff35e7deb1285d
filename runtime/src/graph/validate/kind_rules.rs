//! Where the validator applies the rules of the built-in kinds, which live
//! with each kind in the catalog (`node_catalog::kinds`): a kind's rule on
//! one value before its type (video-encode's `crf` range per codec), and the
//! rules between two kinds: the mux's codec × container matrix, and the even
//! picture size every video encoder needs.

use std::collections::HashMap;

use node_catalog::kinds::mux::Container;
use node_catalog::kinds::{camera, common, noise_suppress, sync, video_normalize};
use node_catalog::{KindSpec, ParamType, Params, PortType, Problem};
use serde_json::Value;

use crate::graph::diagnostic::DiagnosticsBuilder;
use crate::graph::model::InputDef;
use crate::graph::yaml::{join, Entry};

use super::nodes::{Draft, DraftInput, Program};

/// The kind's own rule about one param, checked before its type (see
/// `KindSpec::value_rule`). `given` are the node's params as written.
pub(super) fn param_error(
    kind: &KindSpec,
    name: &str,
    raw: &Value,
    given: &[Entry],
) -> Option<Problem> {
    (kind.value_rule)(name, raw, &written(kind, given))
}

/// A node's params as written (text params as their text).
fn written(kind: &KindSpec, given: &[Entry]) -> Params {
    let values = given.iter().filter_map(|e| {
        let s = e.value.as_scalar()?;
        let text = matches!(kind.param(&e.key)?.ty, ParamType::Str | ParamType::Enum(_));
        let v = match text && !s.value.is_string() {
            true => Value::String(s.text.clone()),
            false => s.value.clone(),
        };
        Some((e.key.clone(), v))
    });
    Params(values.collect())
}

/// Each output's container (a mux's file, a stream's FLV or MPEG-TS, ...)
/// must accept the codec of every encoder feeding it.
pub(super) fn containers(drafts: &[Draft], sink: &mut DiagnosticsBuilder<'_>) {
    let by_id: HashMap<&str, &Draft> = drafts.iter().map(|d| (d.id.as_str(), d)).collect();
    for d in drafts {
        let Some(Program::Builtin(k)) = &d.program else {
            continue;
        };
        let Some(format) = k.format.and_then(|f| f(&d.params)) else {
            continue;
        };
        for input in &d.inputs {
            let Some(src) = through_sync(&by_id, input) else {
                continue;
            };
            let Some(Program::Builtin(sk)) = &src.program else {
                continue;
            };
            if !matches!(sk.kind, "video-encode" | "audio-encode")
                || src.bad_params.contains("codec")
            {
                continue;
            }
            let Some(codec) = src.params.str("codec") else {
                continue;
            };
            if format.accepts(codec) {
                continue;
            }
            let into = match k.kind {
                "mux" => format!("a {format} file"),
                kind => format!("{format} (what {kind} writes)"),
            };
            let message = format!(
                "{codec} cannot go in {into} ({format} takes {})",
                format.codecs().join(", ")
            );
            sink.error(
                input.source_pos,
                &input.field,
                message,
                Some(hint(k, codec)),
            );
        }
    }
}

/// The nodes a stream passes on its way to `input`: the node whose output
/// it reads and, while that is a sync (which passes each input on to its
/// output of the same name), the node feeding that sync's input. Bounded by
/// the node count: a cycle is reported by its own check.
fn upstream<'a>(
    by_id: &'a HashMap<&str, &'a Draft>,
    input: &'a DraftInput,
) -> impl Iterator<Item = &'a Draft> + 'a {
    let mut next = Some((input.source_node.as_str(), input.source_output.as_str()));
    std::iter::from_fn(move || {
        let (node, port) = next.take()?;
        let src = *by_id.get(node)?;
        if is_sync(src) {
            next = src
                .inputs
                .iter()
                .find(|i| i.name == port)
                .map(|i| (i.source_node.as_str(), i.source_output.as_str()));
        }
        Some(src)
    })
    .take(by_id.len())
}

fn is_sync(d: &Draft) -> bool {
    matches!(&d.program, Some(Program::Builtin(k)) if k.kind == sync::SPEC.kind)
}

/// The node whose output `input` reads, or, through a sync that passes
/// packets on (an encoder on a camera's machine), the node feeding sync's
/// input of the same name.
fn through_sync<'a>(
    by_id: &'a HashMap<&str, &'a Draft>,
    input: &'a DraftInput,
) -> Option<&'a Draft> {
    upstream(by_id, input).find(|d| !is_sync(d))
}

/// A sync whose cameras come as packets follows the catalog's
/// [`sync::packet_rules`]: every camera encoded, no `paused`.
pub(super) fn sync_packets(
    drafts: &[Draft],
    resolved: &[Vec<InputDef>],
    sink: &mut DiagnosticsBuilder<'_>,
) {
    for (d, inputs) in drafts.iter().zip(resolved) {
        if !is_sync(d) {
            continue;
        }
        let of = |ty: PortType| -> Vec<String> {
            inputs
                .iter()
                .filter(|i| i.ty == ty)
                .map(|i| i.name.clone())
                .collect()
        };
        let (encoded, raw) = (of(PortType::EncodedVideo), of(PortType::RawVideo));
        for problem in sync::packet_rules(&encoded, &raw, &d.params) {
            let (pos, field) = match d.param_pos.get(problem.param) {
                Some(pos) => (*pos, join(&join(&d.field, "params"), problem.param)),
                None => (d.inputs_pos, join(&d.field, problem.param)),
            };
            sink.error(pos, field, problem.message, problem.hint);
        }
    }
}

/// What to change when an output cannot carry a codec.
fn hint(output: &KindSpec, codec: &str) -> String {
    if output.kind != "mux" {
        return format!(
            "change the encoder's `codec` to one {} carries",
            output.kind
        );
    }
    let fits: Vec<&str> = Container::files()
        .filter(|c| c.accepts(codec))
        .map(Container::name)
        .collect();
    format!(
        "{codec} fits in {}: change the mux `path` extension or `container`, or the encoder's `codec`",
        fits.join(" or ")
    )
}

/// Every video encoder encodes 4:2:0, which needs an even width and height:
/// a node that sets an odd size (`width`/`height` params) and feeds an
/// encoder, directly or through `sync` (which passes frames on as they
/// are), is refused here, not after the encoder failed at run time.
pub(super) fn encoder_sizes(drafts: &[Draft], sink: &mut DiagnosticsBuilder<'_>) {
    let by_id: HashMap<&str, &Draft> = drafts.iter().map(|d| (d.id.as_str(), d)).collect();
    for d in drafts {
        if !matches!(&d.program, Some(Program::Builtin(k)) if k.kind == "video-encode") {
            continue;
        }
        for input in &d.inputs {
            let Some((src, (w, h))) = sizing_source(&by_id, input) else {
                continue;
            };
            if w % 2 == 0 && h % 2 == 0 {
                continue;
            }
            let message = format!(
                "`{}` sends {w}x{h} frames: video encoders take an even width and height (4:2:0)",
                src.id
            );
            sink.error(
                input.source_pos,
                &input.field,
                message,
                Some(even_hint(src, w, h)),
            );
        }
    }
}

/// The node upstream of `input` that sets the size of its frames, and that
/// size: its source, or through `sync` the source of the same-named input.
/// `None` when no node sets one, or when that node's own params were
/// refused (said there already, e.g. an odd size in a 4:2:0 format).
fn sizing_source<'a>(
    by_id: &'a HashMap<&str, &'a Draft>,
    input: &'a DraftInput,
) -> Option<(&'a Draft, (u64, u64))> {
    for src in upstream(by_id, input) {
        let own_rules = src.kind.map_or(Vec::new(), |k| (k.rules)(&src.params));
        if !src.params_ok
            || own_rules
                .iter()
                .any(|p| matches!(p.param, "width" | "height"))
        {
            return None;
        }
        if let Some(size) = sent_size(src) {
            return Some((src, size));
        }
    }
    None
}

/// How to make `src`'s odd size even: its `round_to_even` where it has it.
fn even_hint(src: &Draft, w: u64, h: u64) -> String {
    let id = &src.id;
    if src.kind.is_some_and(|k| k.param("round_to_even").is_some()) {
        let (w, h) = (
            common::round_to_even(w as u32),
            common::round_to_even(h as u32),
        );
        return format!(
            "set `{id}`'s `round_to_even: true` to send {w}x{h} (each odd size rounded down, as ffmpeg's `scale=-2`), or even sizes"
        );
    }
    format!(
        "set `{id}`'s width and height to even numbers, e.g. {}x{}",
        w + w % 2,
        h + h % 2
    )
}

/// The frame size a node sets (`width`/`height` params): for the built-in
/// kinds that make one, what the catalog says they make (`round_to_even`
/// applied); for others, the params as written.
fn sent_size(src: &Draft) -> Option<(u64, u64)> {
    let made = match &src.program {
        Some(Program::Builtin(k)) if k.kind == video_normalize::SPEC.kind => {
            video_normalize::Settings::from_params(&src.params)
                .ok()
                .map(|s| (s.width, s.height))
        }
        Some(Program::Builtin(k)) if k.kind == camera::SPEC.kind => {
            camera::Settings::from_params(&src.params)
                .ok()
                .map(|s| (s.width, s.height))
        }
        _ => None,
    };
    if let Some((w, h)) = made {
        return Some((w.into(), h.into()));
    }
    let size = |key: &str| src.params.0.get(key).and_then(Value::as_u64);
    Some((size("width")?, size("height")?))
}

/// RNNoise works at 48 kHz only: a `noise-suppress` fed by a node that sends
/// another rate (its `sample_rate` param; through sync and other
/// noise-suppress nodes, which keep the rate) is refused here, with the
/// way to fix it, not when the first frame reaches the node.
pub(super) fn denoise_rates(drafts: &[Draft], sink: &mut DiagnosticsBuilder<'_>) {
    let by_id: HashMap<&str, &Draft> = drafts.iter().map(|d| (d.id.as_str(), d)).collect();
    for d in drafts {
        if !matches!(&d.program, Some(Program::Builtin(k)) if k.kind == noise_suppress::SPEC.kind) {
            continue;
        }
        for input in &d.inputs {
            let Some((src, rate)) = rate_source(&by_id, input) else {
                continue;
            };
            if rate == noise_suppress::SAMPLE_RATE as u64 {
                continue;
            }
            let message = format!(
                "`{}` sends {rate} Hz audio: noise-suppress (RNNoise) takes {} Hz only",
                src.id,
                noise_suppress::SAMPLE_RATE
            );
            let hint = format!(
                "set `{}`'s `sample_rate: {}`, or put an audio-normalize with `sample_rate: {}` before noise-suppress",
                src.id,
                noise_suppress::SAMPLE_RATE,
                noise_suppress::SAMPLE_RATE
            );
            sink.error(input.source_pos, &input.field, message, Some(hint));
        }
    }
}

/// The node upstream of `input` that sets its audio's rate (a
/// `sample_rate` param), and that rate; through the kinds that keep it.
fn rate_source<'a>(
    by_id: &'a HashMap<&str, &'a Draft>,
    input: &'a DraftInput,
) -> Option<(&'a Draft, u64)> {
    for src in upstream(by_id, input) {
        if !src.params_ok {
            return None;
        }
        if src.kind.map(|k| k.kind) == Some(noise_suppress::SPEC.kind) {
            return Some((src, noise_suppress::SAMPLE_RATE.into()));
        }
        if let Some(rate) = src.params.0.get("sample_rate").and_then(Value::as_u64) {
            return Some((src, rate));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use crate::graph::validate::test_util::*;

    /// A camera, a video-normalize sending 641x361 rgb24 (which its own
    /// rules allow) with `extra` params, sync, an encoder and a mux.
    fn odd_size_graph(extra: &str) -> String {
        format!(
            "nodes:\n  - id: cam\n    node: camera\n  - id: vn\n    node: video-normalize\n    inputs: {{video: cam/video}}\n    params: {{width: 641, height: 361, pixel_format: rgb24{extra}}}\n  - id: sync\n    node: sync\n    inputs: {{video: vn/video}}\n  - id: enc\n    node: video-encode\n    inputs: {{video: sync/video}}\n  - id: mux\n    node: mux\n    inputs: {{video: enc/video}}\n    params: {{path: a.mkv}}\n"
        )
    }

    #[test]
    fn an_odd_size_through_sync_is_refused_and_round_to_even_fixes_it() {
        let diags = check(&odd_size_graph("")).unwrap_err();
        assert_eq!(diags.len(), 1, "{diags}");
        let d = &diags.0[0];
        assert_eq!(d.field, "nodes[3].inputs.video");
        assert_eq!(
            d.message,
            "`vn` sends 641x361 frames: video encoders take an even width and height (4:2:0)"
        );
        let hint = d.hint.as_deref().unwrap();
        assert!(
            hint.contains("`round_to_even: true` to send 640x360"),
            "{hint}"
        );
        // The validator knows the size the node makes: rounded, it passes.
        check(&odd_size_graph(", round_to_even: true")).unwrap();
    }

    fn denoise_graph(rate: u32) -> String {
        format!(
            "nodes:\n  - id: mic\n    node: microphone\n    params: {{sample_rate: {rate}}}\n  - id: ns\n    node: noise-suppress\n    inputs: {{audio: mic/audio}}\n  - id: enc\n    node: audio-encode\n    inputs: {{audio: ns/audio}}\n  - id: mux\n    node: mux\n    inputs: {{audio: enc/audio}}\n    params: {{path: a.mkv}}\n"
        )
    }

    #[test]
    fn noise_suppress_takes_48_khz_only() {
        check(&denoise_graph(48_000)).unwrap();
        let diags = check(&denoise_graph(44_100)).unwrap_err();
        assert_eq!(diags.len(), 1, "{diags}");
        let d = &diags.0[0];
        assert_eq!(d.field, "nodes[1].inputs.audio");
        assert!(d.message.contains("`mic` sends 44100 Hz audio"), "{d:?}");
        assert!(d.hint.as_deref().unwrap().contains("sample_rate: 48000"));
    }

    /// Two cameras encoded before sync (on their machines), sync passing the
    /// packets on to a `path` mux; `sync_extra` goes into sync's node.
    fn edge_graph(cam_b: &str, sync_extra: &str, path: &str) -> String {
        format!(
            "nodes:\n  - id: cam-a\n    node: camera\n    params: {{width: 640, height: 360}}\n  - id: cam-b\n    node: camera\n  - id: enc-a\n    node: video-encode\n    inputs: {{video: cam-a/video}}\n  - id: enc-b\n    node: video-encode\n    inputs: {{video: cam-b/video}}\n  - id: sync\n    node: sync\n    inputs: {{video: enc-a/video, video2: {cam_b}}}\n{sync_extra}  - id: mux\n    node: mux\n    inputs: {{a: sync/video, b: sync/video2}}\n    params: {{path: {path}}}\n"
        )
    }

    #[test]
    fn sync_passes_packets_on_with_their_type() {
        let g = check(&edge_graph("enc-b/video", "", "a.mkv")).unwrap();
        let sync = g.nodes.iter().find(|n| n.id == "sync").unwrap();
        for input in &sync.inputs {
            assert_eq!(input.ty, node_catalog::PortType::EncodedVideo);
            // Packets are never dropped, wherever they go.
            assert_eq!(input.policy, crate::graph::model::QueuePolicy::Block);
        }
        let out = |name: &str| sync.outputs.iter().find(|o| o.name == name).unwrap().ty;
        assert_eq!(out("video"), node_catalog::PortType::EncodedVideo);
        // An output whose input is not connected keeps its own type.
        assert_eq!(out("video3"), node_catalog::PortType::RawVideo);
    }

    #[test]
    fn an_odd_size_is_still_refused_at_an_encoder_before_sync() {
        let text = edge_graph("enc-b/video", "", "a.mkv")
            .replace("width: 640", "width: 641, pixel_format: rgb24");
        let d = error(&text);
        assert!(
            d.contains("nodes[2].inputs.video: `cam-a` sends 641x360 frames"),
            "{d}"
        );
    }

    #[test]
    fn the_mux_sees_the_codec_of_the_encoder_behind_sync() {
        let diags = check(&edge_graph("enc-b/video", "", "a.mp4")).map(|_| ());
        assert!(diags.is_ok(), "h264 fits in mp4");
        let text = edge_graph("enc-b/video", "", "a.webm");
        let diags = check(&text).unwrap_err();
        assert!(
            diags
                .iter()
                .any(|d| d.message.starts_with("h264 cannot go in a webm file")),
            "{diags}"
        );
    }

    #[test]
    fn packet_cameras_refuse_raw_ones_and_paused() {
        let d = error(
            &edge_graph("cam-b/video", "", "a.mkv").replace("b: sync/video2", "b: enc-b/video"),
        );
        assert!(
            d.starts_with("15:5 nodes[4].inputs: sync takes its cameras all raw or all encoded"),
            "{d}"
        );
        let d = error(&edge_graph(
            "enc-b/video",
            "    params: {paused: true}\n",
            "a.mkv",
        ));
        assert!(
            d.starts_with("16:22 nodes[4].params.paused: sync cannot pause encoded camera inputs"),
            "{d}"
        );
    }
}
