//! Audio clock drift. An audio device counts samples on its own crystal, so
//! its sample count runs tens to hundreds of ppm fast or slow against the
//! capture clock. [`DriftTracker`] fits capture time against sample position
//! (least squares over each continuous stretch of the stream, so timestamp
//! jitter averages out) and says how many samples to add or drop over the
//! next second for the output count to follow the capture clock;
//! [`DriftCorrector`] applies that by resampling (swresample's compensation),
//! a fraction of a sample at a time, never by cutting or padding.
//!
//! A frame whose capture time leaves the fitted line by more than the
//! tolerance starts a new stretch (a dropout, a device reset): the timeline
//! handles that jump with silence or a trim, logged, and the fit starts over
//! while the last slope keeps the compensation going.

use anyhow::Result;
use node_api::AudioFrame;
use node_media::audio::{AudioSpec, Planes, PlanesMut, Resampler};

const NS_PER_S: f64 = 1e9;
/// The compensation is planned over this much output, in seconds.
const HORIZON_S: f64 = 1.0;
/// A stretch must span this long before its own slope is trusted.
const MIN_FIT_SPAN_S: f64 = 2.0;
/// Drift below this is not corrected (nothing to gain, and the audio stays
/// zero-copy and bit-exact for sources on the capture clock, e.g. files).
const MIN_DRIFT_PPM: f64 = 5.0;

/// Least-squares line through (x, y) points, on centred sums so long
/// streams keep their precision.
#[derive(Debug, Clone, Default)]
struct LineFit {
    n: f64,
    sx: f64,
    sy: f64,
    sxx: f64,
    sxy: f64,
    syy: f64,
    x_min: f64,
    x_max: f64,
}

impl LineFit {
    fn add(&mut self, x: f64, y: f64) {
        if self.n == 0.0 {
            self.x_min = x;
        }
        self.x_max = x;
        self.n += 1.0;
        self.sx += x;
        self.sy += y;
        self.sxx += x * x;
        self.sxy += x * y;
        self.syy += y * y;
    }

    fn span(&self) -> f64 {
        self.x_max - self.x_min
    }

    /// (centred Sxx, Sxy, Syy).
    fn centred(&self) -> (f64, f64, f64) {
        let n = self.n.max(1.0);
        (
            self.sxx - self.sx * self.sx / n,
            self.sxy - self.sx * self.sy / n,
            self.syy - self.sy * self.sy / n,
        )
    }

    fn slope(&self) -> Option<f64> {
        let (cxx, cxy, _) = self.centred();
        (self.n >= 3.0 && cxx > 0.0).then(|| cxy / cxx)
    }

    /// Standard error of the slope.
    fn slope_error(&self) -> Option<f64> {
        let (cxx, cxy, cyy) = self.centred();
        if self.n < 4.0 || cxx <= 0.0 {
            return None;
        }
        let residual = (cyy - cxy * cxy / cxx).max(0.0) / (self.n - 2.0);
        Some((residual / cxx).sqrt())
    }

    /// The line's y at `x`, for a given slope through the points' centroid.
    fn at(&self, x: f64, slope: f64) -> f64 {
        let n = self.n.max(1.0);
        self.sy / n + slope * (x - self.sx / n)
    }
}

/// One continuous stretch of the stream.
#[derive(Debug, Clone)]
struct Stretch {
    /// Input sample position, capture time and output position at its start.
    in0: i64,
    capture0: u64,
    out0: f64,
    /// x: samples from `in0`; y: capture ns from `capture0` beyond the
    /// nominal rate.
    fit: LineFit,
}

/// What a frame did to the fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observed {
    /// It continues the current stretch.
    Continues,
    /// It starts a new stretch (the first frame, or a jump beyond the tolerance).
    Starts,
}

/// Estimates the audio clock's drift against the capture clock and plans
/// the compensation.
#[derive(Debug, Clone)]
pub struct DriftTracker {
    rate: f64,
    tolerance_ns: f64,
    max_ppm: f64,
    stretch: Option<Stretch>,
    /// Extra capture ns per sample of the last trusted fit.
    slope: f64,
    engaged: bool,
    pub jumps: u64,
}

