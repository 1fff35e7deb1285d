//! The mix, free of the node API so it can be tested directly: every input
//! placed on one timeline by capture time (position 0 is the earliest
//! capture time seen before the first block is mixed), summed block by
//! block with its gain, mute and pan.
//!
//! A block is mixed once every input still open has audio to its end. A
//! live mix does not wait longer than `latency` for one: once another input
//! is that far past the block, the block is mixed without the late one (its
//! audio for that stretch, if it comes, is dropped and counted). Replayed
//! (no_drop) inputs are always waited for. An input that ended is silence.

use anyhow::Result;
use node_api::AudioFrame;

use crate::lane::{Lane, LaneState, Placed};

/// A block mixed: `samples` per channel in [`Mixer::mixed`], starting at
/// mix position `pos`, captured at `capture_ns`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    pub pos: u64,
    pub samples: usize,
    pub capture_ns: u64,
}

pub struct Mixer {
    pub rate: u32,
    pub channels: u16,
    /// Samples per block, and the most a live mix waits for a late input.
    frame: u64,
    latency: u64,
    pub lanes: Vec<Lane>,
    /// Capture time of mix position 0.
    t0: Option<u64>,
    /// Positions before this one are mixed and sent.
    pos: u64,
    mix: Vec<f32>,
}

pub fn db_to_gain(db: f64) -> f32 {
    10f64.powf(db / 20.0) as f32
}

impl Mixer {
    pub fn new(names: &[String], rate: u32, channels: u16, frame: u64, latency: u64) -> Mixer {
        Mixer {
            rate,
            channels,
            frame: frame.max(1),
            latency,
            lanes: names.iter().map(|n| Lane::new(n)).collect(),
            t0: None,
            pos: 0,
            mix: Vec::with_capacity(frame as usize * channels as usize),
        }
    }

    pub fn lane(&self, name: &str) -> Option<usize> {
        self.lanes.iter().position(|l| l.name == name)
    }

    /// Positions mixed so far.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// The mix position of a capture time (the first one seen is 0).
    fn position_of(&mut self, capture_ns: u64) -> i64 {
        let t0 = *self.t0.get_or_insert(capture_ns);
        let delta = capture_ns as i128 - t0 as i128;
        let pos = (delta * self.rate as i128 * 2 + 1_000_000_000) / 2_000_000_000;
        pos as i64
    }

    /// Takes a frame of input `lane`.
    pub fn push(&mut self, lane: usize, h: &AudioFrame, payload: &[u8]) -> Result<Placed> {
        let mut at = self.position_of(h.capture_ns);
        if at < 0 && self.pos == 0 && self.lanes[lane].state == LaneState::Waiting {
            // Captured before the first capture time seen, and nothing is
            // mixed yet: the timeline starts here instead (an input that
            // arrives last may have started first).
            self.t0 = Some(h.capture_ns);
            for l in self
                .lanes
                .iter_mut()
                .filter(|l| l.state != LaneState::Waiting)
            {
                l.next += (-at) as u64;
            }
            at = 0;
        }
        let (pos, rate, channels) = (self.pos, self.rate, self.channels);
        self.lanes[lane].push(h, payload, at, pos, rate, channels)
    }

    /// Input `lane` ended.
    pub fn close(&mut self, lane: usize) -> Result<()> {
        self.lanes[lane].close()
    }

    /// How far (samples) input `lane` is ahead of the mix.
    pub fn ahead(&self, lane: usize) -> u64 {
        self.lanes[lane].next.saturating_sub(self.pos)
    }

    /// The samples of the next block, if it can be mixed now (`live`: the
    /// mix does not wait for a late input beyond its latency).
    fn ready(&self, live: bool) -> Option<usize> {
        self.t0?;
        let end = self.pos + self.frame;
        let furthest = self.lanes.iter().map(|l| l.next).max().unwrap_or(0);
        if self.lanes.iter().all(|l| l.state == LaneState::Closed) {
            let left = furthest.saturating_sub(self.pos);
            return (left > 0).then_some(left.min(self.frame) as usize);
        }
        let all_in = self.lanes.iter().all(|l| match l.state {
            LaneState::Closed => true,
            LaneState::Open => l.next >= end,
            LaneState::Waiting => false,
        });
        let waited_enough = live && furthest >= end + self.latency;
        (all_in || waited_enough).then_some(self.frame as usize)
    }

