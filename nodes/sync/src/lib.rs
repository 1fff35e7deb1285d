//! `mediagraph-nodes sync`: puts raw video (one or more cameras) and raw audio on one
//! timeline from their capture times. Every output starts at pts 0 at the same
//! instant T0: the latest of the streams' first capture times (moved onto the
//! first camera's frame grid, see [`timeline::on_video_grid`]); video pts count
//! frame periods from T0, audio pts count samples from T0. Until every stream
//! has begun, the earlier ones are held (at most `buffer_ms`). Each camera
//! input (`video`, `video2`, ...) comes out on the output of the same name.
//! Video frames are forwarded zero-copy with a new header; audio frames too,
//! unless trimmed or preceded by a gap. The live param `paused` cuts what is
//! captured while paused out of every output alike (see [`pause`]).
//! Cameras may come as encoded packets instead (an encoder on each camera's
//! machine): their tracks start together on keyframes sync asks the
//! encoders for, and their packets pass through (see [`packets`]).

mod audio_buf;
mod audio_out;
mod drift;
mod hold;
mod lanes;
mod pacing;
mod packets;
mod passthrough;
mod pause;
mod report;
mod timeline;

use anyhow::{anyhow, Context, Result};
use node_api::clock::now_ns;
use node_api::{AudioFrame, Event, Header, Node, Payload, PortType, VideoFrame};

use audio_out::Source;
use drift::DriftCorrector;
use lanes::{inputs_of, smooth, AudioLane, VideoLane};
use pacing::Pacer;
use packets::{PacketLane, Packets};
use pause::{Media, Pause, Tick};
use timeline::{AudioClock, AudioPlan, VideoClock, VideoPlace};

const MS: f64 = 1e6;

/// Entry point, with the arguments after the kind (none are taken).
pub fn main(_args: &[String]) {
    node_api::run_main(run);
}

fn run() -> Result<()> {
    let mut node = Node::init()?;
    let mut sync = Sync::new(&node)?;
    if let Some(state) = node.resume_state() {
        sync.resume_from(state);
    }
    for lane in sync.audio.iter().filter(|l| l.has_output) {
        node.reserve(&lane.name, audio_out::MAX_BATCH_BYTES)?;
    }
    let cameras: Vec<&str> = sync
        .lanes
        .iter()
        .map(|l| l.name.as_str())
        .chain(sync.packets.lanes.iter().map(|l| l.name.as_str()))
        .collect();
    let audio: Vec<&str> = sync.audio.iter().map(|l| l.name.as_str()).collect();
    tracing::info!(
        "sync: cameras {}, audio {}, buffer {} ms, tolerance {} ms",
        cameras.join(", "),
        if audio.is_empty() {
            "none".to_string()
        } else {
            audio.join(", ")
        },
        sync.buffer_ns / 1_000_000,
        sync.tolerance_ns as f64 / MS
    );
    while let Some(event) = node.next_event()? {
        match event {
            Event::Input { input, message } => match message.header {
                Header::Video(frame) => sync.on_video(&mut node, &input, frame, message.payload)?,
                Header::Audio(frame) => sync.on_audio(&mut node, &input, frame, message.payload)?,
                Header::Packet(p) => sync.on_packet(&mut node, &input, p, message.payload)?,
                Header::EndOfStream | Header::Stats(_) => {}
            },
            Event::InputClosed { input } => sync.on_closed(&mut node, &input)?,
            Event::ParamUpdate { name, value, .. } => sync.on_param(&node, &name, &value),
            Event::Stop => {}
        }
        if node.is_no_drop() {
            let decision = sync.pacer.decide();
            for input in &decision.pause {
                tracing::debug!("input `{input}` runs ahead: paused");
                node.pause_input(input);
            }
            for input in &decision.resume {
                node.resume_input(input);
            }
        }
        sync.publish(&node);
    }
    // Inputs that never announced their end (all closed at once).
    for lane in &mut sync.lanes {
        lane.closed = true;
    }
    for lane in &mut sync.audio {
        lane.closed = true;
    }
    for lane in &mut sync.packets.lanes {
        lane.closed = true;
    }
    sync.try_start(&mut node)?;
    // Stopped while paused: the outputs end where the pause began.
    sync.pause.finish(now_ns());
    sync.publish(&node);
    tracing::info!("{}", sync.summary());
    node.finish()
}

#[derive(Default)]
struct Counters {
    video_before_start: u64,
    audio_before_start: u64,
    video_dups_dropped: u64,
    video_gaps: u64,
    audio_gap_fills: u64,
    audio_overlap_trims: u64,
    dropped: u64,
}

