//! `runtime run`: spawn one process per node, hold the ready barrier, supervise
//! (restarts, logs, live stats), stop in order, report.
//!
//! States of a run: Spawning → Arming (every node subscribes, then arms) →
//! Running (the `started` token is up; sources produce) → Stopping (the
//! `stopping` token is up; sources end, end-of-stream flows downstream, sinks
//! finalize) → Done. A node that is still alive `grace` after Stopping began is killed.
//!
//! A graph spread over machines runs one runtime per machine (`--machine`),
//! each a zenoh router for its nodes: they share the run id, the barrier
//! (every node of every machine), the stop (any machine's stopping token),
//! and the capture clock (see `clocks`); a machine that vanishes has its
//! streams ended by the others (see `machines`).

mod clocks;
mod ending;
mod hang;
mod logs;
mod machines;
mod report;
mod restarts;
mod sockets;
mod spawn;
mod status;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use node_api::{keys, memlock, NodeStats};
use node_catalog::PortType;
use tokio::sync::mpsc;
use zenoh::sample::SampleKind;
use zenoh::Wait;

use crate::graph::{Graph, NodeDef, RestartPolicy};
pub use report::{ClockReport, MachineLoss, NodeOutcome, NodeReport, RunReport};
pub use spawn::{builtin_binary_in, builtin_dir};

/// How a run is carried out.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Stop after this long (measured from the moment sources start).
    pub duration: Option<Duration>,
    /// How long nodes get to finish after stop before they are killed.
    pub grace: Duration,
    /// A node without progress this long while recording is killed and
    /// restarted (`None`: only reported). See `hang`.
    pub hang_timeout: Option<Duration>,
    /// Where per-node logs and the socket directory go.
    pub run_dir: PathBuf,
    /// Only the nodes deployed on this machine (`deploy: {machine: NAME}`).
    pub machine: Option<String>,
    /// Print node log lines and the status line on stderr.
    pub console: bool,
    /// Share frames through shared memory (off: every byte crosses the socket).
    pub shared_memory: bool,
    /// How long nodes may take to arm (on every machine).
    pub ready_timeout: Duration,
    /// The id every machine of a run shares (default: derived from the
    /// graph when `machine` is set, unique otherwise).
    pub run_id: Option<String>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            duration: None,
            grace: Duration::from_secs(20),
            hang_timeout: Some(Duration::from_secs(10)),
            run_dir: PathBuf::from("runs"),
            machine: None,
            console: true,
            shared_memory: true,
            ready_timeout: Duration::from_secs(60),
            run_id: None,
        }
    }
}

/// A handle on a running graph, for whoever embeds the runtime (the CLI uses
/// it for Ctrl-C): ask it to stop, or change a node's param while it runs.
#[derive(Clone)]
pub struct StopHandle {
    notify: Arc<tokio::sync::Notify>,
    requested: Arc<std::sync::atomic::AtomicBool>,
    params: mpsc::UnboundedSender<ParamUpdate>,
    params_rx: Arc<Mutex<Option<mpsc::UnboundedReceiver<ParamUpdate>>>>,
}

/// (node, param, value)
type ParamUpdate = (String, String, serde_json::Value);

impl Default for StopHandle {
    fn default() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        StopHandle {
            notify: Arc::default(),
            requested: Arc::default(),
            params: tx,
            params_rx: Arc::new(Mutex::new(Some(rx))),
        }
    }
}

