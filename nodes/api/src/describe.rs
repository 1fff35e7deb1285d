//! `--describe`: a custom node publishes its schema (ports and params), so
//! `runtime check` and `runtime run` check its params and edges before
//! anything starts, exactly as a built-in's.
//!
//! The schema is the catalog's [`NodeSchema`] (= `node_catalog::KindSpec`,
//! what the built-in kinds are described by), declared once in a `static`
//! and given to [`Node::init_with_schema`](crate::Node::init_with_schema):
//!
//! ```no_run
//! use node_api::{Node, NodeSchema, ParamSpec, ParamType, PortSpec, PortType};
//!
//! static SCHEMA: NodeSchema = NodeSchema::new("my-filter", "what it does")
//!     .with_inputs(&[PortSpec::new("video", PortType::RawVideo, "raw video")])
//!     .with_outputs(&[PortSpec::new("video", PortType::RawVideo, "the result")])
//!     .with_params(&[
//!         ParamSpec::new("level", ParamType::Int { min: 0, max: 10 }, Some("5"), "how much"),
//!         // `.live()`: applied while running (Event::ParamUpdate)
//!         ParamSpec::new("label", ParamType::Str, None, "text to show").live(),
//!     ]);
//!
//! // `my-filter --describe` prints the schema as JSON and exits 0.
//! let node = Node::init_with_schema(&SCHEMA)?;
//! let level = node.params().i64("level"); // checked, the default filled in: Some(5) unless set
//! # Ok::<(), anyhow::Error>(())
//! ```

use std::io::Write;

use node_catalog::KindSpec;

/// A custom node's schema: its ports and params, with types, defaults,
/// ranges and descriptions. The same type as the built-in kinds' entries in
/// the catalog (`node_catalog::KindSpec`).
pub type NodeSchema = KindSpec;

/// The argument that asks a node for its schema (the first one).
pub const DESCRIBE_ARG: &str = "--describe";

/// Whether the process was started as `NODE --describe ...`.
pub fn describe_requested() -> bool {
    std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == DESCRIBE_ARG)
}

/// When the process was started as `NODE --describe ...`: prints `schema`
/// as one line of JSON on stdout and exits 0 (1 if stdout cannot take it),
/// without reading any config or connecting to anything. Otherwise returns.
///
/// [`Node::init_with_schema`](crate::Node::init_with_schema) calls it first;
/// call it yourself at the top of `main` if the node parses its own
/// command line before that.
pub fn describe_if_requested(schema: &NodeSchema) {
    if !describe_requested() {
        return;
    }
    let text = schema.to_json().to_string();
    let mut out = std::io::stdout().lock();
    let written = writeln!(out, "{text}").and_then(|_| out.flush());
    std::process::exit(if written.is_ok() { 0 } else { 1 });
}

#[cfg(test)]
mod tests {
    use super::*;
    use node_catalog::{ParamSpec, ParamType, PortSpec, PortType};

    static SCHEMA: NodeSchema = NodeSchema::new("t", "test")
        .with_outputs(&[PortSpec::new("out", PortType::Stats, "")])
        .with_params(&[ParamSpec::new(
            "n",
            ParamType::Int { min: 1, max: 2 },
            None,
            "",
        )]);

    #[test]
    fn not_asked_returns() {
        // The test harness's first argument is never --describe.
        describe_if_requested(&SCHEMA);
        assert!(!describe_requested());
    }
}
