//! `node-sync`: puts raw video and raw audio on one timeline from their capture
//! times. Both outputs start at pts 0 at the same instant T0: the later of the
//! two streams' first capture times (moved onto the video's frame grid, see
//! [`timeline::on_video_grid`]); video pts count frame periods from T0, audio
//! pts count samples from T0. Until both streams have begun, the earlier one
//! is held (at most `buffer_ms`). Video frames are forwarded zero-copy with a
//! new header; audio frames too, unless trimmed or preceded by a gap.

mod audio_buf;
mod audio_out;
mod drift;
mod hold;
mod timeline;

use anyhow::{Context, Result};
use node_api::{AudioFrame, Event, Header, Node, Payload, VideoFrame};

use audio_out::Batch;
use drift::DriftCorrector;
use hold::Hold;
use timeline::{AudioClock, VideoClock, VideoPlace};

const MS: f64 = 1e6;

fn main() {
    node_api::run_main(run);
}

fn run() -> Result<()> {
    let mut node = Node::init()?;
    let mut sync = Sync::new(&node);
    // A restarted sync continues the timeline of the one that died, so the
    // recording's timestamps go on where they were (with a gap, not a reset).
    if let Some(t0) = node
        .resume_state()
        .and_then(|s| s.get("t0_ns"))
        .and_then(|v| v.as_u64())
    {
        tracing::info!("restarted: continuing the common timeline of the previous incarnation");
        sync.t0 = Some(t0);
        sync.resumed = true;
    }
    if sync.out_audio {
        node.reserve("audio", audio_out::MAX_BATCH_BYTES)?;
    }
    tracing::info!(
        "sync: buffer {} ms, tolerance {} ms",
        sync.buffer_ns / 1_000_000,
        sync.tolerance_ns as f64 / MS
    );
    while let Some(event) = node.next_event()? {
        match event {
            Event::Input { input, message } => match message.header {
                Header::Video(frame) => sync.on_video(&mut node, frame, message.payload)?,
                Header::Audio(frame) => sync.on_audio(&mut node, frame, message.payload)?,
                Header::EndOfStream | Header::Stats(_) => {}
                Header::Packet(_) => {
                    anyhow::bail!("input `{input}` carries encoded packets; sync takes raw video and raw audio")
                }
            },
            Event::InputClosed { input } => sync.on_closed(&mut node, &input)?,
            Event::ParamUpdate { name, value } => sync.on_param(&name, &value),
            Event::Stop => {}
        }
        sync.publish(&node);
    }
    // Inputs that never announced their end (all closed at once).
    sync.video_closed = true;
    sync.audio_closed = true;
    sync.try_start(&mut node)?;
    sync.publish(&node);
    tracing::info!("{}", sync.summary());
    node.finish()
}

#[derive(Default)]
struct Counters {
    video_frames: u64,
    video_before_start: u64,
    audio_before_start: u64,
    video_dups_dropped: u64,
    video_gaps: u64,
    audio_gap_fills: u64,
    audio_overlap_trims: u64,
    dropped: u64,
}

struct Sync {
    buffer_ns: u64,
    tolerance_ns: u64,
    /// Largest drift correction, ppm (0: none).
    max_drift_ppm: f64,
    out_video: bool,
    out_audio: bool,
    t0: Option<u64>,
    /// This incarnation continues the timeline of one that died.
    resumed: bool,
    held_video: Hold<(VideoFrame, Payload)>,
    held_audio: Hold<(AudioFrame, Payload)>,
    video: Option<VideoClock>,
    audio: Option<AudioClock>,
    drift: Option<DriftCorrector>,
    video_closed: bool,
    audio_closed: bool,
    /// Capture-time error of the frames sent on each output, ns, smoothed
    /// over about a second so timestamp jitter does not swamp it.
    video_offset: Option<f64>,
    audio_offset: Option<f64>,
    batch: Batch,
    n: Counters,
}

impl Sync {
    fn new(node: &Node) -> Sync {
        let p = node.params();
        Sync {
            buffer_ns: p.i64_or("buffer_ms", 500).max(0) as u64 * 1_000_000,
            tolerance_ns: (p.f64_or("tolerance_ms", 20.0).max(0.0) * MS) as u64,
            max_drift_ppm: p.f64_or("max_drift_ppm", 1000.0).max(0.0),
            out_video: node.has_output("video"),
            out_audio: node.has_output("audio"),
            t0: None,
            resumed: false,
            held_video: Hold::new(),
            held_audio: Hold::new(),
            video: None,
            audio: None,
            drift: None,
            video_closed: false,
            audio_closed: false,
            video_offset: None,
            audio_offset: None,
            batch: Batch::new(),
            n: Counters::default(),
        }
    }

