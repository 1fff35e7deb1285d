//! One audio encoder: opened on the first frame (its rate and channels
//! decide the encoder's), fed through swresample into a FIFO that cuts the
//! encoder's frame size, and drained at the end.
//!
//! Timestamps follow FFmpeg: frames carry pts in samples (time base
//! 1/sample_rate) counted from the first input pts; packets come out
//! `initial_padding` earlier (AAC priming, Opus pre-skip, LAME delay), so the
//! first packet's pts is negative and the muxer writes an edit list or
//! pre-skip that trims exactly the encoder delay.

use anyhow::{anyhow, bail, Context, Result};
use ff::codec::Capabilities;
use ffmpeg_next as ff;
use node_api::{AudioFrame, CodecParams, EncodedPacket, MediaKind, TimeBase};
use node_media::audio::{
    alloc_frame, make_writable, set_codec_layout, AudioSpec, CaptureTimeline, Planes, Resampler,
    SampleFifo,
};
use node_media::packet::{codec_params_from, from_ffmpeg};

use crate::preset;

/// A packet and its bytes, as the node sends it.
pub type Emit<'a> = dyn FnMut(EncodedPacket, &[u8]) -> Result<()> + 'a;

pub struct Settings {
    pub codec: preset::Codec,
    pub bitrate: u64,
}

pub struct AudioEncoder {
    codec: &'static str,
    encoder: ff::encoder::audio::Encoder,
    spec: AudioSpec,
    frame_size: usize,
    /// Whether the encoder takes a short last frame (else it is padded).
    small_last_frame: bool,
    resampler: Option<Resampler>,
    fifo: SampleFifo,
    frame: ff::frame::Audio,
    packet: ff::Packet,
    params: CodecParams,
    time_base: TimeBase,
    first_pts: i64,
    /// Samples given to the encoder so far.
    fed: u64,
    /// Input consumed, in encoder-rate samples (for capture times).
    in_pos: f64,
    timeline: CaptureTimeline,
    padded: usize,
    packets: u64,
    bytes: u64,
    duration: i64,
}

impl AudioEncoder {
    /// Opens the encoder for a stream whose first frame is `first`.
    pub fn open(settings: &Settings, first: &AudioFrame) -> Result<AudioEncoder> {
        let name = preset::encoder_name(settings.codec);
        let codec_label = settings.codec.name();
        let codec = ff::encoder::find_by_name(name).ok_or_else(|| {
            anyhow!(
                "this FFmpeg has no `{name}` encoder (needed for {})",
                settings.codec
            )
        })?;
        let caps = codec
            .audio()
            .map_err(|e| anyhow!("`{name}` is not an audio encoder: {e}"))?;
        let formats: Vec<ff::format::Sample> =
            caps.formats().map(|f| f.collect()).unwrap_or_default();
        let rates: Vec<u32> = caps
            .rates()
            .map(|r| r.map(|v| v as u32).collect())
            .unwrap_or_default();
        let layouts: Vec<u64> = caps
            .channel_layouts()
            .map(|l| l.map(|c| c.bits()).collect())
            .unwrap_or_default();

        let input = AudioSpec::of_header(first);
        let format = preset::pick_format(&formats)
            .ok_or_else(|| anyhow!("`{name}` accepts no known sample format"))?;
        let rate = preset::pick_rate(settings.codec, input.rate, &rates);
        let layout = preset::pick_layout(input.layout, input.channels, &layouts);
        let spec = AudioSpec::new(format, rate, layout.count_ones().max(1) as u16, layout);
        let max = preset::max_bitrate(settings.codec, spec.channels, rate);
        let bitrate = if settings.bitrate > max {
            tracing::warn!(
                "{} at {} b/s is above its maximum for {} ch; using {max}",
                settings.codec,
                settings.bitrate,
                spec.channels
            );
            max
        } else {
            settings.bitrate
        };

        let mut enc = ff::codec::context::Context::new_with_codec(codec)
            .encoder()
            .audio()
            .map_err(|e| anyhow!("cannot create the {name} encoder: {e}"))?;
        enc.set_rate(rate as i32);
        enc.set_format(format);
        set_codec_layout(&mut enc, spec.layout, spec.channels)?;
        enc.set_bit_rate(bitrate as usize);
        enc.set_time_base(ff::Rational::new(1, rate as i32));
        // Global header: extradata carries AudioSpecificConfig / OpusHead for the muxer.
        enc.set_flags(ff::codec::Flags::GLOBAL_HEADER);
        let encoder = enc.open_as(codec).with_context(|| {
            format!(
                "cannot open the {name} encoder ({} Hz, {} ch, {} b/s)",
                rate, spec.channels, bitrate
            )
        })?;

        let frame_size = match encoder.frame_size() as usize {
            0 => 1024,
            n => n,
        };
        let small_last_frame = codec
            .capabilities()
            .intersects(Capabilities::SMALL_LAST_FRAME | Capabilities::VARIABLE_FRAME_SIZE);
        let mut params = codec_params_from(
            &ff::codec::Parameters::from(&encoder),
            ff::Rational::new(0, 1),
        );
        params.frame_size = frame_size as u32;
        params.bit_rate = bitrate;
        let frame = alloc_frame(format, frame_size, spec.layout, spec.channels)?;
        let first_pts = node_media::audio::samples_at(first.pts, first.time_base, rate);
        tracing::info!(
            "{name}: {} Hz, {} ch, {}, {} kb/s, frame {frame_size}, delay {} samples",
            rate,
            spec.channels,
            format.name(),
            bitrate / 1000,
            params.initial_padding
        );
        Ok(AudioEncoder {
            codec: codec_label,
            encoder,
            spec,
            frame_size,
            small_last_frame,
            resampler: None,
            fifo: SampleFifo::new(&spec, 4 * frame_size),
            frame,
            packet: ff::Packet::empty(),
            params,
            time_base: TimeBase::new(1, rate as i32),
            first_pts,
            fed: 0,
            in_pos: 0.0,
            timeline: CaptureTimeline::new(rate),
            padded: 0,
            packets: 0,
            bytes: 0,
            duration: 0,
        })
    }

