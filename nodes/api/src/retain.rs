//! The sender's hold on what it sent, and what a node hears of departures.
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
//! So the node that allocated a buffer keeps confirming it for
//! [`RETAIN_FOR`] after sending it, through a hard reference that holds the
//! watchdog but not the buffer: a buffer released by every receiver is still
//! reused at once. When a node of the graph goes away the node's holds are
//! dropped, so the buffers that node held expire and can be taken back (see
//! [`crate::pool`]).
//!
//! Holds and departures belong to one node, not to its process: an
//! application may host nodes of several graphs at once, and the end of one
//! graph must not let go of the buffers another still has on the way.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use zenoh_shm::ShmBufHardRef;

/// How long a sent buffer stays confirmed by its sender: longer than a node
/// may stall before the supervisor treats it as hung (10 s by default).
pub const RETAIN_FOR: Duration = Duration::from_secs(10);

/// At most this many holds (a few seconds of every stream at high rates).
const MAX_RETAINED: usize = 8192;

/// One node's holds on the buffers it sent, and the departures of the
/// other nodes of its graph (shared by its pools).
#[derive(Default)]
pub(crate) struct Holds {
    held: Mutex<VecDeque<(Instant, ShmBufHardRef)>>,
    /// How many nodes of the graph went away, and when the last did.
    gone: Mutex<Option<(u64, Instant)>>,
}

impl Holds {
    /// Keeps confirming a buffer just sent for [`RETAIN_FOR`].
    pub fn retain(&self, buffer: ShmBufHardRef) {
        let now = Instant::now();
        let mut held = self.held.lock().unwrap();
        while held.front().is_some_and(|(at, _)| {
            now.duration_since(*at) >= RETAIN_FOR || held.len() >= MAX_RETAINED
        }) {
            held.pop_front();
        }
        held.push_back((now, buffer));
    }

    /// A node of the graph went away: what it held may be taken back, so
    /// every hold is dropped (ours would keep its buffers confirmed).
    pub fn holder_gone(&self) {
        self.held.lock().unwrap().clear();
        let mut gone = self.gone.lock().unwrap();
        let departures = gone.map_or(0, |(n, _)| n) + 1;
        *gone = Some((departures, Instant::now()));
    }

    /// The departures so far and when the last was, if any.
    pub fn departures(&self) -> Option<(u64, Instant)> {
        *self.gone.lock().unwrap()
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.held.lock().unwrap().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_departure_drops_only_this_nodes_holds() {
        let (a, b) = (Holds::default(), Holds::default());
        assert_eq!(a.departures(), None);
        let pool = crate::pool::Pool::new("test", 64, 2, Default::default()).unwrap();
        for holds in [&a, &b] {
            let (buf, _) = pool.alloc(64).unwrap();
            holds.retain(ShmBufHardRef::from(&buf));
        }
        a.holder_gone();
        assert_eq!((a.len(), b.len()), (0, 1));
        assert_eq!(a.departures().map(|(n, _)| n), Some(1));
        assert_eq!(b.departures(), None);
    }
}
