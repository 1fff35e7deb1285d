//! EBU R128 loudness normalization: the input's loudness is measured with
//! `ebur128` (short-term, 3 s; over what there is during the first seconds)
//! and a gain moves smoothly toward `target − measured`. The gain changes
//! over seconds, so speech keeps its dynamics; silence and noise far below
//! the target hold the gain instead of being pulled up.

use anyhow::{anyhow, Result};
use ebur128::{Channel, EbuR128, Mode};

/// Most gain applied to quiet input.
pub const MAX_GAIN_DB: f64 = 30.0;
/// Most attenuation applied to loud input.
pub const MAX_CUT_DB: f64 = 30.0;
/// Input quieter than `target − GATE_LU` (or the absolute −70 LUFS gate) holds the gain.
pub const GATE_LU: f64 = 40.0;
/// Time constants of the gain moving up and down.
pub const RISE_SECONDS: f64 = 2.0;
pub const FALL_SECONDS: f64 = 1.0;
/// Measurement starts once this much audio was seen.
const MIN_WINDOW_MS: u64 = 400;
const SHORT_TERM_MS: u64 = 3000;

pub struct LoudnessControl {
    meter: EbuR128,
    rate: u32,
    channels: usize,
    target: f64,
    /// Gain the control moves toward, and the gain applied now (dB).
    desired_db: f64,
    gain_db: f64,
    seen_frames: u64,
    last_loudness: f64,
}

/// BS.1770 channel roles of an FFmpeg layout (LFE is not counted; side and
/// back channels weigh as surrounds).
fn channel_map(layout: u64, channels: usize) -> Vec<Channel> {
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
    ) -> Result<LoudnessControl> {
        let mut meter = EbuR128::new(channels as u32, rate, Mode::S)
            .map_err(|e| anyhow!("loudness meter for {channels} ch at {rate} Hz: {e}"))?;
        meter
            .set_channel_map(&channel_map(layout, channels))
            .map_err(|e| anyhow!("loudness meter channel map: {e}"))?;
        Ok(LoudnessControl {
            meter,
            rate,
            channels,
            target: target_lufs,
            desired_db: 0.0,
            gain_db: 0.0,
            seen_frames: 0,
            last_loudness: f64::NEG_INFINITY,
        })
    }

    /// A new loudness target: the gain moves toward it at its usual pace.
    pub fn set_target(&mut self, target_lufs: f64) {
        self.target = target_lufs;
    }

    /// The gain applied now, in dB.
    pub fn gain_db(&self) -> f64 {
        self.gain_db
    }

    /// The last input loudness measured, in LUFS.
    pub fn loudness(&self) -> f64 {
        self.last_loudness
    }

    /// Measures a block of interleaved frames and applies the gain in place,
    /// ramping from the previous gain to the new one across the block.
    pub fn process(&mut self, io: &mut [f32]) -> Result<()> {
        let frames = io.len() / self.channels;
        if frames == 0 {
            return Ok(());
        }
        self.meter
            .add_frames_f32(io)
            .map_err(|e| anyhow!("loudness meter: {e}"))?;
        self.seen_frames += frames as u64;
        let seen_ms = self.seen_frames * 1000 / self.rate as u64;
        if seen_ms >= MIN_WINDOW_MS {
            let window = seen_ms.min(SHORT_TERM_MS) as u32;
            let loudness = self
                .meter
                .loudness_window(window)
                .map_err(|e| anyhow!("loudness meter: {e}"))?;
            self.last_loudness = loudness;
            if loudness.is_finite() && loudness > -70.0 && loudness > self.target - GATE_LU {
                self.desired_db = (self.target - loudness).clamp(-MAX_CUT_DB, MAX_GAIN_DB);
            }
        }
        let seconds = if self.desired_db > self.gain_db {
            RISE_SECONDS
        } else {
            FALL_SECONDS
        };
        let keep = (-(frames as f64) / (seconds * self.rate as f64)).exp();
        let from = db_to_linear(self.gain_db);
        self.gain_db = self.desired_db + (self.gain_db - self.desired_db) * keep;
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
        let mut c = LoudnessControl::new(2, 48_000, 0x3, -16.0).unwrap();
        let mut block = vec![0f32; 2 * 4800];
        for _ in 0..50 {
            c.process(&mut block).unwrap();
        }
        assert_eq!(c.gain_db(), 0.0);
        assert!(block.iter().all(|v| *v == 0.0));
    }
}
