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
        }
    }
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

/// One param of a node kind.
#[derive(Debug, Clone, Copy)]
pub struct ParamSpec {
    pub name: &'static str,
    pub ty: ParamType,
    /// The default, written as it would be in YAML. `None`: the param is optional
    /// and absent unless set (its doc says what absence means).
    pub default: Option<&'static str>,
    pub doc: &'static str,
    /// The node applies a new value while running (`Event::ParamUpdate`);
    /// otherwise a change takes a restart.
    pub live: bool,
}

impl ParamSpec {
    pub const fn new(
        name: &'static str,
        ty: ParamType,
        default: Option<&'static str>,
        doc: &'static str,
    ) -> Self {
        ParamSpec {
            name,
            ty,
            default,
            doc,
            live: false,
        }
    }

    /// The same param, marked as one the node applies while running.
    pub const fn live(self) -> Self {
        ParamSpec { live: true, ..self }
    }

    /// The default as a normalized value.
    pub fn default_value(&self) -> Option<Value> {
        let text = self.default?;
        let raw = scalar_from_text(text);
        Some(
            self.ty
                .coerce(&raw)
                .unwrap_or_else(|e| panic!("catalog default for `{}` is invalid: {e}", self.name)),
        )
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
    fn enum_lists_choices() {
        let t = ParamType::Enum(&["a", "b"]);
        assert!(t.coerce(&json!("c")).unwrap_err().contains("a, b"));
    }
}
