//! One supervised node process across its incarnations: its state, starting
//! it (again), and reading how it ended.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use tokio::sync::mpsc;

use super::forks::ForkServer;
use super::links::Links;
use super::{hosted, logs, spawn};
use crate::graph::Graph;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NodeState {
    Running,
    Exited,
    Failed,
}

pub(super) struct Supervised {
    pub index: usize,
    pub program: PathBuf,
    pub state: NodeState,
    pub restarts: u32,
    /// Why each restart happened.
    pub restart_causes: Vec<String>,
    pub pid: Option<u32>,
    pub last_exit: Option<String>,
    /// Bumped at each spawn, so a late exit notice of an old process is ignored.
    pub generation: u32,
    /// How many times the node had armed when this incarnation started: a
    /// higher count means this incarnation has subscribed its inputs.
    pub arms_at_start: u64,
    /// Inputs whose end-of-stream was repeated for this incarnation.
    pub eos_replayed: HashSet<String>,
    pub kill: Option<tokio::sync::oneshot::Sender<()>>,
    /// Run by the embedding application, not a process of ours (see `hosted`).
    pub hosted: bool,
    /// Of `--duration`, what earlier incarnations of this source already
    /// covered (the wall time from the start to its last restart: a live
    /// source's media clock), so a restart does not begin the media anew.
    pub media_spent: Duration,
}

impl Supervised {
    /// Node `index` of the graph, not started yet.
    pub fn new(index: usize, program: PathBuf) -> Self {
        Supervised {
            index,
            program,
            state: NodeState::Exited,
            restarts: 0,
            restart_causes: Vec::new(),
            pid: None,
            last_exit: None,
            generation: 0,
            arms_at_start: 0,
            eos_replayed: HashSet::new(),
            kill: None,
            hosted: false,
            media_spent: Duration::ZERO,
        }
    }
}

/// An incarnation of a node ended.
pub(super) struct Exit {
    pub node: String,
    pub generation: u32,
    pub status: std::io::Result<std::process::ExitStatus>,
    /// A hosted node's own account of how it ended (processes have none).
    pub cause: Option<String>,
    /// A hosted node's counters at its end (a process publishes its own).
    pub last_stats: Option<node_api::NodeStats>,
}

/// How an incarnation ended: its status, a hosted node's cause and last counters.
type Ended = (
    std::io::Result<std::process::ExitStatus>,
    Option<String>,
    Option<node_api::NodeStats>,
);

impl Exit {
    pub fn success(&self) -> bool {
        matches!(&self.status, Ok(s) if s.success())
    }

    /// The node said a restart cannot help (exit `EXIT_NO_RESTART`, e.g. a full disk).
    pub fn no_restart(&self) -> bool {
        matches!(&self.status, Ok(s) if s.code() == Some(node_api::EXIT_NO_RESTART))
    }

    /// "exited with status 1", "was killed by signal 9 (SIGKILL)", ...
    pub fn describe(&self) -> String {
        use std::os::unix::process::ExitStatusExt;
        if let Some(cause) = &self.cause {
            return cause.clone();
        }
        match &self.status {
            Ok(s) if s.success() => "exited normally".into(),
            Ok(s) => match (s.code(), s.signal()) {
                (Some(c), _) => format!("exited with status {c}"),
                (_, Some(sig)) => format!("was killed by signal {sig}{}", signal_name(sig)),
                _ => "ended".into(),
            },
            Err(e) => format!("could not be waited for: {e}"),
        }
    }
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

/// Everything needed to (re)start one node.
pub(super) struct Spawner<'a> {
    pub graph: &'a Graph,
    pub links: &'a Links,
    pub shared_memory: bool,
    pub console: logs::Console,
    pub exit_tx: mpsc::UnboundedSender<Exit>,
    pub host: Option<hosted::Host>,
    /// `--duration`, handed to every node (sources apply it).
    pub media_duration: Option<Duration>,
    /// Forks the built-in nodes, when it runs.
    pub forks: Option<&'a ForkServer>,
}

