//! Live recording figures: runs a graph from test sources in real time and
//! prints, per node process, CPU% (of one core), peak-ish RSS (last sample),
//! frames in/out and drops, from the run's `--report`.
//!
//! Usage: `target/release/live-bench [GRAPH] [SECONDS] [--set ...]...`
//! (defaults: graphs/1080p.yaml, 30 s).

use std::process::Command;

use anyhow::{bail, Result};

fn main() -> Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let graph = if args.first().is_some_and(|a| !a.starts_with("--")) {
        args.remove(0)
    } else {
        "graphs/1080p.yaml".into()
    };
    let seconds = if args.first().is_some_and(|a| !a.starts_with("--")) {
        args.remove(0)
    } else {
        "30".into()
    };
    let runtime = std::env::current_exe()?.parent().unwrap().join("runtime");
    let dir = std::env::temp_dir().join(format!("live-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let report = dir.join("report.json");
    let out = Command::new(&runtime)
        .args(["run", &graph, "--duration", &seconds, "-q", "--report"])
        .arg(&report)
        .arg("--run-dir")
        .arg(dir.join("run"))
        .args([
            "--set",
            &format!("mux.path={}", dir.join("live.mp4").display()),
        ])
        .args(&args)
        .output()?;
    if !out.status.success() {
        bail!("runtime failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&report)?)?;
    let media = r["duration_s"].as_f64().unwrap_or(1.0);
    println!(
        "{graph}, {seconds} s live from test sources; graph start {:.0} ms",
        r["graph_start_ms"].as_f64().unwrap_or(0.0)
    );
    println!(
        "{:<16} {:>7} {:>9} {:>9} {:>9} {:>8}",
        "node", "CPU%", "RSS MiB", "in", "out", "dropped"
    );
    let (mut cpu_total, mut rss_total, mut dropped_total) = (0.0, 0.0, 0u64);
    if let Some(nodes) = r["nodes"].as_object() {
        for (id, n) in nodes {
            let stats = &n["stats"];
            let cpu = stats["cpu_seconds"].as_f64().unwrap_or(0.0) / media * 100.0;
            let rss = stats["rss_bytes"].as_f64().unwrap_or(0.0) / (1 << 20) as f64;
            let dropped = n["dropped"].as_u64().unwrap_or(0);
            cpu_total += cpu;
            rss_total += rss;
            dropped_total += dropped;
            println!(
                "{id:<16} {cpu:>7.1} {rss:>9.1} {:>9} {:>9} {dropped:>8}",
                n["frames_in"].as_u64().unwrap_or(0),
                n["frames_out"].as_u64().unwrap_or(0)
            );
        }
    }
    println!(
        "{:<16} {cpu_total:>7.1} {rss_total:>9.1} {:>9} {:>9} {dropped_total:>8}",
        "total", "", ""
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
