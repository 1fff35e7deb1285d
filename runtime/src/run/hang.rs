//! Nodes that stop making progress. Every node publishes its counters about
//! every 500 ms from a thread of its own: a process that is stopped (SIGSTOP,
//! a debugger) or wedged in the kernel publishes nothing, and one whose main
//! loop is stuck publishes counters that no longer move while its input
//! queues are full. Either way the node is hung. A node whose queues are full
//! because a consumer of it is hung is blocked, not hung: only the hung node
//! furthest downstream is the cause.
//!
//! While recording, a node hung for `--hang-timeout` is killed and restarted
//! like a crash. At stop, a node that makes no progress for
//! [`STOP_STUCK_AFTER`] (or the hang timeout, if shorter) is killed and its
//! streams are ended on its behalf, so the nodes downstream still finalize.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use node_api::NodeStats;

use super::ending::{end_for, Blame};
use super::restarts::ClosedOutputs;
use super::{NodeState, Supervised};
use crate::graph::Graph;

/// Missing stats for this long (four publications) mean a node is silent.
const SILENT_AFTER: Duration = Duration::from_secs(2);
/// A new incarnation may take this long to connect and publish its first stats.
const STARTUP_SILENCE: Duration = Duration::from_secs(5);
/// Counters still with full input queues for this long mean a node is stalled.
const STALLED_AFTER: Duration = Duration::from_secs(2);
/// At stop, a node without progress for this long is stuck: it will not
/// finish by itself, and the nodes downstream of it wait for its end-of-stream.
pub const STOP_STUCK_AFTER: Duration = Duration::from_secs(3);

/// When each node's stats last arrived, fed by the stats subscriber.
#[derive(Clone, Default)]
pub struct Heard(Arc<Mutex<HashMap<String, Instant>>>);

impl Heard {
    pub fn note(&self, node: &str) {
        self.0
            .lock()
            .unwrap()
            .insert(node.to_string(), Instant::now());
    }

    fn get(&self, node: &str) -> Option<Instant> {
        self.0.lock().unwrap().get(node).copied()
    }
}

/// How a node fails to make progress.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Stall {
    /// No stats: the process does not run.
    Silent,
    /// Stats whose counters do not move while an input queue is full.
    Stuck,
    /// At stop, a source whose counters do not move and whose streams do not end.
    SourceStuck,
}

/// What one incarnation of a node was last seen doing.
struct Progress {
    generation: u32,
    spawned: Instant,
    /// Messages sent, and messages taken off the input queues.
    signature: Option<(u64, i64)>,
    progressed_at: Instant,
    /// When the counters last changed.
    moved_at: Instant,
}

/// A node that is hung right now: how, and since how long.
#[derive(Debug, Clone)]
pub struct Hung {
    stall: Stall,
    pub for_: Duration,
}

impl Hung {
    /// "no stats for 3.2 s" / "no progress for 3.2 s with its input queue full".
    pub fn describe(&self) -> String {
        let s = self.for_.as_secs_f64();
        match self.stall {
            Stall::Silent => format!("no stats for {s:.1} s: the process does not run"),
            Stall::Stuck => format!("no progress for {s:.1} s with an input queue full"),
            Stall::SourceStuck => {
                format!("sent nothing for {s:.1} s and did not end its streams after the stop")
            }
        }
    }
}

/// Watches the running nodes' progress.
pub struct HangWatch {
    /// `None`: hung nodes are reported, never killed while recording.
    timeout: Option<Duration>,
    heard: Heard,
    progress: HashMap<String, Progress>,
    hung: BTreeMap<String, Hung>,
    /// Times each node was found hung over the run.
    counts: HashMap<String, u32>,
    /// (generation, why) of incarnations the runtime killed for hanging.
    killed: HashMap<String, (u32, String)>,
    /// When the stop began.
    stop_at: Option<Instant>,
}

impl HangWatch {
    pub fn new(timeout: Option<Duration>) -> Self {
        HangWatch {
            timeout,
            heard: Heard::default(),
            progress: HashMap::new(),
            hung: BTreeMap::new(),
            counts: HashMap::new(),
            killed: HashMap::new(),
            stop_at: None,
        }
    }

    pub fn heard(&self) -> Heard {
        self.heard.clone()
    }

