//! The validated graph: what `runtime run` spawns and wires.

use std::collections::BTreeMap;
use std::path::PathBuf;

use node_catalog::{KindSpec, Params, PortType};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The name the runtime uses for itself where node ids name things (its
/// unix socket `_runtime.sock` beside the nodes' `<id>.sock`). Node ids may
/// not start with [`RESERVED_ID_PREFIX`], so no node can take it.
pub const RUNTIME_NAME: &str = "_runtime";

/// Ids starting with this are the runtime's own.
pub const RESERVED_ID_PREFIX: char = '_';

/// A graph that passed validation: every reference resolves, every param is
/// typed and in range, defaults are filled in, `${var}`s are substituted.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Graph {
    /// `name:` or the file stem.
    pub name: String,
    /// The file it was loaded from.
    pub file: PathBuf,
    pub nodes: Vec<NodeDef>,
    pub network: Network,
}

/// Where a node's executable comes from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum NodeProgram {
    /// `node: <kind>`: a built-in node, binary `node-<kind>` beside `runtime`.
    Builtin(String),
    /// `path: <executable>`: a custom node (resolved relative to the graph file).
    Custom(PathBuf),
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    Never,
    OnFailure,
    Always,
}

/// What a full input queue does: the node API's own type, handed to each
/// node as it is.
pub use node_api::Policy as QueuePolicy;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeDef {
    pub id: String,
    pub program: NodeProgram,
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub params: Params,
    pub inputs: Vec<InputDef>,
    pub outputs: Vec<OutputDef>,
    pub restart: RestartPolicy,
    pub max_restarts: u32,
    /// `deploy: {machine: NAME}`; `None`: the local machine.
    pub machine: Option<String>,
    /// Put in by the runtime at one end of a compressed link between
    /// machines (not written in the graph file).
    #[serde(default)]
    pub link: Option<LinkEnd>,
    /// The schema a custom node published (`--describe`) when the graph was
    /// checked: its param updates are checked against it like a built-in's
    /// against the catalog. `None` for a built-in (see [`NodeDef::schema`])
    /// and for a custom node that publishes none.
    #[serde(skip)]
    pub described: Option<&'static KindSpec>,
}

impl NodeDef {
    /// A node with no inputs produces media from outside the graph.
    pub fn is_source(&self) -> bool {
        self.inputs.is_empty()
    }

    /// Its kind runs inside the application that embeds the runtime
    /// (`app-video`, `app-audio`), not as a process the runtime starts.
    pub fn is_hosted(&self) -> bool {
        matches!(&self.program, NodeProgram::Builtin(k) if node_catalog::kind(k).is_some_and(|k| k.hosted))
    }

    /// The built-in kind, or the custom executable's path.
    pub fn kind_name(&self) -> String {
        match &self.program {
            NodeProgram::Builtin(kind) => kind.clone(),
            NodeProgram::Custom(path) => path.display().to_string(),
        }
    }

    /// What its params are checked against: a built-in kind's catalog
    /// entry, or the schema a custom node published; `None` for a custom
    /// node that publishes none.
    pub fn schema(&self) -> Option<&'static KindSpec> {
        match &self.program {
            NodeProgram::Builtin(kind) => node_catalog::kind(kind),
            NodeProgram::Custom(_) => self.described,
        }
    }

    /// A param update for this node while it runs, checked against its
    /// schema (only a param marked mutable, with a value of its type that
    /// keeps the kind's rules): the value to send, normalized. A custom node
    /// without a schema gets its updates as they are.
    pub fn check_param_update(&self, name: &str, value: &Value) -> Result<Value, String> {
        match self.schema() {
            Some(kind) => {
                let inputs: Vec<String> = self.inputs.iter().map(|i| i.name.clone()).collect();
                kind.check_update(&inputs, &self.params, name, value)
            }
            None => Ok(value.clone()),
        }
    }

    /// Whether param `name` is an action (done once when sent, not kept).
    pub fn is_action(&self, name: &str) -> bool {
        self.schema().is_some_and(|k| k.is_action(name))
    }
}

impl Graph {
    /// The node `id`.
    pub fn node(&self, id: &str) -> Option<&NodeDef> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// [`NodeDef::check_param_update`] for the node `node`.
    pub fn check_param_update(
        &self,
        node: &str,
        name: &str,
        value: &Value,
    ) -> Result<Value, String> {
        match self.node(node) {
            Some(n) => n.check_param_update(name, value),
            None => Err(format!("the graph has no node `{node}`")),
        }
    }
}

/// Which end of a compressed link a node the runtime put in is.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum LinkRole {
    /// The `video-encode` on the sending machine.
    Encode,
    /// A `video-decode` on a receiving machine.
    Decode,
}

/// A node of a compressed link (see `link:` in the graph docs).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LinkEnd {
    pub role: LinkRole,
    /// The output whose frames cross: `node/output`.
    pub from: String,
    /// The link's codec (`mjpeg`, `h264`, ...).
    pub codec: String,
    /// The link's encoder (the node itself for [`LinkRole::Encode`]).
    pub encoder: String,
}

/// An input of a node, wired: the node API's own type, handed to each node
/// as it is.
pub use node_api::InputConfig as InputDef;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutputDef {
    pub name: String,
    pub ty: PortType,
}

/// `network:` — zenoh endpoints. Loopback only by default.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Network {
    /// Per machine name: the endpoints its runtime listens on (e.g. `tcp/10.0.0.2:7447`).
    pub machines: BTreeMap<String, MachineNetwork>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MachineNetwork {
    pub listen: Vec<String>,
    pub connect: Vec<String>,
}
