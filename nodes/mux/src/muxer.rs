//! The muxer: one track per input, held until every input has sent its first
//! packet (the header needs all streams), then written interleaved.

use std::collections::VecDeque;
use std::path::PathBuf;

use anyhow::{anyhow, bail, Result};
use ffmpeg_next::format::context::Output;
use ffmpeg_next::Rational;
use node_api::{EncodedPacket, MediaKind};
use node_media::packet as pk;

use crate::latency::Latency;
use crate::output;

/// How much each track may hold while another has not begun: enough for an
/// encoder's lookahead, bounded so a silent input cannot exhaust memory.
const HOLD_SECONDS: f64 = 10.0;
const HOLD_BYTES: usize = 256 << 20;

pub struct Track {
    pub input: String,
    first: Option<EncodedPacket>,
    held: VecDeque<(EncodedPacket, Vec<u8>)>,
    held_bytes: usize,
    /// Until a keyframe: at the start (a restarted mux joins mid-stream) and
    /// after the held packets were dropped to the end.
    need_keyframe: bool,
    closed: bool,
    stream: Option<(usize, Rational)>,
    pub packets: u64,
    pub bytes: u64,
    /// Media time covered, in seconds: (first start, last end).
    span: Option<(f64, f64)>,
    pub latency: Latency,
    /// Metric names, made once.
    pub metric_packets: String,
    pub metric_p50: String,
    pub metric_p99: String,
}