    /// Re-evaluates every running node (`(id, generation)`), logging the
    /// nodes that begin or stop hanging.
    pub fn update(
        &mut self,
        graph: &Graph,
        running: &[(String, u32)],
        stats: &HashMap<String, NodeStats>,
    ) {
        let now = Instant::now();
        let mut raw: HashMap<&str, Hung> = HashMap::new();
        for (id, generation) in running {
            if let Some(h) = self.observe(id, *generation, stats.get(id), now) {
                raw.insert(id.as_str(), h);
            }
        }
        self.progress
            .retain(|id, _| running.iter().any(|(r, _)| r == id));
        let mut hung = BTreeMap::new();
        for (id, h) in &raw {
            // Full queues behind a hung consumer are its doing, not ours: the
            // time held up does not count once that consumer is gone.
            let blocked = h.stall == Stall::Stuck
                && consumers(graph, id).any(|c| raw.contains_key(c.as_str()));
            if blocked {
                if let Some(p) = self.progress.get_mut(*id) {
                    p.progressed_at = now;
                }
            } else {
                hung.insert(id.to_string(), h.clone());
            }
        }
        for (id, h) in &hung {
            if !self.hung.contains_key(id) {
                *self.counts.entry(id.clone()).or_default() += 1;
                let what = match self.timeout {
                    Some(t) => format!(
                        "it is killed and restarted after {} s without progress (--hang-timeout)",
                        t.as_secs_f64()
                    ),
                    None => "--hang-timeout 0: it is left alone".into(),
                };
                tracing::warn!("node `{id}` HUNG: {}; {what}", h.describe());
            }
        }
        for (id, h) in &self.hung {
            if !hung.contains_key(id) && running.iter().any(|(r, _)| r == id) {
                tracing::info!(
                    "node `{id}` makes progress again after {:.1} s",
                    h.for_.as_secs_f64()
                );
            }
        }
        self.hung = hung;
    }

    /// The stall of one node incarnation, if it has one.
    fn observe(
        &mut self,
        id: &str,
        generation: u32,
        stats: Option<&NodeStats>,
        now: Instant,
    ) -> Option<Hung> {
        let p = self.progress.entry(id.to_string()).or_insert(Progress {
            generation,
            spawned: now,
            signature: None,
            progressed_at: now,
            moved_at: now,
        });
        if p.generation != generation {
            *p = Progress {
                generation,
                spawned: now,
                signature: None,
                progressed_at: now,
                moved_at: now,
            };
        }
        let heard = self.heard.get(id).filter(|t| *t >= p.spawned);
        let Some(heard) = heard else {
            let silent = now - p.spawned;
            return (silent >= STARTUP_SILENCE).then_some(Hung {
                stall: Stall::Silent,
                for_: silent,
            });
        };
        if now - heard >= SILENT_AFTER {
            return Some(Hung {
                stall: Stall::Silent,
                for_: now - heard,
            });
        }
        let s = stats?;
        let signature = signature(s);
        if p.signature != Some(signature) {
            p.moved_at = heard;
        }
        if p.signature != Some(signature) || !queue_full(s) {
            p.signature = Some(signature);
            p.progressed_at = heard;
        }
        let still = now - p.progressed_at;
        (still >= STALLED_AFTER).then_some(Hung {
            stall: Stall::Stuck,
            for_: still,
        })
    }

    /// At stop, the sources whose counters have not moved for the stop limit
    /// since the stop began, and that have not ended their streams: e.g.
    /// waiting forever for shared-memory buffers a killed consumer held.
    /// (Nodes with inputs may sit still while they wait for their input to
    /// end, or finalize: they are only stuck with a full queue.)
    fn stuck_sources(
        &self,
        ctx: &Ctx,
        running: &[(String, u32)],
        stop_at: Instant,
    ) -> Vec<(String, Hung)> {
        let now = Instant::now();
        running
            .iter()
            .filter(|(id, _)| !self.hung.contains_key(id))
            .filter_map(|(id, _)| {
                let def = ctx.graph.nodes.iter().find(|d| &d.id == id)?;
                let open = def
                    .outputs
                    .iter()
                    .any(|o| !ctx.closed.is_closed(id, &o.name));
                let p = self.progress.get(id)?;
                let still = now - p.moved_at.max(stop_at);
                (def.inputs.is_empty() && open && still >= self.stop_limit()).then(|| {
                    (
                        id.clone(),
                        Hung {
                            stall: Stall::SourceStuck,
                            for_: still,
                        },
                    )
                })
            })
            .collect()
    }

    /// The nodes hung for at least `limit`.
    pub fn hung_for(&self, limit: Duration) -> Vec<(String, Hung)> {
        self.hung
            .iter()
            .filter(|(_, h)| h.for_ >= limit)
            .map(|(id, h)| (id.clone(), h.clone()))
            .collect()
    }

    /// The hung nodes the hang timeout says to kill and restart.
    pub fn overdue(&self) -> Vec<(String, Hung)> {
        self.timeout.map_or(Vec::new(), |t| self.hung_for(t))
    }

