//! One FFmpeg output fed encoded packets: an RTMP/SRT connection, an HLS
//! playlist, a replay file. Every blocking FFmpeg call (connecting, writing
//! into a stalled socket) runs under a deadline through FFmpeg's interrupt
//! callback, so a dead peer costs at most the deadline, never a hang.

use std::ffi::{c_int, c_void, CString};
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use ffmpeg_next::format::context::Output;
use ffmpeg_next::{ffi, Dictionary, Rational};
use node_api::EncodedPacket;
use node_media::packet as pk;

/// When a blocking FFmpeg call gives up: a deadline (ms on a monotonic
/// clock; 0: none) and a stop flag, read by FFmpeg's interrupt callback.
#[derive(Default)]
pub struct Watchdog {
    deadline_ms: AtomicU64,
    stop: AtomicBool,
}

impl Watchdog {
    /// The calls from now on give up after `limit`.
    pub fn arm(&self, limit: Duration) {
        let deadline = monotonic_ms() + limit.as_millis() as u64;
        self.deadline_ms.store(deadline.max(1), Ordering::Relaxed);
    }

    /// Every call from now on gives up at once (the node is ending).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn expired(&self) -> bool {
        if self.stopped() {
            return true;
        }
        let deadline = self.deadline_ms.load(Ordering::Relaxed);
        deadline != 0 && monotonic_ms() > deadline
    }
}

fn monotonic_ms() -> u64 {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64
}

extern "C" fn interrupted(opaque: *mut c_void) -> c_int {
    // SAFETY: `opaque` points into the `Arc<Watchdog>` the sink holds for as
    // long as its context lives.
    let watchdog = unsafe { &*(opaque as *const Watchdog) };
    c_int::from(watchdog.expired())
}