    /// Measured bitrate of what was produced so far (bits per second of media).
    pub fn bitrate_bps(&self) -> f64 {
        if self.duration <= 0 {
            return 0.0;
        }
        self.bytes as f64 * 8.0 / self.time_base.seconds(self.duration)
    }

    /// (packets, bytes, padding samples added to the last frame).
    pub fn totals(&self) -> (u64, u64, usize) {
        (self.packets, self.bytes, self.padded)
    }

    /// Encodes one raw frame; packets go to `emit`.
    pub fn push(&mut self, h: &AudioFrame, payload: &[u8], emit: &mut Emit<'_>) -> Result<()> {
        let spec = AudioSpec::of_header(h);
        let samples = h.samples as usize;
        self.timeline.mark(self.in_pos.round() as u64, h.capture_ns);
        self.in_pos += samples as f64 * self.spec.rate as f64 / h.sample_rate.max(1) as f64;
        if self.resampler.as_ref().is_some_and(|r| *r.input() != spec) {
            // The input format changed: finish the old conversion first.
            self.flush_resampler()?;
            self.resampler = None;
        }
        if self.resampler.is_none() {
            self.resampler =
                Some(Resampler::new(spec, self.spec).context("audio-encode input conversion")?);
        }
        let r = self.resampler.as_mut().expect("just set");
        let mut tail = self.fifo.tail(r.max_output(samples));
        let n = r.convert(&Planes::payload(payload, &spec, samples)?, &mut tail)?;
        self.fifo.commit(n);
        while self.fifo.len() >= self.frame_size {
            self.encode_frame(self.frame_size, emit)?;
        }
        Ok(())
    }

