//! Where the validator applies the rules of the built-in kinds, which live
//! with each kind in the catalog (`node_catalog::kinds`): a kind's rule on
//! one value before its type (video-encode's `crf` range per codec), and the
//! rules between two kinds: the mux's codec × container matrix, and the even
//! picture size every video encoder needs.

use std::collections::HashMap;

use node_catalog::kinds::mux::Container;
use node_catalog::{KindSpec, ParamType, Params, Problem};
use serde_json::Value;

use crate::graph::diagnostic::DiagnosticsBuilder;
use crate::graph::yaml::Entry;

use super::nodes::{Draft, Program};

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
            let Some(src) = by_id.get(input.source_node.as_str()) else {
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
/// encoder is refused here, not after the encoder failed at run time.
pub(super) fn encoder_sizes(drafts: &[Draft], sink: &mut DiagnosticsBuilder<'_>) {
    let by_id: HashMap<&str, &Draft> = drafts.iter().map(|d| (d.id.as_str(), d)).collect();
    for d in drafts {
        if !matches!(&d.program, Some(Program::Builtin(k)) if k.kind == "video-encode") {
            continue;
        }
        for input in &d.inputs {
            let Some(src) = by_id.get(input.source_node.as_str()) else {
                continue;
            };
            if !src.params_ok {
                continue; // its own params were refused: said there already
            }
            let size = |key: &str| src.params.0.get(key).and_then(Value::as_u64);
            let (Some(w), Some(h)) = (size("width"), size("height")) else {
                continue;
            };
            if w % 2 == 0 && h % 2 == 0 {
                continue;
            }
            let message = format!(
                "`{}` sends {w}x{h} frames: video encoders take an even width and height (4:2:0)",
                src.id
            );
            let hint = Some(format!(
                "set `{}`'s width and height to even numbers, e.g. {}x{}",
                src.id,
                w + w % 2,
                h + h % 2
            ));
            sink.error(input.source_pos, &input.field, message, hint);
        }
    }
}
