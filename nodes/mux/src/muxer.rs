//! The muxer: one track per input, held until every input has sent its first
//! packet (the header needs all streams), then written interleaved into the
//! current part of the recording. A part ends — and the next numbered file
//! begins — at a size or duration limit (at a video keyframe), or when a
//! track's codec parameters change (its encoder restarted).

use std::collections::VecDeque;
use std::path::PathBuf;

use anyhow::{anyhow, bail, Result};
use ffmpeg_next::format::context::Output;
use ffmpeg_next::Rational;
use node_api::{EncodedPacket, MediaKind, NoRestart};
use node_media::packet as pk;

use crate::disk;
use crate::finalize;
use crate::latency::Latency;
use crate::output;
use crate::unnamed::PartFile;

/// How much each track may hold while another has not begun: enough for an
/// encoder's lookahead, bounded so a silent input cannot exhaust memory.
const HOLD_SECONDS: f64 = 10.0;
const HOLD_BYTES: usize = 256 << 20;
/// How far packets of the other tracks may run ahead of a pending split
/// before they go into the old part anyway (a video track that stopped).
const SPLIT_HOLD_SECONDS: f64 = 5.0;

pub struct Track {
    pub input: String,
    /// Its first packet (or the first with new codec parameters): the stream's parameters.
    pub first: Option<EncodedPacket>,
    held: VecDeque<(EncodedPacket, Vec<u8>)>,
    held_bytes: usize,
    /// Until a keyframe: at the start (a restarted mux joins mid-stream) and
    /// after the held packets were dropped to the end.
    need_keyframe: bool,
    closed: bool,
    /// Its stream in the current part: (index, time base).
    stream: Option<(usize, Rational)>,
    /// The encoder's priming (initial padding) lies ahead: at a fresh start
    /// and after its codec parameters changed (a restarted encoder).
    priming: bool,
    /// The last decoding time written (packet time base): a restarted
    /// encoder must not go back in time within a file.
    last_dts: Option<i64>,
    /// Sequence number of the first packet this mux process received: the
    /// packets before it that no earlier part holds were lost.
    pub first_seq: Option<u64>,
    /// Packets dropped before the first was written (waiting for a keyframe).
    pub dropped_at_start: u64,
    pub packets: u64,
    pub bytes: u64,
    /// Media time covered, in seconds: (first start, last end).
    span: Option<(f64, f64)>,
    pub latency: Latency,
    /// Metric names, made once.
    pub metric_packets: String,
    pub metric_p50: String,
    pub metric_p99: String,
    pub metric_lost: String,
    pub metric_lost_s: String,
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
            priming: true,
            last_dts: None,
            first_seq: None,
            dropped_at_start: 0,
            packets: 0,
            bytes: 0,
            span: None,
            latency: Latency::new(),
            metric_packets: format!("packets_{input}"),
            metric_p50: format!("latency_p50_ms_{input}"),
            metric_p99: format!("latency_p99_ms_{input}"),
            metric_lost: format!("lost_packets_{input}"),
            metric_lost_s: format!("lost_seconds_{input}"),
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

/// How the recording is written, from the mux's params.
pub struct Settings {
    /// The path of part 0; later parts are numbered ([`output::part_path`]).
    pub base: PathBuf,
    pub container: &'static str,
    pub faststart: bool,
    pub overwrite: bool,
    /// Every file must be created inside this directory (`output_dir`).
    pub output_dir: Option<PathBuf>,
    /// Seconds per fragment / cluster while recording.
    pub fragment_s: f64,
    pub max_duration: Option<f64>,
    pub max_bytes: Option<u64>,
    /// At a limit: finalize and record nothing more, instead of splitting.
    pub stop_at_limit: bool,
    /// The part this process writes first: 0 at a fresh start, the next
    /// free number when the mux was restarted mid-recording.
    pub first_part: u32,
}

/// The file being written.
struct Part {
    index: u32,
    path: PathBuf,
    /// Named under `path` once it holds media.
    file: PartFile,
    out: Output,
    /// Where the file system has no unnamed files: the file created by name
    /// (never through a link) that FFmpeg writes through `/proc/self/fd/N`,
    /// held open as long as `out` (declared after it, so dropped after it),
    /// as a muxer may open that name again.
    _named: Option<std::fs::File>,
    /// The stream time (seconds) that is 0 in this file.
    offset: f64,
    /// Stream time covered by the track that decides splits: (start, end).
    span: Option<(f64, f64)>,
    payload_bytes: u64,
}

/// Why the current part must end at the next point a file can start.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Limit {
    Duration,
    Size,
}