impl DriftTracker {
    pub fn new(rate: u32, tolerance_ns: u64, max_ppm: f64) -> DriftTracker {
        DriftTracker {
            rate: rate.max(1) as f64,
            tolerance_ns: tolerance_ns as f64,
            max_ppm: max_ppm.max(0.0),
            stretch: None,
            slope: 0.0,
            engaged: false,
            jumps: 0,
        }
    }

    pub fn set_tolerance_ns(&mut self, tolerance_ns: u64) {
        self.tolerance_ns = tolerance_ns as f64;
    }

    /// Adds a frame whose first sample is input sample `in_pos`, captured
    /// at `capture_ns`; `out_pos` is where that sample lands in the output.
    pub fn observe(&mut self, capture_ns: u64, in_pos: i64, out_pos: f64) -> Observed {
        if let Some(s) = &mut self.stretch {
            let x = (in_pos - s.in0) as f64;
            let y = capture_ns as f64 - s.capture0 as f64 - x * NS_PER_S / self.rate;
            let slope = match s.fit.slope() {
                Some(fitted) if s.fit.span() >= MIN_FIT_SPAN_S * self.rate => fitted,
                _ => self.slope,
            };
            if x >= 0.0 && (y - s.fit.at(x, slope)).abs() <= self.tolerance_ns {
                s.fit.add(x, y);
                if let Some(fitted) = s.fit.slope() {
                    if s.fit.span() >= MIN_FIT_SPAN_S * self.rate {
                        self.slope = fitted;
                        let ppm = (fitted * self.rate * 1e-3).abs();
                        let error = s.fit.slope_error().unwrap_or(f64::MAX) * self.rate * 1e-3;
                        if self.max_ppm > 0.0 && ppm >= MIN_DRIFT_PPM && ppm > 3.0 * error {
                            self.engaged = true;
                        }
                    }
                }
                return Observed::Continues;
            }
            self.jumps += 1;
        }
        let mut fit = LineFit::default();
        fit.add(0.0, 0.0);
        self.stretch = Some(Stretch {
            in0: in_pos,
            capture0: capture_ns,
            out0: out_pos,
            fit,
        });
        Observed::Starts
    }

    /// The estimated drift: how many ppm the device's sample clock runs
    /// fast (+) or slow (−) against the capture clock.
    pub fn ppm(&self) -> f64 {
        // Fast device: fewer capture ns per sample than nominal.
        let nominal = NS_PER_S / self.rate;
        (nominal / (nominal + self.slope) - 1.0) * 1e6
    }

    /// Whether the drift is large and certain enough to correct.
    pub fn engaged(&self) -> bool {
        self.engaged
    }

    /// Samples to add (+) or drop (−) over the next `horizon` output
    /// samples, given that input sample `in_pos` lands at output position
    /// `out_pos`: the drift over the horizon plus the error so far, clamped
    /// to the maximum correction.
    pub fn compensation(&self, in_pos: i64, out_pos: f64, horizon: f64) -> f64 {
        let Some(s) = &self.stretch else { return 0.0 };
        let per_sample = 1.0 + self.slope * self.rate / NS_PER_S;
        let error = (out_pos - s.out0) - (in_pos - s.in0) as f64 * per_sample;
        let limit = horizon * self.max_ppm * 1e-6;
        (horizon * (per_sample - 1.0) - error).clamp(-limit, limit)
    }
}

/// Resamples audio by the tracker's compensation once drift is detected;
/// until then frames pass untouched.
pub struct DriftCorrector {
    pub tracker: DriftTracker,
    resampler: Option<Resampler>,
    /// Output position of the next sample, and the next input position
    /// expected (gaps upstream pass through).
    out_pos: i64,
    next_in: Option<i64>,
    scratch: Vec<u8>,
    /// The compensation last applied, ppm.
    pub applied_ppm: f64,
}

