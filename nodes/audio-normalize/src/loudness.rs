//! EBU R128 loudness normalization, one pass, live. The gain is
//! `target − I + makeup`: `I` is the gated (integrated) loudness of the
//! last [`WINDOW_SECONDS`] of input (`gating.rs`, what a meter computes
//! over a program, so the number read on the file is the one the gain is
//! steered by), and `makeup` is the loudness the true-peak limiter took off
//! over the same window (measured before and after it). The gain moves
//! smoothly (the window changes slowly, so dynamics within it are kept);
//! the first measurement, 400 ms in, is taken at once rather than
//! approached over seconds. Silence and noise far below the target pass no
//! gate and hold the gain instead of being pulled up.

use std::collections::VecDeque;

use anyhow::Result;
use ebur128::Channel;

use crate::gating::{BlockMeter, GatedWindow, ProgramMeter, ABSOLUTE_GATE_LUFS};

/// Most gain applied to quiet input.
pub const MAX_GAIN_DB: f64 = 30.0;
/// Most attenuation applied to loud input.
pub const MAX_CUT_DB: f64 = 30.0;
/// Blocks quieter than `target − GATE_LU` (or the absolute −70 LUFS gate) are not measured.
pub const GATE_LU: f64 = 40.0;
/// Audio the measured loudness covers: long enough that speech's pauses
/// and bursts average out as they do over a program, short enough that a
/// live source whose level changes for good is followed within it.
pub const WINDOW_SECONDS: f64 = 30.0;
/// Time constant of the gain following the measurement (after the first).
pub const SMOOTH_SECONDS: f64 = 0.5;
/// Most loudness made up for what the limiter takes: past it, the target
/// needs more limiting than a limiter should do, and the ceiling wins.
pub const MAX_MAKEUP_DB: f64 = 6.0;

/// The gated loudness of one signal over the window.
struct Measured {
    meter: BlockMeter,
    window: GatedWindow,
}

impl Measured {
    /// Feeds frames; whether a block was completed.
    fn add(&mut self, io: &[f32]) -> Result<bool> {
        let mut any = false;
        let window = &mut self.window;
        self.meter.add(io, |l| {
            window.push(l);
            any = true;
        })?;
        Ok(any)
    }

    fn new(channels: usize, rate: u32, map: &[Channel]) -> Result<Measured> {
        Ok(Measured {
            meter: BlockMeter::new(channels, rate, map)?,
            window: GatedWindow::new(WINDOW_SECONDS),
        })
    }
}

pub struct LoudnessControl {
    rate: u32,
    channels: usize,
    target: f64,
    input: Measured,
    /// The limiter's input and output, for the loudness it takes off.
    limiter_in: Measured,
    limiter_out: Measured,
    /// The whole program's loudness before and after the limiter (the log's
    /// account of where a miss comes from).
    program_in: ProgramMeter,
    program_out: ProgramMeter,
    /// Gain the control moves toward (`None` before the first measurement),
    /// and the gain applied now (dB).
    desired_db: Option<f64>,
    gain_db: f64,
    makeup_db: f64,
    last_loudness: f64,
    /// Look-ahead: the input is measured when it arrives and given its gain
    /// this many frames later (interleaved samples; starts full of silence,
    /// which the caller drops as latency).
    delay: VecDeque<f32>,
}

/// The loudness account at the end of a stream.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    pub gain_db: f64,
    /// Input loudness over the window (LUFS).
    pub window_lufs: f64,
    pub makeup_db: f64,
    /// The whole program before and after the limiter (LUFS).
    pub program_in_lufs: f64,
    pub program_out_lufs: f64,
}

/// BS.1770 channel roles of an FFmpeg layout (LFE is not counted; side and
/// back channels weigh as surrounds).
pub(crate) fn channel_map(layout: u64, channels: usize) -> Vec<Channel> {
    let mut map: Vec<Channel> = (0..64)
        .filter(|bit| layout & (1u64 << bit) != 0)
        .map(|bit| match 1u64 << bit {
            0x1 => Channel::Left,
            0x2 => Channel::Right,
            0x4 => Channel::Center,
            0x8 | 0x8_0000_0000 => Channel::Unused,
            0x10 | 0x200 => Channel::LeftSurround,
            0x20 | 0x400 => Channel::RightSurround,
            _ => Channel::Center,
        })
        .collect();
    map.resize(channels, Channel::Center);
    map.truncate(channels);
    map
}

impl LoudnessControl {
    pub fn new(
        channels: usize,
        rate: u32,
        layout: u64,
        target_lufs: f64,
        lookahead_s: f64,
    ) -> Result<LoudnessControl> {
        let map = channel_map(layout, channels);
        let lookahead = (lookahead_s.max(0.0) * rate as f64).round() as usize * channels;
        Ok(LoudnessControl {
            rate,
            channels,
            target: target_lufs,
            input: Measured::new(channels, rate, &map)?,
            limiter_in: Measured::new(channels, rate, &map)?,
            limiter_out: Measured::new(channels, rate, &map)?,
            program_in: ProgramMeter::new(channels, rate, &map)?,
            program_out: ProgramMeter::new(channels, rate, &map)?,
            desired_db: None,
            gain_db: 0.0,
            makeup_db: 0.0,
            last_loudness: f64::NEG_INFINITY,
            delay: std::iter::repeat_n(0.0, lookahead).collect(),
        })
    }

