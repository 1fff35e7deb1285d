//! The media graph runtime as a library: load and validate a graph, run it
//! (one OS process per node, wired over zenoh), stop it, read its stats.
//! The `runtime` binary is a thin CLI over this crate, so applications can
//! embed the same calls.

pub mod devices;
pub mod graph;
pub mod nodes_doc;
pub mod recover;
pub mod run;
pub mod scaffold;
