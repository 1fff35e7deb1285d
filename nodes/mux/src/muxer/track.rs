//! One track of the recording: its stream's parameters, the packets held
//! until a file can be opened, what was written of it.

use std::collections::VecDeque;

use ffmpeg_next::Rational;
use node_api::{metrics, EncodedPacket, MediaKind};

use node_media::latency::Latency;

/// How much each track may hold while another has not begun: enough for an
/// encoder's lookahead, bounded so a silent input cannot exhaust memory.
pub(super) const HOLD_SECONDS: f64 = 10.0;
const HOLD_BYTES: usize = 256 << 20;

pub struct Track {
    pub input: String,
    /// Its first packet (or the first with new codec parameters): the stream's parameters.
    pub first: Option<EncodedPacket>,
    pub(super) held: VecDeque<(EncodedPacket, Vec<u8>)>,
    pub(super) held_bytes: usize,
    /// Until a keyframe: at the start (a restarted mux joins mid-stream) and
    /// after the held packets were dropped to the end.
    pub(super) need_keyframe: bool,
    pub(super) closed: bool,
    /// Its stream in the current part: (index, time base).
    pub(super) stream: Option<(usize, Rational)>,
    /// The encoder's priming (initial padding) lies ahead: at a fresh start
    /// and after its codec parameters changed (a restarted encoder).
    pub(super) priming: bool,
    /// The last decoding time written (packet time base): a restarted
    /// encoder must not go back in time within a file.
    pub(super) last_dts: Option<i64>,
    /// Sequence number of the first packet this mux process received: the
    /// packets before it that no earlier part holds were lost.
    pub first_seq: Option<u64>,
    /// Packets dropped before the first was written (waiting for a keyframe).
    pub dropped_at_start: u64,
    pub packets: u64,
    pub bytes: u64,
    /// Media time covered, in seconds: (first start, last end).
    pub(super) span: Option<(f64, f64)>,
    pub latency: Latency,
    /// Metric names, made once.
    pub metric_packets: String,
    pub metric_p50: String,
    pub metric_p99: String,
    pub metric_lost: String,
    pub metric_lost_s: String,
}

impl Track {
    pub(super) fn new(input: &str) -> Track {
        Track {
            input: input.to_string(),
            first: None,
            held: VecDeque::new(),
            held_bytes: 0,
            need_keyframe: true,
            closed: false,
            stream: None,
            priming: true,
            last_dts: None,
            first_seq: None,
            dropped_at_start: 0,
            packets: 0,
            bytes: 0,
            span: None,
            latency: Latency::new(),
            metric_packets: metrics::per_input(metrics::PACKETS, input),
            metric_p50: metrics::per_input(metrics::LATENCY_P50_MS, input),
            metric_p99: metrics::per_input(metrics::LATENCY_P99_MS, input),
            metric_lost: metrics::per_input(metrics::LOST_PACKETS, input),
            metric_lost_s: metrics::per_input(metrics::LOST_SECONDS, input),
        }
    }

    /// Drops the oldest held packets while over the hold bounds: a video
    /// track a whole GOP at a time, so it still starts on a keyframe. A track
    /// emptied that way waits for its next keyframe.
    fn trim_held(&mut self) -> u64 {
        let mut dropped = 0;
        while self.held.len() > 1
            && (self.held_seconds() > HOLD_SECONDS || self.held_bytes > HOLD_BYTES)
        {
            while let Some((_, data)) = self.held.pop_front() {
                self.held_bytes -= data.len();
                dropped += 1;
                match self.held.front() {
                    Some((p, _)) if starts_gop(p) => break,
                    Some(_) => {}
                    None => self.need_keyframe = true,
                }
            }
        }
        dropped
    }

    /// Holds a packet (copied: the sender's buffer must go back to its pool).
    /// Returns how many packets were dropped to stay within the bounds.
    pub(super) fn hold(&mut self, header: EncodedPacket, data: &[u8]) -> u64 {
        if self.need_keyframe {
            if !starts_gop(&header) {
                return 1;
            }
            self.need_keyframe = false;
        }
        self.held_bytes += data.len();
        self.held.push_back((header, data.to_vec()));
        self.trim_held()
    }

