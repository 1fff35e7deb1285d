//! A node's `params:`: a built-in kind's checked against its catalog entry
//! (type, range, choices, defaults, the kind's own cross-checks), and a
//! custom node's against the schema it published the same way; a custom
//! node without a schema gets them as written.

use node_catalog::{KindSpec, ParamSpec, ParamType, Params};
use serde_json::{Map, Value};

use crate::graph::diagnostic::{did_you_mean, DiagnosticsBuilder};
use crate::graph::vars::Expansion;
use crate::graph::yaml::{join, Entry, Pos, YamlNode};

use super::kind_rules;
use super::nodes::{Draft, NodeReader};

impl NodeReader<'_> {
    /// Checks every param given against `kind`, fills in the defaults and
    /// runs the kind's cross-checks.
    pub(super) fn read_typed_params(
        &self,
        kind: &KindSpec,
        entry: Option<&Entry>,
        draft: &mut Draft,
        sink: &mut DiagnosticsBuilder<'_>,
    ) {
        let pfield = join(&draft.field, "params");
        self.read_typed_params_at(kind, entry, &pfield, draft, sink);
    }

    /// [`NodeReader::read_typed_params`] from a mapping written elsewhere
    /// than the node's `params:` (a link's settings), `pfield` naming it.
    pub(super) fn read_typed_params_at(
        &self,
        kind: &KindSpec,
        entry: Option<&Entry>,
        pfield: &str,
        draft: &mut Draft,
        sink: &mut DiagnosticsBuilder<'_>,
    ) {
        let pfield = pfield.to_string();
        let mut values = Map::new();
        let given = params_mapping(entry, &pfield, draft, sink);
        for p in given.unwrap_or_default() {
            let f = join(&pfield, &p.key);
            let Some(spec) = known_param(kind, p, &f, draft, sink) else {
                continue;
            };
            let Some(raw) = param_scalar(spec, &p.value, &f, draft, sink) else {
                continue;
            };
            if let Some(problem) =
                kind_rules::param_error(kind, &p.key, &raw, given.unwrap_or_default())
            {
                sink.error(p.value.pos, f, problem.message, problem.hint);
                reject(draft, &p.key);
                continue;
            }
            if let Some(v) = coerce_param(spec, &raw, p.value.pos, &f, draft, sink) {
                values.insert(p.key.clone(), v);
                draft.param_pos.insert(p.key.clone(), p.value.pos);
            }
        }
        self.fill_defaults(kind, &mut values);
        draft.params = Params(values);
        self.cross_check(kind, &pfield, draft, sink);
    }

    /// The params not given take their defaults. Defaults may use built-ins
    /// (`recordings/${timestamp}.mp4`); one that cannot be expanded here is
    /// left for the node to expand.
    fn fill_defaults(&self, kind: &KindSpec, values: &mut Map<String, Value>) {
        for spec in kind.params {
            if values.contains_key(spec.name) {
                continue;
            }
            if let Some(mut v) = spec.default_value() {
                if let Some(Ok(exp)) = v.as_str().map(|t| self.vars.expand(t)) {
                    match exp {
                        Expansion::Unchanged => {}
                        Expansion::Whole(x) => v = x,
                        Expansion::Text(t) => v = Value::String(t),
                    }
                }
                values.insert(spec.name.to_string(), v);
            }
        }
    }

    /// The kind's rules, once each param is right on its own: the pure ones
    /// for every node; its checks of files and directories only for a node
    /// of this machine (one deployed elsewhere is checked there).
    pub(super) fn cross_check(
        &self,
        kind: &KindSpec,
        pfield: &str,
        draft: &mut Draft,
        sink: &mut DiagnosticsBuilder<'_>,
    ) {
        let elsewhere = matches!(
            (self.local_machine, draft.machine.as_deref()),
            (Some(here), Some(there)) if here != there
        );
        if !draft.params_ok {
            return;
        }
        let mut problems = kind.check(&draft.params, !elsewhere);
        if problems.is_empty() {
            problems = (kind.inputs_rule)(&draft.input_names, &draft.params);
        }
        for problem in problems {
            // A problem with the inputs themselves points at `inputs:`.
            let (pos, field) = match kind.param(problem.param) {
                Some(_) => (
                    draft.param_pos.get(problem.param).copied(),
                    join(pfield, problem.param),
                ),
                None => (Some(draft.inputs_pos), join(&draft.field, problem.param)),
            };
            let pos = pos.unwrap_or(draft.params_pos);
            sink.error(pos, field, problem.message, problem.hint);
            draft.params_ok = false;
        }
    }
}