/// A frame after correction: its header and samples.
pub struct Corrected<'a> {
    pub header: AudioFrame,
    pub data: &'a [u8],
}

impl DriftCorrector {
    pub fn new(rate: u32, tolerance_ns: u64, max_ppm: f64) -> DriftCorrector {
        DriftCorrector {
            tracker: DriftTracker::new(rate, tolerance_ns, max_ppm),
            resampler: None,
            out_pos: 0,
            next_in: None,
            scratch: Vec::new(),
            applied_ppm: 0.0,
        }
    }

    /// Corrects one frame: `None` when it passes unchanged.
    pub fn process(&mut self, frame: &AudioFrame, data: &[u8]) -> Result<Option<Corrected<'_>>> {
        let rate = frame.sample_rate.max(1) as i64;
        let tb = frame.time_base;
        let in_pos =
            (frame.pts as i128 * tb.num as i128 * rate as i128 / tb.den.max(1) as i128) as i64;
        let gap = self.next_in.map_or(0, |next| in_pos - next);
        self.next_in = Some(in_pos + frame.samples as i64);
        // Samples lost upstream leave their gap in the output too.
        self.out_pos += gap.max(0);
        let delay = self.resampler.as_ref().map_or(0, Resampler::delay);
        self.tracker
            .observe(frame.capture_ns, in_pos, (self.out_pos + delay) as f64);
        if !self.tracker.engaged() {
            self.out_pos += frame.samples as i64;
            return Ok(None);
        }
        let spec = AudioSpec::of_header(frame);
        let resampler = match &mut self.resampler {
            Some(r) if *r.input() == spec => r,
            slot => {
                tracing::info!(
                    "audio clock drift {:+.0} ppm: resampling to follow the capture clock",
                    self.tracker.ppm()
                );
                slot.insert(Resampler::new(spec, spec)?)
            }
        };
        let horizon = HORIZON_S * frame.sample_rate as f64;
        let delta = self
            .tracker
            .compensation(in_pos, (self.out_pos + delay) as f64, horizon);
        self.applied_ppm = delta / horizon * 1e6;
        resampler.set_compensation(delta.round() as i32, horizon as i32)?;
        let room = resampler.max_output(frame.samples as usize);
        self.scratch.resize(spec.payload_bytes(room), 0);
        let input = Planes::payload(data, &spec, frame.samples as usize)?;
        let mut out = PlanesMut::payload(&mut self.scratch, &spec, room)?;
        let produced = resampler.convert(&input, &mut out)?;
        // Planar output sits in planes `room` samples apart: pack them.
        pack_planes(&mut self.scratch, &spec, room, produced);
        let header = AudioFrame {
            pts: self.out_pos,
            time_base: node_api::TimeBase::new(1, frame.sample_rate as i32),
            samples: produced as u32,
            capture_ns: frame
                .capture_ns
                .saturating_sub((delay.max(0) as u64) * 1_000_000_000 / rate as u64),
            ..frame.clone()
        };
        self.out_pos += produced as i64;
        Ok(Some(Corrected {
            header,
            data: &self.scratch[..spec.payload_bytes(produced)],
        }))
    }
}

