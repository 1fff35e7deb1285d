//! Recording sessions through the control API. Start, stop, split and
//! chapter are the mux's live params `recording`, `split` and `chapter`,
//! sent to every mux with one instant on the capture clock; a start and a
//! split also ask every video encoder for a keyframe (`keyframe`) at that
//! same instant, so that the new file begins on the frame captured then.
//! The mux cuts by capture time, not by when the update reached it (see
//! the mux's `session.rs`).

use std::collections::BTreeMap;
use std::sync::Mutex;

use node_api::metrics;
use serde::Serialize;
use serde_json::{json, Value};

use crate::graph::{Graph, NodeProgram};
use crate::run::{LiveStats, StopHandle};

const MUX_KIND: &str = "mux";
const ENCODER_KIND: &str = "video-encode";
const RECORDING_PARAM: &str = "recording";

/// A command of a recording session.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Start,
    Stop,
    Split,
    Chapter(String),
}

impl Command {
    pub fn name(&self) -> &'static str {
        match self {
            Command::Start => "start",
            Command::Stop => "stop",
            Command::Split => "split",
            Command::Chapter(_) => "chapter",
        }
    }
}

/// Whether files are being written, over every mux.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionState {
    Recording,
    Stopped,
    /// Some muxes record, others not (set one by one through params).
    Mixed,
    /// The graph has no mux.
    None,
}

/// The `session` of `GET /api/state`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionView {
    pub state: SessionState,
    pub mux: BTreeMap<String, MuxView>,
}

/// One mux: the state asked for and what it reports (metrics `recording`,
/// `files`, `chapters`; absent until it published them).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MuxView {
    pub requested: SessionState,
    pub reported: Option<SessionState>,
    pub files: Option<u64>,
    pub chapters: Option<u64>,
}

/// Why a command was refused, beside the run's own reasons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionRefusal {
    NoMux,
    AlreadyRecording,
    NotRecording,
}

impl SessionRefusal {
    pub fn message(self) -> &'static str {
        match self {
            SessionRefusal::NoMux => "the graph has no mux: nothing is recorded",
            SessionRefusal::AlreadyRecording => "already recording",
            SessionRefusal::NotRecording => "not recording",
        }
    }
}

/// The muxes (whether each was last asked to record) and the encoders.
pub struct Sessions {
    recording: Mutex<BTreeMap<String, bool>>,
    encoders: Vec<String>,
}

fn recording_of(on: bool) -> SessionState {
    if on {
        SessionState::Recording
    } else {
        SessionState::Stopped
    }
}

impl Sessions {
    pub fn of(graph: &Graph) -> Sessions {
        let of_kind = |kind: &'static str| {
            graph
                .nodes
                .iter()
                .filter(move |n| matches!(&n.program, NodeProgram::Builtin(k) if k == kind))
        };
        let recording = of_kind(MUX_KIND)
            .map(|n| {
                let on = n.params.bool(RECORDING_PARAM).unwrap_or(true);
                (n.id.clone(), on)
            })
            .collect();
        let encoders = of_kind(ENCODER_KIND).map(|n| n.id.clone()).collect();
        Sessions {
            recording: Mutex::new(recording),
            encoders,
        }
    }

    pub fn view(&self, stats: &LiveStats) -> SessionView {
        let recording = self.recording.lock().unwrap().clone();
        let metric = |node: &str, name: &str| stats.nodes.get(node)?.metrics.get(name).copied();
        let mux = recording
            .iter()
            .map(|(id, on)| {
                let view = MuxView {
                    requested: recording_of(*on),
                    reported: metric(id, metrics::RECORDING).map(|v| recording_of(v >= 0.5)),
                    files: metric(id, metrics::FILES).map(|v| v as u64),
                    chapters: metric(id, metrics::CHAPTERS).map(|v| v as u64),
                };
                (id.clone(), view)
            })
            .collect();
        SessionView {
            state: overall(recording.values()),
            mux,
        }
    }

    /// Sends `command` made at `at_ns` to every mux (and, for a start or a
    /// split, a keyframe request to every video encoder), or says why not.
    pub fn send(
        &self,
        stop: &StopHandle,
        command: &Command,
        at_ns: u64,
    ) -> Result<(), SessionRefusal> {
        let mut recording = self.recording.lock().unwrap();
        let state = overall(recording.values());
        match (state, command) {
            (SessionState::None, _) => return Err(SessionRefusal::NoMux),
            (SessionState::Recording, Command::Start) => {
                return Err(SessionRefusal::AlreadyRecording)
            }
            (SessionState::Stopped, Command::Stop | Command::Split | Command::Chapter(_)) => {
                return Err(SessionRefusal::NotRecording)
            }
            _ => {}
        }
        if matches!(command, Command::Start | Command::Split) {
            for encoder in &self.encoders {
                stop.set_param_at(encoder, "keyframe", json!(true), at_ns);
            }
        }
        let (name, value): (&str, Value) = match command {
            Command::Start => (RECORDING_PARAM, json!(true)),
            Command::Stop => (RECORDING_PARAM, json!(false)),
            Command::Split => ("split", json!(true)),
            Command::Chapter(title) => ("chapter", json!(title)),
        };
        // Sent under the lock: commands reach every mux in one order.
        for (mux, on) in recording.iter_mut() {
            match command {
                Command::Start => *on = true,
                Command::Stop => *on = false,
                _ if !*on => continue,
                _ => {}
            }
            stop.set_param_at(mux, name, value.clone(), at_ns);
        }
        Ok(())
    }

    /// A `recording` update through `POST /api/params`.
    pub fn note_param(&self, node: &str, name: &str, value: &Value) {
        if name != RECORDING_PARAM {
            return;
        }
        let mut recording = self.recording.lock().unwrap();
        if let (Some(on), Some(v)) = (recording.get_mut(node), value.as_bool()) {
            *on = v;
        }
    }
}

fn overall<'a>(mut on: impl Iterator<Item = &'a bool> + Clone) -> SessionState {
    match on.clone().next() {
        None => SessionState::None,
        Some(_) if on.clone().all(|o| *o) => SessionState::Recording,
        Some(_) if on.all(|o| !*o) => SessionState::Stopped,
        Some(_) => SessionState::Mixed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_over_every_mux() {
        assert_eq!(overall([].iter()), SessionState::None);
        assert_eq!(overall([true, true].iter()), SessionState::Recording);
        assert_eq!(overall([false].iter()), SessionState::Stopped);
        assert_eq!(overall([true, false].iter()), SessionState::Mixed);
    }
}
