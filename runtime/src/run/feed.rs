//! The run's frames as the runtime may hear them, while its session is
//! open: what the control API's snapshots subscribe through.
//!
//! Only the handle lives here. A snapshot subscribes to one output's data
//! key for as long as it waits for one frame (see `control::snapshot`),
//! never while nobody asks.

use std::sync::{Arc, Mutex};

/// The runtime's session and the run's id (the keys are derived from it).
#[derive(Clone)]
pub(crate) struct Tap {
    pub session: zenoh::Session,
    pub run_id: String,
}

/// Shared by the run's handles: set while the run's links are open.
#[derive(Clone, Default)]
pub(super) struct Feed(Arc<Mutex<Option<Tap>>>);

impl Feed {
    /// The tap, if the run's session is open.
    pub fn tap(&self) -> Option<Tap> {
        self.0.lock().unwrap().clone()
    }

    /// Opens the tap until the guard is dropped (before the session
    /// closes, on every way out of the run: a tap held past it would keep
    /// the session from closing).
    pub fn open(&self, tap: Tap) -> FeedGuard {
        *self.0.lock().unwrap() = Some(tap);
        FeedGuard(self.clone())
    }
}

pub(super) struct FeedGuard(Feed);

impl Drop for FeedGuard {
    fn drop(&mut self) {
        self.0 .0.lock().unwrap().take();
    }
}
