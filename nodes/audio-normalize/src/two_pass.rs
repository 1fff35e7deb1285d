//! Two-pass loudness normalization for replays: the whole input, converted
//! to float at the output rate and channels, is held in an unlinked temp
//! file (384 kB/s at 48 kHz stereo) while its integrated loudness is
//! measured; at the end of stream one gain is found — iterated on the held
//! audio through the true-peak limiter until the limited program reads the
//! target — and the audio is sent with it, in the frames it came in. One
//! gain for the whole program keeps its dynamics, and the loudness read on
//! the file is the target, not a live estimate of it.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};

use anyhow::{Context, Result};
use node_api::AudioFrame;
use node_media::audio::WireFormat;

use crate::gating::ProgramMeter;
use crate::limiter::TruePeakLimiter;
use crate::loudness::{channel_map, MAX_CUT_DB, MAX_GAIN_DB, MAX_MAKEUP_DB};
use crate::normalizer::{Normalizer, Output, Settings};

/// Gain iterations at most; each reads the held audio once.
const MAX_ITERATIONS: usize = 6;
/// Close enough (LU): below what a meter's two decimals tell apart.
const TOLERANCE_LU: f64 = 0.01;
/// Frames read from the file at a time.
const CHUNK_FRAMES: usize = 8192;

pub struct TwoPass {
    settings: Settings,
    /// Converts to float at the output rate and channels; no gain.
    capture: Normalizer,
    meter: ProgramMeter,
    file: BufWriter<File>,
    /// The converted frames' headers (float), in order: the output frames.
    frames: Vec<AudioFrame>,
    encoder_loss_lu: f64,
}

/// What the end of stream found.
#[derive(Debug, Clone, Copy)]
pub struct Found {
    pub input_lufs: f64,
    pub gain_db: f64,
    /// The limited program's loudness at that gain, and the iterations.
    pub output_lufs: f64,
    pub iterations: usize,
}

/// An open temp file no other process can find (unlinked at once).
fn temp_file() -> Result<File> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let path = std::env::temp_dir().join(format!(
        "audio-normalize-{}-{nanos}.f32",
        std::process::id()
    ));
    let file = File::options()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .with_context(|| format!("creating {}", path.display()))?;
    let _ = std::fs::remove_file(&path);
    Ok(file)
}

impl TwoPass {
    /// `settings` as for live, with a target; `encoder_loss_lu` is aimed over it.
    pub fn new(settings: Settings, encoder_loss_lu: f64) -> Result<TwoPass> {
        let capture = Normalizer::new(Settings {
            wire: WireFormat::of(node_catalog::kinds::common::SampleFormat::F32),
            target_lufs: None,
            lookahead_s: 0.0,
            gain_db: None,
            ..settings
        })?;
        let map = channel_map(capture.out_spec().layout, settings.channels as usize);
        Ok(TwoPass {
            settings,
            meter: ProgramMeter::new(settings.channels as usize, settings.rate, &map)?,
            capture,
            file: BufWriter::with_capacity(1 << 20, temp_file()?),
            frames: Vec::new(),
            encoder_loss_lu,
        })
    }

    /// A new target for the held program (the gain is found at the end).
    pub fn set_target(&mut self, target_lufs: f64) -> Result<(), String> {
        self.settings.target_lufs = Some(target_lufs);
        Ok(())
    }

    /// A gain on top of the one found, as live `gain_db` is.
    pub fn set_gain(&mut self, gain_db: f64) -> Result<(), String> {
        self.settings.gain_db = Some(gain_db);
        Ok(())
    }

    /// Seconds held so far.
    pub fn held_seconds(&self) -> f64 {
        self.frames.iter().map(|h| h.samples as f64).sum::<f64>() / self.settings.rate as f64
    }

    /// Takes one input frame: converted, measured and written to the file.
    pub fn hold(&mut self, h: &AudioFrame, payload: &[u8]) -> Result<()> {
        let out = self.capture.process(h, payload)?;
        keep(
            out,
            payload,
            &mut self.meter,
            &mut self.file,
            &mut self.frames,
        )
    }

    /// End of stream: the held audio measured and the gain found; then
    /// `send` gets every output frame (header, payload in the output format).
    pub fn finish(
        &mut self,
        mut send: impl FnMut(AudioFrame, &[u8]) -> Result<()>,
    ) -> Result<Found> {
        let out = self.capture.flush()?;
        keep(out, &[], &mut self.meter, &mut self.file, &mut self.frames)?;
        self.file.flush().context("two-pass temp file")?;
        let found = self.find_gain()?;
        let frames = std::mem::take(&mut self.frames);
        let mut out = Emitter::new(self.settings.wire, self.settings.channels as usize, frames);
        self.limited(found.gain_db, |io| {
            out.pending.extend_from_slice(io);
            out.emit(false, &mut send)
        })?;
        out.emit(true, &mut send)?;
        Ok(found)
    }

