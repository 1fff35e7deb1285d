//! The offset of this machine's clock to the reference's, and the rate it
//! moves at, from the round trips of the last couple of minutes: a
//! Theil–Sen line (the median of the pairwise slopes), which a few samples
//! queued on a busy network do not bend the way they would a least-squares fit.

/// One measurement: the best of a burst of round trips.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Our clock halfway through the round trip, ns.
    pub host_ns: u64,
    /// Reference minus our clock, ns.
    pub offset_ns: i64,
    pub rtt_ns: u64,
}

/// What the points say.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fit {
    /// The offset at the instant asked for, ns.
    pub offset_ns: i64,
    /// How fast the offset grows per host second, ppm (negative: our clock
    /// runs fast).
    pub rate_ppm: f64,
    /// Half the shortest round trip among the points plus their median
    /// distance to the line: how far the offset may be off.
    pub uncertainty_ns: u64,
}

/// Pairs closer in time than this say little about the rate (their
/// offsets' errors divided by a short time) and are left out.
const MIN_PAIR_SPAN_NS: u64 = 1_000_000_000;

/// The line through `points` at `at_ns`; `None` until they span enough time
/// for a rate (three points, two pairs at least [`MIN_PAIR_SPAN_NS`] apart).
/// Points whose round trip is over three times the median are left out
/// first: queued, their offset is off by up to half of it.
pub fn fit(points: &[Point], at_ns: u64) -> Option<Fit> {
    let mut rtts: Vec<u64> = points.iter().map(|p| p.rtt_ns).collect();
    rtts.sort_unstable();
    let median_rtt = *rtts.get(rtts.len() / 2)?;
    let good: Vec<&Point> = points
        .iter()
        .filter(|p| p.rtt_ns <= median_rtt.saturating_mul(3).max(1_000_000))
        .collect();
    if good.len() < 3 {
        return None;
    }
    let mut slopes = Vec::new();
    for (i, a) in good.iter().enumerate() {
        for b in &good[i + 1..] {
            let dt = b.host_ns as f64 - a.host_ns as f64;
            if dt.abs() >= MIN_PAIR_SPAN_NS as f64 {
                slopes.push((b.offset_ns - a.offset_ns) as f64 / dt);
            }
        }
    }
    if slopes.len() < 2 {
        return None;
    }
    let slope = median(&mut slopes);
    let at = |p: &Point| p.offset_ns as f64 + slope * (at_ns as f64 - p.host_ns as f64);
    let mut intercepts: Vec<f64> = good.iter().map(|p| at(p)).collect();
    let offset = median(&mut intercepts);
    let mut residuals: Vec<f64> = good.iter().map(|p| (at(p) - offset).abs()).collect();
    let scatter = median(&mut residuals);
    let best_rtt = good.iter().map(|p| p.rtt_ns).min().unwrap_or(0);
    Some(Fit {
        offset_ns: offset.round() as i64,
        rate_ppm: slope * 1e6,
        uncertainty_ns: best_rtt / 2 + scatter.round() as u64,
    })
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    /// A clock `ppm` fast, 3 s behind the reference at host time 0, its
    /// points every 2 s with a 200 µs round trip.
    fn points(ppm: f64, n: u64) -> Vec<Point> {
        (0..n)
            .map(|i| {
                let host_ns = 100 * S + i * 2 * S;
                Point {
                    host_ns,
                    offset_ns: 3_000_000_000 - (host_ns as f64 * ppm * 1e-6) as i64,
                    rtt_ns: 200_000,
                }
            })
            .collect()
    }

    #[test]
    fn finds_the_rate_and_the_offset_now() {
        let p = points(500.0, 30);
        let f = fit(&p, 200 * S).unwrap();
        assert!((f.rate_ppm + 500.0).abs() < 0.01, "{f:?}");
        assert!(
            (f.offset_ns - (3_000_000_000 - 100_000_000)).abs() <= 2,
            "{f:?}"
        );
        assert!(f.uncertainty_ns >= 100_000 && f.uncertainty_ns < 100_010);
    }

    #[test]
    fn queued_samples_do_not_bend_the_line() {
        let mut p = points(50.0, 30);
        // A quarter of them queued on the way back by up to 20 ms.
        for (i, q) in p.iter_mut().enumerate().filter(|(i, _)| i % 4 == 1) {
            let queued = 2_000_000 + i as u64 * 600_000;
            q.offset_ns -= (queued / 2) as i64;
            q.rtt_ns += queued;
        }
        // and a few by less than three times the usual round trip, kept.
        p[2].offset_ns -= 150_000;
        p[2].rtt_ns += 300_000;
        let f = fit(&p, 160 * S).unwrap();
        assert!((f.rate_ppm + 50.0).abs() < 0.5, "{f:?}");
        let truth = 3_000_000_000 - (160.0 * 50.0 * 1e3) as i64;
        assert!((f.offset_ns - truth).abs() < 20_000, "{f:?}");
    }

    #[test]
    fn no_rate_from_too_little() {
        assert_eq!(fit(&[], 0), None);
        assert_eq!(fit(&points(10.0, 2), 0), None);
        let close: Vec<Point> = (0..5)
            .map(|i| Point {
                host_ns: i * 100_000_000,
                offset_ns: 0,
                rtt_ns: 1,
            })
            .collect();
        assert_eq!(fit(&close, 0), None);
    }
}
