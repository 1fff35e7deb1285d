//! `mediagraph-nodes replay-buffer`: keeps the last seconds of every
//! encoded track in memory (`buffer`) and, on the action `save`, writes
//! them to a new file on a thread of its own (`save`).
//!
//! A save made at an instant (capture clock) ends with the packets captured
//! at or before it. Media captured then is still on its way (sync's buffer,
//! the encoder's lookahead), so the save waits until every track has
//! brought a packet captured after the instant (or ended, or
//! [`SAVE_WAIT`] passed) and then takes its snapshot. One save at a time:
//! another asked meanwhile is refused and logged.

mod buffer;
mod save;

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use node_api::{metrics, EncodedPacket, Event, Header, Node};
use node_catalog::kinds::mux::check_output_path;
use node_catalog::kinds::replay_buffer::{next_free_save, Container, Settings};

use crate::tracks::{Packet, Tracks};
use buffer::Buffer;
use save::{Job, Saved};

/// How often the metrics are refreshed.
const PUBLISH_EVERY: Duration = Duration::from_millis(500);
/// The longest a save waits for the media captured up to its instant (a
/// paused recording sends nothing): then it writes what it has.
const SAVE_WAIT: Duration = Duration::from_secs(5);

/// Entry point, with the arguments after the kind.
pub fn replay_main(_args: &[String]) {
    node_api::run_main(run);
}

fn run() -> Result<()> {
    node_media::init()?;
    let mut node = Node::init()?;
    let settings = Settings::from_params(node.params())?;
    let container = settings.resolved_container()?;
    // Refused at the start, not when the user asks for the replay after
    // the moment happened.
    let (_, first) = next_free_save(&settings.path, 1);
    check_output_path(&first, false, None).map_err(|e| anyhow!("{}: {e:#}", e.param()))?;
    let inputs = node.input_names();
    if inputs.is_empty() {
        bail!("the replay buffer has no inputs: connect at least one encoded track");
    }
    tracing::info!(
        "replay buffer: {} s, at most {} MB, tracks {}; saves to {}",
        settings.duration,
        settings.max_size,
        inputs.join(", "),
        settings.path
    );
    let mut replay = Replay::new(settings, container, inputs);
    let result = buffer_loop(&mut node, &mut replay);
    // A save asked before the end is written with what there is.
    replay.finish();
    publish(&node, &replay);
    result?;
    node.finish()
}

/// The event loop: packets in, saves asked and finished, metrics out.
fn buffer_loop(node: &mut Node, replay: &mut Replay) -> Result<()> {
    let mut last_publish = Instant::now();
    loop {
        match node.poll_event(PUBLISH_EVERY)? {
            Some(Event::Input { input, message }) => match message.header {
                Header::Packet(header) => {
                    // Copied at once: the sender's buffer is never held.
                    let data: Arc<[u8]> = Arc::from(&*message.payload.as_slice());
                    replay.packet(&input, header, data)?;
                }
                Header::Video(_) | Header::Audio(_) => bail!(
                    "input `{input}` carries raw media: the replay buffer takes encoded packets (put an encoder before it)"
                ),
                Header::Stats(_) | Header::EndOfStream => {}
            },
            Some(Event::InputClosed { input }) => replay.close(&input)?,
            Some(Event::ParamUpdate { name, value, at_ns })
                if name == "save" && value == serde_json::Value::Bool(true) =>
            {
                replay.ask_save(at_ns);
            }
            Some(Event::ParamUpdate { .. } | Event::Stop) => {}
            None if node.is_finished() => return Ok(()),
            None => {}
        }
        replay.step(false);
        if last_publish.elapsed() >= PUBLISH_EVERY {
            last_publish = Instant::now();
            publish(node, replay);
        }
    }
}

/// A save asked for, waiting for the media captured up to its instant.
struct Pending {
    at_ns: u64,
    asked: Instant,
}

struct Replay {
    settings: Settings,
    container: Container,
    tracks: Tracks,
    buffer: Buffer,
    /// Per track: the latest capture time seen, and whether it ended.
    newest_ns: Vec<u64>,
    closed: Vec<bool>,
    pending: Option<Pending>,
    writing: Option<JoinHandle<Result<Saved>>>,
    /// The next save's number (the first free one from here is taken).
    next_number: u32,
    saves: u64,
    refused: u64,
    failed: u64,
}

impl Replay {
    fn new(settings: Settings, container: Container, inputs: Vec<String>) -> Replay {
        let n = inputs.len();
        Replay {
            buffer: Buffer::new(n, settings.duration, settings.max_bytes()),
            settings,
            container,
            tracks: Tracks::new(inputs),
            newest_ns: vec![0; n],
            closed: vec![false; n],
            pending: None,
            writing: None,
            next_number: 1,
            saves: 0,
            refused: 0,
            failed: 0,
        }
    }

