//! The common timeline, as pure math on capture times (no I/O, so it is
//! tested directly with synthetic headers).
//!
//! T0 is the later of the two streams' first capture times. A video frame's
//! slot is its capture time from T0 in frame periods; an audio sample's index
//! is its capture time from T0 in samples. Timestamps stay contiguous while
//! the capture times agree with them within the tolerance; beyond it, the
//! capture clock wins (gaps are passed through or filled, repeats and overlaps
//! are dropped).

use node_api::TimeBase;

const NS_PER_S: i128 = 1_000_000_000;

/// The common start: the later first capture time. A stream that closed
/// before it began does not hold the other back (`None` for it), but at
/// least one must have begun.
pub fn common_start(first_video: Option<u64>, first_audio: Option<u64>) -> Option<u64> {
    match (first_video, first_audio) {
        (Some(v), Some(a)) => Some(v.max(a)),
        (v, a) => v.or(a),
    }
}

/// The common start put onto the video's frame grid: the capture time of the
/// video frame at or just before `t0` when that frame is within `tolerance_ns`
/// of it (the audio then begins with that much silence rather than the video
/// losing a frame), else of the first frame after `t0`. `first_video` is when
/// the video's first frame was captured. Video pts are then exact frame
/// indices with no rounding, and the A/V alignment is as good as the capture
/// times.
pub fn on_video_grid(
    t0: u64,
    first_video: u64,
    time_base: TimeBase,
    duration: i64,
    tolerance_ns: u64,
) -> u64 {
    let (num, den) = (
        time_base.num.max(1) as i128 * duration.max(1) as i128,
        time_base.den.max(1) as i128,
    );
    let since = t0.saturating_sub(first_video) as i128;
    // Frame period = num / den s = unit / den ns.
    let unit = num * NS_PER_S;
    let frame_at = |frames: i128| first_video as i128 + div_round(frames * unit, den);
    let before = frame_at(since * den / unit);
    if t0 as i128 - before <= tolerance_ns as i128 {
        return before as u64;
    }
    frame_at((since * den + unit - 1) / unit) as u64
}

/// `n / d` rounded to the nearest integer, halves away from zero (`d > 0`).
fn div_round(n: i128, d: i128) -> i128 {
    if n >= 0 {
        (n + d / 2) / d
    } else {
        -((-n + d / 2) / d)
    }
}

/// What to do with one video frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoPlace {
    /// Its slot falls before the common start.
    BeforeStart,
    /// Its slot was already taken by an earlier frame.
    Duplicate,
    /// Send it with this pts; `skipped` empty slots precede it.
    Emit { pts: i64, skipped: i64 },
}

/// Places video frames on the output timeline (one tick per frame period).
#[derive(Debug, Clone)]
pub struct VideoClock {
    t0: u64,
    /// Frame period in seconds = num / den.
    period_num: i128,
    period_den: i128,
    /// Input pts units per frame.
    in_duration: i64,
    tolerance_ns: i128,
    /// The last emitted frame: (input pts, output slot).
    last: Option<(i64, i64)>,
}

impl VideoClock {
    /// The period comes from the first frame: `duration` ticks of `time_base`
    /// (video-normalize sends time_base 1/fps, duration 1).
    pub fn new(t0: u64, time_base: TimeBase, duration: i64, tolerance_ns: u64) -> VideoClock {
        let in_duration = duration.max(1);
        VideoClock {
            t0,
            period_num: time_base.num.max(1) as i128 * in_duration as i128,
            period_den: time_base.den.max(1) as i128,
            in_duration,
            tolerance_ns: tolerance_ns as i128,
            last: None,
        }
    }

    /// The output time base: one tick per frame period.
    pub fn time_base(&self) -> TimeBase {
        let g = gcd(self.period_num, self.period_den);
        TimeBase::new((self.period_num / g) as i32, (self.period_den / g) as i32)
    }

