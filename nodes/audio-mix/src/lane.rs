//! One input of the mix: its audio converted to float at the mix's rate and
//! placed on the mix's timeline by capture time, with its gain, mute and
//! pan, and its level meter.

use anyhow::{Context, Result};
use ffmpeg_next::format::{sample::Type, Sample};
use node_api::AudioFrame;
use node_media::audio::{
    default_layout, AudioSpec, Level, LevelMeter, Planes, PlanesMut, Resampler,
};

/// How far (samples at the mix's rate) an input's capture times may wander
/// from the sample count before the lane follows them: a real gap is filled
/// with silence, an overlap trimmed. 20 ms at 48 kHz: above a device's
/// timestamp jitter, below what an ear takes for an echo.
pub const TOLERANCE_MS: u64 = 20;

/// Where an input is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LaneState {
    /// Nothing received yet.
    Waiting,
    Open,
    /// Its stream ended: what it holds is mixed, then it is silence.
    Closed,
}

/// What placing a frame did beyond appending it, in samples.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Placed {
    pub gap_filled: u64,
    pub overlap_trimmed: u64,
    /// Samples for a stretch already mixed: dropped.
    pub late: u64,
}

pub struct Lane {
    pub name: String,
    pub state: LaneState,
    /// Channels held: 1 for a mono input (it goes to every output channel),
    /// else the mix's.
    pub channels: usize,
    resampler: Option<Resampler>,
    conv: Vec<u8>,
    /// Interleaved samples of positions `next - len .. next`.
    pub buf: Vec<f32>,
    /// The mix position after the last sample held.
    pub next: u64,
    /// Gain asked for and gain applied at the end of the last block (linear).
    pub gain: f32,
    pub applied: f32,
    pub muted: bool,
    /// −1..=1.
    pub pan: f32,
    pub meter: LevelMeter,
    /// The level of the last complete meter window, after the fader.
    pub last_level: Option<Level>,
    pub peak_metric: String,
    pub rms_metric: String,
}

impl Lane {
    pub fn new(name: &str) -> Lane {
        Lane {
            name: name.to_string(),
            state: LaneState::Waiting,
            channels: 0,
            resampler: None,
            conv: Vec::new(),
            buf: Vec::new(),
            next: 0,
            gain: 1.0,
            applied: 1.0,
            muted: false,
            pan: 0.0,
            meter: LevelMeter::default(),
            last_level: None,
            peak_metric: node_api::metrics::per_input(node_api::metrics::INPUT_PEAK_DBFS, name),
            rms_metric: node_api::metrics::per_input(node_api::metrics::INPUT_RMS_DBFS, name),
        }
    }

    /// Samples held.
    pub fn held(&self) -> u64 {
        (self.buf.len() / self.channels.max(1)) as u64
    }

    /// The mix position of the first sample held.
    pub fn start(&self) -> u64 {
        self.next - self.held()
    }

    /// Converts a frame to float at `rate` (mono stays mono, anything else
    /// goes to `out_channels`); the samples converted, in `self.conv`.
    fn convert(
        &mut self,
        h: &AudioFrame,
        payload: &[u8],
        rate: u32,
        out_channels: u16,
    ) -> Result<usize> {
        let spec = AudioSpec::of_message(h, payload)?;
        let samples = h.samples as usize;
        let channels = if h.channels == 1 { 1 } else { out_channels };
        if self.resampler.as_ref().is_none_or(|r| *r.input() != spec) {
            // First frame, or the input's format changed: a new converter.
            let out = AudioSpec::new(
                Sample::F32(Type::Packed),
                rate,
                channels,
                default_layout(channels),
            );
            self.resampler = Some(Resampler::new(spec, out).context("converting an input")?);
            self.channels = channels as usize;
            self.buf.clear();
        }
        let r = self.resampler.as_mut().expect("just set");
        let out_spec = *r.output();
        let cap = r.max_output(samples);
        let bytes = out_spec.payload_bytes(cap);
        if self.conv.len() < bytes {
            self.conv.resize(bytes, 0);
        }
        r.convert(
            &Planes::payload(payload, &spec, samples)?,
            &mut PlanesMut::payload(&mut self.conv, &out_spec, cap)?,
        )
    }

    /// Takes a frame whose first sample belongs at mix position `at`
    /// (from its capture time); `mixed`: positions before it are already
    /// sent. Continuous audio is appended where the last frame ended; only
    /// a jump beyond [`TOLERANCE_MS`] moves it.
    pub fn push(
        &mut self,
        h: &AudioFrame,
        payload: &[u8],
        mut at: i64,
        mixed: u64,
        rate: u32,
        out_channels: u16,
    ) -> Result<Placed> {
        let n = self.convert(h, payload, rate, out_channels)?;
        let tolerance = (rate as u64 * TOLERANCE_MS / 1000) as i64;
        let waiting = self.state == LaneState::Waiting;
        self.state = LaneState::Open;
        let next = self.next as i64;
        // Continuous audio goes where the last frame ended.
        if !waiting && (at - next).abs() <= tolerance {
            at = next;
        }
        // Never before what is held (an overlap) nor what is mixed (late).
        let floor = if waiting { mixed } else { self.next.max(mixed) } as i64;
        let skip = (floor - at).clamp(0, n as i64);
        let late = (mixed as i64 - at).clamp(0, skip);
        let mut placed = Placed {
            gap_filled: 0,
            overlap_trimmed: (skip - late) as u64,
            late: late as u64,
        };
        at += skip;
        if !waiting && at > next {
            placed.gap_filled = (at - next) as u64;
        }
        if self.held() == 0 || waiting {
            // Nothing held: the silence before `at` needs no samples.
            self.buf.clear();
        } else if at > next {
            let zeros = placed.gap_filled as usize * self.channels;
            self.buf.resize(self.buf.len() + zeros, 0.0);
        }
        self.next = at.max(0) as u64;
        self.append(skip as usize, n);
        Ok(placed)
    }

    /// Appends converted samples `skip..n` from `conv`.
    fn append(&mut self, skip: usize, n: usize) {
        let floats = self.conv[skip * self.channels * 4..n * self.channels * 4]
            .chunks_exact(4)
            .map(|b| f32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
        self.buf.extend(floats);
        self.next += (n - skip) as u64;
    }

    /// End of its stream: what the converter still holds is appended (a
    /// replay loses nothing), then the lane is silence.
    pub fn close(&mut self) -> Result<()> {
        self.state = LaneState::Closed;
        // Out while it drains into `conv`; nothing converts after the end.
        let Some(mut r) = self.resampler.take() else {
            return Ok(());
        };
        let out_spec = *r.output();
        let cap = r.max_output(0).max(256);
        if self.conv.len() < out_spec.payload_bytes(cap) {
            self.conv.resize(out_spec.payload_bytes(cap), 0);
        }
        loop {
            let n = r.flush(&mut PlanesMut::payload(&mut self.conv, &out_spec, cap)?)?;
            if n == 0 {
                return Ok(());
            }
            self.append(0, n);
        }
    }

    /// Lets go of everything before mix position `pos`.
    pub fn release(&mut self, pos: u64) {
        let drop = pos.saturating_sub(self.start()).min(self.held()) as usize;
        self.buf.drain(..drop * self.channels);
        if self.held() == 0 && self.next < pos {
            self.next = pos;
        }
    }
}
