//! Param specifications and the typed, validated param map a node receives.

use serde_json::{Map, Value};

use crate::value::{parse_bitrate, parse_rational, Rational};

/// The type and range of one param.
#[derive(Debug, Clone, Copy)]
pub enum ParamType {
    Bool,
    Int {
        min: i64,
        max: i64,
    },
    Float {
        min: f64,
        max: f64,
    },
    /// Free text (device names, sources, paths).
    Str,
    /// One of a fixed set of names.
    Enum(&'static [&'static str]),
    /// Bits per second: an integer or a string with a `k`/`M`/`G` suffix (`128k`, `5M`).
    Bitrate {
        min: u64,
        max: u64,
    },
    /// A positive rational such as a frame rate: `30`, `29.97`, `"30000/1001"`.
    Rational {
        max: f64,
    },
    /// A mapping of names to numbers in `min..=max` (per-input gains:
    /// `{mic1: -6, mic2: 0}`); the names are checked by the kind's rules.
    NumberMap {
        min: f64,
        max: f64,
    },
    /// A list of names (`[mic2]`); one name alone is a list of one.
    Names,
}

impl ParamType {
    /// A short human description used by `runtime nodes` and in error hints.
    pub fn describe(&self) -> String {
        match self {
            ParamType::Bool => "bool".into(),
            ParamType::Int { min, max } => format!("integer {min}..={max}"),
            ParamType::Float { min, max } => format!("number {min}..={max}"),
            ParamType::Str => "string".into(),
            ParamType::Enum(choices) => format!("one of {}", choices.join(" | ")),
            ParamType::Bitrate { min, max } => {
                format!("bitrate {}..={} (bits/s; `128k`, `5M` accepted)", min, max)
            }
            ParamType::Rational { max } => {
                format!("rational > 0 and <= {max} (e.g. 30, 30000/1001)")
            }
            ParamType::NumberMap { min, max } => {
                format!("a mapping of names to numbers {min}..={max}")
            }
            ParamType::Names => "a list of names".into(),
        }
    }

    /// Checks and normalizes a value: bitrates become integers (bits/s),
    /// rationals become `"num/den"` strings, integers written as floats are accepted
    /// when whole. The error says what was expected.
    pub fn coerce(&self, value: &Value) -> Result<Value, String> {
        match *self {
            ParamType::Bool => match value {
                Value::Bool(_) => Ok(value.clone()),
                _ => Err(format!("expected true or false, found {}", show(value))),
            },
            ParamType::Int { min, max } => {
                let n = match value {
                    Value::Number(n) if n.is_i64() => n.as_i64().unwrap(),
                    Value::Number(n) if n.as_f64().is_some_and(|f| f.fract() == 0.0) => {
                        n.as_f64().unwrap() as i64
                    }
                    _ => return Err(format!("expected an integer, found {}", show(value))),
                };
                if n < min || n > max {
                    return Err(format!("{n} is out of range {min}..={max}"));
                }
                Ok(Value::from(n))
            }
            ParamType::Float { min, max } => {
                let f = match value {
                    Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
                    _ => return Err(format!("expected a number, found {}", show(value))),
                };
                if !(f >= min && f <= max) {
                    return Err(format!("{f} is out of range {min}..={max}"));
                }
                Ok(Value::from(f))
            }
            ParamType::Str => match value {
                Value::String(_) => Ok(value.clone()),
                // Scalars such as `device:0` vs `0` are all text to a string param.
                Value::Number(n) => Ok(Value::String(n.to_string())),
                Value::Bool(b) => Ok(Value::String(b.to_string())),
                _ => Err(format!("expected a string, found {}", show(value))),
            },
            ParamType::Enum(choices) => {
                let s = match value {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    _ => return Err(format!("expected one of {}", choices.join(", "))),
                };
                if choices.contains(&s.as_str()) {
                    Ok(Value::String(s))
                } else {
                    Err(format!("`{s}` is not one of {}", choices.join(", ")))
                }
            }
            ParamType::Bitrate { min, max } => {
                let bps = match value {
                    Value::Number(n) => n
                        .as_f64()
                        .filter(|f| *f >= 0.0 && f.fract() == 0.0)
                        .map(|f| f as u64)
                        .ok_or_else(|| format!("expected a bitrate, found {n}"))?,
                    Value::String(s) => parse_bitrate(s)?,
                    _ => {
                        return Err(format!(
                            "expected a bitrate like 128k or 5M, found {}",
                            show(value)
                        ))
                    }
                };
                if bps < min || bps > max {
                    return Err(format!("bitrate {bps} b/s is out of range {min}..={max}"));
                }
                Ok(Value::from(bps))
            }
            ParamType::Rational { max } => {
                let r = match value {
                    Value::Number(n) => Rational::from_f64(n.as_f64().unwrap_or(f64::NAN))
                        .ok_or_else(|| format!("expected a positive rate, found {n}"))?,
                    Value::String(s) => parse_rational(s)?,
                    _ => {
                        return Err(format!(
                            "expected a rate like 30 or 30000/1001, found {}",
                            show(value)
                        ))
                    }
                };
                if r.as_f64() <= 0.0 || r.as_f64() > max {
                    return Err(format!("{r} must be > 0 and <= {max}"));
                }
                Ok(Value::String(r.to_string()))
            }
            ParamType::NumberMap { min, max } => coerce_number_map(value, min, max),
            ParamType::Names => coerce_names(value),
        }
    }

