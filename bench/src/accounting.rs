//! Where our graph's extra CPU against one ffmpeg process goes, per cause,
//! from our runs' `--report` (each node's `cpu_phases` and `cpu_threads`,
//! the runtime's `cpu`) and the CPU measured from outside.
//!
//! Every line is a difference of figures the processes measured of
//! themselves, so the lines of one run add up to ours − ffmpeg exactly,
//! but for the runtime's own exit after its report. Over runs each line is
//! a median, and medians do not add up: the last line takes the rest.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::median;
use crate::procs::run_measured;

/// Kinds doing work that ffmpeg does too in a transcode: reading and
/// decoding, encoding, writing. The others (normalize, sync, ...) are
/// steps ffmpeg does not have: their whole cost is the graph's.
const MEDIA_KINDS: &[&str] = &[
    "camera",
    "microphone",
    "video-decode",
    "video-encode",
    "audio-encode",
    "mux",
    "stream",
    "hls",
    "replay-buffer",
];

/// The points of `cpu_phases`, in the order a node reaches them.
const PHASES: [&str; 6] = [
    "entry",
    "armed",
    "started",
    "first_message",
    "end_of_stream",
    "end",
];

/// One node's CPU, from the report.
#[derive(Debug, Clone, Default)]
struct NodeCpu {
    id: String,
    kind: String,
    frames_in: u64,
    /// Process CPU seconds at each of [`PHASES`]; one not reached takes the
    /// next one's (nothing happened in between).
    at: [f64; 6],
    threads: BTreeMap<String, f64>,
}

impl NodeCpu {
    fn from_report(id: &str, n: &Value) -> NodeCpu {
        let stats = &n["stats"];
        let mut at = [0.0; 6];
        let mut next = stats["cpu_seconds"].as_f64().unwrap_or(0.0);
        for i in (0..PHASES.len()).rev() {
            if let Some(v) = stats["cpu_phases"][PHASES[i]].as_f64() {
                next = v;
            }
            at[i] = next;
        }
        let threads = stats["cpu_threads"]
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(g, v)| Some((g.clone(), v.as_f64()?)))
            .collect();
        NodeCpu {
            id: id.to_string(),
            kind: n["kind"].as_str().unwrap_or_default().to_string(),
            frames_in: n["frames_in"].as_u64().unwrap_or(0),
            at,
            threads,
        }
    }

    fn phase(&self, i: usize) -> f64 {
        self.at[i] - if i == 0 { 0.0 } else { self.at[i - 1] }
    }

    fn media(&self) -> bool {
        MEDIA_KINDS.contains(&self.kind.as_str())
    }

    /// A group's seconds between first message and end of stream. Without a
    /// split (the node never sent its last stats) the window counts as main.
    fn group(&self, g: &str) -> f64 {
        if self.threads.is_empty() {
            return if g == "main" { self.phase(4) } else { 0.0 };
        }
        self.threads.get(g).copied().unwrap_or(0.0)
    }
}

/// One of our runs, accounted: seconds per cause, ours alone.
#[derive(Debug, Clone, Default, PartialEq)]
struct Ours {
    total: f64,
    processes: usize,
    startup: f64,
    setup: f64,
    barrier: f64,
    fill: f64,
    zenoh: f64,
    node_api: f64,
    /// Plumbing nodes (not [`MEDIA_KINDS`]), every thread of their window.
    plumbing: f64,
    plumbing_messages: u64,
    messages: u64,
    /// Media nodes' main and other threads over their window.
    media_main: f64,
    media_workers: f64,
    tail: f64,
    tail_by_node: Vec<(String, f64)>,
    after_stats: f64,
    runtime: f64,
}

fn account(report: &Value, total: f64) -> Ours {
    let nodes: Vec<NodeCpu> = report["nodes"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(id, n)| NodeCpu::from_report(id, n))
        .collect();
    let sum = |f: &dyn Fn(&NodeCpu) -> f64| nodes.iter().map(f).sum::<f64>();
    let media = |n: &NodeCpu| n.media();
    let ends = sum(&|n| n.at[5]);
    let mut tail_by_node: Vec<(String, f64)> =
        nodes.iter().map(|n| (n.id.clone(), n.phase(5))).collect();
    tail_by_node.sort_by(|a, b| b.1.total_cmp(&a.1));
    Ours {
        total,
        processes: nodes.len(),
        startup: sum(&|n| n.phase(0)),
        setup: sum(&|n| n.phase(1)),
        barrier: sum(&|n| n.phase(2)),
        fill: sum(&|n| n.phase(3)),
        zenoh: sum(&|n| n.group("zenoh")),
        node_api: sum(&|n| n.group("node_api")),
        plumbing: sum(&|n| {
            if media(n) {
                0.0
            } else {
                n.phase(4) - n.group("zenoh") - n.group("node_api")
            }
        }),
        plumbing_messages: nodes
            .iter()
            .filter(|n| !media(n))
            .map(|n| n.frames_in)
            .sum(),
        messages: nodes.iter().map(|n| n.frames_in).sum(),
        media_main: sum(&|n| if media(n) { n.group("main") } else { 0.0 }),
        media_workers: sum(&|n| if media(n) { n.group("other") } else { 0.0 }),
        tail: sum(&|n| n.phase(5)),
        tail_by_node,
        after_stats: report["cpu"]["children_s"]
            .as_f64()
            .map_or(0.0, |c| c - ends),
        runtime: report["cpu"]["runtime_s"].as_f64().unwrap_or(0.0),
    }
}