/// Moves planes laid out `capacity` samples apart to `samples` apart.
fn pack_planes(buf: &mut [u8], spec: &AudioSpec, capacity: usize, samples: usize) {
    if spec.planes() < 2 || capacity == samples {
        return;
    }
    let bytes = spec.plane_sample_bytes();
    for plane in 1..spec.planes() {
        let from = plane * capacity * bytes;
        buf.copy_within(from..from + samples * bytes, plane * samples * bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: u32 = 48_000;
    const MS: u64 = 1_000_000;

    /// Capture time of sample `n` of a device `ppm` fast, with `jitter` ns.
    fn capture(n: i64, ppm: f64, jitter: i64) -> u64 {
        (5_000_000_000.0 + n as f64 * 1e9 / (RATE as f64 * (1.0 + ppm * 1e-6))) as u64
            + (jitter + 20 * MS as i64) as u64
            - 20 * MS
    }

    fn jitter(i: i64, amount_ms: i64) -> i64 {
        [0, 1, -1, 1, 0, -1][i as usize % 6] * amount_ms * MS as i64
    }

    /// Feeds `seconds` of 1024-sample frames through an ideal resampler
    /// following the compensation; returns the tracker and the final error
    /// (output position minus capture-clock position), in samples.
    fn simulate(ppm: f64, jitter_ms: i64, seconds: i64) -> (DriftTracker, f64) {
        let mut t = DriftTracker::new(RATE, 20 * MS, 1000.0);
        let horizon = RATE as f64;
        let mut out = 0.0;
        let frames = seconds * RATE as i64 / 1024;
        for i in 0..frames {
            let n = i * 1024;
            t.observe(capture(n, ppm, jitter(i, jitter_ms)), n, out);
            let delta = if t.engaged() {
                t.compensation(n, out, horizon)
            } else {
                0.0
            };
            out += 1024.0 * (1.0 + delta / horizon);
        }
        let n = frames * 1024;
        let clock = (capture(n, ppm, 0) - 5_000_000_000) as f64 * RATE as f64 / 1e9;
        (t, out - clock)
    }

    #[test]
    fn a_drifting_device_is_measured_and_followed() {
        for ppm in [500.0, -500.0, 80.0] {
            let (t, error) = simulate(ppm, 10, 600);
            assert!(t.engaged(), "{ppm}");
            assert!((t.ppm() - ppm).abs() < 5.0, "{ppm}: estimated {}", t.ppm());
            // Within a millisecond of the capture clock after ten minutes.
            assert!(error.abs() < 48.0, "{ppm}: {error} samples off");
            assert_eq!(t.jumps, 0);
        }
    }

    #[test]
    fn a_device_on_the_capture_clock_is_left_alone() {
        let (t, error) = simulate(0.0, 0, 60);
        assert!(!t.engaged());
        assert!(error.abs() < 1.0);
        // Jitter alone does not make drift.
        let (t, _) = simulate(0.0, 10, 120);
        assert!(!t.engaged(), "estimated {} ppm", t.ppm());
    }

    #[test]
    fn a_jump_starts_a_new_stretch_and_keeps_the_slope() {
        let mut t = DriftTracker::new(RATE, 20 * MS, 1000.0);
        for i in 0..(30 * RATE as i64 / 1024) {
            let n = i * 1024;
            t.observe(capture(n, 300.0, 0), n, n as f64);
        }
        let before = t.ppm();
        assert!((before - 300.0).abs() < 1.0, "{before}");
        // Two seconds lost on the device: capture jumps, sample count does not.
        let n = 30 * RATE as i64;
        let seen = t.observe(capture(n, 300.0, 0) + 2_000 * MS, n, n as f64);
        assert_eq!(seen, Observed::Starts);
        assert_eq!(t.jumps, 1);
        assert_eq!(t.ppm(), before);
        let seen = t.observe(capture(n + 1024, 300.0, 0) + 2_000 * MS, n + 1024, n as f64);
        assert_eq!(seen, Observed::Continues);
    }

    #[test]
    fn the_correction_is_clamped() {
        let (t, error) = simulate(3000.0, 0, 60);
        assert!((t.ppm() - 3000.0).abs() < 5.0);
        // 1000 ppm at most: 2000 ppm of the drift stays (the fast device's
        // output runs ahead), about 2 ms a second.
        assert!((5000.0..6000.0).contains(&error), "{error}");
    }

    #[test]
    fn planes_are_packed() {
        use ffmpeg_next::format::{sample::Type, Sample};
        let spec = AudioSpec::new(Sample::I16(Type::Planar), RATE, 2, 0);
        let mut buf: Vec<u8> = (0..16u8).collect();
        pack_planes(&mut buf, &spec, 4, 3);
        assert_eq!(&buf[..12], &[0, 1, 2, 3, 4, 5, 8, 9, 10, 11, 12, 13]);
    }
}
