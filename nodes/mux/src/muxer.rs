//! The muxer: one track per input, held until every input has sent its first
//! packet (the header needs all streams), then written interleaved into the
//! current part of the recording. A part ends — and the next numbered file
//! begins — at a size or duration limit (at a video keyframe), or when a
//! track's codec parameters change (its encoder restarted). Where the
//! recording is — no file open, writing one (and whether a split is
//! pending), stopped at a limit — is one state, [`split::Recording`].

mod ahead;
mod session;
mod split;
mod track;

use std::path::PathBuf;

use anyhow::{anyhow, bail, Result};
use ffmpeg_next::format::context::Output;
use ffmpeg_next::Rational;
use node_api::{EncodedPacket, MediaKind, NoRestart};
use node_media::packet as pk;
use node_media::packet::same_stream;

use crate::disk;
use crate::finalize;
use crate::output;
use crate::unnamed::PartFile;
pub use session::{add_chapters, Chapter, Outcome};
use split::{Held, Recording, Split};
use track::{decode_seconds, end_seconds, start_seconds, starts_gop, Track, HOLD_SECONDS};

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
    /// Writing from the start; else in standby until a start (`recording`).
    pub recording: bool,
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
    chapters: Vec<Chapter>,
    /// Opened by a session's start: nothing before `offset` belongs in it.
    session: bool,
}

/// A part that was written and closed.
pub struct PartSummary {
    pub path: PathBuf,
    pub bytes: u64,
}