    /// At stop: how long without progress makes a node stuck.
    pub fn stop_limit(&self) -> Duration {
        self.timeout
            .map_or(STOP_STUCK_AFTER, |t| t.min(STOP_STUCK_AFTER))
    }

    /// Notes that the runtime killed incarnation `generation` of `node` for `why`.
    pub fn killed(&mut self, node: &str, generation: u32, why: String) {
        self.hung.remove(node);
        self.killed.insert(node.to_string(), (generation, why));
    }

    /// Why incarnation `generation` of `node` ended, if the runtime killed it for hanging.
    pub fn exit_reason(&self, node: &str, generation: u32) -> Option<String> {
        self.killed
            .get(node)
            .filter(|(g, _)| *g == generation)
            .map(|(_, why)| why.clone())
    }

    /// For the status line: ` HUNG 3.2s` per hung node.
    pub fn flags(&self) -> HashMap<String, String> {
        self.hung
            .iter()
            .map(|(id, h)| (id.clone(), format!(" HUNG {:.1}s", h.for_.as_secs_f64())))
            .collect()
    }

    /// Times `node` was found hung over the run.
    pub fn count(&self, node: &str) -> u32 {
        self.counts.get(node).copied().unwrap_or(0)
    }
}

/// Messages sent, and messages taken off the input queues (what arrived,
/// less what was dropped or still waits).
fn signature(s: &NodeStats) -> (u64, i64) {
    let sent = s.outputs.values().map(|o| o.sent).sum();
    let taken = s
        .inputs
        .values()
        .map(|i| i.received as i64 - i.dropped as i64 - i.queue_depth as i64)
        .sum();
    (sent, taken)
}

fn queue_full(s: &NodeStats) -> bool {
    s.inputs
        .values()
        .any(|i| i.queue_capacity > 0 && i.queue_depth >= i.queue_capacity)
}

/// The ids of the nodes reading an output of `id`.
fn consumers<'g>(graph: &'g Graph, id: &'g str) -> impl Iterator<Item = &'g String> + 'g {
    graph
        .nodes
        .iter()
        .filter(move |n| n.inputs.iter().any(|i| i.source_node == id))
        .map(|n| &n.id)
}

/// What acting on a hung node needs.
pub(super) struct Ctx<'a> {
    pub session: &'a zenoh::Session,
    pub run_id: &'a str,
    pub graph: &'a Graph,
    pub closed: &'a ClosedOutputs,
}

impl HangWatch {
    /// Re-evaluates the running nodes and acts on the hung ones: while
    /// recording, kills those hung past the hang timeout (their exit then
    /// takes the restart path of a crash); at stop, kills those stuck and
    /// ends their streams for them. Returns whether streams were ended.
    pub(super) fn act(
        &mut self,
        ctx: &Ctx,
        nodes: &mut BTreeMap<String, Supervised>,
        stats: &HashMap<String, NodeStats>,
        stopping: bool,
        blame: &mut Blame,
        failure: &mut Option<String>,
    ) -> bool {
        let running: Vec<(String, u32)> = nodes
            .iter()
            .filter(|(_, s)| s.state == NodeState::Running && s.kill.is_some())
            .map(|(id, s)| (id.clone(), s.generation))
            .collect();
        self.update(ctx.graph, &running, stats);
        let due = if stopping {
            let stop_at = *self.stop_at.get_or_insert_with(Instant::now);
            let mut due = self.hung_for(self.stop_limit());
            due.extend(self.stuck_sources(ctx, &running, stop_at));
            due
        } else {
            self.overdue()
        };
        for (id, h) in &due {
            let sup = nodes.get_mut(id).expect("a running node");
            let def = &ctx.graph.nodes[sup.index];
            if stopping {
                let ended = if def.outputs.is_empty() {
                    ""
                } else {
                    " and its streams were ended for it, so the nodes downstream finalize what they have"
                };
                let msg = format!(
                    "node `{id}` hung ({}); at stop it was killed{ended}",
                    h.describe()
                );
                tracing::error!("{msg}");
                self.killed(
                    id,
                    sup.generation,
                    format!("hung ({}), killed at stop", h.describe()),
                );
                end_for(ctx.session, ctx.run_id, def, ctx.closed, sup);
                blame.offer(ctx.graph, ctx.closed, failure, id, &msg);
            } else {
                tracing::error!(
                    "node `{id}` hung ({}); killing it (--hang-timeout)",
                    h.describe()
                );
                self.killed(
                    id,
                    sup.generation,
                    format!("hung ({}) and was killed", h.describe()),
                );
                if let Some(k) = sup.kill.take() {
                    let _ = k.send(());
                }
            }
        }
        stopping && !due.is_empty()
    }
}
