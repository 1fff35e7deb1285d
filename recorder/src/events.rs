//! Status events for the app: the run's statistics every half second and
//! its events (warnings, node failures, the stop), delivered on plain
//! channels an app's UI thread can poll.

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};

use runtime::graph::Graph;
use runtime::run::{RunEvent, StopHandle};

use crate::stats::Statistics;
use tokio::sync::broadcast;

/// Something an app shows about a recording.
#[derive(Debug, Clone)]
pub enum StatusEvent {
    /// The statistics of the moment (every half second while it runs).
    Statistics(Statistics),
    /// Every node armed; the recording runs.
    Started,
    /// Something to know; the recording goes on.
    Warning(String),
    /// A node failed; the recording stops (its file keeps what was written).
    NodeFailed {
        /// The node's id.
        node: String,
        /// Why, as the node or the runtime said it.
        cause: String,
    },
    /// The stop began.
    Stopping(String),
    /// Every node ended.
    Finished,
}

impl From<RunEvent> for StatusEvent {
    fn from(e: RunEvent) -> Self {
        match e {
            RunEvent::Started => StatusEvent::Started,
            RunEvent::Warning { message } => StatusEvent::Warning(message),
            // An app shows a restart as the warning it always was.
            e @ RunEvent::NodeRestarted { .. } => StatusEvent::Warning(e.describe()),
            RunEvent::NodeFailed { node, cause } => StatusEvent::NodeFailed { node, cause },
            RunEvent::Stopping { why } => StatusEvent::Stopping(why),
            RunEvent::Finished => StatusEvent::Finished,
        }
    }
}

/// The app's subscriptions to one run.
#[derive(Clone, Default)]
pub(crate) struct StatusEvents {
    subscribers: Arc<Mutex<Vec<Sender<StatusEvent>>>>,
}

impl StatusEvents {
    pub fn subscribe(&self) -> Receiver<StatusEvent> {
        let (tx, rx) = channel();
        self.subscribers.lock().unwrap().push(tx);
        rx
    }

    /// To every subscriber still listening.
    fn send(&self, event: StatusEvent) {
        self.subscribers
            .lock()
            .unwrap()
            .retain(|s| s.send(event.clone()).is_ok());
    }
}

/// Forwards the run's statistics and events to the app's subscribers,
/// until the run finishes.
pub(crate) fn forward(
    tokio: &tokio::runtime::Runtime,
    handle: &StopHandle,
    graph: Graph,
) -> StatusEvents {
    let out = StatusEvents::default();
    let mut stats = handle.watch_stats();
    let mut events = handle.subscribe();
    let to = out.clone();
    tokio.spawn(async move {
        loop {
            tokio::select! {
                changed = stats.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    let now = stats.borrow_and_update().clone();
                    to.send(StatusEvent::Statistics(Statistics::of(&now, &graph)));
                }
                event = events.recv() => match event {
                    Ok(e) => {
                        let finished = e == RunEvent::Finished;
                        to.send(e.into());
                        if finished {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        to.send(StatusEvent::Warning(format!("{n} status events were missed")));
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    });
    out
}
