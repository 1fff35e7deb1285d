//! The run's side of zenoh, set up before the first node is spawned and
//! closed after the last one ended: the session, what the runtime watches on
//! it (stats, armed nodes, closed outputs, resume states, a stop asked by
//! another machine), and this machine's place in a graph spread over machines.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{anyhow, Context, Result};
use node_api::{keys, memlock, NodeStats};
use zenoh::liveliness::LivelinessToken;
use zenoh::pubsub::Subscriber;
use zenoh::sample::SampleKind;
use zenoh::Wait;

use super::hang::Heard;
use super::restarts::{ClosedOutputs, ResumeStates};
use super::{clocks, machines, sockets, spawn, ClockReport, RunOptions, StopHandle};
use crate::graph::Graph;

/// Latest stats per node, fed by the stats subscriber.
pub(super) type LiveStats = Arc<Mutex<HashMap<String, NodeStats>>>;

pub(super) struct Links {
    pub run_id: String,
    pub logs_dir: PathBuf,
    pub session: zenoh::Session,
    /// This machine's place on the run's capture clock.
    pub clock: clocks::ClockSync,
    /// A stop asked by another machine's runtime.
    pub remote_stop: StopHandle,
    pub stats: LiveStats,
    /// The armed nodes (with the shared memory their pools hold).
    pub armed: Arc<Mutex<HashMap<String, u64>>>,
    /// How many times each node armed (once per incarnation).
    pub arm_counts: Arc<Mutex<HashMap<String, u64>>>,
    pub closed: ClosedOutputs,
    pub resume_states: ResumeStates,
    /// Live params changed while running, per node: a restarted node starts
    /// with them (a recording session or a pause goes on across a restart).
    pub live_params: Mutex<HashMap<String, serde_json::Map<String, serde_json::Value>>>,
    pub machine: Option<MachineLink>,
    /// Dropped first when the links close, in this order.
    subscribers: Vec<Subscriber<()>>,
    /// Removed last, after the session closed.
    sockets: sockets::SocketDir,
}

/// This machine in a graph spread over machines.
pub(super) struct MachineLink {
    pub name: String,
    pub watch: machines::MachineWatch,
    /// The machine whose clock the run's capture times are on.
    pub reference: String,
    token: LivelinessToken,
    clock_server: Option<zenoh::query::Queryable<()>>,
    /// On a machine other than the reference: following its clock.
    follower: Option<clocks::follow::Follower>,
}

impl Links {
    /// Prepares the run: its directories, shared memory left by earlier
    /// runs, the session, and (`--machine`) the other machines and the clock.
    pub async fn open(graph: &Graph, opts: &RunOptions, heard: Heard) -> Result<Links> {
        let run_id = machines::run_id(graph, opts.machine.as_deref(), opts.run_id.as_deref());
        let logs_dir = opts.run_dir.join("logs");
        std::fs::create_dir_all(&logs_dir)
            .with_context(|| format!("cannot create the run directory {}", logs_dir.display()))?;
        let sockets = sockets::SocketDir::create()?;
        clean_shared_memory(opts.shared_memory)?;
        let session = open_session(graph, opts, sockets.path())?;
        let mut links = Links {
            run_id,
            logs_dir,
            session,
            clock: clocks::ClockSync {
                offset_ns: 0,
                rtt_ns: 0,
                epoch_ns: node_api::clock::now_ns(),
                host_ns: 0,
            },
            remote_stop: StopHandle::default(),
            stats: Arc::default(),
            armed: Arc::default(),
            arm_counts: Arc::default(),
            closed: ClosedOutputs::default(),
            resume_states: ResumeStates::default(),
            live_params: Mutex::default(),
            machine: None,
            subscribers: Vec::new(),
            sockets,
        };
        if let Some(me) = opts.machine.as_deref() {
            links.join_machines(graph, me, opts).await?;
        }
        let stopping = links.watch_remote_stop()?;
        links.subscribers.push(links.watch_stats(heard)?);
        links.subscribers.push(links.watch_armed()?);
        links
            .subscribers
            .push(links.closed.subscribe(&links.session, &links.run_id)?);
        links.subscribers.push(
            links
                .resume_states
                .subscribe(&links.session, &links.run_id)?,
        );
        links.subscribers.push(stopping);
        Ok(links)
    }

    pub fn socket_dir(&self) -> &Path {
        self.sockets.path()
    }

    /// A graph spread over machines: says this machine is up, watches the
    /// others, and puts this machine on the reference clock.
    async fn join_machines(&mut self, graph: &Graph, me: &str, opts: &RunOptions) -> Result<()> {
        let (session, run_id) = (&self.session, &self.run_id);
        let watch = machines::MachineWatch::start(session, run_id)?;
        let token = session
            .liveliness()
            .declare_token(keys::machine(run_id, me))
            .wait()
            .map_err(|e| anyhow!("{e}"))?;
        let (mut clock_server, mut follower) = (None, None);
        let reference = machines::clock_reference(graph).unwrap_or_else(|| me.to_string());
        if reference == me {
            clock_server = Some(clocks::serve(session, run_id, self.clock.epoch_ns)?);
        } else {
            tracing::info!("measuring this machine's clock against machine `{reference}`");
            self.clock = clocks::measure(session, run_id, &reference, opts.arm_timeout).await?;
            // Connected now: the others would say if this machine was lost.
            if machines::was_lost(session, run_id, me).await {
                anyhow::bail!(
                    "machine `{me}` was lost from run {run_id}, which goes on without it: its streams \
                     were ended, so its nodes cannot rejoin the recording (one back within \
                     `--rejoin-timeout` can)"
                );
            }
            follower = Some(clocks::follow::start(
                session, run_id, me, &reference, self.clock,
            ));
        }
        let clock = self.clock;
        tracing::info!(
            "machine `{me}` of run {run_id}: clock offset to `{reference}` {:+.3} ms (round trip {:.3} ms)",
            clock.offset_ns as f64 / 1e6,
            clock.rtt_ns as f64 / 1e6
        );
        self.machine = Some(MachineLink {
            name: me.to_string(),
            watch,
            reference,
            token,
            clock_server,
            follower,
        });
        Ok(())
    }

