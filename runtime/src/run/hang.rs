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
//!
//! A node whose counters stand still while its process keeps using the CPU
//! is busy, not hung: an encoder at a slow preset on a loaded machine can
//! spend seconds inside one call. Killing it would lose what it holds, so a
//! busy node is acted on only after [`BUSY_HUNG_AFTER`] (a node spinning in
//! a loop forever still ends up there).

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
/// A stalled node that keeps using the CPU is killed only after this long.
pub const BUSY_HUNG_AFTER: Duration = Duration::from_secs(60);
/// The share of one core above which a stalled node counts as busy: the
/// threads of an idle node (transport, stats) use far less.
const BUSY_CPU_SHARE: f64 = 0.1;
/// A node that was busy this recently is still busy.
const BUSY_WITHIN: Duration = Duration::from_secs(1);

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
    /// `Stuck`, but its process keeps using the CPU: working, too slowly.
    Busy,
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
    /// The process's CPU time when last sampled, and when.
    cpu: Option<(Duration, Instant)>,
    /// When the process last used more than [`BUSY_CPU_SHARE`] of a core.
    busy_at: Option<Instant>,
}

impl Progress {
    fn new(generation: u32, now: Instant) -> Progress {
        Progress {
            generation,
            spawned: now,
            signature: None,
            progressed_at: now,
            moved_at: now,
            cpu: None,
            busy_at: None,
        }
    }

    /// Samples the CPU time of `pid` (a local process; none for remote nodes).
    fn sample_cpu(&mut self, pid: Option<u32>, now: Instant) {
        let Some(used) = pid.and_then(cpu_time) else {
            return;
        };
        if let Some((before, at)) = self.cpu {
            let wall = now.duration_since(at).as_secs_f64();
            if wall > 0.0 && used.saturating_sub(before).as_secs_f64() > BUSY_CPU_SHARE * wall {
                self.busy_at = Some(now);
            }
        }
        self.cpu = Some((used, now));
    }

    fn busy(&self, now: Instant) -> bool {
        self.busy_at
            .is_some_and(|t| now.duration_since(t) <= BUSY_WITHIN)
    }
}