/// A part that was written and closed.
pub struct PartSummary {
    pub path: PathBuf,
    pub bytes: u64,
}

pub struct Muxer {
    settings: Settings,
    pub tracks: Vec<Track>,
    part: Option<Part>,
    next_part: u32,
    pub parts: Vec<PartSummary>,
    /// A limit was reached: the part ends at the next keyframe of the split track.
    pending: Option<Limit>,
    /// Packets of other tracks that arrived while a split is pending: they go
    /// to the old part if they start before the split point, else the new one.
    split_hold: VecDeque<(usize, EncodedPacket, Vec<u8>)>,
    /// The split point (stream time, s) once the split track's keyframe
    /// fixed it: the part ends when the other tracks reach it.
    split_at: Option<f64>,
    /// `stop` reached: nothing more is written.
    stopped: bool,
    pub dropped: u64,
    /// Packets not written because `on_limit: stop` ended the recording.
    pub discarded: u64,
    warned_hold: bool,
    /// The longest a packet took from capture to this mux while a file was
    /// open (seconds): media that far back was still on its way (the
    /// encoder's lookahead, sync's buffer, the queues) at any instant.
    max_latency_s: f64,
}

impl Muxer {
    /// `inputs` in the order the graph lists them: the order of the streams.
    pub fn new(settings: Settings, inputs: &[String]) -> Muxer {
        let restarted = settings.first_part > 0;
        let mut tracks: Vec<Track> = inputs.iter().map(|i| Track::new(i)).collect();
        for t in &mut tracks {
            // A restarted mux joins the streams mid-way: no priming ahead.
            t.priming = !restarted;
        }
        Muxer {
            next_part: settings.first_part,
            settings,
            tracks,
            part: None,
            parts: Vec::new(),
            pending: None,
            split_hold: VecDeque::new(),
            split_at: None,
            stopped: false,
            dropped: 0,
            discarded: 0,
            warned_hold: false,
            max_latency_s: 0.0,
        }
    }

    fn track_index(&self, input: &str) -> Result<usize> {
        self.tracks
            .iter()
            .position(|t| t.input == input)
            .ok_or_else(|| anyhow!("packet on unknown input `{input}`"))
    }

    /// Takes one packet (`seq`: its sequence number on the link): written at
    /// once when a file is open, else held.
    pub fn packet(
        &mut self,
        input: &str,
        header: EncodedPacket,
        data: &[u8],
        seq: u64,
        now_ns: u64,
    ) -> Result<()> {
        let i = self.track_index(input)?;
        let track = &mut self.tracks[i];
        if header.capture_ns > 0 {
            let latency_ns = now_ns.saturating_sub(header.capture_ns);
            track.latency.record_ns(latency_ns);
            // Packets held before the first file opened wait for the other
            // tracks to begin: a start-up delay, not the pipeline's.
            if self.part.is_some() {
                self.max_latency_s = self.max_latency_s.max(latency_ns as f64 / 1e9);
            }
        }
        track.first_seq.get_or_insert(seq);
        if self.stopped {
            self.discarded += 1;
            return Ok(());
        }
        let mut params_changed = false;
        match &track.first {
            None => {
                if !output::accepts(self.settings.container, &header.codec) {
                    // A restart would meet the same packets.
                    return Err(NoRestart(format!(
                        "{} cannot carry {} (input `{input}`): pick another codec, or mkv which carries them all",
                        self.settings.container,
                        header.codec
                    ))
                    .into());
                }
                tracing::debug!(
                    "first packet on `{input}`: {} {:?}",
                    header.codec,
                    header.media
                );
                track.first = Some(header.clone());
            }
            Some(first) if !same_stream(first, &header) => {
                if !output::accepts(self.settings.container, &header.codec) {
                    return Err(NoRestart(format!(
                        "{} cannot carry {} (input `{input}`)",
                        self.settings.container, header.codec
                    ))
                    .into());
                }
                tracing::warn!(
                    "`{input}`: new codec parameters (its encoder restarted?): the next packet that can start a file begins the next part"
                );
                track.first = Some(header.clone());
                track.priming = true;
                track.need_keyframe = true;
                params_changed = true;
            }
            Some(_) => {}
        }
        if self.part.is_none() {
            let waiting = track.need_keyframe && !starts_gop(&header);
            let dropped = track.hold(header, data);
            if track.packets == 0 {
                track.dropped_at_start += dropped;
            }
            if waiting {
                tracing::debug!("`{input}`: waiting for a keyframe to start on");
                self.dropped += dropped;
                return Ok(());
            }
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
            return self.try_open();
        }
        if params_changed || track.need_keyframe {
            if !starts_gop(&header) {
                self.dropped += 1;
                if track.packets == 0 {
                    track.dropped_at_start += 1;
                }
                return Ok(());
            }
            track.need_keyframe = false;
            if params_changed {
                let at = start_seconds(&header);
                self.split_at = None;
                self.flush_split_hold(None)?;
                self.next_file(at)?;
                return self.write(i, &header, data);
            }
        }
        self.route(i, header, data)
    }

