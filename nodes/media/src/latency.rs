//! Capture-to-output latency percentiles (mux, stream, hls) over a whole run, in fixed memory: a
//! log-linear histogram of microseconds (32 buckets per power of two, so a
//! percentile is within about 3% of the true value).

const SUB_BITS: u32 = 5;
const SUB: usize = 1 << SUB_BITS;
/// Exact buckets below 2 × SUB, then SUB buckets for each power of two up to 2^63.
const BUCKETS: usize = (64 - SUB_BITS as usize) * SUB + SUB;

#[derive(Clone)]
pub struct Latency {
    counts: Box<[u64; BUCKETS]>,
    total: u64,
}

fn bucket(us: u64) -> usize {
    if us < 2 * SUB as u64 {
        return us as usize;
    }
    let shift = 63 - us.leading_zeros() - SUB_BITS;
    shift as usize * SUB + (us >> shift) as usize
}

/// The middle of a bucket's range, µs.
fn bucket_value(index: usize) -> f64 {
    if index < 2 * SUB {
        return index as f64;
    }
    let shift = (index / SUB - 1) as u32;
    let low = ((index % SUB + SUB) as u64) << shift;
    low as f64 + ((1u64 << shift) - 1) as f64 / 2.0
}

impl Default for Latency {
    fn default() -> Self {
        Latency::new()
    }
}

impl Latency {
    pub fn new() -> Latency {
        Latency {
            counts: Box::new([0; BUCKETS]),
            total: 0,
        }
    }

    pub fn record_ns(&mut self, ns: u64) {
        self.counts[bucket(ns / 1000)] += 1;
        self.total += 1;
    }

    /// The `q` quantile (0..=1) in milliseconds; `None` before any sample.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(bucket_value(i) / 1000.0);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_ordered() {
        let mut last = 0;
        for us in (0..5_000u64).chain([1 << 20, (1 << 20) + 12_345, u64::MAX / 1000]) {
            let b = bucket(us);
            assert!(b >= last || us == 1 << 20, "{us}");
            assert!(b < BUCKETS);
            last = b;
            // The bucket's middle is within 3% of any value in it.
            let v = bucket_value(b);
            assert!(
                (v - us as f64).abs() <= us as f64 * 0.032 + 0.5,
                "{us} -> {v}"
            );
        }
        assert_eq!(bucket(64), 64);
        assert_eq!(bucket(127), 95);
        assert_eq!(bucket(128), 96);
    }

    #[test]
    fn percentiles() {
        let mut l = Latency::new();
        assert_eq!(l.quantile_ms(0.5), None);
        // 1..=100 ms, one sample each.
        for ms in 1..=100u64 {
            l.record_ns(ms * 1_000_000);
        }
        assert_eq!(l.total, 100);
        let p50 = l.quantile_ms(0.5).unwrap();
        let p99 = l.quantile_ms(0.99).unwrap();
        assert!((p50 - 50.0).abs() < 1.6, "{p50}");
        assert!((p99 - 99.0).abs() < 3.2, "{p99}");
        assert!(l.quantile_ms(1.0).unwrap() >= p99);
    }
}
