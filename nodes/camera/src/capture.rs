//! What every kind of source shares: the capture loop contract and pacing.

use std::time::Duration;

use anyhow::Result;
use node_api::{clock, Node};
use node_catalog::Rational;

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

/// The pts of a live source's frames: the frame slot (1/fps) of each capture
/// time counted from the first frame, so a frame the device missed leaves a
/// gap (video-normalize fills it) instead of shifting every later frame;
/// never back nor twice the same.
pub struct Slots {
    fps: Rational,
    first_ns: Option<u64>,
    last_pts: i64,
}

impl Slots {
    pub fn new(fps: Rational) -> Slots {
        Slots {
            fps,
            first_ns: None,
            last_pts: -1,
        }
    }

    /// The pts of a frame captured at `capture_ns`, and how many slots since
    /// the previous frame got no frame (frames the device missed). A frame
    /// in a slot already taken goes in the next one.
    pub fn place(&mut self, capture_ns: u64) -> (i64, u64) {
        let pts = self.slot(capture_ns).max(self.last_pts + 1);
        let missed = (pts - self.last_pts - 1) as u64;
        self.last_pts = pts;
        (pts, missed)
    }

    /// The pts of a frame of a source that makes one frame per slot and
    /// catches up when it fell behind (x11grab, whose late grabs show the
    /// screen as it is now): the slot after the previous frame's, unless
    /// `capture_ns` is more than `tolerance` slots past it; then its own
    /// slot, the slots passed counted as missed. A frame captured in a slot
    /// already taken (a catch-up) is `None`, to be skipped. So scheduling
    /// jitter moves no frame, and a stall is counted and never runs the pts
    /// ahead of the capture times.
    pub fn claim(&mut self, capture_ns: u64, tolerance: i64) -> Option<(i64, u64)> {
        let own = self.slot(capture_ns);
        let next = self.last_pts + 1;
        let pts = match own {
            own if own < next && self.last_pts >= 0 => return None,
            own if own > next + tolerance => own,
            _ => next,
        };
        let missed = (pts - next) as u64;
        self.last_pts = pts;
        Some((pts, missed))
    }

    /// The capture time of slot `pts`: the first frame's plus `pts` periods.
    pub fn time_of(&self, pts: i64) -> u64 {
        let first = self.first_ns.unwrap_or(0) as u128;
        let (num, den) = (self.fps.num as u128, self.fps.den as u128);
        (first + pts.max(0) as u128 * den * 1_000_000_000 / num) as u64
    }

    /// The slot of `capture_ns`, rounded to the nearest: capture times
    /// jitter around them.
    fn slot(&mut self, capture_ns: u64) -> i64 {
        let first = *self.first_ns.get_or_insert(capture_ns);
        let (num, den) = (self.fps.num as u128, self.fps.den as u128);
        let period = den * 1_000_000_000;
        ((capture_ns.saturating_sub(first) as u128 * num + period / 2) / period) as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_leave_gaps_for_missed_frames_and_never_repeat() {
        let mut s = Slots::new(Rational { num: 30, den: 1 });
        let at = |ms: u64| 5_000_000_000 + ms * 1_000_000;
        assert_eq!(s.place(at(0)), (0, 0));
        assert_eq!(s.place(at(35)), (1, 0));
        // Slot 2 missed.
        assert_eq!(s.place(at(100)), (3, 1));
        // Late then early: the next slot, never the same one again.
        assert_eq!(s.place(at(101)), (4, 0));
        let mut screen = Slots::new(Rational { num: 30, den: 1 });
        assert_eq!(screen.claim(at(0), 2), Some((0, 0)));
        // 20 ms late: jitter, the next slot all the same.
        assert_eq!(screen.claim(at(53), 2), Some((1, 0)));
        assert_eq!(screen.claim(at(60), 2), Some((2, 0)));
        // A stall: slots 3 to 8 missed, then the catch-up grabs skipped.
        assert_eq!(screen.claim(at(300), 2), Some((9, 6)));
        assert_eq!(screen.claim(at(301), 2), None);
        assert_eq!(screen.claim(at(333), 2), Some((10, 0)));
        assert_eq!(screen.time_of(2), at(0) + 66_666_666);
        let mut ntsc = Slots::new(Rational {
            num: 30000,
            den: 1001,
        });
        ntsc.place(at(0));
        assert_eq!(ntsc.place(at(1001)), (30, 29));
    }

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