    /// Writes a packet into the current part, or holds it while a split is
    /// pending. A split happens in two steps: once a limit is reached, the
    /// split track's next keyframe at or after the instant it is due fixes
    /// the split point; the part then ends once every other track has
    /// reached that point too (tracks run ahead of or behind each other by
    /// an encoder's lookahead), so each packet lands in exactly one part.
    fn route(&mut self, i: usize, header: EncodedPacket, data: &[u8]) -> Result<()> {
        let splitter = self.split_track();
        if self.pending.is_none() {
            self.pending = self.limit_reached(i, &header);
            if let Some(limit) = self.pending {
                tracing::debug!("{limit:?} limit reached on `{}`", self.tracks[i].input);
            }
        }
        let Some(limit) = self.pending else {
            return self.write(i, &header, data);
        };
        let start = start_seconds(&header);
        if let Some(at) = self.split_at {
            if Some(i) != splitter && start < at {
                return self.write(i, &header, data);
            }
            self.split_hold.push_back((i, header, data.to_vec()));
            return self.split_when_reached();
        }
        // Packets before the instant the split is due stay in this part.
        let due = self.split_due(limit);
        if Some(i) == splitter {
            if !(starts_gop(&header) && start >= due - 1e-6) {
                return self.write(i, &header, data);
            }
            self.flush_split_hold(Some(start))?;
            if self.settings.stop_at_limit {
                self.close_part()?;
                self.stopped = true;
                self.pending = None;
                self.discarded += 1 + self.split_hold.len() as u64;
                self.split_hold.clear();
                tracing::warn!(
                    "limit reached (on_limit: stop): the recording ends here; later packets are discarded"
                );
                return Ok(());
            }
            tracing::debug!("split point fixed at {start:.3} s (due {due:.3} s)");
            self.split_at = Some(start);
            self.split_hold.push_back((i, header, data.to_vec()));
            return self.split_when_reached();
        }
        if start < due - 1e-6 {
            return self.write(i, &header, data);
        }
        self.split_hold.push_back((i, header, data.to_vec()));
        let front = self.split_hold.front().map(|(_, h, _)| start_seconds(h));
        if front.is_some_and(|a| start - a > SPLIT_HOLD_SECONDS) {
            // The split track went quiet: do not hold the others forever.
            let (j, h, d) = self.split_hold.pop_front().expect("not empty");
            self.write(j, &h, &d)?;
        }
        Ok(())
    }