impl StopHandle {
    pub fn stop(&self) {
        self.requested
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    /// Sends `name = value` to node `node`, which sees an `Event::ParamUpdate`.
    /// A built-in node only takes the params its kind marks mutable: the
    /// update is checked against the schema first, and a refused one logged.
    pub fn set_param(&self, node: &str, name: &str, value: serde_json::Value) {
        let _ = self
            .params
            .send((node.to_string(), name.to_string(), value));
    }

    fn is_requested(&self) -> bool {
        self.requested.load(std::sync::atomic::Ordering::SeqCst)
    }

    async fn wait(&self) {
        loop {
            let n = self.notify.notified();
            if self.is_requested() {
                return;
            }
            n.await;
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NodeState {
    Running,
    Exited,
    Failed,
}

struct Supervised {
    index: usize,
    program: PathBuf,
    state: NodeState,
    restarts: u32,
    pid: Option<u32>,
    last_exit: Option<String>,
    /// Bumped at each spawn, so a late exit notice of an old process is ignored.
    generation: u32,
    /// How many times the node had armed when this incarnation started: a
    /// higher count means this incarnation has subscribed its inputs.
    arms_at_start: u64,
    /// Inputs whose end-of-stream was repeated for this incarnation.
    eos_replayed: HashSet<String>,
    kill: Option<tokio::sync::oneshot::Sender<()>>,
}

struct Exit {
    node: String,
    generation: u32,
    status: std::io::Result<std::process::ExitStatus>,
}

/// Runs a validated graph to its end. Returns the report; its `exit_code` is
/// 0 when every node ended cleanly, 1 when a node failed.
pub async fn run(graph: &Graph, opts: &RunOptions, stop: StopHandle) -> Result<RunReport> {
    let started_at = Instant::now();
    let run_id = machines::run_id(graph, opts.machine.as_deref(), opts.run_id.as_deref());
    // A graph spread over machines: this runtime is its machine's gateway.
    let distributed = opts.machine.is_some();
    let logs_dir = opts.run_dir.join("logs");
    std::fs::create_dir_all(&logs_dir)
        .with_context(|| format!("cannot create the run directory {}", logs_dir.display()))?;
    // Removed when this function returns, however it returns.
    let sockets = sockets::SocketDir::create()?;
    let socket_dir = sockets.path().to_path_buf();

    // Segments left in /dev/shm by killed processes of earlier runs (under
    // the lock our processes create segments under: see node_api::shm_lock).
    {
        let _shm_lock = node_api::shm_lock::acquire();
        zenoh::shm::cleanup_orphaned_shm_segments();
    }
    memlock::raise_to_hard_limit();
    if opts.shared_memory {
        memlock::check_file_size_limit()?;
    }

    let local: Vec<usize> = graph
        .nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| opts.machine.is_none() || n.machine.is_none() || n.machine == opts.machine)
        .map(|(i, _)| i)
        .collect();

    let mut listen = vec![spawn::local_endpoint(&socket_dir, None)];
    if let Some(m) = &opts.machine {
        if let Some(net) = graph.network.machines.get(m) {
            listen.extend(net.listen.iter().cloned());
        }
    }
    let connect = opts
        .machine
        .as_ref()
        .and_then(|m| graph.network.machines.get(m))
        .map(|n| n.connect.clone())
        .unwrap_or_default();
    // The runtime only carries control and stats: without shared memory of its
    // own it creates no segment that could outlive it (zenoh's segments are
    // cleaned once their owner has exited, which the runtime has not when it
    // cleans up).
    let session = node_api::session::open(&listen, &connect, false, distributed)?;

    // A graph spread over machines: say this machine is up, watch the
    // others, and put this machine on the reference clock.
    let mut report = RunReport::new(graph, &run_id, &opts.run_dir);
    report.machine = opts.machine.clone();
    let mut machine_token = None;
    let mut machine_watch = None;
    let mut clock_server = None;
    let mut clock = clocks::ClockSync {
        offset_ns: 0,
        rtt_ns: 0,
        epoch_ns: node_api::clock::now_ns(),
    };
    if let Some(me) = opts.machine.as_deref().filter(|_| distributed) {
        machine_watch = Some(machines::MachineWatch::start(&session, &run_id)?);
        machine_token = Some(
            session
                .liveliness()
                .declare_token(keys::machine(&run_id, me))
                .wait()
                .map_err(|e| anyhow!("{e}"))?,
        );
        let reference = machines::clock_reference(graph).unwrap_or_else(|| me.to_string());
        if reference == me {
            clock_server = Some(clocks::serve(&session, &run_id, clock.epoch_ns)?);
        } else {
            tracing::info!("measuring this machine's clock against machine `{reference}`");
            clock = clocks::measure(&session, &run_id, &reference, opts.ready_timeout).await?;
        }
        tracing::info!(
            "machine `{me}` of run {run_id}: clock offset to `{reference}` {:+.3} ms (round trip {:.3} ms)",
            clock.offset_ns as f64 / 1e6,
            clock.rtt_ns as f64 / 1e6
        );
        report.clock = Some(ClockReport {
            reference,
            offset_ms: clock.offset_ns as f64 / 1e6,
            rtt_ms: clock.rtt_ns as f64 / 1e6,
        });
    }
    // A stop asked by another machine's runtime.
    let remote_stop = StopHandle::default();
    let stopping_sub = {
        let remote_stop = remote_stop.clone();
        session
            .liveliness()
            .declare_subscriber(keys::stopping(&run_id))
            .history(true)
            .callback(move |sample| {
                if sample.kind() == SampleKind::Put {
                    remote_stop.stop();
                }
            })
            .wait()
            .map_err(|e| anyhow!("{e}"))?
    };

    // Live stats and the armed set, fed by zenoh callbacks.
    let stats: Arc<Mutex<HashMap<String, NodeStats>>> = Arc::default();
    let mut hang = hang::HangWatch::new(opts.hang_timeout);
    let stats_sub = {
        let stats = stats.clone();
        let heard = hang.heard();
        session
            .declare_subscriber(keys::stats_all(&run_id))
            .callback(move |sample| {
                if let Ok(s) = serde_json::from_slice::<NodeStats>(&sample.payload().to_bytes()) {
                    heard.note(&s.node);
                    stats.lock().unwrap().insert(s.node.clone(), s);
                }
            })
            .wait()
            .map_err(|e| anyhow!("{e}"))?
    };
    let armed: Arc<Mutex<HashMap<String, u64>>> = Arc::default();
    let arm_counts: Arc<Mutex<HashMap<String, u64>>> = Arc::default();
    let armed_sub = {
        let armed = armed.clone();
        let arm_counts = arm_counts.clone();
        session
            .liveliness()
            .declare_subscriber(keys::armed_all(&run_id))
            .history(true)
            .callback(move |sample| {
                if let Some((node, bytes)) = keys::parse_armed(sample.key_expr().as_str()) {
                    let mut a = armed.lock().unwrap();
                    match sample.kind() {
                        SampleKind::Put => {
                            *arm_counts.lock().unwrap().entry(node.clone()).or_default() += 1;
                            a.insert(node, bytes)
                        }
                        SampleKind::Delete => a.remove(&node),
                    };
                }
            })
            .wait()
            .map_err(|e| anyhow!("{e}"))?
    };
    let closed = restarts::ClosedOutputs::default();
    let closed_sub = closed.subscribe(&session, &run_id)?;
    let resume_states = restarts::ResumeStates::default();
    let resume_sub = resume_states.subscribe(&session, &run_id)?;
    let mut earlier = restarts::EarlierIncarnations::default();

    let console = logs::Console::new(opts.console);
    let (exit_tx, mut exit_rx) = mpsc::unbounded_channel::<Exit>();
    let mut nodes: BTreeMap<String, Supervised> = BTreeMap::new();
    for &i in &local {
        let def = &graph.nodes[i];
        let program = spawn::program_path(def)?;
        nodes.insert(
            def.id.clone(),
            Supervised {
                index: i,
                program,
                state: NodeState::Exited,
                restarts: 0,
                pid: None,
                last_exit: None,
                generation: 0,
                arms_at_start: 0,
                eos_replayed: HashSet::new(),
                kill: None,
            },
        );
    }
    let ctx = SpawnCtx {
        graph,
        run_id: &run_id,
        socket_dir: &socket_dir,
        logs_dir: &logs_dir,
        shared_memory: opts.shared_memory,
        console: &console,
        exit_tx: &exit_tx,
        epoch_ns: clock.epoch_ns,
        clock_offset_ns: clock.offset_ns,
        arm_counts: &arm_counts,
        resume_states: &resume_states,
    };
    for sup in nodes.values_mut() {
        ctx.start(sup)?;
    }
    tracing::info!(graph = %graph.name, nodes = nodes.len(), run_dir = %opts.run_dir.display(), "spawned");

    let mut failure: Option<String> = None;
    let mut blame = ending::Blame::default();

    // Ready barrier: every node of the graph (all machines) must arm.
    let all_ids: HashSet<String> = graph.nodes.iter().map(|n| n.id.clone()).collect();
    let arm_deadline = Instant::now() + opts.ready_timeout;
    let mut started_token = None;
    loop {
        let armed_now: HashSet<String> = armed.lock().unwrap().keys().cloned().collect();
        if all_ids.is_subset(&armed_now) {
            break;
        }
        // A node that fails before arming fails the run (restart would mask
        // config errors). One that ends cleanly (e.g. after its upstream
        // failed and closed its input) is only noted.
        if let Ok(exit) = exit_rx.try_recv() {
            let sup = nodes.get_mut(&exit.node).unwrap();
            let why = describe_exit(&exit.status);
            if matches!(&exit.status, Ok(s) if s.success()) {
                sup.state = NodeState::Exited;
                sup.last_exit = Some(why);
                continue;
            }
            sup.state = NodeState::Failed;
            sup.last_exit = Some(why.clone());
            close_outputs_of(&session, &run_id, &graph.nodes[sup.index], &closed);
            let msg = format!(
                "node `{}` exited before the graph started ({why}){}",
                exit.node,
                logs::last_lines_hint(&logs_dir, &exit.node)
            );
            blame.offer(graph, &closed, &mut failure, &exit.node, &msg);
            break;
        }
        if stop.is_requested() || remote_stop.is_requested() {
            failure = Some("stopped before the graph started".into());
            break;
        }
        if Instant::now() > arm_deadline {
            let up = machine_watch.as_ref().map(|w| w.up()).unwrap_or_default();
            failure = Some(not_ready_message(
                graph,
                &armed_now,
                &up,
                opts.ready_timeout,
            ));
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let graph_start_ms = started_at.elapsed().as_secs_f64() * 1000.0;
    if failure.is_none() {
        if let Err(e) = check_memlock(graph, &armed.lock().unwrap()) {
            failure = Some(e.to_string());
        }
    }
    if failure.is_none() {
        started_token = Some(
            session
                .liveliness()
                .declare_token(keys::started(&run_id))
                .wait()
                .map_err(|e| anyhow!("{e}"))?,
        );
        tracing::info!(
            "all {} nodes ready in {graph_start_ms:.0} ms; started",
            all_ids.len()
        );
    }
    report.graph_start_ms = graph_start_ms;
    let media_start = Instant::now();

    // Running and stopping.
    let mut stopping_token = None;
    let mut stop_deadline: Option<Instant> = None;
    let begin_stop = |why: &str,
                      stopping_token: &mut Option<zenoh::liveliness::LivelinessToken>,
                      deadline: &mut Option<Instant>| {
        if stopping_token.is_none() {
            tracing::info!("stopping: {why}");
            *stopping_token = session
                .liveliness()
                .declare_token(keys::stopping(&run_id))
                .wait()
                .ok();
            *deadline = Some(Instant::now() + opts.grace);
        }
    };
    if failure.is_some() {
        begin_stop(
            "the graph could not start",
            &mut stopping_token,
            &mut stop_deadline,
        );
    }
    let mut lost_machines: Vec<MachineLoss> = Vec::new();
    let mut param_updates = stop.params_rx.lock().unwrap().take();
    let mut status = status::StatusLine::new(opts.console);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut restart_check = tokio::time::interval(Duration::from_millis(100));
    loop {
        if nodes.values().all(|s| s.state != NodeState::Running) {
            break;
        }
        if let Some(d) = stop_deadline {
            if Instant::now() >= d {
                stop_deadline = ending::grace_over(
                    &session,
                    &run_id,
                    graph,
                    &closed,
                    &mut nodes,
                    &mut failure,
                    opts.grace,
                );
            }
        }
        let duration_left = opts
            .duration
            .filter(|_| stopping_token.is_none() && started_token.is_some())
            .map(|d| d.saturating_sub(media_start.elapsed()));
        tokio::select! {
            Some(exit) = exit_rx.recv() => {
                let Some(sup) = nodes.get_mut(&exit.node) else { continue };
                if exit.generation != sup.generation { continue; }
                // Its upstream nodes take back the shared memory it held (node_api::pool).
                let _ = session.put(keys::gone(&run_id, &exit.node), Vec::<u8>::new()).wait();
                let ok = matches!(&exit.status, Ok(s) if s.success());
                let why = hang.exit_reason(&exit.node, exit.generation).unwrap_or_else(|| describe_exit(&exit.status));
                sup.last_exit = Some(why.clone());
                sup.pid = None;
                let def = &graph.nodes[sup.index];
                let stopping = stopping_token.is_some();
                // A node that says a restart cannot help (exit EXIT_NO_RESTART, e.g. a full disk) is not restarted.
                let may_restart = !stopping && sup.restarts < def.max_restarts && !is_no_restart(&exit.status) && match def.restart {
                    RestartPolicy::Never => false,
                    RestartPolicy::OnFailure => !ok,
                    RestartPolicy::Always => true,
                };
                if may_restart {
                    sup.restarts += 1;
                    earlier.bank(&exit.node, stats.lock().unwrap().remove(&exit.node));
                    tracing::warn!("node `{}` {why}; restarting ({}/{})", exit.node, sup.restarts, def.max_restarts);
                    if let Err(e) = ctx.start(sup) {
                        sup.state = NodeState::Failed;
                        failure.get_or_insert(format!("{e:#}"));
                        begin_stop("a node could not be restarted", &mut stopping_token, &mut stop_deadline);
                    }
                    continue;
                }
                if ok {
                    sup.state = NodeState::Exited;
                    tracing::debug!("node `{}` finished", exit.node);
                } else {
                    sup.state = NodeState::Failed;
                    let restarts = if sup.restarts > 0 { format!(" after {} restarts", sup.restarts) } else { String::new() };
                    let msg = format!("node `{}` failed{restarts}: {why}{}", exit.node, logs::last_lines_hint(&logs_dir, &exit.node));
                    if !stopping || failure.is_none() {
                        tracing::error!("{msg}");
                    }
                    blame.offer(graph, &closed, &mut failure, &exit.node, &msg);
                    // Its consumers would wait forever for its end-of-stream: send it for it.
                    close_outputs_of(&session, &run_id, def, &closed);
                    begin_stop("a node failed", &mut stopping_token, &mut stop_deadline);
                }
            }
            Some((node, name, value)) = async {
                match param_updates.as_mut() {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            } => {
                match graph.check_param_update(&node, &name, &value) {
                    Ok(value) => {
                        tracing::info!("param update: {node}.{name} = {value}");
                        let body = serde_json::json!({ "name": name, "value": value });
                        let _ = session.put(keys::param_update(&run_id, &node), body.to_string()).wait();
                    }
                    Err(e) => tracing::warn!("param update {node}.{name} = {value} refused: {e}"),
                }
            }
            _ = stop.wait(), if stopping_token.is_none() => {
                begin_stop("stop requested", &mut stopping_token, &mut stop_deadline);
            }
            _ = remote_stop.wait(), if stopping_token.is_none() => {
                begin_stop("another machine stopped the graph", &mut stopping_token, &mut stop_deadline);
            }
            _ = tokio::time::sleep(duration_left.unwrap_or(Duration::from_secs(3600))), if duration_left.is_some() => {
                begin_stop("--duration reached", &mut stopping_token, &mut stop_deadline);
            }
            _ = tick.tick() => {
                let snapshot = stats.lock().unwrap().clone();
                status.set_flags(hang.flags());
                status.update(graph, &snapshot, media_start.elapsed(), &console);
            }
            _ = restart_check.tick() => {
                if stopping_token.is_some() {
                    ending::ack_for_gone(&session, &run_id, graph, &nodes);
                }
                if started_token.is_some() || stopping_token.is_some() {
                    let snapshot = stats.lock().unwrap().clone();
                    let stopping = stopping_token.is_some();
                    let ctx = hang::Ctx { session: &session, run_id: &run_id, graph, closed: &closed };
                    if hang.act(&ctx, &mut nodes, &snapshot, stopping, &mut blame, &mut failure) {
                        // The grace of the nodes downstream starts once the stuck ones' streams were ended.
                        stop_deadline = Some(Instant::now() + opts.grace);
                    }
                }
                if let Some(watch) = &machine_watch {
                    for m in watch.lost(MACHINE_LOSS_SETTLE) {
                        if lost_machines.iter().any(|l: &MachineLoss| l.machine == m) {
                            continue;
                        }
                        let nodes = end_streams_of_lost_machine(&session, &run_id, graph, &m, &closed);
                        let at = media_start.elapsed().as_secs_f64();
                        let msg = format!(
                            "machine `{m}` was lost {at:.1} s into the run{}; the other machines go on with what they have",
                            if nodes.is_empty() { String::new() } else { format!(" (nodes {} ended early: their consumers got end-of-stream)", nodes.join(", ")) }
                        );
                        tracing::error!("{msg}");
                        failure.get_or_insert(msg);
                        lost_machines.push(MachineLoss { machine: m, nodes, lost_at_s: at, media_lost_s: 0.0, received: BTreeMap::new() });
                    }
                }
                let arms = arm_counts.lock().unwrap().clone();
                for (id, sup) in nodes.iter_mut().filter(|(_, s)| s.state == NodeState::Running) {
                    if arms.get(id).copied().unwrap_or(0) <= sup.arms_at_start {
                        continue; // not subscribed yet
                    }
                    let def = &graph.nodes[sup.index];
                    let restarted = sup.restarts > 0;
                    for input in restarts::replay_missed_eos(&session, &run_id, def, restarted, &closed, &sup.eos_replayed) {
                        if restarted {
                            tracing::info!("node `{id}` restarted after input `{input}` ended: sent it the end-of-stream it missed");
                        }
                        sup.eos_replayed.insert(input);
                    }
                }
            }
        }
    }
    console.clear_status();
    drop(started_token);
    drop(stopping_token);

    // Final stats: each node publishes once more as it finishes.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let final_stats: BTreeMap<String, NodeStats> = {
        let last = stats.lock().unwrap();
        nodes
            .keys()
            .filter_map(|id| Some((id.clone(), earlier.merged(id, last.get(id).cloned())?)))
            .collect()
    };
    let outcomes: Vec<NodeOutcome> = nodes
        .iter()
        .map(|(id, s)| {
            let def = &graph.nodes[s.index];
            let consumers: Vec<&crate::graph::NodeDef> = graph
                .nodes
                .iter()
                .filter(|n| n.inputs.iter().any(|i| i.source_node == *id))
                .collect();
            let (lost_frames, lost_s) = restarts::restart_loss(def, &consumers, &final_stats);
            if s.restarts > 0 {
                tracing::warn!(
                    "node `{id}` was restarted {} time(s); {lost_frames} frames ({lost_s:.2} s of media) lost across the restarts",
                    s.restarts
                );
            }
            NodeOutcome {
                id: id.clone(),
                restarts: s.restarts,
                hangs: hang.count(id),
                exit: s.last_exit.clone(),
                failed: s.state == NodeState::Failed,
                restart_lost_frames: lost_frames,
                restart_lost_s: lost_s,
            }
        })
        .collect();
    for loss in &mut lost_machines {
        loss.media_lost_s = (media_start.elapsed().as_secs_f64() - loss.lost_at_s).max(0.0);
        loss.received = received_from(graph, &loss.nodes, &final_stats);
        tracing::error!(
            "machine `{}` lost: {:.1} s of media from nodes {} missing at the end; received before: {:?}",
            loss.machine,
            loss.media_lost_s,
            loss.nodes.join(", "),
            loss.received
        );
    }
    report.lost_machines = lost_machines;
    report.finish(
        &final_stats,
        outcomes,
        media_start.elapsed(),
        failure.clone(),
    );
    drop(stats_sub);
    drop(armed_sub);
    drop(closed_sub);
    drop(resume_sub);
    drop(stopping_sub);
    drop(machine_watch);
    drop(clock_server);
    if let (Some(me), Some(token)) = (opts.machine.as_deref(), machine_token) {
        // The others must not take this normal end for a lost machine.
        let _ = session
            .put(keys::machine_done(&run_id, me), Vec::<u8>::new())
            .congestion_control(zenoh::qos::CongestionControl::Block)
            .wait();
        drop(token);
    }
    let _ = session.close().wait();
    zenoh::shm::cleanup_orphaned_shm_segments();
    Ok(report)
}

/// Everything needed to (re)start one node.
struct SpawnCtx<'a> {
    graph: &'a Graph,
    run_id: &'a str,
    socket_dir: &'a Path,
    logs_dir: &'a Path,
    shared_memory: bool,
    console: &'a logs::Console,
    exit_tx: &'a mpsc::UnboundedSender<Exit>,
    /// The run's epoch on the capture clock, shared by every node.
    epoch_ns: u64,
    /// This machine's clock to the run's reference clock.
    clock_offset_ns: i64,
    arm_counts: &'a Arc<Mutex<HashMap<String, u64>>>,
    resume_states: &'a restarts::ResumeStates,
}

impl SpawnCtx<'_> {
    fn start(&self, sup: &mut Supervised) -> Result<()> {
        let def = &self.graph.nodes[sup.index];
        let mut config = spawn::node_config(
            self.graph,
            def,
            self.run_id,
            self.socket_dir,
            self.shared_memory,
            sup.restarts,
        );
        config.epoch_ns = self.epoch_ns;
        config.clock_offset_ns = self.clock_offset_ns;
        if sup.restarts > 0 {
            config.resume_state = self.resume_states.get(&def.id);
        }
        // A restarted node listens on the same socket path.
        let _ = std::fs::remove_file(self.socket_dir.join(format!("{}.sock", def.id)));
        let mut child = spawn::spawn(def, &sup.program, &config)?;
        sup.pid = child.id();
        sup.generation += 1;
        sup.arms_at_start = self
            .arm_counts
            .lock()
            .unwrap()
            .get(&def.id)
            .copied()
            .unwrap_or(0);
        sup.eos_replayed.clear();
        sup.state = NodeState::Running;
        let log_path = self.logs_dir.join(format!("{}.log", def.id));
        logs::pump(
            &mut child,
            def.id.clone(),
            log_path,
            self.console.clone(),
            sup.restarts,
        )?;
        let (kill_tx, kill_rx) = tokio::sync::oneshot::channel::<()>();
        sup.kill = Some(kill_tx);
        let tx = self.exit_tx.clone();
        let node = def.id.clone();
        let generation = sup.generation;
        tokio::spawn(async move {
            let status = tokio::select! {
                s = child.wait() => s,
                _ = kill_rx => {
                    let _ = child.start_kill();
                    child.wait().await
                }
            };
            let _ = tx.send(Exit {
                node,
                generation,
                status,
            });
        });
        Ok(())
    }
}

fn describe_exit(status: &std::io::Result<std::process::ExitStatus>) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status {
        Ok(s) if s.success() => "exited normally".into(),
        Ok(s) => match (s.code(), s.signal()) {
            (Some(c), _) => format!("exited with status {c}"),
            (_, Some(sig)) => format!("was killed by signal {sig}{}", signal_name(sig)),
            _ => "ended".into(),
        },
        Err(e) => format!("could not be waited for: {e}"),
    }
}

fn is_no_restart(status: &std::io::Result<std::process::ExitStatus>) -> bool {
    matches!(status, Ok(s) if s.code() == Some(node_api::EXIT_NO_RESTART))
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGKILL => " (SIGKILL)",
        libc::SIGSEGV => " (SIGSEGV)",
        libc::SIGABRT => " (SIGABRT)",
        libc::SIGTERM => " (SIGTERM)",
        libc::SIGINT => " (SIGINT)",
        _ => "",
    }
}

/// Publishes end-of-stream on every output of a node that died, so its
/// consumers finish instead of waiting for the grace timeout.
fn close_outputs_of(
    session: &zenoh::Session,
    run_id: &str,
    def: &crate::graph::NodeDef,
    closed: &restarts::ClosedOutputs,
) {
    for out in &def.outputs {
        restarts::put_end_of_stream(session, run_id, &def.id, &out.name);
        closed.insert_by_runtime(&def.id, &out.name);
    }
}

/// How long after a machine's token vanished its loss is judged: its last
/// end-of-stream announcements may still be on their way.
const MACHINE_LOSS_SETTLE: Duration = Duration::from_millis(500);

/// Ends, on behalf of lost machine `machine`, every output of its nodes that
/// had not ended, so consumers on the machines still up finish. Returns those nodes.
fn end_streams_of_lost_machine(
    session: &zenoh::Session,
    run_id: &str,
    graph: &Graph,
    machine: &str,
    closed: &restarts::ClosedOutputs,
) -> Vec<String> {
    let mut nodes = Vec::new();
    for def in graph
        .nodes
        .iter()
        .filter(|n| n.machine.as_deref() == Some(machine))
    {
        let open: Vec<_> = def
            .outputs
            .iter()
            .filter(|o| !closed.is_closed(&def.id, &o.name))
            .collect();
        if open.is_empty() && !def.outputs.is_empty() {
            continue;
        }
        for out in open {
            restarts::put_end_of_stream(session, run_id, &def.id, &out.name);
            closed.insert_by_runtime(&def.id, &out.name);
        }
        nodes.push(def.id.clone());
    }
    nodes
}

/// Messages this machine's nodes received from `sources` (`node.input` -> count).
fn received_from(
    graph: &Graph,
    sources: &[String],
    stats: &BTreeMap<String, NodeStats>,
) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for (id, s) in stats {
        let Some(def) = graph.nodes.iter().find(|n| &n.id == id) else {
            continue;
        };
        for input in def
            .inputs
            .iter()
            .filter(|i| sources.contains(&i.source_node))
        {
            if let Some(i) = s.inputs.get(&input.name) {
                out.insert(format!("{id}.{}", input.name), i.received);
            }
        }
    }
    out
}

