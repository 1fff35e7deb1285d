//! The capture clock: every capture stamps its frames with this clock.
//!
//! It is the host's `CLOCK_MONOTONIC` in nanoseconds: one clock shared by every
//! process of a machine, never stepped by NTP, so capture times of video and
//! audio taken in different node processes compare directly.

/// Nanoseconds of the host's monotonic clock.
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
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
    pub fn from_params(p: &crate::Params) -> SimulatedDevice {
        let ms = |name| (p.f64_or(name, 0.0).max(0.0) * 1e6) as u64;
        let dropout_ms = ms("dropout_ms");
        SimulatedDevice {
            rate_factor: 1.0 + p.f64_or("clock_skew_ppm", 0.0) * 1e-6,
            jitter_ns: ms("jitter_ms"),
            dropout: p.f64("dropout_at").filter(|_| dropout_ms > 0).map(|at| {
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
        SimulatedDevice::from_params(&serde_json::from_value(params).unwrap())
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
