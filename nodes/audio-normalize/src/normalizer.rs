//! The conversion pipeline of one stream, free of the node API so it can be
//! tested directly: swresample to the output rate, channels and format (one
//! context, recreated only when the input format changes), then optionally
//! loudness normalization and the true-peak limiter on float samples.
//!
//! Output pts count output samples from the first input pts (rescaled to the
//! output rate); capture times follow the input's: output sample k carries the
//! capture time of the input instant it came from.

use anyhow::{Context, Result};
use ffmpeg_next::format::{sample::Type, Sample};
use node_api::{AudioFrame, TimeBase};
use node_media::audio::{
    default_layout, AudioSpec, CaptureTimeline, Planes, PlanesMut, Resampler, WireFormat,
};

use crate::limiter::TruePeakLimiter;
use crate::loudness::{LoudnessControl, Summary};

#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub rate: u32,
    pub channels: u16,
    pub wire: WireFormat,
    pub target_lufs: Option<f64>,
    /// Seconds the loudness gain looks ahead (the output's added latency).
    pub lookahead_s: f64,
    /// A fixed gain before the limiter (dB); `None`: no gain stage.
    pub gain_db: Option<f64>,
    pub true_peak_db: f64,
}

/// What became of an input frame.
pub enum Output<'a> {
    /// Already in the output format: send the input payload with this header.
    Forward(AudioFrame),
    Converted(AudioFrame, &'a [u8]),
    /// Everything is still inside the resampler or the limiter.
    Nothing,
}

/// The float path: loudness control, gain, limiter.
struct Loudness {
    /// `None` without a loudness target.
    control: Option<LoudnessControl>,
    /// The gain asked for and the one applied at the end of the last block
    /// (linear): a change ramps across one block, without a click.
    gain: f32,
    applied: f32,
    limiter: TruePeakLimiter,
    /// Limiter output frames still to drop: its latency, so output sample k is input sample k.
    priming: usize,
}

pub struct Normalizer {
    settings: Settings,
    out_spec: AudioSpec,
    /// What the resampler produces: the output spec, or float for loudness processing.
    work_spec: AudioSpec,
    resampler: Option<Resampler>,
    loudness: Option<Loudness>,
    work: Vec<u8>,
    floats: Vec<f32>,
    out: Vec<u8>,
    timeline: CaptureTimeline,
    /// Input consumed, in output-rate samples.
    in_pos: f64,
    first_pts: Option<i64>,
    out_pos: u64,
}

impl Normalizer {
    pub fn new(settings: Settings) -> Result<Normalizer> {
        let layout = default_layout(settings.channels);
        let out_spec = AudioSpec::new(settings.wire.av(), settings.rate, settings.channels, layout);
        let float_path = settings.target_lufs.is_some() || settings.gain_db.is_some();
        let (work_spec, loudness) = match float_path {
            true => {
                let control = match settings.target_lufs {
                    Some(target) => Some(LoudnessControl::new(
                        settings.channels as usize,
                        settings.rate,
                        layout,
                        target,
                        settings.lookahead_s,
                    )?),
                    None => None,
                };
                let gain = db_to_gain(settings.gain_db.unwrap_or(0.0));
                let limiter = TruePeakLimiter::new(
                    settings.channels as usize,
                    settings.rate,
                    settings.true_peak_db,
                );
                let priming =
                    limiter.latency() + control.as_ref().map_or(0, LoudnessControl::latency);
                let float = AudioSpec::new(
                    Sample::F32(Type::Packed),
                    settings.rate,
                    settings.channels,
                    layout,
                );
                (
                    float,
                    Some(Loudness {
                        control,
                        gain,
                        applied: gain,
                        limiter,
                        priming,
                    }),
                )
            }
            false => (out_spec, None),
        };
        Ok(Normalizer {
            settings,
            out_spec,
            work_spec,
            resampler: None,
            loudness,
            work: Vec::new(),
            floats: Vec::new(),
            out: Vec::new(),
            timeline: CaptureTimeline::new(settings.rate),
            in_pos: 0.0,
            first_pts: None,
            out_pos: 0,
        })
    }

