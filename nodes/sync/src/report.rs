//! What sync tells: its live metrics (A/V offset, drift per audio track,
//! start spread, counters) and the summary it logs at the end.

use node_api::clock::now_ns;
use node_api::{metrics, Node};

use crate::lanes::AudioLane;
use crate::{Sync, MS};

impl Sync {
    /// How much later the sound of `lane` plays than the picture captured
    /// at the same instant, ms (negative: earlier).
    fn av_offset_ms(&self, lane: &AudioLane) -> Option<f64> {
        let camera = match self.lanes.first() {
            Some(first) => first.offset?,
            None => self.packets.lanes.first()?.offset?,
        };
        Some((camera - lane.offset?) / MS)
    }

    pub(crate) fn publish(&self, node: &Node) {
        let m = node.metrics();
        if let Some(first) = self.audio.first() {
            if let Some(offset) = self.av_offset_ms(first) {
                m.set(metrics::AV_OFFSET_MS, offset);
                m.set(metrics::SYNC_SCORE, sync_score(offset));
            }
            if let Some(d) = &first.drift {
                m.set(metrics::DRIFT_PPM, d.tracker.ppm());
                m.set(metrics::DRIFT_CORRECTION_PPM, d.applied_ppm);
            }
        }
        let jumps: u64 = self
            .audio
            .iter()
            .filter_map(|l| l.drift.as_ref())
            .map(|d| d.tracker.jumps)
            .sum();
        m.set(metrics::AUDIO_CLOCK_JUMPS, jumps as f64);
        for lane in &self.lanes {
            if let Some(first) = lane.first_from_t0 {
                m.set(&lane.metric_first, first as f64 / MS);
            }
        }
        for lane in &self.audio {
            self.publish_audio(node, lane);
        }
        if !self.packets.is_empty() {
            m.set(metrics::KEYFRAME_REQUESTS, self.packets.asks as f64);
            for lane in &self.packets.lanes {
                if let Some(first) = lane.first_from_t0 {
                    m.set(&lane.metric_first, first as f64 / MS);
                }
                if let Some(drift) = lane.drift_ns() {
                    m.set(&lane.metric_drift, drift / MS);
                }
            }
        }
        if let Some(spread) = self.start_spread_ns() {
            m.set(metrics::START_SPREAD_MS, spread as f64 / MS);
        }
        self.publish_counts(node);
    }

    /// The per-track metrics of an audio lane.
    fn publish_audio(&self, node: &Node, lane: &AudioLane) {
        let m = node.metrics();
        if let Some(first) = lane.first_from_t0 {
            m.set(&lane.metric_first, first as f64 / MS);
        }
        if let Some(offset) = self.av_offset_ms(lane) {
            m.set(&lane.metric_av_offset, offset);
        }
        if let Some(d) = &lane.drift {
            m.set(&lane.metric_drift, d.tracker.ppm());
            m.set(&lane.metric_correction, d.applied_ppm);
        }
    }

    fn publish_counts(&self, node: &Node) {
        let m = node.metrics();
        let n = &self.n;
        for (name, count) in [
            (metrics::AUDIO_GAP_FILLS, n.audio_gap_fills),
            (metrics::AUDIO_OVERLAP_TRIMS, n.audio_overlap_trims),
            (metrics::VIDEO_DUPS_DROPPED, n.video_dups_dropped),
            (metrics::VIDEO_GAPS, n.video_gaps),
            (metrics::DROPPED, n.dropped),
            (
                metrics::VIDEO_BEFORE_START,
                n.video_before_start + self.packets.before_start + self.packets.reordered,
            ),
            (metrics::AUDIO_BEFORE_START, n.audio_before_start),
        ] {
            m.set(name, count as f64);
        }
        m.set(metrics::PAUSED, f64::from(u8::from(self.pause.is_paused())));
        m.set(metrics::PAUSED_S, self.pause.cut_s(now_ns()));
        m.set(metrics::PAUSED_FRAMES, self.pause.frames() as f64);
        m.set(metrics::PAUSED_SAMPLES, self.pause.samples() as f64);
    }

    /// How far apart, in capture time, the first frames (and first audio
    /// samples) sent on the tracks are; `None` until two tracks have begun.
    fn start_spread_ns(&self) -> Option<i64> {
        let firsts: Vec<i64> = self
            .lanes
            .iter()
            .filter_map(|l| l.first_from_t0)
            .chain(self.packets.lanes.iter().filter_map(|l| l.first_from_t0))
            .chain(self.audio.iter().filter_map(|l| l.first_from_t0))
            .collect();
        let (min, max) = (firsts.iter().min()?, firsts.iter().max()?);
        (firsts.len() > 1).then_some(max - min)
    }

    pub(crate) fn summary(&self) -> String {
        let spread = match self.start_spread_ns() {
            Some(s) => format!("{:.1} ms", s as f64 / MS),
            None => "n/a".into(),
        };
        let frames: Vec<String> = self
            .lanes
            .iter()
            .map(|l| format!("{} {}", l.name, l.frames))
            .chain(self.packets.lanes.iter().map(|l| {
                let drift = l
                    .drift_ns()
                    .map_or("n/a".into(), |d| format!("{:+.1} ms", d / MS));
                format!("{} {} packets (drift {drift})", l.name, l.sent)
            }))
            .collect();
        let audio: Vec<String> = self.audio.iter().map(|l| self.describe_audio(l)).collect();
        format!(
            "sync done: video frames {}; audio {}; start spread {spread}{}; video {} before start, {} repeats dropped, {} slots skipped; audio {} samples before start, {} gap samples filled, {} overlap samples trimmed; {} dropped while waiting; paused: {:.3} s cut, {} frames, {} samples",
            frames.join(", "),
            if audio.is_empty() { "none".to_string() } else { audio.join("; ") },
            match self.packets.is_empty() {
                true => String::new(),
                false => format!(
                    " ({} keyframe request(s), {} track(s) put back by capture time)",
                    self.packets.asks, self.packets.rebased
                ),
            },
            self.n.video_before_start + self.packets.before_start + self.packets.reordered,
            self.n.video_dups_dropped,
            self.n.video_gaps,
            self.n.audio_before_start,
            self.n.audio_gap_fills,
            self.n.audio_overlap_trims,
            self.n.dropped,
            self.pause.cut_s(now_ns()),
            self.pause.frames(),
            self.pause.samples()
        )
    }

    /// An audio lane's samples sent, A/V offset and drift, for the summary.
    fn describe_audio(&self, lane: &AudioLane) -> String {
        let offset = match self.av_offset_ms(lane) {
            Some(o) => format!("{o:.1} ms"),
            None => "n/a".into(),
        };
        let samples = lane.clock.as_ref().map_or(0, |a| {
            self.pause.audio_kept(a.sample_rate(), lane.emitted())
        });
        format!(
            "{} {samples} samples, A/V offset {offset}, clock drift {:+.1} ppm",
            lane.name,
            lane.drift_ppm()
        )
    }
}

/// 100 when picture and sound are together, down to 0 at 40 ms apart.
fn sync_score(offset_ms: f64) -> f64 {
    (100.0 * (1.0 - offset_ms.abs() / 40.0)).clamp(0.0, 100.0)
}
