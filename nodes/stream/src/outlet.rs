//! An output's own bounded queue and the thread that sends from it.
//!
//! The node's event loop only copies each packet into the queue, so a slow,
//! stalled or unreachable output never holds the link to the encoders (and
//! through it the recording or the other outputs). The sending thread
//! connects, writes, and on a failure reconnects with a growing delay,
//! resuming on a keyframe. A queue that outgrows its bound is emptied and
//! counted: a live output drops rather than falls further behind.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Result;
use node_api::{EncodedPacket, MediaKind};
use node_media::packet as pk;

use crate::link::{Link, LinkStats};
use crate::sink::{Sink, Watchdog};
use crate::tracks::Packet;

/// Opens the output for tracks of these parameters, the media at stream
/// time `offset_s` at its 0: a connection (RTMP, SRT) or a playlist (HLS).
pub trait Opener: Send + 'static {
    fn open(
        &mut self,
        params: &[&EncodedPacket],
        offset_s: f64,
        watchdog: Arc<Watchdog>,
    ) -> Result<Sink>;
    /// The destination, secrets masked: for messages.
    fn shown(&self) -> &str;
}

/// Bytes an output may queue whatever its duration: a bound on memory.
pub const QUEUE_BYTES: usize = 256 << 20;

/// The queue's bound and the sending thread's timing.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Media seconds queued before the queue is dropped.
    pub queue_s: f64,
    /// Bytes queued before the queue is dropped.
    pub queue_bytes: usize,
    pub connect_timeout: Duration,
    /// A write that takes longer fails the connection.
    pub write_timeout: Duration,
    /// The first reconnection delay, doubled at each failure up to `retry_max`.
    pub retry_min: Duration,
    pub retry_max: Duration,
}

struct Queue {
    packets: VecDeque<Packet>,
    bytes: usize,
    /// No more packets will come: send what is left and end.
    closed: bool,
    /// The tracks' parameters, once every track has begun.
    params: Option<Vec<EncodedPacket>>,
    /// Packets were dropped: what is sent next must start on a keyframe.
    resync: bool,
    /// A track's codec parameters changed (its encoder restarted): the
    /// output starts again with a new header.
    reopen: bool,
    has_video: bool,
}

impl Queue {
    /// The media seconds between the oldest and newest packet queued.
    fn span_s(&self) -> f64 {
        match (self.packets.front(), self.packets.back()) {
            (Some(a), Some(b)) => pk::start_seconds(&b.header) - pk::start_seconds(&a.header),
            _ => 0.0,
        }
    }
}

struct Shared {
    queue: Mutex<Queue>,
    ready: Condvar,
    stats: Mutex<LinkStats>,
}

