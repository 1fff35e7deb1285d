//! Live recording figures: runs a graph from test sources in real time and
//! prints, per node process, CPU% (of one core), peak Pss, frames in/out and
//! drops (from the run's `--report`), the peak of the summed Pss of the whole
//! process tree, the mux's capture→mux latency p50/p99 per stream and the
//! graph start time. A graph with a `stream_url` var streams to an RTMP
//! server started here (the ffmpeg CLI listening on loopback): its capture →
//! sent latency and what the server received are printed too.
//!
//! Memory is Pss sampled every 100 ms from /proc/PID/smaps_rollup: the shared
//! frame pools count once, not once per process mapping them (summed RSS, also
//! printed, counts them in every mapper).
//!
//! Usage: `target/release/live-bench [GRAPH] [SECONDS] [--set ...]...`
//! (defaults: graphs/1080p.yaml, 30 s). With `--vs-ffmpeg` it records a
//! file in real time through the graph and through `ffmpeg -re` instead
//! (compare.rs).

mod compare;

use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Result};
use bench::procs::run_measured;
use bench::rtmp_peer::RtmpPeer;
use node_api::metrics::{per_input, LATENCY_P50_MS, LATENCY_P99_MS};

const HELP: &str = "live-bench: a graph recorded live, measured per node

Usage: live-bench [GRAPH] [SECONDS] [--set NODE.PARAM=VALUE]...
       live-bench --vs-ffmpeg [GRAPH] [SECONDS] [--runs N] [--set NODE.PARAM=VALUE]...

  GRAPH     the graph to run (default graphs/1080p.yaml), with its sources as
            it sets them (`auto`: the test sources on a machine without
            devices; --set camera.source=test to be sure)
  SECONDS   how long to record (default 30)
  --set     passed to `runtime run` (e.g. --set video-encode.tune=zerolatency)

Prints per node process: CPU% of one core, peak Pss, frames in/out, drops; the
peak of the summed Pss of the process tree; the mux's capture->mux latency
p50/p99 per stream; the graph start time.

--vs-ffmpeg: our graph against ffmpeg on the same real-time recording.
  SECONDS (default 60) of 1920x1080 testsrc2 + a 440 Hz tone, lossless (FFV1 +
  PCM), generated once into ~/.cache/mediagraph-bench at the graph's camera
  fps, is recorded RUNS times (default 3) by each, alternated:
    ours    runtime run GRAPH with camera.source and microphone.source
            file:IN, realtime=true (paced at the file's rate)
    ffmpeg  ffmpeg -re -i IN with the graph's settings: x264 preset, CRF or
            bitrate, keyframe interval, tune, threads, AAC bitrate, faststart
            (GRAPH default graphs/1080p60.yaml: veryfast CRF 28, keyint 120,
            AAC 192 kb/s)
  Prints per run and as medians: wall time and how much of it is beyond the
  input's length (start and finish; for ffmpeg, which never drops when it
  cannot keep up, how far it fell behind real time), CPU % of one core (wait4
  CPU / wall), summed Pss peak (every 250 ms), drops (ours: the nodes'
  `dropped`; ffmpeg: its drop_frames and dup_frames from -progress), the video
  frames in each file (ffprobe) and the ratios ours / ffmpeg.

Examples:
  live-bench graphs/1080p.yaml 60
  live-bench graphs/1080p60.yaml 60
  live-bench graphs/1080p.yaml 60 --set video-encode.tune=zerolatency
  live-bench --vs-ffmpeg graphs/1080p60.yaml 60 --runs 3";