    pub fn out_spec(&self) -> &AudioSpec {
        &self.out_spec
    }

    /// When normalizing: the loudness gain (dB), the measured input loudness
    /// (LUFS) and the deepest limiter gain since the last call (dB).
    pub fn loudness_state(&mut self) -> Option<(f64, f64, f64)> {
        self.loudness.as_mut().map(|l| {
            let limiter_db = 20.0 * (l.limiter.take_min_gain() as f64).log10();
            let (gain, lufs) = l
                .control
                .as_ref()
                .map_or((0.0, f64::NEG_INFINITY), |c| (c.gain_db(), c.loudness()));
            (gain + 20.0 * (l.gain as f64).log10(), lufs, limiter_db)
        })
    }

    /// With a loudness target: its account now.
    pub fn loudness_end(&self) -> Option<Summary> {
        Some(self.loudness.as_ref()?.control.as_ref()?.summary())
    }

    /// A new loudness target while running; only where the node started
    /// with one (the float path is chosen at the start).
    pub fn set_target(&mut self, target_lufs: f64) -> Result<(), String> {
        match self.loudness.as_mut().and_then(|l| l.control.as_mut()) {
            Some(c) => {
                c.set_target(target_lufs);
                Ok(())
            }
            None => Err(
                "started without target_lufs: loudness normalization cannot begin while running"
                    .into(),
            ),
        }
    }

    /// A new gain while running; only where the node started with
    /// `gain_db` or `target_lufs` set (the float path).
    pub fn set_gain(&mut self, gain_db: f64) -> Result<(), String> {
        match self.loudness.as_mut() {
            Some(l) => {
                l.gain = db_to_gain(gain_db);
                Ok(())
            }
            None => Err("started without gain_db or target_lufs: samples pass untouched, a gain cannot begin while running".into()),
        }
    }

    /// Takes one input frame.
    pub fn process(&mut self, h: &AudioFrame, payload: &[u8]) -> Result<Output<'_>> {
        let spec = AudioSpec::of_message(h, payload)?;
        let samples = h.samples as usize;
        let rate = self.settings.rate;
        let first_pts = *self
            .first_pts
            .get_or_insert_with(|| node_media::audio::samples_at(h.pts, h.time_base, rate));
        self.timeline.mark(self.in_pos.round() as u64, h.capture_ns);
        self.in_pos += samples as f64 * rate as f64 / h.sample_rate as f64;

        // Zero copy: nothing to convert, nothing buffered.
        if self.resampler.is_none()
            && self.loudness.is_none()
            && spec == self.out_spec
            && !self.settings.wire.needs_quantize()
        {
            let header = self.header(first_pts, samples);
            return Ok(Output::Forward(header));
        }

