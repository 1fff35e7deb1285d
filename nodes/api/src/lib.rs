//! The node API: what every node process links, built-in or custom.
//!
//! A node is an executable started by `runtime run`. It calls [`Node::init`],
//! which reads the config the runtime put in the environment and joins the
//! graph's zenoh session; then it reads [`Event`]s (messages on its inputs,
//! end-of-stream, stop, param updates) and sends typed messages on its outputs.
//! Payloads (pixels, samples, packet bytes) are allocated in a per-output
//! shared-memory pool: a receiver on the same machine reads the sender's
//! buffer in place, with no copy; a receiver on another machine gets the same
//! bytes over the network, with no change to either node.
//!
//! A custom node declares its ports and params once, as a [`NodeSchema`],
//! and starts with [`Node::init_with_schema`]: run with `--describe` it
//! prints the schema as JSON and exits, and the runtime checks its params
//! and edges like a built-in's (see [`describe`]).
//!
//! A source (a node without inputs) arms itself, waits for the graph to start,
//! and produces until asked to stop:
//!
//! ```no_run
//! use node_api::{Node, VideoFrame};
//! let mut node = Node::init()?;
//! node.reserve("video", 640 * 480 * 3 / 2)?;
//! if node.wait_for_start()? {
//!     while !node.stop_requested() {
//!         let mut buf = node.alloc("video", 640 * 480 * 3 / 2)?;
//!         buf.fill(128);
//!         # let frame: VideoFrame = unimplemented!();
//!         node.send_video("video", frame, buf)?;
//!     }
//! }
//! node.finish()?; // end-of-stream on every output
//! # Ok::<(), anyhow::Error>(())
//! ```

pub mod clock;
pub mod config;
mod cpu;
pub mod snapshot;
pub use cpu::CPU_PHASES;
pub mod describe;
pub mod keys;
pub mod logging;
pub mod memlock;
mod message;
pub mod metrics;
mod node;
mod pool;
mod queue;
mod retain;
pub mod sched;
pub mod segment;
pub mod session;
pub mod shm_lock;
mod stats;
mod transport_log;
mod updates;

pub use config::{InputConfig, NodeConfig, OutputConfig, Policy, TransportConfig, CONFIG_ENV};
pub use describe::{describe_if_requested, NodeSchema, DESCRIBE_ARG};
pub use message::{
    end_of_stream_attachment, header_of_attachment, AudioFrame, CodecParams, EncodedPacket, Header,
    MediaKind, Message, Payload, PixelFormat, PlaneLayout, SampleFormat, TimeBase, VideoFrame,
};
pub use node::{Event, Node};
/// The catalog's types, for a custom node's schema and its typed settings
/// (`choice!` enums, `Reader`), as the built-in kinds declare theirs.
pub use node_catalog::{
    choice, Choice, ParamSpec, ParamType, Params, PortSpec, PortType, Problem, Reader,
};
pub use pool::{OutBuf, PoolHandle, SharedBuf};
pub use stats::{cpu_seconds, InputStats, Metrics, NodeStats, OutputStats};

/// The `main` of a node: runs `node_main`; on error prints `error: <cause
/// chain>` (the runtime shows it as the node's last log line) and exits 1,
/// or [`EXIT_NO_RESTART`] when the error is a [`NoRestart`].
pub fn run_main(node_main: impl FnOnce() -> anyhow::Result<()>) {
    // Before anything: what the process used so far is its exec and linking.
    cpu::mark(cpu::Mark::Entry);
    if let Err(e) = node_main() {
        eprintln!("error: {e:#}");
        let no_restart = e.chain().any(|c| c.is::<NoRestart>());
        std::process::exit(if no_restart { EXIT_NO_RESTART } else { 1 });
    }
}

/// The exit status of a node that failed in a way a restart cannot fix (a
/// full disk): the runtime does not restart it, whatever its `restart:` policy.
pub const EXIT_NO_RESTART: i32 = 100;

/// An error a restart of the node cannot fix; [`run_main`] exits with
/// [`EXIT_NO_RESTART`] for it.
#[derive(Debug)]
pub struct NoRestart(pub String);

impl std::fmt::Display for NoRestart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NoRestart {}

/// Re-exported so custom nodes can name the zenoh bytes behind a [`Payload`].
pub use zenoh;
