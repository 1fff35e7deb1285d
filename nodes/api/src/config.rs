//! What the runtime hands a node at start, as JSON in one environment variable.

use node_catalog::{Params, PortType};
use serde::{Deserialize, Serialize};

/// The environment variable carrying a node's [`NodeConfig`] as JSON.
pub const CONFIG_ENV: &str = "MEDIAGRAPH_NODE_CONFIG";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeConfig {
    pub run_id: String,
    pub node_id: String,
    /// The built-in kind, or `custom`.
    pub kind: String,
    pub params: Params,
    pub inputs: Vec<InputConfig>,
    pub outputs: Vec<OutputConfig>,
    pub transport: TransportConfig,
    /// How many times this node was restarted before this start.
    #[serde(default)]
    pub restart_count: u32,
    /// The run's epoch: an instant on the capture clock (see [`crate::clock`])
    /// shared by every node of the run on this machine. Test sources put
    /// their media timelines on it, so their clapperboards meet on whole
    /// seconds from it.
    #[serde(default)]
    pub epoch_ns: u64,
    /// Added to this machine's monotonic clock to read the run's reference
    /// clock (another machine's, measured over the network by the runtime);
    /// 0 on the reference machine. Applied by [`crate::clock::now_ns`], so
    /// capture timestamps of every machine compare directly.
    #[serde(default)]
    pub clock_offset_ns: i64,
    /// The same as a model that follows the reference's rate (see
    /// [`crate::clock::ClockModel`]); when set, it is applied instead of
    /// `clock_offset_ns`, and the node takes the runtime's later models
    /// (published for `machine`) as they come.
    #[serde(default)]
    pub clock: Option<crate::clock::ClockModel>,
    /// `runtime run --machine`: the machine this node runs on.
    #[serde(default)]
    pub machine: Option<String>,
    /// What the node's previous incarnation saved with
    /// [`crate::Node::save_resume_state`]; `None` at the first start.
    #[serde(default)]
    pub resume_state: Option<serde_json::Value>,
    /// `runtime run --duration`: a node without inputs sends this many
    /// seconds of media per output, then ends (see `Node::stop_requested`).
    #[serde(default)]
    pub media_duration_s: Option<f64>,
}

/// What a full input queue does (the graph's `policy:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Policy {
    /// A full queue drops its oldest message (counted).
    DropOldest,
    /// A full queue makes the sender wait: nothing is lost.
    Block,
}

/// One input of a node, as the graph wires it (the runtime's validated
/// graph uses this type too).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InputConfig {
    pub name: String,
    pub source_node: String,
    pub source_output: String,
    /// Messages buffered before the policy applies (default 4).
    pub queue_size: usize,
    /// Raw video defaults to drop-oldest; raw audio and encoded ports to `block`
    /// (encoded ports always block).
    pub policy: Policy,
    pub ty: PortType,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutputConfig {
    pub name: String,
    pub ty: PortType,
    /// Nodes reading this output: the node waits for them before it arms.
    pub consumers: Vec<String>,
    /// The largest queue among the consumers: sizes the shared-memory pool.
    pub max_queue: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TransportConfig {
    /// zenoh endpoints this node listens on.
    pub listen: Vec<String>,
    /// zenoh endpoints this node connects to (the runtime, upstream nodes).
    pub connect: Vec<String>,
    /// Shared memory between processes of one machine; off: bytes go over the link.
    pub shared_memory: bool,
}

impl NodeConfig {
    /// Reads the config the runtime set in the environment.
    pub fn from_env() -> anyhow::Result<NodeConfig> {
        let text = std::env::var(CONFIG_ENV).map_err(|_| {
            anyhow::anyhow!(
                "{CONFIG_ENV} is not set: nodes are started by `runtime run GRAPH`, not by hand"
            )
        })?;
        serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{CONFIG_ENV} is not valid: {e}"))
    }
}