        let mut produced = 0;
        if self.resampler.as_ref().is_some_and(|r| *r.input() != spec) {
            // The input format changed: finish the old conversion, then start anew.
            produced = self.drain_resampler(0)?;
            self.resampler = None;
        }
        if self.resampler.is_none() {
            self.resampler =
                Some(Resampler::new(spec, self.work_spec).context("audio conversion")?);
        }
        let r = self.resampler.as_mut().expect("just set");
        let cap = r.max_output(samples);
        let bytes = self.work_spec.payload_bytes(produced + cap);
        if self.work.len() < bytes {
            self.work.resize(bytes, 0);
        }
        let at = self.work_spec.payload_bytes(produced);
        let n = r.convert(
            &Planes::payload(payload, &spec, samples)?,
            &mut PlanesMut::payload(&mut self.work[at..], &self.work_spec, cap)?,
        )?;
        self.finish_block(produced + n, first_pts)
    }

    /// Flushes the resampler into `work` after `already` samples; returns the total.
    fn drain_resampler(&mut self, already: usize) -> Result<usize> {
        let Some(r) = self.resampler.as_mut() else {
            return Ok(already);
        };
        let mut total = already;
        loop {
            let cap = r.max_output(0).max(256);
            let need = self.work_spec.payload_bytes(total + cap);
            if self.work.len() < need {
                self.work.resize(need, 0);
            }
            let at = self.work_spec.payload_bytes(total);
            let n = r.flush(&mut PlanesMut::payload(
                &mut self.work[at..],
                &self.work_spec,
                cap,
            )?)?;
            if n == 0 {
                return Ok(total);
            }
            total += n;
        }
    }

    /// End of input: what the resampler and the limiter still hold.
    pub fn flush(&mut self) -> Result<Output<'_>> {
        let Some(first_pts) = self.first_pts else {
            return Ok(Output::Nothing);
        };
        let mut n = self.drain_resampler(0)?;
        if let Some(l) = self.loudness.as_ref() {
            // Push the delay lines (look-ahead, limiter) out with silence:
            // all of them, so every input sample comes out however short
            // the stream was.
            let tail = l.limiter.latency() + l.control.as_ref().map_or(0, LoudnessControl::latency);
            let need = self.work_spec.payload_bytes(n + tail);
            if self.work.len() < need {
                self.work.resize(need, 0);
            }
            let at = self.work_spec.payload_bytes(n);
            self.work[at..need].fill(0);
            n += tail;
        }
        self.finish_block(n, first_pts)
    }

    /// Runs `n` converted samples in `work` through loudness processing (if
    /// any) into the output format, and makes the output frame.
    fn finish_block(&mut self, n: usize, first_pts: i64) -> Result<Output<'_>> {
        let ch = self.settings.channels as usize;
        let (data_from, samples) = match self.loudness.as_mut() {
            None => {
                let bytes = self.out_spec.payload_bytes(n);
                self.settings.wire.quantize(&mut self.work[..bytes]);
                (false, n)
            }
            Some(l) => {
                if self.floats.len() < n * ch {
                    self.floats.resize(n * ch, 0.0);
                }
                let floats = &mut self.floats[..n * ch];
                for (f, b) in floats.iter_mut().zip(self.work.chunks_exact(4)) {
                    *f = f32::from_ne_bytes([b[0], b[1], b[2], b[3]]);
                }
                if let Some(c) = l.control.as_mut() {
                    c.process(floats)?;
                }
                ramp_gain(floats, ch, l.applied, l.gain);
                l.applied = l.gain;
                if let Some(c) = l.control.as_mut() {
                    c.limiter_input(floats)?;
                }
                l.limiter.process(floats);
                let skip = l.priming.min(n);
                l.priming -= skip;
                let kept = &floats[skip * ch..];
                if let Some(c) = l.control.as_mut() {
                    c.limiter_output(kept)?;
                }
                let bytes = self.out_spec.payload_bytes(n - skip);
                if self.out.len() < bytes {
                    self.out.resize(bytes, 0);
                }
                self.settings.wire.write_f32(kept, &mut self.out[..bytes]);
                (true, n - skip)
            }
        };
        if samples == 0 {
            return Ok(Output::Nothing);
        }
        let header = self.header(first_pts, samples);
        let bytes = self.out_spec.payload_bytes(samples);
        let data = if data_from {
            &self.out[..bytes]
        } else {
            &self.work[..bytes]
        };
        Ok(Output::Converted(header, data))
    }

    /// The header of the next `samples` output samples.
    fn header(&mut self, first_pts: i64, samples: usize) -> AudioFrame {
        let h = AudioFrame {
            format: self.settings.wire.format,
            sample_rate: self.settings.rate,
            channels: self.settings.channels,
            channel_layout: self.out_spec.layout,
            samples: samples as u32,
            pts: first_pts + self.out_pos as i64,
            time_base: TimeBase::new(1, self.settings.rate as i32),
            capture_ns: self.timeline.capture_ns(self.out_pos),
        };
        self.out_pos += samples as u64;
        h
    }

    /// Output samples so far.
    pub fn samples_out(&self) -> u64 {
        self.out_pos
    }
}

fn db_to_gain(db: f64) -> f32 {
    10f64.powf(db / 20.0) as f32
}

