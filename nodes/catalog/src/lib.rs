//! The schema of every built-in node kind: its ports, its params with types,
//! defaults and ranges, and its documentation.
//!
//! This one table drives the graph validator (`runtime check`), the node
//! reference (`runtime nodes`) and the nodes themselves (they read their
//! params back through [`Params`]), so the three can never disagree.

mod kinds;
mod params;
mod schema;
mod value;

pub use kinds::{
    builtin_kinds, container_accepts, container_for, crf_max, kind, KindSpec, PortSpec,
    BUILTIN_BINARY, DEFAULT_QUEUE_SIZE,
};
pub use params::{ParamSpec, ParamType, Params};
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
