//! [`Node`]: one node process's connection to its graph.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use node_catalog::{Params, PortType};
use zenoh::bytes::ZBytes;
use zenoh::liveliness::LivelinessToken;
use zenoh::pubsub::{Publisher, Subscriber};
use zenoh::qos::{CongestionControl, Reliability};
use zenoh::sample::SampleKind;
use zenoh::{Session, Wait};

use crate::config::{NodeConfig, OutputConfig};
use crate::describe::NodeSchema;
use crate::keys;
use crate::message::{AudioFrame, EncodedPacket, Envelope, Header, Message, Payload, VideoFrame};
use crate::pool::{OutBuf, Pool, PoolHandle, SharedBuf};
use crate::queue::{Control, Next, Queues};
use crate::stats::{Metrics, NodeStats, OutputCounters};

/// How long a node waits for its consumers to subscribe before giving up.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// How often a finishing node repeats its end-of-stream to consumers that
/// have not acknowledged it (one may have restarted after it went out).
const EOS_RESEND_EVERY: Duration = Duration::from_millis(200);

/// How long a finishing node waits for consumers to release its buffers.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(10);

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
    lossless: Arc<AtomicBool>,
    started: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    stop_delivered: bool,
    armed: bool,
    finished: bool,
    _subscribers: Vec<Subscriber<()>>,
    _tokens: Vec<LivelinessToken>,
    stats_thread: Option<std::thread::JoinHandle<()>>,
    stats_stop: Arc<AtomicBool>,
}