/// Multiplies interleaved `io` by a gain going from `from` to `to` across it.
fn ramp_gain(io: &mut [f32], channels: usize, from: f32, to: f32) {
    if from == 1.0 && to == 1.0 {
        return;
    }
    let frames = (io.len() / channels).max(1);
    let step = (to - from) / frames as f32;
    for (i, frame) in io.chunks_exact_mut(channels).enumerate() {
        let g = from + step * (i + 1) as f32;
        for v in frame {
            *v *= g;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ebur128::{EbuR128, Mode};
    use node_api::SampleFormat;
    use node_media::audio::read_f32;

    fn settings(wire: &str, target: Option<f64>) -> Settings {
        Settings {
            rate: 48_000,
            channels: 2,
            wire: WireFormat::from_param(wire).unwrap(),
            target_lufs: target,
            lookahead_s: 0.0,
            gain_db: None,
            true_peak_db: -1.0,
        }
    }

    fn frame(
        format: SampleFormat,
        rate: u32,
        channels: u16,
        samples: u32,
        pts: i64,
        capture_ns: u64,
    ) -> AudioFrame {
        AudioFrame {
            format,
            sample_rate: rate,
            channels,
            channel_layout: 0,
            samples,
            pts,
            time_base: TimeBase::new(1, rate as i32),
            capture_ns,
        }
    }

    /// Runs interleaved f32 frames of `block` samples through; returns the output (as f32) and headers.
    fn run(
        n: &mut Normalizer,
        input: &[f32],
        channels: usize,
        rate: u32,
        block: usize,
    ) -> (Vec<f32>, Vec<AudioFrame>) {
        let mut out = Vec::new();
        let mut headers = Vec::new();
        let mut collect = |o: Output<'_>, payload: &[u8]| match o {
            Output::Forward(h) => {
                let mut f = vec![0f32; payload.len() / 4];
                read_f32(h.format, payload, &mut f);
                out.extend_from_slice(&f);
                headers.push(h);
            }
            Output::Converted(h, data) => {
                let mut f = vec![0f32; h.samples as usize * h.channels as usize];
                read_f32(h.format, data, &mut f);
                out.extend_from_slice(&f);
                headers.push(h);
            }
            Output::Nothing => {}
        };
        let mut pos = 0usize;
        for chunk in input.chunks(block * channels) {
            let bytes: Vec<u8> = chunk.iter().flat_map(|v| v.to_ne_bytes()).collect();
            let samples = chunk.len() / channels;
            let h = frame(
                SampleFormat::F32,
                rate,
                channels as u16,
                samples as u32,
                pos as i64,
                1_000_000_000 + pos as u64 * 1_000_000_000 / rate as u64,
            );
            pos += samples;
            let o = n.process(&h, &bytes).unwrap();
            collect(o, &bytes);
        }
        let o = n.flush().unwrap();
        collect(o, &[]);
        (out, headers)
    }

    fn sine(rate: u32, channels: usize, seconds: f64, amp: f32) -> Vec<f32> {
        let frames = (rate as f64 * seconds) as usize;
        (0..frames)
            .flat_map(|i| {
                let v =
                    amp * (std::f64::consts::TAU * 1000.0 * i as f64 / rate as f64).sin() as f32;
                std::iter::repeat_n(v, channels)
            })
            .collect()
    }

    fn loudness(signal: &[f32], channels: usize, rate: u32) -> (f64, f64) {
        let mut m = EbuR128::new(channels as u32, rate, Mode::I | Mode::TRUE_PEAK).unwrap();
        m.add_frames_f32(signal).unwrap();
        let tp = (0..channels as u32)
            .map(|c| m.true_peak(c).unwrap())
            .fold(0.0, f64::max);
        (m.loudness_global().unwrap(), 20.0 * tp.log10())
    }

    #[test]
    fn a_gain_changes_while_running_and_only_on_the_float_path() {
        let mut plain = Normalizer::new(settings("f32", None)).unwrap();
        assert!(plain.set_gain(-20.0).unwrap_err().contains("cannot begin"));
        assert!(plain
            .set_target(-23.0)
            .unwrap_err()
            .contains("cannot begin"));
        let mut s = settings("f32", None);
        s.gain_db = Some(0.0);
        let mut n = Normalizer::new(s).unwrap();
        let input = sine(48_000, 2, 1.0, 0.5);
        let (before, _) = run(&mut n, &input, 2, 48_000, 1024);
        n.set_gain(-20.0).unwrap();
        let (after, _) = run(&mut n, &input, 2, 48_000, 1024);
        let (loud, _) = loudness(&before[48_000..], 2, 48_000);
        // The first block ramps down; the rest is 20 dB lower.
        let (quiet, _) = loudness(&after[2 * 2048..], 2, 48_000);
        assert!(
            (loud - quiet - 20.0).abs() < 0.1,
            "{loud} then {quiet} LUFS"
        );
    }

    #[test]
    fn same_format_is_forwarded() {
        let mut n = Normalizer::new(settings("f32", None)).unwrap();
        let input = sine(48_000, 2, 0.1, 0.5);
        let (out, headers) = run(&mut n, &input, 2, 48_000, 1024);
        assert_eq!(out, input);
        assert_eq!(headers[0].pts, 0);
        assert_eq!(headers[1].pts, 1024);
        assert_eq!(
            headers[1].capture_ns,
            1_000_000_000 + 1024 * 1_000_000_000 / 48_000
        );
    }

    #[test]
    fn resamples_with_continuous_pts_and_capture_times() {
        let mut n = Normalizer::new(settings("s16", None)).unwrap();
        // 44.1 kHz mono in frames of 441, first pts 44100 (1 s).
        let input = sine(44_100, 1, 2.0, 0.5);
        let mut headers = Vec::new();
        let mut total = 0usize;
        for (i, chunk) in input.chunks(441).enumerate() {
            let bytes: Vec<u8> = chunk.iter().flat_map(|v| v.to_ne_bytes()).collect();
            let h = frame(
                SampleFormat::F32,
                44_100,
                1,
                441,
                44_100 + i as i64 * 441,
                5_000_000_000 + i as u64 * 10_000_000,
            );
            if let Output::Converted(h, data) = n.process(&h, &bytes).unwrap() {
                assert_eq!(h.format, SampleFormat::S16);
                assert_eq!(data.len(), h.samples as usize * 4);
                headers.push(h);
            }
        }
        if let Output::Converted(h, _) = n.flush().unwrap() {
            headers.push(h);
        }
        for h in &headers {
            total += h.samples as usize;
        }
        assert_eq!(total, 96_000);
        assert_eq!(headers[0].pts, 48_000);
        for w in headers.windows(2) {
            assert_eq!(w[1].pts, w[0].pts + w[0].samples as i64);
            // capture time of the first sample = input time of the same instant
            let expect = 5_000_000_000 + ((w[1].pts - 48_000) as u64 * 1_000_000_000 / 48_000);
            assert!(
                w[1].capture_ns.abs_diff(expect) <= 21_000,
                "{} vs {expect}",
                w[1].capture_ns
            );
        }
    }

    #[test]
    fn normalizes_a_quiet_tone_to_the_target() {
        let rate = 48_000;
        // Calibrate a 1 kHz stereo sine to -30 LUFS.
        let (unit, _) = loudness(&sine(rate, 2, 3.0, 1.0), 2, rate);
        let amp = 10f64.powf((-30.0 - unit) / 20.0) as f32;
        let input = sine(rate, 2, 14.0, amp);
        assert!((loudness(&input, 2, rate).0 + 30.0).abs() < 0.05);

        let mut n = Normalizer::new(settings("f32", Some(-16.0))).unwrap();
        let (out, headers) = run(&mut n, &input, 2, rate, 1024);
        assert_eq!(out.len(), input.len(), "same duration out as in");
        assert_eq!(headers[0].pts, 0);
        let (lufs, tp) = loudness(&out, 2, rate);
        // The gain is set from the first 400 ms block on, not seconds later.
        let second = &out[2 * rate as usize / 2..2 * 3 * rate as usize / 2];
        let (early, _) = loudness(second, 2, rate);
        eprintln!(
            "-30 LUFS in, target -16: {lufs:.2} LUFS, {tp:.2} dBTP; 0.5..1.5 s at {early:.2}"
        );
        assert!((lufs + 16.0).abs() <= 0.1, "program at {lufs:.2} LUFS");
        assert!((early + 16.0).abs() <= 0.2, "0.5..1.5 s at {early:.2} LUFS");
        assert!(tp <= -1.0 + 0.1, "true peak {tp:.2} dBTP");
    }

    #[test]
    fn a_look_ahead_delays_the_audio_and_loses_none_of_it() {
        let rate = 48_000;
        let input = sine(rate, 2, 3.0, 0.01);
        for (seconds, lookahead) in [(3.0, 1.0), (0.2, 1.0)] {
            let input = &input[..(2.0 * rate as f64 * seconds) as usize];
            let mut s = settings("f32", Some(-16.0));
            s.lookahead_s = lookahead;
            let mut n = Normalizer::new(s).unwrap();
            let (out, headers) = run(&mut n, input, 2, rate, 1024);
            // Shorter than the look-ahead too: the flush pushes it all out.
            assert_eq!(
                out.len(),
                input.len(),
                "{seconds} s in, {lookahead} s ahead"
            );
            // Output sample k is input sample k: same pts, same capture time.
            assert_eq!(headers[0].pts, 0);
            assert_eq!(headers[0].capture_ns, 1_000_000_000);
            let gained = out.iter().zip(input).find(|(o, _)| **o != 0.0);
            let (o, i) = gained.expect("sound out");
            assert!(o / i > 1.0 && o.signum() == i.signum(), "{o} from {i}");
        }
    }

    #[test]
    fn limiter_holds_the_ceiling_when_the_target_is_loud() {
        let rate = 48_000;
        let input = sine(rate, 2, 12.0, 0.5);
        let mut s = settings("s24", Some(-5.0));
        // A sine at -5 LUFS peaks near -5 dBTP: a -8 dBTP ceiling must win.
        s.true_peak_db = -8.0;
        let mut n = Normalizer::new(s).unwrap();
        let (out, _) = run(&mut n, &input, 2, rate, 960);
        let (_, tp) = loudness(&out, 2, rate);
        let (lufs, _) = loudness(&out[out.len() - 2 * 4 * rate as usize..], 2, rate);
        eprintln!("target -5 LUFS, ceiling -8 dBTP: {tp:.2} dBTP, last 4 s at {lufs:.2} LUFS");
        assert!(tp <= -8.0 + 0.1, "true peak {tp:.2} dBTP");
        assert!(lufs < -7.5, "the ceiling wins over the target: {lufs}");
    }

    #[test]
    fn makes_up_for_what_the_limiter_takes() {
        let rate = 48_000;
        // A tone with a full-scale click every 250 ms: the limiter takes
        // the clicks' loudness, the gain gives it back.
        let mut input = sine(rate, 2, 20.0, 0.05);
        for (i, v) in input.iter_mut().enumerate() {
            let frame = i / 2;
            if frame % (rate as usize / 4) < 120 {
                *v *= 10.0;
            }
        }
        let mut n = Normalizer::new(settings("f32", Some(-16.0))).unwrap();
        let (out, _) = run(&mut n, &input, 2, rate, 1024);
        let (lufs, tp) = loudness(&out[2 * 10 * rate as usize..], 2, rate);
        let makeup = n.loudness_end().unwrap().makeup_db;
        eprintln!("clicks: last 10 s at {lufs:.2} LUFS, {tp:.2} dBTP, makeup {makeup:.2} dB");
        assert!(makeup > 0.5, "makeup {makeup:.2} dB");
        assert!((lufs + 16.0).abs() <= 0.3, "last 10 s at {lufs:.2} LUFS");
        assert!(tp <= -1.0 + 0.1, "true peak {tp:.2} dBTP");
    }
}
