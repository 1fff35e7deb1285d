//! What the node reads audio from: a capture device, a file or a test signal,
//! all delivering frames in the requested format.

use anyhow::Result;
use node_media::audio::WireFormat;

use crate::signal::{self, Pattern};

/// Samples per frame by default (21.3 ms at 48 kHz).
pub const FRAME_SAMPLES: usize = 1024;

/// Samples per frame for a file replayed faster than real time: nobody waits
/// for its samples, and each message costs CPU in every node it crosses.
pub const REPLAY_FRAME_SAMPLES: usize = 8192;

/// The frame size the `frame_samples` param asks for (0: automatic).
pub fn frame_samples(param: i64, unpaced_file: bool) -> usize {
    match param {
        n if n > 0 => n as usize,
        _ if unpaced_file => REPLAY_FRAME_SAMPLES,
        _ => FRAME_SAMPLES,
    }
}

/// The format every source delivers: the node's params.
#[derive(Debug, Clone, Copy)]
pub struct OutFormat {
    pub rate: u32,
    pub channels: u16,
    pub wire: WireFormat,
}

impl OutFormat {
    pub fn frame_bytes(&self, samples: usize) -> usize {
        samples * self.channels as usize * self.wire.bytes_per_sample()
    }
}

/// The next frame a source has ready.
#[derive(Debug, Clone, Copy)]
pub struct Chunk {
    pub samples: usize,
    /// Capture time of the first sample, for sources with their own clock
    /// (devices); `None`: the node derives it from the sample count.
    pub capture_ns: Option<u64>,
}

pub trait Source {
    /// One line for the log.
    fn describe(&self) -> String;

    /// Starts producing (devices start streaming here, once the graph runs).
    fn start(&mut self) -> Result<()> {
        Ok(())
    }

    /// Waits for the next frame of `max` samples (fewer at the end of a
    /// file). `None`: nothing more (end of file, or `stop()` became true
    /// while waiting).
    fn prepare(&mut self, max: usize, stop: &dyn Fn() -> bool) -> Result<Option<Chunk>>;

    /// Writes the prepared frame into `out` (exactly its size in bytes).
    fn write(&mut self, out: &mut [u8]) -> Result<()>;

    /// Whether the node paces this source (test signal, file) rather than a device clock.
    fn self_clocked(&self) -> bool {
        true
    }

    /// Starts the signal at sample `n` of the run's epoch timeline; false
    /// for sources with their own timeline (devices, files), which ignore it.
    fn start_at(&mut self, _n: u64) -> bool {
        false
    }

    /// Device overruns so far.
    fn dropped(&self) -> u64 {
        0
    }
}

/// The test signal source.
pub struct TestSource {
    pattern: Pattern,
    /// Device seconds per capture-clock second (see `signal::fill_skewed`).
    rate_factor: f64,
    out: OutFormat,
    pos: u64,
    pending: usize,
    scratch: Vec<f32>,
}

impl TestSource {
    pub fn new(pattern: Pattern, rate_factor: f64, out: OutFormat) -> TestSource {
        let scratch = vec![0.0; FRAME_SAMPLES * out.channels as usize];
        TestSource {
            pattern,
            rate_factor,
            out,
            pos: 0,
            pending: 0,
            scratch,
        }
    }
}

impl Source for TestSource {
    fn describe(&self) -> String {
        match self.pattern {
            Pattern::Tone { frequency } => format!("test tone {frequency} Hz at -12 dBFS"),
            Pattern::Clapper => format!(
                "test clapper ({} Hz beep of {} ms each second)",
                signal::BEEP_HZ,
                signal::BEEP_MS
            ),
        }
    }

    fn start_at(&mut self, n: u64) -> bool {
        self.pos = n;
        true
    }

    fn prepare(&mut self, max: usize, _stop: &dyn Fn() -> bool) -> Result<Option<Chunk>> {
        self.pending = max;
        // Grows once, to the node's frame size.
        let needed = max * self.out.channels as usize;
        if self.scratch.len() < needed {
            self.scratch.resize(needed, 0.0);
        }
        Ok(Some(Chunk {
            samples: self.pending,
            capture_ns: None,
        }))
    }

    fn write(&mut self, out: &mut [u8]) -> Result<()> {
        let ch = self.out.channels as usize;
        let block = &mut self.scratch[..self.pending * ch];
        signal::fill_skewed(
            self.pattern,
            self.out.rate,
            self.rate_factor,
            ch,
            self.pos,
            block,
        );
        self.out.wire.write_f32(block, out);
        self.pos += self.pending as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_size_from_param() {
        assert_eq!(frame_samples(0, false), FRAME_SAMPLES);
        assert_eq!(frame_samples(0, true), REPLAY_FRAME_SAMPLES);
        assert_eq!(frame_samples(480, true), 480);
        assert_eq!(frame_samples(4096, false), 4096);
    }

    #[test]
    fn test_signal_frames_of_any_size() {
        let out = OutFormat {
            rate: 48_000,
            channels: 2,
            wire: WireFormat::from_param("f32").unwrap(),
        };
        let mut small = TestSource::new(Pattern::Tone { frequency: 440.0 }, 1.0, out);
        let mut large = TestSource::new(Pattern::Tone { frequency: 440.0 }, 1.0, out);
        let mut by_small = Vec::new();
        for _ in 0..8 {
            let c = small.prepare(1024, &|| false).unwrap().unwrap();
            let mut buf = vec![0u8; out.frame_bytes(c.samples)];
            small.write(&mut buf).unwrap();
            by_small.extend(buf);
        }
        let c = large.prepare(8192, &|| false).unwrap().unwrap();
        assert_eq!(c.samples, 8192);
        let mut by_large = vec![0u8; out.frame_bytes(c.samples)];
        large.write(&mut by_large).unwrap();
        assert_eq!(
            by_small, by_large,
            "the same signal whatever the frame size"
        );
    }
}
