//! The `--report` JSON: the run's outcome and every node's final counters.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use node_api::NodeStats;
use serde::{Deserialize, Serialize};

use super::hang::HangWatch;
use super::process::{NodeState, Supervised};
use super::restarts;
use crate::graph::{Graph, LinkRole};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunReport {
    pub graph: String,
    pub file: String,
    pub run_id: String,
    pub run_dir: String,
    /// 0: every node ended cleanly; 1: a node failed.
    pub exit_code: i32,
    pub error: Option<String>,
    /// From `runtime run` until every node had armed (the end of the barrier).
    pub graph_start_ms: f64,
    /// Media time: from the end of the barrier to the end.
    pub duration_s: f64,
    pub nodes: BTreeMap<String, NodeReport>,
    /// `--machine`: the machine whose nodes this runtime ran.
    #[serde(default)]
    pub machine: Option<String>,
    /// This machine's clock against the run's reference clock (graphs spread
    /// over machines).
    #[serde(default)]
    pub clock: Option<ClockReport>,
    /// Machines whose runtime vanished while the run went on.
    #[serde(default)]
    pub lost_machines: Vec<MachineLoss>,
    /// The compressed links between machines (see `link:`).
    #[serde(default)]
    pub links: Vec<LinkReport>,
    /// Machines that vanished and came back within `--rejoin-timeout`.
    #[serde(default)]
    pub rejoined_machines: Vec<MachineRejoin>,
    /// CPU time as the report was written: this runtime's and its nodes'.
    #[serde(default)]
    pub cpu: Option<CpuReport>,
    #[serde(skip)]
    kinds: BTreeMap<String, String>,
    #[serde(skip)]
    graph_links: Vec<LinkEnds>,
}

/// CPU seconds (user + system) of the runtime and of what it ran.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct CpuReport {
    /// This runtime process, every thread (its own zenoh session, the
    /// supervisor, hang watch, logs).
    pub runtime_s: f64,
    /// Every process it started and reaped: the nodes of every incarnation
    /// (and a custom node's `--describe`). Minus the nodes' own last
    /// `cpu_phases.end`: what they used after their last stats (closing
    /// the session, exiting).
    pub children_s: f64,
}

impl CpuReport {
    pub fn now() -> CpuReport {
        CpuReport {
            runtime_s: rusage_seconds(libc::RUSAGE_SELF),
            children_s: rusage_seconds(libc::RUSAGE_CHILDREN),
        }
    }
}

fn rusage_seconds(who: libc::c_int) -> f64 {
    // SAFETY: getrusage fills the struct we own.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(who, &mut u) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// One compressed link: raw video from a node on one machine to another
/// machine, as its encoder and decoder counted it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LinkReport {
    #[serde(flatten)]
    pub ends: LinkEnds,
    /// Frames the encoder took in.
    pub frames: u64,
    /// Frames dropped before the link: the encoder (or the link under it)
    /// could not keep up, so its input queue let the oldest go.
    pub dropped: u64,
    /// Bytes of packets the encoder sent.
    pub bytes: u64,
    /// `bytes` over the run's media time.
    pub mbit_per_s: f64,
    /// Pictures the decoder sent on.
    pub pictures: u64,
    /// Packets sent but never received by the decoder.
    pub lost: u64,
}