    /// Starts the next part at the split point once every open track has a
    /// packet past it (or the held packets span too long: a track went quiet).
    fn split_when_reached(&mut self) -> Result<()> {
        let Some(at) = self.split_at else {
            return Ok(());
        };
        let splitter = self.split_track();
        let waiting = self.tracks.iter().enumerate().any(|(j, t)| {
            Some(j) != splitter
                && t.stream.is_some()
                && !t.closed
                && !self.split_hold.iter().any(|(k, _, _)| *k == j)
        });
        let span = match (self.split_hold.front(), self.split_hold.back()) {
            (Some(a), Some(b)) => start_seconds(&b.1) - start_seconds(&a.1),
            _ => 0.0,
        };
        if waiting && span <= SPLIT_HOLD_SECONDS {
            return Ok(());
        }
        tracing::debug!(
            "splitting at {at:.3} s, {} packets held",
            self.split_hold.len()
        );
        self.split_at = None;
        self.next_file(at)?;
        // Routed again: they may reach the next part's limit too.
        for (j, h, d) in std::mem::take(&mut self.split_hold) {
            self.route(j, h, &d)?;
        }
        Ok(())
    }

    /// Writes the held packets of other tracks that start before `split_at`
    /// (all of them when `None`) into the current part.
    fn flush_split_hold(&mut self, split_at: Option<f64>) -> Result<()> {
        let mut keep = VecDeque::new();
        while let Some((j, h, d)) = self.split_hold.pop_front() {
            if split_at.is_some_and(|at| start_seconds(&h) >= at) {
                keep.push_back((j, h, d));
            } else {
                self.write(j, &h, &d)?;
            }
        }
        self.split_hold = keep;
        Ok(())
    }

    /// The stream time from which a part that reached `limit` may end: the
    /// duration limit itself, or at once for the size limit.
    fn split_due(&self, limit: Limit) -> f64 {
        match (limit, self.settings.max_duration, self.part.as_ref()) {
            (Limit::Duration, Some(max), Some(part)) => {
                part.span.map_or(part.offset, |s| s.0) + max
            }
            _ => f64::NEG_INFINITY,
        }
    }

    /// The track whose keyframes may start a part: the first video track
    /// (else the first track) that has a stream in the current part.
    fn split_track(&self) -> Option<usize> {
        let with_stream = |video: bool| {
            self.tracks.iter().position(|t| {
                t.stream.is_some()
                    && (!video
                        || t.first
                            .as_ref()
                            .is_some_and(|f| f.media == MediaKind::Video))
            })
        };
        with_stream(true).or_else(|| with_stream(false))
    }

    /// Whether this packet takes the current part past a limit.
    /// Sizes count payload bytes: the container's own overhead is small against them.
    fn limit_reached(&self, i: usize, header: &EncodedPacket) -> Option<Limit> {
        let part = self.part.as_ref()?;
        if let Some(max) = self.settings.max_duration {
            let start = part.span.map_or(part.offset, |s| s.0);
            // A packet that starts at the limit: the split is due. Any track
            // may get there first (audio runs ahead of an encoder's
            // lookahead); its packets are then held until the keyframe that
            // starts the next part, so none lands on both sides.
            if self.tracks[i].stream.is_some() && start_seconds(header) - start >= max - 1e-6 {
                return Some(Limit::Duration);
            }
        }
        if let Some(max) = self.settings.max_bytes {
            if part.payload_bytes >= max {
                return Some(Limit::Size);
            }
        }
        None
    }

    pub fn close_input(&mut self, input: &str) -> Result<()> {
        let i = self.track_index(input)?;
        self.tracks[i].closed = true;
        if self.tracks[i].first.is_none() {
            tracing::warn!(
                "input `{input}` ended without a packet: {} will have no such track",
                self.settings.base.display()
            );
        }
        self.split_when_reached()?;
        self.try_open()
    }

    /// Opens the first file and writes the header once every input has begun
    /// (or ended empty) with a packet a file can start on, then writes what
    /// was held. A restarted mux that opened before the video's keyframe
    /// would start its file at the audio, and the video before that instant
    /// would be stored but cut by the edit list (never played).
    fn try_open(&mut self) -> Result<()> {
        if self.part.is_some()
            || self.stopped
            || self
                .tracks
                .iter()
                .any(|t| (t.first.is_none() || t.need_keyframe) && !t.closed)
        {
            return Ok(());
        }
        if self.tracks.iter().all(|t| t.first.is_none()) {
            return Ok(());
        }
        // A fresh recording keeps the streams' own timeline (they start at 0);
        // a restarted mux's first file starts at its first packet.
        let offset = if self.next_part == 0 {
            0.0
        } else {
            self.tracks
                .iter()
                .filter_map(|t| t.held.front().map(|(p, _)| start_seconds(p)))
                .fold(f64::INFINITY, f64::min)
        };
        self.open_part(if offset.is_finite() { offset } else { 0.0 })?;
        // Held packets in decoding-time order across tracks, as the
        // interleaver expects them.
        while let Some(i) = self.earliest_held() {
            let (header, data) = self.tracks[i].held.pop_front().expect("track has a packet");
            self.tracks[i].held_bytes -= data.len();
            self.route(i, header, &data)?;
        }
        Ok(())
    }