impl Shared {
    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
    fn stats(&self) -> MutexGuard<'_, LinkStats> {
        self.stats.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The node's end of an output: push packets, read its stats, close it.
pub struct Outlet {
    shared: Arc<Shared>,
    watchdog: Arc<Watchdog>,
    policy: Policy,
    thread: Option<JoinHandle<()>>,
    shown: String,
}

impl Outlet {
    /// Starts the sending thread; it connects once every track has begun.
    pub fn start(opener: impl Opener, policy: Policy) -> Outlet {
        let shown = opener.shown().to_string();
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                packets: VecDeque::new(),
                bytes: 0,
                closed: false,
                params: None,
                resync: true,
                reopen: false,
                has_video: false,
            }),
            ready: Condvar::new(),
            stats: Mutex::new(LinkStats::default()),
        });
        let watchdog = Arc::new(Watchdog::default());
        let thread = {
            let (shared, watchdog) = (shared.clone(), watchdog.clone());
            std::thread::Builder::new()
                .name("outlet".into())
                .spawn(move || send_loop(&shared, opener, policy, &watchdog))
                .expect("spawn the sending thread")
        };
        Outlet {
            shared,
            watchdog,
            policy,
            thread: Some(thread),
            shown,
        }
    }

    /// Every track has begun: these are their parameters.
    pub fn set_params(&self, params: Vec<EncodedPacket>, has_video: bool) {
        let mut q = self.shared.queue();
        q.reopen = q.params.is_some();
        q.params = Some(params);
        q.has_video = has_video;
        q.resync = true;
        self.shared.ready.notify_all();
    }

    /// Queues a packet; never waits. A queue past its bound is emptied first
    /// (counted as dropped).
    pub fn push(&self, packet: Packet) {
        let mut q = self.shared.queue();
        let over = q.bytes + packet.data.len() > self.policy.queue_bytes
            || q.span_s() > self.policy.queue_s;
        if over {
            let dropped: Vec<Packet> = q.packets.drain(..).collect();
            q.bytes = 0;
            q.resync = true;
            drop(q);
            let mut stats = self.shared.stats();
            stats.drop_packets(&dropped);
            tracing::warn!(
                "{}: the queue passed {:.1} s: dropped what it held ({} packets; {} in all, {:.1} s of media) and resuming at the next keyframe",
                self.shown,
                self.policy.queue_s,
                dropped.len(),
                stats.dropped,
                stats.lost_s()
            );
            q = self.shared.queue();
        }
        q.bytes += packet.data.len();
        q.packets.push_back(packet);
        self.shared.ready.notify_all();
    }

    /// Packets and media seconds waiting in the queue.
    pub fn depth(&self) -> (usize, f64) {
        let q = self.shared.queue();
        (q.packets.len(), q.span_s())
    }

    pub fn stats(&self) -> LinkStats {
        self.shared.stats().clone()
    }

    /// No more packets: sends what is queued (within `drain_limit`), ends
    /// the output and returns its final stats.
    pub fn close(mut self, drain_limit: Duration) -> LinkStats {
        self.shared.queue().closed = true;
        self.shared.ready.notify_all();
        let deadline = Instant::now() + drain_limit;
        if let Some(thread) = self.thread.take() {
            while !thread.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if !thread.is_finished() {
                tracing::warn!("{}: giving up on what is still queued", self.shown);
                self.watchdog.stop();
            }
            let _ = thread.join();
        }
        // What could not be sent by the end.
        let left: Vec<Packet> = self.shared.queue().packets.drain(..).collect();
        self.shared.stats().drop_packets(&left);
        self.stats()
    }
}

impl Drop for Outlet {
    fn drop(&mut self) {
        self.watchdog.stop();
        self.shared.queue().closed = true;
        self.shared.ready.notify_all();
    }
}

/// What the sending thread waits for.
enum Next {
    Packet(Packet),
    Closed,
}

/// Waits for the next packet; `Closed` once the queue is closed and empty,
/// or at once when the watchdog was stopped.
fn next(shared: &Shared, watchdog: &Watchdog) -> Next {
    let mut q = shared.queue();
    loop {
        if watchdog.stopped() {
            return Next::Closed;
        }
        if q.params.is_some() {
            if let Some(p) = q.packets.pop_front() {
                q.bytes -= p.data.len();
                return Next::Packet(p);
            }
        }
        if q.closed {
            return Next::Closed;
        }
        q = shared
            .ready
            .wait_timeout(q, Duration::from_millis(200))
            .unwrap_or_else(|p| p.into_inner())
            .0;
    }
}

/// Sleeps until `until` unless the queue closes first; false when closed.
fn pause(shared: &Shared, until: Instant) -> bool {
    let mut q = shared.queue();
    while !q.closed {
        let now = Instant::now();
        if now >= until {
            return true;
        }
        q = shared
            .ready
            .wait_timeout(q, until - now)
            .unwrap_or_else(|p| p.into_inner())
            .0;
    }
    false
}

/// The sending thread: the link's life from connection to end.
fn send_loop(shared: &Shared, mut opener: impl Opener, policy: Policy, watchdog: &Arc<Watchdog>) {
    let mut link = Link::Down {
        retry_at: Instant::now(),
        failures: 0,
    };
    loop {
        link = match link {
            Link::Down { retry_at, failures } => {
                if !pause(shared, retry_at) && shared.queue().packets.is_empty() {
                    break;
                }
                let Next::Packet(first) = next_start(shared, watchdog) else {
                    break;
                };
                connect(shared, &mut opener, &policy, watchdog, first, failures)
            }
            Link::Up(sink) if std::mem::take(&mut shared.queue().reopen) => {
                tracing::info!(
                    "{}: new codec parameters, starting the stream again",
                    opener.shown()
                );
                end(shared, sink, &policy, watchdog);
                Link::Down {
                    retry_at: Instant::now(),
                    failures: 0,
                }
            }
            Link::Up(sink) => match next(shared, watchdog) {
                Next::Closed => {
                    end(shared, sink, &policy, watchdog);
                    return;
                }
                Next::Packet(p) => send(shared, sink, &policy, watchdog, p),
            },
        };
    }
}

