//! Constant frame rate: each input frame goes to the output slot nearest its
//! time (relative to the first frame). Slots no frame reached are filled with
//! the previous frame; a frame landing on a slot already filled is dropped.

use node_api::TimeBase;
use node_catalog::Rational;

/// A timestamp this far behind the timeline (seconds) is a discontinuity (a
/// source restarted, a clock reset), not a late frame: the timeline re-anchors.
const MAX_BACKWARD_S: i64 = 1;
/// A jump this far ahead (seconds) is a discontinuity too, instead of a
/// minute of duplicated frames.
const MAX_FORWARD_S: i64 = 60;

/// Where one input frame goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// Send the frame at `slot`; first repeat the previous frame in slots
    /// `fill_from..slot` (empty when none were missed).
    Emit { slot: i64, fill_from: i64 },
    /// Its slot was already sent.
    Drop,
}

#[derive(Debug)]
pub struct CfrMapper {
    fps: Rational,
    /// (input pts, its time base, the slot it maps to): slots of later frames
    /// are counted from there.
    anchor: Option<(i64, TimeBase, i64)>,
    next_slot: i64,
    /// How many times the timeline was re-anchored.
    pub discontinuities: u64,
}

impl CfrMapper {
    pub fn new(fps: Rational) -> CfrMapper {
        CfrMapper {
            fps,
            anchor: None,
            next_slot: 0,
            discontinuities: 0,
        }
    }

    /// Output time base: one tick per frame.
    pub fn time_base(&self) -> TimeBase {
        TimeBase::new(self.fps.den as i32, self.fps.num as i32)
    }

    /// Nominal frame period in nanoseconds.
    pub fn period_ns(&self) -> u64 {
        (1_000_000_000i128 * self.fps.den as i128 / self.fps.num as i128) as u64
    }

    /// Places a frame stamped `pts` in `time_base`.
    pub fn place(&mut self, pts: i64, time_base: TimeBase) -> Placement {
        let slot = match self.anchor {
            Some((apts, atb, aslot)) if atb == time_base => {
                aslot + self.slots_between(apts, pts, time_base)
            }
            // First frame, or the input changed its time base: start counting here.
            _ => self.reanchor(pts, time_base, false),
        };
        let fps = (self.fps.num / self.fps.den).max(1);
        let slot = if slot < self.next_slot - MAX_BACKWARD_S * fps
            || slot > self.next_slot + MAX_FORWARD_S * fps
        {
            self.reanchor(pts, time_base, true)
        } else {
            slot
        };
        if slot < self.next_slot {
            return Placement::Drop;
        }
        let fill_from = self.next_slot;
        self.next_slot = slot + 1;
        Placement::Emit { slot, fill_from }
    }

    fn reanchor(&mut self, pts: i64, time_base: TimeBase, discontinuity: bool) -> i64 {
        if discontinuity {
            self.discontinuities += 1;
        }
        self.anchor = Some((pts, time_base, self.next_slot));
        self.next_slot
    }

    /// round((to - from) · time_base · fps), exactly.
    fn slots_between(&self, from: i64, to: i64, tb: TimeBase) -> i64 {
        let num = (to as i128 - from as i128) * tb.num as i128 * self.fps.num as i128;
        let den = tb.den as i128 * self.fps.den as i128;
        (2 * num + den).div_euclid(2 * den) as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn emit(slot: i64, fill_from: i64) -> Placement {
        Placement::Emit { slot, fill_from }
    }

    #[test]
    fn same_rate_maps_one_to_one() {
        let mut m = CfrMapper::new(Rational::new(30, 1));
        let tb = TimeBase::new(1, 30);
        for i in 0..100 {
            assert_eq!(m.place(1000 + i, tb), emit(i, i));
        }
    }

    #[test]
    fn gaps_duplicate_and_doubles_drop() {
        let mut m = CfrMapper::new(Rational::new(30, 1));
        let tb = TimeBase::new(1, 1000); // input in milliseconds
        assert_eq!(m.place(0, tb), emit(0, 0));
        assert_eq!(m.place(33, tb), emit(1, 1));
        // 100 ms: slot 3; slot 2 is missing and gets the previous frame.
        assert_eq!(m.place(100, tb), emit(3, 2));
        // 110 ms rounds to slot 3 again: dropped.
        assert_eq!(m.place(110, tb), Placement::Drop);
        assert_eq!(m.place(133, tb), emit(4, 4));
    }

    #[test]
    fn sixty_to_thirty_drops_every_other() {
        let mut m = CfrMapper::new(Rational::new(30, 1));
        let tb = TimeBase::new(1, 60);
        // 120 frames span slots 0..=60 (frame 119 at 1.983 s rounds to 60).
        let drops = (0..120)
            .filter(|&i| m.place(i, tb) == Placement::Drop)
            .count();
        assert_eq!(drops, 59);
    }

    #[test]
    fn ntsc_to_thirty_duplicates_one_in_a_thousand() {
        let mut m = CfrMapper::new(Rational::new(30, 1));
        let tb = TimeBase::new(1001, 30000);
        let mut dups = 0;
        for i in 0..3000 {
            match m.place(i, tb) {
                Placement::Emit { slot, fill_from } => dups += slot - fill_from,
                Placement::Drop => panic!("no drops expected"),
            }
        }
        assert_eq!(dups, 3);
    }

    #[test]
    fn rate_in_the_output_time_base() {
        let m = CfrMapper::new(Rational::new(30000, 1001));
        assert_eq!(m.time_base(), TimeBase::new(1001, 30000));
        assert_eq!(m.period_ns(), 33_366_666);
    }

    #[test]
    fn discontinuities_reanchor() {
        let mut m = CfrMapper::new(Rational::new(30, 1));
        let tb = TimeBase::new(1, 30);
        for i in 0..100 {
            m.place(i, tb);
        }
        // Slightly late (under a second): dropped, the timeline holds.
        assert_eq!(m.place(95, tb), Placement::Drop);
        // The source restarted from 0: continue at slot 100, no mass drop.
        assert_eq!(m.place(0, tb), emit(100, 100));
        assert_eq!(m.place(1, tb), emit(101, 101));
        // A jump of an hour: continue, no hour of duplicates.
        assert_eq!(m.place(108_000, tb), emit(102, 102));
        assert_eq!(m.discontinuities, 2);
        // A new time base re-anchors without counting a discontinuity.
        assert_eq!(m.place(5, TimeBase::new(1, 1000)), emit(103, 103));
        assert_eq!(m.discontinuities, 2);
    }
}
