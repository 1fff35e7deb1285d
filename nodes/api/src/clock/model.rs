//! How a machine's clock maps onto the run's reference clock while the run
//! goes on: an offset that moves at a rate (the two crystals never tick
//! alike), and a bounded slew that brings the applied offset onto a new
//! estimate without a jump. The runtime of each non-reference machine
//! estimates it and publishes it to its machine's nodes; [`super::now_ns`]
//! applies it.

use serde::{Deserialize, Serialize};

/// The fastest the applied offset moves towards a new estimate beyond the
/// estimated rate, ppm: ntpd's slew limit. A frame period of 33 ms then
/// changes by at most 17 µs, and an audio block's timestamps by as little.
pub const MAX_SLEW_PPM: f64 = 500.0;

/// The time a disagreement takes to be slewed away when that stays under
/// [`MAX_SLEW_PPM`]: long enough that a noisy estimate moves the clock's rate
/// by little, short enough that an error is gone well within a minute.
pub const SETTLE_NS: u64 = 10_000_000_000;

/// Reference clock minus this host's clock, as a function of the host clock:
/// `offset_ns` at `at_ns`, moving by `rate_ppm` per host second, plus
/// `slew_ppm` until `slew_until_ns` (then the slew is done).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ClockModel {
    /// The host clock instant the model is anchored at.
    pub at_ns: u64,
    /// Reference minus host clock at `at_ns`.
    pub offset_ns: i64,
    /// How fast the offset grows, ppm of host time: negative when this
    /// host's clock runs fast.
    pub rate_ppm: f64,
    /// Added to `rate_ppm` from `at_ns` to `slew_until_ns`: a disagreement
    /// with the latest estimate being taken out.
    pub slew_ppm: f64,
    pub slew_until_ns: u64,
    /// How far the offset may be off (half the best round trip plus the
    /// fit's scatter); 0 on the reference machine.
    #[serde(default)]
    pub uncertainty_ns: u64,
    /// Whether the offset comes from measuring another machine's clock (a
    /// graph spread over machines, on a machine other than the reference).
    #[serde(default)]
    pub remote: bool,
}

impl ClockModel {
    /// A fixed offset (the reference machine: 0).
    pub const fn constant(offset_ns: i64) -> ClockModel {
        ClockModel {
            at_ns: 0,
            offset_ns,
            rate_ppm: 0.0,
            slew_ppm: 0.0,
            slew_until_ns: 0,
            uncertainty_ns: 0,
            remote: false,
        }
    }

    /// Reference minus host clock when the host clock reads `host_ns`.
    pub fn offset_at(&self, host_ns: u64) -> i64 {
        let dt = host_ns as f64 - self.at_ns as f64;
        let slewing = host_ns.min(self.slew_until_ns.max(self.at_ns)) as f64 - self.at_ns as f64;
        let moved = dt * self.rate_ppm * 1e-6 + slewing * self.slew_ppm * 1e-6;
        self.offset_ns.saturating_add(moved.round() as i64)
    }

    /// The rate the offset moves at when the host clock reads `host_ns`,
    /// ppm (the estimate plus any slew then).
    pub fn rate_at(&self, host_ns: u64) -> f64 {
        if host_ns < self.slew_until_ns {
            self.rate_ppm + self.slew_ppm
        } else {
            self.rate_ppm
        }
    }

    /// The model to apply from `now_ns` on: continuous with this one at
    /// `now_ns`, at `target`'s rate, the two offsets' disagreement then
    /// taken out over [`SETTLE_NS`] or, when larger than that allows, at
    /// [`MAX_SLEW_PPM`]. After the slew it is `target` exactly.
    pub fn slewed_towards(&self, now_ns: u64, target: &ClockModel) -> ClockModel {
        let offset_ns = self.offset_at(now_ns);
        let gap = (target.offset_at(now_ns) - offset_ns) as f64;
        let fastest = gap.abs() / (MAX_SLEW_PPM * 1e-6);
        let duration = fastest.max(SETTLE_NS as f64);
        ClockModel {
            at_ns: now_ns,
            offset_ns,
            rate_ppm: target.rate_ppm,
            slew_ppm: gap / duration * 1e6,
            slew_until_ns: now_ns + duration as u64,
            uncertainty_ns: target.uncertainty_ns,
            remote: target.remote,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn the_offset_moves_at_the_rate() {
        let m = ClockModel {
            at_ns: 100 * S,
            offset_ns: 3 * S as i64,
            rate_ppm: -500.0,
            ..ClockModel::constant(0)
        };
        assert_eq!(m.offset_at(100 * S), 3_000_000_000);
        // 60 s later a clock 500 ppm fast is 30 ms further ahead.
        assert_eq!(m.offset_at(160 * S), 3_000_000_000 - 30_000_000);
        assert_eq!(m.offset_at(99 * S), 3_000_000_000 + 500_000);
        assert_eq!(ClockModel::constant(7).offset_at(123 * S), 7);
    }

    #[test]
    fn a_new_estimate_is_slewed_to_without_a_jump() {
        let applied = ClockModel::constant(1_000_000);
        // The estimate says 2 ms more, and a clock 100 ppm slow.
        let target = ClockModel {
            at_ns: 50 * S,
            offset_ns: 3_000_000,
            rate_ppm: 100.0,
            remote: true,
            ..ClockModel::constant(0)
        };
        let now = 50 * S;
        let next = applied.slewed_towards(now, &target);
        assert_eq!(next.offset_at(now), applied.offset_at(now), "no jump");
        // 2 ms over 10 s: 200 ppm on top of the rate, then on the target.
        assert!((next.slew_ppm - 200.0).abs() < 1e-9, "{next:?}");
        assert!((next.rate_at(now + S) - 300.0).abs() < 1e-9);
        assert_eq!(next.slew_until_ns, now + SETTLE_NS);
        for t in [60 * S, 61 * S, 500 * S] {
            assert!(
                (next.offset_at(t) - target.offset_at(t)).abs() <= 1,
                "at {t}"
            );
        }
        assert!(next.remote);
    }

    #[test]
    fn a_large_disagreement_is_slewed_at_the_bounded_rate() {
        let applied = ClockModel::constant(0);
        let target = ClockModel::constant(-100_000_000);
        let next = applied.slewed_towards(10 * S, &target);
        assert!((next.slew_ppm + MAX_SLEW_PPM).abs() < 1e-6, "{next:?}");
        // 100 ms at 0.5 ms/s: 200 s.
        assert_eq!(next.slew_until_ns, 210 * S);
        let mut last = next.offset_at(10 * S);
        for s in 11..=220 {
            let o = next.offset_at(s * S);
            assert!((last - o) as f64 <= MAX_SLEW_PPM * 1e3 + 1.0, "at {s} s");
            last = o;
        }
        assert_eq!(last, -100_000_000);
    }
}
