//! Node schemas as JSON: what a custom node prints when run with
//! `--describe`, and how the runtime reads it back.
//!
//! A custom node describes itself with the same [`KindSpec`] the built-in
//! kinds are described by (its ports as [`PortSpec`]s, its params as
//! [`ParamSpec`]s), so the runtime checks its params and ports exactly as a
//! built-in's. The JSON (one object, [`SCHEMA_VERSION`] under `node_schema`):
//!
//! ```json
//! {
//!   "node_schema": 1,
//!   "kind": "overlay-filter",
//!   "description": "burns the frame's time and number into raw video",
//!   "inputs": [{"name": "video", "type": "raw-video", "description": "raw video",
//!               "optional": false, "queue_size": 4}],
//!   "outputs": [{"name": "video", "type": "raw-video", "description": "with the plate"}],
//!   "params": [
//!     {"name": "scale", "type": "int", "min": 1, "max": 16, "default": 2,
//!      "description": "font pixel size", "live": false},
//!     {"name": "corner", "type": "enum", "choices": ["top-left", "bottom-left"],
//!      "default": "bottom-left", "description": "where the plate goes", "live": false}
//!   ]
//! }
//! ```
//!
//! Param types: `bool`, `int` (`min`, `max`), `float` (`min`, `max`),
//! `string`, `enum` (`choices`), `bitrate` (`min`, `max` in bits/s),
//! `rational` (`max`), `number_map` (`min`, `max`: names to numbers),
//! `names` (a list of names). `any_inputs` (a list of port types) replaces `inputs`
//! for a node taking any number of inputs named freely. Only `name` and
//! `type` are required; `default` absent means the param is absent unless set.

use std::collections::{BTreeSet, HashMap};
use std::sync::{LazyLock, Mutex};

use serde_json::{json, Map, Value};

use crate::kinds::{
    no_inputs_rule, no_rules, no_value_rule, KindSpec, PortSpec, DEFAULT_QUEUE_SIZE,
};
use crate::params::{scalar_from_text, ParamSpec, ParamType, Params};
use crate::{PortType, Problem};

/// The version of the `--describe` JSON this catalog writes and reads.
pub const SCHEMA_VERSION: u64 = 1;

/// The key marking a JSON object as a node schema; its value is the version.
pub const SCHEMA_KEY: &str = "node_schema";

/// The largest queue a port may ask for by default (as `queue_size:` in a graph).
const MAX_QUEUE_SIZE: u64 = 1024;

impl KindSpec {
    /// A kind with no ports, no params and no cross-checks; add them with the
    /// `with_*` methods. In a `static`, a custom node's schema:
    ///
    /// ```
    /// use node_catalog::{KindSpec, ParamSpec, ParamType, PortSpec, PortType};
    /// static SCHEMA: KindSpec = KindSpec::new("my-filter", "what it does")
    ///     .with_inputs(&[PortSpec::new("video", PortType::RawVideo, "raw video")])
    ///     .with_outputs(&[PortSpec::new("video", PortType::RawVideo, "raw video")])
    ///     .with_params(&[
    ///         ParamSpec::new("level", ParamType::Int { min: 0, max: 10 }, Some("5"), "how much"),
    ///     ]);
    /// ```
    pub const fn new(kind: &'static str, doc: &'static str) -> KindSpec {
        KindSpec {
            kind,
            doc,
            inputs: &[],
            any_inputs: None,
            outputs: &[],
            params: &[],
            rules: no_rules,
            host_checks: no_rules,
            value_rule: no_value_rule,
            inputs_rule: no_inputs_rule,
            hosted: false,
            format: None,
        }
    }

    pub const fn with_inputs(self, inputs: &'static [PortSpec]) -> KindSpec {
        KindSpec { inputs, ..self }
    }

    /// Any number of inputs, named freely, each of one of `types`.
    pub const fn with_any_inputs(self, types: &'static [PortType]) -> KindSpec {
        KindSpec {
            any_inputs: Some(types),
            ..self
        }
    }

    pub const fn with_outputs(self, outputs: &'static [PortSpec]) -> KindSpec {
        KindSpec { outputs, ..self }
    }

    pub const fn with_params(self, params: &'static [ParamSpec]) -> KindSpec {
        KindSpec { params, ..self }
    }

    /// Rules over several params, returning a [`Problem`] for each broken
    /// one. They run in the node ([`KindSpec::check_params`]); the runtime
    /// only sees the JSON, which cannot carry them.
    pub const fn with_check(self, rules: fn(&Params) -> Vec<Problem>) -> KindSpec {
        KindSpec { rules, ..self }
    }

