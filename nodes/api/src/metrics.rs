//! The names of the node-specific metrics (`NodeStats::metrics`) the
//! built-in nodes publish and the runtime, its status line, its report and
//! the benches read: each written once, here, with the kinds that publish it
//! and what it means. `runtime nodes KIND` lists a kind's metrics from
//! [`ONE`] and [`PER_INPUT`]; `docs/metrics.md` lists them all (a test
//! checks that it names each one, with its publishers).
//!
//! A custom node may publish metrics of its own under other names
//! (`node.metrics().set("frames", ..)`); one that publishes a name from here
//! should mean the same by it (`dropped`, `bitrate_bps`, ... show on the
//! status line).

/// One metric: its name, the kinds that publish it and what it means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricSpec {
    /// The name, or for a per-input metric its stem (see [`per_input`]).
    pub name: &'static str,
    /// One per input of the node, named [`per_input`]`(name, input)`.
    pub per_input: bool,
    /// The kinds that publish it (`testkit`: the test node).
    pub published_by: &'static [&'static str],
    /// What it means, from the constant's doc comment (one line per line of
    /// the comment).
    pub doc: &'static str,
}

impl MetricSpec {
    /// The name as users see it: `latency_p50_ms_<input>` for a per-input one.
    pub fn display_name(&self) -> String {
        if self.per_input {
            per_input(self.name, "<input>")
        } else {
            self.name.to_string()
        }
    }

    /// The doc comment as one line.
    pub fn doc_line(&self) -> String {
        self.doc.split_whitespace().collect::<Vec<_>>().join(" ")
    }
}

