//! What an embedding application follows of a run while it goes: the
//! latest statistics (the status line's numbers, every half second), the
//! run's phase, and its events (started, warnings, a node restarted or
//! failing, stopping, finished).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use node_api::NodeStats;
use serde::Serialize;
use tokio::sync::{broadcast, watch};

pub use super::status::NodeFigures;

/// The numbers of the status line at one moment.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LiveStats {
    /// Media time: since the sources were let go.
    pub elapsed: Duration,
    /// `arming`, `running`, `stopping` or `finished` ([`Phase::as_str`]).
    pub phase: &'static str,
    /// Per node, its last published stats.
    pub nodes: BTreeMap<String, NodeStats>,
    /// Per node, the figures the status line shows (rate, queue, drops,
    /// bitrate, A/V offset, restarts), so that every viewer reads the same.
    pub figures: BTreeMap<String, NodeFigures>,
    /// Per node, what the runtime sees wrong with it (`HUNG 3.2s`, `BUSY`).
    pub flags: BTreeMap<String, String>,
}

/// Where a run is, as whoever follows it sees it (the supervisor's own
/// phases carry deadlines; this is only their name).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// The barrier: nodes subscribe and arm; sources wait.
    #[default]
    Arming,
    /// Sources produce.
    Running,
    /// The stop began: sources end, sinks finalize.
    Stopping,
    /// Every node ended.
    Finished,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Arming => "arming",
            Phase::Running => "running",
            Phase::Stopping => "stopping",
            Phase::Finished => "finished",
        }
    }

    /// Stopping or finished: no stop can begin any more.
    pub fn is_ending(self) -> bool {
        matches!(self, Phase::Stopping | Phase::Finished)
    }
}

/// Something that happened to the run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum RunEvent {
    /// Every node armed: sources produce.
    Started,
    /// Something the operator should know; the run goes on.
    Warning { message: String },
    /// A node ended or hung and was started again (`restarts` of
    /// `max_restarts` so far); the run goes on.
    NodeRestarted {
        node: String,
        cause: String,
        restarts: u32,
        max_restarts: u32,
    },
    /// A node failed for good; the run stops.
    NodeFailed { node: String, cause: String },
    /// The stop began.
    Stopping { why: String },
    /// Every node ended.
    Finished,
}

impl RunEvent {
    /// The event as the log says it, for a viewer that shows text.
    pub fn describe(&self) -> String {
        match self {
            RunEvent::Started => "started".into(),
            RunEvent::Warning { message } => message.clone(),
            RunEvent::NodeRestarted {
                node,
                cause,
                restarts,
                max_restarts,
            } => format!("node `{node}` {cause}; restarting ({restarts}/{max_restarts})"),
            RunEvent::NodeFailed { node, cause } => format!("node `{node}` failed: {cause}"),
            RunEvent::Stopping { why } => format!("stopping: {why}"),
            RunEvent::Finished => "finished".into(),
        }
    }
}

/// How many events a slow subscriber may fall behind before it misses some.
const EVENT_BACKLOG: usize = 256;

/// The sending side, shared by the run's handles.
#[derive(Debug)]
pub(super) struct Live {
    stats: watch::Sender<Arc<LiveStats>>,
    phase: watch::Sender<Phase>,
    events: broadcast::Sender<RunEvent>,
}

impl Default for Live {
    fn default() -> Self {
        Live {
            stats: watch::channel(Arc::default()).0,
            phase: watch::channel(Phase::default()).0,
            events: broadcast::channel(EVENT_BACKLOG).0,
        }
    }
}

impl Live {
    /// The phase changed (at once, not with the next statistics).
    pub fn set_phase(&self, phase: Phase) {
        self.phase.send_replace(phase);
    }

    pub fn phase(&self) -> Phase {
        *self.phase.borrow()
    }

    pub fn watch_phase(&self) -> watch::Receiver<Phase> {
        self.phase.subscribe()
    }

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
