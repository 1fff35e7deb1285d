//! Soak test: pushes a long stretch of media through a recording graph from
//! the test sources, faster than real time (`realtime: false`, so nothing is
//! dropped), and watches every node process while it runs: resident memory
//! (VmRSS, and Pss from smaps_rollup) and open file descriptors, sampled from
//! /proc. At the end it prints a table and checks:
//!
//! - every node's RSS after warm-up stays flat: the mean of the last quarter
//!   of samples is less than `--max-growth` (default 5 %) above the mean of
//!   the first quarter;
//! - open file descriptors stay flat: at most 2 more at the end than at the
//!   start (after warm-up);
//! - no shared-memory segment the nodes mapped is left in /dev/shm after exit;
//! - the run itself succeeded.
//!
//! Exits 0 when all hold, 1 otherwise.
//!
//! Usage: `target/release/soak [--graph graphs/720p.yaml] [--media-seconds 3600]
//! [--warmup 0.2] [--interval 5] [--max-growth 5] [--set NODE.PARAM=V]...`
//! The media length is counted from the camera's frames (status line); the
//! graph is then stopped like Ctrl-C.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bench::procs::{nodes_of, read_kib};

struct Options {
    graph: String,
    media_seconds: f64,
    fps: f64,
    warmup: f64,
    interval: Duration,
    max_growth_pct: f64,
    sets: Vec<String>,
}

fn parse_args() -> Result<Options> {
    let mut o = Options {
        graph: "graphs/720p.yaml".into(),
        media_seconds: 3600.0,
        fps: 30.0,
        warmup: 0.2,
        interval: Duration::from_secs(5),
        max_growth_pct: 5.0,
        sets: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--graph" => o.graph = value()?,
            "--media-seconds" => o.media_seconds = value()?.parse()?,
            "--fps" => o.fps = value()?.parse()?,
            "--warmup" => o.warmup = value()?.parse()?,
            "--interval" => o.interval = Duration::from_secs_f64(value()?.parse()?),
            "--max-growth" => o.max_growth_pct = value()?.parse()?,
            "--set" => o.sets.push(value()?),
            other => bail!("unknown argument {other} (see the doc comment of bench/src/soak.rs)"),
        }
    }
    Ok(o)
}

/// One sample of one node process.
#[derive(Clone, Copy)]
struct Sample {
    rss_kib: u64,
    pss_kib: u64,
    fds: u64,
}

fn sample(pid: u32) -> Option<Sample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64;
    Some(Sample {
        rss_kib: read_kib(&status, "VmRSS:")?,
        pss_kib: read_kib(&rollup, "Pss:").unwrap_or(0),
        fds,
    })
}

/// The /dev/shm segments a process maps.
fn shm_segments(pid: u32) -> BTreeSet<String> {
    std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().last())
        .filter(|f| f.starts_with("/dev/shm/"))
        .map(str::to_string)
        .collect()
}

fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len().max(1) as f64
}

/// Starts the run with test sources replayed as fast as they go, and a
/// thread reading the camera's frame count off the status line.
fn start_runtime(
    o: &Options,
    runtime: &std::path::Path,
    dir: &std::path::Path,
    report: &std::path::Path,
) -> Result<(std::process::Child, Arc<AtomicU64>)> {
    let mut cmd = Command::new(runtime);
    cmd.args(["run", &o.graph, "--report"])
        .arg(report)
        .arg("--run-dir")
        .arg(dir.join("run"));
    for s in [
        "camera.source=test",
        "camera.realtime=false",
        "microphone.source=test",
        "microphone.realtime=false",
    ] {
        cmd.args(["--set", s]);
    }
    cmd.args([
        "--set",
        &format!("mux.path={}", dir.join("soak.mp4").display()),
    ]);
    for s in &o.sets {
        cmd.args(["--set", s]);
    }
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting runtime")?;

    // The status line (every 5 s off a terminal) says how many frames the camera made.
    let camera_frames = Arc::new(AtomicU64::new(0));
    {
        let frames = camera_frames.clone();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(n) = line
                    .split(" | ")
                    .find_map(|p| p.split("camera in 0 out ").nth(1))
                    .and_then(|rest| rest.split_whitespace().next())
                    .and_then(|n| n.parse().ok())
                {
                    frames.store(n, Ordering::Relaxed);
                } else if line.contains("ERROR") || line.starts_with("error") {
                    eprintln!("{line}");
                }
            }
        });
    }
    Ok((child, camera_frames))
}

