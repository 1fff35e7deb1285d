//! Graph files: loading, validation (every problem at once, each with its
//! line and column), `--set` overrides, `${var}` substitution and rendering.

mod describe;
mod diagnostic;
mod limits;
mod load;
mod model;
mod render;
mod validate;
mod vars;
mod yaml;
mod yaml_keys;

pub(crate) use diagnostic::did_you_mean;
pub use diagnostic::{Diagnostic, Diagnostics};
pub(crate) use load::override_value;
pub use load::{load, load_str, Override};
pub use model::*;
pub use render::{render, RenderFormat};
pub use validate::MACHINE_BUILTIN;
