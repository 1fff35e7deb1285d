//! The replay buffer's memory: the last seconds of every track, bounded by
//! media seconds and by bytes, whichever binds first.
//!
//! The first video track is the anchor: its packets are kept from a
//! keyframe on, and the buffer is let go from the front a whole keyframe
//! interval (GOP) at a time, so it always begins where a file can begin.
//! The other tracks keep what lies from the anchor's first keyframe on
//! (audio that arrives before the video it goes with is kept until that
//! video arrives). Without video, packets go one by one.

use std::collections::VecDeque;

use node_api::MediaKind;
use node_media::packet as pk;

use crate::tracks::Packet;

/// Packets of every track in the order they arrived (decode order).
pub struct Buffer {
    tracks: Vec<VecDeque<Packet>>,
    /// The track whose keyframes the buffer starts on (the first video
    /// track seen); `None` until one is seen, and for audio only.
    anchor: Option<usize>,
    max_s: f64,
    max_bytes: usize,
    bytes: usize,
    /// The latest end (stream seconds) of any packet kept.
    newest_end: f64,
    /// Packets not kept because a keyframe interval outgrew `max_bytes`.
    pub dropped: u64,
    /// The anchor was emptied for the byte bound: its packets up to the
    /// next keyframe are dropped (counted) rather than merely awaited.
    starved: bool,
    /// A save waits for its media: the seconds bound counts up to its
    /// instant (capture clock, ns), so the save gets the whole `max_s`
    /// before it, not what is left once the media after it came in.
    pin: Option<u64>,
    /// The latest end (stream seconds) of a packet captured by `pin`.
    pinned_end: f64,
}

/// What a save writes: every track's packets, from the buffer's start.
pub struct Snapshot {
    pub tracks: Vec<Vec<Packet>>,
    /// The stream time the file begins at (its first video keyframe).
    pub start_s: f64,
    /// The track the file begins on (its other video tracks wait for a keyframe).
    pub anchor: Option<usize>,
}

