//! RNNoise on a stream of interleaved float samples, free of the node API so
//! it can be tested directly: one network state per channel, 480-sample
//! (10 ms) frames, a wet/dry mix, and the network's delay taken out so
//! output sample k is input sample k denoised.

use std::collections::VecDeque;

use nnnoiseless::DenoiseState;

/// Samples RNNoise takes at a time (10 ms at 48 kHz).
pub const FRAME: usize = DenoiseState::FRAME_SIZE;
/// How many samples RNNoise's output lags its input: its overlap-add
/// synthesis puts out a frame one frame after it came in (measured by
/// `the_delay_is_one_frame_and_compensated`).
pub const DELAY: usize = FRAME;
/// RNNoise reads samples on a 16-bit scale.
const SCALE: f32 = 32768.0;

pub struct Denoiser {
    channels: usize,
    states: Vec<Box<DenoiseState<'static>>>,
    /// Input gathered for the next network frame, per channel (scaled).
    pending: Vec<[f32; FRAME]>,
    fill: usize,
    scratch: [f32; FRAME],
    /// Denoised samples (interleaved), the delay already dropped, and the
    /// input they line up with.
    wet: VecDeque<f32>,
    dry: VecDeque<f32>,
    /// Network output frames still to drop: its delay.
    priming: usize,
    /// The wet share asked for and the one applied at the end of the last take.
    mix: f32,
    applied: f32,
}

impl Denoiser {
    pub fn new(channels: usize, mix: f32) -> Denoiser {
        Denoiser {
            channels,
            states: (0..channels).map(|_| DenoiseState::new()).collect(),
            pending: vec![[0.0; FRAME]; channels],
            fill: 0,
            scratch: [0.0; FRAME],
            wet: VecDeque::with_capacity(4 * FRAME * channels),
            dry: VecDeque::with_capacity(4 * FRAME * channels),
            priming: DELAY,
            mix,
            applied: mix,
        }
    }

    pub fn set_mix(&mut self, mix: f32) {
        self.mix = mix;
    }

    /// Samples (per channel) taken in and not yet given out.
    pub fn held(&self) -> usize {
        self.dry.len() / self.channels
    }

    /// Samples (per channel) ready to take.
    pub fn ready(&self) -> usize {
        self.wet.len() / self.channels
    }

    /// Takes interleaved samples in.
    pub fn push(&mut self, input: &[f32]) {
        for frame in input.chunks_exact(self.channels) {
            self.dry.extend(frame);
            for (c, v) in frame.iter().enumerate() {
                self.pending[c][self.fill] = v * SCALE;
            }
            self.fill += 1;
            if self.fill == FRAME {
                self.run();
            }
        }
    }

    /// End of stream: the last samples pushed through with silence, so
    /// everything taken in can be given out.
    pub fn flush(&mut self) {
        while self.ready() < self.held() {
            for p in &mut self.pending {
                p[self.fill..].fill(0.0);
            }
            self.fill = FRAME;
            self.run();
        }
    }

    /// One network frame per channel, interleaved into `wet`.
    fn run(&mut self) {
        let start = self.wet.len();
        let skip = self.priming.min(FRAME);
        self.priming -= skip;
        self.wet.resize(start + (FRAME - skip) * self.channels, 0.0);
        for (c, state) in self.states.iter_mut().enumerate() {
            state.process_frame(&mut self.scratch, &self.pending[c]);
            for (i, v) in self.scratch[skip..].iter().enumerate() {
                self.wet[start + i * self.channels + c] = v / SCALE;
            }
        }
        self.fill = 0;
    }