    /// Ends the current part and opens the next numbered one at stream time `at`.
    fn next_file(&mut self, at: f64) -> Result<()> {
        self.close_part()?;
        self.open_part(at)
    }

    fn open_part(&mut self, offset: f64) -> Result<()> {
        let index = self.next_part;
        let path = output::part_path(&self.settings.base, index);
        let shown = path.display().to_string();
        // Checked again here: the file may have appeared since the start.
        // Numbered parts never replace a file.
        let replace = self.settings.overwrite && index == 0;
        let output_dir = self.settings.output_dir.as_deref();
        output::check_path(&path, replace, output_dir)?;
        // The part gets its name once it holds media (see unnamed.rs): a link
        // planted at the name by then makes naming it fail, never followed.
        output::open_dir(&path, output_dir)?;
        let mut file = PartFile::create(&path, replace);
        let named = match file.is_named() {
            true => Some(output::create(&path, replace, output_dir)?),
            false => None,
        };
        let open_path = named
            .as_ref()
            .map_or_else(|| file.open_path(), output::fd_path);
        let container = self.settings.container;
        let format = output::ffmpeg_format(container).expect("known container");
        let mut out = ffmpeg_next::format::output_as(&open_path, format)
            .map_err(|e| disk::write_error(&format!("cannot create {shown}"), &e))?;
        for t in self.tracks.iter_mut() {
            t.stream = None;
            if let Some(first) = &t.first {
                let mut params = first.clone();
                if !t.priming {
                    params.params.initial_padding = 0;
                }
                let s = pk::add_stream(&mut out, container, &params)
                    .map_err(|e| anyhow!("{shown}: track `{}`: {e:#}", t.input))?;
                t.stream = Some((s, Rational::new(0, 1)));
                t.priming = false;
            }
        }
        out.write_header_with(output::header_options(container, self.settings.fragment_s))
            .map_err(|e| disk::write_error(&format!("writing the header of {shown}"), &e))?;
        file.header_written();
        // The muxer picks each stream's final time base in write_header.
        for t in self.tracks.iter_mut() {
            if let Some((index, tb)) = &mut t.stream {
                *tb = out.stream(*index).expect("stream just added").time_base();
            }
        }
        let tracks: Vec<String> = self
            .tracks
            .iter()
            .filter(|t| t.stream.is_some())
            .map(|t| t.describe())
            .collect();
        tracing::info!("writing {shown} ({container}): {}", tracks.join(", "));
        self.part = Some(Part {
            index,
            path,
            file,
            out,
            _named: named,
            offset,
            span: None,
            payload_bytes: 0,
        });
        self.next_part = index + 1;
        self.pending = None;
        Ok(())
    }