    /// Iterates the gain until the limited program reads the aim.
    fn find_gain(&mut self) -> Result<Found> {
        let input = self.meter.loudness();
        let target = self.settings.target_lufs.unwrap_or(-23.0);
        let aim = target + self.settings.gain_db.unwrap_or(0.0) + self.encoder_loss_lu;
        let mut found = Found {
            input_lufs: input,
            gain_db: 0.0,
            output_lufs: input,
            iterations: 0,
        };
        if !input.is_finite() {
            // Silence: nothing to measure, nothing to raise.
            return Ok(found);
        }
        // More than the limiter's usual makeup would be limiting, not leveling.
        let most = (aim - input + MAX_MAKEUP_DB).min(MAX_GAIN_DB);
        found.gain_db = (aim - input).clamp(-MAX_CUT_DB, most);
        while found.iterations < MAX_ITERATIONS {
            let mut meter = ProgramMeter::new(
                self.settings.channels as usize,
                self.settings.rate,
                &channel_map(
                    self.capture.out_spec().layout,
                    self.settings.channels as usize,
                ),
            )?;
            self.limited(found.gain_db, |io| meter.add(io))?;
            found.output_lufs = meter.loudness();
            found.iterations += 1;
            let next = (found.gain_db + aim - found.output_lufs).clamp(-MAX_CUT_DB, most);
            if (aim - found.output_lufs).abs() < TOLERANCE_LU || next == found.gain_db {
                break;
            }
            found.gain_db = next;
        }
        Ok(found)
    }

    /// The held audio at `gain_db` through a fresh limiter, aligned (its
    /// latency dropped at the start, pushed out with silence at the end).
    fn limited(&mut self, gain_db: f64, mut sink: impl FnMut(&[f32]) -> Result<()>) -> Result<()> {
        let ch = self.settings.channels as usize;
        let mut limiter = TruePeakLimiter::new(ch, self.settings.rate, self.settings.true_peak_db);
        let mut skip = limiter.latency();
        let gain = 10f64.powf(gain_db / 20.0) as f32;
        let file = self.file.get_mut();
        file.seek(SeekFrom::Start(0))
            .context("two-pass temp file")?;
        let mut reader = BufReader::with_capacity(1 << 20, &*file);
        let mut bytes = vec![0u8; CHUNK_FRAMES * ch * 4];
        let mut floats = vec![0f32; CHUNK_FRAMES * ch];
        let mut tail = limiter.latency();
        loop {
            let n = read_full(&mut reader, &mut bytes)?;
            let frames = n / (4 * ch);
            let io = &mut floats[..frames * ch];
            for (f, b) in io.iter_mut().zip(bytes.chunks_exact(4)) {
                *f = f32::from_ne_bytes([b[0], b[1], b[2], b[3]]) * gain;
            }
            if frames == 0 {
                // The end: the limiter's delay line out with silence.
                let zeros = tail.min(CHUNK_FRAMES);
                floats[..zeros * ch].fill(0.0);
                tail -= zeros;
                if zeros == 0 {
                    return Ok(());
                }
                limit_into(
                    &mut limiter,
                    &mut floats[..zeros * ch],
                    &mut skip,
                    ch,
                    &mut sink,
                )?;
                continue;
            }
            limit_into(&mut limiter, io, &mut skip, ch, &mut sink)?;
        }
    }
}

/// Limits `io` and gives `sink` what is left after `skip` frames of priming.
fn limit_into(
    limiter: &mut TruePeakLimiter,
    io: &mut [f32],
    skip: &mut usize,
    ch: usize,
    sink: &mut impl FnMut(&[f32]) -> Result<()>,
) -> Result<()> {
    limiter.process(io);
    let drop = (*skip).min(io.len() / ch);
    *skip -= drop;
    sink(&io[drop * ch..])
}

