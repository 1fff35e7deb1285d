//! The graph as a whole: its name, its `vars:`, and the `--set` overrides
//! of variables and of node params.

use std::path::Path;

use serde_json::Value;

use crate::graph::diagnostic::{did_you_mean, DiagnosticsBuilder};
use crate::graph::load::{override_value, Override};
use crate::graph::vars::{value_text, Expansion, Var, Vars};
use crate::graph::yaml::{join, Entry, NodeKind, Pos, Style, YamlNode};

/// The built-in variable holding the machine this runtime runs
/// (`--machine NAME`), usable as `${machine}`.
pub const MACHINE_BUILTIN: &str = "machine";

pub(super) fn graph_name(
    root: &YamlNode,
    file: &Path,
    sink: &mut DiagnosticsBuilder<'_>,
) -> String {
    let stem = || {
        file.file_stem()
            .map_or("graph".into(), |s| s.to_string_lossy().into_owned())
    };
    match root.get("name") {
        None => stem(),
        Some(e) => match e.value.as_scalar() {
            Some(s) if !s.text.trim().is_empty() => s.text.clone(),
            _ => {
                sink.error(
                    e.value.pos,
                    "name",
                    format!("expected a name, found {}", e.value.describe()),
                    None,
                );
                stem()
            }
        },
    }
}

fn valid_var_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

pub(super) fn read_vars(root: &YamlNode, vars: &mut Vars, sink: &mut DiagnosticsBuilder<'_>) {
    let Some(e) = root.get("vars") else { return };
    let Some(entries) = e.value.as_map() else {
        if e.value.as_scalar().is_none_or(|s| !s.value.is_null()) {
            let message = format!(
                "`vars` must map names to values, found {}",
                e.value.describe()
            );
            sink.error(e.value.pos, "vars", message, None);
        }
        return;
    };
    for v in entries {
        let field = join("vars", &v.key);
        if vars.get(&v.key).is_some_and(|var| var.builtin) {
            let message = format!("`{}` is a built-in variable and cannot be redefined", v.key);
            sink.error(v.key_pos, field, message, Some("pick another name".into()));
            continue;
        }
        if !valid_var_name(&v.key) {
            let message = format!("invalid variable name `{}`", v.key);
            sink.error(
                v.key_pos,
                field,
                message,
                Some("use letters, digits, `_` and `-`".into()),
            );
            continue;
        }
        let Some(s) = v.value.as_scalar() else {
            let message = format!("a variable holds one value, found {}", v.value.describe());
            sink.error(v.value.pos, field, message, None);
            continue;
        };
        let var = Var {
            value: s.value.clone(),
            // As written, so `${v}` inside a longer string keeps `1.10` as is.
            text: if s.value.is_null() {
                String::new()
            } else {
                s.text.clone()
            },
            pos: v.value.pos,
            builtin: false,
            plain: s.style == Style::Plain,
            failed: false,
        };
        vars.insert(v.key.clone(), var);
    }
}

/// `--set VAR=VALUE`: only variables the graph defines can be set.
pub(super) fn override_vars(
    overrides: &[Override],
    vars: &mut Vars,
    sink: &mut DiagnosticsBuilder<'_>,
) {
    for (i, o) in overrides.iter().enumerate() {
        if o.target.contains('.') {
            continue;
        }
        let pos = Pos::Override(i);
        match vars.get(&o.target) {
            Some(var) if var.builtin => {
                let message = format!("`{}` is a built-in variable and cannot be set", o.target);
                sink.error(pos, "", message, None);
            }
            Some(_) => {
                let (value, style) = override_value(&o.value);
                let plain = style == Style::Plain;
                let var = Var {
                    text: value_text(&value),
                    value,
                    pos,
                    builtin: false,
                    plain,
                    failed: false,
                };
                vars.insert(o.target.clone(), var);
            }
            None => {
                let names: Vec<&str> = vars
                    .names()
                    .filter(|n| vars.get(n).is_some_and(|v| !v.builtin))
                    .collect();
                let hint = did_you_mean(&o.target, names.iter().copied()).or_else(|| {
                    Some(if names.is_empty() {
                        "the graph defines no `vars:`; to set a param use `--set NODE.PARAM=VALUE`"
                            .into()
                    } else {
                        format!("the graph's variables: {}", names.join(", "))
                    })
                });
                sink.error(
                    pos,
                    "",
                    format!("no variable `{}` in this graph", o.target),
                    hint,
                );
            }
        }
    }
}

