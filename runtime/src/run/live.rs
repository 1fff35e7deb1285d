//! What an embedding application follows of a run while it goes: the
//! latest statistics (the status line's numbers, every half second) and
//! the run's events (started, warnings, a node failing, stopping, finished).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use node_api::NodeStats;
use serde::Serialize;
use tokio::sync::{broadcast, watch};

/// The numbers of the status line at one moment.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LiveStats {
    /// Media time: since the sources were let go.
    pub elapsed: Duration,
    /// `arming`, `running`, `stopping` or `finished`.
    pub phase: &'static str,
    /// Per node, its last published stats.
    pub nodes: BTreeMap<String, NodeStats>,
    /// Per node, what the runtime sees wrong with it (`HUNG 3.2s`, `BUSY`).
    pub flags: BTreeMap<String, String>,
}

/// Something that happened to the run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum RunEvent {
    /// Every node armed: sources produce.
    Started,
    /// Something the operator should know; the run goes on.
    Warning { message: String },
    /// A node failed for good; the run stops.
    NodeFailed { node: String, cause: String },
    /// The stop began.
    Stopping { why: String },
    /// Every node ended.
    Finished,
}

/// How many events a slow subscriber may fall behind before it misses some.
const EVENT_BACKLOG: usize = 256;

/// The sending side, shared by the run's handles.
#[derive(Debug)]
pub(super) struct Live {
    stats: watch::Sender<Arc<LiveStats>>,
    events: broadcast::Sender<RunEvent>,
}

impl Default for Live {
    fn default() -> Self {
        Live {
            stats: watch::channel(Arc::default()).0,
            events: broadcast::channel(EVENT_BACKLOG).0,
        }
    }
}

impl Live {
    pub fn publish(&self, stats: LiveStats) {
        self.stats.send_replace(Arc::new(stats));
    }

    pub fn event(&self, event: RunEvent) {
        // No subscriber is fine: events are for whoever listens.
        let _ = self.events.send(event);
    }

    pub fn stats(&self) -> Arc<LiveStats> {
        self.stats.borrow().clone()
    }

    pub fn watch_stats(&self) -> watch::Receiver<Arc<LiveStats>> {
        self.stats.subscribe()
    }

    pub fn subscribe(&self) -> broadcast::Receiver<RunEvent> {
        self.events.subscribe()
    }
}
