//! A host clock whose crystal runs fast or slow, for tests of a graph spread
//! over machines: with [`SKEW_ENV`] set to N, every process that reads it
//! (the runtime measuring its clock against the reference, and every node)
//! sees `CLOCK_MONOTONIC` run N ppm fast, as on a machine with a fast
//! crystal. The world the cameras film keeps the physical time, which test
//! sources show through [`error_ns`].

use std::sync::OnceLock;

/// The simulated rate error of this host's clock, ppm (positive: fast).
pub const SKEW_ENV: &str = "MEDIAGRAPH_SIMULATED_CLOCK_PPM";

/// The simulated rate error, when this is a simulation.
pub fn skew_ppm() -> Option<f64> {
    static SKEW: OnceLock<Option<f64>> = OnceLock::new();
    *SKEW.get_or_init(|| {
        let text = std::env::var(SKEW_ENV).ok()?;
        match text.trim().parse::<f64>() {
            Ok(ppm) if ppm.abs() < 100_000.0 => Some(ppm),
            _ => {
                tracing::warn!("{SKEW_ENV}={text} is no rate in ppm: ignored");
                None
            }
        }
    })
}

/// The host clock read as a crystal `ppm` fast would: every process of the
/// host agrees, since it only depends on the kernel's clock.
pub fn skewed(raw_ns: u64, ppm: f64) -> u64 {
    raw_ns.saturating_add_signed((raw_ns as f64 * ppm * 1e-6).round() as i64)
}

/// The physical time: the kernel's monotonic clock outside this host's time
/// namespace (the simulated machines differ by a time namespace's shift;
/// the reference machine of a simulated rig has none), ns.
fn physical_ns(raw_ns: u64) -> u64 {
    static SHIFT: OnceLock<i64> = OnceLock::new();
    let shift = *SHIFT.get_or_init(|| {
        std::fs::read_to_string("/proc/self/timens_offsets")
            .ok()
            .and_then(|text| monotonic_shift_ns(&text))
            .unwrap_or(0)
    });
    raw_ns.saturating_add_signed(-shift)
}

/// The monotonic line of `/proc/self/timens_offsets` (`monotonic S NS`).
fn monotonic_shift_ns(text: &str) -> Option<i64> {
    let line = text.lines().find(|l| l.starts_with("monotonic"))?;
    let mut parts = line.split_whitespace().skip(1);
    let secs: i64 = parts.next()?.parse().ok()?;
    let nanos: i64 = parts.next()?.parse().ok()?;
    Some(secs * 1_000_000_000 + nanos)
}

/// In a simulation, how far the capture clock ([`super::now_ns`]) is ahead of
/// the physical time now (what a clock that follows the reference machine
/// well keeps near 0); `None` otherwise. Test sources put the events they
/// film (the clapper's flashes) on the physical time, so a capture clock
/// that is off shows in the media as it would with a real camera.
pub fn error_ns() -> Option<i64> {
    let ppm = skew_ppm()?;
    let raw = super::raw_now_ns();
    let host = skewed(raw, ppm);
    let now = host.saturating_add_signed(super::model().offset_at(host));
    Some(now as i64 - physical_ns(raw) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fast_crystal_gains_its_ppm() {
        let t = 1_000_000_000_000u64;
        assert_eq!(skewed(t, 0.0), t);
        // 60 s later a clock 500 ppm fast has gained 30 ms.
        let later = t + 60_000_000_000;
        assert_eq!(
            skewed(later, 500.0) - skewed(t, 500.0),
            60_000_000_000 + 30_000_000
        );
        assert!(skewed(t, -50.0) < t);
    }

    #[test]
    fn reads_the_time_namespace_shift() {
        let text = "monotonic           3         0\nboottime            0         0\n";
        assert_eq!(monotonic_shift_ns(text), Some(3_000_000_000));
        assert_eq!(monotonic_shift_ns("boottime 0 0\n"), None);
    }
}
