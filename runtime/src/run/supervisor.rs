//! Supervising the node processes of one machine through the phases of a run.
//! The [`RunPhase`] decides what each wake-up does: while Running, a node
//! that ends is restarted by its policy, a hung one killed and restarted,
//! and `--wall-time` or a stop request begins the stop; while Stopping, no
//! node is restarted, gone nodes' inputs are acknowledged for them, stuck
//! nodes are killed with their streams ended for them, and the grace runs.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use node_api::keys;
use tokio::sync::mpsc;
use tokio::time::Interval;
use zenoh::liveliness::LivelinessToken;
use zenoh::Wait;

use super::ending::{self, Blame};
use super::forks::ForkServer;
use super::hang::{self, HangWatch};
use super::links::Links;
use super::live::{Live, LiveStats, Phase, RunEvent};
use super::process::{Exit, NodeState, Spawner, Supervised};
use super::restarts::{self, EarlierIncarnations};
use super::status::StatusLine;
use super::{logs, machines, report, spawn, MachineLoss, ParamUpdate, RunOptions, RunReport};
use super::{ParamReceiver, StopHandle};
use crate::graph::{Graph, RestartPolicy};

/// Where a run is.
#[derive(Debug)]
pub(super) enum RunPhase {
    /// The barrier: the nodes subscribe their inputs and arm; sources wait
    /// for the `started` token. A node not armed at `deadline` fails the run.
    Arming { deadline: Instant },
    /// The `started` token is up: sources produce, nodes that end are
    /// restarted, and the stop begins at `until` (`--wall-time`) if not asked
    /// before. (`--duration` is media time: the sources end by themselves.)
    Running { until: Option<Instant> },
    /// The `stopping` token is up: sources end, end-of-stream flows
    /// downstream, sinks finalize. The nodes still alive when the grace ends
    /// (`grace_ends`, put off while streams are ended for stuck nodes) are
    /// killed, upstream first.
    Stopping {
        since: Instant,
        why: String,
        grace_ends: Option<Instant>,
    },
    /// No node of this machine runs any more.
    Finished,
}

/// How often the status line and the embedding app's statistics refresh.
const STATUS_EVERY: Duration = Duration::from_millis(500);

/// How long the report waits for the final counters of the nodes that
/// ended cleanly.
const LAST_STATS_WAIT: Duration = Duration::from_secs(3);

impl RunPhase {
    /// The phase as an embedding app sees it.
    fn public(&self) -> Phase {
        match self {
            RunPhase::Arming { .. } => Phase::Arming,
            RunPhase::Running { .. } => Phase::Running,
            RunPhase::Stopping { .. } => Phase::Stopping,
            RunPhase::Finished => Phase::Finished,
        }
    }

    /// Whether a stop may still begin (it begins once).
    fn may_stop(&self) -> bool {
        matches!(self, RunPhase::Arming { .. } | RunPhase::Running { .. })
    }

    fn is_stopping(&self) -> bool {
        matches!(self, RunPhase::Stopping { .. })
    }

    /// When `--wall-time` ends the run.
    fn duration_ends(&self) -> Option<Instant> {
        match self {
            RunPhase::Running { until } => *until,
            _ => None,
        }
    }
}

/// What woke the supervision up.
enum Wake {
    Exit(Exit),
    Param(ParamUpdate),
    Stop(&'static str),
    Status,
    Check,
}

/// The supervision's periodic work: the status line and the checks
/// (hangs, lost machines, end-of-stream a restarted node missed).
struct Timers {
    status: Interval,
    check: Interval,
}

/// The state of one machine's supervision, from spawning to the report.
pub(super) struct Supervisor<'a> {
    pub(super) graph: &'a Graph,
    pub(super) opts: &'a RunOptions,
    pub(super) links: &'a Links,
    spawner: Spawner<'a>,
    pub(super) exits: mpsc::UnboundedReceiver<Exit>,
    pub(super) nodes: BTreeMap<String, Supervised>,
    pub(super) phase: RunPhase,
    pub(super) failure: Option<String>,
    pub(super) blame: Blame,
    hang: HangWatch,
    earlier: EarlierIncarnations,
    lost_machines: Vec<MachineLoss>,
    /// When the sources were let go: media time 0.
    media_start: Instant,
    started_token: Option<LivelinessToken>,
    stopping_token: Option<LivelinessToken>,
    status: StatusLine,
    /// What an embedding application follows (see `live`).
    live: Arc<Live>,
}