    pub fn set_tolerance_ns(&mut self, tolerance_ns: u64) {
        self.tolerance_ns = tolerance_ns as i128;
    }

    /// (capture − T0) in units of 1 / (period_den × 1e9) s, so that a slot is
    /// exactly `period_num × 1e9` of them.
    fn scaled_offset(&self, capture_ns: u64) -> i128 {
        (capture_ns as i128 - self.t0 as i128) * self.period_den
    }

    /// Where a frame captured at `capture_ns` with input pts `in_pts` goes.
    pub fn place(&mut self, capture_ns: u64, in_pts: i64) -> VideoPlace {
        let unit = self.period_num * NS_PER_S;
        let offset = self.scaled_offset(capture_ns);
        let by_clock = div_round(offset, unit) as i64;
        let slot = match self.last {
            // The upstream frame index says where the frame goes; the capture
            // time only overrides it when they disagree beyond the tolerance,
            // so capture jitter never makes false repeats or gaps.
            Some((last_pts, last_slot)) => {
                let step = div_round((in_pts - last_pts) as i128, self.in_duration as i128) as i64;
                let expected = last_slot + step;
                let error = (offset - expected as i128 * unit).abs();
                if 2 * error <= unit + 2 * self.tolerance_ns * self.period_den {
                    expected
                } else {
                    by_clock
                }
            }
            None => by_clock,
        };
        if slot < 0 {
            return VideoPlace::BeforeStart;
        }
        let skipped = match self.last {
            Some((_, last_slot)) if slot <= last_slot => return VideoPlace::Duplicate,
            Some((_, last_slot)) => slot - last_slot - 1,
            None => 0,
        };
        self.last = Some((in_pts, slot));
        VideoPlace::Emit { pts: slot, skipped }
    }

    /// The slot of the last frame placed.
    pub fn last_slot(&self) -> Option<i64> {
        self.last.map(|(_, slot)| slot)
    }

    /// How far a frame's capture time is from where its pts puts it, in ns.
    pub fn offset_ns(&self, capture_ns: u64, pts: i64) -> i64 {
        let at = pts as i128 * self.period_num * NS_PER_S / self.period_den;
        (capture_ns as i128 - self.t0 as i128 - at) as i64
    }
}

fn gcd(mut a: i128, mut b: i128) -> i128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a.abs().max(1)
}

/// What to do with one audio frame, in samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AudioPlan {
    /// Silence to send first (a gap in the capture), at pts `pts - silence`.
    pub silence: u64,
    /// Leading samples of the frame to drop: `before_start` of them lie
    /// before T0, the rest overlap audio already sent.
    pub skip: u32,
    pub before_start: u32,
    /// Samples of the frame to send (from `skip` on).
    pub keep: u32,
    /// Output pts of the first kept sample.
    pub pts: i64,
}

impl AudioPlan {
    pub fn overlap(&self) -> u32 {
        self.skip - self.before_start
    }
}

/// Places audio frames on the output timeline (one tick per sample).
#[derive(Debug, Clone)]
pub struct AudioClock {
    t0: u64,
    rate: i128,
    tolerance_ns: i128,
    /// Samples sent since T0: the pts of the next sample.
    emitted: i64,
    /// Output position minus upstream position of the last frame's first
    /// sample, in samples.
    shift: Option<i128>,
}

impl AudioClock {
    pub fn new(t0: u64, sample_rate: u32, tolerance_ns: u64) -> AudioClock {
        AudioClock {
            t0,
            rate: sample_rate.max(1) as i128,
            tolerance_ns: tolerance_ns as i128,
            emitted: 0,
            shift: None,
        }
    }

    pub fn set_tolerance_ns(&mut self, tolerance_ns: u64) {
        self.tolerance_ns = tolerance_ns as i128;
    }

    pub fn sample_rate(&self) -> u32 {
        self.rate as u32
    }

