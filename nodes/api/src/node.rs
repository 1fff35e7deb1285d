//! [`Node`]: one node process's connection to its graph.
//!
//! Its life is one state machine ([`phase`]): connected → armed (its
//! consumers subscribed; the runtime's barrier waits for every node to arm)
//! → running (the graph started) → stopping → stop handed out →
//! drained → finished. Connecting is in `connect`, sending in `send`,
//! finishing in `finish`, the published counters in `publish`.

mod connect;
mod finish;
mod limit;
mod phase;
mod publish;
mod send;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use node_catalog::{Params, PortType};
use zenoh::liveliness::LivelinessToken;
use zenoh::pubsub::{Publisher, Subscriber};
use zenoh::{Session, Wait};

use crate::config::{NodeConfig, OutputConfig};
use crate::describe::NodeSchema;
use crate::keys;
use crate::message::Message;
use crate::pool::{Pool, PoolHandle};
use crate::queue::{Control, Next, Queues};
use crate::stats::{Metrics, OutputCounters};
use phase::{Phase, SharedPhase, Step};

/// How long a node waits for its consumers to subscribe before giving up.
const ARM_TIMEOUT: Duration = Duration::from_secs(60);

/// Something for the node to act on.
#[derive(Debug)]
pub enum Event {
    /// A message arrived on an input.
    Input { input: String, message: Message },
    /// The sender of an input will send nothing more (end-of-stream).
    InputClosed { input: String },
    /// The graph is stopping: sources stop producing; other nodes keep draining
    /// their inputs until they close.
    Stop,
    /// A param was changed while running. For a built-in kind only a param
    /// its schema marks mutable, with a value already checked.
    ParamUpdate {
        name: String,
        value: serde_json::Value,
        /// When the update was made, on the capture clock
        /// ([`crate::clock::now_ns`]): a change that must apply to media
        /// from a given instant on (a recording's start, a split, a
        /// keyframe) compares it with the capture time of its frames, so it
        /// lands on the same frame in every node that gets it.
        at_ns: u64,
    },
}

struct Output {
    config: OutputConfig,
    publisher: Publisher<'static>,
    seq: u64,
    pool: Option<Arc<Pool>>,
    counters: Arc<OutputCounters>,
    closed: bool,
    /// When the end-of-stream went out (capture clock, ns).
    closed_at_ns: u64,
    /// How much media went out, for `--duration` (see `limit`).
    media: limit::MediaClock,
}

/// One node's handle on its graph: its config and params, its inputs as an event
/// stream, its outputs as typed sends. Built-in and custom nodes use it the same way:
///
/// ```no_run
/// use node_api::{Event, Node, Header};
/// let mut node = Node::init()?;
/// while let Some(event) = node.next_event()? {
///     if let Event::Input { message, .. } = event {
///         // process message.header / message.payload, then e.g.:
///         node.forward("out", message.header.clone(), &message.payload)?;
///     }
/// }
/// node.finish()?;
/// # Ok::<(), anyhow::Error>(())
/// ```
pub struct Node {
    config: NodeConfig,
    session: Session,
    outputs: Vec<Output>,
    queues: Arc<Queues>,
    metrics: Arc<Metrics>,
    subscribed_peers: Arc<Mutex<HashSet<String>>>,
    /// `<output>/<consumer>` pairs that acknowledged our end-of-stream.
    eos_acks: Arc<Mutex<HashSet<String>>>,
    /// Our streams must not be dropped anywhere (faster-than-real-time input).
    no_drop: Arc<AtomicBool>,
    /// Where the node is in its life; moved by the runtime's start and stop
    /// (zenoh callbacks) and by the node's own steps.
    phase: Arc<SharedPhase>,
    _subscribers: Vec<Subscriber<()>>,
    _tokens: Vec<LivelinessToken>,
    stats_thread: Option<std::thread::JoinHandle<()>>,
    stats_stop: Arc<AtomicBool>,
    /// Our holds on what we sent, and the graph's departures (see `retain`).
    holds: Arc<crate::retain::Holds>,
    /// Every output sent its `--duration` of media: the source is to end.
    media_limit_reached: bool,
}

