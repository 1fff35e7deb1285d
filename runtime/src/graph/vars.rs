//! `${var}` substitution: graph `vars:`, `--set VAR=VALUE` and the runtime's
//! built-in variables (such as `${timestamp}`).

use std::collections::BTreeMap;

use serde_json::Value;

use super::diagnostic::{did_you_mean, DiagnosticsBuilder};
use super::yaml::{join, resolve_plain, NodeKind, Pos, Style, YamlNode};

/// A variable's value and where it was set.
#[derive(Debug, Clone)]
pub(crate) struct Var {
    pub value: Value,
    /// The value as text, for use inside a longer string.
    pub text: String,
    pub pos: Pos,
    pub builtin: bool,
    /// Written as a plain YAML scalar: re-read as YAML after expansion.
    pub plain: bool,
    /// Could not be expanded (already reported): uses of it fail silently.
    pub failed: bool,
}

/// Every variable a graph can use.
#[derive(Debug, Default)]
pub(crate) struct Vars {
    vars: BTreeMap<String, Var>,
}

/// What a string expands to.
#[derive(Debug, PartialEq)]
pub(crate) enum Expansion {
    /// No `${` in it.
    Unchanged,
    /// Exactly one `${name}` and nothing else: the variable's own value, so
    /// that `fps: ${fps}` stays a number.
    Whole(Value),
    /// Text with variables replaced.
    Text(String),
}

impl Vars {
    pub fn with_builtins(builtins: &BTreeMap<String, String>) -> Vars {
        let vars = builtins
            .iter()
            .map(|(name, text)| {
                let var = Var {
                    value: Value::String(text.clone()),
                    text: text.clone(),
                    pos: Pos::at(0, 0),
                    builtin: true,
                    plain: false,
                    failed: false,
                };
                (name.clone(), var)
            })
            .collect();
        Vars { vars }
    }