    /// Mixes the next block when it can be (see [`Mixer::ready`]); its
    /// samples are in [`Mixer::mixed`] until the next call.
    pub fn next_block(&mut self, live: bool) -> Option<Block> {
        let n = self.ready(live)?;
        let ch = self.channels as usize;
        self.mix.clear();
        self.mix.resize(n * ch, 0.0);
        let pos = self.pos;
        for lane in &mut self.lanes {
            add_lane(&mut self.mix, ch, lane, pos, n, self.rate);
            lane.release(pos + n as u64);
        }
        let t0 = self.t0.unwrap_or(0);
        let capture_ns = t0 + (pos as u128 * 1_000_000_000 / self.rate as u128) as u64;
        self.pos += n as u64;
        Some(Block {
            pos,
            samples: n,
            capture_ns,
        })
    }

    /// The samples of the last block mixed, interleaved.
    pub fn mixed(&self) -> &[f32] {
        &self.mix
    }
}

/// Adds what `lane` holds of positions `pos..pos + n` into `mix`, with its
/// gain (ramped from the last block's), mute and pan, and meters it.
fn add_lane(mix: &mut [f32], ch: usize, lane: &mut Lane, pos: u64, n: usize, rate: u32) {
    let lch = lane.channels.max(1);
    let from = lane.start().max(pos);
    let to = lane.next.min(pos + n as u64);
    let (g0, g1) = match lane.muted {
        true => (0.0, 0.0),
        false => (lane.applied, lane.gain),
    };
    lane.applied = lane.gain;
    let src: &[f32] = if from < to {
        let a = (from - lane.start()) as usize * lch;
        &lane.buf[a..a + (to - from) as usize * lch]
    } else {
        &[]
    };
    // What the lane does not cover is silence, to its meter too.
    lane.meter.add_silence(n * lch - src.len());
    let level = lane.meter.add_f32(src, n, rate);
    if let Some(mut l) = level {
        // Metered after the fader: the input's share of the mix.
        let db = if g1 > 0.0 {
            20.0 * (g1 as f64).log10()
        } else {
            f64::NEG_INFINITY
        };
        l.peak_dbfs = after_fader(l.peak_dbfs, db);
        l.rms_dbfs = after_fader(l.rms_dbfs, db);
        lane.last_level = Some(l);
    }
    if (g0 == 0.0 && g1 == 0.0) || src.is_empty() {
        return;
    }
    let (left, right) = balance(lane.pan);
    let offset = (from - pos) as usize;
    let step = (g1 - g0) / n as f32;
    for (i, frame) in src.chunks_exact(lch).enumerate() {
        let k = offset + i;
        let g = g0 + step * (k + 1) as f32;
        let out = &mut mix[k * ch..(k + 1) * ch];
        for (c, o) in out.iter_mut().enumerate() {
            let v = if lch == 1 { frame[0] } else { frame[c] };
            let pan = match (ch, c) {
                (2, 0) => left,
                (2, _) => right,
                _ => 1.0,
            };
            *o += v * g * pan;
        }
    }
}

/// A level read before the fader, after it: silence stays the floor.
fn after_fader(dbfs: f64, gain_db: f64) -> f64 {
    let floor = node_media::audio::FLOOR_DBFS;
    match dbfs <= floor {
        true => floor,
        false => (dbfs + gain_db).max(floor),
    }
}

/// Left and right factors of a pan (balance): centre keeps both at the
/// input's level; towards one side the other goes down linearly.
fn balance(pan: f32) -> (f32, f32) {
    ((1.0 - pan).min(1.0), (1.0 + pan).min(1.0))
}
