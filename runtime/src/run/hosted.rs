//! Nodes hosted by the application that embeds the runtime.
//!
//! A kind marked `hosted` in the catalog (`app-video`, `app-audio`) is not a
//! process the runtime starts: the embedding application's own process joins
//! the graph as that node (`node_api::Node::from_config` with the config the
//! runtime hands it) and sends the frames it submits. The runtime supervises
//! it like any node (barrier, stop, end-of-stream, stats), except that it
//! is never restarted nor watched for hangs: the app decides when it submits.

use std::fmt;
use std::sync::Arc;

use anyhow::Result;
use node_api::{NodeConfig, NodeStats};
use tokio::sync::oneshot;

/// What an embedding application implements to host nodes.
pub trait NodeHost: Send + Sync + 'static {
    /// Joins the graph as node `node` with `config`, without blocking (the
    /// runtime is arming every node meanwhile), and reports through `ended`
    /// when the node has finished (after its end-of-stream) or failed.
    fn start(&self, node: &str, config: NodeConfig, ended: HostedEnd) -> Result<()>;
}

/// How a hosted node ended: its last counters, or (`Err`) its cause.
pub(super) type HostedOutcome = Result<Option<NodeStats>, String>;

/// The hosted node's way to tell the runtime it ended.
#[derive(Debug)]
pub struct HostedEnd(pub(super) oneshot::Sender<HostedOutcome>);

impl HostedEnd {
    /// The node sent its end-of-stream and left the graph; `last` are its
    /// counters at the end (the report's, whatever stats message is still
    /// on its way).
    pub fn finished(self, last: Option<NodeStats>) {
        let _ = self.0.send(Ok(last));
    }

    /// The node failed: the run stops and names this cause.
    pub fn failed(self, cause: impl Into<String>) {
        let _ = self.0.send(Err(cause.into()));
    }

    /// The runtime stopped waiting for this node (its grace ran out, or
    /// the run ended): the host should drop it.
    pub fn abandoned(&self) -> bool {
        self.0.is_closed()
    }
}

/// The host of a run's hosted nodes, as [`super::RunOptions`] carries it.
#[derive(Clone)]
pub struct Host(pub Arc<dyn NodeHost>);

impl fmt::Debug for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Host(..)")
    }
}

/// Why a graph with hosted nodes cannot run without a host.
pub fn needs_host(graph: &crate::graph::Graph) -> Option<String> {
    let node = graph.nodes.iter().find(|n| n.is_hosted())?;
    Some(format!(
        "node `{}` takes frames from the application that embeds the runtime ({}); \
         `runtime run` has nothing to feed it: run this graph from an app (recorder::Runtime::start)",
        node.id,
        node.kind_name()
    ))
}