/// Where and how to open a sink.
#[derive(Debug, Clone, Default)]
pub struct Target {
    /// A file path or a URL, as FFmpeg opens it.
    pub url: String,
    /// The same with its secrets (stream key, passphrase) masked: for messages.
    pub shown: String,
    /// FFmpeg's muxer name: flv, mpegts, hls, mp4, matroska.
    pub format: &'static str,
    /// Options of the protocol (given when the connection opens).
    pub protocol_options: Vec<(&'static str, String)>,
    /// Options of the muxer (given with the header).
    pub muxer_options: Vec<(&'static str, String)>,
}

struct SinkTrack {
    index: usize,
    time_base: Rational,
    last_dts: Option<i64>,
}

/// An open output: header written, packets going in.
pub struct Sink {
    out: Output,
    tracks: Vec<SinkTrack>,
    /// The stream time (seconds) that is 0 in the output.
    offset_s: f64,
    shown: String,
    watchdog: Arc<Watchdog>,
    pub bytes: u64,
}

// SAFETY: the context is used by one thread at a time (the one owning the sink).
unsafe impl Send for Sink {}

impl Sink {
    /// Opens `target` with one stream per track (`tracks`: a packet of each,
    /// for its codec parameters) and writes the header; the media at stream
    /// time `offset_s` is at 0 in the output. Blocking calls give up when
    /// `watchdog` says so (arm it before).
    pub fn open(
        target: &Target,
        tracks: &[&EncodedPacket],
        offset_s: f64,
        watchdog: Arc<Watchdog>,
    ) -> Result<Sink> {
        let mut out = alloc_output(target, &watchdog)?;
        let mut sink_tracks = Vec::new();
        for first in tracks {
            let index = pk::add_stream(&mut out, target.format, first)?;
            sink_tracks.push(SinkTrack {
                index,
                time_base: Rational::new(0, 1),
                last_dts: None,
            });
        }
        let mut opts = Dictionary::new();
        for (k, v) in &target.muxer_options {
            opts.set(k, v);
        }
        out.write_header_with(opts)
            .map_err(|e| anyhow!("{}: cannot start the stream: {e}", target.shown))?;
        for t in &mut sink_tracks {
            t.time_base = out.stream(t.index).expect("stream added").time_base();
        }
        Ok(Sink {
            out,
            tracks: sink_tracks,
            offset_s,
            shown: target.shown.clone(),
            watchdog,
            bytes: 0,
        })
    }

    /// Writes a packet of track `track`. A packet before the output's start,
    /// or going back in time, is left out (returns false).
    pub fn write(&mut self, track: usize, header: &EncodedPacket, data: &[u8]) -> Result<bool> {
        let t = &mut self.tracks[track];
        let shift = (self.offset_s * header.time_base.den as f64
            / header.time_base.num.max(1) as f64)
            .round() as i64;
        let dts = if header.dts == pk::NO_PTS {
            header.pts
        } else {
            header.dts
        };
        if pk::start_seconds(header) < self.offset_s - 1e-6 || t.last_dts.is_some_and(|l| dts <= l)
        {
            return Ok(false);
        }
        let mut pkt = pk::to_ffmpeg(header, data);
        pkt.set_pts((header.pts != pk::NO_PTS).then_some(header.pts - shift));
        pkt.set_dts((header.dts != pk::NO_PTS).then_some(header.dts - shift));
        pkt.set_stream(t.index);
        pkt.rescale_ts(pk::to_rational(header.time_base), t.time_base);
        pkt.write_interleaved(&mut self.out)
            .map_err(|e| anyhow!("{}: {}", self.shown, describe(e, &self.watchdog)))?;
        t.last_dts = Some(dts);
        self.bytes += data.len() as u64;
        Ok(true)
    }

    /// Writes the trailer (HLS: the end of the playlist) and closes.
    pub fn finish(mut self) -> Result<()> {
        // Called directly: some muxers return a positive size on success,
        // which ffmpeg-next takes for an error.
        // SAFETY: a context whose header was written, not used afterwards.
        let ret = unsafe { ffi::av_write_trailer(self.out.as_mut_ptr()) };
        if ret < 0 {
            let e = ffmpeg_next::Error::from(ret);
            bail!("{}: finishing: {}", self.shown, describe(e, &self.watchdog));
        }
        Ok(())
    }
}

/// An error of a blocking call, saying when it was the deadline.
fn describe(e: ffmpeg_next::Error, watchdog: &Watchdog) -> String {
    if e == ffmpeg_next::Error::Exit && !watchdog.stopped() {
        "timed out (the peer stopped taking data)".into()
    } else {
        e.to_string()
    }
}

/// A muxer context for `target` with the watchdog as its interrupt
/// callback, its connection opened (unless the muxer opens its own files, as
/// HLS does).
fn alloc_output(target: &Target, watchdog: &Arc<Watchdog>) -> Result<Output> {
    let url = CString::new(target.url.as_str()).map_err(|_| anyhow!("NUL in the URL"))?;
    let format = CString::new(target.format).expect("format names have no NUL");
    let mut ps: *mut ffi::AVFormatContext = ptr::null_mut();
    // SAFETY: plain FFmpeg calls on pointers made here; the context is
    // wrapped (and freed by the wrapper) as soon as it exists.
    unsafe {
        let ret = ffi::avformat_alloc_output_context2(
            &mut ps,
            ptr::null_mut(),
            format.as_ptr(),
            url.as_ptr(),
        );
        if ret < 0 || ps.is_null() {
            bail!(
                "{}: {}",
                target.shown,
                ffmpeg_next::Error::from(ret.min(-1))
            );
        }
        (*ps).interrupt_callback = ffi::AVIOInterruptCB {
            callback: Some(interrupted),
            opaque: Arc::as_ptr(watchdog) as *mut c_void,
        };
        let out = Output::wrap(ps);
        if (*(*ps).oformat).flags & ffi::AVFMT_NOFILE == 0 {
            let mut opts = Dictionary::new();
            for (k, v) in &target.protocol_options {
                opts.set(k, v);
            }
            let mut raw = opts.disown();
            let ret = ffi::avio_open2(
                &mut (*ps).pb,
                url.as_ptr(),
                ffi::AVIO_FLAG_WRITE,
                &(*ps).interrupt_callback,
                &mut raw,
            );
            Dictionary::own(raw);
            if ret < 0 {
                let e = ffmpeg_next::Error::from(ret);
                bail!(
                    "{}: cannot connect: {}",
                    target.shown,
                    describe(e, watchdog)
                );
            }
        }
        Ok(out)
    }
}