    /// Gives out `out.len()` interleaved samples (at most [`Denoiser::ready`]
    /// per channel): wet and dry mixed, the mix ramped from the last take's.
    pub fn take(&mut self, out: &mut [f32]) {
        let frames = out.len() / self.channels;
        assert!(
            frames <= self.ready(),
            "{frames} samples asked, {} ready",
            self.ready()
        );
        let (from, to) = (self.applied, self.mix);
        let step = (to - from) / frames.max(1) as f32;
        for (i, frame) in out.chunks_exact_mut(self.channels).enumerate() {
            let m = from + step * (i + 1) as f32;
            for o in frame {
                let (w, d) = (self.wet.pop_front(), self.dry.pop_front());
                *o = m * w.unwrap_or(0.0) + (1.0 - m) * d.unwrap_or(0.0);
            }
        }
        self.applied = to;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A voiced, harmonic 200 Hz tone with a 4 Hz syllable envelope.
    fn speech(n: usize, channels: usize) -> Vec<f32> {
        (0..n)
            .flat_map(|i| {
                let t = i as f32 / 48_000.0;
                let env = (std::f32::consts::TAU * 4.0 * t).sin().abs();
                let v: f32 = (1..8)
                    .map(|h| (std::f32::consts::TAU * 200.0 * h as f32 * t).sin() / h as f32)
                    .sum::<f32>()
                    * 0.2
                    * env;
                std::iter::repeat_n(v, channels)
            })
            .collect()
    }

    fn run(d: &mut Denoiser, input: &[f32], block: usize) -> Vec<f32> {
        let ch = d.channels;
        let mut out = Vec::new();
        for chunk in input.chunks(block * ch) {
            d.push(chunk);
            let mut buf = vec![0.0; d.ready() * ch];
            d.take(&mut buf);
            out.extend(buf);
        }
        d.flush();
        let mut buf = vec![0.0; d.ready() * ch];
        d.take(&mut buf);
        out.extend(buf);
        out
    }

    /// The lag (samples, −480..960) at which `b` best matches `a`.
    fn lag(a: &[f32], b: &[f32]) -> i64 {
        let score = |l: i64| -> f32 {
            let (a, b) = match l >= 0 {
                true => (a, &b[l as usize..]),
                false => (&a[(-l) as usize..], b),
            };
            a.iter().zip(b).map(|(x, y)| x * y).sum()
        };
        let range = -(FRAME as i64)..2 * FRAME as i64;
        range
            .max_by(|x, y| score(*x).total_cmp(&score(*y)))
            .unwrap()
    }

    #[test]
    fn the_delay_is_one_frame_and_compensated() {
        let input = speech(48_000, 1);
        // The network's own output, uncompensated: one frame late.
        let mut state = DenoiseState::new();
        let mut raw = Vec::new();
        let mut out = [0.0; FRAME];
        for f in input.chunks_exact(FRAME) {
            let scaled: Vec<f32> = f.iter().map(|v| v * SCALE).collect();
            state.process_frame(&mut out, &scaled);
            raw.extend(out.iter().map(|v| v / SCALE));
        }
        // Within a sample: the network's filters shift the phase a little.
        let raw_lag = lag(&input, &raw);
        assert!((raw_lag - DELAY as i64).abs() <= 1, "raw lag {raw_lag}");
        let mut d = Denoiser::new(1, 1.0);
        let aligned = run(&mut d, &input, 1024);
        assert_eq!(aligned.len(), input.len(), "as many samples out as in");
        let aligned_lag = lag(&input, &aligned);
        assert!(aligned_lag.abs() <= 1, "compensated lag {aligned_lag}");
    }

    #[test]
    fn dry_is_the_input_and_channels_stay_apart() {
        let mut input = speech(9_600, 2);
        for frame in input.chunks_exact_mut(2) {
            frame[1] = 0.0; // the right channel silent
        }
        let mut d = Denoiser::new(2, 0.0);
        let out = run(&mut d, &input, 700);
        assert_eq!(out, input, "mix 0: untouched");
        let mut d = Denoiser::new(2, 1.0);
        let out = run(&mut d, &input, 700);
        let right: f32 = out.iter().skip(1).step_by(2).map(|v| v.abs()).sum();
        let left: f32 = out.iter().step_by(2).map(|v| v.abs()).sum();
        assert!(right < 1e-3 && left > 1.0, "left {left}, right {right}");
    }
}
