//! Counters every node keeps and publishes every 0.5 s; the runtime
//! shows them in its status line and writes them to the `--report` JSON.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// A snapshot of one node's counters, as published.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct NodeStats {
    pub node: String,
    pub pid: u32,
    pub inputs: BTreeMap<String, InputStats>,
    pub outputs: BTreeMap<String, OutputStats>,
    /// Node-specific figures: bitrate, A/V offset, latency percentiles, ...
    /// (their names: [`crate::metrics`]).
    pub metrics: BTreeMap<String, f64>,
    /// Resident set size of the node process, bytes.
    pub rss_bytes: u64,
    /// CPU time used by the node process so far, seconds.
    pub cpu_seconds: f64,
    /// The process's CPU seconds (all threads) when it reached each point
    /// of its life so far: `entry` (its `main`: exec and dynamic linking
    /// before it), `armed` (set up: config, session, codec), `started` (the
    /// runtime's barrier let the graph go), `first_message` (first received
    /// or sent), `end_of_stream` (every input ended, or a source finishing),
    /// `end` (its last stats). Differences between them give each phase.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub cpu_phases: BTreeMap<String, f64>,
    /// CPU seconds from `first_message` to `end_of_stream` per group of
    /// threads: `zenoh` (its runtimes and shared-memory watchdogs),
    /// `node_api` (the stats thread), `main` (the event loop and what it
    /// calls), `other` (codec workers, and any thread that ended within).
    /// They add up to that window; empty until it closes.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub cpu_threads: BTreeMap<String, f64>,
    /// The node's final counters, sent as it finished (the report waits
    /// for them).
    #[serde(default)]
    pub last: bool,
}

impl NodeStats {
    /// Everything the node dropped: its input queues' drops and its own
    /// ([`crate::metrics::DROPPED`]).
    pub fn dropped(&self) -> u64 {
        let own = self.metrics.get(crate::metrics::DROPPED).copied();
        self.inputs.values().map(|i| i.dropped).sum::<u64>() + own.unwrap_or(0.0) as u64
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct InputStats {
    pub received: u64,
    /// Dropped on purpose by this input's drop-oldest queue (a live stream
    /// that fell behind).
    pub dropped: u64,
    /// Sent but never received: gaps in the sender's numbering, the end of
    /// stream included (e.g. a shared-memory buffer the transport could not
    /// map). In a no_drop stream a loss fails the run.
    #[serde(default)]
    pub lost: u64,
    /// The stream must arrive whole (a replay faster than real time).
    #[serde(default)]
    pub no_drop: bool,
    /// The first loss: which messages, and its cause where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_loss: Option<String>,
    pub queue_depth: u64,
    pub queue_capacity: u64,
    /// Payloads that arrived as a view of shared memory (no copy).
    pub shm_payloads: u64,
    /// Payloads that had to be copied to be read as one slice.
    pub copied_payloads: u64,
    /// Times the sender started over (it was restarted after a crash).
    #[serde(default)]
    pub sender_restarts: u64,
    /// Media missing across those restarts: the gap between the end of the
    /// last message before and the first one after, in seconds and in
    /// messages of the size seen just before.
    #[serde(default)]
    pub restart_gap_s: f64,
    #[serde(default)]
    pub restart_gap_messages: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct OutputStats {
    pub sent: u64,
    pub bytes: u64,
    /// Sends that waited for a free shared-memory buffer (slow consumer).
    pub pool_waits: u64,
    /// Forwarded buffers whose transport watchdog had expired while this
    /// node held them (it was stopped or starved): copied, not lost.
    #[serde(default)]
    pub stale_copies: u64,
}

#[derive(Default)]
pub(crate) struct OutputCounters {
    pub sent: AtomicU64,
    pub bytes: AtomicU64,
    pub pool_waits: AtomicU64,
    pub stale_copies: AtomicU64,
}

impl OutputCounters {
    pub fn snapshot(&self) -> OutputStats {
        OutputStats {
            sent: self.sent.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            pool_waits: self.pool_waits.load(Ordering::Relaxed),
            stale_copies: self.stale_copies.load(Ordering::Relaxed),
        }
    }
}

/// Node-specific metrics set by node code (the built-in nodes' names:
/// [`crate::metrics`]).
#[derive(Default)]
pub struct Metrics {
    values: Mutex<BTreeMap<String, f64>>,
}

impl Metrics {
    pub fn set(&self, name: &str, value: f64) {
        let mut m = self.values.lock().unwrap();
        match m.get_mut(name) {
            Some(v) => *v = value,
            None => {
                m.insert(name.to_string(), value);
            }
        }
    }
    pub fn add(&self, name: &str, delta: f64) {
        let mut m = self.values.lock().unwrap();
        *m.entry(name.to_string()).or_insert(0.0) += delta;
    }
    pub fn snapshot(&self) -> BTreeMap<String, f64> {
        self.values.lock().unwrap().clone()
    }
}

/// CPU time (user + system) this process has used so far, in seconds.
pub fn cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the struct we own.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// RSS and CPU time of this process from /proc.
pub(crate) fn process_usage() -> (u64, f64) {
    let page = 4096u64;
    let rss = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * page);
    let cpu = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // Fields after the command name (which may contain spaces) end in ')'.
            let rest = &s[s.rfind(')')? + 2..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            let utime: f64 = f.get(11)?.parse().ok()?;
            let stime: f64 = f.get(12)?.parse().ok()?;
            // SAFETY: sysconf has no preconditions.
            let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
            Some((utime + stime) / hz)
        })
        .unwrap_or(0.0);
    (rss, cpu)
}