/// The lines printed: (cause, extra seconds, detail).
type Line = (&'static str, f64, String);

/// One run against ffmpeg's (total CPU, of which start-up): the causes of
/// the difference, and the difference itself.
fn extra(o: &Ours, ffmpeg_total: f64, ffmpeg_startup: f64) -> (Vec<Line>, f64) {
    let per_message = |s: f64, n: u64| if n == 0 { 0.0 } else { s / n as f64 * 1e6 };
    let ffmpeg_media = ffmpeg_total - ffmpeg_startup;
    let media = o.media_main + o.media_workers;
    let tail: Vec<String> = (o.tail_by_node.iter().take(3))
        .map(|(n, s)| format!("{n} {s:.2}"))
        .collect();
    let startup = format!(
        "ours {:.2} over {} processes, ffmpeg's {ffmpeg_startup:.2}",
        o.startup, o.processes
    );
    let zenoh = format!(
        "{:.0} µs per message, {} messages received",
        per_message(o.zenoh, o.messages),
        o.messages
    );
    let plumbing = format!(
        "{:.0} µs per message (a hop), {} messages",
        per_message(o.plumbing, o.plumbing_messages),
        o.plumbing_messages
    );
    let media_detail = format!(
        "ours {media:.2} (main threads {:.2}, workers {:.2}), ffmpeg {ffmpeg_media:.2}",
        o.media_main, o.media_workers
    );
    let none = String::new;
    let mut lines: Vec<Line> = vec![
        (
            "start-up (exec + linking, before main)",
            o.startup - ffmpeg_startup,
            startup,
        ),
        ("setup to armed (config, session, codec)", o.setup, none()),
        ("barrier wait (armed → graph started)", o.barrier, none()),
        ("pipeline fill (started → first message)", o.fill, none()),
        ("zenoh threads", o.zenoh, zenoh),
        ("stats threads", o.node_api, none()),
        ("plumbing nodes (normalize, sync)", o.plumbing, plumbing),
        (
            "media work (decode, encode, mux) − ffmpeg's",
            media - ffmpeg_media,
            media_detail,
        ),
        ("tail (end of stream → last stats)", o.tail, tail.join(", ")),
        ("after the last stats (close, exit)", o.after_stats, none()),
        ("runtime process", o.runtime, none()),
    ];
    let difference = o.total - ffmpeg_total;
    let explained: f64 = lines.iter().map(|l| l.1).sum();
    lines.push(("rest (not separated)", difference - explained, none()));
    (lines, difference)
}

/// Medians over runs, line by line; the last line takes what the medians of
/// the others leave of the median difference, so the table adds up.
fn medians(runs: &[(Vec<Line>, f64)]) -> (Vec<Line>, f64) {
    let difference = median(&runs.iter().map(|r| r.1).collect::<Vec<_>>());
    let Some(first) = runs.first() else {
        return (Vec::new(), difference);
    };
    let mut lines: Vec<Line> = (0..first.0.len())
        .map(|i| {
            let m = median(&runs.iter().map(|r| r.0[i].1).collect::<Vec<_>>());
            (first.0[i].0, m, first.0[i].2.clone())
        })
        .collect();
    let last = lines.len() - 1;
    let others: f64 = lines[..last].iter().map(|l| l.1).sum();
    lines[last].1 = difference - others;
    (lines, difference)
}

/// ffmpeg's start-up alone: `ffmpeg -version`, the median of a few.
fn ffmpeg_startup() -> f64 {
    let runs: Vec<f64> = (0..5)
        .filter_map(|_| {
            let mut cmd = Command::new("ffmpeg");
            cmd.args(["-hide_banner", "-version"]).stdout(Stdio::null());
            run_measured(&mut cmd, Duration::from_secs(1))
                .ok()
                .map(|m| m.cpu_s)
        })
        .collect();
    if runs.is_empty() {
        0.0
    } else {
        median(&runs)
    }
}

/// Prints the accounting of our runs (their measured CPU and report)
/// against ffmpeg's (their measured CPU), run i against run i: a run of
/// ours without a report is left out.
pub fn print<'a>(
    ours: impl IntoIterator<Item = (f64, Option<&'a Value>)>,
    ffmpeg_cpu_s: impl IntoIterator<Item = f64>,
) {
    let pairs: Vec<((f64, &Value), f64)> = (ours.into_iter().zip(ffmpeg_cpu_s))
        .filter_map(|((total, report), f)| Some(((total, report?), f)))
        .collect();
    if pairs.is_empty() {
        return;
    }
    let startup = ffmpeg_startup();
    let runs: Vec<(Vec<Line>, f64)> = (pairs.iter())
        .map(|((total, report), f)| extra(&account(report, *total), *f, startup))
        .collect();
    let (lines, difference) = medians(&runs);
    println!();
    let n = runs.len();
    let plural = if n == 1 { "" } else { "s" };
    println!("extra CPU against ffmpeg, per cause (CPU s, medians over {n} run{plural}):");
    for (cause, s, detail) in &lines {
        println!("  {cause:<44} {s:>+6.2}  {detail}");
    }
    println!("  {:<44} {difference:>+6.2}", "= ours − ffmpeg");
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn report() -> Value {
        json!({
            "cpu": {"runtime_s": 0.3, "children_s": 10.2},
            "nodes": {
                "sync": {"kind": "sync", "frames_in": 100, "stats": {"cpu_seconds": 1.0,
                    "cpu_phases": {"entry": 0.05, "armed": 0.1, "started": 0.12,
                        "first_message": 0.13, "end_of_stream": 0.93, "end": 1.0},
                    "cpu_threads": {"main": 0.5, "zenoh": 0.2, "node_api": 0.02, "other": 0.08}}},
                "video-encode": {"kind": "video-encode", "frames_in": 50, "stats": {"cpu_seconds": 9.0,
                    // Never saw the start: it takes the first message's.
                    "cpu_phases": {"entry": 0.06, "armed": 0.3,
                        "first_message": 0.4, "end_of_stream": 8.4, "end": 9.0},
                    "cpu_threads": {"main": 2.0, "zenoh": 0.5, "node_api": 0.01, "other": 5.49}}}
            }
        })
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn one_run_splits_by_phase_then_by_thread() {
        let o = account(&report(), 11.0);
        assert!(close(o.startup, 0.11) && close(o.setup, 0.29), "{o:?}");
        assert!(close(o.barrier, 0.12) && close(o.fill, 0.01), "{o:?}");
        assert!(close(o.zenoh, 0.7) && close(o.node_api, 0.03), "{o:?}");
        // sync is plumbing: its window less zenoh and stats.
        assert!(close(o.plumbing, 0.8 - 0.22), "{o:?}");
        assert_eq!((o.plumbing_messages, o.messages), (100, 150));
        assert!(
            close(o.media_main, 2.0) && close(o.media_workers, 5.49),
            "{o:?}"
        );
        assert!(close(o.tail, 0.67) && o.tail_by_node[0].0 == "video-encode");
        assert!(close(o.after_stats, 0.2) && close(o.runtime, 0.3), "{o:?}");
    }

    #[test]
    fn the_lines_of_a_run_add_up_to_the_difference() {
        let (lines, difference) = extra(&account(&report(), 11.0), 9.5, 0.05);
        assert!(close(difference, 1.5));
        let sum: f64 = lines.iter().map(|l| l.1).sum();
        assert!(close(sum, difference), "{lines:?}");
        // All was explained but the runtime's exit (11.0 − 0.3 − 10.2).
        assert!(close(lines.last().unwrap().1, 0.5), "{lines:?}");
        let media = lines.iter().find(|l| l.0.starts_with("media")).unwrap();
        assert!(close(media.1, 7.49 - 9.45), "{media:?}");
    }

    #[test]
    fn medians_of_the_lines_still_add_up() {
        let run = |a: f64, b: f64, d: f64| {
            (
                vec![
                    ("a", a, String::new()),
                    ("b", b, String::new()),
                    ("rest", 0.0, String::new()),
                ],
                d,
            )
        };
        let (lines, d) = medians(&[run(1.0, 5.0, 6.0), run(2.0, 1.0, 3.0), run(3.0, 2.0, 5.0)]);
        assert_eq!(d, 5.0);
        assert_eq!((lines[0].1, lines[1].1), (2.0, 2.0));
        assert_eq!(lines[2].1, 1.0);
    }
}