impl Spawner<'_> {
    /// Starts a new incarnation of `sup`; its exit arrives on `exit_tx`.
    pub fn start(&self, sup: &mut Supervised) -> Result<()> {
        let def = &self.graph.nodes[sup.index];
        let links = self.links;
        let socket_dir = links.socket_dir();
        let mut config = spawn::node_config(
            self.graph,
            def,
            &links.run_id,
            socket_dir,
            self.shared_memory,
            sup.restarts,
        );
        config.epoch_ns = links.clock.epoch_ns;
        config.clock_offset_ns = links.clock.offset_ns;
        config.clock = links.clock_model();
        config.machine = links.machine.as_ref().map(|m| m.name.clone());
        config.media_duration_s = self
            .media_duration
            .map(|d| d.saturating_sub(sup.media_spent).as_secs_f64());
        if sup.restarts > 0 {
            config.resume_state = links.resume_states.get(&def.id);
        }
        if let Some(changed) = links.live_params.lock().unwrap().get(&def.id) {
            config.params.0.extend(changed.clone());
        }
        // A restarted node listens on the same socket path.
        let _ = std::fs::remove_file(socket_dir.join(format!("{}.sock", def.id)));
        if sup.hosted {
            return self.start_hosted(sup, config);
        }
        let mut child = spawn::spawn(def, &sup.program, &config, self.forks)?;
        sup.pid = Some(child.id());
        sup.generation += 1;
        sup.arms_at_start = links
            .arm_counts
            .lock()
            .unwrap()
            .get(&def.id)
            .copied()
            .unwrap_or(0);
        sup.eos_replayed.clear();
        sup.state = NodeState::Running;
        let log_path = links.logs_dir.join(format!("{}.log", def.id));
        logs::pump(
            &mut child,
            def.id.clone(),
            log_path,
            self.console.clone(),
            sup.restarts,
        )?;
        self.watch_end(sup, |kill| async move {
            let status = tokio::select! {
                s = child.wait() => s,
                _ = kill => {
                    child.start_kill();
                    child.wait().await
                }
            };
            (status, None, None)
        });
        Ok(())
    }

    /// Hands node `sup` to the embedding application; its end arrives on
    /// `exit_tx` like a process's (see `hosted`).
    fn start_hosted(&self, sup: &mut Supervised, config: node_api::NodeConfig) -> Result<()> {
        use std::os::unix::process::ExitStatusExt;
        let def = &self.graph.nodes[sup.index];
        let host = self
            .host
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!(hosted::needs_host(self.graph).unwrap_or_default()))?;
        let (end_tx, end_rx) = tokio::sync::oneshot::channel();
        host.0.start(&def.id, config, hosted::HostedEnd(end_tx))?;
        sup.pid = None;
        sup.generation += 1;
        sup.state = NodeState::Running;
        self.watch_end(sup, |kill| async move {
            let outcome = tokio::select! {
                o = end_rx => o.unwrap_or_else(|_| Err("the application dropped it without finishing it".into())),
                _ = kill => Err("the application did not finish it in time".into()),
            };
            match outcome {
                Ok(last) => (Ok(std::process::ExitStatus::from_raw(0)), None, last),
                Err(cause) => (Ok(std::process::ExitStatus::from_raw(1 << 8)), Some(cause), None),
            }
        });
        Ok(())
    }

    /// Arms `sup`'s kill switch, and sends its end on `exit_tx` once
    /// `ended` (handed the kill switch) says how it ended.
    fn watch_end<F, Fut>(&self, sup: &mut Supervised, ended: F)
    where
        F: FnOnce(tokio::sync::oneshot::Receiver<()>) -> Fut,
        Fut: std::future::Future<Output = Ended> + Send + 'static,
    {
        let (kill_tx, kill_rx) = tokio::sync::oneshot::channel::<()>();
        sup.kill = Some(kill_tx);
        let tx = self.exit_tx.clone();
        let node = self.graph.nodes[sup.index].id.clone();
        let generation = sup.generation;
        let end = ended(kill_rx);
        tokio::spawn(async move {
            let (status, cause, last_stats) = end.await;
            let _ = tx.send(Exit {
                node,
                generation,
                status,
                cause,
                last_stats,
            });
        });
    }
}