pub struct Muxer {
    settings: Settings,
    pub tracks: Vec<Track>,
    /// No file open, writing one (and whether it is about to end), or stopped at a limit.
    state: Recording,
    next_part: u32,
    pub parts: Vec<PartSummary>,
    pub dropped: u64,
    /// Packets not written because `on_limit: stop` ended the recording.
    pub discarded: u64,
    /// Packets not written because no session was recording them (standby,
    /// before a start's keyframe, after a stop): let go as asked, not lost.
    pub skipped: u64,
    /// A start's instant (capture clock) until its file opens.
    start_at: Option<u64>,
    /// Chapters in the parts already closed.
    chapters_closed: usize,
    /// Chapters asked for, not yet placed: (instant, title).
    pending_chapters: std::collections::VecDeque<(u64, String)>,
    warned_hold: bool,
    /// The longest a packet took from capture until it was written while a
    /// file was open (seconds): media that far back was still on its way
    /// (the encoder's lookahead, sync's buffer, the queues) or held here
    /// (a pending split, packets ahead of the split track) at any instant.
    max_latency_s: f64,
    /// The instant (capture clock) of the packet being taken, for that
    /// delay; `None` while the first file's held packets are written (their
    /// wait for every track to begin is a start-up delay, not the pipeline's).
    now_ns: Option<u64>,
    /// Packets of other tracks that start past the split track's
    /// `split_end`, held while a size limit may come (`ahead.rs`).
    ahead: std::collections::VecDeque<Held>,
    /// The latest presentation end the split track has written (stream
    /// time, s), across parts.
    split_end: Option<f64>,
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
        let state = if settings.recording {
            Recording::Idle
        } else {
            Recording::Standby
        };
        Muxer {
            next_part: settings.first_part,
            settings,
            tracks,
            state,
            parts: Vec::new(),
            dropped: 0,
            discarded: 0,
            skipped: 0,
            start_at: None,
            chapters_closed: 0,
            pending_chapters: Default::default(),
            warned_hold: false,
            max_latency_s: 0.0,
            now_ns: None,
            ahead: Default::default(),
            split_end: None,
        }
    }

    fn track_index(&self, input: &str) -> Result<usize> {
        self.tracks
            .iter()
            .position(|t| t.input == input)
            .ok_or_else(|| anyhow!("packet on unknown input `{input}`"))
    }

    /// The file being written.
    fn part(&self) -> Option<&Part> {
        match &self.state {
            Recording::Writing { part, .. } => Some(part),
            _ => None,
        }
    }

    /// Takes the file being written out of the state, which becomes Idle
    /// (Stopped stays Stopped).
    fn take_part(&mut self) -> Option<Box<Part>> {
        match std::mem::replace(&mut self.state, Recording::Idle) {
            Recording::Writing { part, .. } => Some(part),
            other => {
                self.state = other;
                None
            }
        }
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
        let writing = self.is_writing();
        self.now_ns = Some(now_ns);
        let track = &mut self.tracks[i];
        if header.capture_ns > 0 {
            track
                .latency
                .record_ns(now_ns.saturating_sub(header.capture_ns));
        }
        track.first_seq.get_or_insert(seq);
        if matches!(self.state, Recording::Stopped) {
            self.discarded += 1;
            return Ok(());
        }
        let params_changed = self.note_stream(i, &header)?;
        if self.outside_session(i, &header) {
            return Ok(());
        }
        if !writing {
            return self.hold_until_open(i, header, data);
        }
        let track = &mut self.tracks[i];
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
                return self.new_params_part(i, &header, data);
            }
        }
        self.route(i, header, data)
    }

    /// Track `i`'s codec parameters changed: the next part begins with this
    /// packet (one that can start a file).
    fn new_params_part(&mut self, i: usize, header: &EncodedPacket, data: &[u8]) -> Result<()> {
        // A pending split is given up: what it held goes into this part.
        let at = start_seconds(header);
        self.flush_split_hold(None)?;
        // Held ahead of the video: what starts past a new video keyframe
        // belongs to the next part; a track that changed itself has only
        // old-stream packets held, all for this part.
        let before = match self.split_track() == Some(i) {
            true => at,
            false => f64::INFINITY,
        };
        self.release_ahead(before)?;
        self.next_file(at)?;
        self.write(i, header, data)?;
        self.release_ahead(self.split_end.unwrap_or(f64::NEG_INFINITY))
    }

    /// The stream of track `i` begins, or goes on, or changes codec
    /// parameters (returns true: its encoder restarted) with this packet.
    fn note_stream(&mut self, i: usize, header: &EncodedPacket) -> Result<bool> {
        let container = self.settings.container;
        let track = &mut self.tracks[i];
        let input = &track.input;
        match &track.first {
            None => {
                if !output::accepts(container, &header.codec) {
                    // A restart would meet the same packets.
                    return Err(NoRestart(format!(
                        "{container} cannot carry {} (input `{input}`): pick another codec, or mkv which carries them all",
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
                Ok(false)
            }
            Some(first) if !same_stream(first, header) => {
                if !output::accepts(container, &header.codec) {
                    return Err(NoRestart(format!(
                        "{container} cannot carry {} (input `{input}`)",
                        header.codec
                    ))
                    .into());
                }
                tracing::warn!(
                    "`{input}`: new codec parameters (its encoder restarted?): the next packet that can start a file begins the next part"
                );
                track.first = Some(header.clone());
                track.priming = true;
                track.need_keyframe = true;
                Ok(true)
            }
            Some(_) => Ok(false),
        }
    }

    /// No file is open yet: track `i` holds the packet until every input
    /// has begun (dropping its oldest beyond the hold bounds).
    fn hold_until_open(&mut self, i: usize, header: EncodedPacket, data: &[u8]) -> Result<()> {
        let track = &mut self.tracks[i];
        let waiting = track.need_keyframe && !starts_gop(&header);
        let dropped = track.hold(header, data);
        if track.packets == 0 {
            track.dropped_at_start += dropped;
        }
        self.dropped += dropped;
        if waiting {
            tracing::debug!("`{}`: waiting for a keyframe to start on", track.input);
            return Ok(());
        }
        if dropped > 0 && !self.warned_hold {
            self.warned_hold = true;
            let waiting: Vec<&str> = self
                .tracks
                .iter()
                .filter(|t| t.first.is_none())
                .map(|t| t.input.as_str())
                .collect();
            tracing::warn!(
                "still no packet on {}: dropping the oldest of `{}` beyond {HOLD_SECONDS} s",
                waiting.join(", "),
                self.tracks[i].input
            );
        }
        self.try_open()
    }

    pub fn close_input(&mut self, input: &str) -> Result<()> {
        let i = self.track_index(input)?;
        self.tracks[i].closed = true;
        if self.split_track() == Some(i) && self.is_writing() {
            // Nothing more will catch up with what is held ahead of it.
            self.release_ahead(f64::INFINITY)?;
        }
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
        if !matches!(self.state, Recording::Idle)
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
        // a restarted mux's first file starts at its first packet, a
        // session's at its keyframe.
        let session = self.start_at.is_some();
        let offset = if let Some(at) = self.session_offset() {
            at
        } else if self.next_part == 0 {
            0.0
        } else {
            self.tracks
                .iter()
                .filter_map(|t| t.held.front().map(|(p, _)| start_seconds(p)))
                .fold(f64::INFINITY, f64::min)
        };
        self.open_part(if offset.is_finite() { offset } else { 0.0 })?;
        if let Recording::Writing { part, .. } = &mut self.state {
            part.session = session;
        }
        // Held packets in decoding-time order across tracks, as the
        // interleaver expects them.
        let now_ns = self.now_ns.take();
        while let Some(i) = self.earliest_held() {
            let (header, data) = self.tracks[i].held.pop_front().expect("track has a packet");
            self.tracks[i].held_bytes -= data.len();
            self.route(i, header, &data)?;
        }
        self.now_ns = now_ns;
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
                // Named after its input (program, cam1, audio), so an editor
                // shows which track is which.
                let mut title = ffmpeg_next::Dictionary::new();
                title.set("title", &t.input);
                if container == "mp4" {
                    // MP4 keeps a track's name in its handler box.
                    title.set("handler_name", &t.input);
                }
                out.stream_mut(s).expect("just added").set_metadata(title);
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
        self.state = Recording::Writing {
            split: Split::None,
            part: Box::new(Part {
                index,
                path,
                file,
                out,
                _named: named,
                offset,
                span: None,
                payload_bytes: 0,
                chapters: Vec::new(),
                session: false,
            }),
        };
        self.next_part = index + 1;
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
        let Recording::Writing { part, .. } = &mut self.state else {
            panic!("written once open");
        };
        let t = &mut self.tracks[i];
        let Some((index, stream_tb)) = t.stream else {
            // A track that had ended when this part began.
            self.dropped += 1;
            return Ok(());
        };
        if part.session && start_seconds(header) < part.offset - 1e-6 {
            // Captured after a start's instant but before its keyframe.
            self.skipped += 1;
            return Ok(());
        }
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
        if let Some(now_ns) = self.now_ns.filter(|_| header.capture_ns > 0) {
            let held_s = now_ns.saturating_sub(header.capture_ns) as f64 / 1e9;
            self.max_latency_s = self.max_latency_s.max(held_s);
        }
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
            self.split_end = Some(self.split_end.map_or(end, |e| e.max(end)));
            part.span = Some(match part.span {
                Some((s, e)) => (s.min(start), e.max(end)),
                None => (start, end),
            });
            self.place_chapters(header);
        }
        Ok(())
    }

    /// Writes the current part's trailer and makes it a normal file (MP4:
    /// one index, before the media with `faststart`).
    fn close_part(&mut self) -> Result<()> {
        let Some(mut part) = self.take_part() else {
            return Ok(());
        };
        let shown = part.path.display().to_string();
        let end = part.span.map_or(0.0, |(_, e)| e - part.offset);
        if self.settings.container != "mp4" {
            // MKV/WebM write their chapters at the trailer; an MP4's go in
            // when it is finalized below.
            add_chapters(&mut part.out, &part.chapters, end)?;
        }
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
            let chapters = &part.chapters;
            finalize::rewrite(&part.path, "mp4", self.settings.faststart, None, chapters).map_err(
                |e| {
                    e.context(format!(
                    "{shown} stays a fragmented MP4 (it plays; `runtime recover {shown}` retries)"
                ))
                },
            )?;
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
        self.chapters_closed += part.chapters.len();
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
        let Some(part) = self.take_part() else {
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
        match finalize::rewrite(&part.path, "mp4", self.settings.faststart, None, &[]) {
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
        self.part()?;
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
        let current = self.part().map_or(0, |p| p.file.size());
        self.parts.iter().map(|p| p.bytes).sum::<u64>() + current
    }

    pub fn is_writing(&self) -> bool {
        self.part().is_some()
    }

    /// Whether a session records: a file is open, or a start waits for its
    /// keyframe (`false`: standby, or stopped at a limit).
    pub fn is_recording(&self) -> bool {
        // Idle: a start waits for its keyframe, or the first file for every track.
        self.is_writing() || matches!(self.state, Recording::Idle)
    }

    /// Chapters placed in every file so far.
    pub fn chapters(&self) -> usize {
        self.chapters_closed + self.part().map_or(0, |p| p.chapters.len())
    }

    /// The file being written, or the path of the first one.
    pub fn current_path(&self) -> PathBuf {
        self.part().map_or_else(
            || output::part_path(&self.settings.base, self.next_part),
            |p| p.path.clone(),
        )
    }

    /// Closes the last part (writing what a pending split held back).
    /// Returns the one-line summary.
    pub fn finish(&mut self) -> Result<String> {
        if !self.is_writing() && self.parts.is_empty() {
            if !self.settings.recording && self.start_at.is_none() {
                // Recording on command, and no session recorded anything.
                return Ok(format!(
                    "nothing recorded (recording: false and no start): {} not written",
                    self.current_path().display()
                ));
            }
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
        if self.is_writing() {
            if matches!(
                self.state,
                Recording::Writing {
                    split: Split::At { .. },
                    ..
                }
            ) {
                // The split point was found: the held packets begin the next part.
                for t in &mut self.tracks {
                    t.closed = true;
                }
                self.split_when_reached()?;
            }
            self.flush_split_hold(None)?;
            self.release_ahead(f64::INFINITY)?;
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

    #[test]
    fn sizes_read_well() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(5 << 20), "5.00 MiB");
    }
}