fn main() -> Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{HELP}");
        return Ok(());
    }
    let vs_ffmpeg = take_flag(&mut args, "--vs-ffmpeg");
    // GRAPH and SECONDS, each in turn when given before the options.
    let mut positional = |default: &str| match args.first() {
        Some(a) if !a.starts_with("--") => args.remove(0),
        _ => default.to_string(),
    };
    let graph = positional(if vs_ffmpeg {
        "graphs/1080p60.yaml"
    } else {
        "graphs/1080p.yaml"
    });
    let seconds = positional(if vs_ffmpeg { "60" } else { "30" });
    if vs_ffmpeg {
        return compare::run(compare_options(graph, &seconds, args)?);
    }
    let runtime = std::env::current_exe()?.parent().unwrap().join("runtime");
    let dir = std::env::temp_dir().join(format!("live-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let report = dir.join("report.json");
    // A graph that streams (its `stream_url` var) pushes to a server here.
    let peer = match std::fs::read_to_string(&graph)?.contains("stream_url:") {
        true => Some(RtmpPeer::start(&dir, "bench")?),
        false => None,
    };
    if let Some(p) = &peer {
        args.extend(["--set".into(), format!("stream_url={}", p.url)]);
        args.extend(["--set".into(), "stream_key=bench".into()]);
    }
    let stderr = dir.join("runtime.stderr");
    let m = run_measured(
        Command::new(&runtime)
            .args(["run", &graph, "--duration", &seconds, "-q", "--report"])
            .arg(&report)
            .arg("--run-dir")
            .arg(dir.join("run"))
            .args([
                "--set",
                &format!("mux.path={}", dir.join("live.mp4").display()),
            ])
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr)?),
        Duration::from_millis(100),
    )?;
    if m.code != Some(0) {
        bail!(
            "runtime failed ({:?}): {}",
            m.code,
            std::fs::read_to_string(&stderr).unwrap_or_default()
        );
    }
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&report)?)?;
    let media = r["duration_s"].as_f64().unwrap_or(1.0);
    println!(
        "{graph}, {seconds} s live from test sources; graph start {:.0} ms",
        r["graph_start_ms"].as_f64().unwrap_or(0.0)
    );
    println!(
        "{:<16} {:>7} {:>9} {:>9} {:>9} {:>8} {:>10}",
        "node", "CPU%", "Pss MiB", "in", "out", "dropped", "pool waits"
    );
    let (mut cpu_total, mut dropped_total, mut waits_total) = (0.0, 0u64, 0u64);
    if let Some(nodes) = r["nodes"].as_object() {
        for (id, n) in nodes {
            let stats = &n["stats"];
            let cpu = stats["cpu_seconds"].as_f64().unwrap_or(0.0) / media * 100.0;
            let pss = m.peaks.pss_by_name.get(id).copied().unwrap_or(0) as f64 / 1024.0;
            let dropped = n["dropped"].as_u64().unwrap_or(0);
            // A test source that finds its pool exhausted waits and sends
            // its frames late rather than losing them: not a drop, but the
            // stall a real camera would turn into drops.
            let waits: u64 = stats["outputs"]
                .as_object()
                .into_iter()
                .flatten()
                .filter_map(|(_, o)| o["pool_waits"].as_u64())
                .sum();
            cpu_total += cpu;
            dropped_total += dropped;
            waits_total += waits;
            println!(
                "{id:<16} {cpu:>7.1} {pss:>9.1} {:>9} {:>9} {dropped:>8} {waits:>10}",
                n["frames_in"].as_u64().unwrap_or(0),
                n["frames_out"].as_u64().unwrap_or(0)
            );
        }
    }
    let runtime_pss = m.peaks.pss_by_name.get("runtime").copied().unwrap_or(0) as f64 / 1024.0;
    println!("{:<16} {:>7} {runtime_pss:>9.1}", "runtime", "");
    println!(
        "{:<16} {cpu_total:>7.1} {:>9.1} {:>9} {:>9} {dropped_total:>8} {waits_total:>10}",
        "total",
        m.peaks.pss_sum_kib as f64 / 1024.0,
        "",
        ""
    );
    println!(
        "summed over the process tree at its peak: Pss {:.1} MiB (RSS {:.1} MiB, which counts shared pools in every mapper); the total line's Pss is that peak, not the sum of the per-node peaks",
        m.peaks.pss_sum_kib as f64 / 1024.0,
        m.peaks.rss_sum_kib as f64 / 1024.0
    );
    // The mux measures capture → mux per input stream.
    for (id, n) in r["nodes"].as_object().into_iter().flatten() {
        let metrics = &n["stats"]["metrics"];
        for stream in ["video", "audio"] {
            let p50 = metrics[per_input(LATENCY_P50_MS, stream)].as_f64();
            let p99 = metrics[per_input(LATENCY_P99_MS, stream)].as_f64();
            if let (Some(p50), Some(p99)) = (p50, p99) {
                println!("{id}: capture→{id} latency {stream} p50 {p50:.1} ms, p99 {p99:.1} ms");
            }
        }
    }
    if let Some(p) = peer {
        let (seconds, frames) = p.finish()?;
        println!("the RTMP server received {seconds:.2} s, {frames} video frames");
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// Removes `flag` from `args`; whether it was there.
fn take_flag(args: &mut Vec<String>, flag: &str) -> bool {
    let before = args.len();
    args.retain(|a| a != flag);
    args.len() != before
}

/// `--runs N` and the `--set`s after GRAPH and SECONDS, for `--vs-ffmpeg`.
fn compare_options(graph: String, seconds: &str, args: Vec<String>) -> Result<compare::Options> {
    let mut o = compare::Options {
        graph,
        seconds: seconds
            .parse()
            .map_err(|e| anyhow::anyhow!("SECONDS `{seconds}`: {e}"))?,
        runs: 3,
        sets: Vec::new(),
    };
    let mut args = args.into_iter();
    while let Some(a) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| anyhow::anyhow!("{a} needs a value"))
        };
        match a.as_str() {
            "--runs" => o.runs = value()?.parse()?,
            "--set" => o.sets.push(value()?),
            other => bail!("unknown argument `{other}` with --vs-ffmpeg (see --help)"),
        }
    }
    if o.runs == 0 || o.seconds == 0 {
        bail!("--runs and SECONDS must be at least 1");
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vs_ffmpeg_options() {
        let mut args: Vec<String> = ["--vs-ffmpeg", "g.yaml", "10"].map(String::from).into();
        assert!(take_flag(&mut args, "--vs-ffmpeg"));
        assert_eq!(args, ["g.yaml", "10"]);
        assert!(!take_flag(&mut args, "--vs-ffmpeg"));
        let rest = ["--runs", "2", "--set", "a.b=1"].map(String::from).into();
        let o = compare_options("g.yaml".into(), "10", rest).unwrap();
        assert_eq!(
            (o.seconds, o.runs, o.sets),
            (10, 2, vec!["a.b=1".to_string()])
        );
        assert!(compare_options("g".into(), "10", vec!["--runs".into(), "0".into()]).is_err());
        assert!(compare_options("g".into(), "x", Vec::new()).is_err());
        assert!(compare_options("g".into(), "10", vec!["--what".into()]).is_err());
    }
}
