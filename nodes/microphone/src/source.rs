//! What the node reads audio from: a capture device, a file or a test signal,
//! all delivering frames in the requested format.

use anyhow::Result;
use node_media::audio::WireFormat;

use crate::signal::{self, Pattern};

/// Samples per frame for test and file sources (21.3 ms at 48 kHz).
pub const FRAME_SAMPLES: usize = 1024;

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

    /// Waits for the next frame (up to `max` samples). `None`: nothing more
    /// (end of file, or `stop()` became true while waiting).
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
        self.pending = max.min(FRAME_SAMPLES);
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
