//! The app's side of an `app-video` / `app-audio` node: the node lives in
//! the app's process (the runtime hands its config to [`crate::host`]), and
//! a submit checks the frame, stamps it, and sends it into the graph.
//!
//! The node is connected on a thread of its own while the runtime arms the
//! graph; a submit waits for it to be live. One lock per input: a video
//! submit blocked by back-pressure does not hold up audio.

use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Duration;

use node_api::{clock, metrics, Node, NodeConfig, TimeBase};
use node_catalog::kinds::{app_audio, app_video};
use runtime::run::HostedEnd;

use crate::error::{RecorderError, Result};

/// The capture-clock instant that is time 0 of submitted timestamps: when
/// the graph started. Shared by a run's inputs, so audio and video agree.
pub(crate) type Origin = Arc<OnceLock<u64>>;

/// Longest audio message sent: longer submitted frames go in pieces (the
/// pool's buffers are sized for it).
pub(crate) const MAX_AUDIO_CHUNK_S: f64 = 0.1;

/// How long a finishing input waits for the graph downstream to drain.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(300);

/// How long a submit waits for its node to join the graph.
const CONNECT_WAIT: Duration = Duration::from_secs(30);

/// What an input takes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Takes {
    Video(app_video::Settings),
    Audio(app_audio::Settings),
}

impl Takes {
    /// The node's output and the largest payload it sends.
    fn output(&self) -> (&'static str, usize) {
        match self {
            Takes::Video(s) => ("video", video_layout(s).size),
            Takes::Audio(s) => {
                let samples = (s.sample_rate as f64 * MAX_AUDIO_CHUNK_S).ceil() as usize;
                (
                    "audio",
                    samples * s.channels as usize * bytes_per_sample(s.sample_format),
                )
            }
        }
    }
}

/// Where a hosted node is in its life.
pub(crate) enum Phase {
    Connecting,
    Live(Box<LiveNode>),
    /// Finished (end-of-stream sent) or the graph stopped before it started.
    Ended,
    Failed(String),
}

/// A node of ours in the graph, with what its stream has seen so far.
pub(crate) struct LiveNode {
    pub node: Node,
    pub ended: HostedEnd,
    /// The end of the last frame sent (video: its timestamp), ns from origin.
    pub last_ns: Option<u64>,
    /// Audio: the next sample's pts when the app gives no timestamp.
    pub next_pts: Option<i64>,
}

/// One hosted node, shared by the host (which connects it) and the app's
/// handles (which submit to it).
pub(crate) struct Slot {
    pub id: String,
    pub takes: Takes,
    pub origin: Origin,
    pub phase: Mutex<Phase>,
    changed: Condvar,
}

impl Slot {
    pub fn new(id: &str, takes: Takes, origin: Origin) -> Arc<Slot> {
        Arc::new(Slot {
            id: id.to_string(),
            takes,
            origin,
            phase: Mutex::new(Phase::Connecting),
            changed: Condvar::new(),
        })
    }

    /// Joins the graph with `config` (blocking: run on a thread of its own),
    /// arms, waits for the start, and goes live.
    pub fn connect(&self, config: NodeConfig, ended: HostedEnd, no_drop: bool) {
        let (output, max_payload) = self.takes.output();
        let joined = Node::from_config(config).and_then(|mut node| {
            node.reserve(output, max_payload)?;
            node.set_no_drop(no_drop);
            let started = node.wait_for_start()?;
            Ok((node, started))
        });
        let next = match joined {
            Ok((node, true)) => {
                self.origin.get_or_init(clock::now_ns);
                Phase::Live(Box::new(LiveNode {
                    node,
                    ended,
                    last_ns: None,
                    next_pts: None,
                }))
            }
            Ok((node, false)) => {
                finish(node, ended);
                Phase::Ended
            }
            Err(e) => {
                let cause = format!("node `{}`: {e:#}", self.id);
                ended.failed(cause.clone());
                Phase::Failed(cause)
            }
        };
        *self.phase.lock().unwrap() = next;
        self.changed.notify_all();
    }

