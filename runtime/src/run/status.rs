//! The live status line: per node, frames in/out, fps, drops, queue depth, and
//! the node's own figures (bitrate, A/V offset) — refreshed every half second.
//! The figures themselves ([`NodeFigures`]) are computed once per refresh and
//! also handed to whoever follows the run (an embedding app, the control
//! API), so the console and every viewer show the same numbers.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use node_api::{metrics, NodeStats};
use serde::Serialize;

use super::logs::Console;
use crate::graph::Graph;

/// One node's numbers on the status line.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NodeFigures {
    /// Messages received on all inputs.
    pub frames_in: u64,
    /// Messages sent on all outputs.
    pub frames_out: u64,
    /// Messages per second since the previous refresh: sent, or received
    /// for a node without outputs (a sink).
    pub fps: f64,
    /// The fullest input queue now, and its capacity (0 without inputs).
    pub queue_depth: u64,
    pub queue_capacity: u64,
    /// Dropped on purpose (full drop-oldest queues, the node's own drops).
    pub dropped: u64,
    /// Sent to it but never received (never expected).
    pub lost: u64,
    /// Times the runtime started it again (crash or hang).
    pub restarts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bitrate_bps: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub av_offset_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drift_ppm: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overloaded_pct: Option<f64>,
    /// A stream's link: 1 connected, 0 down.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connected: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reconnects: Option<f64>,
    /// Seconds of media an output did not send.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lost_s: Option<f64>,
    /// Seconds of media in an output's own queue.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_s: Option<f64>,
}

impl NodeFigures {
    /// The figures of `s`, its rate measured by `fps` (count, elapsed).
    fn of(s: &NodeStats, fps: impl FnOnce(u64) -> f64) -> NodeFigures {
        let frames_out: u64 = s.outputs.values().map(|o| o.sent).sum();
        let frames_in: u64 = s.inputs.values().map(|i| i.received).sum();
        let count = if s.outputs.is_empty() {
            frames_in
        } else {
            frames_out
        };
        let metric = |name: &str| s.metrics.get(name).copied();
        NodeFigures {
            frames_in,
            frames_out,
            fps: fps(count),
            queue_depth: s.inputs.values().map(|i| i.queue_depth).max().unwrap_or(0),
            queue_capacity: s
                .inputs
                .values()
                .map(|i| i.queue_capacity)
                .max()
                .unwrap_or(0),
            dropped: s.dropped(),
            lost: s.inputs.values().map(|i| i.lost).sum(),
            restarts: 0,
            bitrate_bps: metric(metrics::BITRATE_BPS),
            av_offset_ms: metric(metrics::AV_OFFSET_MS),
            drift_ppm: metric(metrics::DRIFT_PPM),
            overloaded_pct: metric(metrics::OVERLOADED_PCT),
            connected: metric(metrics::CONNECTED),
            reconnects: metric(metrics::RECONNECTS),
            lost_s: metric(metrics::LOST_S),
            queue_s: metric(metrics::QUEUE_S),
        }
    }

    /// The status line's part for node `id`.
    fn line(&self, id: &str) -> String {
        let mut p = format!(
            "{id} in {} out {} {:.1}/s",
            self.frames_in, self.frames_out, self.fps
        );
        if self.queue_capacity > 0 {
            p += &format!(" q {}/{}", self.queue_depth, self.queue_capacity);
        }
        if self.dropped > 0 {
            p += &format!(" drop {}", self.dropped);
        }
        if self.lost > 0 {
            p += &format!(" LOST {}", self.lost);
        }
        if let Some(b) = self.bitrate_bps {
            p += &format!(" {:.0} kb/s", b / 1000.0);
        }
        if let Some(o) = self.av_offset_ms {
            p += &format!(" A/V {o:+.1} ms");
        }
        if let Some(d) = self.drift_ppm.filter(|v| v.abs() >= 1.0) {
            p += &format!(" drift {d:+.0} ppm");
        }
        if let Some(o) = self.overloaded_pct.filter(|v| *v > 0.0) {
            p += &format!(" OVERLOADED {o:.0}% skipped");
        }
        p + &self.output_part()
    }

    /// An output's link (stream, hls): down, reconnections, media not sent,
    /// a queue that grows.
    fn output_part(&self) -> String {
        let mut p = String::new();
        if self.connected == Some(0.0) && self.frames_in > 0 {
            p += " DOWN";
        }
        if let Some(n) = self.reconnects.filter(|n| *n > 0.0) {
            p += &format!(" reconnects {n:.0}");
        }
        if let Some(s) = self.lost_s.filter(|s| *s > 0.0) {
            p += &format!(" unsent {s:.1} s");
        }
        if let Some(s) = self.queue_s.filter(|s| *s >= 0.5) {
            p += &format!(" queued {s:.1} s");
        }
        p
    }
}

pub struct StatusLine {
    enabled: bool,
    /// Per node, its count and the time at the previous refresh (its rate).
    previous: HashMap<String, (u64, Duration)>,
    last_printed: Option<Duration>,
    /// Per node, a mark shown after its figures (` HUNG 3.2s`).
    flags: HashMap<String, String>,
    /// How this machine's clock follows the reference's, shown first.
    clock: Option<String>,
}

impl StatusLine {
    pub fn new(enabled: bool) -> Self {
        StatusLine {
            enabled,
            previous: HashMap::new(),
            last_printed: None,
            flags: HashMap::new(),
            clock: None,
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

    /// The clock's part of the line until the next call (a graph spread
    /// over machines, on a machine following the reference's clock).
    pub fn set_clock(&mut self, clock: Option<String>) {
        self.clock = clock;
    }

    /// Every node's figures now (rates since the previous call), with its
    /// `restarts`. Computed whether or not the line is shown.
    pub fn figures(
        &mut self,
        stats: &HashMap<String, NodeStats>,
        elapsed: Duration,
        restarts: impl Fn(&str) -> u32,
    ) -> BTreeMap<String, NodeFigures> {
        let mut out = BTreeMap::new();
        for (id, s) in stats {
            let fps = |count: u64| match self.previous.insert(id.clone(), (count, elapsed)) {
                Some((c, t)) if elapsed > t => {
                    (count.saturating_sub(c)) as f64 / (elapsed - t).as_secs_f64()
                }
                _ => 0.0,
            };
            let mut f = NodeFigures::of(s, fps);
            f.restarts = restarts(id);
            out.insert(id.clone(), f);
        }
        out
    }

    /// Shows the line (in the graph's order), when enabled.
    pub fn update(
        &mut self,
        graph: &Graph,
        figures: &BTreeMap<String, NodeFigures>,
        elapsed: Duration,
        console: &Console,
    ) {
        if !self.enabled {
            return;
        }
        let parts: Vec<String> = self
            .clock
            .iter()
            .cloned()
            .chain(graph.nodes.iter().filter_map(|node| {
                let mut p = figures.get(&node.id)?.line(&node.id);
                if let Some(flag) = self.flags.get(&node.id) {
                    p += flag;
                }
                Some(p)
            }))
            .collect();
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