impl Counters {
    /// What an audio frame's plan trims and fills.
    fn count_audio(&mut self, plan: &AudioPlan) {
        self.audio_before_start += plan.before_start as u64;
        self.audio_overlap_trims += plan.overlap() as u64;
        self.audio_gap_fills += plan.silence;
        if plan.silence > 0 {
            tracing::debug!(
                "audio: {} samples of silence fill a gap before pts {}",
                plan.silence,
                plan.pts
            );
        }
    }
}

struct Sync {
    buffer_ns: u64,
    tolerance_ns: u64,
    /// Largest drift correction, ppm (0: none).
    max_drift_ppm: f64,
    t0: Option<u64>,
    /// This incarnation continues the timeline of one that died.
    resumed: bool,
    /// The cameras, by input name: `video` first, whose frame grid T0 is on.
    lanes: Vec<VideoLane>,
    /// Keeps no_drop (replayed) inputs within half the buffer of each other.
    pacer: Pacer,
    /// The audio streams, by input name: `audio` first, whose offset to the
    /// first camera is the A/V offset.
    audio: Vec<AudioLane>,
    /// The live param `paused`: what it cuts from the timeline.
    pause: Pause,
    /// The cameras that come as packets (then `lanes` is empty).
    packets: Packets<Payload>,
    n: Counters,
}

impl Sync {
    fn new(node: &Node) -> Result<Sync> {
        let s = node_catalog::kinds::sync::Settings::from_params(node.params())?;
        let cameras = inputs_of(node, PortType::RawVideo);
        let encoded = inputs_of(node, PortType::EncodedVideo);
        let audio = inputs_of(node, PortType::RawAudio);
        if !encoded.is_empty() && !cameras.is_empty() {
            // `runtime check` refuses it (node_catalog::kinds::sync::packet_rules).
            anyhow::bail!(
                "cameras {} carry packets and {} raw video: sync takes them all raw or all encoded",
                encoded.join(", "),
                cameras.join(", ")
            );
        }
        let buffer_ns = s.buffer_ms as u64 * 1_000_000;
        let paced = cameras.iter().chain(&encoded).chain(&audio).cloned();
        Ok(Sync {
            // Half the buffer: replayed streams never wait long enough
            // before the start for held frames to be dropped.
            pacer: Pacer::new(paced, buffer_ns / 2),
            buffer_ns,
            tolerance_ns: (s.tolerance_ms.max(0.0) * MS) as u64,
            max_drift_ppm: s.max_drift_ppm.max(0.0),
            t0: None,
            resumed: false,
            lanes: cameras
                .iter()
                .map(|c| VideoLane::new(c, node.has_output(c)))
                .collect(),
            audio: audio
                .iter()
                .map(|a| AudioLane::new(a, node.has_output(a)))
                .collect(),
            pause: Pause::new(s.paused && encoded.is_empty(), now_ns()),
            packets: Packets::new(
                encoded
                    .iter()
                    .map(|c| PacketLane::new(c, node.has_output(c)))
                    .collect(),
                s.keyframe_lead_ms as u64 * 1_000_000,
            ),
            n: Counters::default(),
        })
    }

    fn lane_index(&self, input: &str) -> Result<usize> {
        self.lanes
            .iter()
            .position(|l| l.name == input)
            .ok_or_else(|| anyhow!("video on input `{input}`, which is not a camera input"))
    }

    fn audio_index(&self, input: &str) -> Result<usize> {
        self.audio
            .iter()
            .position(|l| l.name == input)
            .ok_or_else(|| anyhow!("audio on input `{input}`, which is not an audio input"))
    }

    fn on_video(
        &mut self,
        node: &mut Node,
        input: &str,
        frame: VideoFrame,
        payload: Payload,
    ) -> Result<()> {
        let i = self.lane_index(input)?;
        self.pacer.seen(input, frame.capture_ns);
        if self.t0.is_some() {
            return self.place_video(node, i, frame, payload);
        }
        if self.pause.drops_early(frame.capture_ns, Media::Frame) {
            return Ok(());
        }
        self.n.dropped +=
            self.lanes[i]
                .held
                .push(frame.capture_ns, (frame, payload), self.buffer_ns);
        self.try_start(node)
    }