impl<'a> Supervisor<'a> {
    /// Spawns this machine's nodes; the run is then Arming.
    pub fn spawn(
        graph: &'a Graph,
        opts: &'a RunOptions,
        links: &'a Links,
        hang: HangWatch,
        live: Arc<Live>,
        forks: Option<&'a ForkServer>,
    ) -> Result<Supervisor<'a>> {
        let console = logs::Console::new(opts.console);
        let (exit_tx, exits) = mpsc::unbounded_channel::<Exit>();
        let mut nodes = BTreeMap::new();
        for (i, def) in graph.nodes.iter().enumerate() {
            if opts.runs_here(def) {
                let mut sup =
                    Supervised::new(i, spawn::program_path(def, opts.node_dir.as_deref())?);
                sup.hosted = def.is_hosted();
                nodes.insert(def.id.clone(), sup);
            }
        }
        let spawner = Spawner {
            graph,
            links,
            shared_memory: opts.shared_memory,
            console,
            exit_tx,
            host: opts.host.clone(),
            media_duration: opts.duration,
            forks,
        };
        for sup in nodes.values_mut() {
            spawner.start(sup)?;
        }
        tracing::info!(graph = %graph.name, nodes = nodes.len(), run_dir = %opts.run_dir.display(), "spawned");
        Ok(Supervisor {
            graph,
            opts,
            links,
            spawner,
            exits,
            nodes,
            phase: RunPhase::Arming {
                deadline: Instant::now() + opts.arm_timeout,
            },
            failure: None,
            blame: Blame::default(),
            hang,
            earlier: EarlierIncarnations::default(),
            lost_machines: Vec::new(),
            media_start: Instant::now(),
            started_token: None,
            stopping_token: None,
            status: StatusLine::new(opts.console),
            live,
        })
    }

    // Transitions between phases.

    /// The barrier is over: Arming → Running when every node armed (sources
    /// may start), else → Stopping (`failure` says why).
    /// The log line keeps its words ("ready") for the scripts and tests that
    /// wait for it.
    pub(super) fn end_barrier(&mut self, armed_ms: f64) -> Result<()> {
        if self.failure.is_none() {
            let token = self
                .links
                .session
                .liveliness()
                .declare_token(keys::started(&self.links.run_id))
                .wait()
                .map_err(|e| anyhow!("{e}"))?;
            self.started_token = Some(token);
            self.live.event(RunEvent::Started);
            tracing::info!(
                "all {} nodes ready in {armed_ms:.0} ms; started",
                self.graph.nodes.len()
            );
        }
        self.media_start = Instant::now();
        if self.failure.is_none() {
            self.enter(RunPhase::Running {
                until: self.wall_stop().map(|d| self.media_start + d),
            });
        } else {
            self.begin_stop("the graph could not start");
        }
        Ok(())
    }

    /// When the runtime itself stops the run, from the start: `--wall-time`;
    /// or `--duration` when a source runs on another machine, whose runtime
    /// may not have been given it (its wall clock is the media clock of a
    /// live source; the stop token then reaches every machine, as before).
    fn wall_stop(&self) -> Option<Duration> {
        let remote_source = (self.graph.nodes.iter())
            .any(|n| n.inputs.is_empty() && !self.nodes.contains_key(&n.id));
        match (self.opts.wall_time, self.opts.duration) {
            (Some(wall), _) => Some(wall),
            (None, Some(media)) if remote_source => Some(media),
            _ => None,
        }
    }

    /// Arming or Running → Stopping (once): says so to every node and
    /// every machine, and starts the grace.
    fn begin_stop(&mut self, why: &str) {
        if !self.phase.may_stop() {
            return;
        }
        tracing::info!("stopping: {why}");
        self.live.event(RunEvent::Stopping { why: why.into() });
        self.stopping_token = self
            .links
            .session
            .liveliness()
            .declare_token(keys::stopping(&self.links.run_id))
            .wait()
            .ok();
        let now = Instant::now();
        self.enter(RunPhase::Stopping {
            since: now,
            why: why.to_string(),
            grace_ends: Some(now + self.opts.grace),
        });
    }

    /// Every change of phase goes through here, so that whoever follows
    /// the run sees it at once.
    fn enter(&mut self, phase: RunPhase) {
        self.live.set_phase(phase.public());
        self.phase = phase;
    }

    /// Stopping: the grace of the nodes still running starts again from now.
    fn restart_grace(&mut self) {
        if let RunPhase::Stopping { grace_ends, .. } = &mut self.phase {
            *grace_ends = Some(Instant::now() + self.opts.grace);
        }
    }

    /// Stopping: the grace is over; kills the nodes that did not finish,
    /// upstream first (see `ending::grace_over`).
    fn check_grace(&mut self) {
        let RunPhase::Stopping {
            grace_ends: Some(at),
            ..
        } = self.phase
        else {
            return;
        };
        if Instant::now() < at {
            return;
        }
        let links = self.links;
        let next = ending::grace_over(
            &links.session,
            &links.run_id,
            self.graph,
            &links.closed,
            &mut self.nodes,
            &mut self.failure,
            self.opts.grace,
        );
        if let RunPhase::Stopping { grace_ends, .. } = &mut self.phase {
            *grace_ends = next;
        }
    }

    /// Running or Stopping → Finished: no node runs any more.
    fn finish(&mut self) {
        self.live.event(RunEvent::Finished);
        if let RunPhase::Stopping { since, why, .. } = &self.phase {
            tracing::debug!(
                "every node ended {:.1} s after the stop began ({why})",
                since.elapsed().as_secs_f64()
            );
        }
        self.enter(RunPhase::Finished);
    }

    // Supervision.

    /// Supervises the nodes until none runs any more.
    pub async fn supervise(&mut self, stop: &StopHandle) {
        let mut params = stop.params_rx.lock().unwrap().take();
        let mut timers = Timers {
            status: tokio::time::interval(STATUS_EVERY),
            check: tokio::time::interval(Duration::from_millis(100)),
        };
        while self.nodes.values().any(|s| s.state == NodeState::Running) {
            self.check_grace();
            match self.next_wake(stop, &mut params, &mut timers).await {
                Wake::Exit(exit) => self.on_exit(exit),
                Wake::Param(update) => self.send_param(update),
                Wake::Stop(why) => self.begin_stop(why),
                Wake::Status => self.show_status(),
                Wake::Check => self.check(),
            }
        }
        self.finish();
    }

    async fn next_wake(
        &mut self,
        stop: &StopHandle,
        params: &mut Option<ParamReceiver>,
        timers: &mut Timers,
    ) -> Wake {
        let may_stop = self.phase.may_stop();
        let duration_ends = self.phase.duration_ends();
        let far = Instant::now() + Duration::from_secs(3600);
        let duration_sleep = tokio::time::sleep_until(duration_ends.unwrap_or(far).into());
        let remote_stop = &self.links.remote_stop;
        tokio::select! {
            Some(exit) = self.exits.recv() => Wake::Exit(exit),
            Some(update) = async {
                match params.as_mut() {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            } => Wake::Param(update),
            _ = stop.wait(), if may_stop => Wake::Stop("stop requested"),
            _ = remote_stop.wait(), if may_stop => Wake::Stop("another machine stopped the graph"),
            _ = duration_sleep, if duration_ends.is_some() => Wake::Stop("--wall-time reached"),
            _ = timers.status.tick() => Wake::Status,
            _ = timers.check.tick() => Wake::Check,
        }
    }

    /// A node process ended: restarted by its policy while Running, else
    /// finished, or failed (which stops the graph).
    fn on_exit(&mut self, exit: Exit) {
        let Some(sup) = self.nodes.get_mut(&exit.node) else {
            return;
        };
        if exit.generation != sup.generation {
            return;
        }
        // Its upstream nodes take back the shared memory it held (node_api::pool).
        self.links.announce_gone(&exit.node);
        if let Some(last) = exit.last_stats.clone() {
            // A hosted node's own account of its end: its final counters.
            let last = node_api::NodeStats { last: true, ..last };
            self.links
                .stats
                .lock()
                .unwrap()
                .insert(exit.node.clone(), last);
        }
        let why = self
            .hang
            .exit_reason(&exit.node, exit.generation)
            .unwrap_or_else(|| exit.describe());
        sup.last_exit = Some(why.clone());
        sup.pid = None;
        if self.may_restart(&exit) {
            self.restart(&exit.node, &why);
        } else if exit.success() {
            self.nodes.get_mut(&exit.node).unwrap().state = NodeState::Exited;
            tracing::debug!("node `{}` finished", exit.node);
        } else {
            self.node_failed(&exit.node, &why);
        }
    }

    /// Whether the node that ended this way is restarted. Not while
    /// stopping; not a node that says a restart cannot help (exit
    /// EXIT_NO_RESTART, e.g. a full disk); otherwise as its policy says.
    fn may_restart(&self, exit: &Exit) -> bool {
        let sup = &self.nodes[&exit.node];
        let def = &self.graph.nodes[sup.index];
        !self.phase.is_stopping()
            && !sup.hosted
            && sup.restarts < def.max_restarts
            && !exit.no_restart()
            && match def.restart {
                RestartPolicy::Never => false,
                RestartPolicy::OnFailure => !exit.success(),
                RestartPolicy::Always => true,
            }
    }

    fn restart(&mut self, node: &str, why: &str) {
        let sup = self.nodes.get_mut(node).expect("a supervised node");
        sup.restarts += 1;
        sup.restart_causes.push(why.to_string());
        if matches!(self.phase, RunPhase::Running { .. }) {
            sup.media_spent = self.media_start.elapsed();
        }
        self.earlier
            .bank(node, self.links.stats.lock().unwrap().remove(node));
        let event = RunEvent::NodeRestarted {
            node: node.into(),
            cause: why.into(),
            restarts: sup.restarts,
            max_restarts: self.graph.nodes[sup.index].max_restarts,
        };
        tracing::warn!("{}", event.describe());
        self.live.event(event);
        if let Err(e) = self.spawner.start(sup) {
            sup.state = NodeState::Failed;
            self.failure.get_or_insert(format!("{e:#}"));
            self.begin_stop("a node could not be restarted");
        }
    }

    /// A node failed for good: it may be the run's error; its consumers
    /// get the end-of-stream it will not send; the graph stops.
    fn node_failed(&mut self, node: &str, why: &str) {
        let sup = self.nodes.get_mut(node).expect("a supervised node");
        sup.state = NodeState::Failed;
        let restarts = if sup.restarts > 0 {
            format!(" after {} restarts", sup.restarts)
        } else {
            String::new()
        };
        let def = &self.graph.nodes[sup.index];
        let links = self.links;
        let hint = logs::last_lines_hint(&links.logs_dir, node);
        let msg = format!("node `{node}` failed{restarts}: {why}{hint}");
        if !self.phase.is_stopping() || self.failure.is_none() {
            tracing::error!("{msg}");
        }
        self.live.event(RunEvent::NodeFailed {
            node: node.into(),
            cause: why.into(),
        });
        self.blame
            .offer(self.graph, &links.closed, &mut self.failure, node, &msg);
        // Its consumers would wait forever for its end-of-stream: send it for it.
        ending::close_outputs_of(&links.session, &links.run_id, def, &links.closed);
        self.begin_stop("a node failed");
    }

    /// Sends a param update, checked first against the node's kind (only
    /// `live` params, values of their type; see `NodeDef::check_param_update`).
    fn send_param(&self, update: ParamUpdate) {
        let ParamUpdate {
            node,
            name,
            value,
            at_ns,
        } = update;
        let value = match self.graph.check_param_update(&node, &name, &value) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!("param update {node}.{name} = {value} refused: {e}");
                return;
            }
        };
        tracing::info!("param update: {node}.{name} = {value}");
        // Kept for a restarted node, unless it is an action (done once).
        if !self.graph.node(&node).is_some_and(|d| d.is_action(&name)) {
            let mut kept = self.links.live_params.lock().unwrap();
            kept.entry(node.clone())
                .or_default()
                .insert(name.clone(), value.clone());
        }
        let body = serde_json::json!({ "name": name, "value": value, "at_ns": at_ns });
        let key = keys::param_update(&self.links.run_id, &node);
        let _ = self.links.session.put(key, body.to_string()).wait();
    }

    fn show_status(&mut self) {
        let snapshot = self.links.stats_now();
        let flags = self.hang.flags();
        for (node, flag) in &flags {
            if !self.status.has_flag(node) {
                let message = format!("node `{node}`{flag}");
                self.live.event(RunEvent::Warning { message });
            }
        }
        self.status.set_flags(flags.clone());
        self.status.set_clock(self.links.clock_status());
        let elapsed = self.media_start.elapsed();
        let restarts = |id: &str| self.nodes.get(id).map_or(0, |s| s.restarts);
        let figures = self.status.figures(&snapshot, elapsed, restarts);
        self.status
            .update(self.graph, &figures, elapsed, &self.spawner.console);
        self.live.publish(LiveStats {
            elapsed,
            phase: self.phase.public().as_str(),
            nodes: snapshot.into_iter().collect(),
            figures,
            flags: flags.into_iter().collect(),
        });
    }

    /// The periodic checks.
    fn check(&mut self) {
        let links = self.links;
        if self.phase.is_stopping() {
            ending::ack_for_gone(&links.session, &links.run_id, self.graph, &self.nodes);
        }
        self.act_on_hangs();
        self.check_lost_machines();
        self.replay_missed_eos();
    }

    /// Running: kills the nodes hung past the hang timeout (restarted like a
    /// crash). Stopping: kills the stuck ones and ends their streams for them.
    fn act_on_hangs(&mut self) {
        let links = self.links;
        let snapshot = links.stats_now();
        let stopping = self.phase.is_stopping();
        let ctx = hang::Ctx {
            session: &links.session,
            run_id: &links.run_id,
            graph: self.graph,
            closed: &links.closed,
        };
        let ended = self.hang.act(
            &ctx,
            &mut self.nodes,
            &snapshot,
            stopping,
            &mut self.blame,
            &mut self.failure,
        );
        if ended {
            // The grace of the nodes downstream starts once the stuck ones' streams were ended.
            self.restart_grace();
        }
    }

    /// A machine of the graph vanished: its streams are ended for it, the
    /// run goes on with what it has, and fails.
    fn check_lost_machines(&mut self) {
        let links = self.links;
        let Some(machine) = &links.machine else {
            return;
        };
        let settle = self.opts.rejoin_timeout.unwrap_or_default();
        for m in machine.watch.lost(settle.max(machines::LOSS_SETTLE)) {
            if self.lost_machines.iter().any(|l| l.machine == m) {
                continue;
            }
            let nodes = ending::end_streams_of_lost_machine(
                &links.session,
                &links.run_id,
                self.graph,
                &m,
                &links.closed,
            );
            machine.watch.mark_lost(&links.session, &links.run_id, &m);
            let at = self.media_start.elapsed().as_secs_f64();
            let ended = if nodes.is_empty() {
                String::new()
            } else {
                format!(
                    " (nodes {} ended early: their consumers got end-of-stream)",
                    nodes.join(", ")
                )
            };
            let msg = format!(
                "machine `{m}` was lost {at:.1} s into the run{ended}; the other machines go on with what they have"
            );
            tracing::error!("{msg}");
            self.failure.get_or_insert(msg);
            self.lost_machines.push(MachineLoss {
                machine: m,
                nodes,
                lost_at_s: at,
                media_lost_s: 0.0,
                received: BTreeMap::new(),
            });
        }
    }

    /// Repeats, to each running incarnation that has subscribed its inputs,
    /// the end-of-stream it may have missed (see `restarts::replay_missed_eos`).
    fn replay_missed_eos(&mut self) {
        let links = self.links;
        let arms = links.arm_counts.lock().unwrap().clone();
        let running = self
            .nodes
            .iter_mut()
            .filter(|(_, s)| s.state == NodeState::Running);
        for (id, sup) in running {
            if arms.get(id).copied().unwrap_or(0) <= sup.arms_at_start {
                continue; // not subscribed yet
            }
            let def = &self.graph.nodes[sup.index];
            let restarted = sup.restarts > 0;
            let replayed = restarts::replay_missed_eos(
                &links.session,
                &links.run_id,
                def,
                restarted,
                &links.closed,
                &sup.eos_replayed,
            );
            for input in replayed {
                if restarted {
                    tracing::info!("node `{id}` restarted after input `{input}` ended: sent it the end-of-stream it missed");
                }
                sup.eos_replayed.insert(input);
            }
        }
    }

    // The report.

    /// Each node publishes its final counters as it finishes; on a loaded
    /// machine they may come in after its exit was seen. Waits for those of
    /// every node that ended cleanly (started, then exited with success;
    /// bounded: a message may be lost).
    async fn wait_for_last_stats(&self) {
        let deadline = Instant::now() + LAST_STATS_WAIT;
        loop {
            let missing = {
                let stats = self.links.stats.lock().unwrap();
                self.nodes
                    .iter()
                    .filter(|(_, s)| s.state == NodeState::Exited && s.generation > 0)
                    .any(|(id, _)| !stats.get(id).is_some_and(|s| s.last))
            };
            if !missing || Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The run is over: its outcome into `report`.
    pub async fn conclude(mut self, report: &mut RunReport) {
        self.spawner.console.clear_status();
        self.started_token = None;
        self.stopping_token = None;
        self.wait_for_last_stats().await;
        let (final_stats, mut heard): (BTreeMap<String, node_api::NodeStats>, BTreeMap<_, _>) = {
            let last = self.links.stats.lock().unwrap();
            let local = self
                .nodes
                .keys()
                .filter_map(|id| {
                    Some((id.clone(), self.earlier.merged(id, last.get(id).cloned())?))
                })
                .collect();
            (local, last.clone().into_iter().collect())
        };
        heard.extend(final_stats.clone());
        let outcomes = report::outcomes(self.graph, &self.nodes, &self.hang, &final_stats);
        let media_s = self.media_start.elapsed().as_secs_f64();
        machines::account_losses(&mut self.lost_machines, media_s, self.graph, &final_stats);
        if let Some(m) = &self.links.machine {
            let back = machines::rejoined(&m.watch, self.media_start, &self.lost_machines);
            report.rejoined_machines = back;
        }
        report.lost_machines = std::mem::take(&mut self.lost_machines);
        report.finish(
            &final_stats,
            outcomes,
            self.media_start.elapsed(),
            self.failure.take(),
        );
        report.account_links(&heard);
    }
}