    fn packet(&mut self, input: &str, header: EncodedPacket, data: Arc<[u8]>) -> Result<()> {
        let track = self.tracks.index(input)?;
        if self.tracks.note(track, &header) {
            // What is held cannot share a file with the new parameters.
            tracing::warn!(
                "`{input}`: its encoder restarted with new parameters: the buffer starts over"
            );
            self.buffer.clear();
        }
        self.newest_ns[track] = self.newest_ns[track].max(header.capture_ns);
        self.buffer.push(Packet {
            track,
            header,
            data,
        });
        Ok(())
    }

    fn close(&mut self, input: &str) -> Result<()> {
        let track = self.tracks.index(input)?;
        self.closed[track] = true;
        Ok(())
    }

    /// The action `save` made at `at_ns`.
    fn ask_save(&mut self, at_ns: u64) {
        let busy = match (&self.pending, &self.writing) {
            (Some(_), _) => Some("a save waits for its media"),
            (_, Some(_)) => Some("a save is being written"),
            _ => None,
        };
        if let Some(why) = busy {
            tracing::warn!("save at {at_ns} ns refused: {why} (one at a time)");
            self.refused += 1;
            return;
        }
        tracing::info!("save asked at {at_ns} ns");
        self.buffer.pin(at_ns);
        self.pending = Some(Pending {
            at_ns,
            asked: Instant::now(),
        });
    }

    /// Starts the pending save once its media is in (or at `ending`), and
    /// collects a finished one.
    fn step(&mut self, ending: bool) {
        if self.writing.as_ref().is_some_and(JoinHandle::is_finished) {
            self.collect();
        }
        let Some(pending) = &self.pending else { return };
        let arrived =
            (0..self.newest_ns.len()).all(|i| self.closed[i] || self.newest_ns[i] > pending.at_ns);
        if ending || arrived || pending.asked.elapsed() >= SAVE_WAIT {
            let at_ns = pending.at_ns;
            self.pending = None;
            self.start_save(at_ns);
            self.buffer.unpin();
        }
    }

    /// Snapshots the buffer up to `at_ns` and hands it to a writing thread.
    fn start_save(&mut self, at_ns: u64) {
        let snapshot = match (self.tracks.ready(), self.buffer.snapshot(at_ns)) {
            (true, Some(s)) => s,
            (false, _) => return self.refuse(at_ns, "a track has brought no packet yet"),
            (_, None) => return self.refuse(at_ns, "no video keyframe buffered yet"),
        };
        let (n, path) = next_free_save(&self.settings.path, self.next_number);
        self.next_number = n + 1;
        let job = Job {
            path: path.clone(),
            container: self.container,
            params: self.tracks.params().into_iter().cloned().collect(),
            snapshot,
        };
        match save::spawn(job) {
            Ok(handle) => self.writing = Some(handle),
            Err(e) => self.fail(&e.context(format!("save to {}", path.display()))),
        }
    }

    fn refuse(&mut self, at_ns: u64, why: &str) {
        tracing::warn!("save at {at_ns} ns refused: {why}");
        self.refused += 1;
    }

    fn fail(&mut self, e: &anyhow::Error) {
        tracing::error!("save failed: {e:#}");
        self.failed += 1;
    }

    /// Waits for the save being written and logs how it went.
    fn collect(&mut self) {
        let Some(handle) = self.writing.take() else {
            return;
        };
        let result = handle
            .join()
            .map_err(|_| anyhow!("the writing thread panicked"))
            .and_then(|r| r);
        match result {
            Ok(saved) => {
                self.saves += 1;
                tracing::info!(
                    "saved {}: {:.2} s, {} bytes",
                    saved.path.display(),
                    saved.seconds,
                    saved.bytes
                );
            }
            Err(e) => self.fail(&e),
        }
    }

    /// The end: a save asked for is written now, and waited for.
    fn finish(&mut self) {
        self.step(true);
        self.collect();
    }
}

fn publish(node: &Node, replay: &Replay) {
    let m = node.metrics();
    m.set(metrics::REPLAY_BUFFERED_S, replay.buffer.span_s());
    m.set(metrics::REPLAY_BUFFERED_BYTES, replay.buffer.bytes() as f64);
    m.set(metrics::REPLAY_SAVES, replay.saves as f64);
    m.set(metrics::REPLAY_SAVES_REFUSED, replay.refused as f64);
    m.set(metrics::REPLAY_SAVES_FAILED, replay.failed as f64);
    m.set(metrics::DROPPED, replay.buffer.dropped as f64);
}
