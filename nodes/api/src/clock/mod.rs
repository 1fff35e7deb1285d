//! The capture clock: every capture stamps its frames with this clock.
//!
//! It is the host's `CLOCK_MONOTONIC` in nanoseconds: one clock shared by every
//! process of a machine, never stepped by NTP, so capture times of video and
//! audio taken in different node processes compare directly.
//!
//! Monotonic clocks of two machines are not comparable (each counts from its
//! own boot). In a graph spread over machines, the runtime of each machine
//! measures the offset of its clock to the run's reference machine over the
//! network ([`best_sample`]) and hands it to its nodes
//! ([`crate::NodeConfig::clock`]); [`now_ns`] adds it, so every capture
//! timestamp of the run is on the reference machine's clock. The runtime
//! goes on measuring during the run and follows the two clocks' rate
//! difference and slow drift with a model whose offset never jumps
//! ([`ClockModel`]).

use std::sync::RwLock;

mod model;
pub mod simulated;

pub use model::{ClockModel, MAX_SLEW_PPM, SETTLE_NS};

/// Maps the host clock onto the run's reference clock in [`now_ns`]: set at
/// node start, then replaced as the runtime follows the reference (a
/// graph spread over machines).
static MODEL: RwLock<ClockModel> = RwLock::new(ClockModel::constant(0));

/// Puts this process on the run's reference clock: `now_ns` becomes the host
/// clock plus `offset_ns`.
pub fn set_offset_ns(offset_ns: i64) {
    set_model(ClockModel::constant(offset_ns));
}

/// Puts this process on the run's reference clock by `model`. The runtime
/// makes each model it publishes continuous with the one before (see
/// [`ClockModel::slewed_towards`]), so capture times never jump: what is left
/// is the new rate's effect over the time the model took to arrive
/// (nanoseconds).
pub fn set_model(model: ClockModel) {
    *MODEL.write().unwrap_or_else(|e| e.into_inner()) = model;
}

/// The model [`now_ns`] applies.
pub fn model() -> ClockModel {
    *MODEL.read().unwrap_or_else(|e| e.into_inner())
}

/// The kernel's monotonic clock, ns.
fn raw_now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Nanoseconds of the host's monotonic clock, without the run's offset (in
/// a test simulating a fast or slow crystal, that host's skewed clock: see
/// [`simulated`]).
pub fn host_now_ns() -> u64 {
    let raw = raw_now_ns();
    match simulated::skew_ppm() {
        Some(ppm) => simulated::skewed(raw, ppm),
        None => raw,
    }
}

/// Nanoseconds of the capture clock: the host's monotonic clock moved onto
/// the run's reference clock (see the module docs).
pub fn now_ns() -> u64 {
    let host = host_now_ns();
    host.saturating_add_signed(model().offset_at(host))
}

/// One NTP-style exchange with the reference clock: `sent` and `received` on
/// our clock, the reference's clock when it got the request (`ref_received`)
/// and when it replied (`ref_sent`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockSample {
    pub sent: u64,
    pub ref_received: u64,
    pub ref_sent: u64,
    pub received: u64,
}

impl ClockSample {
    /// The network round trip (the reference's processing time taken out).
    pub fn rtt_ns(&self) -> u64 {
        let total = self.received.saturating_sub(self.sent);
        total.saturating_sub(self.ref_sent.saturating_sub(self.ref_received))
    }

    /// Reference clock minus ours, assuming both directions take as long.
    pub fn offset_ns(&self) -> i64 {
        let there = self.ref_received as i128 - self.sent as i128;
        let back = self.ref_sent as i128 - self.received as i128;
        ((there + back) / 2) as i64
    }
}

/// The sample with the shortest round trip: the one least disturbed by
/// queueing, whose offset is right within half its round trip. `None`
/// without samples.
pub fn best_sample(samples: &[ClockSample]) -> Option<&ClockSample> {
    samples.iter().min_by_key(|s| s.rtt_ns())
}

/// Sleeps until the monotonic clock reaches `deadline_ns` (no-op if past).
pub fn sleep_until_ns(deadline_ns: u64) {
    let now = now_ns();
    if deadline_ns > now {
        std::thread::sleep(std::time::Duration::from_nanos(deadline_ns - now));
    }
}

/// The imperfections of a real capture device, simulated by test sources so
/// the sync node can be exercised deterministically: the device's own clock
/// (its sample or frame count) running `clock_skew_ppm` fast or slow against
/// the capture clock, timestamps off by up to ±`jitter_ms`, and a dropout of
/// `dropout_ms` from `dropout_at` seconds on, during which frames are lost.
#[derive(Debug, Clone)]
pub struct SimulatedDevice {
    /// Device seconds per capture-clock second: 1 + skew × 1e-6.
    rate_factor: f64,
    jitter_ns: u64,
    /// Capture-clock span (ns from the first frame) whose frames are lost.
    dropout: Option<(u64, u64)>,
    rng: u64,
}

