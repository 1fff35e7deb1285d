//! The deterministic test signals: a steady sine, or the "clapper" (silence
//! with a short 1 kHz beep at each whole second of media time) used to measure
//! A/V sync against the camera's clapper frames. Sample `n` depends only on `n`
//! and the rate, never on timing, so every run produces the same bytes.

/// −12 dBFS peak.
pub const AMPLITUDE: f64 = 0.251_188_643_150_958;
pub const BEEP_HZ: f64 = 1000.0;
pub const BEEP_MS: u64 = 50;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pattern {
    Tone { frequency: f64 },
    Clapper,
}

impl Pattern {
    /// The signal the `pattern` and `frequency` params ask for.
    pub fn new(pattern: node_catalog::kinds::microphone::Pattern, frequency: f64) -> Pattern {
        match pattern {
            node_catalog::kinds::microphone::Pattern::Tone => Pattern::Tone { frequency },
            node_catalog::kinds::microphone::Pattern::Clapper => Pattern::Clapper,
        }
    }
}

/// Fractional part of `n * freq / rate` cycles, exact for long runs: whole
/// seconds and the remainder are scaled separately so the phase of hour-long
/// streams is as precise as the first second's.
fn phase(n: u64, rate: u32, freq: f64) -> f64 {
    let (secs, rem) = (n / rate as u64, n % rate as u64);
    ((secs as f64 * freq).fract() + rem as f64 * freq / rate as f64).fract()
}

/// The value of sample `n` at `rate`, in -1..1.
pub fn sample(pattern: Pattern, rate: u32, n: u64) -> f32 {
    let tau = std::f64::consts::TAU;
    match pattern {
        Pattern::Tone { frequency } => (AMPLITUDE * (tau * phase(n, rate, frequency)).sin()) as f32,
        Pattern::Clapper => {
            let in_second = n % rate as u64;
            // Beep while in_second / rate < BEEP_MS / 1000, in integers.
            if in_second * 1000 < BEEP_MS * rate as u64 {
                (AMPLITUDE * (tau * phase(in_second, rate, BEEP_HZ)).sin()) as f32
            } else {
                0.0
            }
        }
    }
}

/// Fills interleaved frames from sample `start` on, every channel alike.
pub fn fill(pattern: Pattern, rate: u32, channels: usize, start: u64, out: &mut [f32]) {
    for (i, frame) in out.chunks_exact_mut(channels).enumerate() {
        frame.fill(sample(pattern, rate, start + i as u64));
    }
}

/// What a device whose own clock runs `factor` times as fast as the capture
/// clock records: its sample `n` is the scene at capture time
/// n / (rate × factor), so the clapper's beeps stay on whole seconds of the
/// capture clock while the sample count drifts from them.
pub fn fill_skewed(
    pattern: Pattern,
    rate: u32,
    factor: f64,
    channels: usize,
    start: u64,
    out: &mut [f32],
) {
    if factor == 1.0 {
        return fill(pattern, rate, channels, start, out);
    }
    let tau = std::f64::consts::TAU;
    let rate = rate as f64 * factor;
    for (i, frame) in out.chunks_exact_mut(channels).enumerate() {
        let t = (start + i as u64) as f64 / rate;
        let v = match pattern {
            Pattern::Tone { frequency } => AMPLITUDE * (tau * (t * frequency).fract()).sin(),
            Pattern::Clapper if t.fract() * 1000.0 < BEEP_MS as f64 => {
                AMPLITUDE * (tau * (t.fract() * BEEP_HZ).fract()).sin()
            }
            Pattern::Clapper => 0.0,
        };
        frame.fill(v as f32);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_continuous_across_blocks() {
        let p = Pattern::Tone { frequency: 440.0 };
        let mut a = vec![0f32; 2 * 4096];
        fill(p, 48_000, 2, 0, &mut a);
        // The same span produced in odd blocks is bit-identical.
        let mut b = vec![0f32; 2 * 4096];
        let mut at = 0;
        for len in [1000, 24, 1024, 2048] {
            fill(p, 48_000, 2, at as u64, &mut b[2 * at..2 * (at + len)]);
            at += len;
        }
        assert_eq!(a, b);
        assert_eq!(a[0], 0.0);
        assert_eq!(a[0], a[1]);
        let peak = a.iter().fold(0f32, |m, v| m.max(v.abs())) as f64;
        assert!((20.0 * peak.log10() + 12.0).abs() < 0.01, "peak {peak}");
    }

    #[test]
    fn a_fast_device_records_the_beeps_at_whole_seconds_of_capture_time() {
        // 1000 ppm fast: the beep of second 10 starts at sample 480_480, not 480_000.
        let mut v = vec![0f32; 2000];
        fill_skewed(Pattern::Clapper, 48_000, 1.001, 1, 479_000, &mut v);
        let first = v.iter().position(|s| *s != 0.0).unwrap() as u64 + 479_000;
        assert!((480_479..=480_481).contains(&first), "{first}");
        // No skew: bit-identical to the exact path.
        let (mut a, mut b) = (vec![0f32; 4096], vec![0f32; 4096]);
        fill(Pattern::Clapper, 48_000, 2, 47_000, &mut a);
        fill_skewed(Pattern::Clapper, 48_000, 1.0, 2, 47_000, &mut b);
        assert_eq!(a, b);
    }

    #[test]
    fn tone_frequency() {
        // 440 Hz at 48 kHz: 440 upward zero crossings per second.
        let p = Pattern::Tone { frequency: 440.0 };
        let v: Vec<f32> = (0..48_000).map(|n| sample(p, 48_000, n)).collect();
        let ups = v.windows(2).filter(|w| w[0] < 0.0 && w[1] >= 0.0).count();
        assert!((439..=440).contains(&ups), "{ups}");
        // Phase stays exact far into the stream: a whole number of cycles per second.
        assert!(sample(p, 48_000, 48_000 * 3600).abs() < 1e-6);
    }

    #[test]
    fn clapper_beeps_at_whole_seconds() {
        let rate = 48_000u32;
        let beep = (rate as u64 * BEEP_MS / 1000) as usize;
        for second in [0u64, 1, 7] {
            let base = second * rate as u64;
            let v: Vec<f32> = (0..rate as u64)
                .map(|i| sample(Pattern::Clapper, rate, base + i))
                .collect();
            let loud: Vec<usize> = v
                .iter()
                .enumerate()
                .filter(|(_, s)| s.abs() > 0.01)
                .map(|(i, _)| i)
                .collect();
            // Loud samples lie within the first 50 ms, reaching near its end; silence after.
            assert!(*loud.first().unwrap() < 5);
            assert!(*loud.last().unwrap() >= beep - 10 && *loud.last().unwrap() < beep);
            assert!(v[beep..].iter().all(|s| *s == 0.0));
            // 1 kHz: 50 cycles in the beep.
            let ups = v[..beep]
                .windows(2)
                .filter(|w| w[0] < 0.0 && w[1] >= 0.0)
                .count();
            assert!((49..=50).contains(&ups), "{ups}");
        }
        // 44.1 kHz: 2205 beep samples.
        let n = (0..44_100u64)
            .filter(|i| *i * 1000 < BEEP_MS * 44_100)
            .count();
        assert_eq!(n, 2205);
    }
}
