//! The live control API of a running graph (`runtime run --control`): HTTP
//! and a WebSocket on the runtime's own tokio, and `runtime ctl`, its
//! command-line client. Reference: docs/control-api.md.
//!
//! The pieces, in the order a request meets them:
//! - `addr`: where the server listens (`HOST:PORT` or `unix:PATH`) and the
//!   `control.json` it leaves in the run directory for clients to find it.
//! - `server`: accepts connections, at most [`MAX_CONNECTIONS`] at once
//!   (beyond: 503), one request per connection, header timeouts.
//! - `auth`: the token every request must carry (401 otherwise).
//! - `routes`: the endpoints; `state`: the recording state the pause and
//!   resume endpoints keep ([`Control`], which an application embedding the
//!   runtime drives too); `session`: recording sessions (start, stop,
//!   split, chapter); `replay`: replay saves (every replay-buffer node's
//!   action `save`, also from SIGUSR1); `views`: the graph and statistics as JSON.
//! - `snapshot` and `jpeg`: a frame of a raw-video output as a JPEG (made by
//!   a helper process: the runtime links no codec library);
//!   `dashboard`: the web page at `/` (files in `dashboard/`).
//! - `events`: the WebSocket stream (statistics, state changes, the run's
//!   events, its end).
//! - `client` and `ctl`: `runtime ctl`.
//!
//! The server never makes the run wait: it only reads what the run
//! publishes (the statistics and phase watches, the events broadcast) and
//! sends through the [`StopHandle`](crate::run::StopHandle), whose channel
//! is unbounded. A WebSocket client that falls behind is dropped, never
//! waited for.

mod addr;
mod auth;
mod client;
pub mod ctl;
mod dashboard;
mod events;
mod jpeg;
mod replay;
mod routes;
mod server;
mod session;
mod snapshot;
mod state;
mod views;

#[cfg(test)]
mod tests;

pub use addr::{ControlAddr, ControlFile, CONTROL_FILE};
pub use replay::{replay_buffers, save_replay, NoReplayBuffer, ReplaySave};
pub use server::ControlServer;
pub use session::{Command, SessionRefusal, SessionState, SessionView};
pub use state::{Control, Recording, Refusal, StateView};

/// Connections served at once (HTTP requests and WebSockets alike); the
/// next one is answered 503. A control API has a handful of clients: this
/// bounds what a misbehaving one can take from the graph's machine.
pub const MAX_CONNECTIONS: usize = 16;
