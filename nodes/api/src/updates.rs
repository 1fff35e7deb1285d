//! Param updates as a node sees them.

use serde_json::Value;

use crate::NodeConfig;

/// A param update from the runtime, checked against the node's kind: a
/// built-in node only sees params its schema marks mutable, with a value of
/// the param's type (normalized); anything else is logged and dropped here,
/// so no node has to say "cannot change while running" itself. Custom nodes
/// have no schema and get every update. The node's params follow each update
/// it gets.
pub(crate) fn admit(config: &mut NodeConfig, name: &str, value: Value) -> Option<Value> {
    let value = match node_catalog::kind(&config.kind) {
        None => value,
        Some(kind) => match kind.check_update(&config.params, name, &value) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!("param update `{name}` = {value} ignored: {e}");
                return None;
            }
        },
    };
    config.params.0.insert(name.to_string(), value.clone());
    Some(value)
}