    fn on_video(&mut self, node: &mut Node, frame: VideoFrame, payload: Payload) -> Result<()> {
        if self.t0.is_some() {
            return self.place_video(node, frame, payload);
        }
        self.n.dropped += self
            .held_video
            .push(frame.capture_ns, (frame, payload), self.buffer_ns);
        self.try_start(node)
    }

    fn on_audio(&mut self, node: &mut Node, frame: AudioFrame, payload: Payload) -> Result<()> {
        if self.t0.is_some() {
            return self.place_audio(node, frame, payload, true);
        }
        self.n.dropped += self
            .held_audio
            .push(frame.capture_ns, (frame, payload), self.buffer_ns);
        self.try_start(node)
    }

    fn on_closed(&mut self, node: &mut Node, input: &str) -> Result<()> {
        match input {
            "video" => self.video_closed = true,
            "audio" => self.audio_closed = true,
            _ => {}
        }
        self.try_start(node)?;
        self.close_ended(node)
    }

    /// Ends the output of an input that has ended, once nothing of it is
    /// held: the other stream keeps flowing, this one's consumers can finish.
    fn close_ended(&mut self, node: &mut Node) -> Result<()> {
        if self.video_closed && self.held_video.is_empty() && self.out_video {
            node.close_output("video")?;
        }
        if self.audio_closed && self.held_audio.is_empty() && self.out_audio {
            self.batch.send(node)?;
            node.close_output("audio")?;
        }
        Ok(())
    }

    fn on_param(&mut self, name: &str, value: &serde_json::Value) {
        match (name, value.as_f64()) {
            ("tolerance_ms", Some(ms)) => {
                self.tolerance_ns = (ms.max(0.0) * MS) as u64;
                if let Some(v) = &mut self.video {
                    v.set_tolerance_ns(self.tolerance_ns);
                }
                if let Some(a) = &mut self.audio {
                    a.set_tolerance_ns(self.tolerance_ns);
                }
                if let Some(d) = &mut self.drift {
                    d.tracker.set_tolerance_ns(self.tolerance_ns);
                }
            }
            ("buffer_ms", Some(ms)) => self.buffer_ns = (ms.max(0.0) * MS) as u64,
            _ => return,
        }
        tracing::info!("{name} set to {value}");
    }

    /// Fixes T0 once both streams have begun (or one has ended without
    /// beginning), then sends what was held.
    fn try_start(&mut self, node: &mut Node) -> Result<()> {
        if self.t0.is_some() {
            return Ok(());
        }
        let video = self.held_video.first_capture();
        let audio = self.held_audio.first_capture();
        let video_known = video.is_some() || self.video_closed;
        let audio_known = audio.is_some() || self.audio_closed;
        if !(video_known && audio_known) {
            return Ok(());
        }
        let Some(mut t0) = timeline::common_start(video, audio) else {
            return Ok(());
        };
        if let Some((v, _)) = self.held_video.first() {
            t0 = timeline::on_video_grid(
                t0,
                v.capture_ns,
                v.time_base,
                v.duration,
                self.tolerance_ns,
            );
        }
        self.t0 = Some(t0);
        node.save_resume_state(&serde_json::json!({ "t0_ns": t0 }));
        tracing::info!(
            "common start fixed: video {}, audio {}",
            describe_start(video, t0),
            describe_start(audio, t0)
        );
        while let Some((frame, payload)) = self.held_video.pop() {
            self.place_video(node, frame, payload)?;
        }
        while let Some((frame, payload)) = self.held_audio.pop() {
            self.place_audio(node, frame, payload, false)?;
        }
        self.batch.send(node)?;
        self.close_ended(node)
    }

    fn place_video(&mut self, node: &mut Node, frame: VideoFrame, payload: Payload) -> Result<()> {
        let t0 = self.t0.expect("placed after the start");
        let clock = self.video.get_or_insert_with(|| {
            VideoClock::new(t0, frame.time_base, frame.duration, self.tolerance_ns)
        });
        match clock.place(frame.capture_ns, frame.pts) {
            VideoPlace::BeforeStart => self.n.video_before_start += 1,
            VideoPlace::Duplicate => self.n.video_dups_dropped += 1,
            VideoPlace::Emit { pts, skipped } => {
                if skipped > 0 {
                    tracing::debug!("video: {skipped} frame slot(s) skipped before pts {pts}");
                }
                self.n.video_gaps += skipped as u64;
                self.n.video_frames += 1;
                smooth(
                    &mut self.video_offset,
                    clock.offset_ns(frame.capture_ns, pts),
                );
                if self.out_video {
                    let header = VideoFrame {
                        pts,
                        time_base: clock.time_base(),
                        duration: 1,
                        ..frame
                    };
                    node.forward("video", Header::Video(header), &payload)
                        .context("sending video")?;
                }
            }
        }
        Ok(())
    }