/// The ready-barrier timeout: which nodes are missing, on which machines,
/// and which of those machines' runtimes never showed up.
fn not_ready_message(
    graph: &Graph,
    armed: &HashSet<String>,
    machines_up: &std::collections::BTreeSet<String>,
    timeout: Duration,
) -> String {
    let mut by_machine: BTreeMap<Option<&str>, Vec<&str>> = BTreeMap::new();
    for n in graph.nodes.iter().filter(|n| !armed.contains(&n.id)) {
        by_machine
            .entry(n.machine.as_deref())
            .or_default()
            .push(&n.id);
    }
    let parts: Vec<String> = by_machine
        .iter()
        .map(|(m, ids)| match m {
            None => ids.join(", "),
            Some(m) if machines_up.contains(*m) => format!("{} (machine `{m}`)", ids.join(", ")),
            Some(m) => format!(
                "{} (machine `{m}`: its runtime is not connected; run `runtime run {} --machine {m}` there)",
                ids.join(", "),
                graph.file.display()
            ),
        })
        .collect();
    format!(
        "nodes never became ready within {} s: {}",
        timeout.as_secs(),
        parts.join("; ")
    )
}

/// The pools themselves are never locked (see node_api::segment), but zenoh
/// locks its own segments in RAM: one of buffer metadata in every process
/// that allocates shared memory, mapped by every process that reads those
/// buffers. Raw frames may have been forwarded (video-normalize, sync pass
/// buffers on), so along raw edges every allocating node further upstream
/// counts too. A receiver that cannot lock one drops what it is sent, so the
/// limit is checked once every node is armed (and has made its pools).
fn check_memlock(graph: &Graph, pools: &HashMap<String, u64>) -> Result<()> {
    let Some(limit) = memlock::limit_bytes() else {
        return Ok(());
    };
    let allocates = |id: &str| pools.get(id).is_some_and(|bytes| *bytes > 0);
    let mut problems = Vec::new();
    for node in &graph.nodes {
        let segments = usize::from(allocates(&node.id))
            + mapped_upstream(graph, node)
                .into_iter()
                .filter(|u| allocates(u))
                .count();
        let need = memlock::locked_by_transport(segments);
        if need > limit {
            problems.push(memlock::too_low_message(
                &format!("node `{}`", node.id),
                need,
                limit,
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        bail!("{}", problems.join("\n"))
    }
}

/// The nodes whose shared-memory segments `node` may map: its direct upstream
/// nodes, and along raw-media edges of one type every node further up that a
/// buffer may have been forwarded from.
fn mapped_upstream<'g>(graph: &'g Graph, node: &'g NodeDef) -> HashSet<&'g str> {
    let raw = |ty: PortType| matches!(ty, PortType::RawVideo | PortType::RawAudio);
    let mut found: HashSet<&str> = HashSet::new();
    let mut frontier: Vec<(&str, PortType)> = Vec::new();
    for input in &node.inputs {
        found.insert(input.source_node.as_str());
        if raw(input.ty) {
            frontier.push((input.source_node.as_str(), input.ty));
        }
    }
    let mut visited: HashSet<(&str, PortType)> = HashSet::new();
    while let Some((id, ty)) = frontier.pop() {
        if !visited.insert((id, ty)) {
            continue;
        }
        let Some(up) = graph.nodes.iter().find(|n| n.id == id) else {
            continue;
        };
        for input in up.inputs.iter().filter(|i| i.ty == ty) {
            found.insert(input.source_node.as_str());
            frontier.push((input.source_node.as_str(), ty));
        }
    }
    found
}

fn unix_millis() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

/// A graph of `graphs/`, loaded as `runtime run` loads it (for tests).
#[cfg(test)]
pub(crate) fn shipped_graph(file: &str) -> Graph {
    use crate::graph::{load_str, Override};
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../graphs")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    let out = std::env::temp_dir().join(format!("{}-test.mp4", std::process::id()));
    let set = Override::parse(&format!("mux.path={}", out.display())).unwrap();
    let builtins = BTreeMap::from([("timestamp".to_string(), "t".to_string())]);
    load_str(&text, &path, &[set], &builtins).unwrap()
}

#[cfg(test)]
mod memlock_tests {
    use super::*;

    #[test]
    fn forwarded_frames_count_the_pools_they_came_from() {
        let g = shipped_graph("1080p.yaml");
        let of = |id: &str| {
            let node = g.nodes.iter().find(|n| n.id == id).unwrap();
            let mut up: Vec<&str> = mapped_upstream(&g, node).into_iter().collect();
            up.sort();
            up
        };
        // The encoder reads the camera's buffers that sync and video-normalize passed on.
        assert_eq!(of("video-encode"), ["camera", "sync", "video-normalize"]);
        assert_eq!(
            of("audio-encode"),
            ["audio-normalize", "microphone", "sync"]
        );
        // Packets are copied into their messages: the chain stops at the encoders.
        assert_eq!(of("mux"), ["audio-encode", "video-encode"]);
        assert!(of("camera").is_empty());
    }
}
