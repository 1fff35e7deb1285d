//! Cameras that come as encoded packets: a `video-encode` on each camera's
//! machine, so only packets cross the network, passed through here without
//! a re-encode.
//!
//! A packet track can only begin on a keyframe. Each encoder's own first
//! keyframe is its first frame, at an instant of its own; sync learns where
//! the tracks could start only once every encoder has sent something, and
//! by then each encoder is past that instant (its delay, the network). So
//! sync picks the start *ahead*: once every camera has sent a packet (every
//! encoder is open), it asks each encoder for a keyframe on the first frame
//! captured at or after T_k = now + `keyframe_lead_ms` (video-encode's
//! `keyframe` action, sent to the node feeding the input, at that capture
//! instant). Each camera's first frame at or after T_k is captured within
//! one frame period after T_k, so the keyframes the tracks start on are
//! within one frame of each other, whatever each encoder's delay, as long as
//! the request reaches every encoder before its camera captures T_k. Waiting
//! for each encoder's next periodic keyframe instead would start the tracks
//! up to a keyframe interval apart, and telling the encoders T0 in advance is
//! impossible: it depends on when the last camera begins.
//!
//! A request that came too late shows at once: that camera sends a frame
//! captured at or after T_k that is no keyframe. Sync then asks every
//! encoder again, further ahead (the lead doubles), up to [`MAX_ASKS`]
//! times; so too when the keyframes are a frame period or more apart (a
//! lost frame). After that it takes each camera's first keyframe at or
//! after the last T_k as it comes, and says how far apart they are.
//!
//! Once started, a track's packets go out unchanged but for pts and dts,
//! shifted so that its start keyframe lands on its slot of the common
//! timeline (slot 0). Packets cannot be dropped or repeated to follow a
//! camera whose clock drifts from the timeline: the drift is reported
//! (`video_drift_ms_<input>`), not corrected.

use node_api::{metrics, EncodedPacket};

use crate::lanes::smooth;
use crate::pause::Tick;

/// Times sync asks the encoders for the common keyframe before it takes
/// the keyframes as they come.
pub const MAX_ASKS: u32 = 4;

/// One camera whose input carries packets, and the output of the same name.
pub struct PacketLane<P> {
    pub name: String,
    pub has_output: bool,
    pub closed: bool,
    /// The camera has sent a packet: its encoder is open.
    seen: bool,
    /// Held from the keyframe the track may start on, until every track can.
    held: Vec<(EncodedPacket, P)>,
    /// A frame captured at or after the asked instant came without a keyframe.
    missed: bool,
    /// Subtracted from pts and dts once the track has started.
    shift: Option<i64>,
    /// The start keyframe's pts until a later frame comes: an open GOP's
    /// leading frames before it (which refer to frames before the start)
    /// are dropped. Later keyframes' leading frames are kept.
    key_pts: Option<i64>,
    /// The latest pts sent.
    last_pts: Option<i64>,
    pub sent: u64,
    /// Capture time minus place on the common timeline, ns, smoothed.
    pub offset: Option<f64>,
    /// The same for the keyframe the track started (or was put back) on:
    /// how far off its slot the track began (under half a frame).
    start_offset_ns: i64,
    /// Capture time of the start keyframe, from T0, ns.
    pub first_from_t0: Option<i64>,
    pub metric_first: String,
    pub metric_drift: String,
}

impl<P> PacketLane<P> {
    pub fn new(name: &str, has_output: bool) -> PacketLane<P> {
        PacketLane {
            name: name.to_string(),
            has_output,
            closed: false,
            seen: false,
            held: Vec::new(),
            missed: false,
            shift: None,
            key_pts: None,
            last_pts: None,
            sent: 0,
            offset: None,
            start_offset_ns: 0,
            first_from_t0: None,
            metric_first: metrics::per_input(metrics::FIRST_OFFSET_MS, name),
            metric_drift: metrics::per_input(metrics::VIDEO_DRIFT_MS, name),
        }
    }

    /// How far the camera's clock drifted from the timeline since the
    /// track began, ns: its offset less the one it started with.
    pub fn drift_ns(&self) -> Option<f64> {
        Some(self.offset? - self.start_offset_ns as f64)
    }