/// Ends the output cleanly (its trailer; HLS: the end of the playlist).
fn end(shared: &Shared, sink: Sink, policy: &Policy, watchdog: &Watchdog) {
    watchdog.arm(policy.write_timeout);
    if let Err(e) = sink.finish() {
        tracing::warn!("{e:#}");
    }
    shared.stats().disconnected(None);
}

/// Takes packets until one an output can start with (a video keyframe).
/// The others are dropped, but for audio of the keyframe's instant or later
/// (the video encoder's lookahead makes audio arrive first): put back to
/// be sent after it.
fn next_start(shared: &Shared, watchdog: &Watchdog) -> Next {
    let mut skipped: Vec<Packet> = Vec::new();
    loop {
        match next(shared, watchdog) {
            Next::Packet(p) if p.starts_output(shared.queue().has_video) => {
                let start = pk::start_seconds(&p.header) - 1e-6;
                let (keep, lost): (Vec<Packet>, Vec<Packet>) = skipped.into_iter().partition(|a| {
                    a.header.media == MediaKind::Audio && pk::start_seconds(&a.header) >= start
                });
                let mut stats = shared.stats();
                if stats.connections > 0 {
                    stats.drop_packets(&lost);
                } // else: before the stream's first keyframe (an audio encoder's priming), not a loss
                drop(stats);
                let mut q = shared.queue();
                q.resync = false;
                for a in keep.into_iter().rev() {
                    q.bytes += a.data.len();
                    q.packets.push_front(a);
                }
                return Next::Packet(p);
            }
            Next::Packet(p) => skipped.push(p),
            Next::Closed => {
                shared.stats().drop_packets(&skipped);
                return Next::Closed;
            }
        }
    }
}

/// Opens the output starting with `first`; the next state.
fn connect(
    shared: &Shared,
    opener: &mut impl Opener,
    policy: &Policy,
    watchdog: &Arc<Watchdog>,
    first: Packet,
    failures: u32,
) -> Link {
    let params = shared
        .queue()
        .params
        .clone()
        .expect("packets come after the params");
    let refs: Vec<&EncodedPacket> = params.iter().collect();
    watchdog.arm(policy.connect_timeout);
    let opened = opener.open(&refs, pk::start_seconds(&first.header), watchdog.clone());
    match opened {
        Ok(sink) => {
            shared.stats().connected(opener.shown());
            send(shared, sink, policy, watchdog, first)
        }
        Err(e) => {
            shared.stats().failed(&format!("{e:#}"), &first);
            let delay = policy
                .retry_min
                .saturating_mul(1 << failures.min(16))
                .min(policy.retry_max);
            Link::Down {
                retry_at: Instant::now() + delay,
                failures: failures + 1,
            }
        }
    }
}

