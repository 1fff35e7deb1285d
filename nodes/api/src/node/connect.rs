//! Connecting a node to its graph: the session, a subscriber per input, the
//! runtime's signals (start, stop, param updates, processes gone), which
//! nodes listen, our consumers' end-of-stream acknowledgements, a publisher
//! per output.

use std::collections::HashSet;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use anyhow::{anyhow, Context, Result};
use zenoh::pubsub::Subscriber;
use zenoh::qos::{CongestionControl, Reliability};
use zenoh::sample::SampleKind;
use zenoh::{Session, Wait};

use super::phase::{Phase, SharedPhase, Step};
use super::{Node, Output};
use crate::config::NodeConfig;
use crate::keys;
use crate::queue::{Control, Queues};
use crate::stats::{Metrics, OutputCounters};

impl Node {
    /// Connects with an explicit config (tests, embedding).
    pub fn from_config(config: NodeConfig) -> Result<Node> {
        match config.clock {
            Some(model) => crate::clock::set_model(model),
            None => crate::clock::set_offset_ns(config.clock_offset_ns),
        }
        // A write past RLIMIT_FSIZE (a zenoh segment in /dev/shm, an output
        // file) then fails with EFBIG and a message, instead of killing the node.
        // SAFETY: setting a signal's disposition to ignore.
        unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
        let session = open_session(&config)?;
        let run = config.run_id.clone();
        let queues = Arc::new(Queues::new(config.inputs.iter().map(|i| {
            let from = format!("{}/{}", i.source_node, i.source_output);
            (i.name.clone(), from, i.queue_size, i.policy)
        })));
        let no_drop = Arc::new(AtomicBool::new(false));
        let phase = Arc::new(SharedPhase::new());
        let subscribed_peers = Arc::new(Mutex::new(HashSet::new()));
        let eos_acks = Arc::new(Mutex::new(HashSet::new()));
        let mut subscribers = subscribe_inputs(&session, &config, &queues, &no_drop)?;
        subscribers.push(subscribe_params(&session, &config, &queues)?);
        subscribers.extend(follow_clock(&session, &config)?);
        subscribers.extend(subscribe_signals(&session, &run, &queues, &phase)?);
        subscribers.push(subscribe_peers(&session, &run, &subscribed_peers)?);
        // Processes of the graph that ended: buffers they held may be taken back.
        let holds = Arc::new(crate::retain::Holds::default());
        let heard = holds.clone();
        subscribers.push(
            session
                .declare_subscriber(keys::gone_all(&run))
                .callback(move |_| heard.holder_gone())
                .wait()
                .map_err(|e| anyhow!("{e}"))?,
        );
        subscribers.push(subscribe_eos_acks(&session, &config, &eos_acks)?);
        let outputs = declare_outputs(&session, &config)?;
        let token = session
            .liveliness()
            .declare_token(keys::subscribed(&run, &config.node_id))
            .wait()
            .map_err(|e| anyhow!("{e}"))?;

        let mut node = Node {
            config,
            session,
            outputs,
            queues,
            metrics: Arc::new(Metrics::default()),
            subscribed_peers,
            eos_acks,
            no_drop,
            phase,
            _subscribers: subscribers,
            _tokens: vec![token],
            stats_thread: None,
            stats_stop: Arc::new(AtomicBool::new(false)),
            holds,
            media_limit_reached: false,
        };
        node.spawn_stats_thread();
        tracing::debug!(node = %node.config.node_id, "connected");
        Ok(node)
    }
}

/// Opening a session with shared memory creates a segment, then lets zenoh
/// scan for orphaned ones: see shm_lock.
fn open_session(config: &NodeConfig) -> Result<Session> {
    let t = &config.transport;
    let shm_lock = t.shared_memory.then(crate::shm_lock::acquire);
    let session = crate::session::open(&t.listen, &t.connect, t.shared_memory, false)
        .with_context(|| format!("node `{}`", config.node_id))?;
    if shm_lock.is_some() {
        crate::shm_lock::hold_at_exit();
    }
    drop(shm_lock);
    Ok(session)
}

/// A subscriber per input, into its queue; a no_drop message received makes
/// our streams no_drop too.
fn subscribe_inputs(
    session: &Session,
    config: &NodeConfig,
    queues: &Arc<Queues>,
    no_drop: &Arc<AtomicBool>,
) -> Result<Vec<Subscriber<()>>> {
    let mut subscribers = Vec::new();
    for (index, input) in config.inputs.iter().enumerate() {
        let q = queues.clone();
        let key = keys::data(&config.run_id, &input.source_node, &input.source_output);
        let flag = no_drop.clone();
        let sub = session
            .declare_subscriber(key)
            .callback(move |sample| {
                let attachment = sample.attachment();
                q.push_flagged(index, attachment, sample.payload().clone(), Some(&flag));
            })
            .wait()
            .map_err(|e| anyhow!("subscribing input `{}`: {e}", input.name))?;
        subscribers.push(sub);
    }
    Ok(subscribers)
}