/// The entries of `params:`; `None` when absent, null or not a mapping (reported).
fn params_mapping<'e>(
    entry: Option<&'e Entry>,
    pfield: &str,
    draft: &mut Draft,
    sink: &mut DiagnosticsBuilder<'_>,
) -> Option<&'e [Entry]> {
    entry.and_then(|e| match e.value.as_map() {
        Some(m) => Some(m),
        None if e.value.as_scalar().is_some_and(|s| s.value.is_null()) => None,
        None => {
            let message = format!("`params` must be a mapping, found {}", e.value.describe());
            sink.error(e.value.pos, pfield, message, None);
            draft.params_ok = false;
            None
        }
    })
}

/// The spec of a param the kind has; reports an unknown one.
fn known_param(
    kind: &KindSpec,
    p: &Entry,
    f: &str,
    draft: &mut Draft,
    sink: &mut DiagnosticsBuilder<'_>,
) -> Option<&'static ParamSpec> {
    if let Some(spec) = kind.param(&p.key) {
        return Some(spec);
    }
    let names: Vec<&str> = kind.params.iter().map(|s| s.name).collect();
    let hint = did_you_mean(&p.key, names.iter().copied())
        .or_else(|| Some(format!("params of {}: {}", kind.kind, names.join(", "))));
    sink.error(
        p.key_pos,
        f,
        format!("unknown param `{}` for {}", p.key, kind.kind),
        hint,
    );
    draft.params_ok = false;
    None
}

/// The value as set, ready to coerce; `None` when it is not a scalar
/// (reported) or an explicit null, which means "not set": the default (or
/// absence) applies.
fn param_scalar(
    spec: &ParamSpec,
    value: &YamlNode,
    f: &str,
    draft: &mut Draft,
    sink: &mut DiagnosticsBuilder<'_>,
) -> Option<Value> {
    if spec.ty.is_structured() && value.as_scalar().is_none() {
        // A mapping or a list: checked as a whole by its type.
        return Some(value.to_json());
    }
    let Some(s) = value.as_scalar() else {
        let message = format!(
            "expected {}, found {}",
            spec.ty.describe(),
            value.describe()
        );
        sink.error(value.pos, f, message, None);
        reject(draft, spec.name);
        return None;
    };
    if s.value.is_null() {
        return None;
    }
    // Text params get the text as written (`1.10` stays `1.10`).
    Some(match spec.ty {
        ParamType::Str | ParamType::Enum(_) if !s.value.is_string() => {
            Value::String(s.text.clone())
        }
        _ => s.value.clone(),
    })
}

/// The value checked and normalized by its type; reports it when wrong.
fn coerce_param(
    spec: &ParamSpec,
    raw: &Value,
    pos: Pos,
    f: &str,
    draft: &mut Draft,
    sink: &mut DiagnosticsBuilder<'_>,
) -> Option<Value> {
    match spec.ty.coerce(raw) {
        Ok(v) => Some(v),
        Err(message) => {
            let hint = match spec.ty {
                ParamType::Enum(choices) => raw
                    .as_str()
                    .and_then(|t| did_you_mean(t, choices.iter().copied())),
                _ if message.starts_with("expected") => {
                    Some(format!("`{}` takes {}", spec.name, spec.ty.describe()))
                }
                _ => None,
            };
            sink.error(pos, f, message, hint);
            reject(draft, spec.name);
            None
        }
    }
}

/// A param set wrong: cross-checks are off and its default stands in for it.
fn reject(draft: &mut Draft, name: &str) {
    draft.params_ok = false;
    draft.bad_params.insert(name.to_string());
}

pub(super) fn read_custom_params(
    entry: Option<&Entry>,
    draft: &mut Draft,
    sink: &mut DiagnosticsBuilder<'_>,
) {
    let Some(e) = entry else { return };
    match e.value.to_json() {
        Value::Object(map) => draft.params = Params(map),
        Value::Null => {}
        _ => {
            let message = format!("`params` must be a mapping, found {}", e.value.describe());
            sink.error(e.value.pos, join(&draft.field, "params"), message, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::graph::validate::test_util::*;

    #[test]
    fn null_params_mean_unset() {
        let g = check(&with_camera("    params:\n      width: ~\n")).unwrap();
        assert_eq!(
            g.nodes[0].params.i64("width"),
            Some(1920),
            "the default applies"
        );
        let g = check(&with_camera("    params:\n")).unwrap();
        assert_eq!(g.nodes[0].params.i64("width"), Some(1920));
        let g = check(&with_camera("")).unwrap();
        assert_eq!(g.nodes[2].params.get("crf"), None, "no default: absent");
    }

    #[test]
    fn text_params_keep_the_text_as_written() {
        // `source` has a grammar (a kind rule): `tune` is free text.
        let text = with_camera("").replace(
            "node: video-encode\n",
            "node: video-encode\n    params: {tune: 1.10}\n",
        );
        let g = check(&text).unwrap();
        assert_eq!(g.nodes[1].params.str("tune"), Some("1.10"));
    }
}
