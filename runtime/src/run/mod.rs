//! `runtime run`: spawn one process per node, hold the barrier, supervise
//! (restarts, logs, live stats), stop in order, report.
//!
//! [`run`] goes through its steps in order: prepare (`links`: directories,
//! the zenoh session and what the runtime watches on it) → spawn
//! (`supervisor`, `process`) → the barrier (`barrier`) → supervise
//! (`supervisor`) → report. The [`supervisor::RunPhase`] says where the run
//! is: Arming (the barrier: every node subscribes, then arms) → Running (the `started`
//! token is up; sources produce) → Stopping (the `stopping` token is up;
//! sources end, end-of-stream flows downstream, sinks finalize) → Finished.
//! A node that is still alive `grace` after Stopping began is killed.
//!
//! A graph spread over machines runs one runtime per machine (`--machine`),
//! each a zenoh router for its nodes: they share the run id, the barrier
//! (every node of every machine), the stop (any machine's stopping token),
//! and the capture clock (see `clocks`); a machine that vanishes has its
//! streams ended by the others (see `machines`).

mod barrier;
mod child;
mod clocks;
mod ending;
mod feed;
mod forks;
mod hang;
mod hosted;
mod links;
mod live;
mod logs;
mod machines;
mod process;
mod report;
mod restarts;
mod sockets;
mod spawn;
mod status;
mod supervisor;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use tokio::sync::mpsc;

use crate::graph::Graph;
use links::Links;
// Named here for `hang`, which knows them as `super::…`.
pub(crate) use feed::Tap;
pub use hosted::{needs_host, Host, HostedEnd, NodeHost};
pub use live::{LiveStats, NodeFigures, Phase, RunEvent};
use process::{NodeState, Supervised};
pub use report::{
    ClockReport, CpuReport, MachineLoss, MachineRejoin, NodeOutcome, NodeReport, RunReport,
};
pub use spawn::{builtin_binary, builtin_binary_in, builtin_dir};
use supervisor::Supervisor;

/// How a run is carried out.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Seconds of media: every source (a node without inputs) ends after
    /// sending this much of its media, and the graph finishes as at the end
    /// of a file. The media clock, not the wall's: a replay faster than
    /// real time records as much as a live run.
    pub duration: Option<Duration>,
    /// Stop after this much wall-clock time from the moment sources start,
    /// however much media they produced by then.
    pub wall_time: Option<Duration>,
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
    /// How long nodes may take to arm, on every machine (`--ready-timeout`).
    pub arm_timeout: Duration,
    /// How long a vanished machine may take to come back before it is
    /// judged lost (`--rejoin-timeout`; none: `machines::LOSS_SETTLE`).
    pub rejoin_timeout: Option<Duration>,
    /// The id every machine of a run shares (default: derived from the
    /// graph when `machine` is set, unique otherwise).
    pub run_id: Option<String>,
    /// Runs the graph's hosted nodes (`app-video`, `app-audio`): the
    /// embedding application. A graph with hosted nodes needs one.
    pub host: Option<Host>,
    /// Where the built-in nodes' executable is (default: beside this
    /// program, or `MEDIAGRAPH_NODE_DIR`; see `builtin_dir`).
    pub node_dir: Option<PathBuf>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            duration: None,
            wall_time: None,
            grace: Duration::from_secs(20),
            hang_timeout: Some(Duration::from_secs(10)),
            run_dir: PathBuf::from("runs"),
            machine: None,
            console: true,
            shared_memory: true,
            arm_timeout: Duration::from_secs(60),
            rejoin_timeout: None,
            run_id: None,
            host: None,
            node_dir: None,
        }
    }
}

impl RunOptions {
    /// Whether `node` runs on this runtime's machine (every node does when
    /// neither says a machine).
    pub(crate) fn runs_here(&self, node: &crate::graph::NodeDef) -> bool {
        self.machine.is_none() || node.machine.is_none() || node.machine == self.machine
    }
}

/// A handle on a running graph, for whoever embeds the runtime (the CLI uses
/// it for Ctrl-C): ask it to stop, or change a node's param while it runs.
#[derive(Clone)]
pub struct StopHandle {
    notify: Arc<tokio::sync::Notify>,
    requested: Arc<std::sync::atomic::AtomicBool>,
    params: mpsc::UnboundedSender<ParamUpdate>,
    params_rx: Arc<Mutex<Option<ParamReceiver>>>,
    live: Arc<live::Live>,
    feed: feed::Feed,
}

/// A param update on its way to a node: `node.name = value`, made at
/// `at_ns` on the capture clock (what the node sees as `Event::ParamUpdate`).
#[derive(Debug, Clone)]
pub struct ParamUpdate {
    pub node: String,
    pub name: String,
    pub value: serde_json::Value,
    pub at_ns: u64,
}
type ParamReceiver = mpsc::UnboundedReceiver<ParamUpdate>;