/// Param updates from the runtime.
fn subscribe_params(
    session: &Session,
    config: &NodeConfig,
    queues: &Arc<Queues>,
) -> Result<Subscriber<()>> {
    let q = queues.clone();
    session
        .declare_subscriber(keys::param_update(&config.run_id, &config.node_id))
        .callback(move |sample| {
            let parsed: Option<serde_json::Value> =
                serde_json::from_slice(&sample.payload().to_bytes()).ok();
            if let Some(v) = parsed {
                if let (Some(name), Some(value)) =
                    (v.get("name").and_then(|n| n.as_str()), v.get("value"))
                {
                    // Made now, when the sender did not say when.
                    let at_ns = v.get("at_ns").and_then(|t| t.as_u64());
                    q.push_control(Control::ParamUpdate {
                        name: name.to_string(),
                        value: value.clone(),
                        at_ns: at_ns.unwrap_or_else(crate::clock::now_ns),
                    });
                }
            }
        })
        .wait()
        .map_err(|e| anyhow!("{e}"))
}

/// On a machine that follows another's clock, the models its runtime
/// publishes as it goes on measuring (each continuous with the one before).
fn follow_clock(session: &Session, config: &NodeConfig) -> Result<Option<Subscriber<()>>> {
    let (Some(machine), Some(model)) = (&config.machine, &config.clock) else {
        return Ok(None);
    };
    if !model.remote {
        return Ok(None);
    }
    session
        .declare_subscriber(keys::clock_model(&config.run_id, machine))
        .callback(|sample| {
            let bytes = sample.payload().to_bytes();
            let Ok(model) = serde_json::from_slice::<crate::clock::ClockModel>(&bytes) else {
                return;
            };
            // One that left before the one applied (the config's) is stale.
            if model.at_ns >= crate::clock::model().at_ns {
                crate::clock::set_model(model);
            }
        })
        .wait()
        .map(Some)
        .map_err(|e| anyhow!("{e}"))
}

/// Start and stop are liveliness tokens the runtime declares: state, not
/// events, so a node that starts late (or restarts) still sees them. Each
/// moves the node's phase, and wakes its event loop once.
fn subscribe_signals(
    session: &Session,
    run: &str,
    queues: &Arc<Queues>,
    phase: &Arc<SharedPhase>,
) -> Result<Vec<Subscriber<()>>> {
    let mut subscribers = Vec::new();
    for (key, step, control) in [
        (keys::started(run), Step::Start, Control::Start),
        (keys::stopping(run), Step::Stop, Control::Stop),
    ] {
        let q = queues.clone();
        let phase = phase.clone();
        let sub = session
            .liveliness()
            .declare_subscriber(key)
            .history(true)
            .callback(move |sample| {
                if sample.kind() != SampleKind::Put {
                    return;
                }
                let (before, after) = phase.step(step);
                if after == Phase::Running && before != after {
                    crate::cpu::mark(crate::cpu::Mark::Started);
                }
                if before != after {
                    q.push_control(control.clone());
                }
            })
            .wait()
            .map_err(|e| anyhow!("{e}"))?;
        subscribers.push(sub);
    }
    Ok(subscribers)
}

/// Which nodes have subscribed their inputs (to know our consumers are listening).
fn subscribe_peers(
    session: &Session,
    run: &str,
    peers: &Arc<Mutex<HashSet<String>>>,
) -> Result<Subscriber<()>> {
    let peers = peers.clone();
    let prefix = keys::subscribed(run, "");
    session
        .liveliness()
        .declare_subscriber(keys::subscribed(run, "*"))
        .history(true)
        .callback(move |sample| {
            let key = sample.key_expr().as_str();
            if let Some(node) = key.strip_prefix(&prefix) {
                let mut p = peers.lock().unwrap();
                match sample.kind() {
                    SampleKind::Put => p.insert(node.to_string()),
                    SampleKind::Delete => p.remove(node),
                };
            }
        })
        .wait()
        .map_err(|e| anyhow!("{e}"))
}

/// End-of-stream acknowledgements from our consumers (`<output>/<consumer>`).
fn subscribe_eos_acks(
    session: &Session,
    config: &NodeConfig,
    acks: &Arc<Mutex<HashSet<String>>>,
) -> Result<Subscriber<()>> {
    let acks = acks.clone();
    let prefix = keys::eos_ack_prefix(&config.run_id, &config.node_id);
    session
        .declare_subscriber(format!("{prefix}**"))
        .callback(move |sample| {
            if let Some(rest) = sample.key_expr().as_str().strip_prefix(&prefix) {
                acks.lock().unwrap().insert(rest.to_string());
            }
        })
        .wait()
        .map_err(|e| anyhow!("{e}"))
}

fn declare_outputs(session: &Session, config: &NodeConfig) -> Result<Vec<Output>> {
    let mut outputs = Vec::new();
    for out in &config.outputs {
        let publisher = session
            .declare_publisher(keys::data(&config.run_id, &config.node_id, &out.name))
            .congestion_control(CongestionControl::Block)
            .reliability(Reliability::Reliable)
            .express(true)
            .wait()
            .map_err(|e| anyhow!("declaring output `{}`: {e}", out.name))?;
        outputs.push(Output {
            config: out.clone(),
            publisher,
            seq: 0,
            pool: None,
            counters: Arc::new(OutputCounters::default()),
            closed: false,
            closed_at_ns: 0,
            media: Default::default(),
        });
    }
    Ok(outputs)
}
