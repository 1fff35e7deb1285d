//! Small readers shared by every phase: unknown keys, scalars of one kind,
//! lists of names.

use crate::graph::diagnostic::{did_you_mean, DiagnosticsBuilder};
use crate::graph::yaml::{join, YamlNode};

pub(super) fn unknown_fields(
    node: &YamlNode,
    field: &str,
    known: &[&str],
    sink: &mut DiagnosticsBuilder<'_>,
) {
    for e in node.as_map().unwrap_or_default() {
        if !known.contains(&e.key.as_str()) {
            let hint = did_you_mean(&e.key, known.iter().copied())
                .or_else(|| Some(format!("expected one of: {}", known.join(", "))));
            sink.error(
                e.key_pos,
                join(field, &e.key),
                format!("unknown field `{}`", e.key),
                hint,
            );
        }
    }
}

pub(super) fn text_of(
    node: &YamlNode,
    field: &str,
    what: &str,
    sink: &mut DiagnosticsBuilder<'_>,
) -> Option<String> {
    match node.as_scalar() {
        Some(s) if !s.value.is_null() && !s.text.is_empty() => Some(s.text.clone()),
        _ => {
            sink.error(
                node.pos,
                field,
                format!("expected {what}, found {}", node.describe()),
                None,
            );
            None
        }
    }
}

pub(super) fn int_in(
    node: &YamlNode,
    field: &str,
    min: i64,
    max: i64,
    sink: &mut DiagnosticsBuilder<'_>,
) -> Option<i64> {
    let Some(n) = node.as_scalar().and_then(|s| s.value.as_i64()) else {
        let message = format!(
            "expected an integer {min}..={max}, found {}",
            node.describe()
        );
        sink.error(node.pos, field, message, None);
        return None;
    };
    if !(min..=max).contains(&n) {
        sink.error(
            node.pos,
            field,
            format!("{n} is out of range {min}..={max}"),
            None,
        );
        return None;
    }
    Some(n)
}

pub(super) fn choice(
    node: &YamlNode,
    field: &str,
    choices: &[&'static str],
    sink: &mut DiagnosticsBuilder<'_>,
) -> Option<&'static str> {
    let text = node
        .as_scalar()
        .map(|s| s.text.as_str())
        .unwrap_or_default();
    if let Some(c) = choices.iter().find(|c| **c == text) {
        return Some(c);
    }
    let hint = did_you_mean(text, choices.iter().copied());
    let message = format!(
        "expected one of {}, found {}",
        choices.join(", "),
        node.describe()
    );
    sink.error(node.pos, field, message, hint);
    None
}

pub(super) fn list_or_none(names: &[&str]) -> String {
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}
