//! `testkit-node`: a custom node (used by `path:`) whose behaviour is chosen by
//! its `mode` param. The runtime's tests use it to exercise spawning, the ready
//! barrier, end-of-stream, restarts, queue policies and zero-copy delivery with
//! real processes, without any media library in the way.
//!
//! Params:
//! - `mode`: `source` | `relay` | `sink` | `fail`
//! - source: `count` (frames, default 10; 0 = until stopped), `width`/`height`
//!   (frame size, default 64×48), `pixel_format` (yuv420p or rgb24), `fps` (0 = unpaced, default 0)
//!   `no_drop` (replay semantics: no queue downstream may drop)
//! - relay: forwards every frame unchanged (same shared-memory buffer)
//! - sink: `delay_ms` per frame (a slow consumer), `result` (JSON file written at the end)
//! - fail: exits with status 3 after `after` messages (default 0)
//! - any mode: `start_delay_ms` — sleep before joining the graph;
//!   `crash_after` — abort the process (no cleanup) after that many messages,
//!   unless this is a restart and `crash_once` is true; `crash_on_eos` — abort
//!   when an input ends (same `crash_once` rule)

use std::time::Duration;

use anyhow::{bail, Result};
use node_api::{clock, Event, Header, Node, PixelFormat, TimeBase, VideoFrame};

/// The defaults of the params above: a custom node has no catalog entry,
/// so they are written here, once.
const DEFAULT_MODE: &str = "relay";
const DEFAULT_COUNT: i64 = 10;
const DEFAULT_WIDTH: i64 = 64;
const DEFAULT_HEIGHT: i64 = 48;
/// 0: unpaced.
const DEFAULT_FPS: f64 = 0.0;
const DEFAULT_PIXEL_FORMAT: &str = "yuv420p";
/// `no_drop`, `crash_once`, `crash_on_eos`.
const DEFAULT_FLAG: bool = false;
/// `linger_ms`, `delay_ms`.
const DEFAULT_MS: i64 = 0;
/// 0: at start.
const DEFAULT_AFTER: i64 = 0;

fn main() {
    node_api::run_main(run);
}

