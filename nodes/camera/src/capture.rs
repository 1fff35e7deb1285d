//! What every kind of source shares: the capture loop contract and pacing.

use std::time::Duration;

use anyhow::Result;
use node_api::{clock, Node};

/// One running source: sized before the graph starts, then run until it ends
/// or the graph stops.
pub trait Capture {
    /// The largest payload a frame can take (sizes the shared-memory pool).
    fn max_frame_bytes(&self) -> usize;
    /// Produces frames on output `video` until `node.stop_requested()` or the
    /// end of the media; returns how many frames were sent.
    fn run(&mut self, node: &mut Node) -> Result<u64>;
    /// Whether frames come faster than real time (a replay not paced by a
    /// clock); a device is always paced by its own.
    fn unpaced(&self) -> bool {
        false
    }
}

/// Turns media time into capture time: the first frame is captured when it is
/// produced, later ones at their offset from it. In realtime mode it also
/// sleeps until each frame is due; otherwise frames go out as fast as
/// downstream takes them, still stamped on the media timeline so timestamps
/// describe the media rather than how fast it was generated.
pub struct Pacer {
    realtime: bool,
    start_ns: Option<u64>,
}

/// Longest single sleep, so a stop request is noticed promptly.
const SLEEP_SLICE: Duration = Duration::from_millis(50);

impl Pacer {
    pub fn realtime(&self) -> bool {
        self.realtime
    }

    pub fn new(realtime: bool) -> Pacer {
        Pacer {
            realtime,
            start_ns: None,
        }
    }

    /// A pacer whose offsets count from `start_ns` rather than from the
    /// first frame.
    pub fn starting_at(realtime: bool, start_ns: u64) -> Pacer {
        Pacer {
            realtime,
            start_ns: Some(start_ns),
        }
    }

    /// The capture time of the frame `offset_ns` after the first one, after
    /// sleeping until then when realtime (returns early if `stop()` turns true).
    pub fn wait(&mut self, offset_ns: u64, stop: impl Fn() -> bool) -> u64 {
        let start = *self.start_ns.get_or_insert_with(clock::now_ns);
        let due = start + offset_ns;
        if self.realtime {
            loop {
                let now = clock::now_ns();
                if now >= due || stop() {
                    break;
                }
                std::thread::sleep(Duration::from_nanos(due - now).min(SLEEP_SLICE));
            }
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn realtime_waits_and_fast_does_not() {
        let mut p = Pacer::new(true);
        let t0 = p.wait(0, || false);
        let t1 = p.wait(30_000_000, || false);
        assert_eq!(t1 - t0, 30_000_000);
        assert!(clock::now_ns() >= t1);

        let mut p = Pacer::new(false);
        let t0 = p.wait(0, || false);
        let t1 = p.wait(10_000_000_000, || false);
        assert_eq!(t1 - t0, 10_000_000_000);
        assert!(clock::now_ns() < t1, "did not sleep");

        let mut p = Pacer::new(true);
        p.wait(0, || false);
        let before = clock::now_ns();
        p.wait(10_000_000_000, || true);
        assert!(
            clock::now_ns() - before < 1_000_000_000,
            "stop cut the sleep short"
        );
    }
}
