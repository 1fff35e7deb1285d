//! What transcode-bench prints: each run, the table of medians with the
//! ratios to the system ffmpeg, and our graph's nodes.

use bench::median;

use crate::tools::{Run, Tool};

pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// One line per finished run.
pub fn print_run(index: usize, runs: usize, tool: &Tool, run: &Run) {
    println!(
        "run {}/{} {:<20} wall {:>6.2} s  CPU {:>6.2} s  Pss peak {:>6.1} MiB  RSS peak {:>6.1} MiB  {:>5.2} MB{}",
        index + 1,
        runs,
        tool.name(),
        run.m.wall.as_secs_f64(),
        run.m.cpu_s,
        mib(run.m.peaks.pss_sum_kib),
        mib(run.m.peaks.rss_sum_kib),
        run.size_bytes as f64 / 1e6,
        run.graph_start_ms
            .map(|ms| format!("  graph start {ms:.0} ms"))
            .unwrap_or_default()
    );
}

fn stat(runs: &[Run], f: impl Fn(&Run) -> f64) -> f64 {
    median(&runs.iter().map(f).collect::<Vec<_>>())
}

fn wall(r: &Run) -> f64 {
    r.m.wall.as_secs_f64()
}

/// The comparison table: medians of every tool's runs, and ratios to the
/// system's ffmpeg.
pub fn print_table(results: &[(Tool, Vec<Run>)], video_frames: u64) {
    let cpu = |r: &Run| r.m.cpu_s;
    let pss = |r: &Run| mib(r.m.peaks.pss_sum_kib);
    let rss = |r: &Run| mib(r.m.peaks.rss_sum_kib);
    let size = |r: &Run| r.size_bytes as f64 / 1e6;
    let (base_tool, base) = results
        .iter()
        .find(|(t, _)| t.is_system_ffmpeg())
        .expect("the system ffmpeg always runs");
    println!();
    println!(
        "ratios (x / ffmpeg) are to {}, the system's",
        base_tool.name()
    );
    println!(
        "| tool | wall s | fps | CPU s | CPU % of a core | Pss peak MiB | RSS peak MiB | size MB | wall / ffmpeg | paired wall / ffmpeg | CPU / ffmpeg | Pss / ffmpeg |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for (tool, runs) in results {
        let w = stat(runs, wall);
        let c = stat(runs, cpu);
        // Run i of a tool against ffmpeg's run i: the two ran back to back.
        let paired: Vec<f64> = runs
            .iter()
            .zip(base)
            .map(|(a, b)| wall(a) / wall(b))
            .collect();
        println!(
            "| {} | {w:.2} | {:.1} | {c:.2} | {:.0} | {:.0} | {:.0} | {:.2} | {:.3} | {:.3} | {:.3} | {:.3} |",
            tool.name(),
            video_frames as f64 / w,
            c / w * 100.0,
            stat(runs, pss),
            stat(runs, rss),
            stat(runs, size),
            w / stat(base, wall),
            median(&paired),
            c / stat(base, cpu),
            stat(runs, pss) / stat(base, pss),
        );
    }
}

/// Our graph's start time and each node's share of CPU and memory.
pub fn print_per_node(ours: &[Run]) {
    let starts: Vec<f64> = ours.iter().filter_map(|r| r.graph_start_ms).collect();
    println!();
    println!(
        "ours: graph start (runtime run → every node armed) median {:.0} ms; per node, median CPU s and peak Pss MiB:",
        median(&starts)
    );
    let nodes: Vec<String> = ours[0].node_cpu_s.iter().map(|(n, _)| n.clone()).collect();
    for node in nodes {
        let cpu: Vec<f64> = ours
            .iter()
            .filter_map(|r| {
                r.node_cpu_s
                    .iter()
                    .find(|(n, _)| *n == node)
                    .map(|(_, c)| *c)
            })
            .collect();
        let pss: Vec<f64> = ours
            .iter()
            .filter_map(|r| r.m.peaks.pss_by_name.get(&node).map(|k| mib(*k)))
            .collect();
        println!(
            "  {node:<16} CPU {:>6.2} s  Pss {:>6.1} MiB",
            median(&cpu),
            median(&pss)
        );
    }
}