    /// Samples sent so far.
    pub fn emitted(&self) -> i64 {
        self.emitted
    }

    /// For a restarted sync: the samples before the one captured at
    /// `capture_ns` went out from the previous incarnation, so they are not
    /// a gap to fill; the output goes on from there.
    pub fn resume_at(&mut self, capture_ns: u64) {
        let by_clock = div_round((capture_ns as i128 - self.t0 as i128) * self.rate, NS_PER_S);
        self.emitted = by_clock.max(0) as i64;
    }

    /// The capture time the sample at `pts` should have.
    pub fn capture_of(&self, pts: i64) -> u64 {
        (self.t0 as i128 + pts as i128 * NS_PER_S / self.rate) as u64
    }

    /// Plans a frame of `samples` whose first sample was captured at
    /// `capture_ns` and is sample `in_pts` (in `in_tb`) of the upstream count.
    pub fn plan(
        &mut self,
        capture_ns: u64,
        samples: u32,
        in_pts: i64,
        in_tb: TimeBase,
    ) -> AudioPlan {
        let by_clock = div_round((capture_ns as i128 - self.t0 as i128) * self.rate, NS_PER_S);
        let in_pos = div_round(
            in_pts as i128 * in_tb.num as i128 * self.rate,
            in_tb.den.max(1) as i128,
        );
        // The upstream sample count says where the frame goes (so frames lost
        // on the way leave a gap of exactly their length); the capture time
        // overrides it only when the two disagree beyond the tolerance.
        let pos = match self.shift {
            Some(shift)
                if (in_pos + shift - by_clock).abs() * NS_PER_S
                    <= self.tolerance_ns * self.rate =>
            {
                in_pos + shift
            }
            _ => by_clock,
        };
        self.shift = Some(pos - in_pos);
        // Samples before T0 go, sample-accurately, whatever the tolerance.
        let before_start = if pos < 0 {
            (-pos).min(samples as i128) as u32
        } else {
            0
        };
        if before_start == samples {
            return AudioPlan {
                skip: samples,
                before_start,
                ..AudioPlan::default()
            };
        }
        let first = pos + before_start as i128;
        let emitted = self.emitted as i128;
        let mut plan = AudioPlan {
            before_start,
            skip: before_start,
            pts: self.emitted,
            ..AudioPlan::default()
        };
        if first > emitted {
            plan.silence = (first - emitted) as u64;
            plan.pts = first as i64;
        } else if first < emitted {
            plan.skip += (emitted - first).min((samples - before_start) as i128) as u32;
        }
        plan.keep = samples - plan.skip;
        self.emitted = plan.pts + plan.keep as i64;
        plan
    }