/// Prints one node's line of the table; returns its failure, if any.
fn node_row(node: &str, pid: u32, samples: &[Sample], o: &Options) -> Option<String> {
    let steady = &samples[((samples.len() as f64 * o.warmup).ceil() as usize).min(samples.len())..];
    if steady.len() < 4 {
        println!(
            "{node:<16} {:>7}  too few samples after warm-up (pid {pid})",
            samples.len()
        );
        return None;
    }
    let q = steady.len() / 4;
    let (first, last) = (&steady[..q.max(1)], &steady[steady.len() - q.max(1)..]);
    let mib = |xs: &[Sample], f: fn(&Sample) -> u64| {
        mean(&xs.iter().map(|s| f(s) as f64 / 1024.0).collect::<Vec<_>>())
    };
    let (rss0, rss1) = (mib(first, |s| s.rss_kib), mib(last, |s| s.rss_kib));
    let (pss0, pss1) = (mib(first, |s| s.pss_kib), mib(last, |s| s.pss_kib));
    let growth = (rss1 - rss0) / rss0.max(1e-9) * 100.0;
    let fd0 = first.iter().map(|s| s.fds).max().unwrap_or(0);
    let fd1 = last.iter().map(|s| s.fds).max().unwrap_or(0);
    let mut verdict = Vec::new();
    if growth >= o.max_growth_pct {
        verdict.push(format!("RSS grew {growth:.1} %"));
    }
    if fd1 > fd0 + 2 {
        verdict.push(format!("fds {fd0} → {fd1}"));
    }
    println!(
        "{node:<16} {:>7} {rss0:>8.1} {rss1:>8.1} {growth:>7.1}% {pss0:>8.1} {pss1:>8.1} {fd0:>6} {fd1:>6}  {}",
        samples.len(),
        if verdict.is_empty() { "ok".to_string() } else { verdict.join(", ") }
    );
    (!verdict.is_empty()).then(|| format!("{node}: {}", verdict.join(", ")))
}

fn main() -> Result<()> {
    let o = parse_args()?;
    let runtime = std::env::current_exe()?.parent().unwrap().join("runtime");
    let dir = std::env::temp_dir().join(format!("soak-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let report: PathBuf = dir.join("report.json");
    let (mut child, camera_frames) = start_runtime(&o, &runtime, &dir, &report)?;
    let rt_pid = child.id();

    let target_frames = (o.media_seconds * o.fps) as u64;
    let started = Instant::now();
    // (node, pid) → samples; a restarted node gets a new series.
    let mut series: BTreeMap<(String, u32), Vec<Sample>> = BTreeMap::new();
    // Segment → the processes that mapped it.
    let mut segments: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut stop_sent = false;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        for seg in shm_segments(rt_pid) {
            segments.entry(seg).or_default().insert("runtime".into());
        }
        for (pid, node) in nodes_of(rt_pid) {
            if let Some(s) = sample(pid) {
                series.entry((node.clone(), pid)).or_default().push(s);
            }
            for seg in shm_segments(pid) {
                segments.entry(seg).or_default().insert(node.clone());
            }
        }
        let frames = camera_frames.load(Ordering::Relaxed);
        if !stop_sent && frames >= target_frames {
            // SAFETY: signalling the runtime we started.
            unsafe { libc::kill(rt_pid as i32, libc::SIGINT) };
            stop_sent = true;
        }
        let deadline = Instant::now() + o.interval;
        while Instant::now() < deadline && child.try_wait()?.is_none() {
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let wall = started.elapsed().as_secs_f64();
    let frames = camera_frames.load(Ordering::Relaxed);

    let mut failures = Vec::new();
    if !status.success() {
        failures.push(format!(
            "the run failed ({status}); logs in {}",
            dir.display()
        ));
    }
    println!(
        "soak: {} — {:.0} s of media ({frames} frames) in {wall:.0} s wall, sampled every {:.1} s, warm-up {:.0} % excluded",
        o.graph,
        frames as f64 / o.fps,
        o.interval.as_secs_f64(),
        o.warmup * 100.0
    );
    println!(
        "{:<16} {:>7} {:>8} {:>8} {:>8} {:>8} {:>8} {:>6} {:>6}  verdict",
        "node", "samples", "RSS MiB", "→ MiB", "growth", "Pss MiB", "→ MiB", "fds", "→ fds"
    );
    for ((node, pid), samples) in &series {
        if let Some(v) = node_row(node, *pid, samples, &o) {
            failures.push(v);
        }
    }
    let left: Vec<String> = segments
        .iter()
        .filter(|(s, _)| std::path::Path::new(s).exists())
        .map(|(s, by)| {
            format!(
                "{s} (mapped by {})",
                by.iter().cloned().collect::<Vec<_>>().join(", ")
            )
        })
        .collect();
    println!(
        "shared-memory segments mapped by the run: {}, left in /dev/shm after exit: {}",
        segments.len(),
        left.len()
    );
    if !left.is_empty() {
        failures.push(format!("segments left in /dev/shm: {left:?}"));
    }
    if frames < target_frames {
        failures.push(format!(
            "only {frames} of {target_frames} frames went through"
        ));
    }
    if failures.is_empty() {
        println!("PASS");
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    } else {
        for f in &failures {
            println!("FAIL: {f}");
        }
        std::process::exit(1);
    }
}