impl SimulatedDevice {
    /// From the test-source params `clock_skew_ppm`, `jitter_ms`,
    /// `dropout_at` (s) and `dropout_ms`; all absent: an ideal device.
    pub fn new(d: &node_catalog::kinds::common::TestDevice) -> SimulatedDevice {
        let ns = |ms: f64| (ms.max(0.0) * 1e6) as u64;
        let dropout_ms = ns(d.dropout_ms);
        SimulatedDevice {
            rate_factor: 1.0 + d.clock_skew_ppm * 1e-6,
            jitter_ns: ns(d.jitter_ms),
            dropout: d.dropout_at.filter(|_| dropout_ms > 0).map(|at| {
                let at = (at.max(0.0) * 1e9) as u64;
                (at, at + dropout_ms)
            }),
            // Fixed seed: every run produces the same jitter.
            rng: 0x9E37_79B9_7F4A_7C15,
        }
    }

    /// Whether the device's clock runs at the capture clock's rate.
    pub fn is_ideal_rate(&self) -> bool {
        self.rate_factor == 1.0
    }

    /// Device seconds per capture-clock second.
    pub fn rate_factor(&self) -> f64 {
        self.rate_factor
    }

    /// The capture-clock time (ns from the first frame) at which the device's
    /// own clock reads `device_ns`.
    pub fn true_ns(&self, device_ns: u64) -> u64 {
        if self.is_ideal_rate() {
            device_ns
        } else {
            (device_ns as f64 / self.rate_factor).round() as u64
        }
    }

    /// Whether a frame captured at `true_ns` (from the first frame) is lost.
    pub fn lost(&self, true_ns: u64) -> bool {
        self.dropout
            .is_some_and(|(from, to)| (from..to).contains(&true_ns))
    }

    /// `capture_ns` moved by the next timestamp error, uniform in ±jitter.
    pub fn stamp(&mut self, capture_ns: u64) -> u64 {
        if self.jitter_ns == 0 {
            return capture_ns;
        }
        // splitmix64: a deterministic, well-spread sequence.
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        let span = 2 * self.jitter_ns + 1;
        (capture_ns as i128 + (z % span) as i128 - self.jitter_ns as i128).max(0) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn device(params: serde_json::Value) -> SimulatedDevice {
        let params = serde_json::from_value(params).unwrap();
        let camera = node_catalog::kinds::camera::Settings::from_params(&params).unwrap();
        SimulatedDevice::new(&camera.test_device)
    }

    #[test]
    fn offset_from_the_shortest_round_trip() {
        // The reference clock is 3 s ahead; the second exchange was queued
        // 40 ms on the way back, which would skew its estimate by 20 ms.
        let ahead = 3_000_000_000u64;
        let sample = |sent: u64, out: u64, back: u64| ClockSample {
            sent,
            ref_received: sent + out + ahead,
            ref_sent: sent + out + ahead + 100_000,
            received: sent + out + 100_000 + back,
        };
        let samples = [
            sample(1_000_000, 300_000, 300_000),
            sample(2_000_000, 300_000, 40_300_000),
            sample(3_000_000, 200_000, 200_000),
        ];
        assert_eq!(samples[1].offset_ns(), 3_000_000_000 - 20_000_000);
        let best = best_sample(&samples).unwrap();
        let (offset, rtt) = (best.offset_ns(), best.rtt_ns());
        assert_eq!(offset, 3_000_000_000);
        assert_eq!(rtt, 400_000);
        assert_eq!(best_sample(&[]), None);
    }

    #[test]
    fn the_offset_moves_now() {
        // Only this test sets the offset in this test binary.
        let before = host_now_ns();
        set_offset_ns(-(before as i64) - 1_000_000_000_000);
        assert_eq!(now_ns(), 0, "saturates instead of wrapping");
        set_offset_ns(5_000_000_000);
        let now = now_ns();
        set_offset_ns(0);
        assert!(now >= before + 5_000_000_000 && now < before + 6_000_000_000);
    }

    #[test]
    fn ideal_by_default() {
        let mut d = device(json!({}));
        assert!(d.is_ideal_rate());
        assert_eq!(d.true_ns(123_456_789), 123_456_789);
        assert_eq!(d.stamp(5), 5);
        assert!(!d.lost(0));
    }

    #[test]
    fn skew_jitter_and_dropout() {
        let mut d = device(json!({
            "clock_skew_ppm": 500.0, "jitter_ms": 10.0, "dropout_at": 2.0, "dropout_ms": 500
        }));
        // A device 500 ppm fast reads 1.0005 s after one second of capture clock.
        assert_eq!(d.true_ns(1_000_500_000), 1_000_000_000);
        let stamps: Vec<i64> = (0..1000)
            .map(|_| d.stamp(1_000_000_000) as i64 - 1_000_000_000)
            .collect();
        assert!(stamps.iter().all(|e| e.abs() <= 10_000_000));
        assert!(stamps.iter().any(|e| *e > 8_000_000) && stamps.iter().any(|e| *e < -8_000_000));
        assert!(!d.lost(1_999_999_999) && d.lost(2_000_000_000) && d.lost(2_499_999_999));
        assert!(!d.lost(2_500_000_000));
        // The same params give the same jitter.
        let mut again = device(json!({ "jitter_ms": 10.0 }));
        let mut once = device(json!({ "jitter_ms": 10.0 }));
        assert_eq!(again.stamp(1 << 40), once.stamp(1 << 40));
    }
}