    /// Whether a value of this type is a mapping or a list, not a scalar.
    pub fn is_structured(&self) -> bool {
        matches!(self, ParamType::NumberMap { .. } | ParamType::Names)
    }
}

/// Each value a number in range (integers become floats); the error names the key.
fn coerce_number_map(value: &Value, min: f64, max: f64) -> Result<Value, String> {
    let Value::Object(map) = value else {
        return Err(format!(
            "expected a mapping of names to numbers, found {}",
            show(value)
        ));
    };
    let mut out = Map::new();
    for (name, v) in map {
        let f = v
            .as_f64()
            .ok_or_else(|| format!("`{name}`: expected a number, found {}", show(v)))?;
        if !(f >= min && f <= max) {
            return Err(format!("`{name}`: {f} is out of range {min}..={max}"));
        }
        out.insert(name.clone(), Value::from(f));
    }
    Ok(Value::Object(out))
}

/// A list of distinct names; a lone name is a list of one.
fn coerce_names(value: &Value) -> Result<Value, String> {
    let items = match value {
        Value::String(s) => return Ok(Value::Array(vec![Value::String(s.clone())])),
        Value::Array(items) => items,
        _ => return Err(format!("expected a list of names, found {}", show(value))),
    };
    let mut out: Vec<Value> = Vec::with_capacity(items.len());
    for item in items {
        let Value::String(name) = item else {
            return Err(format!("expected a name, found {}", show(item)));
        };
        if !out.contains(item) {
            out.push(Value::String(name.clone()));
        }
    }
    Ok(Value::Array(out))
}

fn show(value: &Value) -> String {
    match value {
        Value::Null => "nothing".into(),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "a mapping".into(),
        Value::String(s) => format!("\"{s}\""),
        other => other.to_string(),
    }
}

/// A param's default, typed: the `DEFAULT_*` constant of its kind's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DefaultValue {
    Bool(bool),
    Int(i64),
    Float(f64),
    /// Text, a choice's name or a bitrate written with a suffix.
    Text(&'static str),
    Rational(Rational),
    /// Written as in YAML: a bool, a number or text, read as YAML would
    /// (a schema given as text, e.g. a custom node's).
    Yaml(&'static str),
}

impl DefaultValue {
    fn to_json(self) -> Value {
        match self {
            DefaultValue::Bool(b) => Value::Bool(b),
            DefaultValue::Int(i) => Value::from(i),
            DefaultValue::Float(f) => Value::from(f),
            DefaultValue::Text(t) => Value::String(t.to_string()),
            DefaultValue::Rational(r) => Value::String(r.to_string()),
            DefaultValue::Yaml(t) => scalar_from_text(t),
        }
    }
}

impl std::fmt::Display for DefaultValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DefaultValue::Bool(b) => write!(f, "{b}"),
            DefaultValue::Int(i) => write!(f, "{i}"),
            DefaultValue::Float(x) => write!(f, "{x}"),
            DefaultValue::Text(t) | DefaultValue::Yaml(t) => f.write_str(t),
            DefaultValue::Rational(r) if r.den == 1 => write!(f, "{}", r.num),
            DefaultValue::Rational(r) => write!(f, "{r}"),
        }
    }
}

/// One param of a node kind.
#[derive(Debug, Clone, Copy)]
pub struct ParamSpec {
    pub name: &'static str,
    pub ty: ParamType,
    /// `None`: the param is optional and absent unless set (its doc says what
    /// absence means).
    pub default: Option<DefaultValue>,
    pub doc: &'static str,
    /// May change while the node runs: the node applies a new value
    /// (`Event::ParamUpdate`, like GStreamer's mutable-in-playing); any other
    /// param is fixed once the node started.
    pub live: bool,
    /// A command rather than a setting (also `live`): each update is an act
    /// at the instant it was made (a split, a chapter, a keyframe), which
    /// the node carries out once. The node's params do not keep it, and a
    /// restarted node is not given it again.
    pub action: bool,
    /// A secret (a stream key, a passphrase): never shown in logs, reports
    /// or the control API; `***` stands for it.
    pub secret: bool,
}

