//! Pairs the inputs' frames by time: the composed frame at time `t` shows,
//! for each input, its newest frame at or before `t`. Inputs come from one
//! timeline (after sync), so equal pts mean the same instant.

use std::collections::VecDeque;

struct Lane<T> {
    queue: VecDeque<(i128, T)>,
    /// The frame shown now: the newest one at or before the last output time.
    current: Option<T>,
    /// Whether `current` arrived for the last output time (else it is repeated).
    fresh: bool,
    closed: bool,
}

/// What one output step decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// The output time, ns on the shared timeline.
    pub t: i128,
    /// Made without waiting for every input: one held `max_held` frames.
    pub forced: bool,
}

pub struct Pairing<T> {
    lanes: Vec<Lane<T>>,
    last: Option<i128>,
    /// Frames replaced by a newer one before they were shown.
    pub superseded: u64,
}

impl<T> Pairing<T> {
    pub fn new(inputs: usize) -> Pairing<T> {
        Pairing {
            lanes: (0..inputs)
                .map(|_| Lane {
                    queue: VecDeque::with_capacity(16),
                    current: None,
                    fresh: false,
                    closed: false,
                })
                .collect(),
            last: None,
            superseded: 0,
        }
    }

    /// Queues a frame of input `i` at time `t`; false (and dropped) when an
    /// output at or after `t` was already made (the frame came too late).
    pub fn push(&mut self, i: usize, t: i128, item: T) -> bool {
        if self.last.is_some_and(|last| t <= last) {
            return false;
        }
        self.lanes[i].queue.push_back((t, item));
        true
    }

    /// Input `i` will send nothing more: the others no longer wait for it.
    pub fn close(&mut self, i: usize) {
        self.lanes[i].closed = true;
    }

    pub fn close_all(&mut self) {
        for lane in &mut self.lanes {
            lane.closed = true;
        }
    }

    /// The next output time once it can be decided: when every open input
    /// has a frame queued (so none can still bring an earlier one), or when
    /// one input holds `max_held` frames (then the late inputs repeat their
    /// last frame). `None`: wait for more input.
    pub fn next(&mut self, max_held: Option<usize>) -> Option<Step> {
        let t = self
            .lanes
            .iter()
            .filter_map(|l| l.queue.front().map(|f| f.0))
            .min()?;
        let ready = self.lanes.iter().all(|l| l.closed || !l.queue.is_empty());
        let forced =
            !ready && max_held.is_some_and(|max| self.lanes.iter().any(|l| l.queue.len() >= max));
        if !ready && !forced {
            return None;
        }
        for lane in &mut self.lanes {
            lane.fresh = false;
            while lane.queue.front().is_some_and(|f| f.0 <= t) {
                let (_, item) = lane.queue.pop_front().expect("front exists");
                if lane.fresh {
                    self.superseded += 1;
                }
                lane.current = Some(item);
                lane.fresh = true;
            }
        }
        self.last = Some(t);
        Some(Step { t, forced })
    }

    /// What input `i` shows now, and whether it is new for this output.
    pub fn current(&self, i: usize) -> Option<(&T, bool)> {
        let lane = &self.lanes[i];
        lane.current.as_ref().map(|c| (c, lane.fresh))
    }

    pub fn inputs(&self) -> usize {
        self.lanes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(p: &Pairing<u32>) -> Vec<Option<(u32, bool)>> {
        (0..p.inputs())
            .map(|i| p.current(i).map(|(v, f)| (*v, f)))
            .collect()
    }

    #[test]
    fn waits_for_every_input_then_pairs_equal_times() {
        let mut p = Pairing::new(2);
        p.push(0, 0, 10);
        p.push(0, 33, 11);
        assert_eq!(p.next(None), None);
        p.push(1, 0, 20);
        assert_eq!(
            p.next(None),
            Some(Step {
                t: 0,
                forced: false
            })
        );
        assert_eq!(shown(&p), vec![Some((10, true)), Some((20, true))]);
        // Input 1 has nothing for 33 yet: wait.
        assert_eq!(p.next(None), None);
        p.push(1, 33, 21);
        assert_eq!(p.next(None).map(|s| s.t), Some(33));
        assert_eq!(shown(&p), vec![Some((11, true)), Some((21, true))]);
    }

    #[test]
    fn a_slower_input_repeats_its_last_frame() {
        let mut p = Pairing::new(2);
        p.push(0, 0, 1);
        p.push(1, 0, 100);
        p.push(0, 33, 2);
        p.push(1, 66, 101);
        assert_eq!(p.next(None).map(|s| s.t), Some(0));
        assert_eq!(p.next(None).map(|s| s.t), Some(33));
        assert_eq!(shown(&p), vec![Some((2, true)), Some((100, false))]);
    }

    #[test]
    fn a_stalled_input_is_passed_over_after_max_held() {
        let mut p = Pairing::new(2);
        p.push(1, 0, 100);
        p.push(0, 0, 1);
        assert!(p.next(Some(2)).is_some());
        p.push(0, 33, 2);
        assert_eq!(p.next(Some(2)), None);
        p.push(0, 66, 3);
        assert_eq!(
            p.next(Some(2)),
            Some(Step {
                t: 33,
                forced: true
            })
        );
        assert_eq!(shown(&p), vec![Some((2, true)), Some((100, false))]);
        // Without a bound (no_drop input) it keeps waiting.
        p.push(0, 99, 4);
        assert_eq!(p.next(None), None);
        // A frame older than what went out is refused.
        assert!(!p.push(1, 33, 101));
        assert!(p.push(1, 66, 102));
        assert_eq!(p.next(None).map(|s| s.t), Some(66));
    }

    #[test]
    fn closed_inputs_do_not_hold_the_others_and_doubles_are_superseded() {
        let mut p = Pairing::new(3);
        p.close(2);
        p.push(0, 0, 1);
        p.push(1, 0, 10);
        p.push(1, 0, 11);
        assert_eq!(p.next(None).map(|s| s.t), Some(0));
        assert_eq!(shown(&p), vec![Some((1, true)), Some((11, true)), None]);
        assert_eq!(p.superseded, 1);
        p.close_all();
        assert_eq!(p.next(None), None);
    }
}