/// Reads until `buf` is full or the file ends; the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]).context("two-pass temp file")? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Stores one converted frame (float) and measures it.
fn keep(
    out: Output<'_>,
    input: &[u8],
    meter: &mut ProgramMeter,
    file: &mut BufWriter<File>,
    frames: &mut Vec<AudioFrame>,
) -> Result<()> {
    let (h, data) = match out {
        Output::Forward(h) => {
            let bytes = h.samples as usize * h.channels as usize * 4;
            (h, &input[..bytes])
        }
        Output::Converted(h, data) => (h, data),
        Output::Nothing => return Ok(()),
    };
    let floats: Vec<f32> = data
        .chunks_exact(4)
        .map(|b| f32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    meter.add(&floats)?;
    file.write_all(data).context("two-pass temp file")?;
    frames.push(h);
    Ok(())
}

/// Cuts the limited output back into the frames it came in.
struct Emitter {
    wire: WireFormat,
    channels: usize,
    frames: Vec<AudioFrame>,
    next: usize,
    pending: Vec<f32>,
    bytes: Vec<u8>,
}

impl Emitter {
    fn new(wire: WireFormat, channels: usize, frames: Vec<AudioFrame>) -> Emitter {
        Emitter {
            wire,
            channels,
            frames,
            next: 0,
            pending: Vec::new(),
            bytes: Vec::new(),
        }
    }

    /// Sends every frame `pending` holds in full; at the `end`, the rest
    /// too (the limiter's tail makes them full; silence if not).
    fn emit(
        &mut self,
        end: bool,
        send: &mut impl FnMut(AudioFrame, &[u8]) -> Result<()>,
    ) -> Result<()> {
        let mut used = 0;
        while let Some(h) = self.frames.get(self.next) {
            let n = h.samples as usize * self.channels;
            if used + n > self.pending.len() && !end {
                break;
            }
            let h = AudioFrame {
                format: self.wire.format,
                ..*h
            };
            self.next += 1;
            let avail = n.min(self.pending.len() - used);
            self.bytes.clear();
            self.bytes.resize(n * self.wire.bytes_per_sample(), 0);
            self.wire
                .write_f32(&self.pending[used..used + avail], &mut self.bytes);
            used += avail;
            send(h, &self.bytes)?;
        }
        self.pending.drain(..used);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ebur128::{EbuR128, Mode};
    use node_api::{SampleFormat, TimeBase};

    /// A quiet 1 kHz tone with a burst 20 dB louder from 8 to 9 s: the
    /// case a live control cannot know in advance.
    fn bursty(rate: u32, seconds: f64) -> Vec<f32> {
        (0..(rate as f64 * seconds) as usize)
            .flat_map(|i| {
                let t = i as f64 / rate as f64;
                let a = if (8.0..9.0).contains(&t) { 0.3 } else { 0.03 };
                let v = (a * (std::f64::consts::TAU * 1000.0 * t).sin()) as f32;
                [v, v]
            })
            .collect()
    }

    #[test]
    fn one_gain_brings_the_whole_program_to_the_target_in_its_frames() {
        let rate = 48_000;
        let input = bursty(rate, 20.0);
        let settings = Settings {
            rate,
            channels: 2,
            wire: WireFormat::of(node_catalog::kinds::common::SampleFormat::S16),
            target_lufs: Some(-16.0),
            lookahead_s: 0.0,
            gain_db: None,
            true_peak_db: -1.0,
        };
        let mut tp = TwoPass::new(settings, 0.0).unwrap();
        for (i, chunk) in input.chunks(2 * 1000).enumerate() {
            let h = AudioFrame {
                format: SampleFormat::F32,
                sample_rate: rate,
                channels: 2,
                channel_layout: 0,
                samples: 1000,
                pts: i as i64 * 1000,
                time_base: TimeBase::new(1, rate as i32),
                capture_ns: i as u64 * 20_833_333,
            };
            let bytes: Vec<u8> = chunk.iter().flat_map(|v| v.to_ne_bytes()).collect();
            tp.hold(&h, &bytes).unwrap();
        }
        let (mut out, mut pts) = (Vec::new(), Vec::new());
        let found = tp
            .finish(|h, data| {
                assert_eq!(h.format, SampleFormat::S16);
                pts.push(h.pts);
                out.extend(
                    data.chunks_exact(2)
                        .map(|b| i16::from_ne_bytes([b[0], b[1]]) as f32 / 32768.0),
                );
                Ok(())
            })
            .unwrap();
        assert_eq!(out.len(), input.len(), "same duration out as in");
        assert_eq!(
            pts,
            (0..pts.len() as i64).map(|i| i * 1000).collect::<Vec<_>>()
        );
        let mut m = EbuR128::new(2, rate, Mode::I | Mode::TRUE_PEAK).unwrap();
        m.add_frames_f32(&out).unwrap();
        let lufs = m.loudness_global().unwrap();
        let peak = 20.0 * m.true_peak(0).unwrap().log10();
        eprintln!("{found:?}: {lufs:.2} LUFS, {peak:.2} dBTP");
        assert!((lufs + 16.0).abs() <= 0.05, "{lufs:.2} LUFS");
        assert!(peak <= -1.0 + 0.1, "true peak {peak:.2} dBTP");
        assert!(
            found.iterations > 1,
            "the limiter's take made up by iterating"
        );
    }
}
