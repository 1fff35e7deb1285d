//! Reading a kind's params into its typed settings.

use serde_json::Value;

use crate::params::{ParamSpec, Params};
use crate::value::{parse_rational, Rational};
use crate::{Choice, Problem};

/// Reads params as the kind's specs type them: a value given is checked
/// against its spec (type, range, choices) and normalized; an absent one
/// takes the default the caller passes, the `DEFAULT_*` constant the spec
/// was built from.
pub struct Reader<'a> {
    specs: &'static [ParamSpec],
    params: &'a Params,
}

impl<'a> Reader<'a> {
    pub fn new(specs: &'static [ParamSpec], params: &'a Params) -> Reader<'a> {
        Reader { specs, params }
    }

    fn spec(&self, name: &str) -> &'static ParamSpec {
        self.specs
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("`{name}` is not a param of this kind"))
    }

    /// The value given for `name`, checked and normalized; `None`: absent.
    fn given(&self, name: &str) -> Result<Option<(Value, &'static ParamSpec)>, Problem> {
        let spec = self.spec(name);
        match self.params.get(name) {
            None => Ok(None),
            Some(v) => match spec.ty.coerce(v) {
                Ok(v) => Ok(Some((v, spec))),
                Err(message) => Err(Problem::new(spec.name, message)),
            },
        }
    }

    pub fn int_opt(&self, name: &str) -> Result<Option<i64>, Problem> {
        Ok(self.given(name)?.and_then(|(v, _)| v.as_i64()))
    }

    pub fn int(&self, name: &str, default: i64) -> Result<i64, Problem> {
        Ok(self.int_opt(name)?.unwrap_or(default))
    }

    pub fn float_opt(&self, name: &str) -> Result<Option<f64>, Problem> {
        Ok(self.given(name)?.and_then(|(v, _)| v.as_f64()))
    }

    pub fn float(&self, name: &str, default: f64) -> Result<f64, Problem> {
        Ok(self.float_opt(name)?.unwrap_or(default))
    }

    pub fn flag(&self, name: &str, default: bool) -> Result<bool, Problem> {
        Ok(self
            .given(name)?
            .and_then(|(v, _)| v.as_bool())
            .unwrap_or(default))
    }

    pub fn text_opt(&self, name: &str) -> Result<Option<String>, Problem> {
        Ok(self
            .given(name)?
            .and_then(|(v, _)| v.as_str().map(str::to_string)))
    }

    pub fn text(&self, name: &str, default: &str) -> Result<String, Problem> {
        Ok(self.text_opt(name)?.unwrap_or_else(|| default.to_string()))
    }

    pub fn choice_opt<C: Choice>(&self, name: &str) -> Result<Option<C>, Problem> {
        let Some((v, spec)) = self.given(name)? else {
            return Ok(None);
        };
        let text = v.as_str().unwrap_or_default();
        C::from_name(text).map(Some).ok_or_else(|| {
            Problem::new(
                spec.name,
                format!("`{text}` is not one of {}", C::NAMES.join(", ")),
            )
        })
    }

    pub fn choice<C: Choice>(&self, name: &str, default: C) -> Result<C, Problem> {
        Ok(self.choice_opt(name)?.unwrap_or(default))
    }

    pub fn rational(&self, name: &str, default: Rational) -> Result<Rational, Problem> {
        let Some((v, spec)) = self.given(name)? else {
            return Ok(default);
        };
        parse_rational(v.as_str().unwrap_or_default()).map_err(|m| Problem::new(spec.name, m))
    }

    /// A mapping of names to numbers, in name order; empty when absent.
    pub fn number_map(&self, name: &str) -> Result<Vec<(String, f64)>, Problem> {
        let Some((v, _)) = self.given(name)? else {
            return Ok(Vec::new());
        };
        let map = v.as_object().map(|m| m.iter()).into_iter().flatten();
        Ok(map
            .filter_map(|(k, v)| Some((k.clone(), v.as_f64()?)))
            .collect())
    }

    /// A list of names; empty when absent.
    pub fn names(&self, name: &str) -> Result<Vec<String>, Problem> {
        let Some((v, _)) = self.given(name)? else {
            return Ok(Vec::new());
        };
        let items = v.as_array().map(|a| a.iter()).into_iter().flatten();
        Ok(items
            .filter_map(|n| n.as_str().map(str::to_string))
            .collect())
    }

    /// Bits per second.
    pub fn bitrate_opt(&self, name: &str) -> Result<Option<u64>, Problem> {
        Ok(self.given(name)?.and_then(|(v, _)| v.as_u64()))
    }
}