impl Node {
    /// Sets up logging and connects using the config the runtime put in the environment.
    ///
    /// A node started this way publishes no schema: `--describe` fails, and
    /// the runtime passes its params as written. See [`Node::init_with_schema`].
    pub fn init() -> Result<Node> {
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

    /// Connects with an explicit config (tests, embedding).
    pub fn from_config(config: NodeConfig) -> Result<Node> {
        crate::clock::set_offset_ns(config.clock_offset_ns);
        // A write past RLIMIT_FSIZE (a zenoh segment in /dev/shm, an output
        // file) then fails with EFBIG and a message, instead of killing the node.
        // SAFETY: setting a signal's disposition to ignore.
        unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
        let t = &config.transport;
        // Opening a session with shared memory creates a segment, then lets
        // zenoh scan for orphaned ones: see shm_lock.
        let shm_lock = t.shared_memory.then(crate::shm_lock::acquire);
        let session = crate::session::open(&t.listen, &t.connect, t.shared_memory, false)
            .with_context(|| format!("node `{}`", config.node_id))?;
        if shm_lock.is_some() {
            crate::shm_lock::hold_at_exit();
        }
        drop(shm_lock);
        let run = config.run_id.clone();

        let queues = Arc::new(Queues::new(config.inputs.iter().map(|i| {
            let from = format!("{}/{}", i.source_node, i.source_output);
            (i.name.clone(), from, i.queue_size, i.policy)
        })));
        let mut subscribers = Vec::new();
        let lossless = Arc::new(AtomicBool::new(false));
        for (index, input) in config.inputs.iter().enumerate() {
            let q = queues.clone();
            let key = keys::data(&run, &input.source_node, &input.source_output);
            let flag = lossless.clone();
            let sub = session
                .declare_subscriber(key)
                .callback(move |sample| {
                    let (_eos, lossless) =
                        q.push_flagged(index, sample.attachment(), sample.payload().clone());
                    if lossless {
                        flag.store(true, Ordering::Relaxed);
                    }
                })
                .wait()
                .map_err(|e| anyhow!("subscribing input `{}`: {e}", input.name))?;
            subscribers.push(sub);
        }

        // Param updates from the runtime.
        {
            let q = queues.clone();
            let sub = session
                .declare_subscriber(keys::param_update(&run, &config.node_id))
                .callback(move |sample| {
                    let parsed: Option<serde_json::Value> =
                        serde_json::from_slice(&sample.payload().to_bytes()).ok();
                    if let Some(v) = parsed {
                        if let (Some(name), Some(value)) =
                            (v.get("name").and_then(|n| n.as_str()), v.get("value"))
                        {
                            q.push_control(Control::ParamUpdate {
                                name: name.to_string(),
                                value: value.clone(),
                            });
                        }
                    }
                })
                .wait()
                .map_err(|e| anyhow!("{e}"))?;
            subscribers.push(sub);
        }

        // Start and stop are liveliness tokens the runtime declares: state, not
        // events, so a node that starts late (or restarts) still sees them.
        let started = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        for (key, flag, control) in [
            (keys::started(&run), started.clone(), Control::Start),
            (keys::stopping(&run), stop.clone(), Control::Stop),
        ] {
            let q = queues.clone();
            let sub = session
                .liveliness()
                .declare_subscriber(key)
                .history(true)
                .callback(move |sample| {
                    if sample.kind() == SampleKind::Put && !flag.swap(true, Ordering::SeqCst) {
                        q.push_control(control.clone());
                    }
                })
                .wait()
                .map_err(|e| anyhow!("{e}"))?;
            subscribers.push(sub);
        }

        // Which nodes have subscribed their inputs (to know our consumers are listening).
        let subscribed_peers = Arc::new(Mutex::new(HashSet::new()));
        {
            let peers = subscribed_peers.clone();
            let prefix = keys::subscribed(&run, "");
            let sub = session
                .liveliness()
                .declare_subscriber(keys::subscribed(&run, "*"))
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
                .map_err(|e| anyhow!("{e}"))?;
            subscribers.push(sub);
        }

        // Processes of the graph that ended: buffers they held may be taken back.
        subscribers.push(
            session
                .declare_subscriber(keys::gone_all(&run))
                .callback(|_| crate::pool::holder_gone())
                .wait()
                .map_err(|e| anyhow!("{e}"))?,
        );

        // End-of-stream acknowledgements from our consumers.
        let eos_acks = Arc::new(Mutex::new(HashSet::new()));
        {
            let acks = eos_acks.clone();
            let prefix = keys::eos_ack_prefix(&run, &config.node_id);
            let sub = session
                .declare_subscriber(format!("{prefix}**"))
                .callback(move |sample| {
                    if let Some(rest) = sample.key_expr().as_str().strip_prefix(&prefix) {
                        acks.lock().unwrap().insert(rest.to_string());
                    }
                })
                .wait()
                .map_err(|e| anyhow!("{e}"))?;
            subscribers.push(sub);
        }

        let mut outputs = Vec::new();
        for out in &config.outputs {
            let publisher = session
                .declare_publisher(keys::data(&run, &config.node_id, &out.name))
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
            });
        }

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
            lossless,
            started,
            stop,
            stop_delivered: false,
            armed: false,
            finished: false,
            _subscribers: subscribers,
            _tokens: vec![token],
            stats_thread: None,
            stats_stop: Arc::new(AtomicBool::new(false)),
        };
        node.spawn_stats_thread();
        tracing::debug!(node = %node.config.node_id, "connected");
        Ok(node)
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

    /// Ready handshake: waits until every consumer of our outputs has
    /// subscribed, then tells the runtime this node is armed. Called by the
    /// first [`Node::next_event`] or [`Node::wait_for_start`].
    pub fn ready(&mut self) -> Result<()> {
        if self.armed {
            return Ok(());
        }
        let wanted: HashSet<String> = self
            .outputs
            .iter()
            .flat_map(|o| o.config.consumers.iter().cloned())
            .collect();
        let deadline = Instant::now() + READY_TIMEOUT;
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
            if Instant::now() > deadline || self.stop.load(Ordering::SeqCst) {
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
        self.armed = true;
        tracing::debug!(node = %self.config.node_id, "armed");
        Ok(())
    }

    /// For sources: arms the node and waits until the whole graph is ready.
    /// Returns false when the graph was stopped before it started.
    pub fn wait_for_start(&mut self) -> Result<bool> {
        self.ready()?;
        while !self.started.load(Ordering::SeqCst) {
            if self.stop.load(Ordering::SeqCst) {
                return Ok(false);
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(!self.stop.load(Ordering::SeqCst))
    }

    /// Marks this node's streams lossless: a source replaying faster than real
    /// time calls it so every queue downstream blocks instead of dropping.
    /// Nodes receiving lossless messages pass the flag on by themselves.
    pub fn set_lossless(&self, lossless: bool) {
        self.lossless.store(lossless, Ordering::Relaxed);
    }

    /// Saves `state` for the node's next incarnation: if this process dies
    /// and the runtime restarts it, the new one reads it back with
    /// [`Node::resume_state`] (e.g. sync keeps its timeline origin).
    pub fn save_resume_state(&self, state: &serde_json::Value) {
        let key = keys::resume_state(&self.config.run_id, &self.config.node_id);
        let _ = self.session.put(key, state.to_string()).wait();
    }

    /// What the previous incarnation saved with [`Node::save_resume_state`].
    pub fn resume_state(&self) -> Option<&serde_json::Value> {
        self.config.resume_state.as_ref()
    }

    /// Whether this node's streams are lossless: set by [`Node::set_lossless`]
    /// or by a lossless message received. A node that could pass over late
    /// input (to keep up live) must wait for it instead.
    pub fn is_lossless(&self) -> bool {
        self.lossless.load(Ordering::Relaxed)
    }

    /// Stops taking messages from `input` until [`Node::resume_input`]: its
    /// queue fills, and on a lossless stream its sender then waits. A node
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

    /// Whether the runtime asked the graph to stop (sources poll this).
    pub fn stop_requested(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// The next event. `Ok(None)` once every input has closed (for a node without
    /// inputs: once the graph is stopping).
    pub fn next_event(&mut self) -> Result<Option<Event>> {
        self.next_event_timeout(None)
    }

    /// The event loop behind [`Node::next_event`] and [`Node::poll_event`]; a
    /// timeout surfaces as an error carrying [`TIMEOUT_MARKER`].
    fn next_event_timeout(&mut self, timeout: Option<Duration>) -> Result<Option<Event>> {
        self.ready()?;
        loop {
            match self.queues.next(timeout) {
                Next::Control(Control::Start) => continue,
                Next::Control(Control::Stop) => {
                    if self.stop_delivered {
                        continue;
                    }
                    self.stop_delivered = true;
                    return Ok(Some(Event::Stop));
                }
                Next::Control(Control::ParamUpdate { name, value }) => {
                    if let Some(value) = crate::updates::admit(&mut self.config, &name, value) {
                        return Ok(Some(Event::ParamUpdate { name, value }));
                    }
                }
                Next::Input(input, message) => return Ok(Some(Event::Input { input, message })),
                Next::Closed(input) => return Ok(Some(Event::InputClosed { input })),
                Next::AllClosed => return Ok(None),
                Next::Timeout => {
                    if self.config.inputs.is_empty() && self.stop_delivered {
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
                self.finished = true;
                Ok(None)
            }
            Err(e) if e.to_string() == TIMEOUT_MARKER => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// True once every input has closed.
    pub fn is_finished(&self) -> bool {
        self.finished
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

    /// A buffer of `len` bytes to fill and send on `output`: from the output's
    /// shared-memory pool (grown if `len` exceeds what was reserved).
    pub fn alloc(&mut self, output: &str, len: usize) -> Result<OutBuf> {
        if !self.config.transport.shared_memory || len == 0 {
            return Ok(OutBuf::Heap(vec![0; len]));
        }
        let needs_pool = self
            .output_mut(output)?
            .pool
            .as_ref()
            .is_none_or(|p| p.max_payload < len);
        if needs_pool {
            self.reserve(output, len)?;
        }
        let out = self.output_mut(output)?;
        let (buf, waited) = out.pool.as_ref().unwrap().alloc(len)?;
        if waited {
            out.counters.pool_waits.fetch_add(1, Ordering::Relaxed);
        }
        Ok(OutBuf::Shm(buf))
    }

    /// Sends a message on `output`.
    pub fn send(&mut self, output: &str, header: Header, payload: OutBuf) -> Result<()> {
        let bytes = match payload {
            OutBuf::Shm(b) => {
                crate::retain::retain(zenoh_shm::ShmBufHardRef::from(&b));
                ZBytes::from(b)
            }
            OutBuf::Heap(v) => ZBytes::from(v),
        };
        self.put(output, header, bytes)
    }

    pub fn send_video(&mut self, output: &str, frame: VideoFrame, payload: OutBuf) -> Result<()> {
        self.send(output, Header::Video(frame), payload)
    }

    /// Sends a video frame in a buffer from [`Node::pool_handle`], which other
    /// holders (the decoder that filled it) may keep reading.
    pub fn send_video_shared(
        &mut self,
        output: &str,
        frame: VideoFrame,
        payload: SharedBuf,
    ) -> Result<()> {
        crate::retain::retain(zenoh_shm::ShmBufHardRef::from(&payload.0));
        self.put(output, Header::Video(frame), ZBytes::from(payload.0))
    }

    pub fn send_audio(&mut self, output: &str, frame: AudioFrame, payload: OutBuf) -> Result<()> {
        self.send(output, Header::Audio(frame), payload)
    }

    /// Sends an encoded packet. Packets are small (the encoder already holds
    /// them in its own memory), so they are copied into the message instead of
    /// a pool: a shared-memory buffer that is recycled while still queued in
    /// the link can be rejected by the receiver, and packets must never be lost.
    pub fn send_packet(&mut self, output: &str, packet: EncodedPacket, data: &[u8]) -> Result<()> {
        self.put(output, Header::Packet(packet), ZBytes::from(data.to_vec()))
    }

    /// Sends a payload received on an input, unchanged, with a (possibly new)
    /// header: the same shared-memory buffer, no copy. A raw frame that came
    /// from another machine (not in shared memory) is put in this output's
    /// pool once, so the consumers on this machine read it in place rather
    /// than each receiving a copy through its socket.
    ///
    /// A shared-memory buffer this process held while it was not scheduled
    /// for over ~100 ms (stopped, starved) has had its zenoh watchdog expire:
    /// its bytes are intact (we hold it), but a receiver would drop it as
    /// invalid. It is copied into this output's pool instead, counted in the
    /// output's `stale_copies`.
    pub fn forward(&mut self, output: &str, header: Header, payload: &Payload) -> Result<()> {
        let raw = matches!(header, Header::Video(_) | Header::Audio(_));
        let remote = raw && !payload.is_shm() && !payload.is_empty();
        let stale = payload.is_stale();
        if (remote || stale) && self.config.transport.shared_memory {
            let mut buf = self.alloc(output, payload.len())?;
            buf.copy_from_slice(&payload.as_slice());
            if stale {
                let out = self.output_mut(output)?;
                out.counters.stale_copies.fetch_add(1, Ordering::Relaxed);
            }
            return self.send(output, header, buf);
        }
        self.put(output, header, payload.zbytes().clone())
    }

    fn put(&mut self, output: &str, header: Header, bytes: ZBytes) -> Result<()> {
        let node = self.config.node_id.clone();
        let lossless = self.lossless.load(Ordering::Relaxed);
        let out = self.output_mut(output)?;
        if out.closed {
            bail!("node `{node}` output `{output}` was already closed");
        }
        let len = bytes.len() as u64;
        let is_eos = matches!(header, Header::EndOfStream);
        let envelope = Envelope {
            seq: out.seq,
            lossless,
            header,
        };
        out.seq += 1;
        out.publisher
            .put(bytes)
            .attachment(envelope.encode())
            .wait()
            .map_err(|e| anyhow!("node `{node}` sending on `{output}`: {e}"))?;
        if is_eos {
            out.closed = true;
            out.closed_at_ns = crate::clock::now_ns();
            let at = out.closed_at_ns.to_string();
            let key = keys::closed(&self.config.run_id, &node, output);
            let _ = self.session.put(key, at).wait();
        } else {
            out.counters.sent.fetch_add(1, Ordering::Relaxed);
            out.counters.bytes.fetch_add(len, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Ends one output: consumers see [`Event::InputClosed`].
    pub fn close_output(&mut self, output: &str) -> Result<()> {
        if self.output_mut(output)?.closed {
            return Ok(());
        }
        self.put(output, Header::EndOfStream, ZBytes::new())
    }

    /// Ends the node cleanly: end-of-stream on every output, final stats, session closed.
    pub fn finish(mut self) -> Result<()> {
        self.finish_inner()
    }

    fn finish_inner(&mut self) -> Result<()> {
        let names: Vec<String> = self
            .outputs
            .iter()
            .filter(|o| !o.closed)
            .map(|o| o.config.name.clone())
            .collect();
        for name in names {
            self.close_output(&name)?;
        }
        // A shared-memory buffer of ours can no longer be read once this process
        // exits, and consumers may still hold (or have forwarded) some: wait
        // until every consumer has finished, which it acknowledges after its own
        // consumers did (bounded: a consumer may have died).
        let deadline = Instant::now() + RELEASE_TIMEOUT;
        let pending = |acks: &HashSet<String>, outputs: &[Output]| -> Vec<String> {
            outputs
                .iter()
                .flat_map(|o| {
                    o.config
                        .consumers
                        .iter()
                        .map(move |c| format!("{}/{c}", o.config.name))
                })
                .filter(|k| !acks.contains(k))
                .collect()
        };
        let mut resend_at = Instant::now() + EOS_RESEND_EVERY;
        loop {
            let waiting = pending(&self.eos_acks.lock().unwrap(), &self.outputs);
            if waiting.is_empty() {
                break;
            }
            if Instant::now() >= resend_at {
                // A consumer restarted after our end-of-stream went out never
                // saw it: say it again until every consumer has acknowledged.
                resend_at = Instant::now() + EOS_RESEND_EVERY;
                for out in &self.outputs {
                    let prefix = format!("{}/", out.config.name);
                    if waiting.iter().any(|w| w.starts_with(&prefix)) {
                        let envelope = Envelope {
                            seq: out.seq,
                            lossless: false,
                            header: Header::EndOfStream,
                        };
                        let _ = out
                            .publisher
                            .put(ZBytes::new())
                            .attachment(envelope.encode())
                            .wait();
                    }
                }
            }
            if Instant::now() >= deadline {
                tracing::warn!(
                    "no end-of-stream acknowledgement from {}; ending anyway",
                    waiting.join(", ")
                );
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        for out in &self.outputs {
            if let Some(pool) = &out.pool {
                if !pool.wait_released(RELEASE_TIMEOUT) {
                    tracing::warn!(
                        "output `{}`: consumers still hold buffers after {:?}; ending anyway",
                        out.config.name,
                        RELEASE_TIMEOUT
                    );
                }
            }
        }
        // Only now may our upstream nodes exit: the buffers we forwarded from
        // their pools have been released by everyone downstream of us.
        for input in &self.config.inputs {
            let ack = keys::eos_ack(
                &self.config.run_id,
                &input.source_node,
                &input.source_output,
                &self.config.node_id,
            );
            let _ = self.session.put(ack, Vec::<u8>::new()).wait();
        }
        // Said again: a node that ends before its link to the runtime is up
        // (failing at start) would have said it to no one. The runtime
        // compares the time with its consumers' failures to tell the cause.
        for out in self.outputs.iter().filter(|o| o.closed) {
            let key = keys::closed(&self.config.run_id, &self.config.node_id, &out.config.name);
            let _ = self.session.put(key, out.closed_at_ns.to_string()).wait();
        }
        self.queues.shut_down();
        self.stats_stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.stats_thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
        self.publish_stats();
        self._tokens.clear();
        self.session.close().wait().map_err(|e| anyhow!("{e}"))?;
        self.finished = true;
        Ok(())
    }

    /// The node's counters right now.
    pub fn stats(&self) -> NodeStats {
        snapshot(
            &self.config.node_id,
            &self.queues,
            &self.outputs_counters(),
            &self.metrics,
        )
    }

    /// Counts an input payload that had to be copied to be read.
    pub fn count_copy(&self, input: &str) {
        self.queues.count_copy(input);
    }

    fn outputs_counters(&self) -> Vec<(String, Arc<OutputCounters>)> {
        self.outputs
            .iter()
            .map(|o| (o.config.name.clone(), o.counters.clone()))
            .collect()
    }

    fn publish_stats(&self) {
        let stats = self.stats();
        let _ = self
            .session
            .put(
                keys::stats(&self.config.run_id, &self.config.node_id),
                serde_json::to_vec(&stats).unwrap_or_default(),
            )
            .wait();
    }

    fn spawn_stats_thread(&mut self) {
        let session = self.session.clone();
        let key = keys::stats(&self.config.run_id, &self.config.node_id);
        let node = self.config.node_id.clone();
        let queues = self.queues.clone();
        let outputs = self.outputs_counters();
        let metrics = self.metrics.clone();
        let stop = self.stats_stop.clone();
        self.stats_thread = Some(
            std::thread::Builder::new()
                .name("stats".into())
                .spawn(move || {
                    let mut next = Instant::now();
                    while !stop.load(Ordering::SeqCst) {
                        next += Duration::from_millis(500);
                        // Any library thread made real-time since (see sched).
                        crate::sched::demote_realtime_threads();
                        let stats = snapshot(&node, &queues, &outputs, &metrics);
                        let _ = session
                            .put(&key, serde_json::to_vec(&stats).unwrap_or_default())
                            .wait();
                        // Parked, not polling: nine processes waking every few
                        // ms cost more CPU than their stats; finishing unparks.
                        while !stop.load(Ordering::SeqCst) {
                            let now = Instant::now();
                            if now >= next {
                                break;
                            }
                            std::thread::park_timeout(next - now);
                        }
                    }
                })
                .expect("spawn stats thread"),
        );
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

fn snapshot(
    node: &str,
    queues: &Queues,
    outputs: &[(String, Arc<OutputCounters>)],
    metrics: &Metrics,
) -> NodeStats {
    let (rss_bytes, cpu_seconds) = crate::stats::process_usage();
    NodeStats {
        node: node.to_string(),
        pid: std::process::id(),
        inputs: queues.snapshot().into_iter().collect(),
        outputs: outputs
            .iter()
            .map(|(n, c)| (n.clone(), c.snapshot()))
            .collect(),
        metrics: metrics.snapshot(),
        rss_bytes,
        cpu_seconds,
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if !self.finished {
            // A node that returns early (error) still ends its streams so
            // downstream finalizes instead of waiting for the grace timeout.
            if let Err(e) = self.finish_inner() {
                tracing::warn!("closing node: {e:#}");
            }
        }
    }
}
