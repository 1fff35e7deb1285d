//! Rules that belong to one built-in kind rather than to graphs in general:
//! video-encode's CRF range per codec and the mux's codec × container
//! matrix. Kept apart so they can move to the catalog in one piece.

use std::collections::HashMap;

use node_catalog::{
    container_accepts, container_for, crf_max, kind as builtin_kind, KindSpec, ParamType,
};

use crate::graph::diagnostic::Sink;
use crate::graph::yaml::Entry;
use serde_json::Value;

use super::nodes::{Draft, Program};

/// A kind's own rule about one param, checked before its type: video-encode's
/// `crf` range depends on the codec. `given` are the node's params as written.
pub(super) fn param_error(
    kind: &KindSpec,
    name: &str,
    raw: &Value,
    given: &[Entry],
) -> Option<(String, Option<String>)> {
    if kind.kind != "video-encode" || name != "crf" {
        return None;
    }
    let crf = raw.as_i64()?;
    let codec = given_codec(given, kind);
    let max = crf_max(&codec);
    if (0..=max).contains(&crf) {
        return None;
    }
    let message = format!("crf {crf} is out of range 0..={max} for {codec}");
    let hint = "h264 and h265 take crf 0..=51, vp9 and av1 0..=63; lower is better quality";
    Some((message, Some(hint.into())))
}

/// The codec a video-encode node is given in the file, else its default.
fn given_codec(params: &[Entry], kind: &KindSpec) -> String {
    let choices = match kind.param("codec").map(|s| s.ty) {
        Some(ParamType::Enum(c)) => c,
        _ => &[],
    };
    params
        .iter()
        .find(|e| e.key == "codec")
        .and_then(|e| e.value.as_scalar())
        .map(|s| s.text.clone())
        .filter(|c| choices.contains(&c.as_str()))
        .or_else(|| kind.param("codec")?.default.map(str::to_string))
        .unwrap_or_default()
}

/// Each mux's container must accept the codec of every encoder feeding it.
pub(super) fn containers(drafts: &[Draft], sink: &mut Sink<'_>) {
    let by_id: HashMap<&str, &Draft> = drafts.iter().map(|d| (d.id.as_str(), d)).collect();
    let codec_choices = |kind: &str| match builtin_kind(kind)
        .and_then(|k| k.param("codec"))
        .map(|p| p.ty)
    {
        Some(ParamType::Enum(c)) => c,
        _ => &[],
    };
    let all_codecs: Vec<&str> =
        [codec_choices("video-encode"), codec_choices("audio-encode")].concat();
    let all_containers: Vec<&str> = match builtin_kind("mux")
        .and_then(|k| k.param("container"))
        .map(|p| p.ty)
    {
        Some(ParamType::Enum(c)) => c.iter().copied().filter(|c| *c != "auto").collect(),
        _ => Vec::new(),
    };
    for d in drafts {
        let Some(Program::Builtin(k)) = &d.program else {
            continue;
        };
        if k.kind != "mux" || d.bad_params.contains("path") || d.bad_params.contains("container") {
            continue;
        }
        let Some(container) = container_for(
            d.params.str_or("container", "auto"),
            d.params.str_or("path", ""),
        ) else {
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
            if container_accepts(container, codec) {
                continue;
            }
            let takes: Vec<&str> = all_codecs
                .iter()
                .copied()
                .filter(|c| container_accepts(container, c))
                .collect();
            let fits: Vec<&str> = all_containers
                .iter()
                .copied()
                .filter(|c| container_accepts(c, codec))
                .collect();
            let message = format!(
                "{codec} cannot go in a {container} file ({container} takes {})",
                takes.join(", ")
            );
            let hint = Some(format!(
                "{codec} fits in {}: change the mux `path` extension or `container`, or the encoder's `codec`",
                fits.join(" or ")
            ));
            sink.error(input.source_pos, &input.field, message, hint);
        }
    }
}
