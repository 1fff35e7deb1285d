//! The built-in nodes that send encoded packets out live, each output
//! isolated behind its own bounded queue (`outlet`): `stream` pushes to an
//! RTMP/RTMPS server or an SRT peer.

mod link;
mod outlet;
mod sink;
mod tracks;
