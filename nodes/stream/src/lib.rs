//! The built-in nodes that send encoded packets out live, each output
//! isolated behind its own bounded queue ([`outlet`]): `stream` pushes to an
//! RTMP/RTMPS server or an SRT peer, `hls` writes an HLS playlist;
//! `replay-buffer` keeps the last seconds in memory and writes them to a
//! file on demand.

mod hls;
mod link;
mod outlet;
mod output;
mod push;
mod replay;
mod sink;
mod tracks;

/// `mediagraph-nodes hls`.
pub use hls::main as hls_main;
/// `mediagraph-nodes stream`.
pub use push::main as stream_main;
pub use replay::replay_main;