    fn on_audio(
        &mut self,
        node: &mut Node,
        input: &str,
        frame: AudioFrame,
        payload: Payload,
    ) -> Result<()> {
        let i = self.audio_index(input)?;
        self.pacer.seen(input, frame.capture_ns);
        if self.t0.is_some() {
            return self.place_audio(node, i, frame, payload, true);
        }
        let samples = Media::Samples {
            count: frame.samples,
            rate: frame.sample_rate,
        };
        if self.pause.drops_early(frame.capture_ns, samples) {
            return Ok(());
        }
        let limit_ns = self.audio_hold_limit(i, frame.capture_ns);
        self.n.dropped += self.audio[i]
            .held
            .push(frame.capture_ns, (frame, payload), limit_ns);
        self.try_start(node)
    }

    fn on_closed(&mut self, node: &mut Node, input: &str) -> Result<()> {
        self.pacer.closed(input);
        if let Some(lane) = self.lanes.iter_mut().find(|l| l.name == input) {
            lane.closed = true;
        }
        if let Some(lane) = self.audio.iter_mut().find(|l| l.name == input) {
            lane.closed = true;
        }
        self.close_packets(node, input)?;
        self.try_start(node)?;
        self.close_ended(node)
    }

    /// Ends the output of an input that has ended, once nothing of it is
    /// held: the other streams keep flowing, this one's consumers can finish.
    fn close_ended(&mut self, node: &mut Node) -> Result<()> {
        for lane in &self.lanes {
            if lane.closed && lane.held.is_empty() && lane.has_output {
                node.close_output(&lane.name)?;
            }
        }
        for lane in &mut self.audio {
            if lane.closed && lane.held.is_empty() && lane.has_output {
                lane.batch.send(node)?;
                node.close_output(&lane.name)?;
            }
        }
        // A packet camera's held packets go out at the start, or never.
        for lane in &self.packets.lanes {
            if lane.closed && lane.has_output && self.t0.is_some() {
                node.close_output(&lane.name)?;
            }
        }
        Ok(())
    }

    fn on_param(&mut self, node: &Node, name: &str, value: &serde_json::Value) {
        match (name, value.as_f64()) {
            ("tolerance_ms", Some(ms)) => {
                self.tolerance_ns = (ms.max(0.0) * MS) as u64;
                for clock in self.lanes.iter_mut().filter_map(|l| l.clock.as_mut()) {
                    clock.set_tolerance_ns(self.tolerance_ns);
                }
                for lane in &mut self.audio {
                    if let Some(a) = &mut lane.clock {
                        a.set_tolerance_ns(self.tolerance_ns);
                    }
                    if let Some(d) = &mut lane.drift {
                        d.tracker.set_tolerance_ns(self.tolerance_ns);
                    }
                }
            }
            ("buffer_ms", Some(ms)) => self.buffer_ns = (ms.max(0.0) * MS) as u64,
            ("paused", _) => return self.set_paused(node, value.as_bool() == Some(true)),
            _ => return,
        }
        tracing::info!("{name} set to {value}");
    }

    /// Pauses or resumes the recording now (the live param `paused`).
    fn set_paused(&mut self, node: &Node, paused: bool) {
        if !self.packets.is_empty() {
            // `runtime check` refuses `paused: true` with packet cameras.
            tracing::warn!("paused set to {paused}: ignored, packets cannot be cut without a re-encode (cameras {}); pause at the mux (`recording`)", self.packets.lanes.iter().map(|l| l.name.as_str()).collect::<Vec<_>>().join(", "));
            return;
        }
        let mut now = now_ns();
        if paused {
            // Media stamped ahead of now (an app's timestamps, a replay) may
            // have gone out already: the cut begins after it.
            now = now.max(self.sent_until_ns().unwrap_or(0));
        }
        if !self.pause.set(paused, now) {
            tracing::info!("paused set to {paused}: it already was");
            return;
        }
        let at = match self.pause.output_at_s() {
            Some(s) => format!("at {s:.3} s of the output"),
            None => "before the recording began".to_string(),
        };
        match (paused, self.pause.last_cut()) {
            (true, _) => tracing::info!("paused {at}: nothing is recorded until resumed"),
            (false, Some((s, frames))) if self.t0.is_some() => tracing::info!(
                "resumed: {s:.3} s ({frames} frame periods) cut {at}, {:.3} s in all",
                self.pause.cut_s(now_ns())
            ),
            (false, _) => tracing::info!("resumed {at}: the recording begins after the pause"),
        }
        self.save_state(node);
    }

