//! Transport hop benchmark: 1080p frames between two processes, through
//! (a) our node API (`runtime run`, testkit source → sink, shared memory),
//! (b) raw zenoh shared-memory put/receive, and
//! (c) raw zenoh with shared memory off (TCP loopback),
//! at 30 fps, 60 fps and unpaced, in one run. Prints p50/p99 latency
//! (send → receive), achieved fps, CPU% of both processes, and the ratio (a)/(b).
//!
//! Usage: `cargo run --release -p bench --bin transport-bench [-- --frames N]`
//! (build the workspace first: it runs target/release/runtime and testkit-node).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use node_api::clock::now_ns;
use node_api::{cpu_seconds, metrics};
use zenoh::qos::CongestionControl;
use zenoh::shm::{BlockOn, GarbageCollect, PosixShmProviderBackend, ShmProviderBuilder};
use zenoh::{Config, Wait};

const KEY: &str = "bench/frames";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("raw-pub") => raw_pub(&args[2..]),
        Some("raw-sub") => raw_sub(&args[2..]),
        _ => orchestrate(&args[1..]),
    }
}

fn arg<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

#[derive(Debug, Clone, Default)]
struct Outcome {
    p50_ms: f64,
    p99_ms: f64,
    fps: f64,
    cpu_pct: f64,
    received: u64,
    shm: u64,
}