impl Default for StopHandle {
    fn default() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        StopHandle {
            notify: Arc::default(),
            requested: Arc::default(),
            params: tx,
            params_rx: Arc::new(Mutex::new(Some(rx))),
            live: Arc::default(),
            feed: feed::Feed::default(),
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
    /// A built-in node only takes the params its kind marks `live`: the
    /// update is checked against the schema first, and a refused one logged.
    pub fn set_param(&self, node: &str, name: &str, value: serde_json::Value) {
        self.set_param_at(node, name, value, node_api::clock::now_ns());
    }

    /// [`StopHandle::set_param`] made at `at_ns` (capture clock): updates
    /// sent to several nodes with one instant apply to the same frame in
    /// each (a recording's start: the encoder's keyframe and the mux's cut).
    pub fn set_param_at(&self, node: &str, name: &str, value: serde_json::Value, at_ns: u64) {
        let _ = self.params.send(ParamUpdate {
            node: node.to_string(),
            name: name.to_string(),
            value,
            at_ns,
        });
    }

    /// The latest statistics (updated every half second while it runs).
    pub fn stats(&self) -> Arc<LiveStats> {
        self.live.stats()
    }

    /// Follows the statistics as they are updated.
    pub fn watch_stats(&self) -> tokio::sync::watch::Receiver<Arc<LiveStats>> {
        self.live.watch_stats()
    }

    /// The run's events from now on.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<RunEvent> {
        self.live.subscribe()
    }

    /// The runtime's session and run id while the run's links are open
    /// (for a snapshot of a frame); `None` before and after.
    pub(crate) fn tap(&self) -> Option<Tap> {
        self.feed.tap()
    }

    /// Where the run is now (updated as it changes, not every half second).
    pub fn phase(&self) -> Phase {
        self.live.phase()
    }

    /// Follows the phase as it changes.
    pub fn watch_phase(&self) -> tokio::sync::watch::Receiver<Phase> {
        self.live.watch_phase()
    }

    /// Whether [`StopHandle::stop`] was called (the run may not have begun
    /// stopping yet: it does at its next wake-up).
    pub fn stop_requested(&self) -> bool {
        self.is_requested()
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

/// Runs a validated graph to its end. Returns the report; its `exit_code` is
/// 0 when every node ended cleanly, 1 when a node failed.
pub async fn run(graph: &Graph, opts: &RunOptions, stop: StopHandle) -> Result<RunReport> {
    let started_at = Instant::now();
    if opts.host.is_none() {
        if let Some(why) = needs_host(graph) {
            anyhow::bail!(why);
        }
    }
    // Prepare: the fork server (it links while the rest is prepared),
    // directories, session, what the runtime watches, machines.
    let forks = fork_server(graph, opts);
    let hang = hang::HangWatch::new(opts.hang_timeout);
    let links = Links::open(graph, opts, hang.heard()).await?;
    let tap = stop.feed.open(Tap {
        session: links.session.clone(),
        run_id: links.run_id.clone(),
    });
    let mut report = RunReport::new(graph, &links.run_id, &opts.run_dir);
    report.machine = opts.machine.clone();
    // Spawn, hold the barrier, supervise until no node runs.
    let mut supervisor =
        Supervisor::spawn(graph, opts, &links, hang, stop.live.clone(), forks.as_ref())?;
    report.graph_start_ms = supervisor.barrier(&stop, started_at).await?;
    supervisor.supervise(&stop).await;
    // Report.
    supervisor.conclude(&mut report).await;
    if let Some(forks) = &forks {
        forks.finish().await;
    }
    report.clock = links.clock_report();
    drop(tap);
    links.close();
    // Last: every node has been reaped by now (their CPU is the children's).
    report.cpu = Some(report::CpuReport::now());
    Ok(report)
}

/// The fork server for this machine's built-in nodes, when it has any that
/// run as processes.
fn fork_server(graph: &Graph, opts: &RunOptions) -> Option<forks::ForkServer> {
    let local_builtin = graph.nodes.iter().any(|n| {
        matches!(n.program, crate::graph::NodeProgram::Builtin(_))
            && !n.is_hosted()
            && opts.runs_here(n)
    });
    if !local_builtin {
        return None;
    }
    let program = spawn::builtin_binary(opts.node_dir.as_deref()).ok()?;
    forks::ForkServer::start(&program)
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
    use std::collections::BTreeMap;
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../graphs")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    let out = std::env::temp_dir().join(format!("{}-test.mp4", std::process::id()));
    let set = Override::parse(&format!("mux.path={}", out.display())).unwrap();
    let builtins = BTreeMap::from([("timestamp".to_string(), "t".to_string())]);
    load_str(&text, &path, &[set], &builtins).unwrap()
}