    /// What this machine's nodes start with: the model of the clock now
    /// (`None` when the graph is not spread over machines).
    pub fn clock_model(&self) -> Option<node_api::clock::ClockModel> {
        let m = self.machine.as_ref()?;
        Some(match &m.follower {
            Some(f) => f.state.lock().unwrap().applied,
            None => node_api::clock::ClockModel::constant(self.clock.offset_ns),
        })
    }

    /// This machine's clock against the reference, for the report.
    pub fn clock_report(&self) -> Option<ClockReport> {
        let m = self.machine.as_ref()?;
        let state = m.follower.as_ref().map(|f| f.state.lock().unwrap().clone());
        Some(ClockReport::new(&m.reference, &self.clock, state.as_ref()))
    }

    /// The status line's part: how this machine's clock follows the
    /// reference's (`None` on the reference, or alone).
    pub fn clock_status(&self) -> Option<String> {
        let f = self.machine.as_ref()?.follower.as_ref()?;
        let s = f.state.lock().unwrap();
        let uncertainty_ms = s.applied.uncertainty_ns as f64 / 1e6;
        Some(match s.fit {
            Some(fit) => format!("clock {:+.1} ppm ±{uncertainty_ms:.2} ms", -fit.rate_ppm),
            None => format!("clock ±{uncertainty_ms:.2} ms"),
        })
    }

    /// The `stopping` token of any machine's runtime stops this one too.
    fn watch_remote_stop(&self) -> Result<Subscriber<()>> {
        let remote_stop = self.remote_stop.clone();
        self.session
            .liveliness()
            .declare_subscriber(keys::stopping(&self.run_id))
            .history(true)
            .callback(move |sample| {
                if sample.kind() == SampleKind::Put {
                    remote_stop.stop();
                }
            })
            .wait()
            .map_err(|e| anyhow!("{e}"))
    }

    /// Live stats, and when each node was last heard of (see `hang`).
    fn watch_stats(&self, heard: Heard) -> Result<Subscriber<()>> {
        let stats = self.stats.clone();
        self.session
            .declare_subscriber(keys::stats_all(&self.run_id))
            .callback(move |sample| {
                if let Ok(s) = serde_json::from_slice::<NodeStats>(&sample.payload().to_bytes()) {
                    heard.note(&s.node);
                    stats.lock().unwrap().insert(s.node.clone(), s);
                }
            })
            .wait()
            .map_err(|e| anyhow!("{e}"))
    }

    /// The armed set, and how many times each node armed.
    fn watch_armed(&self) -> Result<Subscriber<()>> {
        let armed = self.armed.clone();
        let arm_counts = self.arm_counts.clone();
        self.session
            .liveliness()
            .declare_subscriber(keys::armed_all(&self.run_id))
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
            .map_err(|e| anyhow!("{e}"))
    }

    /// The nodes' latest stats.
    pub fn stats_now(&self) -> HashMap<String, NodeStats> {
        self.stats.lock().unwrap().clone()
    }

    /// Tells the processes of the graph that `node` ended: its upstream
    /// nodes take back the shared memory it held (node_api::pool).
    pub fn announce_gone(&self, node: &str) {
        let _ = self
            .session
            .put(keys::gone(&self.run_id, node), Vec::<u8>::new())
            .wait();
    }

    /// Ends the run's side of zenoh: subscribers, this machine's presence
    /// (saying it is done, so the others do not take it for lost), the
    /// session, then shared memory and the socket directory.
    pub fn close(mut self) {
        self.subscribers.clear();
        if let Some(m) = self.machine.take() {
            drop(m.watch);
            drop(m.clock_server);
            let _ = self
                .session
                .put(keys::machine_done(&self.run_id, &m.name), Vec::<u8>::new())
                .congestion_control(zenoh::qos::CongestionControl::Block)
                .wait();
            drop(m.token);
        }
        let _ = self.session.close().wait();
        zenoh::shm::cleanup_orphaned_shm_segments();
    }
}

/// Segments left in /dev/shm by killed processes of earlier runs (under the
/// lock our processes create segments under: see node_api::shm_lock), and
/// the limits shared memory needs.
fn clean_shared_memory(shared_memory: bool) -> Result<()> {
    {
        let _shm_lock = node_api::shm_lock::acquire();
        zenoh::shm::cleanup_orphaned_shm_segments();
    }
    memlock::raise_to_hard_limit();
    if shared_memory {
        memlock::check_file_size_limit()?;
    }
    Ok(())
}

/// The runtime's session: it listens on the run's socket (and, `--machine`,
/// the machine's endpoints) and connects to the other machines. It only
/// carries control and stats: without shared memory of its own it creates no
/// segment that could outlive it (zenoh's segments are cleaned once their
/// owner has exited, which the runtime has not when it cleans up).
fn open_session(graph: &Graph, opts: &RunOptions, socket_dir: &Path) -> Result<zenoh::Session> {
    let net = opts
        .machine
        .as_ref()
        .and_then(|m| graph.network.machines.get(m));
    let mut listen = vec![spawn::local_endpoint(socket_dir, None)];
    if let Some(net) = net {
        listen.extend(net.listen.iter().cloned());
    }
    let connect = net.map(|n| n.connect.clone()).unwrap_or_default();
    node_api::session::open(&listen, &connect, false, opts.machine.is_some())
}
