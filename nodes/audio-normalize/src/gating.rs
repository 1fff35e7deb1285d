//! BS.1770 integrated loudness, computed the way meters compute it, but
//! over a window of recent audio so a live control can use it: the audio is
//! cut into 400 ms blocks every 100 ms (75 % overlap), K-weighted by
//! `ebur128`, and the blocks are gated (absolute −70 LUFS, then relative
//! −10 LU below the mean of what passed). Over a whole program this is
//! exactly what `ffmpeg -af ebur128` reads as `I`, which is why the control
//! follows it instead of the short-term loudness: the number a user
//! measures on the file is the number the gain is steered by.

use std::collections::VecDeque;

use anyhow::{anyhow, Result};
use ebur128::{Channel, EbuR128, Mode};

/// Absolute gate of BS.1770-4.
pub const ABSOLUTE_GATE_LUFS: f64 = -70.0;
/// Relative gate: blocks this far below the absolute-gated mean are left out.
pub const RELATIVE_GATE_LU: f64 = 10.0;
/// Blocks are 400 ms long and start every 100 ms.
const BLOCK_STEPS: u64 = 4;
const STEP_MS: u64 = 100;

/// Mean-square energy of a block from its loudness (BS.1770's −0.691 offset).
fn energy(lufs: f64) -> f64 {
    10f64.powf((lufs + 0.691) / 10.0)
}

fn lufs(energy: f64) -> f64 {
    -0.691 + 10.0 * energy.log10()
}

/// Cuts interleaved audio into gating blocks and reports each block's loudness.
pub struct BlockMeter {
    meter: EbuR128,
    channels: usize,
    /// Frames per 100 ms step, and frames into the current step.
    step: usize,
    in_step: usize,
    steps: u64,
}

impl BlockMeter {
    pub fn new(channels: usize, rate: u32, map: &[Channel]) -> Result<BlockMeter> {
        let mut meter = EbuR128::new(channels as u32, rate, Mode::M)
            .map_err(|e| anyhow!("loudness meter for {channels} ch at {rate} Hz: {e}"))?;
        meter
            .set_channel_map(map)
            .map_err(|e| anyhow!("loudness meter channel map: {e}"))?;
        let step = ((rate as u64 * STEP_MS + 500) / 1000).max(1) as usize;
        Ok(BlockMeter {
            meter,
            channels,
            step,
            in_step: 0,
            steps: 0,
        })
    }

    /// Feeds frames; `block` gets the loudness of every 400 ms block they
    /// complete (−∞ for digital silence), in order.
    pub fn add(&mut self, mut io: &[f32], mut block: impl FnMut(f64)) -> Result<()> {
        while !io.is_empty() {
            // Only up to the next step boundary, so the meter's momentary
            // loudness there covers exactly the block that ends there.
            let frames = (self.step - self.in_step).min(io.len() / self.channels);
            if frames == 0 {
                return Ok(());
            }
            let (now, rest) = io.split_at(frames * self.channels);
            self.meter
                .add_frames_f32(now)
                .map_err(|e| anyhow!("loudness meter: {e}"))?;
            io = rest;
            self.in_step += frames;
            if self.in_step == self.step {
                self.in_step = 0;
                self.steps += 1;
                if self.steps >= BLOCK_STEPS {
                    let l = self.meter.loudness_momentary();
                    block(l.map_err(|e| anyhow!("loudness meter: {e}"))?);
                }
            }
        }
        Ok(())
    }
}

/// The integrated loudness of everything fed, as a meter reads a whole
/// program (histogram mode: bounded memory however long the stream runs).
pub struct ProgramMeter(EbuR128);

impl ProgramMeter {
    pub fn new(channels: usize, rate: u32, map: &[Channel]) -> Result<ProgramMeter> {
        let mut m = EbuR128::new(channels as u32, rate, Mode::I | Mode::HISTOGRAM)
            .map_err(|e| anyhow!("program loudness meter: {e}"))?;
        m.set_channel_map(map)
            .map_err(|e| anyhow!("program loudness meter channel map: {e}"))?;
        Ok(ProgramMeter(m))
    }

    pub fn add(&mut self, io: &[f32]) -> Result<()> {
        self.0
            .add_frames_f32(io)
            .map_err(|e| anyhow!("program loudness meter: {e}"))
    }