/// Declares metric names as documented `&str` constants, and `$list`, the
/// [`MetricSpec`] of each (the doc comment is the spec's `doc`).
macro_rules! metric_names {
    (
        $(#[$list_doc:meta])* $list:ident (per_input: $per_input:literal);
        $( $(#[doc = $doc:literal])* $name:ident = $value:literal by [$($kind:literal),+]; )*
    ) => {
        $( $(#[doc = $doc])* pub const $name: &str = $value; )*
        $(#[$list_doc])*
        pub const $list: &[MetricSpec] = &[$(MetricSpec {
            name: $name,
            per_input: $per_input,
            published_by: &[$($kind),+],
            doc: concat!($($doc, "\n"),*),
        }),*];
    };
}

metric_names! {
    /// Every metric of one name.
    ONE (per_input: false);

    // Read by the runtime (status line, report, restarts); the recorder
    // library sums some of these and the ones below for its statistics.

    /// Frames or packets the node dropped itself, beyond what its input
    /// queues dropped (microphone: device overruns; screen: frame slots
    /// with no grab, the grabber having fallen behind; sync: frames and audio
    /// held longer than `buffer_ms` while waiting for the common start; mux:
    /// packets it could not write, e.g. before a track's keyframe; stream,
    /// hls: packets not sent, from a full queue or while down;
    /// replay-buffer: packets of a keyframe interval larger than `max_size`;
    /// audio-mix: input samples that came after their stretch was mixed).
    /// The status line's and the report's `dropped` add it to the queues' drops.
    DROPPED = "dropped" by ["microphone", "screen", "sync", "mux", "stream", "hls", "replay-buffer", "audio-mix"];
    /// Bits per second of media encoded or written so far; on the status
    /// line in kb/s.
    BITRATE_BPS = "bitrate_bps" by ["video-encode", "audio-encode", "mux", "stream", "hls"];
    /// How much later the sound plays than the picture captured at the same
    /// instant, ms (negative: earlier); on the status line (`A/V`).
    AV_OFFSET_MS = "av_offset_ms" by ["sync"];
    /// The audio clock's estimated drift against the capture clock, ppm; on
    /// the status line once at least 1 ppm.
    DRIFT_PPM = "drift_ppm" by ["sync"];
    /// The share of frames the input queue skipped in the last second, %; on
    /// the status line (`OVERLOADED`) when above 0.
    OVERLOADED_PCT = "overloaded_pct" by ["video-encode"];
    /// Frames or packets lost across the node's own restarts, published by a
    /// node without consumers to measure it; the report takes the larger of
    /// this and what the node's consumers measured.
    RESTART_LOST_FRAMES = "restart_lost_frames" by ["mux"];
    /// The same loss in seconds of media (of the longest track).
    RESTART_LOST_S = "restart_lost_s" by ["mux"];

    /// How much faster this machine's clock runs than the run's reference
    /// machine's, ppm, as its runtime estimates it (a graph spread over
    /// machines: the sources of the other machines publish it); the status
    /// line shows the runtime's own figure (`clock`).
    CLOCK_RATE_PPM = "clock_rate_ppm" by ["camera", "screen", "microphone", "app-video", "app-audio"];
    /// How far the source's capture clock may be off the reference
    /// machine's, ms: half the best round trip of the latest measurements
    /// plus their scatter about the fitted rate.
    CLOCK_UNCERTAINTY_MS = "clock_uncertainty_ms" by ["camera", "screen", "microphone", "app-video", "app-audio"];
    /// Frames the application submitted and the node sent.
    SUBMITTED = "submitted" by ["app-video", "app-audio"];
    /// Frames the application submitted that were refused: of another size,
    /// format, rate, channel count or layout, or with a timestamp going
    /// backwards.
    REJECTED = "rejected" by ["app-video", "app-audio"];
    /// Submitted frames copied into shared memory (a frame the application
    /// drew in shared memory itself is sent without a copy).
    SUBMIT_COPIES = "submit_copies" by ["app-video", "app-audio"];
    /// Audio samples submitted (per channel).
    SAMPLES = "samples" by ["app-audio"];

    /// Frames decoded straight into the output's shared memory (sent with
    /// no copy).
    IN_PLACE = "in_place" by ["camera"];

    /// How far a realtime test source has fallen behind real time, s: audio
    /// it never produced.
    BEHIND_S = "behind_s" by ["microphone"];

    /// Frames dropped to keep a constant frame rate (their slot was sent).
    DROPPED_CFR = "dropped_cfr" by ["video-normalize"];
    /// Frames sent twice to fill a slot of the constant frame rate.
    DUPLICATED = "duplicated" by ["video-normalize"];
    /// Frames forwarded unchanged (no conversion, no copy).
    PASSTHROUGH = "passthrough" by ["video-normalize"];
    /// Corrupt MJPEG frames, shown as the previous picture (video-normalize);
    /// packets the decoder refused, their pictures lost (video-decode).
    CORRUPT = "corrupt" by ["video-normalize", "video-decode"];
    /// Pictures decoded and sent.
    DECODED = "decoded" by ["video-decode"];

    /// The gain applied to reach the loudness target, dB.
    GAIN_DB = "gain_db" by ["audio-normalize"];
    /// The measured loudness, LUFS.
    LOUDNESS_LUFS = "loudness_lufs" by ["audio-normalize"];
    /// The smallest gain the limiter applied lately, dB.
    LIMITER_DB = "limiter_db" by ["audio-normalize"];
    /// The peak level of the audio sent, over every channel, in the last
    /// half second of audio, dBFS (silence: -100); for level meters.
    LEVEL_PEAK_DBFS = "level_peak_dbfs" by ["audio-normalize", "audio-mix", "noise-suppress"];
    /// The RMS level of the same half second, dBFS (silence: -100).
    LEVEL_RMS_DBFS = "level_rms_dbfs" by ["audio-normalize", "audio-mix", "noise-suppress"];

    /// The most audio noise suppression held back in the last half second,
    /// ms: RNNoise's 10 ms look-ahead, the wait to fill its 10 ms frame and
    /// to make a piece to send (the timestamps sent are the input's:
    /// compensated).
    PROCESSING_LATENCY_MS = "processing_latency_ms" by ["noise-suppress"];

    /// 100 when picture and sound are together, down to 0 at 40 ms or more
    /// apart.
    SYNC_SCORE = "sync_score" by ["sync"];
    /// The drift correction applied by resampling, ppm.
    DRIFT_CORRECTION_PPM = "drift_correction_ppm" by ["sync"];
    /// Jumps of the audio clock beyond `tolerance_ms` (hard resyncs).
    AUDIO_CLOCK_JUMPS = "audio_clock_jumps" by ["sync"];
    /// How far apart in capture time the first frames (and audio) placed at
    /// pts 0 are across all tracks, ms.
    START_SPREAD_MS = "start_spread_ms" by ["sync"];
    /// Times sync asked the encoders of its packet inputs for the keyframe
    /// every camera's track starts on (more than 1: a request came late).
    KEYFRAME_REQUESTS = "keyframe_requests" by ["sync"];
    /// Samples of silence put into audio gaps.
    AUDIO_GAP_FILLS = "audio_gap_fills" by ["sync", "audio-mix"];
    /// Samples of overlapping audio trimmed.
    AUDIO_OVERLAP_TRIMS = "audio_overlap_trims" by ["sync", "audio-mix"];
    /// Video frames dropped because their slot was already taken.
    VIDEO_DUPS_DROPPED = "video_dups_dropped" by ["sync"];
    /// Video frame slots left empty.
    VIDEO_GAPS = "video_gaps" by ["sync"];
    /// Video frames captured before the common start.
    VIDEO_BEFORE_START = "video_before_start" by ["sync"];
    /// Audio samples captured before the common start.
    AUDIO_BEFORE_START = "audio_before_start" by ["sync"];
    /// 1 while the recording is paused (sync's live param `paused`), else 0.
    PAUSED = "paused" by ["sync"];
    /// Seconds cut from the timeline by pauses, the one under way included.
    PAUSED_S = "paused_s" by ["sync"];
    /// Video frames a pause left out, all cameras (not counted as dropped).
    PAUSED_FRAMES = "paused_frames" by ["sync"];
    /// Audio samples a pause left out (not counted as dropped).
    PAUSED_SAMPLES = "paused_samples" by ["sync"];

    /// Program frames made.
    COMPOSED = "composed" by ["compose"];
    /// Tiles that repeated an input's previous frame.
    STALE_TILES = "stale_tiles" by ["compose"];
    /// Frames made without waiting for a late input.
    FORCED = "forced" by ["compose"];
    /// Input frames older than the last composed one, dropped.
    LATE_DROPPED = "late_dropped" by ["compose"];
    /// Input frames replaced by a newer one of the same input before they
    /// were used, or between two of the output's slots.
    SUPERSEDED = "superseded" by ["compose"];

    /// Speed preset switches made by `degrade`.
    PRESET_SWITCHES = "preset_switches" by ["video-encode"];
    /// How many presets faster than the configured one it runs.
    DEGRADE_STEPS = "degrade_steps" by ["video-encode"];
    /// Keyframes encoded.
    KEYFRAMES = "keyframes" by ["video-encode"];
    /// The most frames the encoder held before their packet came out
    /// (lookahead, B-frames, frame threads): lost in a crash of everything.
    DELAY_FRAMES = "delay_frames" by ["video-encode"];
    /// The same delay in seconds of media.
    DELAY_S = "delay_s" by ["video-encode"];

    /// Audio samples encoded (per channel).
    SAMPLES_IN = "samples_in" by ["audio-encode"];

    /// 1 while a stream is connected to its peer, else 0.
    CONNECTED = "connected" by ["stream"];
    /// Connections made again after one was lost.
    RECONNECTS = "reconnects" by ["stream"];
    /// Seconds a stream spent down after its first connection (outages).
    OUTAGE_S = "outage_s" by ["stream"];
    /// Seconds of media an output did not send: dropped from its full
    /// queue, or while it was down (video; audio in an output without video).
    LOST_S = "lost_s" by ["stream", "hls"];
    /// Seconds of media waiting in an output's own queue.
    QUEUE_S = "queue_s" by ["stream", "hls"];

    /// Bytes on disk: the closed parts and the current one (stream: bytes sent).
    BYTES_WRITTEN = "bytes_written" by ["mux", "stream", "hls"];
    /// Media written, from the first to the last timestamp of any track, s.
    DURATION_S = "duration_s" by ["mux"];
    /// The most a crash of everything now loses at the end, s:
    /// `fragment_duration`, one packet and the longest capture-to-write
    /// delay seen (what the mux holds back at a split counts).
    CRASH_LOSS_BOUND_S = "crash_loss_bound_s" by ["mux"];
    /// Packets not written because `on_limit: stop` ended the recording.
    DISCARDED = "discarded" by ["mux"];
    /// Files (numbered parts) written so far.
    FILES = "files" by ["mux"];
    /// 1 while a recording session records (a file open, or a start
    /// waiting for its keyframe), 0 in standby (`recording: false`).
    RECORDING = "recording" by ["mux"];
    /// Packets let go because no session was recording them (standby,
    /// before a start's keyframe, after a stop): as asked, not lost.
    SKIPPED = "skipped" by ["mux"];
    /// Chapters placed in the files so far.
    CHAPTERS = "chapters" by ["mux"];

    /// Seconds of media in the replay buffer now, from its first video
    /// keyframe to its newest packet.
    REPLAY_BUFFERED_S = "replay_buffered_s" by ["replay-buffer"];
    /// Bytes of packets in the replay buffer now; never above `max_size`.
    REPLAY_BUFFERED_BYTES = "replay_buffered_bytes" by ["replay-buffer"];
    /// Saves written to a file.
    REPLAY_SAVES = "replay_saves" by ["replay-buffer"];
    /// Saves refused: asked while another was under way, or with nothing
    /// buffered yet.
    REPLAY_SAVES_REFUSED = "replay_saves_refused" by ["replay-buffer"];
    /// Saves that failed while being written (the file is removed).
    REPLAY_SAVES_FAILED = "replay_saves_failed" by ["replay-buffer"];
    /// CPU time a source spent streaming (not starting up), s; for the
    /// transport bench.
    STREAM_CPU_SECONDS = "stream_cpu_seconds" by ["testkit"];
    /// Wall time a source spent streaming, s.
    STREAM_SECONDS = "stream_seconds" by ["testkit"];
}

metric_names! {
    /// Every per-input metric, by its stem: the metric is
    /// [`per_input`]`(stem, input)`, e.g. `latency_p50_ms_video`.
    PER_INPUT (per_input: true);

    /// Packets written from the input.
    PACKETS = "packets" by ["mux"];
    /// Capture → mux latency of the input's packets, median, ms.
    /// Stream, hls: capture → handed to the network or written.
    LATENCY_P50_MS = "latency_p50_ms" by ["mux", "stream", "hls"];
    /// The same latency's 99th percentile, ms.
    LATENCY_P99_MS = "latency_p99_ms" by ["mux", "stream", "hls"];
    /// The input's packets in no file after a restart of the mux.
    LOST_PACKETS = "lost_packets" by ["mux"];
    /// The same loss in seconds of media.
    LOST_SECONDS = "lost_seconds" by ["mux"];
    /// Capture time of the track's first frame (or audio sample) sent, from
    /// the common start T0, ms (the track is named after its input and
    /// output).
    FIRST_OFFSET_MS = "first_offset_ms" by ["sync"];
    /// How far a packet camera's clock drifted from the common timeline
    /// since its track began, ms, smoothed: its packets' capture times minus
    /// their places, less the offset its start keyframe had
    /// (`first_offset_ms`). Packets are never dropped or repeated to
    /// correct it.
    VIDEO_DRIFT_MS = "video_drift_ms" by ["sync"];
    /// How much later the audio track plays than the first camera's picture
    /// captured at the same instant, ms (`av_offset_ms` is this for the
    /// first audio track).
    TRACK_AV_OFFSET_MS = "track_av_offset_ms" by ["sync"];
    /// The audio track's clock drift against the capture clock, ppm (each
    /// microphone runs on its own crystal).
    TRACK_DRIFT_PPM = "track_drift_ppm" by ["sync"];
    /// The drift correction applied to the audio track by resampling, ppm.
    TRACK_DRIFT_CORRECTION_PPM = "track_drift_correction_ppm" by ["sync"];
    /// The peak level of the input in the mix (after its gain and mute),
    /// over every channel, in the last half second of audio, dBFS
    /// (silence: -100).
    INPUT_PEAK_DBFS = "input_peak_dbfs" by ["audio-mix"];
    /// The RMS level of the same half second, dBFS (silence: -100).
    INPUT_RMS_DBFS = "input_rms_dbfs" by ["audio-mix"];
}

/// The name of the per-input metric `stem` for `input`: `stem_input`.
pub fn per_input(stem: &str, input: &str) -> String {
    format!("{stem}_{input}")
}

/// Every metric, of one name or per input.
pub fn all() -> impl Iterator<Item = &'static MetricSpec> {
    ONE.iter().chain(PER_INPUT)
}

/// The metrics `kind` publishes, in declaration order.
pub fn published_by(kind: &str) -> impl Iterator<Item = &'static MetricSpec> + '_ {
    all().filter(move |m| m.published_by.contains(&kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The file that lists every metric for users.
    const DOCS: &str = include_str!("../../../docs/metrics.md");

    /// The table rows of `docs/metrics.md`: name and publishers.
    fn documented() -> Vec<(String, String)> {
        DOCS.lines()
            .filter_map(|l| {
                let mut cells = l.strip_prefix("| `")?.split(" | ");
                let name = cells.next()?.strip_suffix('`')?.to_string();
                Some((name, cells.next()?.to_string()))
            })
            .collect()
    }

    #[test]
    fn every_metric_is_documented_with_its_publishers() {
        let documented = documented();
        for m in all() {
            let by = m.published_by.join(", ");
            assert!(
                documented.contains(&(m.display_name(), by.clone())),
                "docs/metrics.md has no row `| `{}` | {by} | ...`",
                m.display_name()
            );
        }
    }

    #[test]
    fn every_documented_metric_exists() {
        let names: Vec<String> = all().map(MetricSpec::display_name).collect();
        for (name, _) in documented() {
            assert!(
                names.contains(&name),
                "docs/metrics.md: `{name}` is no metric of node_api::metrics"
            );
        }
    }

    #[test]
    fn names_are_unique_and_documented() {
        let mut names: Vec<&str> = all().map(|m| m.name).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(names.len(), before);
        assert!(all().all(|m| !m.doc_line().is_empty()));
    }

    #[test]
    fn per_input_names_end_in_the_input() {
        assert_eq!(per_input(LATENCY_P50_MS, "video"), "latency_p50_ms_video");
        let p50 = PER_INPUT.iter().find(|m| m.name == LATENCY_P50_MS).unwrap();
        assert_eq!(p50.display_name(), "latency_p50_ms_<input>");
        assert_eq!(
            p50.doc_line(),
            "Capture → mux latency of the input's packets, median, ms. Stream, hls: capture → handed to the network or written."
        );
    }

    #[test]
    fn a_kind_lists_what_it_publishes() {
        let names: Vec<&str> = published_by("video-encode").map(|m| m.name).collect();
        assert_eq!(
            names,
            [
                BITRATE_BPS,
                OVERLOADED_PCT,
                PRESET_SWITCHES,
                DEGRADE_STEPS,
                KEYFRAMES,
                DELAY_FRAMES,
                DELAY_S
            ]
        );
    }
}
