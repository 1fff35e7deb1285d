//! What is wrong with a node's params: the param to point at and why.

use std::fmt;

/// One problem with a node's params: the param the validator points at
/// (`nodes[3].params.<param>` with its line and column), the message, and
/// optionally a hint on how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub param: &'static str,
    pub message: String,
    pub hint: Option<String>,
}

impl Problem {
    pub fn new(param: &'static str, message: impl Into<String>) -> Problem {
        Problem {
            param,
            message: message.into(),
            hint: None,
        }
    }

    pub fn hint(self, hint: impl Into<String>) -> Problem {
        Problem {
            hint: Some(hint.into()),
            ..self
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "param `{}`: {}", self.param, self.message)
    }
}

impl std::error::Error for Problem {}