    /// The capture time of the keyframe this track would start on.
    fn candidate(&self) -> Option<u64> {
        self.held.first().map(|(p, _)| p.capture_ns)
    }
}

/// What the caller does next.
#[derive(Debug, PartialEq, Eq)]
pub enum Todo {
    Nothing,
    /// Ask every lane's encoder for a keyframe at this capture instant.
    Ask(u64),
    /// Every track can start: fix T0 ([`Packets::start`]).
    Start,
}

/// Every packet camera of a sync, and the start they are brought to.
pub struct Packets<P> {
    pub lanes: Vec<PacketLane<P>>,
    lead_ns: u64,
    /// The instant the encoders were last asked to make a keyframe at.
    asked: Option<u64>,
    pub asks: u32,
    /// Packets before each track's start keyframe.
    pub before_start: u64,
    /// Packets of an open GOP that show before the start keyframe.
    pub reordered: u64,
    /// Tracks put back on the timeline by capture time at a keyframe whose
    /// timestamps jumped (a restarted encoder or camera counts anew).
    pub rebased: u64,
    /// The latest capture time of any packet: the lead counts from it
    /// when media runs ahead of the clock (a replay).
    latest_ns: u64,
    /// The common start is fixed (by this incarnation or the previous one).
    started: bool,
    /// Every track can start: the keyframes are in (or asking is over).
    pub ready: bool,
}