    /// The schema as the JSON a node prints for `--describe`.
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        out.insert(SCHEMA_KEY.into(), json!(SCHEMA_VERSION));
        out.insert("kind".into(), json!(self.kind));
        out.insert("description".into(), json!(self.doc));
        let inputs: Vec<Value> = self
            .inputs
            .iter()
            .map(|p| {
                json!({
                    "name": p.name,
                    "type": p.ty.name(),
                    "description": p.doc,
                    "optional": p.optional,
                    "queue_size": p.queue_size,
                })
            })
            .collect();
        out.insert("inputs".into(), Value::Array(inputs));
        if let Some(types) = self.any_inputs {
            let types: Vec<&str> = types.iter().map(|t| t.name()).collect();
            out.insert("any_inputs".into(), json!(types));
        }
        let outputs: Vec<Value> = self
            .outputs
            .iter()
            .map(|p| json!({"name": p.name, "type": p.ty.name(), "description": p.doc}))
            .collect();
        out.insert("outputs".into(), Value::Array(outputs));
        let params: Vec<Value> = self.params.iter().map(ParamSpec::to_json).collect();
        out.insert("params".into(), Value::Array(params));
        Value::Object(out)
    }

    /// Reads a schema a node printed for `--describe`.
    ///
    /// `Ok(None)`: `value` is not a node schema at all (no `node_schema`
    /// key). `Err`: it says it is one, but something in it is wrong. The kind
    /// lives as long as the process, like the built-in ones; each distinct
    /// schema is kept once, however often it is read.
    pub fn from_json(value: &Value) -> Result<Option<&'static KindSpec>, String> {
        static READ: LazyLock<Mutex<HashMap<String, &'static KindSpec>>> =
            LazyLock::new(|| Mutex::new(HashMap::new()));
        let Some(version) = value.as_object().and_then(|o| o.get(SCHEMA_KEY)) else {
            return Ok(None);
        };
        if version.as_u64() != Some(SCHEMA_VERSION) {
            return Err(format!(
                "`{SCHEMA_KEY}` is {version}; this runtime reads version {SCHEMA_VERSION}"
            ));
        }
        let key = value.to_string();
        if let Some(kind) = READ.lock().unwrap().get(&key) {
            return Ok(Some(*kind));
        }
        let kind: &'static KindSpec = Box::leak(Box::new(read_kind(value)?));
        READ.lock().unwrap().insert(key, kind);
        Ok(Some(kind))
    }

    /// A node's params checked against this schema, defaults filled in: what
    /// the runtime does before the start, for a node to do again itself
    /// (it may have been started by a runtime that did not ask it).
    /// Errors are (param, message).
    pub fn check_params(&self, given: &Params) -> Result<Params, Vec<(String, String)>> {
        let mut errors = Vec::new();
        let mut values = Map::new();
        for (name, value) in &given.0 {
            let Some(spec) = self.param(name) else {
                errors.push((
                    name.clone(),
                    format!("unknown param `{name}` for {}", self.kind),
                ));
                continue;
            };
            if value.is_null() {
                continue;
            }
            match spec.ty.coerce(value) {
                Ok(v) => {
                    values.insert(name.clone(), v);
                }
                Err(e) => errors.push((name.clone(), e)),
            }
        }
        for spec in self.params {
            if !values.contains_key(spec.name) {
                if let Some(v) = spec.default_value() {
                    values.insert(spec.name.to_string(), v);
                }
            }
        }
        let params = Params(values);
        if errors.is_empty() {
            errors.extend(
                (self.rules)(&params)
                    .into_iter()
                    .map(|p| (p.param.to_string(), p.message)),
            );
        }
        if errors.is_empty() {
            Ok(params)
        } else {
            Err(errors)
        }
    }
}

impl ParamSpec {
    /// One entry of a schema's `params`.
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        out.insert("name".into(), json!(self.name));
        out.insert("type".into(), json!(self.ty.json_name()));
        match self.ty {
            ParamType::Int { min, max } => {
                out.insert("min".into(), json!(min));
                out.insert("max".into(), json!(max));
            }
            ParamType::Float { min, max } | ParamType::NumberMap { min, max } => {
                out.insert("min".into(), json!(min));
                out.insert("max".into(), json!(max));
            }
            ParamType::Bitrate { min, max } => {
                out.insert("min".into(), json!(min));
                out.insert("max".into(), json!(max));
            }
            ParamType::Rational { max } => {
                out.insert("max".into(), json!(max));
            }
            ParamType::Enum(choices) => {
                out.insert("choices".into(), json!(choices));
            }
            ParamType::Bool | ParamType::Str | ParamType::Names => {}
        }
        if let Some(v) = self.default_value() {
            out.insert("default".into(), v);
        }
        out.insert("description".into(), json!(self.doc));
        out.insert("live".into(), json!(self.live));
        out.insert("action".into(), json!(self.action));
        Value::Object(out)
    }
}