    /// The media time one packet of this track covers (0 before the first).
    pub fn packet_seconds(&self) -> f64 {
        let Some(p) = &self.first else { return 0.0 };
        if p.duration > 0 {
            return p.time_base.seconds(p.duration);
        }
        let (num, den) = p.params.frame_rate;
        if p.media == MediaKind::Video && num > 0 && den > 0 {
            return den as f64 / num as f64;
        }
        0.0
    }

    fn held_seconds(&self) -> f64 {
        match (self.held.front(), self.held.back()) {
            (Some((a, _)), Some((b, _))) => decode_seconds(b) - decode_seconds(a),
            _ => 0.0,
        }
    }

    pub(super) fn describe(&self) -> String {
        let Some(p) = &self.first else {
            return format!("{}: no packets", self.input);
        };
        let c = &p.params;
        match p.media {
            MediaKind::Video => {
                let fps = if c.frame_rate.1 > 0 {
                    c.frame_rate.0 as f64 / c.frame_rate.1 as f64
                } else {
                    0.0
                };
                format!(
                    "{} {} {}x{} {fps:.3} fps",
                    self.input, p.codec, c.width, c.height
                )
            }
            MediaKind::Audio => format!(
                "{} {} {} Hz {} ch",
                self.input, p.codec, c.sample_rate, c.channels
            ),
        }
    }
}

pub(super) use node_media::packet::{decode_seconds, end_seconds, start_seconds, starts_gop};

#[cfg(test)]
mod tests {
    use super::*;
    use node_api::{CodecParams, TimeBase};

    fn packet(dts: i64, keyframe: bool) -> EncodedPacket {
        EncodedPacket {
            media: MediaKind::Video,
            codec: "h264".into(),
            params: CodecParams::default(),
            pts: dts,
            dts,
            duration: 1,
            time_base: TimeBase::new(1, 30),
            keyframe,
            capture_ns: 0,
        }
    }

    #[test]
    fn held_video_is_trimmed_to_a_keyframe() {
        let mut t = Track::new("video");
        // 12 s at 30 fps with a keyframe every 2 s.
        let mut dropped = 0;
        for i in 0..360 {
            dropped += t.hold(packet(i, i % 60 == 0), &[0; 10]);
        }
        // Past 10 s, the first GOP goes as a whole.
        assert_eq!(dropped, 60);
        assert!(t.held.front().unwrap().0.keyframe);
        assert!(t.held_seconds() <= HOLD_SECONDS);
        assert_eq!(t.held_bytes, 10 * t.held.len());
    }

    #[test]
    fn a_track_dropped_to_nothing_waits_for_a_keyframe() {
        let mut t = Track::new("video");
        // One 11 s GOP: only its keyframe could start the track, and it must go.
        assert_eq!(t.hold(packet(0, true), &[0; 4]), 0);
        let mut dropped = 0;
        for i in 1..=330 {
            dropped += t.hold(packet(i, false), &[0; 4]);
        }
        assert!(
            t.held.len() <= 1 && dropped >= 330,
            "{} held, {dropped} dropped",
            t.held.len()
        );
        assert_eq!(t.hold(packet(331, false), &[0; 4]), 1);
        assert_eq!(t.hold(packet(332, true), &[0; 4]), 0);
        assert_eq!(t.held.len(), 1);
        assert_eq!(t.held_bytes, 4);
    }

    #[test]
    fn a_track_starts_on_a_keyframe() {
        let mut t = Track::new("video");
        assert_eq!(t.hold(packet(0, false), &[0; 4]), 1);
        assert_eq!(t.hold(packet(1, true), &[0; 4]), 0);
        assert_eq!(t.hold(packet(2, false), &[0; 4]), 0);
        assert_eq!(t.held.len(), 2);
    }
}
