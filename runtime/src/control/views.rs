//! The graph and the statistics as the API shows them: plain JSON shapes,
//! documented in docs/control-api.md, kept apart from the runtime's own
//! types so those can change without breaking clients.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{json, Value};

use crate::graph::{Graph, NodeDef, NodeProgram};
use crate::run::{LiveStats, NodeFigures, Phase};

/// `GET /api/graph`: every node with its kind, params, ports and which
/// params may change while it runs. Computed once: the graph does not change.
pub fn graph(graph: &Graph) -> Value {
    let nodes: Vec<Value> = graph.nodes.iter().map(node).collect();
    json!({
        "name": graph.name,
        "file": graph.file.display().to_string(),
        "nodes": nodes,
    })
}

fn node(def: &NodeDef) -> Value {
    let inputs: Vec<Value> = def
        .inputs
        .iter()
        .map(|i| {
            json!({
                "name": i.name,
                "from": format!("{}/{}", i.source_node, i.source_output),
                "type": i.ty.name(),
                "queue_size": i.queue_size,
                "policy": i.policy,
            })
        })
        .collect();
    let outputs: Vec<Value> = def
        .outputs
        .iter()
        .map(|o| json!({ "name": o.name, "type": o.ty.name() }))
        .collect();
    json!({
        "id": def.id,
        "kind": def.kind_name(),
        "custom": matches!(def.program, NodeProgram::Custom(_)),
        "machine": def.machine,
        "params": def.schema().map_or_else(|| def.params.clone(), |k| k.shown(&def.params)).0,
        "live_params": live_params(def),
        "inputs": inputs,
        "outputs": outputs,
        "restart": def.restart,
        "max_restarts": def.max_restarts,
    })
}

/// The params that change while it runs; `null` for a custom node that
/// publishes no schema (its updates are passed on unchecked).
fn live_params(def: &NodeDef) -> Value {
    match def.schema() {
        Some(kind) => {
            let live: Vec<&str> = kind
                .params
                .iter()
                .filter(|p| p.live)
                .map(|p| p.name)
                .collect();
            json!(live)
        }
        None => Value::Null,
    }
}

/// `GET /api/stats` and the WebSocket's `stats` messages.
#[derive(Debug, Clone, Serialize)]
pub struct StatsView<'a> {
    /// Seconds of media since the sources were let go.
    pub elapsed_s: f64,
    pub phase: &'static str,
    pub nodes: BTreeMap<&'a str, NodeView<'a>>,
}

/// One node: the status line's figures, what the runtime sees wrong with
/// it, and every metric it publishes.
#[derive(Debug, Clone, Serialize)]
pub struct NodeView<'a> {
    #[serde(flatten)]
    pub figures: &'a NodeFigures,
    /// `HUNG 3.2s`, `BUSY`, ...; absent when all is well.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flag: Option<&'a str>,
    pub rss_bytes: u64,
    pub cpu_seconds: f64,
    pub metrics: &'a BTreeMap<String, f64>,
}

impl<'a> StatsView<'a> {
    /// `live` as the API shows it, with the run's `phase` now (the
    /// statistics' own is up to half a second old).
    pub fn of(live: &'a LiveStats, phase: Phase) -> StatsView<'a> {
        let nodes = live
            .figures
            .iter()
            .filter_map(|(id, figures)| {
                let stats = live.nodes.get(id)?;
                let view = NodeView {
                    figures,
                    flag: live.flags.get(id).map(|f| f.trim()),
                    rss_bytes: stats.rss_bytes,
                    cpu_seconds: stats.cpu_seconds,
                    metrics: &stats.metrics,
                };
                Some((id.as_str(), view))
            })
            .collect();
        StatsView {
            elapsed_s: live.elapsed.as_secs_f64(),
            phase: phase.as_str(),
            nodes,
        }
    }
}