impl ParamType {
    /// The type's name in a schema's JSON.
    pub fn json_name(&self) -> &'static str {
        match self {
            ParamType::Bool => "bool",
            ParamType::Int { .. } => "int",
            ParamType::Float { .. } => "float",
            ParamType::Str => "string",
            ParamType::Enum(_) => "enum",
            ParamType::Bitrate { .. } => "bitrate",
            ParamType::Rational { .. } => "rational",
            ParamType::NumberMap { .. } => "number_map",
            ParamType::Names => "names",
        }
    }
}

// ------------------------------------------------------------ reading JSON

fn leak(text: &str) -> &'static str {
    Box::leak(text.to_string().into_boxed_str())
}

fn leak_slice<T>(items: Vec<T>) -> &'static [T] {
    Box::leak(items.into_boxed_slice())
}

fn read_kind(value: &Value) -> Result<KindSpec, String> {
    let o = value.as_object().ok_or("not a JSON object")?;
    let kind = text(o, "kind")?.ok_or("no `kind` (the node's name)")?;
    if kind.trim().is_empty() {
        return Err("`kind` is empty".into());
    }
    let doc = text(o, "description")?.unwrap_or_default();
    let inputs = ports(o, "inputs", true)?;
    let outputs = ports(o, "outputs", false)?;
    let any_inputs = match o.get("any_inputs") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => {
            let types = items
                .iter()
                .map(|t| port_type(t, "any_inputs"))
                .collect::<Result<Vec<_>, _>>()?;
            Some(leak_slice(types))
        }
        Some(_) => return Err("`any_inputs` must be a list of port types".into()),
    };
    if any_inputs.is_some() && !inputs.is_empty() {
        return Err("give either `inputs` or `any_inputs`, not both".into());
    }
    let params = match o.get("params") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, p)| read_param(p).map_err(|e| format!("params[{i}]: {e}")))
            .collect::<Result<Vec<_>, _>>()?,
        Some(_) => return Err("`params` must be a list".into()),
    };
    unique(params.iter().map(|p| p.name), "param")?;
    Ok(KindSpec {
        kind: leak(&kind),
        doc: leak(&doc),
        inputs: leak_slice(inputs),
        any_inputs,
        outputs: leak_slice(outputs),
        params: leak_slice(params),
        rules: no_rules,
        host_checks: no_rules,
        value_rule: no_value_rule,
        inputs_rule: no_inputs_rule,
        hosted: false,
        format: None,
    })
}

fn text(o: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(format!("`{key}` must be a string, found {other}")),
    }
}

fn unique<'a>(names: impl Iterator<Item = &'a str>, what: &str) -> Result<(), String> {
    let mut seen = BTreeSet::new();
    for name in names {
        if !seen.insert(name) {
            return Err(format!("{what} `{name}` is listed twice"));
        }
    }
    Ok(())
}

fn port_type(value: &Value, field: &str) -> Result<PortType, String> {
    let name = value.as_str().unwrap_or_default();
    PortType::from_name(name).ok_or_else(|| {
        format!("{field}: unknown port type {value} (raw-video, raw-audio, encoded-video, encoded-audio, stats, any)")
    })
}

fn ports(o: &Map<String, Value>, key: &str, inputs: bool) -> Result<Vec<PortSpec>, String> {
    let items = match o.get(key) {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(format!("`{key}` must be a list of ports")),
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let at = format!("{key}[{i}]");
        let p = item
            .as_object()
            .ok_or_else(|| format!("{at}: expected an object with `name` and `type`"))?;
        let name = text(p, "name")
            .map_err(|e| format!("{at}: {e}"))?
            .ok_or_else(|| format!("{at}: no `name`"))?;
        if name.is_empty() || name.contains(['/', ' ']) {
            return Err(format!(
                "{at}: invalid port name `{name}` (no `/` or spaces)"
            ));
        }
        let ty = port_type(p.get("type").unwrap_or(&Value::Null), &format!("{at}.type"))?;
        let doc = text(p, "description").map_err(|e| format!("{at}: {e}"))?;
        let mut port = PortSpec::new(leak(&name), ty, leak(&doc.unwrap_or_default()));
        if inputs {
            port.optional = match p.get("optional") {
                None | Some(Value::Null) => false,
                Some(Value::Bool(b)) => *b,
                Some(v) => return Err(format!("{at}.optional: expected true or false, found {v}")),
            };
            port.queue_size = match p.get("queue_size") {
                None | Some(Value::Null) => DEFAULT_QUEUE_SIZE,
                Some(v) => match v.as_u64() {
                    Some(n @ 1..=MAX_QUEUE_SIZE) => n as usize,
                    _ => {
                        return Err(format!(
                            "{at}.queue_size: expected an integer 1..={MAX_QUEUE_SIZE}, found {v}"
                        ))
                    }
                },
            };
        }
        out.push(port);
    }
    unique(out.iter().map(|p| p.name), &key[..key.len() - 1])?;
    Ok(out)
}