    /// The track whose oldest held packet decodes first.
    fn earliest_held(&self) -> Option<usize> {
        (0..self.tracks.len())
            .filter_map(|i| {
                self.tracks[i]
                    .held
                    .front()
                    .map(|(p, _)| (i, decode_seconds(p)))
            })
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(i, _)| i)
    }

    fn write(&mut self, i: usize, header: &EncodedPacket, data: &[u8]) -> Result<()> {
        let splitter = self.split_track();
        let part = self.part.as_mut().expect("written once open");
        let t = &mut self.tracks[i];
        let Some((index, stream_tb)) = t.stream else {
            // A track that had ended when this part began.
            self.dropped += 1;
            return Ok(());
        };
        let dts = if header.dts == pk::NO_PTS {
            header.pts
        } else {
            header.dts
        };
        if t.last_dts.is_some_and(|last| dts <= last) {
            // A restarted encoder repeating time already written.
            self.dropped += 1;
            return Ok(());
        }
        let mut pkt = pk::to_ffmpeg(header, data);
        let tb = pk::to_rational(header.time_base);
        // Each part starts at 0 on its own.
        let mut shift = (part.offset * header.time_base.den as f64
            / header.time_base.num.max(1) as f64)
            .round() as i64;
        if let Some(first) = &t.first {
            shift -= output::codec_delay_ticks(self.settings.container, first, header.time_base);
        }
        if shift != 0 {
            pkt.set_pts((header.pts != pk::NO_PTS).then_some(header.pts - shift));
            pkt.set_dts((header.dts != pk::NO_PTS).then_some(header.dts - shift));
        }
        pkt.set_stream(index);
        pkt.rescale_ts(tb, stream_tb);
        pkt.write_interleaved(&mut part.out).map_err(|e| {
            disk::write_error(
                &format!(
                    "writing {} (track `{}`, packet dts {} pts {})",
                    part.path.display(),
                    t.input,
                    header.dts,
                    header.pts
                ),
                &e,
            )
        })?;
        part.file.name_if_media()?;
        t.last_dts = Some(dts);
        t.packets += 1;
        t.bytes += data.len() as u64;
        part.payload_bytes += data.len() as u64;
        // Presentation span; an audio encoder's priming samples are not played.
        let priming = match header.media {
            MediaKind::Audio if header.params.sample_rate > 0 && t.span.is_none() => {
                header.params.initial_padding as f64 / header.params.sample_rate as f64
            }
            _ => 0.0,
        };
        let start = start_seconds(header) + priming;
        let end = end_seconds(header);
        t.span = Some(match t.span {
            Some((s, e)) => (s.min(start), e.max(end)),
            None => (start, end),
        });
        if Some(i) == splitter {
            part.span = Some(match part.span {
                Some((s, e)) => (s.min(start), e.max(end)),
                None => (start, end),
            });
        }
        Ok(())
    }

    /// Writes the current part's trailer and makes it a normal file (MP4:
    /// one index, before the media with `faststart`).
    fn close_part(&mut self) -> Result<()> {
        let Some(mut part) = self.part.take() else {
            return Ok(());
        };
        let shown = part.path.display().to_string();
        // Called directly: the fragmented MP4 muxer returns the size of its
        // last box (> 0) on success, which ffmpeg-next takes for an error.
        // SAFETY: a context whose header was written, not used afterwards.
        let ret = unsafe { ffmpeg_next::ffi::av_write_trailer(part.out.as_mut_ptr()) };
        if ret < 0 {
            let e = ffmpeg_next::Error::from(ret);
            return Err(disk::write_error(&format!("finishing {shown}"), &e));
        }
        drop(part.out);
        part.file.name_if_media()?;
        if !part.file.is_named() {
            tracing::info!("part {} {shown}: no media, not created", part.index);
            return Ok(());
        }
        if self.settings.container == "mp4" {
            finalize::rewrite(&part.path, "mp4", self.settings.faststart, None).map_err(|e| {
                e.context(format!(
                    "{shown} stays a fragmented MP4 (it plays; `runtime recover {shown}` retries)"
                ))
            })?;
        }
        let bytes = std::fs::metadata(&part.path).map_or(0, |m| m.len());
        if let Some((start, end)) = part.span {
            // The stream time each file covers: the next part starts where this ends.
            tracing::info!(
                "part {} {shown}: stream time {start:.6} to {end:.6} s ({:.3} s, {})",
                part.index,
                end - start,
                human_bytes(bytes)
            );
        }
        self.parts.push(PartSummary {
            path: part.path,
            bytes,
        });
        Ok(())
    }

    /// After a write error: closes the current part without writing to it
    /// again, cuts a half-written fragment off its end and tries to finalize
    /// it. Returns what happened to the file, for the error message.
    pub fn salvage(&mut self) -> String {
        let Some(part) = self.part.take() else {
            return "no file was open".into();
        };
        let shown = part.path.display().to_string();
        // Closing flushes what FFmpeg still buffers; that write fails too.
        drop(part.out);
        let mut file = part.file;
        if file.name_if_media().is_err() || !file.is_named() {
            return format!("no fragment of {shown} reached the disk");
        }
        if self.settings.container != "mp4" {
            return match finalize::recover(&part.path, self.settings.container) {
                Ok(_) => format!("{shown} keeps everything written before the error"),
                Err(e) => format!(
                    "{shown} keeps what was written before the error, not finalized ({e:#})"
                ),
            };
        }
        if let Err(e) = finalize::trim_incomplete_tail(&part.path) {
            return format!("{shown} could not be trimmed: {e:#}");
        }
        match finalize::rewrite(&part.path, "mp4", self.settings.faststart, None) {
            Ok(r) => format!("{shown} was finalized ({:.2} s)", r.seconds),
            Err(e) => format!(
                "{shown} plays up to the error as a fragmented MP4 but could not be finalized ({e:#}); run `runtime recover {shown}` once there is room"
            ),
        }
    }

    /// The most media (seconds) a crash of everything can lose at the end of
    /// the recording, as far as this run has shown: the fragment not yet
    /// written, one packet, and what was still on its way here (the
    /// longest capture-to-mux delay seen). `None` before a file is open.
    pub fn crash_loss_bound(&self) -> Option<f64> {
        self.part.as_ref()?;
        let packet = self
            .tracks
            .iter()
            .map(Track::packet_seconds)
            .fold(0.0, f64::max);
        Some(self.settings.fragment_s + packet + self.max_latency_s)
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

    /// Bytes on disk: the closed parts and the current one.
    pub fn file_size(&self) -> u64 {
        let current = self.part.as_ref().map_or(0, |p| p.file.size());
        self.parts.iter().map(|p| p.bytes).sum::<u64>() + current
    }

    pub fn is_writing(&self) -> bool {
        self.part.is_some()
    }

    /// The file being written, or the path of the first one.
    pub fn current_path(&self) -> PathBuf {
        self.part.as_ref().map_or_else(
            || output::part_path(&self.settings.base, self.next_part),
            |p| p.path.clone(),
        )
    }

    /// Closes the last part (writing what a pending split held back).
    /// Returns the one-line summary.
    pub fn finish(&mut self) -> Result<String> {
        if self.part.is_none() && self.parts.is_empty() {
            if self.settings.first_part > 0 {
                // Restarted as the streams ended: the earlier parts hold it all.
                return Ok(format!(
                    "no packet after the restart: {} not written",
                    self.current_path().display()
                ));
            }
            bail!(
                "no input sent any packet: {} was not written",
                self.current_path().display()
            );
        }
        if self.part.is_some() {
            if self.split_at.is_some() {
                // The split point was found: the held packets begin the next part.
                for t in &mut self.tracks {
                    t.closed = true;
                }
                self.split_when_reached()?;
            }
            self.flush_split_hold(None)?;
        }
        self.close_part()?;
        let size: u64 = self.parts.iter().map(|p| p.bytes).sum();
        let tracks: Vec<String> = self
            .tracks
            .iter()
            .filter(|t| t.first.is_some())
            .map(|t| t.describe())
            .collect();
        let files: Vec<String> = self
            .parts
            .iter()
            .map(|p| p.path.display().to_string())
            .collect();
        Ok(format!(
            "wrote {} ({:.2} s, {}, {} track{}: {})",
            files.join(", "),
            self.duration(),
            human_bytes(size),
            tracks.len(),
            if tracks.len() == 1 { "" } else { "s" },
            tracks.join(", ")
        ))
    }
}

/// Whether a packet continues the same stream: the same codec and codec
/// parameters (a restarted encoder may bring new ones).
fn same_stream(a: &EncodedPacket, b: &EncodedPacket) -> bool {
    let (p, q) = (&a.params, &b.params);
    a.codec == b.codec
        && a.media == b.media
        && p.extradata == q.extradata
        && p.width == q.width
        && p.height == q.height
        && p.sample_rate == q.sample_rate
        && p.channels == q.channels
}

/// A packet's presentation start in seconds of stream time.
fn start_seconds(p: &EncodedPacket) -> f64 {
    p.time_base
        .seconds(if p.pts == pk::NO_PTS { p.dts } else { p.pts })
}

/// A packet's presentation end in seconds of stream time.
fn end_seconds(p: &EncodedPacket) -> f64 {
    p.time_base
        .seconds(if p.pts == pk::NO_PTS { p.dts } else { p.pts } + p.duration)
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
