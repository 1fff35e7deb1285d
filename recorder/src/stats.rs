//! The numbers an app shows: [`Statistics`] while recording (the status
//! line's), [`RecordingSummary`] at the end.

use node_catalog::kinds::mux::part_path;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use node_api::{metrics, NodeStats};
use runtime::graph::Graph;
use runtime::run::{LiveStats, RunReport};

/// A recording's figures at one moment, summed over the graph.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Statistics {
    /// Media time since the graph started.
    pub elapsed: Duration,
    /// `arming`, `running`, `stopping` or `finished`.
    pub phase: String,
    /// Video frames encoded (every video encoder).
    pub video_frames: u64,
    /// Audio samples encoded (per channel).
    pub audio_samples: u64,
    /// Frames encoded per second, on average.
    pub fps: f64,
    /// Dropped on purpose: full drop-oldest queues and nodes' own drops.
    pub dropped: u64,
    /// Sent but never received: never expected, always reported.
    pub lost: u64,
    /// Frames the app submitted that were refused.
    pub rejected: u64,
    /// Bits per second written to the file.
    pub bitrate_bps: f64,
    /// Audio minus video at the sync node (positive: sound late).
    pub av_offset_ms: Option<f64>,
    /// Bytes in the output file(s).
    pub bytes_written: u64,
    /// Per node, its own stats, as the runtime's status line reads them.
    pub nodes: BTreeMap<String, NodeStats>,
}

impl Statistics {
    /// The sums of `live` over the nodes of `graph`.
    pub fn of(live: &LiveStats, graph: &Graph) -> Statistics {
        let mut s = Statistics::from_nodes(&live.nodes, graph);
        s.elapsed = live.elapsed;
        s.phase = live.phase.to_string();
        let secs = live.elapsed.as_secs_f64();
        if secs > 0.0 {
            s.fps = s.video_frames as f64 / secs;
        }
        s
    }

    fn from_nodes(nodes: &BTreeMap<String, NodeStats>, graph: &Graph) -> Statistics {
        let mut s = Statistics {
            nodes: nodes.clone(),
            ..Statistics::default()
        };
        for node in &graph.nodes {
            let Some(n) = nodes.get(&node.id) else {
                continue;
            };
            let metric = |name: &str| n.metrics.get(name).copied();
            s.dropped += n.dropped();
            s.lost += n.inputs.values().map(|i| i.lost).sum::<u64>();
            s.rejected += metric(metrics::REJECTED).unwrap_or(0.0) as u64;
            match node.kind_name().as_str() {
                "video-encode" => s.video_frames += n.outputs.values().map(|o| o.sent).sum::<u64>(),
                "audio-encode" => {
                    s.audio_samples += metric(metrics::SAMPLES_IN).unwrap_or(0.0) as u64
                }
                "mux" => {
                    s.bitrate_bps += metric(metrics::BITRATE_BPS).unwrap_or(0.0);
                    s.bytes_written += metric(metrics::BYTES_WRITTEN).unwrap_or(0.0) as u64;
                }
                "sync" => s.av_offset_ms = s.av_offset_ms.or(metric(metrics::AV_OFFSET_MS)),
                _ => {}
            }
        }
        s
    }
}

/// Frames a node dropped, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Dropped {
    /// The node's id.
    pub node: String,
    /// How many.
    pub frames: u64,
    /// Why it dropped them.
    pub why: String,
}

/// A node that failed during the recording and was restarted: what its
/// consumers missed across the restarts is not in the file.
#[derive(Debug, Clone, PartialEq)]
pub struct Restarted {
    /// The node's id.
    pub node: String,
    /// How many times.
    pub times: u32,
    /// Frames (or audio blocks) lost across the restarts.
    pub lost_frames: u64,
    /// Why, for each restart, e.g. `killed by signal 11 (SIGSEGV)`.
    pub why: Vec<String>,
}

/// What a finished recording wrote.
#[derive(Debug, Clone)]
pub struct RecordingSummary {
    /// The file.
    pub path: PathBuf,
    /// Every file written, in order: `path`, then the numbered parts a
    /// split or a restarted mux went on in (`take-001.mp4`, ...).
    pub files: Vec<PathBuf>,
    /// From the first to the last timestamp written, any track.
    pub duration: Duration,
    /// Video frames in the file.
    pub video_frames: u64,
    /// Audio samples encoded (per channel).
    pub audio_samples: u64,
    /// Every drop, by node (empty: nothing was dropped).
    pub dropped: Vec<Dropped>,
    /// Every restart, by node (empty: no node failed).
    pub restarts: Vec<Restarted>,
    /// Frames the app submitted that were refused.
    pub rejected: u64,
    /// The sync node's last audio-minus-video offset.
    pub av_offset_ms: Option<f64>,
    /// Bytes.
    pub file_size: u64,
    /// The run's whole report (per node: frames, drops, restarts, exit).
    pub report: RunReport,
}

impl RecordingSummary {
    /// The summary of a run that recorded to `path`.
    pub fn of(report: RunReport, graph: &Graph, path: PathBuf) -> RecordingSummary {
        let nodes: BTreeMap<String, NodeStats> = report
            .nodes
            .iter()
            .filter_map(|(id, n)| Some((id.clone(), n.stats.clone()?)))
            .collect();
        let totals = Statistics::from_nodes(&nodes, graph);
        let duration_s = nodes
            .values()
            .filter_map(|n| n.metrics.get(metrics::DURATION_S))
            .fold(0.0_f64, |a, b| a.max(*b));
        let mut dropped = Vec::new();
        for (id, n) in &report.nodes {
            if n.dropped > 0 {
                dropped.push(Dropped {
                    node: id.clone(),
                    frames: n.dropped,
                    why: "it fell behind: its drop-oldest input queue was full, or it skipped frames under overload".into(),
                });
            }
        }
        let restarts = report
            .nodes
            .iter()
            .filter(|(_, n)| n.restarts > 0)
            .map(|(id, n)| Restarted {
                node: id.clone(),
                times: n.restarts,
                lost_frames: n.restart_lost_frames,
                why: n.restart_causes.clone(),
            })
            .collect();
        let files: Vec<PathBuf> = (0..)
            .map(|n| part_path(&path, n))
            .take_while(|p| p.exists())
            .collect();
        RecordingSummary {
            restarts,
            file_size: files
                .iter()
                .filter_map(|f| std::fs::metadata(f).ok())
                .map(|m| m.len())
                .sum(),
            files,
            path,
            duration: Duration::from_secs_f64(duration_s),
            video_frames: totals.video_frames,
            audio_samples: totals.audio_samples,
            dropped,
            rejected: totals.rejected,
            av_offset_ms: totals.av_offset_ms,
            report,
        }
    }
}
