//! A node's life as one state machine. It moves on the runtime's signals
//! (the graph started, the graph is stopping: seen by zenoh callbacks on
//! their own threads) and on the node's own steps (armed, [`Event::Stop`]
//! handed out, event stream ended, finished). [`Phase::after`] holds every
//! transition; [`SharedPhase::step`] applies one atomically from any thread.
//!
//! [`Event::Stop`]: super::Event::Stop

use std::sync::atomic::{AtomicU8, Ordering};

/// Where a node is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Phase {
    /// Connected, not armed yet; the graph has not started.
    Connected,
    /// Not armed yet, and the graph already runs (a restarted node).
    ConnectedStarted,
    /// Not armed yet, and the graph is already stopping (stopped before it
    /// started, or a node that came up as it stopped).
    ConnectedStopping,
    /// Armed (its consumers listen, the runtime knows); waiting for the start.
    Armed,
    /// Armed, and the graph runs: sources produce.
    Running,
    /// The graph is stopping; [`super::Event::Stop`] not handed out yet.
    Stopping,
    /// [`super::Event::Stop`] was handed out (once).
    Stopped,
    /// The event stream ended: every input closed (a node without inputs:
    /// the stop was handed out).
    Drained,
    /// Its streams were ended and its session closed.
    Finished,
}

/// What moves a node to its next phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// The runtime's `started` token appeared.
    Start,
    /// The runtime's `stopping` token appeared.
    Stop,
    /// The node declared itself armed.
    Arm,
    /// The node's event loop handed out [`super::Event::Stop`].
    HandOutStop,
    /// The node's event stream ended.
    Drain,
    /// The node finished.
    Finish,
}

impl Phase {
    /// The phase after `step`. A step that does not apply (a start after
    /// the stop, a second stop, anything after the end) changes nothing.
    pub fn after(self, step: Step) -> Phase {
        use Phase::*;
        match (self, step) {
            (Finished, _) => Finished,
            (_, Step::Finish) => Finished,
            (Connected, Step::Start) => ConnectedStarted,
            (Armed, Step::Start) => Running,
            (Connected | ConnectedStarted, Step::Stop) => ConnectedStopping,
            (Armed | Running, Step::Stop) => Stopping,
            (Connected, Step::Arm) => Armed,
            (ConnectedStarted, Step::Arm) => Running,
            (ConnectedStopping, Step::Arm) => Stopping,
            (Stopping, Step::HandOutStop) => Stopped,
            (Armed | Running | Stopping | Stopped, Step::Drain) => Drained,
            (phase, _) => phase,
        }
    }

    /// Whether the node still has to arm.
    pub fn unarmed(self) -> bool {
        matches!(
            self,
            Phase::Connected | Phase::ConnectedStarted | Phase::ConnectedStopping
        )
    }

    /// Whether the graph has started or is stopping: an armed source no
    /// longer waits.
    pub fn past_start(self) -> bool {
        !matches!(self, Phase::Connected | Phase::Armed)
    }

    /// Whether the node is to stop producing: the graph is stopping, or
    /// the node's event stream is over.
    pub fn stop_requested(self) -> bool {
        matches!(
            self,
            Phase::ConnectedStopping
                | Phase::Stopping
                | Phase::Stopped
                | Phase::Drained
                | Phase::Finished
        )
    }

    /// Whether [`super::Event::Stop`] was handed out.
    pub fn stop_handed_out(self) -> bool {
        matches!(self, Phase::Stopped | Phase::Drained | Phase::Finished)
    }

    fn from_u8(v: u8) -> Phase {
        use Phase::*;
        [
            Connected,
            ConnectedStarted,
            ConnectedStopping,
            Armed,
            Running,
            Stopping,
            Stopped,
            Drained,
            Finished,
        ][v as usize]
    }
}

/// The phase, shared by the node's thread and the zenoh callbacks.
pub(crate) struct SharedPhase(AtomicU8);

impl SharedPhase {
    pub fn new() -> Self {
        SharedPhase(AtomicU8::new(Phase::Connected as u8))
    }

    pub fn get(&self) -> Phase {
        Phase::from_u8(self.0.load(Ordering::SeqCst))
    }

    /// Applies `step` atomically. Returns the phases (before, after).
    pub fn step(&self, step: Step) -> (Phase, Phase) {
        let mut before = self.get();
        loop {
            let after = before.after(step);
            if after == before {
                return (before, after);
            }
            match self.0.compare_exchange(
                before as u8,
                after as u8,
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => {
                    tracing::trace!("phase {before:?} -> {after:?} ({step:?})");
                    return (before, after);
                }
                Err(now) => before = Phase::from_u8(now),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walk(steps: &[Step]) -> Phase {
        steps.iter().fold(Phase::Connected, |p, s| p.after(*s))
    }

    #[test]
    fn a_source_arms_runs_stops_and_finishes() {
        use Step::*;
        assert_eq!(walk(&[Arm]), Phase::Armed);
        assert!(!Phase::Armed.past_start());
        assert_eq!(walk(&[Arm, Start]), Phase::Running);
        assert_eq!(walk(&[Arm, Start, Stop]), Phase::Stopping);
        assert_eq!(walk(&[Arm, Start, Stop, HandOutStop]), Phase::Stopped);
        assert_eq!(
            walk(&[Arm, Start, Stop, HandOutStop, Drain]),
            Phase::Drained
        );
        assert_eq!(walk(&[Arm, Start, Stop, Finish]), Phase::Finished);
    }

    #[test]
    fn signals_seen_before_arming_apply_once_armed() {
        use Step::*;
        // A restarted node sees the start before it arms.
        assert_eq!(walk(&[Start]), Phase::ConnectedStarted);
        assert!(walk(&[Start]).unarmed());
        assert_eq!(walk(&[Start, Arm]), Phase::Running);
        // Stopped before the graph started: it still arms, then stops.
        assert_eq!(walk(&[Stop]), Phase::ConnectedStopping);
        assert!(walk(&[Stop]).stop_requested());
        assert_eq!(walk(&[Start, Stop, Arm]), Phase::Stopping);
        assert!(walk(&[Stop, Arm]).past_start());
    }

    #[test]
    fn steps_that_do_not_apply_change_nothing() {
        use Step::*;
        // A start after the stop, a second stop, a stop handed out twice.
        assert_eq!(walk(&[Arm, Stop, Start]), Phase::Stopping);
        assert_eq!(walk(&[Arm, Stop, HandOutStop, Stop]), Phase::Stopped);
        assert_eq!(walk(&[Arm, Stop, HandOutStop, HandOutStop]), Phase::Stopped);
        // The stop is only handed out once the graph stops.
        assert_eq!(walk(&[Arm, Start, HandOutStop]), Phase::Running);
        // Nothing after the end; arming only once.
        assert_eq!(walk(&[Finish, Arm, Start]), Phase::Finished);
        assert_eq!(walk(&[Arm, Arm]), Phase::Armed);
    }

    #[test]
    fn a_shared_phase_reports_each_transition_once() {
        let p = SharedPhase::new();
        assert_eq!(
            p.step(Step::Stop),
            (Phase::Connected, Phase::ConnectedStopping)
        );
        assert_eq!(
            p.step(Step::Stop),
            (Phase::ConnectedStopping, Phase::ConnectedStopping)
        );
        assert_eq!(p.step(Step::Arm).1, Phase::Stopping);
        assert_eq!(p.get(), Phase::Stopping);
    }
}
