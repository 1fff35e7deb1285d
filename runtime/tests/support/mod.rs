//! What the runtime's graph tests share: their fixtures, the built-in vars
//! they load with, and finding a node of a loaded graph.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use runtime::graph::{Graph, NodeDef};

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub fn builtins() -> BTreeMap<String, String> {
    BTreeMap::from([("timestamp".to_string(), "20240501-120000".to_string())])
}

pub fn node<'g>(graph: &'g Graph, id: &str) -> &'g NodeDef {
    graph
        .nodes
        .iter()
        .find(|n| n.id == id)
        .unwrap_or_else(|| panic!("no node {id}"))
}
