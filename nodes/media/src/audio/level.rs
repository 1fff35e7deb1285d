//! The level of audio, for meters (the dashboard): peak and RMS over every
//! channel, dBFS, per half second of audio.

use node_api::{AudioFrame, SampleFormat};

/// The quietest level reported: silence is this, not minus infinity
/// (which JSON cannot carry).
pub const FLOOR_DBFS: f64 = -100.0;

/// Peak and RMS of one window, dBFS.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Level {
    pub peak_dbfs: f64,
    pub rms_dbfs: f64,
}

/// Adds up samples until half a second (per channel) is in.
#[derive(Debug, Default)]
pub struct LevelMeter {
    peak: f64,
    sum_squares: f64,
    /// Samples of all channels so far in this window.
    samples: u64,
    /// Samples of one channel so far in this window.
    frames: u64,
}

fn dbfs(amplitude: f64) -> f64 {
    if amplitude > 0.0 {
        (20.0 * amplitude.log10()).max(FLOOR_DBFS)
    } else {
        FLOOR_DBFS
    }
}

/// One sample at full scale 1.0.
fn sample(format: SampleFormat, b: &[u8]) -> f64 {
    match format {
        SampleFormat::U8 => (b[0] as f64 - 128.0) / 128.0,
        SampleFormat::S16 | SampleFormat::S16p => i16::from_le_bytes([b[0], b[1]]) as f64 / 32768.0,
        SampleFormat::S32 | SampleFormat::S32p => {
            i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64 / 2147483648.0
        }
        SampleFormat::F32 | SampleFormat::F32p => {
            f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64
        }
        SampleFormat::F64 | SampleFormat::F64p => {
            f64::from_le_bytes(b[..8].try_into().expect("8 bytes"))
        }
    }
}

impl LevelMeter {
    /// Takes in a frame's samples (`data`, as `frame` describes them); the
    /// level of the window this frame completes, if it does.
    pub fn add(&mut self, frame: &AudioFrame, data: &[u8]) -> Option<Level> {
        let width = frame.format.bytes_per_sample();
        let len = frame.payload_size().min(data.len());
        for b in data[..len].chunks_exact(width) {
            let v = sample(frame.format, b);
            if v.is_finite() {
                self.peak = self.peak.max(v.abs());
                self.sum_squares += v * v;
            }
        }
        self.samples += (len / width) as u64;
        self.window(frame.samples as usize, frame.sample_rate)
    }

    /// Takes in float samples (`frames` per channel, interleaved or not) at
    /// `rate`; the level of the window they complete, if they do.
    pub fn add_f32(&mut self, samples: &[f32], frames: usize, rate: u32) -> Option<Level> {
        for &v in samples {
            let v = v as f64;
            if v.is_finite() {
                self.peak = self.peak.max(v.abs());
                self.sum_squares += v * v;
            }
        }
        self.samples += samples.len() as u64;
        self.window(frames, rate)
    }

    /// Counts `samples` of silence (a stretch an input did not cover) in
    /// the window the next `add_f32` completes.
    pub fn add_silence(&mut self, samples: usize) {
        self.samples += samples as u64;
    }

    /// Counts `frames` more; the window's level once half a second is in.
    fn window(&mut self, frames: usize, rate: u32) -> Option<Level> {
        self.frames += frames as u64;
        let window = (rate as u64 / 2).max(1);
        if self.frames < window || self.samples == 0 {
            return None;
        }
        let level = Level {
            peak_dbfs: dbfs(self.peak),
            rms_dbfs: dbfs((self.sum_squares / self.samples as f64).sqrt()),
        };
        *self = LevelMeter::default();
        Some(level)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use node_api::TimeBase;

    fn frame(format: SampleFormat, samples: u32) -> AudioFrame {
        AudioFrame {
            format,
            sample_rate: 48_000,
            channels: 2,
            channel_layout: 0,
            samples,
            pts: 0,
            time_base: TimeBase::new(1, 48_000),
            capture_ns: 0,
        }
    }

    #[test]
    fn a_full_scale_square_wave_is_0_dbfs_peak_and_rms() {
        let f = frame(SampleFormat::S16, 24_000);
        let data: Vec<u8> = (0..48_000)
            .flat_map(|i| if i % 2 == 0 { i16::MAX } else { -i16::MAX }.to_le_bytes())
            .collect();
        let level = LevelMeter::default().add(&f, &data).unwrap();
        assert!(level.peak_dbfs.abs() < 0.01, "{level:?}");
        assert!(level.rms_dbfs.abs() < 0.01, "{level:?}");
    }

    #[test]
    fn a_sine_at_half_scale_reads_minus_6_peak_and_minus_9_rms() {
        let f = frame(SampleFormat::F32p, 1024);
        let data: Vec<u8> = (0..2048)
            .flat_map(|i| (0.5 * (i as f32 * 0.05).sin()).to_le_bytes())
            .collect();
        let mut meter = LevelMeter::default();
        let levels: Vec<Level> = (0..24).filter_map(|_| meter.add(&f, &data)).collect();
        assert_eq!(levels.len(), 1, "one window per half second");
        let l = levels[0];
        assert!((l.peak_dbfs + 6.02).abs() < 0.1, "{l:?}");
        assert!((l.rms_dbfs + 9.03).abs() < 0.2, "{l:?}");
    }

    #[test]
    fn silence_is_the_floor() {
        let f = frame(SampleFormat::U8, 24_000);
        let level = LevelMeter::default().add(&f, &[128u8; 48_000]).unwrap();
        assert_eq!((level.peak_dbfs, level.rms_dbfs), (FLOOR_DBFS, FLOOR_DBFS));
    }

    #[test]
    fn floats_read_as_the_bytes_do() {
        let samples = vec![0.5f32; 48_000];
        let level = LevelMeter::default()
            .add_f32(&samples, 24_000, 48_000)
            .unwrap();
        assert!((level.peak_dbfs + 6.02).abs() < 0.01, "{level:?}");
        assert!((level.rms_dbfs + 6.02).abs() < 0.01, "{level:?}");
        assert!(LevelMeter::default()
            .add_f32(&samples[..100], 50, 48_000)
            .is_none());
        let mut meter = LevelMeter::default();
        meter.add_silence(48_000);
        let level = meter.add_f32(&[], 24_000, 48_000).unwrap();
        assert_eq!(
            level.rms_dbfs, FLOOR_DBFS,
            "silence is the floor, not no reading"
        );
    }
}