    pub fn get(&self, name: &str) -> Option<&Var> {
        self.vars.get(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.vars.keys().map(String::as_str)
    }

    pub fn insert(&mut self, name: String, var: Var) {
        self.vars.insert(name, var);
    }

    /// Expands the `${name}`s of `text`; `$${` stands for a literal `${`.
    /// Errors name every undefined variable; an empty error list means a
    /// variable used is itself broken (and already reported).
    pub fn expand(&self, text: &str) -> Result<Expansion, Vec<(String, Option<String>)>> {
        if !text.contains("${") {
            return Ok(Expansion::Unchanged);
        }
        let mut out = String::new();
        let mut errors = Vec::new();
        let mut rest = text;
        let mut whole = None;
        let mut broken = false;
        while let Some(at) = rest.find("${") {
            if rest[..at].ends_with('$') {
                out.push_str(&rest[..at - 1]);
                out.push_str("${");
                rest = &rest[at + 2..];
                continue;
            }
            out.push_str(&rest[..at]);
            let after = &rest[at + 2..];
            let Some(end) = after.find('}') else {
                errors.push((format!("`${{` without a closing `}}` in \"{text}\""), None));
                break;
            };
            let name = after[..end].trim();
            match self.vars.get(name) {
                Some(var) if var.failed => broken = true,
                Some(var) => {
                    if at == 0 && end + 3 == rest.len() && out.is_empty() {
                        whole = Some(var.value.clone());
                    }
                    out.push_str(&var.text);
                }
                None if name.is_empty() => errors.push(("empty variable name `${}`".into(), None)),
                None => {
                    let hint =
                        did_you_mean(name, self.names()).or_else(|| Some(self.defined_hint()));
                    errors.push((format!("undefined variable `{name}`"), hint));
                }
            }
            rest = &after[end + 1..];
        }
        if !errors.is_empty() || broken {
            return Err(errors);
        }
        out.push_str(rest);
        Ok(match whole {
            Some(value) if rest.is_empty() => Expansion::Whole(value),
            _ => Expansion::Text(out),
        })
    }

    fn defined_hint(&self) -> String {
        if self.vars.is_empty() {
            "define it under `vars:`".into()
        } else {
            let names: Vec<_> = self.names().collect();
            format!("defined variables: {}", names.join(", "))
        }
    }

    /// Expands every variable definition in place: a var may use built-ins
    /// and other vars, in any order, but not itself through a loop.
    pub fn resolve_all(&mut self, sink: &mut DiagnosticsBuilder<'_>) {
        let names: Vec<String> = self.vars.keys().cloned().collect();
        let mut state = BTreeMap::new();
        for name in names {
            self.resolve(&name, &mut Vec::new(), &mut state, sink);
        }
    }

    /// Returns false when the var cannot be expanded (a loop or an error,
    /// already reported), so that users of it add no second error.
    fn resolve(
        &mut self,
        name: &str,
        visiting: &mut Vec<String>,
        state: &mut BTreeMap<String, bool>,
        sink: &mut DiagnosticsBuilder<'_>,
    ) -> bool {
        if let Some(ok) = state.get(name) {
            return *ok;
        }
        let Some(var) = self.vars.get(name) else {
            return true; // undefined: reported where it is used
        };
        if var.builtin || !var.text.contains("${") {
            state.insert(name.to_string(), true);
            return true;
        }
        let (pos, text, plain) = (var.pos, var.text.clone(), var.plain);
        if let Some(i) = visiting.iter().position(|v| v == name) {
            let mut chain = visiting[i..].to_vec();
            chain.push(name.to_string());
            let message = format!(
                "variables refer to each other in a loop: {}",
                chain.join(" → ")
            );
            sink.error(pos, join("vars", name), message, None);
            self.fail(name);
            return false;
        }
        visiting.push(name.to_string());
        let mut ok = true;
        for used in references(&text) {
            ok &= self.resolve(&used, visiting, state, sink);
        }
        visiting.pop();
        if ok {
            match self.expand(&text) {
                Ok(Expansion::Unchanged) => {}
                Ok(Expansion::Whole(value)) => self.set_value(name, value),
                Ok(Expansion::Text(t)) => self.set_value(
                    name,
                    if plain {
                        resolve_plain(&t)
                    } else {
                        Value::String(t)
                    },
                ),
                Err(errors) => {
                    for (message, hint) in errors {
                        sink.error(pos, join("vars", name), message, hint);
                    }
                    ok = false;
                }
            }
        }
        if !ok {
            self.fail(name);
        }
        state.insert(name.to_string(), ok);
        ok
    }

    fn fail(&mut self, name: &str) {
        if let Some(var) = self.vars.get_mut(name) {
            var.failed = true;
        }
    }

    fn set_value(&mut self, name: &str, value: Value) {
        if let Some(var) = self.vars.get_mut(name) {
            var.text = value_text(&value);
            var.value = value;
        }
    }
}

/// The names a text refers to with `${name}` (escaped `$${` excluded).
fn references(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("${") {
        let escaped = rest[..at].ends_with('$');
        let after = &rest[at + 2..];
        let Some(end) = after.find('}') else { break };
        if !escaped {
            names.push(after[..end].trim().to_string());
        }
        rest = &after[end + 1..];
    }
    names
}

/// A scalar as it reads inside a longer string.
pub(crate) fn value_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Expands variables in every string scalar under `node` (values only, not
/// keys). A plain scalar is re-read as YAML after expansion, as if the text
/// had been written there; quoted and block scalars stay strings.
pub(crate) fn substitute(
    node: &mut YamlNode,
    field: &str,
    vars: &Vars,
    sink: &mut DiagnosticsBuilder<'_>,
) {
    match &mut node.kind {
        NodeKind::Scalar(s) => {
            if !s.value.is_string() {
                return;
            }
            match vars.expand(&s.text) {
                Ok(Expansion::Unchanged) => {}
                Ok(Expansion::Whole(value)) => {
                    s.text = value_text(&value);
                    s.value = value;
                }
                Ok(Expansion::Text(text)) => {
                    s.value = match s.style {
                        Style::Plain => resolve_plain(&text),
                        Style::Quoted | Style::Block => Value::String(text.clone()),
                    };
                    s.text = text;
                }
                // The value becomes unset, so that nothing else is reported about it.
                Err(errors) => {
                    for (message, hint) in errors {
                        sink.error(node.pos, field, message, hint);
                    }
                    sink.poison(node.pos);
                    s.value = Value::Null;
                    s.text.clear();
                }
            }
        }
        NodeKind::Seq(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                substitute(item, &format!("{field}[{i}]"), vars, sink);
            }
        }
        NodeKind::Map(entries) => {
            for e in entries {
                substitute(&mut e.value, &join(field, &e.key), vars, sink);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, Value)]) -> Vars {
        let mut v = Vars::default();
        for (name, value) in pairs {
            let var = Var {
                text: value_text(value),
                value: value.clone(),
                pos: Pos::at(1, 1),
                builtin: false,
                plain: true,
                failed: false,
            };
            v.insert(name.to_string(), var);
        }
        v
    }

    #[test]
    fn whole_reference_keeps_the_type() {
        let v = vars(&[("fps", Value::from(60))]);
        assert_eq!(
            v.expand("${fps}").unwrap(),
            Expansion::Whole(Value::from(60))
        );
        assert_eq!(
            v.expand("${ fps }").unwrap(),
            Expansion::Whole(Value::from(60))
        );
        assert_eq!(v.expand("x${fps}").unwrap(), Expansion::Text("x60".into()));
        assert_eq!(
            v.expand("${fps}${fps}").unwrap(),
            Expansion::Text("6060".into())
        );
        assert_eq!(v.expand("plain").unwrap(), Expansion::Unchanged);
    }

    #[test]
    fn escapes_and_errors() {
        let v = vars(&[("fps", Value::from(60))]);
        assert_eq!(
            v.expand("$${fps}").unwrap(),
            Expansion::Text("${fps}".into())
        );
        let errors = v.expand("${fsp} ${nope}").unwrap_err();
        assert_eq!(errors.len(), 2);
        assert_eq!(errors[0].0, "undefined variable `fsp`");
        assert_eq!(errors[0].1.as_deref(), Some("did you mean `fps`?"));
        assert!(v.expand("${fps").unwrap_err()[0].0.contains("closing"));
    }

    #[test]
    fn vars_can_use_other_vars() {
        let path = Path::new("g.yaml");
        let mut sink = DiagnosticsBuilder::new(path, &[]);
        let mut v = Vars::with_builtins(&BTreeMap::from([("timestamp".into(), "T1".into())]));
        for (name, text) in [
            ("dir", "out"),
            ("file", "${dir}/${timestamp}.mp4"),
            ("a", "${b}"),
            ("b", "${a}"),
        ] {
            let var = Var {
                value: Value::from(text),
                text: text.into(),
                pos: Pos::at(2, 3),
                builtin: false,
                plain: true,
                failed: false,
            };
            v.insert(name.into(), var);
        }
        v.resolve_all(&mut sink);
        assert_eq!(v.get("file").unwrap().value, Value::from("out/T1.mp4"));
        let diags = sink.finish();
        assert_eq!(diags.len(), 1, "{diags}");
        assert!(diags.0[0].message.contains("loop"));
    }

    use std::path::Path;
}