/// A link's two ends and where they run, from the graph.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LinkEnds {
    /// The output whose frames crossed: `node/output`.
    pub from: String,
    pub from_machine: String,
    pub to_machine: String,
    pub codec: String,
    pub encoder: String,
    pub decoder: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeReport {
    pub kind: String,
    pub restarts: u32,
    /// Why each restart happened, in order (e.g. `killed by signal 11 (SIGSEGV)`).
    #[serde(default)]
    pub restart_causes: Vec<String>,
    /// Times the node stopped making progress (see `--hang-timeout`).
    #[serde(default)]
    pub hangs: u32,
    pub exit: Option<String>,
    pub failed: bool,
    pub frames_in: u64,
    pub frames_out: u64,
    pub dropped: u64,
    /// Messages sent to it that never arrived (gaps in its inputs' numbering).
    #[serde(default)]
    pub lost: u64,
    pub fps_out: f64,
    /// Media its consumers missed across its restarts (frames or audio
    /// blocks, and seconds): what the killed incarnation held plus what was
    /// sent while nobody listened.
    pub restart_lost_frames: u64,
    pub restart_lost_s: f64,
    /// Counters summed over every incarnation of the node.
    pub stats: Option<NodeStats>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClockReport {
    /// The machine whose clock every capture timestamp is on.
    pub reference: String,
    /// Reference clock minus this machine's before the nodes started (0 on
    /// the reference).
    pub offset_ms: f64,
    /// Round trip of that measurement: the offset is right within half of it.
    pub rtt_ms: f64,
    /// How much faster this machine's clock ran than the reference's, ppm,
    /// as last estimated during the run (`None` on the reference, or before
    /// there were measurements enough).
    #[serde(default)]
    pub rate_ppm: Option<f64>,
    /// How far the capture clock may have been off the reference at the
    /// end, ms (half the best recent round trip plus the scatter of the
    /// measurements about the fitted rate).
    #[serde(default)]
    pub uncertainty_ms: f64,
    /// The offset the nodes applied at the end, ms.
    #[serde(default)]
    pub end_offset_ms: f64,
    /// How far the applied offset moved during the run, following the
    /// reference, ms: what the capture times would be off by without.
    #[serde(default)]
    pub followed_ms: f64,
    /// The largest disagreement between the applied offset and a new
    /// estimate (slewed away, never stepped), ms.
    #[serde(default)]
    pub largest_correction_ms: f64,
    /// Measurements during the run, and those the reference did not answer.
    #[serde(default)]
    pub measurements: u64,
    #[serde(default)]
    pub unanswered: u64,
    /// Whether the nodes followed the estimates (`MEDIAGRAPH_CLOCK_FOLLOW=off`: no).
    #[serde(default)]
    pub following: bool,
}

impl ClockReport {
    /// For a machine whose clock is `reference`'s, measured at the start as
    /// `start`, and (not the reference) followed as `follow` says.
    pub(super) fn new(
        reference: &str,
        start: &super::clocks::ClockSync,
        follow: Option<&super::clocks::follow::FollowState>,
    ) -> ClockReport {
        let ms = |ns: i64| ns as f64 / 1e6;
        let mut report = ClockReport {
            reference: reference.to_string(),
            offset_ms: ms(start.offset_ns),
            rtt_ms: ms(start.rtt_ns as i64),
            rate_ppm: None,
            uncertainty_ms: ms(start.rtt_ns as i64) / 2.0,
            end_offset_ms: ms(start.offset_ns),
            followed_ms: 0.0,
            largest_correction_ms: 0.0,
            measurements: 0,
            unanswered: 0,
            following: false,
        };
        if let Some(f) = follow {
            let end = f.applied.offset_at(node_api::clock::host_now_ns());
            report.rate_ppm = f.fit.map(|fit| -fit.rate_ppm);
            report.uncertainty_ms = f.applied.uncertainty_ns as f64 / 1e6;
            report.end_offset_ms = ms(end);
            report.followed_ms = ms(end - start.offset_ns);
            report.largest_correction_ms = ms(f.largest_gap_ns);
            report.measurements = f.measurements;
            report.unanswered = f.unanswered;
            report.following = f.following;
        }
        report
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MachineLoss {
    pub machine: String,
    /// Its nodes whose outputs never ended (the runtime ended them).
    pub nodes: Vec<String>,
    /// Media time at which it vanished.
    pub lost_at_s: f64,
    /// Media time from then to the end of the run: what is missing from its streams.
    pub media_lost_s: f64,
    /// What this machine's nodes received from it before (input -> messages).
    pub received: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MachineRejoin {
    pub machine: String,
    /// Media time at which it vanished.
    pub gone_at_s: f64,
    /// How long it was away: its streams' gap (its sources go on on the
    /// common timeline when it is back; their consumers count the gap as a
    /// restarted sender's, `restart_gap_s`).
    pub gap_s: f64,
}

/// How one node's run ended, as the supervisor saw it.
pub struct NodeOutcome {
    pub id: String,
    pub restarts: u32,
    pub restart_causes: Vec<String>,
    pub hangs: u32,
    pub exit: Option<String>,
    pub failed: bool,
    pub restart_lost_frames: u64,
    pub restart_lost_s: f64,
}

impl RunReport {
    pub fn new(graph: &Graph, run_id: &str, run_dir: &Path) -> Self {
        RunReport {
            graph: graph.name.clone(),
            file: graph.file.display().to_string(),
            run_id: run_id.to_string(),
            run_dir: run_dir.display().to_string(),
            exit_code: 0,
            error: None,
            graph_start_ms: 0.0,
            duration_s: 0.0,
            nodes: BTreeMap::new(),
            machine: None,
            clock: None,
            lost_machines: Vec::new(),
            links: Vec::new(),
            graph_links: link_ends(graph),
            rejoined_machines: Vec::new(),
            cpu: None,
            kinds: graph
                .nodes
                .iter()
                .map(|n| (n.id.clone(), n.kind_name()))
                .collect(),
        }
    }

    pub(crate) fn finish(
        &mut self,
        stats: &BTreeMap<String, NodeStats>,
        nodes: Vec<NodeOutcome>,
        elapsed: Duration,
        failure: Option<String>,
    ) {
        self.duration_s = elapsed.as_secs_f64();
        for n in nodes {
            let s = stats.get(&n.id).cloned();
            let frames_in = s
                .as_ref()
                .map_or(0, |s| s.inputs.values().map(|i| i.received).sum());
            let frames_out = s
                .as_ref()
                .map_or(0, |s| s.outputs.values().map(|o| o.sent).sum());
            let dropped = s.as_ref().map_or(0, NodeStats::dropped);
            let lost = s
                .as_ref()
                .map_or(0, |s| s.inputs.values().map(|i| i.lost).sum());
            let kind = self.kind_of(&n.id);
            self.nodes.insert(
                n.id,
                NodeReport {
                    kind,
                    restarts: n.restarts,
                    restart_causes: n.restart_causes,
                    hangs: n.hangs,
                    exit: n.exit,
                    failed: n.failed,
                    restart_lost_frames: n.restart_lost_frames,
                    restart_lost_s: n.restart_lost_s,
                    frames_in,
                    frames_out,
                    dropped,
                    lost,
                    fps_out: if self.duration_s > 0.0 {
                        frames_out as f64 / self.duration_s
                    } else {
                        0.0
                    },
                    stats: s,
                },
            );
        }
        let failure = failure.or_else(|| no_drop_losses(stats));
        self.exit_code = if failure.is_some() { 1 } else { 0 };
        self.error = failure;
    }

    /// The links' figures, from the stats of every node heard (a link's
    /// encoder runs on another machine than its decoder); after `finish`.
    pub(crate) fn account_links(&mut self, heard: &BTreeMap<String, NodeStats>) {
        self.links = self
            .graph_links
            .iter()
            .map(|l| l.report(heard, self.duration_s))
            .collect();
        for l in &self.links {
            tracing::info!(
                "link {} ({} -> {}, {}): {:.1} Mbit/s, {} frames sent, {} dropped before the link, {} pictures out, {} lost",
                l.ends.from, l.ends.from_machine, l.ends.to_machine, l.ends.codec, l.mbit_per_s, l.frames, l.dropped, l.pictures, l.lost
            );
        }
    }

    fn kind_of(&self, id: &str) -> String {
        self.kinds.get(id).cloned().unwrap_or_default()
    }
}

/// Every link decoder of the graph, with its encoder's place.
fn link_ends(graph: &Graph) -> Vec<LinkEnds> {
    graph
        .nodes
        .iter()
        .filter_map(|n| {
            let l = n.link.as_ref().filter(|l| l.role == LinkRole::Decode)?;
            let encoder = graph.node(&l.encoder)?;
            Some(LinkEnds {
                from: l.from.clone(),
                from_machine: encoder.machine.clone().unwrap_or_default(),
                to_machine: n.machine.clone().unwrap_or_default(),
                codec: l.codec.clone(),
                encoder: l.encoder.clone(),
                decoder: n.id.clone(),
            })
        })
        .collect()
}

impl LinkEnds {
    fn report(&self, stats: &BTreeMap<String, NodeStats>, duration_s: f64) -> LinkReport {
        let enc = stats.get(&self.encoder);
        let dec = stats.get(&self.decoder);
        let input = enc.and_then(|s| s.inputs.get("video"));
        let bytes = enc.map_or(0, |s| s.outputs.values().map(|o| o.bytes).sum());
        LinkReport {
            ends: self.clone(),
            frames: input.map_or(0, |i| i.received),
            dropped: enc.map_or(0, NodeStats::dropped),
            bytes,
            mbit_per_s: if duration_s > 0.0 {
                bytes as f64 * 8.0 / duration_s / 1e6
            } else {
                0.0
            },
            pictures: dec.map_or(0, |s| s.outputs.values().map(|o| o.sent).sum()),
            lost: dec.map_or(0, |s| s.inputs.values().map(|i| i.lost).sum()),
        }
    }
}

/// Each supervised node's outcome, for [`RunReport::finish`]: its restarts
/// and what they lost (as its consumers measured it), its hangs, its exit.
pub(super) fn outcomes(
    graph: &Graph,
    nodes: &BTreeMap<String, Supervised>,
    hang: &HangWatch,
    stats: &BTreeMap<String, NodeStats>,
) -> Vec<NodeOutcome> {
    nodes
        .iter()
        .map(|(id, s)| {
            let def = &graph.nodes[s.index];
            let consumers: Vec<&crate::graph::NodeDef> = graph
                .nodes
                .iter()
                .filter(|n| n.inputs.iter().any(|i| i.source_node == *id))
                .collect();
            let (lost_frames, lost_s) = restarts::restart_loss(def, &consumers, stats);
            if s.restarts > 0 {
                tracing::warn!(
                    "node `{id}` was restarted {} time(s); {lost_frames} frames ({lost_s:.2} s of media) lost across the restarts",
                    s.restarts
                );
            }
            NodeOutcome {
                id: id.clone(),
                restarts: s.restarts,
                restart_causes: s.restart_causes.clone(),
                hangs: hang.count(id),
                exit: s.last_exit.clone(),
                failed: s.state == NodeState::Failed,
                restart_lost_frames: lost_frames,
                restart_lost_s: lost_s,
            }
        })
        .collect()
}

/// A stream that must arrive whole (a replay faster than real time) and lost
/// messages on the way fails the run, naming each edge.
fn no_drop_losses(stats: &BTreeMap<String, NodeStats>) -> Option<String> {
    let edges: Vec<String> = stats
        .iter()
        .flat_map(|(node, s)| s.inputs.iter().map(move |(input, i)| (node, input, i)))
        .filter(|(_, _, i)| i.no_drop && i.lost > 0)
        .map(|(node, input, i)| {
            format!(
                "node `{node}` input `{input}` lost {} messages of a no_drop stream: {}",
                i.lost,
                i.first_loss.as_deref().unwrap_or("no detail")
            )
        })
        .collect();
    (!edges.is_empty()).then(|| edges.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use node_api::InputStats;

    fn stats(no_drop: bool, lost: u64) -> BTreeMap<String, NodeStats> {
        let input = InputStats {
            lost,
            no_drop,
            first_loss: Some("messages 3..5 from `sync/audio` never arrived".into()),
            ..Default::default()
        };
        let node = NodeStats {
            inputs: [("audio".to_string(), input)].into(),
            ..Default::default()
        };
        [("audio-encode".to_string(), node)].into()
    }

    #[test]
    fn a_loss_in_a_no_drop_stream_fails_the_run_naming_the_edge() {
        let e = no_drop_losses(&stats(true, 3)).unwrap();
        assert!(
            e.contains("node `audio-encode` input `audio` lost 3"),
            "{e}"
        );
        assert!(e.contains("from `sync/audio`"), "{e}");
        assert_eq!(
            no_drop_losses(&stats(false, 3)),
            None,
            "live: reported, not fatal"
        );
        assert_eq!(no_drop_losses(&stats(true, 0)), None);
    }

    #[test]
    fn the_clock_report_says_how_fast_this_clock_ran_and_how_far_it_was_followed() {
        use super::super::clocks::{follow::FollowState, ClockSync};
        use node_api::clock::ClockModel;
        let start = ClockSync {
            offset_ns: -3_000_000_000,
            rtt_ns: 200_000,
            epoch_ns: 0,
            host_ns: 0,
        };
        let on_reference = ClockReport::new(
            "c",
            &ClockSync {
                offset_ns: 0,
                ..start
            },
            None,
        );
        assert_eq!(on_reference.rate_ppm, None);
        assert_eq!(on_reference.uncertainty_ms, 0.1);
        // This clock runs 500 ppm fast: the offset falls by 0.5 ms a second.
        let now = node_api::clock::host_now_ns();
        let state = FollowState {
            reference: "c".into(),
            start,
            applied: ClockModel {
                at_ns: now,
                offset_ns: -3_030_000_000,
                rate_ppm: -500.0,
                uncertainty_ns: 50_000,
                remote: true,
                ..ClockModel::constant(0)
            },
            fit: None,
            measurements: 30,
            unanswered: 1,
            largest_gap_ns: -2_000_000,
            following: true,
        };
        let r = ClockReport::new("c", &start, Some(&state));
        assert_eq!(r.rate_ppm, None, "no fit yet");
        assert!((r.followed_ms + 30.0).abs() < 0.1, "{r:?}");
        assert_eq!((r.uncertainty_ms, r.largest_correction_ms), (0.05, -2.0));
        assert_eq!((r.measurements, r.unanswered, r.following), (30, 1, true));
    }
}
