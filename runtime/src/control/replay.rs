//! Replay saves: the action `save` of every replay-buffer node, sent with
//! one instant on the capture clock, so that every buffer's file ends with
//! the media captured then. The control API (`POST /api/replay/save`),
//! SIGUSR1 to `runtime run` (with or without `--control`) and an embedding
//! application (`Recorder::save_replay`) all come here.

use crate::graph::{Graph, NodeProgram};
use crate::run::StopHandle;

const REPLAY_KIND: &str = "replay-buffer";
const SAVE_ACTION: &str = "save";

/// The graph has no replay-buffer node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoReplayBuffer;

impl NoReplayBuffer {
    pub const MESSAGE: &'static str = "the graph has no replay-buffer node: nothing to save";
}

/// A save sent: its instant (capture clock, ns) and the nodes it went to.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplaySave {
    pub at_ns: u64,
    pub nodes: Vec<String>,
}

/// The replay-buffer nodes of `graph`, in the graph's order.
pub fn replay_buffers(graph: &Graph) -> Vec<String> {
    graph
        .nodes
        .iter()
        .filter(|n| matches!(&n.program, NodeProgram::Builtin(k) if k == REPLAY_KIND))
        .map(|n| n.id.clone())
        .collect()
}

/// Asks every replay-buffer node of `graph` to save, made now.
pub fn save_replay(graph: &Graph, stop: &StopHandle) -> Result<ReplaySave, NoReplayBuffer> {
    let nodes = replay_buffers(graph);
    if nodes.is_empty() {
        return Err(NoReplayBuffer);
    }
    let at_ns = node_api::clock::now_ns();
    for node in &nodes {
        stop.set_param_at(node, SAVE_ACTION, serde_json::Value::Bool(true), at_ns);
    }
    tracing::info!("replay save at {at_ns} ns: {}", nodes.join(", "));
    Ok(ReplaySave { at_ns, nodes })
}