    /// Just past the latest media sent on any output, on the capture clock.
    fn sent_until_ns(&self) -> Option<u64> {
        let t0 = self.t0?;
        let video = self.lanes.iter().filter_map(|l| {
            let clock = l.clock.as_ref()?;
            Some(Tick::frame(clock.time_base(), 1).just_after(clock.last_slot()?))
        });
        let audio = self
            .audio
            .iter()
            .filter_map(|l| l.clock.as_ref())
            .filter(|a| a.emitted() > 0)
            .map(|a| Tick::sample(a.sample_rate()).just_after(a.emitted() - 1));
        video.chain(audio).max().map(|ns| t0 + ns)
    }

    /// What a restarted sync continues from: the common start and the pauses.
    fn save_state(&self, node: &Node) {
        let mut state = serde_json::json!({ "pause": self.pause.state() });
        if let Some(t0) = self.t0 {
            state["t0_ns"] = t0.into();
        }
        node.save_resume_state(&state);
    }

    /// A restarted sync continues the timeline of the one that died, so the
    /// recording's timestamps go on where they were (with a gap, not a
    /// reset), paused or not as it was.
    fn resume_from(&mut self, state: &serde_json::Value) {
        let t0 = state.get("t0_ns").and_then(|v| v.as_u64());
        if let Some(pause) = Pause::restore(&state["pause"], t0) {
            self.pause = pause;
        }
        if t0.is_some() {
            tracing::info!("restarted: continuing the common timeline of the previous incarnation");
            self.t0 = t0;
            self.resumed = true;
            self.packets.resume();
        }
    }

    /// Fixes T0 once every stream has begun (or ended without beginning),
    /// then sends what was held.
    fn try_start(&mut self, node: &mut Node) -> Result<()> {
        if self.t0.is_some() {
            return Ok(());
        }
        let audio_known = self
            .audio
            .iter()
            .all(|l| l.held.first_capture().is_some() || l.closed);
        // The latest audio start: every audio stream has begun by then.
        let audio = self
            .audio
            .iter()
            .filter_map(|l| l.held.first_capture())
            .max();
        let videos_known = self
            .lanes
            .iter()
            .all(|l| l.held.first_capture().is_some() || l.closed);
        if !(videos_known && audio_known) {
            return Ok(());
        }
        let t0 = if self.packets.is_empty() {
            // The latest camera start: every camera has begun by then.
            let video = self
                .lanes
                .iter()
                .filter_map(|l| l.held.first_capture())
                .max();
            let Some(t0) = timeline::common_start(video, audio) else {
                return Ok(());
            };
            let (t0, grid) = self.onto_grid(t0);
            self.t0 = Some(t0);
            self.pause.start(t0, grid);
            t0
        } else {
            // The cameras' start keyframes fix T0; the audio follows them.
            if !self.packets.ready {
                return Ok(());
            }
            match self.start_packets(node)? {
                Some(t0) => t0,
                None => return Ok(()),
            }
        };
        self.save_state(node);
        let mut starts: Vec<String> = self
            .lanes
            .iter()
            .map(|l| format!("{} {}", l.name, describe_start(l.held.first_capture(), t0)))
            .collect();
        starts.extend(self.packet_starts());
        let audio_starts: Vec<String> = self
            .audio
            .iter()
            .map(|l| format!("{} {}", l.name, describe_start(l.held.first_capture(), t0)))
            .collect();
        // T0 on the capture clock tells what media time an instant is: how
        // much a crash of everything lost is measured against it.
        tracing::info!(
            "common start fixed: {} (T0 = capture clock {t0} ns)",
            starts
                .iter()
                .chain(&audio_starts)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        );
        for i in 0..self.lanes.len() {
            while let Some((frame, payload)) = self.lanes[i].held.pop() {
                self.place_video(node, i, frame, payload)?;
            }
        }
        for i in 0..self.audio.len() {
            while let Some((frame, payload)) = self.audio[i].held.pop() {
                self.place_audio(node, i, frame, payload, false)?;
            }
            self.audio[i].batch.send(node)?;
        }
        self.close_ended(node)
    }

    /// `t0` on the frame grid of the first camera that has frames, and that
    /// grid's period (none without video).
    fn onto_grid(&self, t0: u64) -> (u64, Option<Tick>) {
        let Some((v, _)) = self.lanes.iter().find_map(|l| l.held.first()) else {
            return (t0, None);
        };
        // T0 may move back before a later camera's first frame; by less
        // than half a frame, so that frame still lands in slot 0.
        let snap_back_ns = if self.lanes.len() > 1 {
            let period_ns =
                v.time_base.num.max(1) as u64 * v.duration.max(1) as u64 * 1_000_000_000
                    / v.time_base.den.max(1) as u64;
            self.tolerance_ns.min((period_ns / 2).saturating_sub(1))
        } else {
            self.tolerance_ns
        };
        let t0 = timeline::on_video_grid(t0, v.capture_ns, v.time_base, v.duration, snap_back_ns);
        (t0, Some(Tick::frame(v.time_base, v.duration)))
    }