/// `--set NODE.PARAM=VALUE`: writes the param into the node's `params:` as if
/// the file said so, positioned at the override so errors name it.
pub(super) fn override_params(
    overrides: &[Override],
    nodes: &mut YamlNode,
    vars: &Vars,
    sink: &mut DiagnosticsBuilder<'_>,
) {
    for (i, o) in overrides.iter().enumerate() {
        let Some((id, param)) = o.target.split_once('.') else {
            continue;
        };
        let pos = Pos::Override(i);
        let (mut value, style) = override_value(&o.value);
        if let Value::String(text) = &value {
            match vars.expand(text) {
                Ok(Expansion::Unchanged) => {}
                Ok(Expansion::Whole(v)) => value = v,
                Ok(Expansion::Text(t)) if style == Style::Plain => {
                    value = crate::graph::yaml::resolve_plain(&t)
                }
                Ok(Expansion::Text(t)) => value = Value::String(t),
                Err(errors) => {
                    for (message, hint) in errors {
                        sink.error(pos, "", message, hint);
                    }
                    sink.poison(pos);
                    value = Value::Null;
                }
            }
        }
        let scalar = YamlNode::scalar(pos, value.clone(), value_text(&value), style);
        let Some(items) = seq_mut(nodes) else {
            continue;
        };
        let ids: Vec<String> = items.iter().filter_map(node_id).collect();
        let Some(target) = items.iter_mut().find(|n| node_id(n).as_deref() == Some(id)) else {
            let hint = did_you_mean(id, ids.iter().map(String::as_str))
                .or_else(|| Some(format!("node ids: {}", ids.join(", "))));
            sink.error(pos, "", format!("no node `{id}` in this graph"), hint);
            continue;
        };
        let Some(entries) = target.as_map_mut() else {
            continue;
        };
        let entry = Entry {
            key: param.to_string(),
            key_pos: pos,
            value: scalar,
        };
        match entries.iter_mut().find(|e| e.key == "params") {
            Some(params) => {
                // A null `params:` becomes a mapping; any other non-mapping is reported later.
                if params.value.as_scalar().is_some_and(|s| s.value.is_null()) {
                    params.value = YamlNode {
                        pos,
                        kind: NodeKind::Map(vec![entry]),
                    };
                } else if let Some(list) = params.value.as_map_mut() {
                    list.retain(|e| e.key != param);
                    list.push(entry);
                }
            }
            None => entries.push(Entry {
                key: "params".into(),
                key_pos: pos,
                value: YamlNode {
                    pos,
                    kind: NodeKind::Map(vec![entry]),
                },
            }),
        }
    }
}

fn seq_mut(node: &mut YamlNode) -> Option<&mut Vec<YamlNode>> {
    match &mut node.kind {
        NodeKind::Seq(items) => Some(items),
        _ => None,
    }
}

fn node_id(node: &YamlNode) -> Option<String> {
    Some(node.get("id")?.value.as_scalar()?.text.clone())
}

#[cfg(test)]
mod tests {
    use crate::graph::validate::test_util::*;

    #[test]
    fn vars_must_be_scalars() {
        let text = format!("vars:\n  size: [1, 2]\n{}", with_camera(""));
        assert_eq!(
            error(&text),
            "2:9 vars.size: a variable holds one value, found a list"
        );
    }
}
