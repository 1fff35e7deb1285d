//! Telling when the encoder falls behind its input, and what to do about it.
//!
//! The encoder's input queue drops its oldest raw frame when full (encoded
//! packets are never dropped). Once a second the share of frames skipped that
//! way is published as `overloaded_pct` (shown by the runtime's status line)
//! and, when above zero, logged as "encoding overloaded" at most every 5 s.
//!
//! With `degrade: true`, a queue that stays full (more than half of the
//! samples at capacity) or any skipped frame in two consecutive seconds makes
//! the encoder switch to the next faster preset; ten calm seconds (queue at
//! most one deep, nothing skipped) switch it one step back. Switches are at
//! least 3 s apart. Lossless input (a replay) keeps queues full by design:
//! that is not overload.

use std::time::{Duration, Instant};

use node_api::InputStats;

const WINDOW: Duration = Duration::from_secs(1);
const SAMPLE_EVERY: Duration = Duration::from_millis(50);
const WARN_EVERY: Duration = Duration::from_secs(5);
const MIN_BETWEEN_SWITCHES: Duration = Duration::from_secs(3);
const WINDOWS_TO_DEGRADE: u32 = 2;
const WINDOWS_TO_RECOVER: u32 = 10;

/// What the encoder should do after a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Advice {
    Keep,
    Faster,
    Slower,
}

/// One closed window's figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    /// Share of the frames that arrived which were skipped, percent.
    pub skipped_pct: f64,
    pub skipped: u64,
    pub arrived: u64,
    /// Share of the queue samples taken at (or one below) capacity.
    pub full_share: f64,
    pub max_depth: u64,
    pub capacity: u64,
}

pub struct Monitor {
    window_start: Instant,
    last_sample: Option<Instant>,
    base: Option<(u64, u64)>,
    samples: u32,
    full_samples: u32,
    max_depth: u64,
    capacity: u64,
    hot_windows: u32,
    calm_windows: u32,
    last_switch: Instant,
    last_warning: Option<Instant>,
}

impl Monitor {
    pub fn new(now: Instant) -> Monitor {
        Monitor {
            window_start: now,
            last_sample: None,
            base: None,
            samples: 0,
            full_samples: 0,
            max_depth: 0,
            capacity: 0,
            hot_windows: 0,
            calm_windows: 0,
            last_switch: now,
            last_warning: None,
        }
    }

    /// Whether a queue sample is due (taking one costs a stats snapshot).
    pub fn wants_sample(&self, now: Instant) -> bool {
        self.last_sample
            .is_none_or(|t| now.duration_since(t) >= SAMPLE_EVERY)
    }

    /// Takes one sample of the input queue; at the end of a window returns
    /// its figures and the advice (always `Keep` when `degrade` is off).
    pub fn sample(
        &mut self,
        input: &InputStats,
        now: Instant,
        degrade: bool,
        degraded: bool,
    ) -> Option<(Window, Advice)> {
        self.last_sample = Some(now);
        let base = *self.base.get_or_insert((input.received, input.dropped));
        self.samples += 1;
        self.capacity = input.queue_capacity;
        self.max_depth = self.max_depth.max(input.queue_depth);
        if input.queue_capacity >= 2 && input.queue_depth + 1 >= input.queue_capacity {
            self.full_samples += 1;
        }
        if now.duration_since(self.window_start) < WINDOW {
            return None;
        }
        let arrived = input.received.saturating_sub(base.0);
        let skipped = input.dropped.saturating_sub(base.1);
        let window = Window {
            skipped_pct: if arrived > 0 {
                100.0 * skipped as f64 / arrived as f64
            } else {
                0.0
            },
            skipped,
            arrived,
            full_share: self.full_samples as f64 / self.samples.max(1) as f64,
            max_depth: self.max_depth,
            capacity: self.capacity,
        };
        self.window_start = now;
        self.base = Some((input.received, input.dropped));
        self.samples = 0;
        self.full_samples = 0;
        self.max_depth = 0;

        let hot = window.skipped > 0 || window.full_share > 0.5;
        let calm = window.skipped == 0 && window.max_depth <= 1;
        self.hot_windows = if hot { self.hot_windows + 1 } else { 0 };
        self.calm_windows = if calm { self.calm_windows + 1 } else { 0 };
        let may_switch = now.duration_since(self.last_switch) >= MIN_BETWEEN_SWITCHES;
        let advice = if !degrade || !may_switch {
            Advice::Keep
        } else if self.hot_windows >= WINDOWS_TO_DEGRADE {
            Advice::Faster
        } else if degraded && self.calm_windows >= WINDOWS_TO_RECOVER {
            Advice::Slower
        } else {
            Advice::Keep
        };
        Some((window, advice))
    }

    /// Records that the encoder switched (so the next switch waits).
    pub fn switched(&mut self, now: Instant) {
        self.last_switch = now;
        self.hot_windows = 0;
        self.calm_windows = 0;
    }

    /// Whether an "encoding overloaded" warning is due now.
    pub fn warning_due(&mut self, now: Instant) -> bool {
        if self
            .last_warning
            .is_some_and(|t| now.duration_since(t) < WARN_EVERY)
        {
            return false;
        }
        self.last_warning = Some(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(received: u64, dropped: u64, depth: u64) -> InputStats {
        InputStats {
            received,
            dropped,
            queue_depth: depth,
            queue_capacity: 4,
            ..Default::default()
        }
    }

    /// Feeds `secs` one-second windows of 20 samples each.
    fn run(
        m: &mut Monitor,
        t: &mut Instant,
        secs: u32,
        per_window: (u64, u64, u64),
        counters: &mut (u64, u64),
        degraded: bool,
    ) -> Vec<(Window, Advice)> {
        let mut out = Vec::new();
        for _ in 0..secs {
            for i in 0..20 {
                *t += Duration::from_millis(50);
                if i == 19 {
                    counters.0 += per_window.0;
                    counters.1 += per_window.1;
                }
                if let Some(w) = m.sample(
                    &input(counters.0, counters.1, per_window.2),
                    *t,
                    true,
                    degraded,
                ) {
                    out.push(w);
                }
            }
        }
        out
    }

    #[test]
    fn skipped_share_and_degrade_after_two_hot_seconds_then_recover() {
        let mut t = Instant::now();
        let mut m = Monitor::new(t);
        let mut c = (0, 0);
        // Calm start: nothing to do.
        let w = run(&mut m, &mut t, 4, (30, 0, 0), &mut c, false);
        assert!(w
            .iter()
            .all(|(w, a)| *a == Advice::Keep && w.skipped_pct == 0.0));
        // 10 of 40 frames skipped per second with a full queue.
        let w = run(&mut m, &mut t, 2, (40, 10, 4), &mut c, false);
        assert!((w[0].0.skipped_pct - 25.0).abs() < 1e-9, "{w:?}");
        assert_eq!(w[1].1, Advice::Faster);
        m.switched(t);
        // Still hot, but a switch needs 3 s since the last one.
        let w = run(&mut m, &mut t, 3, (40, 10, 4), &mut c, true);
        assert_eq!(
            w.iter().map(|w| w.1).collect::<Vec<_>>(),
            [Advice::Keep, Advice::Keep, Advice::Faster]
        );
        m.switched(t);
        // Ten calm seconds bring one step back.
        let w = run(&mut m, &mut t, 10, (30, 0, 1), &mut c, true);
        assert_eq!(w.last().unwrap().1, Advice::Slower);
        assert!(w[..9].iter().all(|w| w.1 == Advice::Keep));
    }
}