impl Track {
    fn new(input: &str) -> Track {
        Track {
            input: input.to_string(),
            first: None,
            held: VecDeque::new(),
            held_bytes: 0,
            need_keyframe: true,
            closed: false,
            stream: None,
            packets: 0,
            bytes: 0,
            span: None,
            latency: Latency::new(),
            metric_packets: format!("packets_{input}"),
            metric_p50: format!("latency_p50_ms_{input}"),
            metric_p99: format!("latency_p99_ms_{input}"),
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
    fn hold(&mut self, header: EncodedPacket, data: &[u8]) -> u64 {
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

    fn held_seconds(&self) -> f64 {
        match (self.held.front(), self.held.back()) {
            (Some((a, _)), Some((b, _))) => decode_seconds(b) - decode_seconds(a),
            _ => 0.0,
        }
    }

    fn describe(&self) -> String {
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

pub struct Muxer {
    path: PathBuf,
    container: &'static str,
    faststart: bool,
    overwrite: bool,
    pub tracks: Vec<Track>,
    out: Option<Output>,
    pub dropped: u64,
    warned_hold: bool,
}

impl Muxer {
    /// `inputs` in the order the graph lists them: the order of the streams.
    pub fn new(
        path: PathBuf,
        container: &'static str,
        faststart: bool,
        overwrite: bool,
        inputs: &[String],
    ) -> Muxer {
        Muxer {
            path,
            container,
            faststart,
            overwrite,
            tracks: inputs.iter().map(|i| Track::new(i)).collect(),
            out: None,
            dropped: 0,
            warned_hold: false,
        }
    }

    fn track_index(&self, input: &str) -> Result<usize> {
        self.tracks
            .iter()
            .position(|t| t.input == input)
            .ok_or_else(|| anyhow!("packet on unknown input `{input}`"))
    }

    /// Takes one packet: written at once when the file is open, else held.
    pub fn packet(
        &mut self,
        input: &str,
        header: EncodedPacket,
        data: &[u8],
        now_ns: u64,
    ) -> Result<()> {
        let i = self.track_index(input)?;
        let track = &mut self.tracks[i];
        if header.capture_ns > 0 {
            track
                .latency
                .record_ns(now_ns.saturating_sub(header.capture_ns));
        }
        if track.first.is_none() {
            if !output::accepts(self.container, &header.codec) {
                bail!(
                    "{} cannot carry {} (input `{input}`): pick another codec, or mkv which carries them all",
                    self.container,
                    header.codec
                );
            }
            tracing::debug!(
                "first packet on `{input}`: {} {:?}",
                header.codec,
                header.media
            );
            track.first = Some(header.clone());
        }
        if self.out.is_some() {
            return self.write(i, &header, data);
        }
        if track.need_keyframe && !starts_gop(&header) {
            tracing::debug!("`{input}`: waiting for a keyframe to start on");
            self.dropped += track.hold(header, data);
            return Ok(());
        }
        let dropped = track.hold(header, data);
        if dropped > 0 {
            self.dropped += dropped;
            if !self.warned_hold {
                self.warned_hold = true;
                let waiting: Vec<&str> = self
                    .tracks
                    .iter()
                    .filter(|t| t.first.is_none())
                    .map(|t| t.input.as_str())
                    .collect();
                tracing::warn!(
                    "still no packet on {}: dropping the oldest of `{input}` beyond {HOLD_SECONDS} s",
                    waiting.join(", ")
                );
            }
        }
        self.try_open()
    }

    pub fn close_input(&mut self, input: &str) -> Result<()> {
        let i = self.track_index(input)?;
        self.tracks[i].closed = true;
        if self.tracks[i].first.is_none() {
            tracing::warn!(
                "input `{input}` ended without a packet: {} will have no such track",
                self.path.display()
            );
        }
        self.try_open()
    }

    /// Opens the file and writes the header once every input has begun (or
    /// ended empty), then writes what was held.
    fn try_open(&mut self) -> Result<()> {
        if self.out.is_some() || self.tracks.iter().any(|t| t.first.is_none() && !t.closed) {
            return Ok(());
        }
        if self.tracks.iter().all(|t| t.first.is_none()) {
            return Ok(());
        }
        let path = self.path.display().to_string();
        // Checked again here: the file may have appeared since the start.
        output::check_path(&self.path, self.overwrite)?;
        let format = output::ffmpeg_format(self.container).expect("known container");
        let mut out = ffmpeg_next::format::output_as(&self.path, format)
            .map_err(|e| anyhow!("cannot create {path}: {e}"))?;
        for t in self.tracks.iter_mut() {
            if let Some(first) = &t.first {
                let index = pk::add_stream(&mut out, self.container, first)
                    .map_err(|e| anyhow!("{path}: track `{}`: {e:#}", t.input))?;
                t.stream = Some((index, Rational::new(0, 1)));
            }
        }
        out.write_header_with(output::header_options(self.container, self.faststart))
            .map_err(|e| anyhow!("writing the header of {path}: {e}"))?;
        // The muxer picks each stream's final time base in write_header.
        for t in self.tracks.iter_mut() {
            if let Some((index, tb)) = &mut t.stream {
                *tb = out.stream(*index).expect("stream just added").time_base();
            }
        }
        self.out = Some(out);
        let tracks: Vec<String> = self
            .tracks
            .iter()
            .filter(|t| t.first.is_some())
            .map(|t| t.describe())
            .collect();
        tracing::info!("writing {path} ({}): {}", self.container, tracks.join(", "));
        // Held packets in decoding-time order across tracks, as the
        // interleaver expects them.
        while let Some(i) = self.earliest_held() {
            let (header, data) = self.tracks[i].held.pop_front().expect("track has a packet");
            self.tracks[i].held_bytes -= data.len();
            self.write(i, &header, &data)?;
        }
        Ok(())
    }

    /// The track whose oldest held packet decodes first.
    fn earliest_held(&self) -> Option<usize> {
        let dts = |p: &EncodedPacket| {
            p.time_base
                .seconds(if p.dts == pk::NO_PTS { p.pts } else { p.dts })
        };
        (0..self.tracks.len())
            .filter_map(|i| self.tracks[i].held.front().map(|(p, _)| (i, dts(p))))
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(i, _)| i)
    }

    fn write(&mut self, i: usize, header: &EncodedPacket, data: &[u8]) -> Result<()> {
        let t = &mut self.tracks[i];
        let (index, stream_tb) = t.stream.expect("tracks with packets have a stream");
        let mut pkt = pk::to_ffmpeg(header, data);
        pkt.set_stream(index);
        pkt.rescale_ts(pk::to_rational(header.time_base), stream_tb);
        let out = self.out.as_mut().expect("written once open");
        pkt.write_interleaved(out).map_err(|e| {
            anyhow!(
                "writing {}: {e} (track `{}`, packet dts {} pts {})",
                self.path.display(),
                t.input,
                header.dts,
                header.pts
            )
        })?;
        t.packets += 1;
        t.bytes += data.len() as u64;
        // Presentation span; an audio encoder's priming samples are not played.
        let priming = match header.media {
            MediaKind::Audio if header.params.sample_rate > 0 => {
                header.params.initial_padding as f64 / header.params.sample_rate as f64
            }
            _ => 0.0,
        };
        let start = header.time_base.seconds(header.pts) + priming;
        let end = header.time_base.seconds(header.pts + header.duration);
        t.span = Some(match t.span {
            Some((s, e)) => (s.min(start), e.max(end)),
            None => (start, end),
        });
        Ok(())
    }

    /// Media seconds written so far (longest track).
    pub fn duration(&self) -> f64 {
        let spans = self.tracks.iter().filter_map(|t| t.span);
        let start = spans.clone().map(|s| s.0).fold(f64::INFINITY, f64::min);
        let end = spans.map(|s| s.1).fold(f64::NEG_INFINITY, f64::max);
        if end > start {
            end - start
        } else {
            0.0
        }
    }

    pub fn payload_bytes(&self) -> u64 {
        self.tracks.iter().map(|t| t.bytes).sum()
    }

    pub fn file_size(&self) -> u64 {
        std::fs::metadata(&self.path).map_or(0, |m| m.len())
    }

    /// Writes the trailer (MP4: the index, moved to the front with faststart)
    /// and closes the file. Returns the one-line summary.
    pub fn finish(&mut self) -> Result<String> {
        let path = self.path.display().to_string();
        let Some(mut out) = self.out.take() else {
            bail!("no input sent any packet: {path} was not written");
        };
        out.write_trailer()
            .map_err(|e| anyhow!("finishing {path}: {e}"))?;
        drop(out);
        let size = self.file_size();
        let tracks: Vec<String> = self
            .tracks
            .iter()
            .filter(|t| t.first.is_some())
            .map(|t| t.describe())
            .collect();
        Ok(format!(
            "wrote {path} ({:.2} s, {}, {} track{}: {})",
            self.duration(),
            human_bytes(size),
            tracks.len(),
            if tracks.len() == 1 { "" } else { "s" },
            tracks.join(", ")
        ))
    }
}

/// A packet's decoding time in seconds (its pts when it has no dts).
fn decode_seconds(p: &EncodedPacket) -> f64 {
    p.time_base
        .seconds(if p.dts == pk::NO_PTS { p.pts } else { p.dts })
}

/// Whether a packet can start a track: any audio packet, a video keyframe.
fn starts_gop(p: &EncodedPacket) -> bool {
    p.keyframe || p.media == MediaKind::Audio
}

fn human_bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.2} GiB", n as f64 / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{:.2} MiB", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

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

    #[test]
    fn sizes_read_well() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(5 << 20), "5.00 MiB");
    }
}
