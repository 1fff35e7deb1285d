//! What a node restart needs beyond spawning the process again: repeating an
//! end-of-stream the new incarnation missed, and keeping the counters of the
//! incarnations that died.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use anyhow::{anyhow, Result};
use node_api::{keys, metrics, InputStats, NodeStats, OutputStats};
use zenoh::Wait;

use crate::graph::NodeDef;

/// The (node, output) pairs whose end-of-stream has been sent, as announced by
/// the nodes themselves, or by the runtime for a node that died (then `true`);
/// with the time a node said it sent it (capture clock, ns).
#[derive(Clone, Default)]
pub struct ClosedOutputs(
    Arc<Mutex<HashMap<(String, String), bool>>>,
    Arc<Mutex<HashMap<(String, String), u64>>>,
);

impl ClosedOutputs {
    /// Listens for the nodes' "closed" announcements.
    pub fn subscribe(
        &self,
        session: &zenoh::Session,
        run_id: &str,
    ) -> Result<zenoh::pubsub::Subscriber<()>> {
        let set = self.0.clone();
        let times = self.1.clone();
        session
            .declare_subscriber(keys::closed_all(run_id))
            .callback(move |sample| {
                if let Some(pair) = keys::parse_closed(sample.key_expr().as_str()) {
                    let at = String::from_utf8_lossy(&sample.payload().to_bytes()).parse();
                    if let Ok(at) = at {
                        times.lock().unwrap().entry(pair.clone()).or_insert(at);
                    }
                    set.lock().unwrap().entry(pair).or_insert(false);
                }
            })
            .wait()
            .map_err(|e| anyhow!("{e}"))
    }

    /// Records an end-of-stream the runtime sent for a dead node.
    pub fn insert_by_runtime(&self, node: &str, output: &str) {
        self.0
            .lock()
            .unwrap()
            .insert((node.to_string(), output.to_string()), true);
    }

    /// Whether the end-of-stream of `node`'s `output` has been sent.
    pub fn is_closed(&self, node: &str, output: &str) -> bool {
        self.get(node, output).is_some()
    }

    /// When `node` said it sent the end-of-stream of `output` (capture clock, ns).
    pub fn closed_at_ns(&self, node: &str, output: &str) -> Option<u64> {
        self.1
            .lock()
            .unwrap()
            .get(&(node.to_string(), output.to_string()))
            .copied()
    }

    /// `None`: not closed; `Some(true)`: closed by the runtime.
    fn get(&self, node: &str, output: &str) -> Option<bool> {
        self.0
            .lock()
            .unwrap()
            .get(&(node.to_string(), output.to_string()))
            .copied()
    }
}

/// The latest state each node saved for its next incarnation.
#[derive(Clone, Default)]
pub struct ResumeStates(Arc<Mutex<HashMap<String, serde_json::Value>>>);

impl ResumeStates {
    pub fn subscribe(
        &self,
        session: &zenoh::Session,
        run_id: &str,
    ) -> Result<zenoh::pubsub::Subscriber<()>> {
        let states = self.0.clone();
        let prefix = keys::resume_state(run_id, "");
        session
            .declare_subscriber(keys::resume_state_all(run_id))
            .callback(move |sample| {
                let key = sample.key_expr().as_str();
                let value = serde_json::from_slice(&sample.payload().to_bytes());
                if let (Some(node), Ok(value)) = (key.strip_prefix(&prefix), value) {
                    states.lock().unwrap().insert(node.to_string(), value);
                }
            })
            .wait()
            .map_err(|e| anyhow!("{e}"))
    }

    pub fn get(&self, node: &str) -> Option<serde_json::Value> {
        self.0.lock().unwrap().get(node).cloned()
    }
}

/// Repeats the end-of-stream of the inputs of `def` (once each: `done`) that
/// it may have missed: all those already closed when `def` is a restarted
/// node (it subscribed after the end-of-stream went by), and those the
/// runtime closed for a dead node (that may have happened before `def`
/// subscribed, e.g. a source failing at start). A node that already has the
/// end-of-stream ignores the repeat. Returns the inputs closed this way.
pub fn replay_missed_eos(
    session: &zenoh::Session,
    run_id: &str,
    def: &NodeDef,
    restarted: bool,
    closed: &ClosedOutputs,
    done: &HashSet<String>,
) -> Vec<String> {
    let mut replayed = Vec::new();
    for input in def.inputs.iter().filter(|i| !done.contains(&i.name)) {
        let state = closed.get(&input.source_node, &input.source_output);
        if state == Some(true) || (restarted && state.is_some()) {
            put_end_of_stream(session, run_id, &input.source_node, &input.source_output);
            replayed.push(input.name.clone());
        }
    }
    replayed
}