    /// Plans an audio frame and adds its silence and kept samples to the
    /// batch; `send` says whether to send the batch now (the T0 flush
    /// gathers all held frames first).
    fn place_audio(
        &mut self,
        node: &mut Node,
        frame: AudioFrame,
        payload: Payload,
        send: bool,
    ) -> Result<()> {
        let t0 = self.t0.expect("placed after the start");
        let (tolerance_ns, max_ppm) = (self.tolerance_ns, self.max_drift_ppm);
        let drift = self
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
        let resumed = self.resumed;
        let clock = self.audio.get_or_insert_with(|| {
            let mut clock = AudioClock::new(t0, frame.sample_rate, tolerance_ns);
            if resumed {
                clock.resume_at(frame.capture_ns);
            }
            clock
        });
        let plan = clock.plan(frame.capture_ns, frame.samples, frame.pts, frame.time_base);
        self.n.audio_before_start += plan.before_start as u64;
        self.n.audio_overlap_trims += plan.overlap() as u64;
        self.n.audio_gap_fills += plan.silence;
        if plan.silence > 0 {
            tracing::debug!(
                "audio: {} samples of silence fill a gap before pts {}",
                plan.silence,
                plan.pts
            );
        }
        if plan.keep == 0 {
            return Ok(());
        }
        smooth(
            &mut self.audio_offset,
            clock.offset_ns(frame.capture_ns, &plan),
        );
        if !self.out_audio {
            return Ok(());
        }
        let silence_pts = plan.pts - plan.silence as i64;
        self.batch
            .silence(node, &frame, silence_pts, plan.silence, |pts| {
                clock.capture_of(pts)
            })?;
        let capture_ns =
            frame.capture_ns + plan.skip as u64 * 1_000_000_000 / frame.sample_rate.max(1) as u64;
        match copied {
            Some(bytes) => self
                .batch
                .copied_samples(node, &frame, bytes, &plan, capture_ns)?,
            None => self
                .batch
                .samples(node, &frame, &payload, &plan, capture_ns)?,
        }
        if send {
            self.batch.send(node)?;
        }
        Ok(())
    }

    /// The A/V offset in ms: how much later the sound plays than the picture
    /// captured at the same instant (negative: earlier).
    fn av_offset_ms(&self) -> Option<f64> {
        Some((self.video_offset? - self.audio_offset?) / MS)
    }

    fn publish(&self, node: &Node) {
        let m = node.metrics();
        if let Some(offset) = self.av_offset_ms() {
            m.set("av_offset_ms", offset);
            m.set("sync_score", sync_score(offset));
        }
        if let Some(d) = &self.drift {
            m.set("drift_ppm", d.tracker.ppm());
            m.set("drift_correction_ppm", d.applied_ppm);
            m.set("audio_clock_jumps", d.tracker.jumps as f64);
        }
        m.set("audio_gap_fills", self.n.audio_gap_fills as f64);
        m.set("audio_overlap_trims", self.n.audio_overlap_trims as f64);
        m.set("video_dups_dropped", self.n.video_dups_dropped as f64);
        m.set("video_gaps", self.n.video_gaps as f64);
        m.set("dropped", self.n.dropped as f64);
        m.set("video_before_start", self.n.video_before_start as f64);
        m.set("audio_before_start", self.n.audio_before_start as f64);
    }

    fn summary(&self) -> String {
        let offset = match self.av_offset_ms() {
            Some(o) => format!("{o:.1} ms"),
            None => "n/a".into(),
        };
        let drift = self.drift.as_ref().map_or(0.0, |d| d.tracker.ppm());
        format!(
            "sync done: {} video frames, {} audio samples; A/V offset {offset}; audio clock drift {drift:+.1} ppm; video {} before start, {} repeats dropped, {} slots skipped; audio {} samples before start, {} gap samples filled, {} overlap samples trimmed; {} dropped while waiting",
            self.n.video_frames,
            self.audio.as_ref().map_or(0, |a| a.emitted()),
            self.n.video_before_start,
            self.n.video_dups_dropped,
            self.n.video_gaps,
            self.n.audio_before_start,
            self.n.audio_gap_fills,
            self.n.audio_overlap_trims,
            self.n.dropped
        )
    }
}

/// Folds a new capture-time error (ns) into a running average over about
/// fifty frames.
fn smooth(average: &mut Option<f64>, error_ns: i64) {
    let e = error_ns as f64;
    *average = Some(average.map_or(e, |a| a + (e - a) / 50.0));
}

/// 100 when picture and sound are together, down to 0 at 40 ms apart.
fn sync_score(offset_ms: f64) -> f64 {
    (100.0 * (1.0 - offset_ms.abs() / 40.0)).clamp(0.0, 100.0)
}

fn describe_start(first: Option<u64>, t0: u64) -> String {
    match first {
        Some(c) => format!("began {:.1} ms before T0", (t0 - c) as f64 / MS),
        None => "never began".into(),
    }
}