impl Buffer {
    pub fn new(tracks: usize, max_s: f64, max_bytes: usize) -> Buffer {
        Buffer {
            tracks: (0..tracks).map(|_| VecDeque::new()).collect(),
            anchor: None,
            max_s,
            max_bytes,
            bytes: 0,
            newest_end: f64::NEG_INFINITY,
            dropped: 0,
            starved: false,
            pin: None,
            pinned_end: f64::NEG_INFINITY,
        }
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Media seconds held: from the buffer's start to its newest packet.
    pub fn span_s(&self) -> f64 {
        match self.start_s() {
            Some(start) => (self.newest_end - start).max(0.0),
            None => 0.0,
        }
    }

    /// The span the seconds bound applies to: up to the pinned instant
    /// while a save waits, else [`Buffer::span_s`].
    fn bounded_span_s(&self) -> f64 {
        match (self.pin, self.start_s()) {
            (Some(_), Some(start)) => (self.pinned_end - start).max(0.0),
            _ => self.span_s(),
        }
    }

    /// A save made at `at_ns` waits for its media: until [`Buffer::unpin`],
    /// what was captured up to it is kept for `max_s` before the instant
    /// (the byte bound still holds).
    pub fn pin(&mut self, at_ns: u64) {
        self.pin = Some(at_ns);
        self.pinned_end = self
            .tracks
            .iter()
            .flatten()
            .filter(|p| p.header.capture_ns <= at_ns)
            .map(|p| pk::end_seconds(&p.header))
            .fold(f64::NEG_INFINITY, f64::max);
    }

    pub fn unpin(&mut self) {
        self.pin = None;
        self.enforce();
    }

    /// Where the buffer begins: the anchor's first keyframe, else (no
    /// video kept) the oldest packet.
    fn start_s(&self) -> Option<f64> {
        if let Some(first) = self.anchor.and_then(|a| self.tracks[a].front()) {
            return Some(pk::start_seconds(&first.header));
        }
        self.tracks
            .iter()
            .filter_map(|t| t.front())
            .map(|p| pk::start_seconds(&p.header))
            .min_by(f64::total_cmp)
    }

    /// Keeps `p` (already copied out of its message), then lets the front
    /// go until both bounds hold.
    pub fn push(&mut self, p: Packet) {
        if self.anchor.is_none() && p.header.media == MediaKind::Video {
            // From now on the buffer starts on this track's keyframes.
            self.anchor = Some(p.track);
        }
        if Some(p.track) == self.anchor && self.tracks[p.track].is_empty() && !p.header.keyframe {
            self.dropped += u64::from(self.starved);
            return;
        }
        if Some(p.track) == self.anchor && p.header.keyframe {
            self.starved = false;
        }
        self.newest_end = self.newest_end.max(pk::end_seconds(&p.header));
        if self.pin.is_some_and(|at| p.header.capture_ns <= at) {
            self.pinned_end = self.pinned_end.max(pk::end_seconds(&p.header));
        }
        self.bytes += p.data.len();
        self.tracks[p.track].push_back(p);
        self.enforce();
    }

    /// Lets go from the front until the bytes and the seconds fit.
    fn enforce(&mut self) {
        loop {
            let over_bytes = self.bytes > self.max_bytes;
            if !over_bytes && self.bounded_span_s() <= self.max_s {
                break;
            }
            if !self.evict_front(over_bytes) {
                break;
            }
        }
        self.trim_others();
    }

    /// Lets the first GOP go (without video: the oldest packet); false
    /// when nothing was held. A lone GOP over the byte bound is dropped
    /// and counted: the buffer starts again at the next keyframe.
    fn evict_front(&mut self, over_bytes: bool) -> bool {
        let Some(a) = self.anchor.filter(|a| !self.tracks[*a].is_empty()) else {
            return self.evict_oldest();
        };
        let next_gop = self.tracks[a]
            .iter()
            .skip(1)
            .position(|p| p.header.keyframe)
            .map(|i| i + 1);
        let count = next_gop.unwrap_or(self.tracks[a].len());
        for p in self.tracks[a].drain(..count) {
            self.bytes -= p.data.len();
        }
        if next_gop.is_none() && over_bytes {
            self.dropped += count as u64;
            self.starved = true;
        }
        true
    }

    /// Lets the oldest packet of any track go.
    fn evict_oldest(&mut self) -> bool {
        let oldest = (0..self.tracks.len())
            .filter_map(|i| Some((i, pk::start_seconds(&self.tracks[i].front()?.header))))
            .min_by(|a, b| a.1.total_cmp(&b.1));
        let Some((i, _)) = oldest else {
            return false;
        };
        let p = self.tracks[i].pop_front().expect("a front packet");
        self.bytes -= p.data.len();
        true
    }

    /// The other tracks' packets that end before the buffer's start go.
    fn trim_others(&mut self) {
        let Some(a) = self.anchor else { return };
        let Some(start) = self.tracks[a].front().map(|p| pk::start_seconds(&p.header)) else {
            return;
        };
        for (i, track) in self.tracks.iter_mut().enumerate() {
            if i == a {
                continue;
            }
            while let Some(p) = track.front() {
                let end = pk::decode_seconds(&p.header) + p.seconds();
                if end > start {
                    break;
                }
                self.bytes -= p.data.len();
                track.pop_front();
            }
        }
    }

    /// Empties the buffer (an encoder restarted with new parameters: what
    /// is held cannot go in one file with what comes).
    pub fn clear(&mut self) {
        for t in &mut self.tracks {
            t.clear();
        }
        self.bytes = 0;
        self.newest_end = f64::NEG_INFINITY;
    }

    /// What a save made at `at_ns` (capture clock) writes: each track's
    /// packets up to the first one captured after it. `None` when no video
    /// keyframe (or, without video, no packet) is held.
    pub fn snapshot(&self, at_ns: u64) -> Option<Snapshot> {
        let start_s = self.start_s()?;
        if self.anchor.is_some_and(|a| self.tracks[a].is_empty()) {
            return None;
        }
        // A prefix in decode order: a frame whose reference was captured
        // after the instant is never written without it.
        let tracks = self
            .tracks
            .iter()
            .map(|t| {
                t.iter()
                    .take_while(|p| p.header.capture_ns <= at_ns)
                    .cloned()
                    .collect()
            })
            .collect();
        Some(Snapshot {
            tracks,
            start_s,
            anchor: self.anchor,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use node_api::{CodecParams, EncodedPacket, TimeBase};
    use std::sync::Arc;

    const FPS: i64 = 10;

    /// A packet of `bytes` bytes at `ms` (stream time = capture time).
    fn packet(
        track: usize,
        media: MediaKind,
        ms: i64,
        dur_ms: i64,
        key: bool,
        bytes: usize,
    ) -> Packet {
        Packet {
            track,
            header: EncodedPacket {
                media,
                codec: if media == MediaKind::Video {
                    "h264"
                } else {
                    "aac"
                }
                .into(),
                params: CodecParams::default(),
                pts: ms,
                dts: ms,
                duration: dur_ms,
                time_base: TimeBase::new(1, 1000),
                keyframe: key,
                capture_ns: ms as u64 * 1_000_000,
            },
            data: Arc::from(vec![0u8; bytes]),
        }
    }

    /// `seconds` of video (track 0, 10 fps, a keyframe every `gop` frames,
    /// `frame` bytes each) and audio (track 1, 100 ms packets of 100 bytes).
    fn feed(b: &mut Buffer, from_s: i64, seconds: i64, gop: i64, frame: usize) {
        for i in from_s * FPS..(from_s + seconds) * FPS {
            let ms = i * 100;
            b.push(packet(1, MediaKind::Audio, ms, 100, true, 100));
            b.push(packet(0, MediaKind::Video, ms, 100, i % gop == 0, frame));
        }
    }

    fn check_invariants(b: &Buffer) {
        let held: usize = b.tracks.iter().flatten().map(|p| p.data.len()).sum();
        assert_eq!(held, b.bytes);
        assert!(b.bytes <= b.max_bytes, "{} > {}", b.bytes, b.max_bytes);
        assert!(b.span_s() <= b.max_s + 1e-9, "{} s", b.span_s());
        if let Some(first) = b.tracks[0].front() {
            assert!(first.header.keyframe, "starts on a keyframe");
        }
    }

    #[test]
    fn the_seconds_bind_and_whole_gops_go() {
        let mut b = Buffer::new(2, 10.0, 100_000_000);
        feed(&mut b, 0, 30, 20, 1000);
        check_invariants(&b);
        // Keyframes every 2 s: between 8 and 10 s held, from a keyframe.
        assert!(b.span_s() > 8.0 && b.span_s() <= 10.0, "{}", b.span_s());
        let start = pk::start_seconds(&b.tracks[0][0].header);
        assert_eq!(start % 2.0, 0.0);
        // Audio from the same instant.
        assert_eq!(pk::start_seconds(&b.tracks[1][0].header), start);
        assert_eq!(b.dropped, 0);
    }

    #[test]
    fn the_bytes_bind_before_the_seconds() {
        // 10 KB frames, 2 s GOPs of 200 KB + 2 KB audio: 500 KB holds 2 GOPs.
        let mut b = Buffer::new(2, 10.0, 500_000);
        for s in 0..30 {
            feed(&mut b, s, 1, 20, 10_000);
            check_invariants(&b);
        }
        assert!(b.span_s() <= 5.0, "the bytes bound it: {}", b.span_s());
        assert!(b.span_s() >= 2.0, "{}", b.span_s());
        assert_eq!(b.dropped, 0);
    }

    #[test]
    fn a_gop_larger_than_the_cap_is_dropped_and_counted() {
        // 20 frames of 10 KB per GOP: 200 KB, over a 150 KB cap.
        let mut b = Buffer::new(2, 10.0, 150_000);
        for s in 0..6 {
            feed(&mut b, s, 1, 20, 10_000);
            check_invariants(&b);
        }
        assert!(b.dropped > 0);
        assert!(b.tracks[0].len() < 20);
    }

    #[test]
    fn the_buffer_waits_for_a_keyframe_and_keeps_early_audio() {
        let mut b = Buffer::new(2, 10.0, 1_000_000);
        // Audio ahead of the video, video from a P-frame first.
        b.push(packet(1, MediaKind::Audio, 0, 100, true, 100));
        b.push(packet(1, MediaKind::Audio, 100, 100, true, 100));
        b.push(packet(0, MediaKind::Video, 0, 100, false, 1000));
        assert!(b.snapshot(u64::MAX).is_none(), "no keyframe yet");
        b.push(packet(0, MediaKind::Video, 100, 100, true, 1000));
        check_invariants(&b);
        let s = b.snapshot(u64::MAX).unwrap();
        assert_eq!(s.start_s, 0.1);
        assert_eq!(s.tracks[0].len(), 1);
        assert_eq!(s.tracks[1].len(), 1, "audio before the keyframe let go");
        assert_eq!(b.dropped, 0, "waiting for the first keyframe is no drop");
    }

    #[test]
    fn a_snapshot_ends_at_the_instant() {
        let mut b = Buffer::new(2, 10.0, 100_000_000);
        feed(&mut b, 0, 5, 20, 1000);
        let s = b.snapshot(3_000_000_000).unwrap();
        for t in &s.tracks {
            let last = t.last().unwrap();
            assert_eq!(last.header.capture_ns, 3_000_000_000);
        }
        assert_eq!(s.start_s, 0.0);
        assert_eq!(s.anchor, Some(0));
    }

    #[test]
    fn a_waiting_save_keeps_the_seconds_before_its_instant() {
        let mut b = Buffer::new(2, 10.0, 100_000_000);
        feed(&mut b, 0, 20, 20, 1000);
        b.pin(19_950_000_000);
        // The media captured after the instant comes in meanwhile.
        feed(&mut b, 20, 1, 20, 1000);
        let s = b.snapshot(19_950_000_000).unwrap();
        assert_eq!(s.start_s, 10.0, "the 10 s before the instant");
        b.unpin();
        check_invariants(&b);
        assert_eq!(pk::start_seconds(&b.tracks[0][0].header), 12.0);
    }

    #[test]
    fn audio_only_goes_packet_by_packet() {
        let mut b = Buffer::new(1, 2.0, 100_000_000);
        for i in 0..100 {
            b.push(packet(0, MediaKind::Audio, i * 100, 100, true, 100));
        }
        assert!((b.span_s() - 2.0).abs() < 1e-9, "{}", b.span_s());
        assert_eq!(b.snapshot(u64::MAX).unwrap().tracks[0].len(), 20);
    }
}