/// Writes one packet; the next state.
fn send(shared: &Shared, mut sink: Sink, policy: &Policy, watchdog: &Watchdog, p: Packet) -> Link {
    if shared.queue().resync && !p.starts_output(shared.queue().has_video) {
        // Packets were dropped: the decoder needs a keyframe to go on.
        shared.stats().drop_packets(std::slice::from_ref(&p));
        return Link::Up(sink);
    }
    shared.queue().resync = false;
    watchdog.arm(policy.write_timeout);
    match sink.write(p.track, &p.header, &p.data) {
        Ok(_) => {
            shared.stats().sent(&p);
            Link::Up(sink)
        }
        Err(e) => {
            drop(sink);
            shared.stats().disconnected(Some((&format!("{e:#}"), &p)));
            shared.queue().resync = true;
            Link::Down {
                retry_at: Instant::now() + policy.retry_min,
                failures: 0,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use node_api::{CodecParams, TimeBase};

    fn packet(media: MediaKind, ms: i64, keyframe: bool) -> Packet {
        let (codec, duration) = match media {
            MediaKind::Video => ("h264", 33),
            MediaKind::Audio => ("aac", 21),
        };
        let header = EncodedPacket {
            media,
            codec: codec.into(),
            params: CodecParams {
                width: 16,
                height: 16,
                sample_rate: 48_000,
                channels: 2,
                ..CodecParams::default()
            },
            pts: ms,
            dts: ms,
            duration,
            time_base: TimeBase { num: 1, den: 1000 },
            keyframe,
            capture_ns: 0,
        };
        let track = usize::from(media == MediaKind::Audio);
        Packet {
            track,
            header,
            data: vec![0u8; 100].into(),
        }
    }

    fn policy(queue_s: f64) -> Policy {
        Policy {
            queue_s,
            queue_bytes: 1 << 20,
            connect_timeout: Duration::from_secs(1),
            write_timeout: Duration::from_secs(1),
            retry_min: Duration::from_millis(10),
            retry_max: Duration::from_millis(10),
        }
    }

    /// FFmpeg's `null` muxer: a real output that keeps nothing.
    struct Null;
    impl Opener for Null {
        fn open(&mut self, p: &[&EncodedPacket], at: f64, w: Arc<Watchdog>) -> Result<Sink> {
            let target = crate::sink::Target {
                url: "null".into(),
                shown: "null".into(),
                format: "null",
                ..Default::default()
            };
            Sink::open(&target, p, at, w)
        }
        fn shown(&self) -> &str {
            "null"
        }
    }

    /// Connected, after a drop: packets up to the next keyframe are left
    /// out (counted), the keyframe goes out and ends the resync.
    #[test]
    fn a_connected_output_resumes_on_a_keyframe_after_a_drop() {
        ffmpeg_next::init().unwrap();
        let outlet = Outlet::start(Null, policy(5.0));
        let params = [packet(MediaKind::Video, 0, true).header];
        let refs: Vec<&EncodedPacket> = params.iter().collect();
        let watchdog = Arc::new(Watchdog::default());
        watchdog.arm(Duration::from_secs(5));
        let mut sink = Null.open(&refs, 0.0, watchdog.clone()).unwrap();
        let shared = &outlet.shared;
        shared.queue().has_video = true;
        shared.queue().resync = true;
        for (ms, key) in [(33, false), (66, true), (99, false)] {
            let p = packet(MediaKind::Video, ms, key);
            let Link::Up(next) = send(shared, sink, &policy(5.0), &watchdog, p) else {
                panic!("the null output does not fail");
            };
            sink = next;
        }
        let stats = outlet.stats();
        assert_eq!((stats.dropped, stats.sent_packets), (1, 2));
        assert!(!shared.queue().resync);
    }

    #[test]
    fn a_queue_past_its_bound_is_dropped_and_counted() {
        // No params yet: nothing is taken from the queue.
        let outlet = Outlet::start(Null, policy(1.0));
        for i in 0..60 {
            outlet.push(packet(MediaKind::Video, i * 33, i % 30 == 0));
        }
        let stats = outlet.stats();
        // Past 1.0 s of span (32 packets: 0 to 1.023 s) the queue was emptied once.
        assert_eq!(stats.dropped, 32);
        assert!((stats.lost_video_s - 32.0 * 0.033).abs() < 1e-9);
        assert_eq!(outlet.depth().0, 28);
    }

    #[test]
    fn audio_before_the_first_keyframe_is_sent_after_it() {
        ffmpeg_next::init().unwrap();
        let outlet = Outlet::start(Null, policy(5.0));
        // Audio arrives first (the video encoder's lookahead), from 0 on.
        for i in 0..10 {
            outlet.push(packet(MediaKind::Audio, i * 21, false));
        }
        outlet.push(packet(MediaKind::Video, 0, true));
        outlet.push(packet(MediaKind::Video, 33, false));
        let params = vec![
            packet(MediaKind::Video, 0, true).header,
            packet(MediaKind::Audio, 0, false).header,
        ];
        outlet.set_params(params, true);
        let stats = outlet.close(Duration::from_secs(10));
        assert_eq!((stats.sent_packets, stats.dropped), (12, 0));
        assert_eq!(stats.connections, 1);
    }
}
