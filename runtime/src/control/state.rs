//! What the control API keeps between requests: the graph, the run's
//! handle, and the recording state it set (pause and resume are sync's live
//! param `paused`, on every sync node alike).
//!
//! The state a client sees is the one *asked for*, so that a second pause
//! right after the first is refused at once, beside what each sync node
//! *reports* (its metric `paused`, up to half a second later): a client can
//! tell "pausing" from "paused".

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use node_api::metrics;
use node_catalog::PortType;
use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::Notify;

use super::session::{Command, SessionRefusal, SessionView, Sessions};
use crate::graph::{Graph, NodeProgram};
use crate::run::{Phase, StopHandle};

/// The kind whose live param pauses a recording, and that param.
const SYNC_KIND: &str = "sync";
const PAUSED_PARAM: &str = "paused";

/// Whether media is being recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Recording {
    /// Recording (also: a graph without a sync node, which cannot pause).
    Running,
    /// Every sync node is paused: nothing captured now reaches a file.
    Paused,
    /// Some sync nodes are paused, others not (set one by one through
    /// `POST /api/params`); pause and resume both apply to all.
    Mixed,
}

impl Recording {
    fn of(paused: bool) -> Recording {
        if paused {
            Recording::Paused
        } else {
            Recording::Running
        }
    }
}

/// `GET /api/state`, the `state` messages, and the body of a 409.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StateView {
    pub phase: Phase,
    /// A stop was asked for (the phase becomes `stopping` at once after).
    pub stop_requested: bool,
    pub recording: Recording,
    /// Per sync node: the state asked for and the one it reports.
    pub sync: BTreeMap<String, SyncView>,
    /// Whether files are written (start / stop), per mux.
    pub session: SessionView,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SyncView {
    pub requested: Recording,
    /// From the node's metric `paused`; absent until it published one.
    pub reported: Option<Recording>,
}

/// Why a pause, resume or stop was refused (409).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The run is stopping or over.
    Ending,
    /// The graph has no sync node to pause.
    NoSync,
    /// A sync node passes encoded camera packets, which cannot be cut.
    PacketCameras,
    /// It already is in the state asked for.
    Already(Recording),
    /// A stop was already asked for, or the run is stopping.
    AlreadyStopping,
    /// A recording session's command in the wrong state.
    Session(SessionRefusal),
    /// A replay save, and the graph has no replay-buffer node.
    NoReplayBuffer,
}

impl Refusal {
    pub fn message(self) -> String {
        match self {
            Refusal::Ending => "the run is stopping".into(),
            Refusal::NoSync => "the graph has no sync node: it cannot pause".into(),
            Refusal::PacketCameras => "sync passes encoded camera packets, which cannot be cut without a re-encode: stop and start the recording instead (`runtime ctl stop`, `start`: numbered files)".into(),
            Refusal::Already(Recording::Paused) => "already paused".into(),
            Refusal::Already(_) => "not paused".into(),
            Refusal::AlreadyStopping => "already stopping".into(),
            Refusal::Session(r) => r.message().into(),
            Refusal::NoReplayBuffer => super::NoReplayBuffer::MESSAGE.into(),
        }
    }
}

/// The state shared by the routes and the event stream.
pub struct Control {
    pub graph: Arc<Graph>,
    /// `GET /api/graph`'s answer, made once.
    pub graph_view: Value,
    pub stop: StopHandle,
    /// Per sync node, whether it was last asked to be paused.
    paused: Mutex<BTreeMap<String, bool>>,
    /// A sync node's cameras are encoded packets: no pause.
    packet_cameras: bool,
    sessions: Sessions,
    /// Wakes the event stream: the state may have changed.
    pub changed: Notify,
    /// Makes snapshots into JPEGs.
    pub jpeg: super::jpeg::JpegHelper,
}

impl Control {
    pub fn new(graph: Arc<Graph>, stop: StopHandle) -> Control {
        let paused = graph
            .nodes
            .iter()
            .filter(|n| matches!(&n.program, NodeProgram::Builtin(k) if k == SYNC_KIND))
            .map(|n| (n.id.clone(), n.params.bool(PAUSED_PARAM).unwrap_or(false)))
            .collect();
        let packet_cameras = graph.nodes.iter().any(|n| {
            matches!(&n.program, NodeProgram::Builtin(k) if k == SYNC_KIND)
                && n.inputs.iter().any(|i| i.ty == PortType::EncodedVideo)
        });
        Control {
            packet_cameras,
            graph_view: super::views::graph(&graph),
            sessions: Sessions::of(&graph),
            graph,
            stop,
            paused: Mutex::new(paused),
            changed: Notify::new(),
            jpeg: Default::default(),
        }
    }