fn read_param(value: &Value) -> Result<ParamSpec, String> {
    let o = value
        .as_object()
        .ok_or("expected an object with `name` and `type`")?;
    let name = text(o, "name")?.ok_or("no `name`")?;
    if name.is_empty() || name.contains(['.', ' ', '/']) {
        return Err(format!("invalid param name `{name}`"));
    }
    let at = |e: String| format!("`{name}`: {e}");
    let ty = read_param_type(o).map_err(at)?;
    let default = match o.get("default") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(v @ (Value::Number(_) | Value::Bool(_))) => Some(v.to_string()),
        Some(v) => return Err(at(format!("`default` must be a scalar, found {v}"))),
    };
    if let Some(d) = &default {
        ty.coerce(&scalar_from_text(d))
            .map_err(|e| at(format!("default {d}: {e}")))?;
    }
    let doc = text(o, "description").map_err(at)?.unwrap_or_default();
    let flag = |key: &str| match o.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(v) => Err(at(format!("`{key}`: expected true or false, found {v}"))),
    };
    let (live, action) = (flag("live")?, flag("action")?);
    let spec = ParamSpec::new(leak(&name), ty, default.as_deref().map(leak), leak(&doc));
    Ok(match (live, action) {
        (_, true) => spec.action(),
        (true, false) => spec.live(),
        _ => spec,
    })
}