fn run() -> Result<()> {
    // A late subscriber: the ready barrier must hold the source until we are here.
    if let Ok(config) = node_api::NodeConfig::from_env() {
        if let Some(ms) = config.params.i64("start_delay_ms") {
            std::thread::sleep(Duration::from_millis(ms as u64));
        }
    }
    let mut node = Node::init()?;
    let params = node.params().clone();
    let crash_after = params.i64("crash_after");
    let crash_once = params.bool_or("crash_once", DEFAULT_FLAG);
    let may_crash = !(crash_once && node.config().restart_count > 0);
    let maybe_crash = |n: i64| {
        if may_crash && crash_after == Some(n) {
            tracing::warn!("crashing on purpose after {n} messages");
            std::process::abort();
        }
    };
    match params.str_or("mode", DEFAULT_MODE) {
        "source" => {
            let count = params.i64_or("count", DEFAULT_COUNT);
            let (w, h) = (
                params.i64_or("width", DEFAULT_WIDTH) as u32,
                params.i64_or("height", DEFAULT_HEIGHT) as u32,
            );
            let fps = params.f64_or("fps", DEFAULT_FPS);
            let format = match params.str_or("pixel_format", DEFAULT_PIXEL_FORMAT) {
                "rgb24" => PixelFormat::Rgb24,
                _ => PixelFormat::Yuv420p,
            };
            let layout = format.packed_layout(w, h);
            node.reserve("video", layout.size)?;
            node.set_no_drop(params.bool_or("no_drop", DEFAULT_FLAG));
            if !node.wait_for_start()? {
                return node.finish();
            }
            let start = clock::now_ns();
            let cpu_start = node_api::cpu_seconds();
            let mut i: i64 = 0;
            while (count == 0 || i < count) && !node.stop_requested() {
                if fps > 0.0 {
                    clock::sleep_until_ns(start + (i as f64 * 1e9 / fps) as u64);
                }
                let mut buf = node.alloc("video", layout.size)?;
                // Each frame carries its index in its first bytes, so sinks can check content.
                buf[..8].copy_from_slice(&(i as u64).to_le_bytes());
                let frame = VideoFrame {
                    format,
                    width: w,
                    height: h,
                    layout,
                    pts: i,
                    time_base: TimeBase::new(1, 30),
                    duration: 1,
                    capture_ns: clock::now_ns(),
                };
                node.send_video("video", frame, buf)?;
                i += 1;
                maybe_crash(i);
            }
            tracing::info!("sent {i} frames");
            // CPU spent streaming (not starting up), for the transport bench.
            node.metrics()
                .set("stream_cpu_seconds", node_api::cpu_seconds() - cpu_start);
            node.metrics()
                .set("stream_seconds", (clock::now_ns() - start) as f64 / 1e9);
            std::thread::sleep(Duration::from_millis(
                params.i64_or("linger_ms", DEFAULT_MS) as u64,
            ));
            node.finish()
        }
        "relay" => {
            let mut n = 0;
            let crash_on_eos = params.bool_or("crash_on_eos", DEFAULT_FLAG);
            while let Some(event) = node.next_event()? {
                if matches!(event, Event::InputClosed { .. }) && crash_on_eos && may_crash {
                    tracing::warn!("crashing on purpose at end-of-stream");
                    std::process::abort();
                }
                if let Event::Input { message, .. } = event {
                    let out = node.config().outputs.first().map(|o| o.name.clone());
                    if let Some(out) = out {
                        node.forward(&out, message.header.clone(), &message.payload)?;
                    }
                    n += 1;
                    maybe_crash(n);
                }
            }
            node.finish()
        }
        "sink" => {
            let delay = Duration::from_millis(params.i64_or("delay_ms", DEFAULT_MS) as u64);
            let mut received = 0u64;
            let mut in_order = true;
            let mut last: Option<u64> = None;
            let mut shm = 0u64;
            let mut eos = 0u64;
            let mut stop_seen = false;
            let mut param_updates = Vec::new();
            let mut latencies = Vec::with_capacity(1 << 16);
            let mut cpu_first = None;
            while let Some(event) = node.next_event()? {
                match event {
                    Event::Input { message, .. } => {
                        cpu_first.get_or_insert_with(node_api::cpu_seconds);
                        if let Header::Video(v) = &message.header {
                            latencies.push(clock::now_ns().saturating_sub(v.capture_ns));
                        }
                        let data = message.payload.as_slice();
                        let index = u64::from_le_bytes(data[..8].try_into()?);
                        if last.is_some_and(|l| index <= l) {
                            in_order = false;
                        }
                        last = Some(index);
                        if message.payload.is_shm() {
                            shm += 1;
                        }
                        received += 1;
                        maybe_crash(received as i64);
                        std::thread::sleep(delay);
                    }
                    Event::InputClosed { .. } => eos += 1,
                    Event::Stop => stop_seen = true,
                    Event::ParamUpdate { name, value } => {
                        param_updates.push(serde_json::json!({ name: value }))
                    }
                }
            }
            let stats = node.stats();
            let dropped: u64 = stats.inputs.values().map(|i| i.dropped).sum();
            let copies: u64 = stats.inputs.values().map(|i| i.copied_payloads).sum();
            latencies.sort_unstable();
            let pct = |p: f64| {
                latencies
                    .get(((latencies.len() as f64 - 1.0) * p) as usize)
                    .copied()
                    .unwrap_or(0)
            };
            let result = serde_json::json!({
                "received": received,
                "in_order": in_order,
                "last_index": last,
                "shm_payloads": shm,
                "copied_payloads": copies,
                "dropped": dropped,
                "end_of_stream": eos,
                "stop_seen": stop_seen,
                "param_updates": param_updates,
                "latency_p50_ns": pct(0.5),
                "latency_p99_ns": pct(0.99),
                "stream_cpu_seconds": cpu_first.map_or(0.0, |c| node_api::cpu_seconds() - c),
            });
            tracing::info!("sink result: {result}");
            if let Some(path) = params.str("result") {
                std::fs::write(path, serde_json::to_vec_pretty(&result)?)?;
            }
            node.finish()
        }
        "fail" => {
            let after = params.i64_or("after", DEFAULT_AFTER);
            let mut n = 0;
            if after == 0 {
                bail!("failing on purpose at start");
            }
            while let Some(event) = node.next_event()? {
                if let Event::Input { .. } = event {
                    n += 1;
                    if n >= after {
                        tracing::error!("failing on purpose after {n} messages");
                        std::process::exit(3);
                    }
                }
            }
            node.finish()
        }
        other => bail!("unknown mode `{other}` (source, relay, sink, fail)"),
    }
}