    /// Snapshots made by the built-in nodes' binary in `node_dir` (an
    /// embedding application's), not where the runtime looks by default.
    pub fn with_node_dir(mut self, node_dir: Option<std::path::PathBuf>) -> Control {
        self.jpeg = super::jpeg::JpegHelper::in_dir(node_dir);
        self
    }

    pub fn state(&self) -> StateView {
        let paused = self.paused.lock().unwrap().clone();
        let stats = self.stop.stats();
        let reported = |node: &str| {
            let value = stats.nodes.get(node)?.metrics.get(metrics::PAUSED)?;
            Some(Recording::of(*value >= 0.5))
        };
        let recording = match (paused.values().any(|p| *p), paused.values().all(|p| *p)) {
            (true, true) => Recording::Paused,
            (true, false) => Recording::Mixed,
            _ => Recording::Running,
        };
        let sync = paused
            .iter()
            .map(|(id, p)| {
                let view = SyncView {
                    requested: Recording::of(*p),
                    reported: reported(id),
                };
                (id.clone(), view)
            })
            .collect();
        StateView {
            phase: self.stop.phase(),
            stop_requested: self.stop.stop_requested(),
            recording,
            sync,
            session: self.sessions.view(&stats),
        }
    }

    /// Whether the run is stopping or over, or was asked to stop.
    fn ending(&self) -> bool {
        self.stop.stop_requested() || self.stop.phase().is_ending()
    }

    /// Pauses (or resumes) every sync node: the new state, or why not.
    pub fn set_paused(&self, paused: bool) -> Result<StateView, Refusal> {
        if self.ending() {
            return Err(Refusal::Ending);
        }
        {
            let mut nodes = self.paused.lock().unwrap();
            if nodes.is_empty() {
                return Err(Refusal::NoSync);
            }
            if paused && self.packet_cameras {
                return Err(Refusal::PacketCameras);
            }
            if nodes.values().all(|p| *p == paused) {
                return Err(Refusal::Already(Recording::of(paused)));
            }
            for (node, p) in nodes.iter_mut() {
                self.stop.set_param(node, PAUSED_PARAM, json!(paused));
                *p = paused;
            }
        }
        tracing::info!(
            "control API: recording {}",
            if paused { "paused" } else { "resumed" }
        );
        self.changed.notify_one();
        Ok(self.state())
    }

    /// A recording session's command, made now: the instant it was made
    /// (capture clock), where the files are cut.
    pub fn session(&self, command: &Command) -> Result<u64, Refusal> {
        if self.ending() {
            return Err(Refusal::Ending);
        }
        let at_ns = node_api::clock::now_ns();
        self.sessions
            .send(&self.stop, command, at_ns)
            .map_err(Refusal::Session)?;
        tracing::info!("control API: {} at {at_ns} ns", command.name());
        self.changed.notify_one();
        Ok(at_ns)
    }

    /// Asks every replay-buffer node to write its buffer to a new file,
    /// up to the instant made now.
    pub fn save_replay(&self) -> Result<super::ReplaySave, Refusal> {
        if self.ending() {
            return Err(Refusal::Ending);
        }
        super::save_replay(&self.graph, &self.stop).map_err(|_| Refusal::NoReplayBuffer)
    }

    /// Asks the run to stop (files are finalized as at Ctrl-C).
    pub fn request_stop(&self) -> Result<StateView, Refusal> {
        if self.ending() {
            return Err(Refusal::AlreadyStopping);
        }
        tracing::info!("control API: stop requested");
        self.stop.stop();
        self.changed.notify_one();
        Ok(self.state())
    }

    /// Sends a param update already checked against the schema (`value`
    /// normalized); a sync node's `paused` counts as a pause or resume.
    pub fn send_param(&self, node: &str, name: &str, value: Value) -> Result<(), Refusal> {
        if self.ending() {
            return Err(Refusal::Ending);
        }
        {
            // Sent under the lock: updates go out in the order they were made.
            let mut nodes = self.paused.lock().unwrap();
            if name == PAUSED_PARAM {
                if let (Some(p), Some(v)) = (nodes.get_mut(node), value.as_bool()) {
                    *p = v;
                }
            }
            self.sessions.note_param(node, name, &value);
            self.stop.set_param(node, name, value);
        }
        self.changed.notify_one();
        Ok(())
    }
}