impl ParamSpec {
    const fn with(
        name: &'static str,
        ty: ParamType,
        default: Option<DefaultValue>,
        doc: &'static str,
    ) -> Self {
        ParamSpec {
            name,
            ty,
            default,
            doc,
            live: false,
            action: false,
            secret: false,
        }
    }

    /// A param whose default is written as in YAML (`Some("5")`,
    /// `Some("true")`, `Some("bottom-left")`); a built-in kind uses the typed
    /// constructors below with its `DEFAULT_*` constants instead.
    pub const fn new(
        name: &'static str,
        ty: ParamType,
        default: Option<&'static str>,
        doc: &'static str,
    ) -> Self {
        let default = match default {
            Some(t) => Some(DefaultValue::Yaml(t)),
            None => None,
        };
        Self::with(name, ty, default, doc)
    }

    pub const fn bool(name: &'static str, default: bool, doc: &'static str) -> Self {
        Self::with(
            name,
            ParamType::Bool,
            Some(DefaultValue::Bool(default)),
            doc,
        )
    }

    pub const fn int(
        name: &'static str,
        (min, max): (i64, i64),
        default: Option<i64>,
        doc: &'static str,
    ) -> Self {
        let default = match default {
            Some(i) => Some(DefaultValue::Int(i)),
            None => None,
        };
        Self::with(name, ParamType::Int { min, max }, default, doc)
    }

    pub const fn float(
        name: &'static str,
        (min, max): (f64, f64),
        default: Option<f64>,
        doc: &'static str,
    ) -> Self {
        let default = match default {
            Some(f) => Some(DefaultValue::Float(f)),
            None => None,
        };
        Self::with(name, ParamType::Float { min, max }, default, doc)
    }

    pub const fn text(
        name: &'static str,
        default: Option<&'static str>,
        doc: &'static str,
    ) -> Self {
        let default = match default {
            Some(t) => Some(DefaultValue::Text(t)),
            None => None,
        };
        Self::with(name, ParamType::Str, default, doc)
    }

    /// One of `names` (a [`choice!`](crate::choice) enum's `NAMES`); the
    /// default is a variant's `name()`.
    pub const fn choice(
        name: &'static str,
        names: &'static [&'static str],
        default: Option<&'static str>,
        doc: &'static str,
    ) -> Self {
        let default = match default {
            Some(t) => Some(DefaultValue::Text(t)),
            None => None,
        };
        Self::with(name, ParamType::Enum(names), default, doc)
    }

    /// Bits per second, absent unless set.
    pub const fn bitrate(name: &'static str, (min, max): (u64, u64), doc: &'static str) -> Self {
        Self::with(name, ParamType::Bitrate { min, max }, None, doc)
    }

    /// A mapping of names to numbers in `min..=max`, absent unless set.
    pub const fn number_map(name: &'static str, (min, max): (f64, f64), doc: &'static str) -> Self {
        Self::with(name, ParamType::NumberMap { min, max }, None, doc)
    }

    /// A list of names, absent unless set.
    pub const fn names(name: &'static str, doc: &'static str) -> Self {
        Self::with(name, ParamType::Names, None, doc)
    }

    pub const fn rational(
        name: &'static str,
        max: f64,
        default: Rational,
        doc: &'static str,
    ) -> Self {
        Self::with(
            name,
            ParamType::Rational { max },
            Some(DefaultValue::Rational(default)),
            doc,
        )
    }

    /// The same param, marked as a secret (see the field).
    pub const fn secret(self) -> Self {
        ParamSpec {
            secret: true,
            ..self
        }
    }

    /// The same param, marked as one the node applies while running.
    pub const fn live(self) -> Self {
        ParamSpec { live: true, ..self }
    }

    /// The same param, marked as a command the node carries out when it is
    /// sent (see [`ParamSpec::action`]'s field).
    pub const fn action(self) -> Self {
        ParamSpec {
            live: true,
            action: true,
            ..self
        }
    }

    /// The default as a normalized value.
    pub fn default_value(&self) -> Option<Value> {
        let raw = self.default?.to_json();
        Some(
            self.ty
                .coerce(&raw)
                .unwrap_or_else(|e| panic!("catalog default for `{}` is invalid: {e}", self.name)),
        )
    }

    /// The default as `runtime nodes` shows it.
    pub fn default_text(&self) -> Option<String> {
        self.default.map(|d| d.to_string())
    }
}

/// Interprets a bare scalar the way YAML would: bool, integer, float, else string.
pub fn scalar_from_text(text: &str) -> Value {
    match text {
        "true" => return Value::Bool(true),
        "false" => return Value::Bool(false),
        "null" | "~" => return Value::Null,
        _ => {}
    }
    if let Ok(i) = text.parse::<i64>() {
        return Value::from(i);
    }
    if let Ok(f) = text.parse::<f64>() {
        if f.is_finite() {
            return Value::from(f);
        }
    }
    Value::String(text.to_string())
}