    /// LUFS; −∞ before any block passed the gates.
    pub fn loudness(&self) -> f64 {
        self.0.loudness_global().unwrap_or(f64::NEG_INFINITY)
    }
}

/// The gated loudness of the last `len` blocks.
pub struct GatedWindow {
    energies: VecDeque<f64>,
    len: usize,
}

impl GatedWindow {
    /// A window of `seconds` of audio (in 100 ms block steps).
    pub fn new(seconds: f64) -> GatedWindow {
        let len = ((seconds * 1000.0 / STEP_MS as f64).round() as usize).max(1);
        GatedWindow {
            energies: VecDeque::with_capacity(len),
            len,
        }
    }

    pub fn push(&mut self, block_lufs: f64) {
        if self.energies.len() == self.len {
            self.energies.pop_front();
        }
        let e = if block_lufs.is_finite() {
            energy(block_lufs)
        } else {
            0.0
        };
        self.energies.push_back(e);
    }

    /// Gated loudness with `floor` (LUFS; −70 for BS.1770, other values
    /// for blocks stored relative to a level) as the absolute gate, and how
    /// many blocks passed both gates; `None` when none did.
    pub fn loudness(&self, floor: f64) -> Option<(f64, usize)> {
        let abs = energy(floor);
        let (sum, n) = self
            .energies
            .iter()
            .filter(|e| **e > abs)
            .fold((0.0, 0usize), |(s, n), e| (s + e, n + 1));
        if n == 0 {
            return None;
        }
        let rel = energy(lufs(sum / n as f64) - RELATIVE_GATE_LU).max(abs);
        let (sum, n) = self
            .energies
            .iter()
            .filter(|e| **e > rel)
            .fold((0.0, 0usize), |(s, n), e| (s + e, n + 1));
        (n > 0).then(|| (lufs(sum / n as f64), n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 1 kHz tone whose level steps every 700 ms through quiet, loud and
    /// silent passages: the gates matter.
    fn stepped(rate: u32, seconds: f64) -> Vec<f32> {
        let levels = [0.05f32, 0.5, 0.0, 0.2, 0.001, 0.3];
        (0..(rate as f64 * seconds) as usize)
            .flat_map(|i| {
                let t = i as f64 / rate as f64;
                let a = levels[(t / 0.7) as usize % levels.len()];
                let v = a * (std::f64::consts::TAU * 1000.0 * t).sin() as f32;
                [v, 0.5 * v]
            })
            .collect()
    }

    #[test]
    fn a_window_as_long_as_the_program_reads_what_a_meter_reads() {
        for rate in [48_000u32, 44_100] {
            let signal = stepped(rate, 9.0);
            let mut reference = EbuR128::new(2, rate, Mode::I).unwrap();
            reference.add_frames_f32(&signal).unwrap();
            let expected = reference.loudness_global().unwrap();

            let map = [Channel::Left, Channel::Right];
            let mut meter = BlockMeter::new(2, rate, &map).unwrap();
            let mut window = GatedWindow::new(60.0);
            // Odd chunk sizes: block boundaries fall inside chunks.
            for chunk in signal.chunks(2 * 1531) {
                meter.add(chunk, |l| window.push(l)).unwrap();
            }
            let (got, n) = window.loudness(ABSOLUTE_GATE_LUFS).unwrap();
            assert!(
                (got - expected).abs() < 0.01,
                "{rate} Hz: {got} vs {expected}"
            );
            assert!(n > 10 && n < 90, "{n} blocks passed the gates");
        }
    }

    #[test]
    fn the_window_forgets_old_blocks_and_silence_passes_no_gate() {
        let mut w = GatedWindow::new(1.0);
        assert_eq!(w.loudness(ABSOLUTE_GATE_LUFS), None);
        for _ in 0..10 {
            w.push(f64::NEG_INFINITY);
        }
        assert_eq!(w.loudness(ABSOLUTE_GATE_LUFS), None);
        for _ in 0..5 {
            w.push(-40.0);
        }
        for _ in 0..10 {
            w.push(-20.0);
        }
        let (l, n) = w.loudness(ABSOLUTE_GATE_LUFS).unwrap();
        assert!((l + 20.0).abs() < 1e-9 && n == 10, "{l} {n}");
        // A floor above the blocks: nothing passes.
        assert_eq!(w.loudness(-10.0), None);
    }
}
