//! The sender's hold on what it sent.
//!
//! zenoh invalidates a shared-memory buffer when no process has confirmed
//! holding it for ~100 ms (its watchdog, checked in the process that
//! allocated it). A buffer passed along without a copy (camera → normalize →
//! sync → encoder) is confirmed only by whoever holds it at the moment: if
//! that process is not scheduled for 100 ms while the buffer waits in its
//! outgoing link queue (a stopped or starved process), the buffer arrives
//! invalid and the receiver drops it. A copy on the way cannot help then: the
//! message has already left the node's hands.
//!
//! So the process that allocated a buffer keeps confirming it for
//! [`RETAIN_FOR`] after sending it, through a hard reference that holds the
//! watchdog but not the buffer: a buffer released by every receiver is still
//! reused at once. When a node of the graph goes away every hold is dropped,
//! so the buffers that node held expire and can be taken back (see
//! [`crate::pool`]).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use zenoh_shm::ShmBufHardRef;

/// How long a sent buffer stays confirmed by its sender: longer than a node
/// may stall before the supervisor treats it as hung (10 s by default).
pub const RETAIN_FOR: Duration = Duration::from_secs(10);

/// At most this many holds (a few seconds of every stream at high rates).
const MAX_RETAINED: usize = 8192;

static RETAINED: Mutex<VecDeque<(Instant, ShmBufHardRef)>> = Mutex::new(VecDeque::new());

/// Keeps confirming a buffer just sent for [`RETAIN_FOR`].
pub(crate) fn retain(buffer: ShmBufHardRef) {
    let now = Instant::now();
    let mut held = RETAINED.lock().unwrap();
    while held
        .front()
        .is_some_and(|(at, _)| now.duration_since(*at) >= RETAIN_FOR || held.len() >= MAX_RETAINED)
    {
        held.pop_front();
    }
    held.push_back((now, buffer));
}

/// Drops every hold: a node went away, and what it held must be let expire.
pub(crate) fn release_all() {
    RETAINED.lock().unwrap().clear();
}