/// A node's validated params (defaults filled in), as handed to the node process.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Params(pub Map<String, Value>);

impl Params {
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name).filter(|v| !v.is_null())
    }
    pub fn str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(Value::as_str)
    }
    pub fn str_or<'a>(&'a self, name: &str, fallback: &'a str) -> &'a str {
        self.str(name).unwrap_or(fallback)
    }
    pub fn bool(&self, name: &str) -> Option<bool> {
        self.get(name).and_then(Value::as_bool)
    }
    pub fn bool_or(&self, name: &str, fallback: bool) -> bool {
        self.bool(name).unwrap_or(fallback)
    }
    pub fn i64(&self, name: &str) -> Option<i64> {
        self.get(name).and_then(Value::as_i64)
    }
    pub fn i64_or(&self, name: &str, fallback: i64) -> i64 {
        self.i64(name).unwrap_or(fallback)
    }
    pub fn f64(&self, name: &str) -> Option<f64> {
        self.get(name).and_then(Value::as_f64)
    }
    pub fn f64_or(&self, name: &str, fallback: f64) -> f64 {
        self.f64(name).unwrap_or(fallback)
    }
    pub fn u64(&self, name: &str) -> Option<u64> {
        self.get(name).and_then(Value::as_u64)
    }
    pub fn rational(&self, name: &str) -> Option<Rational> {
        self.str(name).and_then(|s| parse_rational(s).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn int_range_is_enforced() {
        let t = ParamType::Int { min: 1, max: 8 };
        assert_eq!(t.coerce(&json!(2)).unwrap(), json!(2));
        assert!(t.coerce(&json!(0)).unwrap_err().contains("out of range"));
        assert!(t.coerce(&json!("two")).unwrap_err().contains("integer"));
    }

    #[test]
    fn bitrate_accepts_suffixes() {
        let t = ParamType::Bitrate {
            min: 8_000,
            max: 500_000_000,
        };
        assert_eq!(t.coerce(&json!("128k")).unwrap(), json!(128_000));
        assert_eq!(t.coerce(&json!("5M")).unwrap(), json!(5_000_000));
        assert_eq!(t.coerce(&json!(64000)).unwrap(), json!(64_000));
        assert!(t.coerce(&json!("900G")).is_err());
    }

    #[test]
    fn rational_normalizes() {
        let t = ParamType::Rational { max: 1000.0 };
        assert_eq!(t.coerce(&json!("30000/1001")).unwrap(), json!("30000/1001"));
        assert_eq!(t.coerce(&json!(25)).unwrap(), json!("25/1"));
        assert_eq!(t.coerce(&json!(29.97)).unwrap(), json!("30000/1001"));
        assert!(t.coerce(&json!(0)).is_err());
        assert!(t.coerce(&json!(-5)).is_err());
    }

    #[test]
    fn defaults_written_as_yaml_or_typed_agree() {
        let yaml = ParamSpec::new("n", ParamType::Int { min: 0, max: 9 }, Some("5"), "");
        let typed = ParamSpec::int("n", (0, 9), Some(5), "");
        assert_eq!(yaml.default_value(), typed.default_value());
        assert_eq!(yaml.default_text(), typed.default_text());
        let f = ParamSpec::new("f", ParamType::Float { min: 0.0, max: 9.0 }, Some("2"), "");
        assert_eq!(f.default_value(), Some(serde_json::json!(2.0)));
        assert!(!f.live && f.live().live);
    }

    #[test]
    fn number_maps_and_name_lists() {
        let t = ParamType::NumberMap {
            min: -60.0,
            max: 24.0,
        };
        assert_eq!(
            t.coerce(&json!({"mic1": -6, "mic2": 0.5})).unwrap(),
            json!({"mic1": -6.0, "mic2": 0.5})
        );
        let e = t.coerce(&json!({"mic1": 30})).unwrap_err();
        assert!(e.contains("`mic1`: 30 is out of range -60..=24"), "{e}");
        assert!(t.coerce(&json!({"mic1": "loud"})).is_err());
        assert!(t.coerce(&json!(3)).unwrap_err().contains("mapping"));
        assert_eq!(
            ParamType::Names.coerce(&json!(["a", "b", "a"])).unwrap(),
            json!(["a", "b"])
        );
        assert_eq!(ParamType::Names.coerce(&json!("a")).unwrap(), json!(["a"]));
        assert!(ParamType::Names.coerce(&json!([1])).is_err());
    }

    #[test]
    fn enum_lists_choices() {
        let t = ParamType::Enum(&["a", "b"]);
        assert!(t.coerce(&json!("c")).unwrap_err().contains("a, b"));
    }
}
