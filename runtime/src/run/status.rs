//! The live status line: per node, frames in/out, fps, drops, queue depth, and
//! the node's own figures (bitrate, A/V offset) — refreshed every half second.

use std::collections::HashMap;
use std::time::Duration;

use node_api::{metrics, NodeStats};

use super::logs::Console;
use crate::graph::Graph;

pub struct StatusLine {
    enabled: bool,
    previous: HashMap<String, (u64, Duration)>,
    last_printed: Option<Duration>,
    /// Per node, a mark shown after its figures (` HUNG 3.2s`).
    flags: HashMap<String, String>,
}

impl StatusLine {
    pub fn new(enabled: bool) -> Self {
        StatusLine {
            enabled,
            previous: HashMap::new(),
            last_printed: None,
            flags: HashMap::new(),
        }
    }

    /// Whether `node` has a mark now.
    pub fn has_flag(&self, node: &str) -> bool {
        self.flags.contains_key(node)
    }

    /// Marks shown after the figures of these nodes until the next call.
    pub fn set_flags(&mut self, flags: HashMap<String, String>) {
        self.flags = flags;
    }

    pub fn update(
        &mut self,
        graph: &Graph,
        stats: &HashMap<String, NodeStats>,
        elapsed: Duration,
        console: &Console,
    ) {
        if !self.enabled {
            return;
        }
        let mut parts = Vec::new();
        for node in &graph.nodes {
            let Some(s) = stats.get(&node.id) else {
                continue;
            };
            let out: u64 = s.outputs.values().map(|o| o.sent).sum();
            let inn: u64 = s.inputs.values().map(|i| i.received).sum();
            let dropped = s.dropped();
            let lost: u64 = s.inputs.values().map(|i| i.lost).sum();
            let depth = s.inputs.values().map(|i| i.queue_depth).max().unwrap_or(0);
            let cap = s
                .inputs
                .values()
                .map(|i| i.queue_capacity)
                .max()
                .unwrap_or(0);
            let count = if s.outputs.is_empty() { inn } else { out };
            let fps = match self.previous.insert(node.id.clone(), (count, elapsed)) {
                Some((c, t)) if elapsed > t => {
                    (count.saturating_sub(c)) as f64 / (elapsed - t).as_secs_f64()
                }
                _ => 0.0,
            };
            let mut p = format!("{} in {inn} out {out} {fps:.1}/s", node.id);
            if cap > 0 {
                p += &format!(" q {depth}/{cap}");
            }
            if dropped > 0 {
                p += &format!(" drop {dropped}");
            }
            if lost > 0 {
                p += &format!(" LOST {lost}");
            }
            if let Some(b) = s.metrics.get(metrics::BITRATE_BPS) {
                p += &format!(" {:.0} kb/s", b / 1000.0);
            }
            if let Some(o) = s.metrics.get(metrics::AV_OFFSET_MS) {
                p += &format!(" A/V {o:+.1} ms");
            }
            if let Some(d) = s.metrics.get(metrics::DRIFT_PPM).filter(|v| v.abs() >= 1.0) {
                p += &format!(" drift {d:+.0} ppm");
            }
            if let Some(o) = s.metrics.get(metrics::OVERLOADED_PCT).filter(|v| **v > 0.0) {
                p += &format!(" OVERLOADED {o:.0}% skipped");
            }
            if let Some(flag) = self.flags.get(&node.id) {
                p += flag;
            }
            parts.push(p);
        }
        if parts.is_empty() {
            return;
        }
        // Off a terminal (CI logs), one line every five seconds is plenty.
        if !console.is_tty() {
            if let Some(t) = self.last_printed {
                if elapsed < t + Duration::from_secs(5) {
                    return;
                }
            }
        }
        self.last_printed = Some(elapsed);
        let secs = elapsed.as_secs();
        console.status(&format!(
            "[{:02}:{:02}] {}",
            secs / 60,
            secs % 60,
            parts.join(" | ")
        ));
    }
}