    fn place_video(
        &mut self,
        node: &mut Node,
        lane: usize,
        frame: VideoFrame,
        payload: Payload,
    ) -> Result<()> {
        let t0 = self.t0.expect("placed after the start");
        let tolerance_ns = self.tolerance_ns;
        let lane = &mut self.lanes[lane];
        let clock = lane.clock.get_or_insert_with(|| {
            VideoClock::new(t0, frame.time_base, frame.duration, tolerance_ns)
        });
        match clock.place(frame.capture_ns, frame.pts) {
            VideoPlace::BeforeStart => self.n.video_before_start += 1,
            VideoPlace::Duplicate => self.n.video_dups_dropped += 1,
            VideoPlace::Emit { pts: slot, skipped } => {
                if skipped > 0 {
                    tracing::debug!(
                        "{}: {skipped} frame slot(s) skipped before slot {slot}",
                        lane.name
                    );
                }
                self.n.video_gaps += skipped as u64;
                // A pause cuts the slot, or moves it back by what it cut.
                let Some(pts) = self.pause.video(Tick::frame(clock.time_base(), 1), slot) else {
                    return Ok(());
                };
                lane.frames += 1;
                smooth(&mut lane.offset, clock.offset_ns(frame.capture_ns, slot));
                lane.first_from_t0
                    .get_or_insert(frame.capture_ns as i64 - t0 as i64);
                if lane.has_output {
                    let header = VideoFrame {
                        pts,
                        time_base: clock.time_base(),
                        duration: 1,
                        ..frame
                    };
                    node.forward(&lane.name, Header::Video(header), &payload)
                        .with_context(|| format!("sending {}", lane.name))?;
                }
            }
        }
        Ok(())
    }

    /// Plans an audio frame of lane `i` and adds its silence and kept
    /// samples to the lane's batch; `send` says whether to send the batch
    /// now (the T0 flush gathers all held frames first).
    fn place_audio(
        &mut self,
        node: &mut Node,
        i: usize,
        frame: AudioFrame,
        payload: Payload,
        send: bool,
    ) -> Result<()> {
        let t0 = self.t0.expect("placed after the start");
        let (tolerance_ns, max_ppm) = (self.tolerance_ns, self.max_drift_ppm);
        let resumed = self.resumed;
        let lane = &mut self.audio[i];
        let drift = lane
            .drift
            .get_or_insert_with(|| DriftCorrector::new(frame.sample_rate, tolerance_ns, max_ppm));
        let data = payload.as_slice();
        // Drift-corrected samples exist only here and are copied on; the
        // others go on zero-copy.
        let corrected = drift.process(&frame, &data)?;
        let (frame, copied) = match &corrected {
            Some(c) => (c.header.clone(), Some(c.data)),
            None => (frame, None),
        };
        let clock = lane.clock.get_or_insert_with(|| {
            let mut clock = AudioClock::new(t0, frame.sample_rate, tolerance_ns);
            if resumed {
                clock.resume_at(frame.capture_ns);
            }
            clock
        });
        let plan = clock.plan(frame.capture_ns, frame.samples, frame.pts, frame.time_base);
        self.n.count_audio(&plan);
        if plan.keep == 0 {
            return Ok(());
        }
        smooth(&mut lane.offset, clock.offset_ns(frame.capture_ns, &plan));
        let first = if lane.has_output {
            let source = match copied {
                Some(bytes) => Source::Copied(bytes),
                None => Source::Shared(&payload),
            };
            lane.batch
                .place(node, &frame, source, &plan, clock, &mut self.pause)?
        } else {
            audio_out::kept_spans(&mut self.pause, &frame, &plan, &mut Vec::new())
        };
        if let Some(capture_ns) = first {
            lane.first_from_t0
                .get_or_insert(capture_ns as i64 - t0 as i64);
        }
        if send {
            lane.batch.send(node)?;
        }
        Ok(())
    }
}

fn describe_start(first: Option<u64>, t0: u64) -> String {
    match first {
        // T0 is on the first camera's frame grid: a stream may begin just after it.
        Some(c) if c > t0 => format!("began {:.1} ms after T0", (c - t0) as f64 / MS),
        Some(c) => format!("began {:.1} ms before T0", (t0 - c) as f64 / MS),
        None => "never began".into(),
    }
}