impl Node {
    /// Sets up logging and connects using the config the runtime put in the environment.
    ///
    /// A node started this way publishes no schema: `--describe` fails, and
    /// the runtime passes its params as written. See [`Node::init_with_schema`].
    pub fn init() -> Result<Node> {
        // For a node whose main does not go through `run_main`.
        crate::cpu::mark(crate::cpu::Mark::Entry);
        if crate::describe::describe_requested() {
            bail!(
                "this node publishes no schema: start it with `Node::init_with_schema` to answer {}",
                crate::describe::DESCRIBE_ARG
            );
        }
        crate::logging::init();
        let config = NodeConfig::from_env()?;
        Node::from_config(config)
    }

    /// Like [`Node::init`], for a node that declares its ports and params in
    /// `schema`. Started as `NODE --describe`, it prints the schema as JSON
    /// and exits 0, before reading any config or connecting (this is how
    /// `runtime check` and `runtime run` learn it). Otherwise its params are
    /// checked against the schema (type, range, choices, the schema's own
    /// cross-checks) with defaults filled in, as the runtime already did, so
    /// [`Node::params`] holds every param that has a value.
    pub fn init_with_schema(schema: &'static NodeSchema) -> Result<Node> {
        crate::cpu::mark(crate::cpu::Mark::Entry);
        crate::describe::describe_if_requested(schema);
        crate::updates::set_custom_schema(schema);
        crate::logging::init();
        let mut config = NodeConfig::from_env()?;
        config.params = schema.check_params(&config.params).map_err(|errors| {
            let list: Vec<String> = errors
                .iter()
                .map(|(param, message)| format!("param `{param}`: {message}"))
                .collect();
            anyhow!("{}: {}", schema.kind, list.join("; "))
        })?;
        Node::from_config(config)
    }

    pub fn id(&self) -> &str {
        &self.config.node_id
    }

    pub fn config(&self) -> &NodeConfig {
        &self.config
    }

    /// The names of the node's inputs, in the graph's order.
    pub fn input_names(&self) -> Vec<String> {
        self.config.inputs.iter().map(|i| i.name.clone()).collect()
    }

    /// The node's params, validated and with defaults filled in.
    pub fn params(&self) -> &Params {
        &self.config.params
    }

    /// Node-specific figures published with the node's stats.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Sizes the shared-memory pool of `output` for payloads up to `max_payload`
    /// bytes. Call before the first event so a too-small memlock limit is
    /// reported at start, not mid-recording.
    pub fn reserve(&mut self, output: &str, max_payload: usize) -> Result<()> {
        if !self.config.transport.shared_memory {
            return Ok(());
        }
        let node_id = self.config.node_id.clone();
        let holds = self.holds.clone();
        let out = self.output_mut(output)?;
        if out
            .pool
            .as_ref()
            .is_some_and(|p| p.max_payload >= max_payload)
        {
            return Ok(());
        }
        // Queue of each consumer + one being processed + one being filled + one in flight.
        let slots = out.config.max_queue + 3;
        out.pool = Some(Arc::new(Pool::new(
            &format!("node `{node_id}` output `{output}`"),
            max_payload,
            slots,
            holds,
        )?));
        Ok(())
    }

    /// A handle on the shared-memory pool of `output` (sized as by
    /// [`Node::reserve`]) that any thread may allocate from, for buffers sent
    /// with [`Node::send_video_shared`]. `None` when the run does not use
    /// shared memory.
    pub fn pool_handle(&mut self, output: &str, max_payload: usize) -> Result<Option<PoolHandle>> {
        if !self.config.transport.shared_memory {
            return Ok(None);
        }
        self.reserve(output, max_payload)?;
        let out = self.output_mut(output)?;
        Ok(out.pool.as_ref().map(|pool| PoolHandle {
            pool: pool.clone(),
            counters: out.counters.clone(),
        }))
    }

    /// Bytes of shared memory held by this node's pools.
    pub fn pool_bytes(&self) -> u64 {
        self.outputs
            .iter()
            .filter_map(|o| o.pool.as_ref())
            .map(|p| p.capacity as u64)
            .sum()
    }

