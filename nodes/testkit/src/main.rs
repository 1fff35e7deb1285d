//! `testkit-node`: a custom node (used by `path:`) whose behaviour is chosen by
//! its `mode` param. The runtime's tests use it to exercise spawning, the
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
use node_api::{
    clock, metrics, Event, Header, Message, Node, NodeStats, Params, PixelFormat, TimeBase,
    VideoFrame,
};

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
    delay_start();
    let node = Node::init()?;
    let params = node.params().clone();
    let crash = Crash::from_params(&node, &params);
    match params.str_or("mode", DEFAULT_MODE) {
        "source" => source(node, &params, &crash),
        "relay" => relay(node, &params, &crash),
        "sink" => sink(node, &params, &crash),
        "fail" => fail(node, &params),
        other => bail!("unknown mode `{other}` (source, relay, sink, fail)"),
    }
}

/// A late subscriber: the barrier must hold the source until we are here.
fn delay_start() {
    if let Ok(config) = node_api::NodeConfig::from_env() {
        if let Some(ms) = config.params.i64("start_delay_ms") {
            std::thread::sleep(Duration::from_millis(ms as u64));
        }
    }
}

/// `crash_after` / `crash_once`: abort the process after that many messages.
struct Crash {
    after: Option<i64>,
    /// False in a restarted process when `crash_once` is set.
    allowed: bool,
}

impl Crash {
    fn from_params(node: &Node, params: &Params) -> Crash {
        let once = params.bool_or("crash_once", DEFAULT_FLAG);
        Crash {
            after: params.i64("crash_after"),
            allowed: !(once && node.config().restart_count > 0),
        }
    }

    fn maybe(&self, messages: i64) {
        if self.allowed && self.after == Some(messages) {
            tracing::warn!("crashing on purpose after {messages} messages");
            std::process::abort();
        }
    }
}

fn source(mut node: Node, params: &Params, crash: &Crash) -> Result<()> {
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
        crash.maybe(i);
    }
    tracing::info!("sent {i} frames");
    // CPU spent streaming (not starting up), for the transport bench.
    node.metrics().set(
        metrics::STREAM_CPU_SECONDS,
        node_api::cpu_seconds() - cpu_start,
    );
    node.metrics().set(
        metrics::STREAM_SECONDS,
        (clock::now_ns() - start) as f64 / 1e9,
    );
    std::thread::sleep(Duration::from_millis(
        params.i64_or("linger_ms", DEFAULT_MS) as u64,
    ));
    node.finish()
}

/// Forwards every frame unchanged (the same shared-memory buffer) to the first output.
fn relay(mut node: Node, params: &Params, crash: &Crash) -> Result<()> {
    let mut n = 0;
    let crash_on_eos = params.bool_or("crash_on_eos", DEFAULT_FLAG);
    while let Some(event) = node.next_event()? {
        if matches!(event, Event::InputClosed { .. }) && crash_on_eos && crash.allowed {
            tracing::warn!("crashing on purpose at end-of-stream");
            std::process::abort();
        }
        if let Event::Input { message, .. } = event {
            let out = node.config().outputs.first().map(|o| o.name.clone());
            if let Some(out) = out {
                node.forward(&out, message.header.clone(), &message.payload)?;
            }
            n += 1;
            crash.maybe(n);
        }
    }
    node.finish()
}

/// What a sink saw, written as its `result` JSON at the end.
#[derive(Default)]
struct Tally {
    received: u64,
    in_order: bool,
    last: Option<u64>,
    shm: u64,
    eos: u64,
    stop_seen: bool,
    param_updates: Vec<serde_json::Value>,
    latencies: Vec<u64>,
    cpu_first: Option<f64>,
}

impl Tally {
    fn input(&mut self, message: &Message) -> Result<()> {
        self.cpu_first.get_or_insert_with(node_api::cpu_seconds);
        if let Header::Video(v) = &message.header {
            self.latencies
                .push(clock::now_ns().saturating_sub(v.capture_ns));
        }
        let data = message.payload.as_slice();
        let index = u64::from_le_bytes(data[..8].try_into()?);
        if self.last.is_some_and(|l| index <= l) {
            self.in_order = false;
        }
        self.last = Some(index);
        if message.payload.is_shm() {
            self.shm += 1;
        }
        self.received += 1;
        Ok(())
    }

    fn result(mut self, stats: &NodeStats) -> serde_json::Value {
        let dropped: u64 = stats.inputs.values().map(|i| i.dropped).sum();
        let copies: u64 = stats.inputs.values().map(|i| i.copied_payloads).sum();
        self.latencies.sort_unstable();
        let pct = |p: f64| {
            let last = self.latencies.len() as f64 - 1.0;
            self.latencies
                .get((last * p) as usize)
                .copied()
                .unwrap_or(0)
        };
        serde_json::json!({
            "received": self.received,
            "in_order": self.in_order,
            "last_index": self.last,
            "shm_payloads": self.shm,
            "copied_payloads": copies,
            "dropped": dropped,
            "end_of_stream": self.eos,
            "stop_seen": self.stop_seen,
            "param_updates": self.param_updates,
            "latency_p50_ns": pct(0.5),
            "latency_p99_ns": pct(0.99),
            "stream_cpu_seconds": self.cpu_first.map_or(0.0, |c| node_api::cpu_seconds() - c),
        })
    }
}

/// Counts and checks what arrives (`delay_ms` per frame: a slow consumer);
/// writes the tally to `result`.
fn sink(mut node: Node, params: &Params, crash: &Crash) -> Result<()> {
    let delay = Duration::from_millis(params.i64_or("delay_ms", DEFAULT_MS) as u64);
    let mut tally = Tally {
        in_order: true,
        latencies: Vec::with_capacity(1 << 16),
        ..Tally::default()
    };
    while let Some(event) = node.next_event()? {
        match event {
            Event::Input { message, .. } => {
                tally.input(&message)?;
                crash.maybe(tally.received as i64);
                std::thread::sleep(delay);
            }
            Event::InputClosed { .. } => tally.eos += 1,
            Event::Stop => tally.stop_seen = true,
            Event::ParamUpdate { name, value, .. } => {
                tally.param_updates.push(serde_json::json!({ name: value }))
            }
        }
    }
    let result = tally.result(&node.stats());
    tracing::info!("sink result: {result}");
    if let Some(path) = params.str("result") {
        std::fs::write(path, serde_json::to_vec_pretty(&result)?)?;
    }
    node.finish()
}

/// Exits with status 3 after `after` messages (0: fails at start).
fn fail(mut node: Node, params: &Params) -> Result<()> {
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