fn read_param_type(o: &Map<String, Value>) -> Result<ParamType, String> {
    let ty = text(o, "type")?.ok_or("no `type`")?;
    let int = |key: &str| -> Result<i64, String> {
        o.get(key)
            .and_then(Value::as_i64)
            .ok_or_else(|| format!("`{key}` must be an integer"))
    };
    let uint = |key: &str| -> Result<u64, String> {
        o.get(key)
            .and_then(Value::as_u64)
            .ok_or_else(|| format!("`{key}` must be a whole number of bits/s"))
    };
    let float = |key: &str| -> Result<f64, String> {
        o.get(key)
            .and_then(Value::as_f64)
            .filter(|f| f.is_finite())
            .ok_or_else(|| format!("`{key}` must be a number"))
    };
    let ordered = |min: f64, max: f64| {
        if min <= max {
            Ok(())
        } else {
            Err(format!("`min` {min} is above `max` {max}"))
        }
    };
    Ok(match ty.as_str() {
        "bool" => ParamType::Bool,
        "string" => ParamType::Str,
        "names" => ParamType::Names,
        "number_map" => {
            let (min, max) = (float("min")?, float("max")?);
            ordered(min, max)?;
            ParamType::NumberMap { min, max }
        }
        "int" => {
            let (min, max) = (int("min")?, int("max")?);
            ordered(min as f64, max as f64)?;
            ParamType::Int { min, max }
        }
        "float" => {
            let (min, max) = (float("min")?, float("max")?);
            ordered(min, max)?;
            ParamType::Float { min, max }
        }
        "bitrate" => {
            let (min, max) = (uint("min")?, uint("max")?);
            ordered(min as f64, max as f64)?;
            ParamType::Bitrate { min, max }
        }
        "rational" => {
            let max = float("max")?;
            if max <= 0.0 {
                return Err(format!("`max` {max} must be above 0"));
            }
            ParamType::Rational { max }
        }
        "enum" => {
            let choices = o
                .get("choices")
                .and_then(Value::as_array)
                .filter(|c| !c.is_empty())
                .ok_or("`choices` must be a non-empty list of strings")?;
            let choices = choices
                .iter()
                .map(|c| c.as_str().map(leak))
                .collect::<Option<Vec<_>>>()
                .ok_or("`choices` must be a non-empty list of strings")?;
            unique(choices.iter().copied(), "choice")?;
            ParamType::Enum(leak_slice(choices))
        }
        other => {
            return Err(format!(
                "unknown type `{other}` (bool, int, float, string, enum, bitrate, rational, number_map, names)"
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    static SCHEMA: KindSpec = KindSpec::new("my-filter", "a test filter")
        .with_inputs(&[PortSpec::new("video", PortType::RawVideo, "raw video").queue(8)])
        .with_outputs(&[PortSpec::new("video", PortType::RawVideo, "the result")])
        .with_params(&[
            ParamSpec::new(
                "level",
                ParamType::Int { min: 0, max: 10 },
                Some("5"),
                "how much",
            ),
            ParamSpec::new("mode", ParamType::Enum(&["a", "b"]), Some("a"), "which way").live(),
            ParamSpec::new(
                "rate",
                ParamType::Rational { max: 120.0 },
                Some("30"),
                "fps",
            ),
            ParamSpec::new(
                "bitrate",
                ParamType::Bitrate {
                    min: 1000,
                    max: 1_000_000,
                },
                None,
                "optional",
            ),
            ParamSpec::new(
                "gain",
                ParamType::Float {
                    min: -1.5,
                    max: 2.0,
                },
                Some("0.5"),
                "",
            ),
            ParamSpec::new("on", ParamType::Bool, Some("true"), ""),
            ParamSpec::new("label", ParamType::Str, Some("123"), ""),
        ]);

    #[test]
    fn a_schema_reads_back_as_written() {
        let json = SCHEMA.to_json();
        assert_eq!(json["node_schema"], 1);
        assert_eq!(json["params"][0]["default"], 5);
        assert_eq!(json["params"][1]["live"], true);
        assert_eq!(json["params"][2]["default"], "30/1");
        let back = KindSpec::from_json(&json).unwrap().unwrap();
        assert_eq!(back.kind, "my-filter");
        assert_eq!(back.doc, "a test filter");
        assert_eq!(back.inputs[0].queue_size, 8);
        assert_eq!(back.outputs[0].ty, PortType::RawVideo);
        assert_eq!(back.to_json(), json, "the same JSON again");
        for (a, b) in SCHEMA.params.iter().zip(back.params) {
            assert_eq!(a.default_value(), b.default_value(), "{}", a.name);
        }
        // Read once per distinct schema.
        let again = KindSpec::from_json(&json).unwrap().unwrap();
        assert!(std::ptr::eq(back, again));
    }

    #[test]
    fn json_that_is_no_schema_and_broken_schemas() {
        assert!(matches!(
            KindSpec::from_json(&json!({"kind": "x"})),
            Ok(None)
        ));
        assert!(matches!(KindSpec::from_json(&json!([1, 2])), Ok(None)));
        let bad = |v: Value| KindSpec::from_json(&v).unwrap_err();
        assert!(bad(json!({"node_schema": 2, "kind": "x"})).contains("version 1"));
        assert!(bad(json!({"node_schema": 1})).contains("no `kind`"));
        let e = bad(json!({"node_schema": 1, "kind": "x",
            "params": [{"name": "n", "type": "int", "min": 0, "max": 3, "default": 9}]}));
        assert!(
            e.starts_with("params[0]: `n`: default 9: 9 is out of range"),
            "{e}"
        );
        let e = bad(json!({"node_schema": 1, "kind": "x",
            "params": [{"name": "n", "type": "list"}]}));
        assert!(e.contains("unknown type `list`"), "{e}");
        let e = bad(json!({"node_schema": 1, "kind": "x",
            "outputs": [{"name": "v", "type": "video"}]}));
        assert!(e.contains("unknown port type"), "{e}");
        let e = bad(json!({"node_schema": 1, "kind": "x",
            "outputs": [{"name": "v", "type": "any"}, {"name": "v", "type": "any"}]}));
        assert_eq!(e, "output `v` is listed twice");
    }

    #[test]
    fn a_node_checks_its_params_again() {
        let given = |v: Value| Params(v.as_object().unwrap().clone());
        let p = SCHEMA.check_params(&given(json!({"level": 7}))).unwrap();
        assert_eq!(p.i64("level"), Some(7));
        assert_eq!(p.str("mode"), Some("a"));
        assert_eq!(p.str("rate"), Some("30/1"));
        assert_eq!(p.get("bitrate"), None);
        let e = SCHEMA
            .check_params(&given(json!({"level": 11, "colour": 1})))
            .unwrap_err();
        assert_eq!(
            e,
            [
                (
                    "colour".to_string(),
                    "unknown param `colour` for my-filter".to_string()
                ),
                ("level".to_string(), "11 is out of range 0..=10".to_string()),
            ]
        );
    }
}
