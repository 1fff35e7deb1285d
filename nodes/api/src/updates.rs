//! Param updates as a node sees them.

use std::sync::OnceLock;

use node_catalog::KindSpec;
use serde_json::Value;

use crate::NodeConfig;

/// The schema a custom node started with (`Node::init_with_schema`).
static CUSTOM_SCHEMA: OnceLock<&'static KindSpec> = OnceLock::new();

pub(crate) fn set_custom_schema(schema: &'static KindSpec) {
    let _ = CUSTOM_SCHEMA.set(schema);
}

/// A param update from the runtime, checked against the node's schema (its
/// built-in kind's, or the one a custom node started with): the node only
/// sees params the schema marks `live`, with a value of the param's type
/// (normalized); anything else is logged and dropped here, so no node has
/// to say "cannot change while running" itself. A custom node without a
/// schema gets every update. The node's params follow each update it gets.
pub(crate) fn admit(config: &mut NodeConfig, name: &str, value: Value) -> Option<Value> {
    let schema = node_catalog::kind(&config.kind).or(CUSTOM_SCHEMA.get().copied());
    let inputs: Vec<String> = config.inputs.iter().map(|i| i.name.clone()).collect();
    let value = match schema {
        None => value,
        Some(kind) => match kind.check_update(&inputs, &config.params, name, &value) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!("param update `{name}` = {value} ignored: {e}");
                return None;
            }
        },
    };
    // An action happens once: the params stay the settings in force.
    let action = schema.is_some_and(|k| k.is_action(name));
    if !action {
        config.params.0.insert(name.to_string(), value.clone());
    }
    Some(value)
}
