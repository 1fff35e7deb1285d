//! A true-peak limiter with lookahead. The signal's inter-sample peaks are
//! estimated by 4× oversampling (2× from 96 kHz; none at 192 kHz) with the
//! interpolator BS.1770 meters use (a 48-tap Hann-windowed sinc, as in
//! libebur128), so what a meter reads stays under the ceiling. The gain
//! needed at each sample is held over the lookahead window, released slowly,
//! and smoothed by a moving average as long as the window: the average of
//! values that all respect a peak never exceeds it, so the gain is down in
//! time for every peak without clicks.

use std::collections::VecDeque;

const TAPS: usize = 48;
/// Lookahead: the time the gain has to come down before a peak.
pub const LOOKAHEAD_MS: f64 = 5.0;
/// Release time constant: how fast the gain recovers after a peak.
pub const RELEASE_MS: f64 = 80.0;

pub struct TruePeakLimiter {
    channels: usize,
    ceiling: f32,
    /// Oversampling factor and taps per phase.
    factor: usize,
    taps: usize,
    /// `coeffs[phase * taps + t]` weighs the sample `t` steps back.
    coeffs: Vec<f32>,
    /// Last `taps` input frames per channel, newest at `hist_pos`.
    history: Vec<f32>,
    hist_pos: usize,
    /// Peak over the previous interpolation interval (detection joins two).
    last_interval: f32,
    lookahead: usize,
    /// Audio delay line: `detect_delay + lookahead` frames.
    delay: Vec<f32>,
    delay_len: usize,
    delay_pos: usize,
    /// (step, required gain) with increasing gains: the sliding minimum.
    min_hold: VecDeque<(u64, f32)>,
    released: f32,
    release_coef: f32,
    /// Last `lookahead + 1` released gains and their sum (moving average).
    window: Vec<f32>,
    window_pos: usize,
    window_sum: f64,
    step: u64,
    /// Smallest gain applied since the last call to [`TruePeakLimiter::take_min_gain`].
    min_gain: f32,
}

impl TruePeakLimiter {
    pub fn new(channels: usize, rate: u32, ceiling_db: f64) -> TruePeakLimiter {
        let factor = if rate < 96_000 {
            4
        } else if rate < 192_000 {
            2
        } else {
            1
        };
        // Without oversampling the "interpolator" is the sample itself.
        let taps = if factor == 1 { 1 } else { TAPS / factor };
        let mut coeffs = vec![0f32; taps * factor];
        if factor == 1 {
            coeffs[0] = 1.0;
        } else {
            for t in 0..taps {
                for phase in 0..factor {
                    let j = (t * factor + phase) as f64;
                    let w = 0.5 * (1.0 - (std::f64::consts::TAU * j / TAPS as f64).cos());
                    let m = j - TAPS as f64 / 2.0;
                    let x = m * std::f64::consts::PI / factor as f64;
                    let c = if m.abs() > 1e-6 { w * x.sin() / x } else { w };
                    coeffs[phase * taps + t] = c as f32;
                }
            }
        }
        // Phase 0 reproduces the sample taps/2 steps back: its peak (the
        // intervals on both sides of it) is known taps/2 steps after it arrives.
        let detect_delay = taps / 2;
        let lookahead = ((LOOKAHEAD_MS / 1000.0 * rate as f64).round() as usize).max(1);
        let delay_len = detect_delay + lookahead;
        TruePeakLimiter {
            channels,
            ceiling: 10f64.powf(ceiling_db / 20.0) as f32,
            factor,
            taps,
            coeffs,
            history: vec![0.0; taps * channels],
            hist_pos: 0,
            last_interval: 0.0,
            lookahead,
            delay: vec![0.0; delay_len.max(1) * channels],
            delay_len,
            delay_pos: 0,
            min_hold: VecDeque::with_capacity(lookahead + 2),
            released: 1.0,
            release_coef: (1.0 - (-1.0 / (RELEASE_MS / 1000.0 * rate as f64)).exp()) as f32,
            window: vec![1.0; lookahead + 1],
            window_pos: 0,
            window_sum: (lookahead + 1) as f64,
            step: 0,
            min_gain: 1.0,
        }
    }

    /// Frames between a frame going in and coming out.
    pub fn latency(&self) -> usize {
        self.delay_len
    }

    /// The smallest gain applied since the last call (for the log/metrics).
    pub fn take_min_gain(&mut self) -> f32 {
        std::mem::replace(&mut self.min_gain, 1.0)
    }

    /// The highest interpolated |value| between the sample `taps/2` back and
    /// the next, over all channels.
    fn interval_peak(&self) -> f32 {
        let mut peak = 0f32;
        for ch in 0..self.channels {
            let hist = &self.history[ch * self.taps..(ch + 1) * self.taps];
            for phase in 0..self.factor {
                let c = &self.coeffs[phase * self.taps..(phase + 1) * self.taps];
                let mut acc = 0f32;
                for (t, coeff) in c.iter().enumerate() {
                    // t steps back from the newest sample.
                    acc += coeff * hist[(self.hist_pos + self.taps - t) % self.taps];
                }
                peak = peak.max(acc.abs());
            }
        }
        peak
    }