impl<P> Packets<P> {
    pub fn new(lanes: Vec<PacketLane<P>>, lead_ns: u64) -> Packets<P> {
        Packets {
            lanes,
            lead_ns,
            asked: None,
            asks: 0,
            before_start: 0,
            reordered: 0,
            rebased: 0,
            latest_ns: 0,
            started: false,
            ready: false,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.lanes.is_empty()
    }

    /// The instant the encoders were last asked to make a keyframe at.
    pub fn asked(&self) -> Option<u64> {
        self.asked
    }

    pub fn index(&self, input: &str) -> Option<usize> {
        self.lanes.iter().position(|l| l.name == input)
    }

    /// A restarted sync continues the timeline of the previous one: each
    /// track starts again, on its own, at its first keyframe at or after
    /// the instant asked for, in the slot its capture time gives it.
    pub fn resume(&mut self) {
        self.started = true;
    }

    /// Takes a packet of lane `i` while its track has not started; returns
    /// what to do next. `now_ns` on the capture clock.
    pub fn hold(&mut self, i: usize, packet: EncodedPacket, payload: P, now_ns: u64) -> Todo {
        self.latest_ns = self.latest_ns.max(packet.capture_ns);
        let lane = &mut self.lanes[i];
        lane.seen = true;
        match self.asked {
            Some(at) if lane.held.is_empty() && packet.capture_ns >= at => {
                if packet.keyframe {
                    lane.held.push((packet, payload));
                } else {
                    lane.missed = true;
                    self.before_start += 1;
                }
            }
            Some(_) if !lane.held.is_empty() => lane.held.push((packet, payload)),
            _ => self.before_start += 1,
        }
        self.next(now_ns)
    }

    /// Lane `i`'s input ended.
    pub fn close(&mut self, i: usize, now_ns: u64) -> Todo {
        self.lanes[i].closed = true;
        self.next(now_ns)
    }

    fn next(&mut self, now_ns: u64) -> Todo {
        let open = || self.lanes.iter().filter(|l| !l.closed);
        let Some(at) = self.asked else {
            // Every encoder open (or ended): ask them all for the start.
            if open().all(|l| l.seen) && open().count() > 0 {
                return self.ask(now_ns);
            }
            return Todo::Nothing;
        };
        if self.started {
            return Todo::Nothing;
        }
        let again = self.asks < MAX_ASKS;
        if again && open().any(|l| l.missed) {
            tracing::info!("a keyframe came late for the common start: asking the encoders again, further ahead");
            return self.ask(now_ns);
        }
        if !open().all(|l| l.candidate().is_some()) {
            return Todo::Nothing;
        }
        let keys: Vec<u64> = self.lanes.iter().filter_map(|l| l.candidate()).collect();
        let (Some(&min), Some(&max)) = (keys.iter().min(), keys.iter().max()) else {
            return Todo::Nothing;
        };
        if again && max - min >= self.period_ns() {
            tracing::info!(
                "the start keyframes are {:.1} ms apart (asked at {at}): asking again",
                (max - min) as f64 / 1e6
            );
            return self.ask(now_ns);
        }
        self.ready = true;
        Todo::Start
    }

    /// Asks for a keyframe ahead (further each time); what was held goes.
    fn ask(&mut self, now_ns: u64) -> Todo {
        self.ready = false;
        for lane in &mut self.lanes {
            self.before_start += lane.held.len() as u64;
            lane.held.clear();
            lane.missed = false;
        }
        let lead = self.lead_ns << self.asks.min(8);
        let at = now_ns.max(self.latest_ns) + lead;
        self.asks += 1;
        self.asked = Some(at);
        Todo::Ask(at)
    }

    /// The frame period of the first track's packets (1 s when unknown).
    fn period_ns(&self) -> u64 {
        self.lanes
            .iter()
            .find_map(|l| l.held.first())
            .map_or(1_000_000_000, |(p, _)| {
                Tick::frame(p.time_base, p.duration).ns_of(1).max(1) as u64
            })
    }

    /// Fixes T0 from the start keyframes: the first camera's, moved by less
    /// than half a frame where that puts every keyframe in slot 0, so every
    /// track starts at pts 0. (Raw frames get there by moving T0 along the
    /// first camera's frame grid; a packet track cannot start anywhere but
    /// its keyframe, so T0 moves instead, and the first camera's picture may
    /// be up to half a frame off its slot: `first_offset_ms`,
    /// `av_offset_ms`.) Each track's shift follows. Returns T0 and the first
    /// track's frame period.
    pub fn start(&mut self) -> Option<(u64, Tick)> {
        let period = self.period_ns() as i64;
        let keys: Vec<u64> = self.lanes.iter().filter_map(|l| l.candidate()).collect();
        let first = *keys.first()?;
        let (min, max) = (*keys.iter().min()? as i64, *keys.iter().max()? as i64);
        // Every key within half a frame of T0: T0 in (max - period/2, min + period/2).
        let (low, high) = (max - (period - 1) / 2, min + (period - 1) / 2);
        let t0 = if low <= high {
            (first as i64).clamp(low, high) as u64
        } else {
            first
        };
        self.started = true;
        let tick = self
            .lanes
            .iter()
            .find_map(|l| l.held.first())
            .map(|(p, _)| Tick::frame(p.time_base, p.duration))?;
        for lane in &mut self.lanes {
            if let Some((key, _)) = lane.held.first() {
                let key = key.clone();
                begin(lane, &key, t0);
            }
        }
        Some((t0, tick))
    }

    /// What lane `i` held, to send now that it has started.
    pub fn take_held(&mut self, i: usize) -> Vec<(EncodedPacket, P)> {
        std::mem::take(&mut self.lanes[i].held)
    }

    /// A packet of lane `i` on the common timeline starting at `t0`: its
    /// header with pts and dts moved there, or `None` when it is before the
    /// track's start. A track not started yet (a restarted sync) starts on
    /// its first keyframe at or after the instant asked for.
    pub fn place(&mut self, i: usize, packet: EncodedPacket, t0: u64, now_ns: u64) -> Placed {
        self.latest_ns = self.latest_ns.max(packet.capture_ns);
        let lane = &mut self.lanes[i];
        lane.seen = true;
        if lane.shift.is_none() {
            let ready = self.asked.is_some_and(|at| packet.capture_ns >= at);
            if !(ready && packet.keyframe) {
                self.before_start += 1;
                if self.asked.is_none() {
                    return Placed::Ask(self.ask(now_ns));
                }
                return Placed::Before;
            }
            begin(lane, &packet, t0);
        } else if packet.keyframe && jumped(lane, &packet) {
            rebase(lane, &packet, t0);
            self.rebased += 1;
        }
        match lane.key_pts {
            Some(key) if packet.pts < key => {
                self.reordered += 1;
                return Placed::Before;
            }
            Some(key) if packet.pts > key => lane.key_pts = None,
            _ => {}
        }
        let shift = lane.shift.expect("begun above");
        let header = EncodedPacket {
            pts: packet.pts - shift,
            dts: packet.dts - shift,
            ..packet
        };
        let tick = Tick::frame(header.time_base, 1);
        let place_ns = t0 as i64 + tick.ns_of(header.pts as i128) as i64;
        smooth(&mut lane.offset, header.capture_ns as i64 - place_ns);
        lane.last_pts = Some(lane.last_pts.map_or(header.pts, |l| l.max(header.pts)));
        lane.sent += 1;
        Placed::Send(header)
    }
}

/// What [`Packets::place`] made of a packet.
#[derive(Debug)]
pub enum Placed {
    Send(EncodedPacket),
    Before,
    /// Before the start, and the encoders are to be asked for it first.
    Ask(Todo),
}

/// Starts `lane` on keyframe `key`: the slot its capture time gives it on
/// the timeline starting at `t0` (0 at the common start).
fn begin<P>(lane: &mut PacketLane<P>, key: &EncodedPacket, t0: u64) {
    let from_t0 = key.capture_ns as i64 - t0 as i64;
    let period = Tick::frame(key.time_base, key.duration).ns_of(1).max(1) as i64;
    let slot = div_round(from_t0, period).max(0);
    lane.shift = Some(key.pts - slot * key.duration.max(1));
    lane.key_pts = Some(key.pts);
    lane.first_from_t0 = Some(from_t0);
    lane.start_offset_ns = from_t0 - slot * period;
    tracing::info!(
        "{}: starts on the keyframe captured {:.1} ms from T0 (slot {slot})",
        lane.name,
        from_t0 as f64 / 1e6
    );
}

/// A second of frames: a keyframe whose pts jumps further ahead of the
/// track, or goes back at all, starts a stream of its own.
const JUMP_S: i64 = 1;

/// Whether keyframe `key` does not follow lane's track: its pts, shifted
/// as the track's, go back or jump ahead by a second or more (a restarted
/// encoder, or camera, numbers its frames anew; a few frames skipped under
/// load do not count).
fn jumped<P>(lane: &PacketLane<P>, key: &EncodedPacket) -> bool {
    let (Some(shift), Some(last)) = (lane.shift, lane.last_pts) else {
        return false;
    };
    let pts = key.pts - shift;
    let second = (key.time_base.den as i64 / key.time_base.num.max(1) as i64).max(1) * JUMP_S;
    pts <= last || pts - last > second
}

/// Puts lane's track back on the timeline at keyframe `key`: the slot its
/// capture time gives it, after what was sent (packets cannot overlap).
/// Counted as `rebased`; the drift so far starts over.
fn rebase<P>(lane: &mut PacketLane<P>, key: &EncodedPacket, t0: u64) {
    let period = Tick::frame(key.time_base, key.duration).ns_of(1).max(1) as i64;
    let duration = key.duration.max(1);
    let by_capture = div_round(key.capture_ns as i64 - t0 as i64, period) * duration;
    let after = lane.last_pts.map_or(0, |l| l + duration);
    let pts = by_capture.max(after);
    tracing::warn!(
        "{}: keyframe pts {} does not follow the track (last sent pts {:?}): a restarted encoder? continuing at pts {pts}, from its capture time",
        lane.name,
        key.pts - lane.shift.unwrap_or(0),
        lane.last_pts
    );
    lane.shift = Some(key.pts - pts);
    lane.key_pts = Some(key.pts);
    lane.offset = None;
    lane.start_offset_ns = key.capture_ns as i64 - t0 as i64 - pts / duration * period;
}

/// `n / d` rounded to the nearest integer (`d > 0`).
fn div_round(n: i64, d: i64) -> i64 {
    if n >= 0 {
        (n + d / 2) / d
    } else {
        -((-n + d / 2) / d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use node_api::{CodecParams, MediaKind, TimeBase};

    const PERIOD: u64 = 1_000_000_000 / 30;
    const LEAD: u64 = 300_000_000;

    /// Frame `n` of a camera whose frame 0 was captured at `start` (its
    /// encoder's pts count from 0).
    fn packet(n: i64, start: u64, keyframe: bool) -> EncodedPacket {
        EncodedPacket {
            media: MediaKind::Video,
            codec: "h264".into(),
            params: CodecParams::default(),
            pts: n,
            dts: n,
            duration: 1,
            time_base: TimeBase::new(1, 30),
            keyframe,
            capture_ns: start + n as u64 * PERIOD,
        }
    }

    fn two() -> Packets<()> {
        Packets::new(
            vec![
                PacketLane::new("video", true),
                PacketLane::new("video2", true),
            ],
            LEAD,
        )
    }

    /// Feeds both cameras from `from` up to the frames captured before `until`;
    /// each encoder makes a keyframe on its first frame at or after `key_at`
    /// (when given). Returns the last todo that was not Nothing.
    fn feed(
        p: &mut Packets<()>,
        starts: [u64; 2],
        until: u64,
        key_at: Option<u64>,
        done: &mut [i64; 2],
    ) -> Todo {
        let mut last = Todo::Nothing;
        loop {
            // The camera whose next frame is captured first.
            let next = |i: usize| starts[i] + (done[i] + 1) as u64 * PERIOD;
            let i = if next(0) <= next(1) { 0 } else { 1 };
            let n = done[i] + 1;
            let capture = starts[i] + n as u64 * PERIOD;
            if capture >= until {
                return last;
            }
            let asked_key = key_at.is_some_and(|k| {
                capture >= k && starts[i] + (n as u64).saturating_sub(1) * PERIOD < k
            });
            let key = n == 0 || asked_key;
            done[i] = n;
            let todo = p.hold(i, packet(n, starts[i], key), (), capture);
            if todo != Todo::Nothing {
                last = todo;
            }
        }
    }

    #[test]
    fn tracks_start_within_a_frame_on_the_asked_keyframes() {
        let mut p = two();
        // Camera b starts 2.5 frames after camera a.
        let starts = [1_000_000_000, 1_000_000_000 + PERIOD * 5 / 2];
        let mut done = [-1, -1];
        let Todo::Ask(at) = feed(&mut p, starts, starts[1] + 1, None, &mut done) else {
            panic!("no request once both encoders sent a packet");
        };
        assert!(at >= starts[1] + LEAD, "asked at {at}");
        // Both encoders honour it; everything before was not kept.
        let todo = feed(&mut p, starts, at + 2 * PERIOD, Some(at), &mut done);
        assert_eq!(todo, Todo::Start);
        let (t0, _) = p.start().unwrap();
        let mut firsts = Vec::new();
        for i in 0..2 {
            let held = p.take_held(i);
            assert!(held[0].0.keyframe, "track {i} starts on a keyframe");
            firsts.push(held[0].0.capture_ns);
            let mut pts = Vec::new();
            for (pk, _) in held {
                match p.place(i, pk, t0, at) {
                    Placed::Send(h) => pts.push(h.pts),
                    other => panic!("{other:?}"),
                }
            }
            assert_eq!(pts[0], 0, "track {i} starts at pts 0");
            assert!(pts.windows(2).all(|w| w[1] == w[0] + 1));
        }
        assert!(firsts[0].abs_diff(firsts[1]) < PERIOD, "{firsts:?}");
        assert!(firsts.iter().all(|&f| f.abs_diff(t0) < PERIOD / 2 + 1));
        assert_eq!(p.asks, 1);
        assert!(p.before_start > 0);
        // Later packets follow their keyframe's shift.
        let next = packet(done[0] + 1, starts[0], false);
        let Placed::Send(h) = p.place(0, next, t0, at) else {
            panic!()
        };
        assert_eq!(h.pts, p.lanes[0].sent as i64 - 1);
    }

    #[test]
    fn a_late_request_is_made_again_further_ahead() {
        let mut p = two();
        let starts = [0, PERIOD / 3];
        let mut done = [-1, -1];
        let Todo::Ask(at) = feed(&mut p, starts, starts[1] + 1, None, &mut done) else {
            panic!()
        };
        // Camera b's encoder did not get it in time: no keyframe at `at`.
        let mut todo = Todo::Nothing;
        while todo == Todo::Nothing {
            let i = if done[0] <= done[1] { 0 } else { 1 };
            done[i] += 1;
            let n = done[i];
            let capture = starts[i] + n as u64 * PERIOD;
            let key = i == 0 && capture >= at && capture < at + PERIOD;
            todo = p.hold(i, packet(n, starts[i], key), (), capture);
        }
        let Todo::Ask(again) = todo else {
            panic!("{todo:?}")
        };
        assert!(
            again >= at + 2 * LEAD - 2 * PERIOD,
            "the lead doubles: {again}"
        );
        assert_eq!(p.asks, 2);
    }

    #[test]
    fn gives_up_asking_and_takes_the_keyframes_as_they_come() {
        let mut p = two();
        let starts = [0, PERIOD / 2];
        let mut done = [-1, -1];
        let mut todo = feed(&mut p, starts, starts[1] + 1, None, &mut done);
        // Camera b's encoder ignores every request; its periodic keyframe
        // comes every 10 frames, out of step with the requests.
        while todo != Todo::Start {
            let i = if done[0] <= done[1] { 0 } else { 1 };
            done[i] += 1;
            let n = done[i];
            let capture = starts[i] + n as u64 * PERIOD;
            let key = match (i, &todo) {
                (0, _) => p
                    .asked
                    .is_some_and(|at| capture >= at && capture < at + PERIOD),
                _ => n % 10 == 5,
            };
            let t = p.hold(i, packet(n, starts[i], key), (), capture);
            if t != Todo::Nothing {
                todo = t;
            }
            assert!(n < 10_000, "never started");
        }
        assert_eq!(p.asks, MAX_ASKS);
        let (t0, _) = p.start().unwrap();
        // The late track starts in the slot of its keyframe, not at 0.
        let held = p.take_held(1);
        let key = held[0].0.clone();
        let Placed::Send(h) = p.place(1, key.clone(), t0, 0) else {
            panic!()
        };
        assert_eq!(
            h.pts,
            div_round(key.capture_ns as i64 - t0 as i64, PERIOD as i64)
        );
    }

    #[test]
    fn a_restarted_sync_starts_each_track_in_its_slot() {
        let mut p = two();
        p.resume();
        let t0 = 1_000_000_000;
        let start = t0 + 100 * PERIOD;
        let Placed::Ask(Todo::Ask(at)) = p.place(0, packet(0, start, true), t0, start) else {
            panic!()
        };
        let n = ((at - start) / PERIOD + 1) as i64;
        assert!(matches!(
            p.place(0, packet(n - 1, start, false), t0, at),
            Placed::Before
        ));
        let Placed::Send(h) = p.place(0, packet(n, start, true), t0, at) else {
            panic!()
        };
        assert_eq!(h.pts, 100 + n);
        assert!(h.capture_ns >= at);
    }

    #[test]
    fn a_restarted_encoder_is_put_back_by_capture_time() {
        let mut p = two();
        p.resume();
        p.asked = Some(0);
        let t0 = 0;
        for n in 0..60 {
            assert!(matches!(
                p.place(0, packet(n, t0, n == 0), t0, 0),
                Placed::Send(_)
            ));
        }
        // The encoder restarts: its pts count from 0 again, 2 s in.
        let restart = t0 + 62 * PERIOD;
        let Placed::Send(h) = p.place(0, packet(0, restart, true), t0, 0) else {
            panic!()
        };
        assert_eq!(h.pts, 62, "in the slot of its capture time");
        let Placed::Send(h) = p.place(0, packet(1, restart, false), t0, 0) else {
            panic!()
        };
        assert_eq!(h.pts, 63);
        assert_eq!(p.rebased, 1);
        // A periodic keyframe that follows the track is no jump.
        let Placed::Send(h) = p.place(0, packet(2, restart, true), t0, 0) else {
            panic!()
        };
        assert_eq!((h.pts, p.rebased), (64, 1));
    }

    #[test]
    fn open_gop_leftovers_before_the_keyframe_are_dropped() {
        let mut p = two();
        p.resume();
        p.asked = Some(0);
        assert!(matches!(
            p.place(0, packet(5, 0, true), 0, 0),
            Placed::Send(_)
        ));
        assert!(matches!(
            p.place(0, packet(4, 0, false), 0, 0),
            Placed::Before
        ));
        assert_eq!(p.reordered, 1);
        // Past the start, a later keyframe's leading frames are kept.
        for (n, key) in [(8, false), (12, true), (10, false), (11, false)] {
            assert!(
                matches!(p.place(0, packet(n, 0, key), 0, 0), Placed::Send(_)),
                "{n}"
            );
        }
        assert_eq!((p.reordered, p.rebased), (1, 0));
    }
}
