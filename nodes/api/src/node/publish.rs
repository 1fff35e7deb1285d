//! The node's counters, published about every 500 ms from a thread of its
//! own (so a node whose main loop is stuck still says so: see the runtime's
//! hang detection) and once more as it finishes.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use zenoh::Wait;

use super::Node;
use crate::keys;
use crate::queue::Queues;
use crate::stats::{Metrics, NodeStats, OutputCounters};

impl Node {
    /// The node's counters right now.
    pub fn stats(&self) -> NodeStats {
        snapshot(
            &self.config.node_id,
            &self.queues,
            &self.outputs_counters(),
            &self.metrics,
        )
    }

    fn outputs_counters(&self) -> Vec<(String, Arc<OutputCounters>)> {
        self.outputs
            .iter()
            .map(|o| (o.config.name.clone(), o.counters.clone()))
            .collect()
    }

    /// The node's last counters, sent as it finishes. They go out like
    /// frames do (reliable, waiting for room instead of dropped when the link
    /// is busy): the report and an app's summary count from them, and the
    /// periodic ones before may not have seen the end (an encoder's flush).
    pub(super) fn publish_last_stats(&self) {
        crate::cpu::mark(crate::cpu::Mark::End);
        let stats = NodeStats {
            last: true,
            ..self.stats()
        };
        let _ = self
            .session
            .put(
                keys::stats(&self.config.run_id, &self.config.node_id),
                serde_json::to_vec(&stats).unwrap_or_default(),
            )
            .congestion_control(zenoh::qos::CongestionControl::Block)
            .reliability(zenoh::qos::Reliability::Reliable)
            .wait();
    }

    pub(super) fn spawn_stats_thread(&mut self) {
        let session = self.session.clone();
        let key = keys::stats(&self.config.run_id, &self.config.node_id);
        let node = self.config.node_id.clone();
        let queues = self.queues.clone();
        let outputs = self.outputs_counters();
        let metrics = self.metrics.clone();
        let stop = self.stats_stop.clone();
        self.stats_thread = Some(
            std::thread::Builder::new()
                .name("stats".into())
                .spawn(move || {
                    let mut next = Instant::now();
                    while !stop.load(Ordering::SeqCst) {
                        next += Duration::from_millis(500);
                        // Any library thread made real-time since (see sched).
                        crate::sched::demote_realtime_threads();
                        let stats = snapshot(&node, &queues, &outputs, &metrics);
                        let _ = session
                            .put(&key, serde_json::to_vec(&stats).unwrap_or_default())
                            .wait();
                        // Parked, not polling: nine processes waking every few
                        // ms cost more CPU than their stats; finishing unparks.
                        while !stop.load(Ordering::SeqCst) {
                            let now = Instant::now();
                            if now >= next {
                                break;
                            }
                            std::thread::park_timeout(next - now);
                        }
                    }
                })
                .expect("spawn stats thread"),
        );
    }
}

fn snapshot(
    node: &str,
    queues: &Queues,
    outputs: &[(String, Arc<OutputCounters>)],
    metrics: &Metrics,
) -> NodeStats {
    let (rss_bytes, cpu_seconds) = crate::stats::process_usage();
    let inputs: std::collections::BTreeMap<_, _> = queues.snapshot().into_iter().collect();
    let mut metrics = metrics.snapshot();
    // A source stamps capture times: how well its clock follows the
    // reference machine's says how far they can be trusted.
    let clock = crate::clock::model();
    if clock.remote && inputs.is_empty() {
        metrics.insert(crate::metrics::CLOCK_RATE_PPM.into(), -clock.rate_ppm);
        metrics.insert(
            crate::metrics::CLOCK_UNCERTAINTY_MS.into(),
            clock.uncertainty_ns as f64 / 1e6,
        );
    }
    NodeStats {
        node: node.to_string(),
        pid: std::process::id(),
        inputs,
        outputs: outputs
            .iter()
            .map(|(n, c)| (n.clone(), c.snapshot()))
            .collect(),
        metrics,
        rss_bytes,
        cpu_seconds,
        cpu_phases: crate::cpu::phases(),
        cpu_threads: crate::cpu::thread_groups(),
        last: false,
    }
}