/// User and system time of process `pid`, all its threads (`/proc/PID/stat`).
fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (hz > 0).then(|| Duration::from_secs_f64(ticks as f64 / hz as f64))
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
            Stall::Busy => format!(
                "no progress for {s:.1} s with an input queue full, but using the CPU (overloaded)"
            ),
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

    /// Re-evaluates every running node, logging the nodes that begin or
    /// stop hanging.
    pub fn update(
        &mut self,
        graph: &Graph,
        running: &[Running],
        stats: &HashMap<String, NodeStats>,
    ) {
        let now = Instant::now();
        let mut raw: HashMap<&str, Hung> = HashMap::new();
        for r in running {
            if let Some(h) = self.observe(r, stats.get(&r.id), now) {
                raw.insert(r.id.as_str(), h);
            }
        }
        self.progress
            .retain(|id, _| running.iter().any(|r| &r.id == id));
        let mut hung = BTreeMap::new();
        for (id, h) in &raw {
            // Full queues behind a hung consumer are its doing, not ours: the
            // time held up does not count once that consumer is gone.
            let blocked = matches!(h.stall, Stall::Stuck | Stall::Busy)
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
                let what = match self.limit(h, false) {
                    Some(t) => format!(
                        "it is killed and restarted after {} s without progress{}",
                        t.as_secs_f64(),
                        if h.stall == Stall::Busy {
                            ""
                        } else {
                            " (--hang-timeout)"
                        }
                    ),
                    None => "--hang-timeout 0: it is left alone".into(),
                };
                let word = if h.stall == Stall::Busy {
                    "BUSY"
                } else {
                    "HUNG"
                };
                tracing::warn!("node `{id}` {word}: {}; {what}", h.describe());
            }
        }
        for (id, h) in &self.hung {
            if !hung.contains_key(id) && running.iter().any(|r| &r.id == id) {
                tracing::info!(
                    "node `{id}` makes progress again after {:.1} s",
                    h.for_.as_secs_f64()
                );
            }
        }
        self.hung = hung;
    }

    /// The stall of one node incarnation, if it has one.
    fn observe(&mut self, r: &Running, stats: Option<&NodeStats>, now: Instant) -> Option<Hung> {
        let p = self
            .progress
            .entry(r.id.clone())
            .or_insert_with(|| Progress::new(r.generation, now));
        if p.generation != r.generation {
            *p = Progress::new(r.generation, now);
        }
        p.sample_cpu(r.pid, now);
        let heard = self.heard.get(&r.id).filter(|t| *t >= p.spawned);
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
            stall: if p.busy(now) {
                Stall::Busy
            } else {
                Stall::Stuck
            },
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
        running: &[Running],
        stop_at: Instant,
    ) -> Vec<(String, Hung)> {
        let now = Instant::now();
        running
            .iter()
            .map(|r| &r.id)
            .filter(|id| !self.hung.contains_key(*id))
            .filter_map(|id| {
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

    /// How long a node may hang like `h` before it is acted on, while
    /// recording or at stop (`None`: never).
    fn limit(&self, h: &Hung, stopping: bool) -> Option<Duration> {
        match (h.stall, stopping) {
            (Stall::Busy, false) => self.timeout.map(|t| t.max(BUSY_HUNG_AFTER)),
            (Stall::Busy, true) => Some(self.timeout.unwrap_or_default().max(BUSY_HUNG_AFTER)),
            (_, false) => self.timeout,
            (_, true) => Some(self.stop_limit()),
        }
    }

    /// The hung nodes due to be killed: while recording, restarted; at stop,
    /// their streams ended for them.
    fn due(&self, stopping: bool) -> Vec<(String, Hung)> {
        self.hung
            .iter()
            .filter(|(_, h)| self.limit(h, stopping).is_some_and(|l| h.for_ >= l))
            .map(|(id, h)| (id.clone(), h.clone()))
            .collect()
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
            .map(|(id, h)| {
                let word = if h.stall == Stall::Busy {
                    "BUSY"
                } else {
                    "HUNG"
                };
                (id.clone(), format!(" {word} {:.1}s", h.for_.as_secs_f64()))
            })
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

/// One running node incarnation, as the hang watch sees it.
pub struct Running {
    pub id: String,
    pub generation: u32,
    /// Its local process, whose CPU time tells busy from hung.
    pub pid: Option<u32>,
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
        let running: Vec<Running> = nodes
            .iter()
            .filter(|(_, s)| s.state == NodeState::Running && s.kill.is_some() && !s.hosted)
            .map(|(id, s)| Running {
                id: id.clone(),
                generation: s.generation,
                pid: s.pid,
            })
            .collect();
        self.update(ctx.graph, &running, stats);
        let mut due = self.due(stopping);
        if stopping {
            let stop_at = *self.stop_at.get_or_insert_with(Instant::now);
            due.extend(self.stuck_sources(ctx, &running, stop_at));
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn hung(stall: Stall, secs: u64) -> Hung {
        Hung {
            stall,
            for_: Duration::from_secs(secs),
        }
    }

    #[test]
    fn a_process_using_the_cpu_is_busy_and_one_asleep_is_not() {
        let me = Some(std::process::id());
        let start = Instant::now();
        let mut p = Progress::new(0, start);
        p.sample_cpu(me, start);
        let mut x = 0u64;
        while start.elapsed() < Duration::from_millis(300) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        p.sample_cpu(me, Instant::now());
        assert!(p.busy(Instant::now()), "spinning for 300 ms is busy");

        std::thread::sleep(Duration::from_millis(300));
        let now = Instant::now();
        p.busy_at = None;
        p.sample_cpu(me, now);
        assert!(!p.busy(now), "sleeping is not busy");
        p.sample_cpu(None, now);
        assert!(!p.busy(now), "no process, no figure");
    }

    #[test]
    fn a_busy_node_is_given_longer_than_a_hung_one() {
        let w = HangWatch::new(Some(Duration::from_secs(10)));
        assert_eq!(
            w.limit(&hung(Stall::Stuck, 0), false),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            w.limit(&hung(Stall::Silent, 0), true),
            Some(STOP_STUCK_AFTER)
        );
        assert_eq!(w.limit(&hung(Stall::Busy, 0), false), Some(BUSY_HUNG_AFTER));
        assert_eq!(w.limit(&hung(Stall::Busy, 0), true), Some(BUSY_HUNG_AFTER));
        let off = HangWatch::new(None);
        assert_eq!(off.limit(&hung(Stall::Busy, 0), false), None);
        assert_eq!(off.limit(&hung(Stall::Stuck, 0), false), None);
        assert_eq!(
            off.limit(&hung(Stall::Busy, 0), true),
            Some(BUSY_HUNG_AFTER)
        );
    }
}
