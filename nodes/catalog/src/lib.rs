//! The schema of every built-in node kind: its ports, its params with types,
//! defaults and ranges, and its documentation.
//!
//! This one table drives the graph validator (`runtime check`), the node
//! reference (`runtime nodes`) and the nodes themselves, so the three can
//! never disagree. Each kind (a module of [`kinds`]) owns its typed
//! `Settings`: `DEFAULT_*` constants and an enum per choice ([`choice!`])
//! that build both its param specs and the values its node reads
//! (`Settings::from_params`), and its rules: the pure ones `runtime check`
//! applies to every node, and the checks of the machine a node runs on.

mod choice;
mod format;
pub mod kinds;
pub mod link;
mod params;
mod problem;
mod read;
mod schema;
mod value;
pub mod x11;

pub use choice::Choice;
pub use format::Format;
pub use kinds::{
    builtin_kinds, kind, KindSpec, PortSpec, BUILTIN_BINARY, DEFAULT_QUEUE_SIZE, NODE_ID_FLAG,
};
pub use params::{DefaultValue, ParamSpec, ParamType, Params};
pub use problem::Problem;
pub use read::Reader;
pub use schema::{SCHEMA_KEY, SCHEMA_VERSION};
pub use value::{parse_bitrate, parse_rational, Rational};

use serde::{Deserialize, Serialize};

/// The type of data carried by a port. An edge may only join an output to an
/// input that accepts its type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PortType {
    RawVideo,
    RawAudio,
    EncodedVideo,
    EncodedAudio,
    Stats,
    /// Custom nodes' ports: the runtime cannot know their type, so any edge is allowed.
    Any,
}

impl PortType {
    pub fn name(self) -> &'static str {
        match self {
            PortType::RawVideo => "raw-video",
            PortType::RawAudio => "raw-audio",
            PortType::EncodedVideo => "encoded-video",
            PortType::EncodedAudio => "encoded-audio",
            PortType::Stats => "stats",
            PortType::Any => "any",
        }
    }

    pub fn from_name(name: &str) -> Option<PortType> {
        Some(match name {
            "raw-video" => PortType::RawVideo,
            "raw-audio" => PortType::RawAudio,
            "encoded-video" => PortType::EncodedVideo,
            "encoded-audio" => PortType::EncodedAudio,
            "stats" => PortType::Stats,
            "any" => PortType::Any,
            _ => return None,
        })
    }

    /// Raw media may be dropped under overload; encoded packets never are.
    pub fn is_droppable(self) -> bool {
        matches!(self, PortType::RawVideo | PortType::RawAudio)
    }
}

impl std::fmt::Display for PortType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