    /// Runs `f` on the live node, once it is live.
    pub fn with_live<T>(&self, f: impl FnOnce(&mut LiveNode) -> Result<T>) -> Result<T> {
        let guard = self.phase.lock().unwrap();
        let (mut guard, _) = self
            .changed
            .wait_timeout_while(guard, CONNECT_WAIT, |p| matches!(p, Phase::Connecting))
            .unwrap();
        match &mut *guard {
            Phase::Live(live) if live.ended.abandoned() || live.node.stop_requested() => {
                Err(RecorderError::Failed(format!(
                    "the graph is stopping: `{}` takes no more frames",
                    self.id
                )))
            }
            Phase::Live(live) => f(live),
            Phase::Connecting => Err(RecorderError::Failed(format!(
                "node `{}` did not join the graph within {} s",
                self.id,
                CONNECT_WAIT.as_secs()
            ))),
            Phase::Ended => Err(RecorderError::NotRecording),
            Phase::Failed(cause) => Err(RecorderError::Failed(cause.clone())),
        }
    }

    /// Ends the stream: end-of-stream downstream, the node leaves the graph.
    pub fn finish(&self) {
        let guard = self.phase.lock().unwrap();
        let (mut guard, _) = self
            .changed
            .wait_timeout_while(guard, CONNECT_WAIT, |p| matches!(p, Phase::Connecting))
            .unwrap();
        if let Phase::Live(live) = std::mem::replace(&mut *guard, Phase::Ended) {
            let LiveNode { node, ended, .. } = *live;
            finish(node, ended);
        }
        self.changed.notify_all();
    }

    /// Counts a refused frame in the node's metrics, and passes the error on.
    pub fn reject(&self, e: RecorderError) -> RecorderError {
        if let Phase::Live(live) = &*self.phase.lock().unwrap() {
            live.node.metrics().add(metrics::REJECTED, 1.0);
        }
        e
    }

    /// ns since the origin, now.
    pub fn now_ns(&self) -> u64 {
        let origin = *self.origin.get_or_init(clock::now_ns);
        clock::now_ns().saturating_sub(origin)
    }

    /// A timestamp from origin as a capture time.
    pub fn capture_ns(&self, from_origin_ns: u64) -> u64 {
        self.origin.get_or_init(clock::now_ns) + from_origin_ns
    }
}

fn finish(node: Node, ended: HostedEnd) {
    // Nothing is sent after this: these are the final counters, handed to
    // the runtime with the end so the report has them whatever stats
    // message is still on its way.
    let last = node.stats();
    // The app lives on: its buffers stay valid while the graph drains the
    // backlog (a loaded machine may be many seconds behind), so it waits
    // for that instead of a spawned node's 10 s.
    match node.finish_draining(DRAIN_TIMEOUT) {
        Ok(()) => ended.finished(Some(last)),
        Err(e) => ended.failed(format!("{e:#}")),
    }
}

/// Submitted video frames travel packed, in their own format.
pub(crate) fn video_layout(s: &app_video::Settings) -> node_api::PlaneLayout {
    api_pixel_format(s.pixel_format).packed_layout(s.width, s.height)
}

pub(crate) fn api_pixel_format(f: app_video::FrameFormat) -> node_api::PixelFormat {
    use app_video::FrameFormat as F;
    match f {
        F::Rgb24 => node_api::PixelFormat::Rgb24,
        F::Rgba => node_api::PixelFormat::Rgba,
        F::Bgra => node_api::PixelFormat::Bgra,
        F::Nv12 => node_api::PixelFormat::Nv12,
        F::Yuv420p => node_api::PixelFormat::Yuv420p,
    }
}

pub(crate) fn api_sample_format(f: app_audio::SampleLayout) -> node_api::SampleFormat {
    use app_audio::SampleLayout as L;
    match f {
        L::F32 => node_api::SampleFormat::F32,
        L::S16 => node_api::SampleFormat::S16,
        L::F32p => node_api::SampleFormat::F32p,
        L::S16p => node_api::SampleFormat::S16p,
    }
}

fn bytes_per_sample(f: app_audio::SampleLayout) -> usize {
    api_sample_format(f).bytes_per_sample()
}

/// Video timestamps travel in microseconds.
pub(crate) const VIDEO_TIME_BASE: TimeBase = TimeBase {
    num: 1,
    den: 1_000_000,
};