    /// Frames between a sample's arrival and its leaving (the look-ahead).
    pub fn latency(&self) -> usize {
        self.delay.len() / self.channels
    }

    /// A new loudness target: the gain moves toward it at its usual pace.
    pub fn set_target(&mut self, target_lufs: f64) {
        self.target = target_lufs;
        self.update_desired();
    }

    /// The gain applied now, in dB.
    pub fn gain_db(&self) -> f64 {
        self.gain_db
    }

    /// The input loudness measured over the window, in LUFS.
    pub fn loudness(&self) -> f64 {
        self.last_loudness
    }

    /// The account so far.
    pub fn summary(&self) -> Summary {
        Summary {
            gain_db: self.gain_db,
            window_lufs: self.last_loudness,
            makeup_db: self.makeup_db,
            program_in_lufs: self.program_in.loudness(),
            program_out_lufs: self.program_out.loudness(),
        }
    }

    fn input_floor(&self) -> f64 {
        (self.target - GATE_LU).max(ABSOLUTE_GATE_LUFS)
    }

    fn update_desired(&mut self) {
        let Some((l, _)) = self.input.window.loudness(self.input_floor()) else {
            return;
        };
        self.last_loudness = l;
        let desired = (self.target - l + self.makeup_db).clamp(-MAX_CUT_DB, MAX_GAIN_DB);
        if self.desired_db.is_none() {
            // The first measurement: no reason to approach it slowly from
            // 0 dB (the block it came from ramps to it).
            self.gain_db = desired;
        }
        self.desired_db = Some(desired);
    }

    /// Measures a block of interleaved frames and applies the gain in place,
    /// ramping from the previous gain to the new one across the block.
    pub fn process(&mut self, io: &mut [f32]) -> Result<()> {
        let frames = io.len() / self.channels;
        if frames == 0 {
            return Ok(());
        }
        let from = db_to_linear(self.gain_db);
        if self.input.add(io)? {
            self.update_desired();
        }
        if !self.delay.is_empty() {
            // What arrived goes in the delay line; what leaves it is what
            // the gain, steered by the newer input, applies to.
            self.delay.extend(io.iter().copied());
            for (v, old) in io
                .iter_mut()
                .zip(self.delay.drain(..frames * self.channels))
            {
                *v = old;
            }
        }
        if let Some(desired) = self.desired_db {
            let keep = (-(frames as f64) / (SMOOTH_SECONDS * self.rate as f64)).exp();
            self.gain_db = desired + (self.gain_db - desired) * keep;
        }
        let to = db_to_linear(self.gain_db);
        let step = (to - from) / frames as f64;
        for (i, frame) in io.chunks_exact_mut(self.channels).enumerate() {
            let g = (from + step * (i + 1) as f64) as f32;
            for v in frame {
                *v *= g;
            }
        }
        Ok(())
    }

    /// Measures what goes into the limiter (after every gain).
    pub fn limiter_input(&mut self, io: &[f32]) -> Result<()> {
        self.program_in.add(io)?;
        self.limiter_in.add(io).map(|_| ())
    }

    /// Measures what comes out of the limiter; updates the makeup gain.
    pub fn limiter_output(&mut self, io: &[f32]) -> Result<()> {
        self.program_out.add(io)?;
        if !self.limiter_out.add(io)? {
            return Ok(());
        }
        let floor = ABSOLUTE_GATE_LUFS;
        let before = self.limiter_in.window.loudness(floor);
        let after = self.limiter_out.window.loudness(floor);
        if let (Some((b, _)), Some((a, _))) = (before, after) {
            self.makeup_db = (b - a).clamp(0.0, MAX_MAKEUP_DB);
        }
        self.update_desired();
        Ok(())
    }
}

fn db_to_linear(db: f64) -> f64 {
    10f64.powf(db / 20.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_layouts_to_bs1770_roles() {
        assert_eq!(channel_map(0x3, 2), [Channel::Left, Channel::Right]);
        assert_eq!(channel_map(0x4, 1), [Channel::Center]);
        // 5.1: FL FR FC LFE BL BR.
        assert_eq!(
            channel_map(0x3f, 6),
            [
                Channel::Left,
                Channel::Right,
                Channel::Center,
                Channel::Unused,
                Channel::LeftSurround,
                Channel::RightSurround
            ]
        );
        assert_eq!(channel_map(0, 3).len(), 3);
    }

    #[test]
    fn silence_holds_the_gain() {
        let mut c = LoudnessControl::new(2, 48_000, 0x3, -16.0, 0.0).unwrap();
        let mut block = vec![0f32; 2 * 4800];
        for _ in 0..50 {
            c.process(&mut block).unwrap();
        }
        assert_eq!(c.gain_db(), 0.0);
        assert!(block.iter().all(|v| *v == 0.0));
    }
}