    fn flush_resampler(&mut self) -> Result<()> {
        if let Some(r) = self.resampler.as_mut() {
            loop {
                let mut tail = self.fifo.tail(self.frame_size);
                let n = r.flush(&mut tail)?;
                self.fifo.commit(n);
                if n == 0 {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    fn encode_frame(&mut self, n: usize, emit: &mut Emit<'_>) -> Result<()> {
        make_writable(&mut self.frame)?;
        self.fifo.pop_to_frame(&mut self.frame, n)?;
        self.frame.set_pts(Some(self.first_pts + self.fed as i64));
        self.fed += n as u64;
        self.encoder
            .send_frame(&self.frame)
            .map_err(|e| anyhow!("{} encoding failed: {e}", self.codec))?;
        self.receive(emit)
    }

    /// Sends every packet the encoder has ready.
    fn receive(&mut self, emit: &mut Emit<'_>) -> Result<()> {
        loop {
            match self.encoder.receive_packet(&mut self.packet) {
                Ok(()) => {}
                Err(e) if node_media::codec::is_again(&e) => return Ok(()),
                Err(ff::Error::Eof) => return Ok(()),
                Err(e) => bail!("{} encoding failed: {e}", self.codec),
            }
            let pts = self.packet.pts().unwrap_or(self.first_pts);
            // pts is presentation time: the priming packets before 0 carry the
            // encoder delay and take the first sample's capture time.
            let pos = (pts - self.first_pts).max(0) as u64;
            let capture_ns = self.timeline.capture_ns(pos);
            let header = from_ffmpeg(
                &self.packet,
                MediaKind::Audio,
                self.codec,
                self.params.clone(),
                self.time_base,
                capture_ns,
            );
            let data = self.packet.data().unwrap_or(&[]);
            self.packets += 1;
            self.bytes += data.len() as u64;
            self.duration += header.duration.max(0);
            emit(header, data)?;
        }
    }

    /// End of input: the last partial frame, then the encoder's delayed packets.
    pub fn finish(&mut self, emit: &mut Emit<'_>) -> Result<()> {
        self.flush_resampler()?;
        while self.fifo.len() >= self.frame_size {
            self.encode_frame(self.frame_size, emit)?;
        }
        let rest = self.fifo.len();
        if rest > 0 {
            if !self.small_last_frame {
                // This encoder needs whole frames: pad the last with silence.
                self.padded = self.frame_size - rest;
                self.fifo.push_silence(self.padded);
                tracing::info!(
                    "{}: padded the last frame with {} samples of silence",
                    self.codec,
                    self.padded
                );
            }
            let n = self.fifo.len();
            self.encode_frame(n, emit)?;
        }
        self.encoder
            .send_eof()
            .map_err(|e| anyhow!("{} encoder drain failed: {e}", self.codec))?;
        self.receive(emit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use node_api::SampleFormat;

    fn tone_frames(
        rate: u32,
        channels: u16,
        frame: usize,
        total: usize,
    ) -> Vec<(AudioFrame, Vec<u8>)> {
        let mut out = Vec::new();
        let mut pos = 0;
        while pos < total {
            let n = frame.min(total - pos);
            let mut bytes = Vec::with_capacity(n * channels as usize * 4);
            for i in pos..pos + n {
                let v =
                    (0.3 * (std::f64::consts::TAU * 440.0 * i as f64 / rate as f64).sin()) as f32;
                for _ in 0..channels {
                    bytes.extend_from_slice(&v.to_ne_bytes());
                }
            }
            let h = AudioFrame {
                format: SampleFormat::F32,
                sample_rate: rate,
                channels,
                channel_layout: 0,
                samples: n as u32,
                pts: pos as i64,
                time_base: TimeBase::new(1, rate as i32),
                capture_ns: 1_000_000_000 + pos as u64 * 1_000_000_000 / rate as u64,
            };
            out.push((h, bytes));
            pos += n;
        }
        out
    }

    fn encode(codec: &str, rate: u32, total: usize) -> (AudioEncoder, Vec<EncodedPacket>) {
        node_media::init().unwrap();
        let frames = tone_frames(rate, 2, 1024, total);
        use node_catalog::kinds::audio_encode::Quality;
        use node_catalog::Choice;
        let settings = Settings {
            codec: preset::Codec::from_name(codec).unwrap(),
            bitrate: Quality::Standard.bitrate(),
        };
        let mut enc = AudioEncoder::open(&settings, &frames[0].0).unwrap();
        let mut packets = Vec::new();
        let mut emit = |p: EncodedPacket, data: &[u8]| {
            assert!(!data.is_empty());
            packets.push(p);
            Ok(())
        };
        for (h, bytes) in &frames {
            enc.push(h, bytes, &mut emit).unwrap();
        }
        enc.finish(&mut emit).unwrap();
        (enc, packets)
    }

    #[test]
    fn aac_timestamps_and_priming() {
        let (enc, packets) = encode("aac", 48_000, 48_000);
        let p = &enc.params;
        assert_eq!(
            (p.sample_rate, p.channels, p.frame_size, p.initial_padding),
            (48_000, 2, 1024, 1024)
        );
        assert!(!p.extradata.is_empty(), "AudioSpecificConfig in extradata");
        assert_eq!(packets[0].pts, -1024);
        assert_eq!(packets[0].codec, "aac");
        for w in packets.windows(2) {
            assert_eq!(w[1].pts, w[0].pts + w[0].duration);
            assert!(w[1].capture_ns >= w[0].capture_ns);
        }
        // Every input sample is covered: priming + 48000 samples.
        let last = packets.last().unwrap();
        assert_eq!(last.pts + last.duration, 48_000);
        assert_eq!(packets[1].capture_ns, 1_000_000_000);
        assert_eq!(enc.totals().2, 0, "AAC takes a short last frame");
    }

    #[test]
    fn opus_resamples_to_48k_with_pre_skip() {
        let (enc, packets) = encode("opus", 44_100, 44_100);
        let p = &enc.params;
        assert_eq!(
            (p.sample_rate, p.frame_size, p.initial_padding),
            (48_000, 960, 312)
        );
        assert_eq!(&p.extradata[..8], b"OpusHead");
        assert_eq!(packets[0].pts, -312);
        assert_eq!(packets[0].time_base, TimeBase::new(1, 48_000));
        let last = packets.last().unwrap();
        // 1 s at 44.1 kHz is 1 s at 48 kHz (give or take the resampler's rounding).
        assert!(
            (last.pts + last.duration - 48_000).abs() <= 2,
            "{}",
            last.pts + last.duration
        );
    }

    #[test]
    fn mp3_frames() {
        let (enc, packets) = encode("mp3", 44_100, 44_100 * 2);
        let p = &enc.params;
        assert_eq!((p.sample_rate, p.frame_size), (44_100, 1152));
        assert!(p.initial_padding > 0);
        assert_eq!(packets[0].pts, -(p.initial_padding as i64));
        let rate = enc.bitrate_bps();
        assert!((100_000.0..160_000.0).contains(&rate), "{rate}");
    }
}
