//! The built-in nodes that send encoded packets out live, each output
//! isolated behind its own bounded queue (`outlet`): `stream` pushes to an
//! RTMP/RTMPS server or an SRT peer; `replay-buffer` keeps the last seconds
//! in memory and writes them to a file on demand.

mod link;
mod outlet;
mod replay;
mod sink;
mod tracks;

pub use replay::replay_main;