    /// How far the first kept sample's capture time is from where its pts
    /// puts it, in ns.
    pub fn offset_ns(&self, frame_capture_ns: u64, plan: &AudioPlan) -> i64 {
        let kept_capture = frame_capture_ns as i128 + plan.skip as i128 * NS_PER_S / self.rate;
        (kept_capture - self.capture_of(plan.pts) as i128) as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;
    const TB30: TimeBase = TimeBase { num: 1, den: 30 };
    const TB48: TimeBase = TimeBase {
        num: 1,
        den: 48_000,
    };
    /// A 30 fps frame period in ns (rounded down).
    const FRAME: u64 = 33_333_333;

    /// Capture time of video frame `i` of a perfect 30 fps stream starting at `start`.
    fn vcap(start: u64, i: u64) -> u64 {
        start + i * 1_000_000_000 / 30
    }

    /// Capture time of sample `n` of a perfect 48 kHz stream starting at `start`.
    fn acap(start: u64, n: u64) -> u64 {
        start + n * 1_000_000_000 / 48_000
    }

    #[test]
    fn common_start_is_the_later_start() {
        assert_eq!(
            common_start(Some(1_000 * MS), Some(1_010 * MS)),
            Some(1_010 * MS)
        );
        assert_eq!(
            common_start(Some(2_000 * MS), Some(1_010 * MS)),
            Some(2_000 * MS)
        );
        assert_eq!(common_start(None, Some(5)), Some(5));
        assert_eq!(common_start(Some(7), None), Some(7));
        assert_eq!(common_start(None, None), None);
    }

    #[test]
    fn start_moves_onto_the_video_grid() {
        let v0 = 1_000 * MS;
        let tol = 20 * MS;
        // Video later: T0 is its first frame already.
        assert_eq!(on_video_grid(v0, v0, TB30, 1, tol), v0);
        // Audio 340 ms later: 7 ms past frame 10, beyond no tolerance, so the
        // next frame at or after it, 11 frames in.
        assert_eq!(
            on_video_grid(v0 + 340 * MS, v0, TB30, 1, 0),
            vcap(v0, 11) + 1
        );
        // Within the tolerance: frame 10, the audio starts 7 ms in.
        assert_eq!(on_video_grid(v0 + 340 * MS, v0, TB30, 1, tol), vcap(v0, 10));
        // Exactly on a frame: that frame.
        assert_eq!(on_video_grid(vcap(v0, 3), v0, TB30, 1, 0), vcap(v0, 3));
        // A replayed file's audio starting a fraction of a millisecond after
        // its video keeps the video's first frame.
        assert_eq!(on_video_grid(v0 + MS / 5, v0, TB30, 1, tol), v0);
        // NTSC, an hour in: within a nanosecond of the frame's time.
        let ntsc = TimeBase::new(1001, 30_000);
        let t = on_video_grid(v0 + 3_600_000 * MS, v0, ntsc, 1, 0);
        let frame = 107_893u64; // ceil(3600 s × 30000 / 1001)
        assert!((t as i64 - (v0 + frame * 1001 * 1_000_000_000 / 30_000) as i64).abs() <= 1);
        // Then frame slots are exact.
        let mut video = VideoClock::new(t, ntsc, 1, 20 * MS);
        let c = v0 + (frame + 1) * 1001 * 1_000_000_000 / 30_000;
        assert_eq!(video.place(c, 1), VideoPlace::Emit { pts: 1, skipped: 0 });
        assert!(video.offset_ns(c, 1).abs() <= 1);
    }

    #[test]
    fn audio_before_video_is_trimmed_sample_accurately() {
        let v0 = 1_010 * MS;
        let a0 = 1_000 * MS;
        let t0 = common_start(Some(v0), Some(a0)).unwrap();
        let mut audio = AudioClock::new(t0, 48_000, 20 * MS);
        // 10 ms = 480 samples precede T0.
        let p = audio.plan(acap(a0, 0), 1024, 0, TB48);
        assert_eq!(
            p,
            AudioPlan {
                silence: 0,
                skip: 480,
                before_start: 480,
                keep: 544,
                pts: 0
            }
        );
        assert_eq!(p.overlap(), 0);
        assert_eq!(audio.offset_ns(acap(a0, 0), &p), 0);
        // The following frames are contiguous.
        let mut sent = 544;
        for i in 1..100u64 {
            let p = audio.plan(acap(a0, i * 1024), 1024, (i * 1024) as i64, TB48);
            assert_eq!(
                p,
                AudioPlan {
                    keep: 1024,
                    pts: sent,
                    ..AudioPlan::default()
                }
            );
            assert!(
                audio.offset_ns(acap(a0, i * 1024), &p).abs() < 21_000,
                "within a sample"
            );
            sent += 1024;
        }
        // Video starts at T0 exactly, on slot 0.
        let mut video = VideoClock::new(t0, TB30, 1, 20 * MS);
        assert_eq!(video.place(v0, 0), VideoPlace::Emit { pts: 0, skipped: 0 });
        assert_eq!(video.offset_ns(v0, 0), 0);
    }

    #[test]
    fn frames_wholly_before_start_are_dropped() {
        let t0 = 1_000 * MS;
        let mut audio = AudioClock::new(t0, 48_000, 20 * MS);
        let p = audio.plan(t0 - 50 * MS, 1024, 0, TB48);
        assert_eq!(
            p,
            AudioPlan {
                skip: 1024,
                before_start: 1024,
                ..AudioPlan::default()
            }
        );
        assert_eq!(audio.emitted(), 0);
        // Video that started 100 ms earlier: frames before T0 go.
        let v0 = t0 - 100 * MS;
        let mut video = VideoClock::new(t0, TB30, 1, 20 * MS);
        assert_eq!(video.place(vcap(v0, 0), 0), VideoPlace::BeforeStart);
        assert_eq!(video.place(vcap(v0, 2), 2), VideoPlace::BeforeStart);
        // Frame 3 is captured 0 ms after T0, frame 4 at +33 ms: slots 0 and 1.
        assert_eq!(
            video.place(vcap(v0, 3), 3),
            VideoPlace::Emit { pts: 0, skipped: 0 }
        );
        assert_eq!(
            video.place(vcap(v0, 4), 4),
            VideoPlace::Emit { pts: 1, skipped: 0 }
        );
    }

    #[test]
    fn video_straddling_start_goes_to_the_nearest_slot() {
        let t0 = 1_000 * MS;
        let mut video = VideoClock::new(t0, TB30, 1, 20 * MS);
        // Captured 25 ms before T0: nearer slot −1 than slot 0.
        let v0 = t0 - 25 * MS;
        assert_eq!(video.place(v0, 0), VideoPlace::BeforeStart);
        // The next one, 8 ms after T0, takes slot 0.
        assert_eq!(
            video.place(vcap(v0, 1), 1),
            VideoPlace::Emit { pts: 0, skipped: 0 }
        );
        let off = video.offset_ns(vcap(v0, 1), 0);
        assert!((8 * MS as i64..9 * MS as i64).contains(&off), "{off}");
    }

    #[test]
    fn audio_gap_is_filled_with_silence() {
        let t0 = 5_000 * MS;
        let mut audio = AudioClock::new(t0, 48_000, 20 * MS);
        assert_eq!(audio.plan(t0, 1024, 0, TB48).keep, 1024);
        // The next frame is 100 ms late (frames were lost upstream).
        let late = acap(t0, 1024) + 100 * MS;
        let p = audio.plan(late, 1024, 1024, TB48);
        assert_eq!(
            p,
            AudioPlan {
                silence: 4800,
                keep: 1024,
                pts: 1024 + 4800,
                ..AudioPlan::default()
            }
        );
        assert_eq!(audio.offset_ns(late, &p), 0);
        assert_eq!(audio.emitted(), 2048 + 4800);
    }

    #[test]
    fn frames_lost_upstream_leave_an_exact_gap_despite_jitter() {
        let t0 = 5_000 * MS;
        let mut audio = AudioClock::new(t0, 48_000, 20 * MS);
        for i in 0..10u64 {
            audio.plan(acap(t0, i * 1024), 1024, (i * 1024) as i64, TB48);
        }
        // Frames 10..=18 were dropped on the way; frame 19 is stamped 5 ms early.
        let c = acap(t0, 19 * 1024) - 5 * MS;
        let p = audio.plan(c, 1024, 19 * 1024, TB48);
        assert_eq!(
            p,
            AudioPlan {
                silence: 9 * 1024,
                keep: 1024,
                pts: 19 * 1024,
                ..AudioPlan::default()
            }
        );
        // The capture-time error stays what the jitter was.
        assert!((audio.offset_ns(c, &p) + 5 * MS as i64).abs() < 21_000);
        // Upstream pts in another time base (ns) work the same.
        let mut audio = AudioClock::new(t0, 48_000, 20 * MS);
        audio.plan(t0, 1024, 0, TimeBase::NANOS);
        let in_ns = 3 * 1024 * 1_000_000_000i64 / 48_000;
        let p = audio.plan(acap(t0, 3 * 1024) + 3 * MS, 1024, in_ns, TimeBase::NANOS);
        assert_eq!((p.silence, p.pts), (2048, 3072));
    }

    #[test]
    fn upstream_count_far_from_the_clock_is_overridden() {
        // The upstream count restarts at 0 (a device reset) while the capture
        // times run on: the clock places the frame.
        let t0 = 5_000 * MS;
        let mut audio = AudioClock::new(t0, 48_000, 20 * MS);
        for i in 0..50u64 {
            audio.plan(acap(t0, i * 1024), 1024, (i * 1024) as i64, TB48);
        }
        let p = audio.plan(acap(t0, 50 * 1024), 1024, 0, TB48);
        assert_eq!(
            p,
            AudioPlan {
                keep: 1024,
                pts: 50 * 1024,
                ..AudioPlan::default()
            }
        );
        let p = audio.plan(acap(t0, 51 * 1024), 1024, 1024, TB48);
        assert_eq!(
            p,
            AudioPlan {
                keep: 1024,
                pts: 51 * 1024,
                ..AudioPlan::default()
            }
        );
    }

    #[test]
    fn audio_overlap_is_trimmed() {
        let t0 = 5_000 * MS;
        let mut audio = AudioClock::new(t0, 48_000, 20 * MS);
        audio.plan(t0, 4800, 0, TB48);
        // Stamped 50 ms early: 2400 samples repeat audio already sent.
        let early = acap(t0, 4800) - 50 * MS;
        let p = audio.plan(early, 4800, 4800, TB48);
        assert_eq!(
            p,
            AudioPlan {
                skip: 2400,
                keep: 2400,
                pts: 4800,
                ..AudioPlan::default()
            }
        );
        assert_eq!(p.overlap(), 2400);
        // A frame entirely inside audio already sent is dropped whole.
        let p = audio.plan(acap(t0, 4800), 1024, 9600, TB48);
        assert_eq!(
            p,
            AudioPlan {
                skip: 1024,
                keep: 0,
                pts: 7200,
                ..AudioPlan::default()
            }
        );
        assert_eq!(audio.emitted(), 7200);
    }

    #[test]
    fn audio_jitter_within_tolerance_stays_contiguous() {
        let t0 = 5_000 * MS;
        let mut audio = AudioClock::new(t0, 48_000, 20 * MS);
        let mut sent = 0;
        for i in 0..500u64 {
            // ±15 ms of callback jitter.
            let jitter = [0i64, 15, -15, 7, -3][i as usize % 5] * MS as i64;
            let c = (acap(t0, i * 960) as i64 + jitter) as u64;
            let p = audio.plan(c, 960, (i * 960) as i64, TB48);
            assert_eq!((p.pts, p.keep, p.silence), (sent, 960, 0), "frame {i}");
            sent += 960;
        }
    }

    #[test]
    fn audio_drift_is_corrected_once_beyond_tolerance() {
        // A device running 0.1% slow: its capture times run ahead of the sample count.
        let t0 = 5_000 * MS;
        let mut audio = AudioClock::new(t0, 48_000, 20 * MS);
        let mut fills = 0;
        for i in 0..1000u64 {
            let c = t0 + (i * 1024 * 1_000_000_000 / 48_000) * 1001 / 1000;
            let p = audio.plan(c, 1024, (i * 1024) as i64, TB48);
            fills += p.silence;
            assert!(audio.offset_ns(c, &p).abs() <= 20 * MS as i64 + 21_000);
        }
        // 21.3 s × 0.1% = 21 ms = about 1024 samples of silence in all.
        assert!((900..1100).contains(&fills), "{fills}");
    }

    #[test]
    fn video_repeats_are_dropped_and_gaps_passed_through() {
        let t0 = 1_000 * MS;
        let mut video = VideoClock::new(t0, TB30, 1, 20 * MS);
        assert_eq!(
            video.place(vcap(t0, 0), 0),
            VideoPlace::Emit { pts: 0, skipped: 0 }
        );
        assert_eq!(
            video.place(vcap(t0, 1), 1),
            VideoPlace::Emit { pts: 1, skipped: 0 }
        );
        // The same slot again (same pts, same capture).
        assert_eq!(video.place(vcap(t0, 1), 1), VideoPlace::Duplicate);
        // Upstream skipped two frames: the gap passes through.
        assert_eq!(
            video.place(vcap(t0, 4), 4),
            VideoPlace::Emit { pts: 4, skipped: 2 }
        );
        // Upstream pts says +1 but the capture time is 200 ms later: the clock wins.
        assert_eq!(
            video.place(vcap(t0, 4) + 200 * MS, 5),
            VideoPlace::Emit {
                pts: 10,
                skipped: 5
            }
        );
        // Upstream pts says +1 but the capture is 100 ms earlier: a repeat.
        assert_eq!(
            video.place(vcap(t0, 10) - 100 * MS + FRAME, 6),
            VideoPlace::Duplicate
        );
    }

    #[test]
    fn video_jitter_near_half_a_frame_makes_no_false_repeats() {
        // T0 half a frame after the video's phase: plain rounding of jittered
        // capture times would collide and skip slots.
        let v0 = 1_000 * MS;
        let t0 = v0 + FRAME / 2;
        let mut video = VideoClock::new(t0, TB30, 1, 20 * MS);
        let mut expected = None;
        for i in 1..300u64 {
            let jitter = [3i64, -3, 2, -2][i as usize % 4] * MS as i64;
            let place = video.place((vcap(v0, i) as i64 + jitter) as u64, i as i64);
            let VideoPlace::Emit { pts, skipped } = place else {
                panic!("frame {i}: {place:?}")
            };
            assert_eq!(skipped, 0);
            if let Some(e) = expected {
                assert_eq!(pts, e);
            }
            expected = Some(pts + 1);
        }
    }

    #[test]
    fn video_time_base_follows_the_input() {
        let v = VideoClock::new(0, TimeBase::new(1001, 30_000), 1, 0);
        assert_eq!(v.time_base(), TimeBase::new(1001, 30_000));
        // A 1/90000 input with 3000-tick frames is 30 fps.
        let v = VideoClock::new(0, TimeBase::new(1, 90_000), 3000, 0);
        assert_eq!(v.time_base(), TimeBase::new(1, 30));
        assert_eq!(v.offset_ns(1_000_000_000, 30), 0);
    }

    #[test]
    fn video_input_pts_in_ticks_map_to_frames() {
        let mut v = VideoClock::new(0, TimeBase::new(1, 90_000), 3000, 5 * MS);
        assert_eq!(v.place(0, 0), VideoPlace::Emit { pts: 0, skipped: 0 });
        assert_eq!(
            v.place(vcap(0, 1), 3000),
            VideoPlace::Emit { pts: 1, skipped: 0 }
        );
        assert_eq!(
            v.place(vcap(0, 3), 9000),
            VideoPlace::Emit { pts: 3, skipped: 1 }
        );
    }

    #[test]
    fn ntsc_rates_stay_exact_over_an_hour() {
        let t0 = 1_000 * MS;
        let mut v = VideoClock::new(t0, TimeBase::new(1001, 30_000), 1, 20 * MS);
        for i in [0u64, 1, 2, 107_892] {
            let c = t0 + i * 1001 * 1_000_000_000 / 30_000;
            assert_eq!(
                v.place(c, i as i64),
                VideoPlace::Emit {
                    pts: i as i64,
                    skipped: if i == 107_892 { 107_889 } else { 0 }
                }
            );
            assert!(v.offset_ns(c, i as i64).abs() <= 1);
        }
    }
}