    /// Arms the node: waits until every consumer of our outputs has
    /// subscribed, then tells the runtime (its `armed` token). Called by the
    /// first [`Node::next_event`] or [`Node::wait_for_start`].
    pub fn arm(&mut self) -> Result<()> {
        if !self.phase.get().unarmed() {
            return Ok(());
        }
        let wanted: HashSet<String> = self
            .outputs
            .iter()
            .flat_map(|o| o.config.consumers.iter().cloned())
            .collect();
        let deadline = Instant::now() + ARM_TIMEOUT;
        loop {
            let missing: Vec<String> = {
                let seen = self.subscribed_peers.lock().unwrap();
                wanted
                    .iter()
                    .filter(|n| !seen.contains(*n))
                    .cloned()
                    .collect()
            };
            if missing.is_empty() {
                break;
            }
            if Instant::now() > deadline || self.stop_requested() {
                bail!(
                    "node `{}`: consumers never subscribed: {}",
                    self.config.node_id,
                    missing.join(", ")
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let token = self
            .session
            .liveliness()
            .declare_token(keys::armed(
                &self.config.run_id,
                &self.config.node_id,
                self.pool_bytes(),
            ))
            .wait()
            .map_err(|e| anyhow!("{e}"))?;
        self._tokens.push(token);
        crate::cpu::mark(crate::cpu::Mark::Armed);
        if self.phase.step(Step::Arm).1 == Phase::Running {
            // The start came first (a restarted node): no wait at the barrier.
            crate::cpu::mark(crate::cpu::Mark::Started);
        }
        tracing::debug!(node = %self.config.node_id, "armed");
        Ok(())
    }

    /// For sources: arms the node and waits until every node of the graph
    /// has armed (the runtime's barrier).
    /// Returns false when the graph was stopped before it started.
    pub fn wait_for_start(&mut self) -> Result<bool> {
        self.arm()?;
        loop {
            let phase = self.phase.get();
            if phase.past_start() {
                return Ok(!phase.stop_requested());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Marks this node's streams no_drop: a source replaying faster than real
    /// time calls it so every queue downstream blocks instead of dropping.
    /// Nodes receiving no_drop messages pass the flag on by themselves.
    pub fn set_no_drop(&self, no_drop: bool) {
        self.no_drop.store(no_drop, Ordering::Relaxed);
    }

    /// Saves `state` for the node's next incarnation: if this process dies
    /// and the runtime restarts it, the new one reads it back with
    /// [`Node::resume_state`] (e.g. sync keeps its timeline origin).
    pub fn save_resume_state(&self, state: &serde_json::Value) {
        let key = keys::resume_state(&self.config.run_id, &self.config.node_id);
        let _ = self.session.put(key, state.to_string()).wait();
    }

    /// Sends a param update made at `at_ns` (capture clock) to the node
    /// feeding `input`, on whichever machine it runs, as the runtime would:
    /// the receiver admits it against its own schema (a live param or an
    /// action, of its type) and ignores anything else. Sync asks the
    /// encoders of its packet inputs for a keyframe this way.
    pub fn ask_upstream(
        &self,
        input: &str,
        name: &str,
        value: serde_json::Value,
        at_ns: u64,
    ) -> Result<()> {
        let source = self
            .config
            .inputs
            .iter()
            .find(|i| i.name == input)
            .map(|i| i.source_node.clone())
            .ok_or_else(|| anyhow!("node `{}` has no input `{input}`", self.config.node_id))?;
        let body = serde_json::json!({ "name": name, "value": value, "at_ns": at_ns });
        self.session
            .put(
                keys::param_update(&self.config.run_id, &source),
                body.to_string(),
            )
            .wait()
            .map_err(|e| anyhow!("asking `{source}` for `{name}`: {e}"))
    }

    /// What the previous incarnation saved with [`Node::save_resume_state`].
    pub fn resume_state(&self) -> Option<&serde_json::Value> {
        self.config.resume_state.as_ref()
    }

    /// Whether this node's streams are no_drop: set by [`Node::set_no_drop`]
    /// or by a no_drop message received. A node that could pass over late
    /// input (to keep up live) must wait for it instead.
    pub fn is_no_drop(&self) -> bool {
        self.no_drop.load(Ordering::Relaxed)
    }

    /// Stops taking messages from `input` until [`Node::resume_input`]: its
    /// queue fills, and on a no_drop stream its sender then waits. A node
    /// that merges streams replayed faster than real time uses it to keep
    /// them together (sync holds back the one that runs ahead). Never pause
    /// every open input: the event loop would wait forever.
    pub fn pause_input(&self, input: &str) {
        self.queues.set_paused(input, true);
    }

    /// Takes messages from a paused `input` again.
    pub fn resume_input(&self, input: &str) {
        self.queues.set_paused(input, false);
    }

    /// Whether the runtime asked the graph to stop, or this source sent
    /// the run's `--duration` of media (sources poll this).
    pub fn stop_requested(&self) -> bool {
        self.media_limit_reached || self.phase.get().stop_requested()
    }

    /// The next event. `Ok(None)` once every input has closed (for a node without
    /// inputs: once the graph is stopping).
    pub fn next_event(&mut self) -> Result<Option<Event>> {
        self.next_event_timeout(None)
    }

    /// The event loop behind [`Node::next_event`] and [`Node::poll_event`]; a
    /// timeout surfaces as an error carrying [`TIMEOUT_MARKER`].
    fn next_event_timeout(&mut self, timeout: Option<Duration>) -> Result<Option<Event>> {
        self.arm()?;
        loop {
            match self.queues.next(timeout) {
                Next::Control(Control::Start) => continue,
                Next::Control(Control::Stop) => {
                    let (before, after) = self.phase.step(Step::HandOutStop);
                    if before == after {
                        continue;
                    }
                    return Ok(Some(Event::Stop));
                }
                Next::Control(Control::ParamUpdate { name, value, at_ns }) => {
                    if let Some(value) = crate::updates::admit(&mut self.config, &name, value) {
                        return Ok(Some(Event::ParamUpdate { name, value, at_ns }));
                    }
                }
                Next::Input(input, message) => {
                    crate::cpu::mark(crate::cpu::Mark::FirstMessage);
                    return Ok(Some(Event::Input { input, message }));
                }
                Next::Closed(input) => return Ok(Some(Event::InputClosed { input })),
                Next::AllClosed => {
                    crate::cpu::mark(crate::cpu::Mark::EndOfStream);
                    return Ok(None);
                }
                Next::Timeout => {
                    if self.config.inputs.is_empty() && self.phase.get().stop_handed_out() {
                        crate::cpu::mark(crate::cpu::Mark::EndOfStream);
                        return Ok(None);
                    }
                    return Err(anyhow!(TIMEOUT_MARKER));
                }
            }
        }
    }

    /// Waits up to `timeout` for an event: `Ok(Some(event))`, `Ok(None)` when
    /// the timeout passed with nothing to do. Use [`Node::is_finished`] to tell the end.
    pub fn poll_event(&mut self, timeout: Duration) -> Result<Option<Event>> {
        match self.next_event_timeout(Some(timeout)) {
            Ok(Some(ev)) => Ok(Some(ev)),
            Ok(None) => {
                self.phase.step(Step::Drain);
                Ok(None)
            }
            Err(e) if e.to_string() == TIMEOUT_MARKER => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// True once every input has closed (seen by [`Node::poll_event`]), or
    /// the node finished.
    pub fn is_finished(&self) -> bool {
        matches!(self.phase.get(), Phase::Drained | Phase::Finished)
    }

    fn output_mut(&mut self, name: &str) -> Result<&mut Output> {
        let node = &self.config.node_id;
        self.outputs
            .iter_mut()
            .find(|o| o.config.name == name)
            .ok_or_else(|| {
                anyhow!(
                    "node `{node}` has no output `{name}` (is it listed in the graph's `outputs`?)"
                )
            })
    }

    /// Whether `output` exists in the graph (it may have no consumers).
    pub fn has_output(&self, name: &str) -> bool {
        self.outputs.iter().any(|o| o.config.name == name)
    }

    /// Counts a copy of a payload of `input` made other than by
    /// [`Payload::as_slice`](crate::Payload::as_slice), which counts its own.
    pub fn count_copy(&self, input: &str) {
        self.queues.count_copy(input);
    }

    /// The port type of an input (as wired in the graph).
    pub fn input_type(&self, input: &str) -> Option<PortType> {
        self.config
            .inputs
            .iter()
            .find(|i| i.name == input)
            .map(|i| i.ty)
    }
}

const TIMEOUT_MARKER: &str = "no event before the timeout";

impl Drop for Node {
    fn drop(&mut self) {
        if self.phase.get() != Phase::Finished {
            // A node that returns early (error), or is dropped without
            // `finish`, still ends its streams so downstream finalizes
            // instead of waiting for the grace timeout.
            if let Err(e) = self.finish_inner(finish::RELEASE_TIMEOUT) {
                tracing::warn!("closing node: {e:#}");
            }
        }
    }
}
