//! `mediagraph-nodes noise-suppress`: RNNoise (the `nnnoiseless` crate) on
//! each channel of 48 kHz audio, mixed wet/dry. Every output sample carries
//! the timestamps of the input sample it came from (the pts and capture
//! time of the input frames, pieces of them as soon as they are denoised):
//! the network's 10 ms delay is taken out, so picture and sound stay
//! together; what the node holds back to do it is its processing latency,
//! logged and published.

mod denoiser;

use std::collections::VecDeque;

use anyhow::Result;
use node_api::{metrics, AudioFrame, Event, Header, NoRestart, Node, SampleFormat};
use node_catalog::kinds::noise_suppress::{Settings, SAMPLE_RATE};
use node_media::audio::{read_f32, LevelMeter, WireFormat};

use denoiser::{Denoiser, DELAY, FRAME};

/// Entry point, with the arguments after the kind (none are taken).
pub fn main(_args: &[String]) {
    node_api::run_main(run);
}

/// Samples per frame the output pool is sized for (it grows if needed).
const RESERVE_SAMPLES: usize = 4096;

/// The stream once its first frame told its channels and format.
struct Stream {
    den: Denoiser,
    channels: u16,
    /// What is sent: the input's format when it is one of the wire formats
    /// (s16, s32, f32), else f32.
    wire: WireFormat,
    /// Input headers waiting for their samples to come out, and how many
    /// of the front one's are sent.
    headers: VecDeque<AudioFrame>,
    sent_of_front: usize,
    floats: Vec<f32>,
    interleaved: Vec<f32>,
    out: Vec<f32>,
    meter: LevelMeter,
    /// The most samples held back since the last publication.
    held_max: usize,
}

fn wire_of(format: SampleFormat) -> WireFormat {
    match format {
        SampleFormat::S16 => WireFormat { format, bits: 16 },
        SampleFormat::S32 | SampleFormat::F32 => WireFormat { format, bits: 32 },
        _ => WireFormat {
            format: SampleFormat::F32,
            bits: 32,
        },
    }
}

impl Stream {
    fn new(h: &AudioFrame, mix: f64) -> Stream {
        Stream {
            den: Denoiser::new(h.channels as usize, mix as f32),
            channels: h.channels,
            wire: wire_of(h.format),
            headers: VecDeque::with_capacity(16),
            sent_of_front: 0,
            floats: Vec::new(),
            interleaved: Vec::new(),
            out: Vec::new(),
            meter: LevelMeter::default(),
            held_max: 0,
        }
    }

    /// Takes an input frame's samples in, as interleaved floats.
    fn push(&mut self, h: &AudioFrame, payload: &[u8]) {
        let n = h.samples as usize * h.channels as usize;
        self.floats.resize(n, 0.0);
        read_f32(h.format, payload, &mut self.floats);
        let samples = if h.format.is_planar() {
            // Plane after plane: interleave.
            let frames = h.samples as usize;
            self.interleaved.resize(n, 0.0);
            for (i, v) in self.floats.iter().enumerate() {
                let (c, k) = (i / frames, i % frames);
                self.interleaved[k * h.channels as usize + c] = *v;
            }
            &self.interleaved
        } else {
            &self.floats
        };
        self.den.push(samples);
        self.headers.push_back(h.clone());
    }
}

/// A stream this node cannot take: said once, clearly, and not restarted.
fn refuse(h: &AudioFrame, channels: Option<u16>) -> Result<()> {
    if h.sample_rate != SAMPLE_RATE {
        return Err(NoRestart(format!(
            "noise-suppress takes {SAMPLE_RATE} Hz audio (RNNoise), got {} Hz: set the producer's `sample_rate: {SAMPLE_RATE}` or put an audio-normalize with `sample_rate: {SAMPLE_RATE}` before it",
            h.sample_rate
        ))
        .into());
    }
    match channels {
        Some(c) if c != h.channels => Err(NoRestart(format!(
            "the input changed from {c} to {} channels mid-stream",
            h.channels
        ))
        .into()),
        _ if h.channels == 0 => Err(NoRestart("an audio frame with 0 channels".into()).into()),
        _ => Ok(()),
    }
}

