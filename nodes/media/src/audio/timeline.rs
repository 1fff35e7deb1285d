//! Capture times of sample positions. A stream's samples are counted from 0;
//! whenever a block arrives with its capture time, that (position, time) pair
//! is marked. The capture time of any later position is the last mark at or
//! before it plus the elapsed samples at the nominal rate, so gaps and clock
//! drift upstream show in the times of the frames that follow them.

use std::collections::VecDeque;

/// Marks kept at most: enough for seconds of blocks between queries.
const MAX_MARKS: usize = 512;

#[derive(Debug)]
pub struct CaptureTimeline {
    rate: u32,
    marks: VecDeque<(u64, u64)>,
}

impl CaptureTimeline {
    /// Positions count samples at `rate`.
    pub fn new(rate: u32) -> CaptureTimeline {
        CaptureTimeline {
            rate: rate.max(1),
            marks: VecDeque::with_capacity(MAX_MARKS),
        }
    }

    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// Records that the sample at `pos` was captured at `capture_ns`.
    pub fn mark(&mut self, pos: u64, capture_ns: u64) {
        if self.marks.len() == MAX_MARKS {
            self.marks.pop_front();
        }
        // A position marked again (e.g. an empty block) keeps the newest time.
        if let Some(last) = self.marks.back_mut() {
            if last.0 == pos {
                *last = (pos, capture_ns);
                return;
            }
        }
        self.marks.push_back((pos, capture_ns));
    }

    /// The capture time of the sample at `pos` (0 before any mark). Queries
    /// move forward: marks before the queried one are released.
    pub fn capture_ns(&mut self, pos: u64) -> u64 {
        while self.marks.len() > 1 && self.marks[1].0 <= pos {
            self.marks.pop_front();
        }
        let Some(&(at, ns)) = self.marks.front() else {
            return 0;
        };
        let rate = self.rate as i128;
        let delta = (pos as i128 - at as i128) * 1_000_000_000 / rate;
        (ns as i128 + delta).max(0) as u64
    }

    pub fn clear(&mut self) {
        self.marks.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolates_between_marks_and_follows_gaps() {
        let mut t = CaptureTimeline::new(48_000);
        assert_eq!(t.capture_ns(10), 0);
        t.mark(0, 1_000_000_000);
        t.mark(1024, 1_021_333_333);
        // A gap upstream: 100 ms passed where 1024 samples (21.3 ms) were expected.
        t.mark(2048, 1_142_666_666);
        assert_eq!(t.capture_ns(0), 1_000_000_000);
        assert_eq!(t.capture_ns(480), 1_010_000_000);
        assert_eq!(t.capture_ns(2048 + 4800), 1_242_666_666);
        // Earlier than the first kept mark: extrapolated backward.
        let mut u = CaptureTimeline::new(1000);
        u.mark(100, 5_000_000_000);
        assert_eq!(u.capture_ns(50), 4_950_000_000);
    }

    #[test]
    fn bounded() {
        let mut t = CaptureTimeline::new(1000);
        for i in 0..10_000u64 {
            t.mark(i * 10, i * 10_000_000);
        }
        assert!(t.marks.len() <= MAX_MARKS);
        assert_eq!(t.capture_ns(99_995), 99_995_000_000);
    }
}
