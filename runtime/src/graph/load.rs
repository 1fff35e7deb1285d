//! Reading a graph file: parse, apply `--set` overrides, validate.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use super::diagnostic::{Diagnostic, Diagnostics, DiagnosticsBuilder};
use super::model::Graph;
use super::validate;
use super::yaml::{self, resolve_plain, Style};

/// One `--set TARGET=VALUE` from the command line: `NODE.PARAM=VALUE` sets a
/// node's param, `VAR=VALUE` (no dot) a variable of the graph's `vars:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Override {
    pub target: String,
    pub value: String,
}

impl Override {
    /// Splits at the first `=`; the value may be empty or contain `=`.
    pub fn parse(arg: &str) -> Result<Override, String> {
        let usage = "expected NODE.PARAM=VALUE or VAR=VALUE, e.g. `camera.source=test` or `fps=60`";
        let Some((target, value)) = arg.split_once('=') else {
            return Err(format!("`{arg}`: no `=`: {usage}"));
        };
        let target = target.trim();
        if target.is_empty() {
            return Err(format!("`{arg}`: nothing before `=`: {usage}"));
        }
        if let Some((node, param)) = target.split_once('.') {
            if node.is_empty() || param.is_empty() {
                return Err(format!("`{arg}`: `{target}` is not NODE.PARAM: {usage}"));
            }
        }
        if target.contains(char::is_whitespace) {
            return Err(format!("`{arg}`: `{target}` contains spaces: {usage}"));
        }
        Ok(Override {
            target: target.to_string(),
            value: value.to_string(),
        })
    }
}

impl std::str::FromStr for Override {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Override::parse(s)
    }
}

/// An override's value read as a YAML scalar (`60` is a number, `true` a
/// bool); quotes force a string: `--set 'camera.source="123"'`.
pub(crate) fn override_value(text: &str) -> (Value, Style) {
    let quoted = text.len() >= 2
        && ((text.starts_with('"') && text.ends_with('"'))
            || (text.starts_with('\'') && text.ends_with('\'')));
    if quoted {
        (
            Value::String(text[1..text.len() - 1].to_string()),
            Style::Quoted,
        )
    } else {
        (resolve_plain(text), Style::Plain)
    }
}

/// Loads, checks and returns the graph of a file, or every problem in it.
pub fn load(
    path: &Path,
    overrides: &[Override],
    builtins: &BTreeMap<String, String>,
) -> Result<Graph, Diagnostics> {
    match std::fs::read_to_string(path) {
        Ok(text) => load_str(&text, path, overrides, builtins),
        Err(e) => Err(Diagnostics(vec![Diagnostic {
            file: path.to_path_buf(),
            line: 0,
            col: 0,
            field: String::new(),
            message: format!("cannot read the graph file: {e}"),
            hint: None,
        }])),
    }
}

/// Like [`load`], for text already read; `file` names it in diagnostics and
/// relative `path:`s of custom nodes start at its directory.
pub fn load_str(
    text: &str,
    file: &Path,
    overrides: &[Override],
    builtins: &BTreeMap<String, String>,
) -> Result<Graph, Diagnostics> {
    let mut sink = DiagnosticsBuilder::new(file, overrides);
    let parsed = yaml::parse(text);
    for p in parsed.problems {
        sink.error(p.pos, p.field, p.message, None);
    }
    let graph = parsed
        .root
        .and_then(|root| validate::graph(root, file, overrides, builtins, &mut sink));
    match graph {
        Some(graph) if !sink.has_errors() => Ok(graph),
        _ => Err(sink.finish()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn override_parsing() {
        let o = Override::parse("camera.source=file:a=b.mp4").unwrap();
        assert_eq!(o.target, "camera.source");
        assert_eq!(o.value, "file:a=b.mp4");
        assert_eq!(Override::parse("fps=").unwrap().value, "");
        assert!(Override::parse("camera.source")
            .unwrap_err()
            .contains("no `=`"));
        assert!(Override::parse("=5").is_err());
        assert!(Override::parse(".fps=5").is_err());
        assert!(Override::parse("camera.=5").is_err());
    }

    #[test]
    fn override_values_are_yaml_scalars() {
        assert_eq!(override_value("60").0, Value::from(60));
        assert_eq!(override_value("true").0, Value::Bool(true));
        assert_eq!(override_value("29.97").0, Value::from(29.97));
        assert_eq!(override_value("test").0, Value::from("test"));
        assert_eq!(override_value("\"60\"").0, Value::from("60"));
        assert_eq!(override_value("'60'").1, Style::Quoted);
    }

    #[test]
    fn unreadable_file() {
        let err = load(Path::new("/nonexistent/g.yaml"), &[], &BTreeMap::new()).unwrap_err();
        assert_eq!(err.len(), 1);
        assert!(err
            .to_string()
            .starts_with("/nonexistent/g.yaml: cannot read"));
    }
}
