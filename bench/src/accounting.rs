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

// The points of `cpu_phases`, in the order a node reaches them.
use node_api::CPU_PHASES as PHASES;

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
    let tail_by_node = nodes.iter().map(|n| (n.id.clone(), n.phase(5))).collect();
    Ours {
        total,
        processes: nodes.len(),
        startup: sum(&|n| n.phase(0)),
        setup: sum(&|n| n.phase(1)),
        barrier: sum(&|n| n.phase(2)),
        fill: sum(&|n| n.phase(3)),
        zenoh: sum(&|n| n.group("zenoh")),
        node_api: sum(&|n| n.group("node_api")),
        // Every thread of theirs but zenoh's and the stats thread.
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

/// One line printed: a cause, its extra seconds, and a detail made of
/// figures that are medianed over runs like the seconds.
struct Line {
    cause: &'static str,
    extra: f64,
    figures: Vec<f64>,
    detail: Detail,
}

/// Makes a line's detail from its figures.
type Detail = Box<dyn Fn(&[f64]) -> String>;

impl Line {
    fn new(cause: &'static str, extra: f64) -> Line {
        Line {
            cause,
            extra,
            figures: Vec::new(),
            detail: Box::new(|_| String::new()),
        }
    }

    fn with(mut self, figures: Vec<f64>, detail: impl Fn(&[f64]) -> String + 'static) -> Line {
        self.figures = figures;
        self.detail = Box::new(detail);
        self
    }
}

/// Microseconds per message: `f` is (seconds, messages).
fn per_message(f: &[f64]) -> f64 {
    if f[1] == 0.0 {
        0.0
    } else {
        f[0] / f[1] * 1e6
    }
}

fn startup_detail(f: &[f64]) -> String {
    format!(
        "ours {:.2} over {} processes, ffmpeg's {:.2}",
        f[0], f[1], f[2]
    )
}

fn zenoh_detail(f: &[f64]) -> String {
    format!(
        "{:.0} µs per message received, {} messages",
        per_message(f),
        f[1]
    )
}

fn plumbing_detail(f: &[f64]) -> String {
    format!(
        "{:.0} µs per message (a hop), {} messages",
        per_message(f),
        f[1]
    )
}

fn media_detail(f: &[f64]) -> String {
    let (ours, main, workers, ffmpeg) = (f[0], f[1], f[2], f[3]);
    format!("ours {ours:.2} (main threads {main:.2}, workers {workers:.2}), ffmpeg {ffmpeg:.2}")
}

/// The three nodes with the longest tails (`f`: each node's, as `names`).
fn tail_detail(names: Vec<String>) -> impl Fn(&[f64]) -> String {
    move |f| {
        let mut by_node: Vec<(&String, f64)> = names.iter().zip(f.iter().copied()).collect();
        by_node.sort_by(|a, b| b.1.total_cmp(&a.1));
        let top: Vec<String> = by_node
            .iter()
            .take(3)
            .map(|(n, s)| format!("{n} {s:.2}"))
            .collect();
        top.join(", ")
    }
}

/// One run against ffmpeg's (total CPU, of which start-up): the causes of
/// the difference, and the difference itself.
fn extra(o: &Ours, ffmpeg_total: f64, ffmpeg_startup: f64) -> (Vec<Line>, f64) {
    let ffmpeg_media = ffmpeg_total - ffmpeg_startup;
    let media = o.media_main + o.media_workers;
    let (names, tails): (Vec<String>, Vec<f64>) = o.tail_by_node.iter().cloned().unzip();
    let startup = vec![o.startup, o.processes as f64, ffmpeg_startup];
    let zenoh = vec![o.zenoh, o.messages as f64];
    let plumbing = vec![o.plumbing, o.plumbing_messages as f64];
    let media_figures = vec![media, o.media_main, o.media_workers, ffmpeg_media];
    let mut lines = vec![
        Line::new(
            "start-up (exec + linking, before main)",
            o.startup - ffmpeg_startup,
        )
        .with(startup, startup_detail),
        Line::new("setup to armed (config, session, codec)", o.setup),
        Line::new("barrier wait (armed → graph started)", o.barrier),
        Line::new("pipeline fill (started → first message)", o.fill),
        Line::new("zenoh threads", o.zenoh).with(zenoh, zenoh_detail),
        Line::new("stats threads", o.node_api),
        Line::new("plumbing nodes (normalize, sync)", o.plumbing).with(plumbing, plumbing_detail),
        Line::new(
            "media work (decode, encode, mux) − ffmpeg's",
            media - ffmpeg_media,
        )
        .with(media_figures, media_detail),
        Line::new("tail (end of stream → last stats)", o.tail).with(tails, tail_detail(names)),
        Line::new("after the last stats (exit), fork server", o.after_stats),
        Line::new("runtime process", o.runtime),
    ];
    let difference = o.total - ffmpeg_total;
    let explained: f64 = lines.iter().map(|l| l.extra).sum();
    lines.push(Line::new(
        "rest (runtime exit, medians)",
        difference - explained,
    ));
    (lines, difference)
}

/// Medians over runs, line by line (and figure by figure); the last line
/// takes what the medians of the others leave of the median difference, so
/// the table adds up. Returns (cause, seconds, detail) and the difference.
fn medians(runs: Vec<(Vec<Line>, f64)>) -> (Vec<(&'static str, f64, String)>, f64) {
    let difference = median(&runs.iter().map(|r| r.1).collect::<Vec<_>>());
    let Some((first, _)) = runs.first() else {
        return (Vec::new(), difference);
    };
    let of = |f: &dyn Fn(&Line) -> f64, i: usize| {
        median(&runs.iter().map(|r| f(&r.0[i])).collect::<Vec<_>>())
    };
    let mut lines: Vec<_> = (first.iter().enumerate())
        .map(|(i, l)| {
            let figures: Vec<f64> = (0..l.figures.len())
                .map(|j| of(&|l| l.figures[j], i))
                .collect();
            (l.cause, of(&|l| l.extra, i), (l.detail)(&figures))
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
    let runs: Vec<_> = (pairs.iter())
        .map(|((total, report), f)| extra(&account(report, *total), *f, startup))
        .collect();
    let (lines, difference) = medians(runs);
    println!();
    let n = pairs.len();
    let plural = if n == 1 { "" } else { "s" };
    println!("extra CPU against ffmpeg, per cause (CPU s, medians over {n} run{plural}):");
    for (cause, s, detail) in &lines {
        let line = format!("  {cause:<44} {s:>+6.2}  {detail}");
        println!("{}", line.trim_end());
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
        assert!(close(o.tail, 0.67), "{o:?}");
        assert_eq!(o.tail_by_node[1].0, "video-encode");
        assert!(close(o.tail_by_node[1].1, 0.6), "{o:?}");
        assert!(close(o.after_stats, 0.2) && close(o.runtime, 0.3), "{o:?}");
    }

    #[test]
    fn the_lines_of_a_run_add_up_to_the_difference() {
        let (lines, difference) = extra(&account(&report(), 11.0), 9.5, 0.05);
        assert!(close(difference, 1.5));
        let sum: f64 = lines.iter().map(|l| l.extra).sum();
        assert!(close(sum, difference), "{sum}");
        // All was explained but the runtime's exit (11.0 − 0.3 − 10.2).
        assert!(close(lines.last().unwrap().extra, 0.5));
        let media = lines.iter().find(|l| l.cause.starts_with("media")).unwrap();
        assert!(close(media.extra, 7.49 - 9.45), "{}", media.extra);
    }

    #[test]
    fn medians_of_the_lines_and_their_figures_still_add_up() {
        let run = |a: f64, b: f64, d: f64| {
            let lines = vec![
                Line::new("a", a).with(vec![a * 10.0], |f| format!("{}", f[0])),
                Line::new("b", b),
                Line::new("rest", 0.0),
            ];
            (lines, d)
        };
        let runs = vec![run(1.0, 5.0, 6.0), run(2.0, 1.0, 3.0), run(3.0, 2.0, 5.0)];
        let (lines, d) = medians(runs);
        assert_eq!(d, 5.0);
        assert_eq!(lines[0], ("a", 2.0, "20".to_string()));
        assert_eq!(lines[1].1, 2.0);
        assert_eq!(lines[2].1, 1.0, "what the medians leave of the difference");
    }

    #[test]
    fn the_tail_names_its_longest_three() {
        let names = ["a", "b", "c", "d"].map(String::from).to_vec();
        assert_eq!(
            tail_detail(names)(&[0.1, 0.4, 0.2, 0.3]),
            "b 0.40, d 0.30, c 0.20"
        );
    }
}