fn orchestrate(args: &[String]) -> Result<()> {
    let frames: u64 = arg(args, "--frames")
        .map(|f| f.parse())
        .transpose()?
        .unwrap_or(150);
    let bins = std::env::current_exe()?.parent().unwrap().to_path_buf();
    let runtime = bins.join("runtime");
    let testkit = bins.join("testkit-node");
    if !runtime.exists() || !testkit.exists() {
        bail!(
            "build the workspace first (`cargo build --release --workspace`): {} missing",
            runtime.display()
        );
    }
    let scratch = std::env::temp_dir().join(format!("transport-bench-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)?;
    println!(
        "transport bench: {frames} frames per case, 2 processes, {}",
        bench::machine()
    );
    println!(
        "{:<9} {:>8} | {:>25} | {:>25} | {:>25} | {:>11}",
        "format",
        "rate",
        "(a) node API  p50/p99 fps",
        "(b) raw SHM  p50/p99 fps",
        "(c) TCP  p50/p99 fps",
        "(a)/(b)"
    );
    let mut port = 24_000 + (std::process::id() % 1000) as u16 * 10;
    for (format, size) in [("rgb24", 1920 * 1080 * 3), ("yuv420p", 1920 * 1080 * 3 / 2)] {
        for fps in [30.0, 60.0, 0.0] {
            let a = node_api_case(&runtime, &testkit, &scratch, format, fps, frames)?;
            port += 1;
            let b = raw_case(size, fps, frames, true, port)?;
            port += 1;
            let c = raw_case(size, fps, frames, false, port)?;
            let rate = if fps > 0.0 {
                format!("{fps} fps")
            } else {
                "unpaced".into()
            };
            let cell = |o: &Outcome| {
                format!(
                    "{:>6.2}/{:>6.2} ms {:>5.0} {:>3.0}%",
                    o.p50_ms, o.p99_ms, o.fps, o.cpu_pct
                )
            };
            println!(
                "{format:<9} {rate:>8} | {} | {} | {} | {:>4.2}/{:<4.2}",
                cell(&a),
                cell(&b),
                cell(&c),
                a.p50_ms / b.p50_ms,
                a.p99_ms / b.p99_ms
            );
            if a.shm != a.received || b.shm != b.received {
                println!(
                    "  warning: not every payload came through shared memory (a: {}/{}, b: {}/{})",
                    a.shm, a.received, b.shm, b.received
                );
            }
        }
    }
    println!(
        "latency: send → receive of one frame; CPU%: both processes, of one core; ratio: p50/p99"
    );
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(())
}

fn node_api_case(
    runtime: &Path,
    testkit: &Path,
    dir: &Path,
    format: &str,
    fps: f64,
    frames: u64,
) -> Result<Outcome> {
    let result = dir.join("sink.json");
    let report = dir.join("report.json");
    let graph = dir.join("bench.yaml");
    std::fs::write(
        &graph,
        format!(
            "name: transport-bench\nnodes:\n  - id: source\n    path: {tk}\n    outputs: [video]\n    params: {{ mode: source, count: {frames}, width: 1920, height: 1080, pixel_format: {format}, fps: {fps} }}\n  - id: sink\n    path: {tk}\n    inputs:\n      video: {{ source: source/video, queue_size: 4, policy: block }}\n    params: {{ mode: sink, result: \"{res}\" }}\n",
            tk = testkit.display(),
            res = result.display()
        ),
    )?;
    let start = Instant::now();
    let out = Command::new(runtime)
        .args([
            "run",
            graph.to_str().unwrap(),
            "-q",
            "--report",
            report.to_str().unwrap(),
            "--run-dir",
        ])
        .arg(dir.join("run"))
        .output()?;
    if !out.status.success() {
        bail!("runtime failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let wall = start.elapsed().as_secs_f64();
    let sink: serde_json::Value = serde_json::from_slice(&std::fs::read(&result)?)?;
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&report)?)?;
    let source_metrics = &report["nodes"]["source"]["stats"]["metrics"];
    let cpu = source_metrics[metrics::STREAM_CPU_SECONDS]
        .as_f64()
        .unwrap_or(0.0)
        + sink["stream_cpu_seconds"].as_f64().unwrap_or(0.0);
    let media = source_metrics[metrics::STREAM_SECONDS]
        .as_f64()
        .unwrap_or(wall);
    Ok(Outcome {
        p50_ms: sink["latency_p50_ns"].as_f64().unwrap_or(0.0) / 1e6,
        p99_ms: sink["latency_p99_ns"].as_f64().unwrap_or(0.0) / 1e6,
        fps: sink["received"].as_f64().unwrap_or(0.0) / media,
        cpu_pct: cpu / media * 100.0,
        received: sink["received"].as_u64().unwrap_or(0),
        shm: sink["shm_payloads"].as_u64().unwrap_or(0),
    })
}

fn raw_case(size: usize, fps: f64, frames: u64, shm: bool, port: u16) -> Result<Outcome> {
    let exe = std::env::current_exe()?;
    let endpoint = format!("tcp/127.0.0.1:{port}");
    let out_file = std::env::temp_dir().join(format!("raw-sub-{}-{port}.json", std::process::id()));
    let shm_s = shm.to_string();
    let common = ["--endpoint", endpoint.as_str(), "--shm", shm_s.as_str()];
    let mut sub = Command::new(&exe)
        .arg("raw-sub")
        .args(common)
        .args([
            "--frames",
            &frames.to_string(),
            "--out",
            out_file.to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .spawn()?;
    let publ = Command::new(&exe)
        .arg("raw-pub")
        .args(common)
        .args([
            "--frames",
            &frames.to_string(),
            "--size",
            &size.to_string(),
            "--fps",
            &fps.to_string(),
        ])
        .output()?;
    let sub_status = sub.wait()?;
    if !publ.status.success() || !sub_status.success() {
        bail!("raw case failed: {}", String::from_utf8_lossy(&publ.stderr));
    }
    let pub_cpu: f64 = String::from_utf8_lossy(&publ.stdout)
        .trim()
        .parse()
        .context("publisher CPU time")?;
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&out_file)?)?;
    let _ = std::fs::remove_file(&out_file);
    let seconds = r["seconds"].as_f64().unwrap_or(1.0);
    Ok(Outcome {
        p50_ms: r["p50_ns"].as_f64().unwrap_or(0.0) / 1e6,
        p99_ms: r["p99_ns"].as_f64().unwrap_or(0.0) / 1e6,
        fps: r["received"].as_f64().unwrap_or(0.0) / seconds,
        cpu_pct: (pub_cpu + r["cpu_seconds"].as_f64().unwrap_or(0.0)) / seconds * 100.0,
        received: r["received"].as_u64().unwrap_or(0),
        shm: r["shm"].as_u64().unwrap_or(0),
    })
}

fn raw_session(args: &[String], listen: bool) -> Result<zenoh::Session> {
    let endpoint = arg(args, "--endpoint").context("--endpoint")?.to_string();
    let shm = arg(args, "--shm") == Some("true");
    let (l, c) = if listen {
        (vec![endpoint], vec![])
    } else {
        (vec![], vec![endpoint])
    };
    let mut config = Config::default();
    for (k, v) in [
        ("mode", "\"peer\"".to_string()),
        ("scouting/multicast/enabled", "false".into()),
        ("listen/endpoints", serde_json::to_string(&l)?),
        ("connect/endpoints", serde_json::to_string(&c)?),
        ("connect/exit_on_failure", "false".into()),
        (
            "connect/retry",
            "{ period_init_ms: 20, period_max_ms: 250, period_increase_factor: 1.5 }".into(),
        ),
        ("transport/shared_memory/enabled", shm.to_string()),
        (
            "transport/shared_memory/transport_optimization/enabled",
            "false".into(),
        ),
    ] {
        config
            .insert_json5(k, &v)
            .map_err(|e| anyhow::anyhow!("{k}: {e}"))?;
    }
    zenoh::open(config)
        .wait()
        .map_err(|e| anyhow::anyhow!("{e}"))
}

fn raw_pub(args: &[String]) -> Result<()> {
    let frames: u64 = arg(args, "--frames").context("--frames")?.parse()?;
    let size: usize = arg(args, "--size").context("--size")?.parse()?;
    let fps: f64 = arg(args, "--fps").context("--fps")?.parse()?;
    let shm = arg(args, "--shm") == Some("true");
    let session = raw_session(args, true)?;
    let publisher = session
        .declare_publisher(KEY)
        .congestion_control(CongestionControl::Block)
        .express(true)
        .wait()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    // Wait for the subscriber, as our barrier does.
    while !publisher
        .matching_status()
        .wait()
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .matching()
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(200));
    let provider = if shm {
        let backend = PosixShmProviderBackend::builder(size * 7)
            .wait()
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        Some(ShmProviderBuilder::backend(backend).wait())
    } else {
        None
    };
    let mut heap = vec![0u8; size];
    let start = now_ns();
    let cpu_start = cpu_seconds();
    for i in 0..frames {
        if fps > 0.0 {
            node_api::clock::sleep_until_ns(start + (i as f64 * 1e9 / fps) as u64);
        }
        if let Some(p) = &provider {
            let mut buf = p
                .alloc(size)
                .with_policy::<BlockOn<GarbageCollect>>()
                .wait()
                .map_err(|e| anyhow::anyhow!("{e:?}"))?;
            buf[..8].copy_from_slice(&i.to_le_bytes());
            buf[8..16].copy_from_slice(&now_ns().to_le_bytes());
            publisher
                .put(buf)
                .wait()
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        } else {
            heap[..8].copy_from_slice(&i.to_le_bytes());
            heap[8..16].copy_from_slice(&now_ns().to_le_bytes());
            // zenoh takes ownership of what it sends: one copy, as any socket path needs.
            publisher
                .put(heap.clone())
                .wait()
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        }
    }
    let cpu = cpu_seconds() - cpu_start;
    // Let the last frames drain before closing.
    std::thread::sleep(Duration::from_millis(500));
    println!("{cpu}");
    Ok(())
}

fn raw_sub(args: &[String]) -> Result<()> {
    let frames: u64 = arg(args, "--frames").context("--frames")?.parse()?;
    let out: PathBuf = arg(args, "--out").context("--out")?.into();
    let session = raw_session(args, false)?;
    // The ordinary put/recv pattern: zenoh's receive thread hands samples to
    // the application thread through the subscriber's channel.
    let sub = session
        .declare_subscriber(KEY)
        .wait()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut latencies = Vec::with_capacity(frames as usize);
    let (mut received, mut shm) = (0u64, 0u64);
    let (mut first_sent, mut cpu_first) = (0u64, 0.0);
    while received < frames {
        let Ok(Some(sample)) = sub.recv_timeout(Duration::from_secs(60)) else {
            break;
        };
        let now = now_ns();
        let p = sample.payload();
        let sent = match p.as_shm() {
            Some(b) => {
                shm += 1;
                u64::from_le_bytes(b[8..16].try_into().unwrap())
            }
            None => u64::from_le_bytes(p.to_bytes()[8..16].try_into().unwrap()),
        };
        if received == 0 {
            first_sent = sent;
            cpu_first = cpu_seconds();
        }
        latencies.push(now.saturating_sub(sent));
        received += 1;
    }
    let seconds = (now_ns() - first_sent) as f64 / 1e9;
    let mut l = latencies;
    l.sort_unstable();
    let pct = |q: f64| {
        l.get(((l.len() as f64 - 1.0) * q) as usize)
            .copied()
            .unwrap_or(0)
    };
    let result = serde_json::json!({
        "received": received,
        "shm": shm,
        "p50_ns": pct(0.5),
        "p99_ns": pct(0.99),
        "seconds": seconds,
        "cpu_seconds": cpu_seconds() - cpu_first,
    });
    std::fs::write(out, serde_json::to_vec(&result)?)?;
    Ok(())
}