    /// Limits interleaved frames in place; the output is the input delayed
    /// by [`TruePeakLimiter::latency`] frames (the first ones are silence).
    pub fn process(&mut self, io: &mut [f32]) {
        let ch = self.channels;
        let l = self.lookahead as u64;
        for frame in io.chunks_exact_mut(ch) {
            // Detection: the peak around the sample `detect_delay` back.
            self.hist_pos = (self.hist_pos + 1) % self.taps;
            for (c, v) in frame.iter().enumerate() {
                self.history[c * self.taps + self.hist_pos] = *v;
            }
            let interval = self.interval_peak();
            let peak = interval.max(self.last_interval);
            self.last_interval = interval;
            let need = if peak > self.ceiling {
                self.ceiling / peak
            } else {
                1.0
            };

            // Sliding minimum over the lookahead window.
            let step = self.step;
            while self.min_hold.back().is_some_and(|(_, g)| *g >= need) {
                self.min_hold.pop_back();
            }
            self.min_hold.push_back((step, need));
            while self.min_hold.front().is_some_and(|(s, _)| *s + l < step) {
                self.min_hold.pop_front();
            }
            let held = self.min_hold.front().map_or(1.0, |(_, g)| *g);
            // Down at once, up slowly; never above what the window allows.
            self.released = held.min(self.released + (1.0 - self.released) * self.release_coef);
            // Moving average over lookahead + 1 steps.
            self.window_sum += self.released as f64 - self.window[self.window_pos] as f64;
            self.window[self.window_pos] = self.released;
            self.window_pos = (self.window_pos + 1) % self.window.len();
            let gain = ((self.window_sum / self.window.len() as f64) as f32).min(1.0);
            self.min_gain = self.min_gain.min(gain);
            self.step += 1;

            // The delayed frame whose peak window just completed.
            let slot = &mut self.delay[self.delay_pos * ch..(self.delay_pos + 1) * ch];
            for (o, d) in frame.iter_mut().zip(slot.iter_mut()) {
                let out = *d * gain;
                *d = *o;
                *o = out;
            }
            self.delay_pos = (self.delay_pos + 1) % self.delay_len;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ebur128::{EbuR128, Mode};

    fn true_peak_db(signal: &[f32], channels: usize, rate: u32) -> f64 {
        let mut m = EbuR128::new(channels as u32, rate, Mode::TRUE_PEAK).unwrap();
        m.add_frames_f32(signal).unwrap();
        let tp = (0..channels as u32)
            .map(|c| m.true_peak(c).unwrap())
            .fold(0.0, f64::max);
        20.0 * tp.log10()
    }

    #[test]
    fn quiet_signal_passes_delayed() {
        let mut lim = TruePeakLimiter::new(2, 48_000, -1.0);
        let input: Vec<f32> = (0..9600)
            .map(|i| ((i / 2) as f32 * 0.01).sin() * 0.25)
            .collect();
        let mut io = input.clone();
        lim.process(&mut io);
        let lat = lim.latency();
        assert_eq!(lat, 6 + 240);
        assert!(io[..lat * 2].iter().all(|v| *v == 0.0));
        for (a, b) in io[lat * 2..].iter().zip(&input) {
            assert!((a - b).abs() < 1e-6);
        }
    }

    #[test]
    fn loud_bursts_stay_under_the_ceiling() {
        for (rate, ceiling) in [(48_000u32, -1.0), (44_100, -6.0), (96_000, -3.0)] {
            let mut lim = TruePeakLimiter::new(2, rate, ceiling);
            // Full-scale bursts of a near-Nyquist/4 tone (big inter-sample peaks)
            // and a square wave, separated by quiet passages.
            let n = rate as usize * 4;
            let mut input = Vec::with_capacity(n * 2);
            for i in 0..n {
                let t = i as f64 / rate as f64;
                let v = match (t * 2.0) as usize % 4 {
                    0 => (std::f64::consts::TAU * rate as f64 / 4.0 * t + 0.7).sin(),
                    1 => 0.05 * (std::f64::consts::TAU * 440.0 * t).sin(),
                    2 => {
                        if (t * 300.0).fract() < 0.5 {
                            0.99
                        } else {
                            -0.99
                        }
                    }
                    _ => 0.0,
                } as f32;
                input.extend_from_slice(&[v, -v]);
            }
            assert!(true_peak_db(&input, 2, rate) > ceiling + 0.5);
            let mut io = input.clone();
            lim.process(&mut io);
            let mut tail = vec![0f32; lim.latency() * 2];
            lim.process(&mut tail);
            let out: Vec<f32> = io[lim.latency() * 2..]
                .iter()
                .chain(&tail)
                .copied()
                .collect();
            let tp = true_peak_db(&out, 2, rate);
            eprintln!("{rate} Hz, ceiling {ceiling} dBTP: output {tp:.3} dBTP");
            assert!(
                tp <= ceiling + 0.1,
                "{rate} Hz: true peak {tp:.2} dBTP over {ceiling}"
            );
            // Quiet passages come back at full level after the release.
            let quiet =
                &out[2 * (rate as usize / 2 + rate as usize / 4)..2 * (rate as usize - 100)];
            let peak = quiet.iter().fold(0f32, |m, v| m.max(v.abs()));
            assert!(peak > 0.049, "{peak}");
        }
    }
}