/// Publishes an end-of-stream on `node`'s `output`, as the node itself would.
pub fn put_end_of_stream(session: &zenoh::Session, run_id: &str, node: &str, output: &str) {
    let _ = session
        .put(keys::data(run_id, node, output), Vec::<u8>::new())
        .attachment(node_api::end_of_stream_attachment())
        .congestion_control(zenoh::qos::CongestionControl::Block)
        .wait();
}

/// The last published counters of every node's dead incarnations, so the
/// report counts the whole run and not only the last incarnation. They were
/// published up to half a second before the process died: the last moments
/// of a killed incarnation are not counted (the restart gap measured by its
/// consumers covers them).
#[derive(Default)]
pub struct EarlierIncarnations(HashMap<String, NodeStats>);

impl EarlierIncarnations {
    /// Keeps `last` (the dead incarnation's last stats) for `node`.
    pub fn bank(&mut self, node: &str, last: Option<NodeStats>) {
        let Some(last) = last else { return };
        let sum = self.0.entry(node.to_string()).or_default();
        add_counters(sum, &last);
    }

    /// The final stats of `node` with its earlier incarnations' counters added.
    pub fn merged(&self, node: &str, last: Option<NodeStats>) -> Option<NodeStats> {
        match (self.0.get(node), last) {
            (None, last) => last,
            (Some(earlier), None) => Some(earlier.clone()),
            (Some(earlier), Some(mut last)) => {
                add_counters(&mut last, earlier);
                Some(last)
            }
        }
    }
}

/// Adds the message counters of `more` to `sum` (gauges such as queue depth,
/// RSS and metrics stay those of `sum`).
fn add_counters(sum: &mut NodeStats, more: &NodeStats) {
    if sum.node.is_empty() {
        sum.node = more.node.clone();
    }
    for (name, i) in &more.inputs {
        let s: &mut InputStats = sum.inputs.entry(name.clone()).or_default();
        s.received += i.received;
        s.dropped += i.dropped;
        s.shm_payloads += i.shm_payloads;
        s.copied_payloads += i.copied_payloads;
        s.sender_restarts += i.sender_restarts;
        s.restart_gap_s += i.restart_gap_s;
        s.restart_gap_messages += i.restart_gap_messages;
    }
    for (name, o) in &more.outputs {
        let s: &mut OutputStats = sum.outputs.entry(name.clone()).or_default();
        s.sent += o.sent;
        s.bytes += o.bytes;
        s.pool_waits += o.pool_waits;
    }
    sum.cpu_seconds += more.cpu_seconds;
}

/// Media lost across the restarts of `node`, as its consumers measured it:
/// (messages, seconds) — per output the worst consumer, summed over outputs
/// for messages, the longest gap for seconds — or as the node measured it
/// itself (a mux: what never reached a file), whichever is larger.
pub fn restart_loss(
    node: &NodeDef,
    consumers: &[&NodeDef],
    stats: &BTreeMap<String, NodeStats>,
) -> (u64, f64) {
    let mut messages = 0;
    let mut seconds: f64 = 0.0;
    for out in &node.outputs {
        let mut worst = (0, 0.0f64);
        for c in consumers {
            for input in c
                .inputs
                .iter()
                .filter(|i| i.source_node == node.id && i.source_output == out.name)
            {
                if let Some(s) = stats.get(&c.id).and_then(|s| s.inputs.get(&input.name)) {
                    worst.0 = worst.0.max(s.restart_gap_messages);
                    worst.1 = worst.1.max(s.restart_gap_s);
                }
            }
        }
        messages += worst.0;
        seconds = seconds.max(worst.1);
    }
    if let Some(own) = stats.get(&node.id).map(|s| &s.metrics) {
        let metric = |name: &str| own.get(name).copied().unwrap_or(0.0).max(0.0);
        messages = messages.max(metric(metrics::RESTART_LOST_FRAMES).round() as u64);
        seconds = seconds.max(metric(metrics::RESTART_LOST_S));
    }
    (messages, seconds)
}