/// Sends what is denoised as soon as the network gives it out: the front
/// input frame whole, or in pieces of at least one network frame (so the
/// delay is the network's, not an input frame's). A piece carries the
/// timestamps of its first sample in the input.
fn send_ready(node: &mut Node, s: &mut Stream) -> Result<()> {
    while let Some(h) = s.headers.front() {
        let left = h.samples as usize - s.sent_of_front;
        let n = left.min(s.den.ready());
        if n == 0 || (n < left && n < FRAME) {
            break;
        }
        let header = piece(h, s.sent_of_front, n, s.wire.format);
        s.sent_of_front += n;
        if n == left {
            s.headers.pop_front();
            s.sent_of_front = 0;
        }
        s.out.resize(n * s.channels as usize, 0.0);
        s.den.take(&mut s.out);
        let mut buf = node.alloc("audio", s.out.len() * s.wire.bytes_per_sample())?;
        s.wire.write_f32(&s.out, &mut buf);
        if let Some(level) = s.meter.add_f32(&s.out, n, SAMPLE_RATE) {
            let m = node.metrics();
            m.set(metrics::LEVEL_PEAK_DBFS, level.peak_dbfs);
            m.set(metrics::LEVEL_RMS_DBFS, level.rms_dbfs);
            m.set(metrics::PROCESSING_LATENCY_MS, ms(s.held_max));
            s.held_max = 0;
        }
        node.send_audio("audio", header, buf)?;
    }
    s.held_max = s.held_max.max(s.den.held());
    Ok(())
}

/// The header of samples `from..from + n` of input frame `h`.
fn piece(h: &AudioFrame, from: usize, n: usize, format: SampleFormat) -> AudioFrame {
    let tb = h.time_base;
    // `from` samples in the frame's time base, rounded to the nearest.
    let den = tb.num as i128 * SAMPLE_RATE as i128;
    let offset = match den {
        0 => 0,
        d => ((from as i128 * tb.den as i128 * 2 + d) / (2 * d)) as i64,
    };
    AudioFrame {
        format,
        samples: n as u32,
        pts: h.pts + offset,
        capture_ns: h.capture_ns + (from as u64 * 1_000_000_000) / SAMPLE_RATE as u64,
        ..h.clone()
    }
}

fn ms(samples: usize) -> f64 {
    samples as f64 * 1000.0 / SAMPLE_RATE as f64
}

fn run() -> Result<()> {
    let mut node = Node::init()?;
    let settings = Settings::from_params(node.params())?;
    node.reserve("audio", RESERVE_SAMPLES * 2 * 4)?;
    tracing::info!(
        "RNNoise, mix {}; latency {:.0} ms look-ahead, up to {:.0} ms to fill a network frame and pieces of at least {:.0} ms, compensated in the timestamps",
        settings.mix,
        ms(DELAY),
        ms(FRAME),
        ms(FRAME)
    );
    let mut stream: Option<Stream> = None;
    let (mut warned, mut latency_max) = (false, 0usize);
    while let Some(event) = node.next_event()? {
        match event {
            Event::Input { input, message } => {
                let Header::Audio(h) = &message.header else {
                    if !warned {
                        tracing::warn!("ignoring a non-audio message on input `{input}`");
                        warned = true;
                    }
                    continue;
                };
                refuse(h, stream.as_ref().map(|s| s.channels))?;
                let s = stream.get_or_insert_with(|| Stream::new(h, settings.mix));
                s.push(h, &message.payload.as_slice());
                send_ready(&mut node, s)?;
                latency_max = latency_max.max(s.held_max);
            }
            Event::ParamUpdate { name, value, .. } => match (name.as_str(), value.as_f64()) {
                ("mix", Some(mix)) => {
                    if let Some(s) = stream.as_mut() {
                        s.den.set_mix(mix as f32);
                    }
                    tracing::info!("mix = {mix}");
                }
                _ => tracing::warn!("`{name}` = {value} not applied"),
            },
            Event::InputClosed { .. } | Event::Stop => {}
        }
    }
    if let Some(s) = stream.as_mut() {
        s.den.flush();
        send_ready(&mut node, s)?;
    }
    tracing::info!(
        "processing latency at most {:.1} ms (compensated: output timestamps are the input's)",
        ms(latency_max)
    );
    node.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use node_api::TimeBase;

    #[test]
    fn a_piece_carries_the_timestamps_of_its_first_sample() {
        let h = AudioFrame {
            format: SampleFormat::S16,
            sample_rate: SAMPLE_RATE,
            channels: 2,
            channel_layout: 3,
            samples: 1024,
            pts: 4096,
            time_base: TimeBase::new(1, SAMPLE_RATE as i32),
            capture_ns: 5_000_000_000,
        };
        let p = piece(&h, 480, 544, SampleFormat::F32);
        assert_eq!((p.pts, p.samples, p.format), (4576, 544, SampleFormat::F32));
        assert_eq!(p.capture_ns, 5_010_000_000);
        let ms = AudioFrame {
            time_base: TimeBase::new(1, 1000),
            pts: 100,
            ..h
        };
        assert_eq!(piece(&ms, 480, 544, SampleFormat::S16).pts, 110);
    }
}
