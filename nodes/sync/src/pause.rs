//! Pause and resume: sync's live param `paused`, as pure math on the
//! timeline (no I/O, tested directly).
//!
//! A pause that begins at P and ends at R on the capture clock cuts the span
//! [P, P + S) out of every output, S being R − P rounded up to whole frame
//! periods of the first camera (the grid T0 is on). Video frames whose slot
//! lies in the span and audio samples whose index lies in it are left out
//! (audio to the sample); everything after it comes out S earlier. Every
//! output loses the same span, so the video stays contiguous (S is whole
//! frames) and picture and sound stay together across the cut. Several
//! pauses add up.
//!
//! The cut is judged where the clocks place the media (a frame's slot, a
//! sample's index: the upstream count, checked against the capture time),
//! not on raw capture times, so capture jitter can neither leave a frame too
//! many in nor take one too many out. Media captured before P that arrives
//! after the pause began still goes out.
//!
//! Before the common start T0 is fixed (a graph started paused, or a pause
//! before every stream has begun) media captured while paused is dropped as
//! it arrives: the recording then begins after the pause, and nothing is cut
//! from its timeline.

use node_api::TimeBase;
use serde_json::{json, Value};

const NS_PER_S: i128 = 1_000_000_000;

/// A step of a clock, `num / den` seconds: a frame period, or one sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tick {
    num: i128,
    den: i128,
}

impl Tick {
    const NANO: Tick = Tick {
        num: 1,
        den: NS_PER_S,
    };

    /// `duration` units of `time_base` (a frame's period).
    pub fn frame(time_base: TimeBase, duration: i64) -> Tick {
        Tick {
            num: time_base.num.max(1) as i128 * duration.max(1) as i128,
            den: time_base.den.max(1) as i128,
        }
    }

    pub fn sample(rate: u32) -> Tick {
        Tick {
            num: 1,
            den: rate.max(1) as i128,
        }
    }

    /// The first step of this clock at or after `ns` plus `steps` of `of`
    /// (time from T0): ⌈(ns + steps × of) / self⌉.
    fn index_at(self, ns: i128, steps: i128, of: Tick) -> i128 {
        // In units of 1 / (of.den × 1e9) s.
        let time = ns * of.den + steps * of.num * NS_PER_S;
        ceil_div(time * self.den, of.den * self.num * NS_PER_S)
    }

    /// Just past index `index` of this clock, in ns from T0: a cut starting
    /// there leaves that index out of it.
    pub fn just_after(self, index: i64) -> u64 {
        (self.ns(index as i128) + 1).max(0) as u64
    }

    /// `steps` of this clock in ns, rounded down.
    fn ns(self, steps: i128) -> i128 {
        (steps * self.num * NS_PER_S).div_euclid(self.den)
    }

    /// `steps` of this clock in ns, rounded down.
    pub fn ns_of(self, steps: i128) -> i128 {
        self.ns(steps)
    }

    fn seconds(self, steps: i128) -> f64 {
        steps as f64 * self.num as f64 / self.den as f64
    }
}

fn ceil_div(n: i128, d: i128) -> i128 {
    n.div_euclid(d) + i128::from(n.rem_euclid(d) != 0)
}

/// One span cut from the timeline: `frames` grid periods from `start_ns`
/// after T0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cut {
    start_ns: i128,
    frames: i128,
}

impl Cut {
    /// The indices of a clock stepping by `tick` that the cut takes.
    fn range(self, grid: Tick, tick: Tick) -> (i64, i64) {
        (
            tick.index_at(self.start_ns, 0, grid) as i64,
            tick.index_at(self.start_ns, self.frames, grid) as i64,
        )
    }

    fn end_ns(self, grid: Tick) -> i128 {
        Tick::NANO.index_at(self.start_ns, self.frames, grid)
    }
}

/// What arrived before T0: a video frame or `count` audio samples.
#[derive(Debug, Clone, Copy)]
pub enum Media {
    Frame,
    Samples { count: u32, rate: u32 },
}

/// A run of an audio range that goes out: `len` samples from `offset` into
/// the range, at output pts `pts`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub offset: u64,
    pub len: u64,
    pub pts: i64,
}

#[derive(Debug, Clone)]
pub struct Pause {
    t0: Option<u64>,
    /// The first camera's frame period (1 ns without video).
    grid: Tick,
    /// When the pause under way began, on the capture clock.
    open: Option<u64>,
    /// Just past the latest media the pause under way left out, on the
    /// capture clock: a source replaying faster than real time captures
    /// ahead of now, and the cut must cover all it dropped.
    reach: u64,
    /// Pauses that ended before T0 was fixed: [began, ended) capture times.
    early: Vec<(u64, u64)>,
    cuts: Vec<Cut>,
    frames: u64,
    samples: u64,
}

impl Pause {
    /// `paused`: the graph starts paused at `now_ns`.
    pub fn new(paused: bool, now_ns: u64) -> Pause {
        Pause {
            t0: None,
            grid: Tick::NANO,
            open: paused.then_some(now_ns),
            reach: now_ns,
            early: Vec::new(),
            cuts: Vec::new(),
            frames: 0,
            samples: 0,
        }
    }

    pub fn is_paused(&self) -> bool {
        self.open.is_some()
    }

    /// Video frames left out, all cameras.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Audio samples left out (silence that would have filled a gap in the
    /// cut span is not counted).
    pub fn samples(&self) -> u64 {
        self.samples
    }

    /// Pauses or resumes at `now_ns`; whether that changed anything.
    pub fn set(&mut self, paused: bool, now_ns: u64) -> bool {
        match (paused, self.open) {
            (true, None) => {
                self.open = Some(now_ns);
                self.reach = now_ns;
            }
            (false, Some(_)) => self.close(now_ns),
            _ => return false,
        }
        true
    }

    /// The end of the stream: a pause under way ends here.
    pub fn finish(&mut self, now_ns: u64) {
        self.set(false, now_ns);
    }

    fn close(&mut self, now_ns: u64) {
        let Some(began) = self.open.take() else {
            return;
        };
        let ended = now_ns.max(self.reach);
        match self.t0 {
            Some(t0) => self.cut(began as i128 - t0 as i128, ended as i128 - t0 as i128),
            None => self.early.push((began, ended)),
        }
    }

    /// Cuts from `began_ns` to at least `end_ns` (from T0) in whole periods;
    /// a pause that began inside the last cut (soon after a resume) extends it.
    fn cut(&mut self, began_ns: i128, end_ns: i128) {
        let grid = self.grid;
        let began_ns = began_ns.max(0);
        let periods = |from: i128| grid.index_at(end_ns - from, 0, Tick::NANO);
        match self.cuts.last_mut() {
            Some(c) if began_ns < c.end_ns(grid) => c.frames = c.frames.max(periods(c.start_ns)),
            _ if periods(began_ns) > 0 => self.cuts.push(Cut {
                start_ns: began_ns,
                frames: periods(began_ns),
            }),
            _ => {}
        }
    }

    /// Where the pause under way starts cutting: at the end of the returned
    /// cut, which is the last one when the pause began inside it.
    fn open_start(&self) -> Option<Cut> {
        let (t0, began) = (self.t0?, self.open?);
        let began_ns = (began as i128 - t0 as i128).max(0);
        match self.cuts.last() {
            Some(&c) if began_ns < c.end_ns(self.grid) => Some(c),
            _ => Some(Cut {
                start_ns: began_ns,
                frames: 0,
            }),
        }
    }

    /// The common start is fixed at `t0`, on the frame grid `grid` (none
    /// without video). Pauses that ended after it are cut from the timeline.
    pub fn start(&mut self, t0: u64, grid: Option<Tick>) {
        self.t0 = Some(t0);
        if let Some(grid) = grid {
            self.grid = grid;
        }
        for (began, ended) in std::mem::take(&mut self.early) {
            self.cut(began as i128 - t0 as i128, ended as i128 - t0 as i128);
        }
    }

    /// Before T0: whether `media` captured at `capture_ns` is left out
    /// (captured while paused); counted when it is.
    pub fn drops_early(&mut self, capture_ns: u64, media: Media) -> bool {
        let open = self.open.is_some_and(|began| capture_ns >= began);
        if !open
            && !self
                .early
                .iter()
                .any(|&(b, e)| (b..e).contains(&capture_ns))
        {
            return false;
        }
        let until_ns = match media {
            Media::Frame => {
                self.frames += 1;
                capture_ns + 1
            }
            Media::Samples { count, rate } => {
                self.samples += count as u64;
                capture_ns + count as u64 * 1_000_000_000 / rate.max(1) as u64
            }
        };
        if open {
            self.reach = self.reach.max(until_ns);
        }
        true
    }

    /// The cut spans as index ranges of a clock stepping by `tick`, the
    /// pause under way last (open-ended).
    fn ranges(&self, tick: Tick) -> impl Iterator<Item = (i64, i64)> + '_ {
        let grid = self.grid;
        let open = self
            .open_start()
            .map(|c| (tick.index_at(c.start_ns, c.frames, grid) as i64, i64::MAX));
        self.cuts
            .iter()
            .map(move |c| c.range(grid, tick))
            .chain(open)
    }

    /// How many of the indices before `end` no cut takes: the output index
    /// of `end` when it is not cut.
    fn kept_before(&self, tick: Tick, end: i64) -> i64 {
        let cut: i64 = self
            .ranges(tick)
            .map(|(a, b)| (b.min(end) - a).max(0))
            .sum();
        end - cut
    }

    /// Extends the pause under way over media up to `ns` from T0.
    fn reach_to(&mut self, ns: i128) {
        if let Some(t0) = self.t0 {
            self.reach = self.reach.max((t0 as i128 + ns).max(0) as u64);
        }
    }

    /// Where the video frame in slot `slot` of a clock stepping by `tick`
    /// goes: its output pts, or `None` when a pause cuts it.
    pub fn video(&mut self, tick: Tick, slot: i64) -> Option<i64> {
        let cut = self.ranges(tick).find(|&(a, b)| (a..b).contains(&slot));
        match cut {
            None => Some(self.kept_before(tick, slot)),
            Some((_, b)) => {
                self.frames += 1;
                if b == i64::MAX {
                    self.reach_to(tick.ns(slot as i128) + 1);
                }
                None
            }
        }
    }

    /// Splits the audio samples `first .. first + count` (indices at `rate`)
    /// into the spans that go out, with their output pts, in `spans`.
    /// `real`: they are captured samples (not silence filling a gap), and
    /// those cut are counted.
    pub fn audio(&mut self, rate: u32, first: i64, count: u64, real: bool, spans: &mut Vec<Span>) {
        spans.clear();
        let tick = Tick::sample(rate);
        let end = first + count as i64;
        let mut at = first;
        for (a, b) in self.ranges(tick) {
            if a >= end {
                break;
            }
            if b <= at {
                continue;
            }
            if a > at {
                spans.push(span(first, at, a));
            }
            at = b;
            if at >= end {
                break;
            }
        }
        if at < end {
            spans.push(span(first, at, end));
        }
        for s in spans.iter_mut() {
            s.pts = self.kept_before(tick, first + s.offset as i64);
        }
        let kept: u64 = spans.iter().map(|s| s.len).sum();
        if real {
            self.samples += count - kept;
        }
        let open_from = self.ranges(tick).last().filter(|r| r.1 == i64::MAX);
        if open_from.is_some_and(|(a, _)| a < end) {
            self.reach_to(tick.ns(end as i128 - 1) + 1);
        }
    }

    /// How many samples (at `rate`) of the first `len` indices go out.
    pub fn audio_kept(&self, rate: u32, len: i64) -> i64 {
        self.kept_before(Tick::sample(rate), len)
    }

    /// Seconds cut from the timeline: the pauses that ended, whole frames
    /// each, and the one under way so far.
    pub fn cut_s(&self, now_ns: u64) -> f64 {
        let frames: i128 = self.cuts.iter().map(|c| c.frames).sum();
        let open = match (self.t0, self.open_start()) {
            (Some(t0), Some(c)) => (now_ns as i128 - t0 as i128 - c.end_ns(self.grid)).max(0),
            _ => 0,
        };
        self.grid.seconds(frames) + Tick::NANO.seconds(open)
    }

    /// Where in the output (seconds) the pause under way began, or else the
    /// last cut is; `None` before the recording began.
    pub fn output_at_s(&self) -> Option<f64> {
        let slot = match self.open_start() {
            Some(c) => self.grid.index_at(c.start_ns, c.frames, self.grid),
            None => self
                .grid
                .index_at(self.cuts.last()?.start_ns, 0, Tick::NANO),
        } as i64;
        Some(self.grid.seconds(self.kept_before(self.grid, slot) as i128))
    }

    /// The last pause's cut: (seconds, grid periods).
    pub fn last_cut(&self) -> Option<(f64, i128)> {
        let c = self.cuts.last()?;
        Some((self.grid.seconds(c.frames), c.frames))
    }

    /// The state a restarted sync continues from (see [`Pause::restore`]).
    pub fn state(&self) -> Value {
        let cuts: Vec<[i64; 2]> = self
            .cuts
            .iter()
            .map(|c| [c.start_ns as i64, c.frames as i64])
            .collect();
        json!({
            "grid": [self.grid.num as i64, self.grid.den as i64],
            "open": self.open,
            "reach": self.reach,
            "early": self.early,
            "cuts": cuts,
            "frames": self.frames,
            "samples": self.samples,
        })
    }

    /// The pause a previous incarnation saved with [`Pause::state`], on the
    /// timeline from `t0` (when it was fixed).
    pub fn restore(state: &Value, t0: Option<u64>) -> Option<Pause> {
        let pair = |v: &Value| Some((v.get(0)?.as_i64()?, v.get(1)?.as_i64()?));
        let (num, den) = pair(&state["grid"])?;
        let early = state["early"].as_array()?.iter().map(pair);
        let cuts = state["cuts"].as_array()?.iter().map(pair);
        Some(Pause {
            t0,
            grid: Tick {
                num: num.max(1) as i128,
                den: den.max(1) as i128,
            },
            open: state["open"].as_u64(),
            reach: state["reach"].as_u64()?,
            early: early
                .map(|p| p.map(|(b, e)| (b as u64, e as u64)))
                .collect::<Option<_>>()?,
            cuts: cuts
                .map(|p| {
                    p.map(|(s, f)| Cut {
                        start_ns: s as i128,
                        frames: f as i128,
                    })
                })
                .collect::<Option<_>>()?,
            frames: state["frames"].as_u64()?,
            samples: state["samples"].as_u64()?,
        })
    }
}

/// The span of indices `from .. to` of a range starting at `first`.
fn span(first: i64, from: i64, to: i64) -> Span {
    Span {
        offset: (from - first) as u64,
        len: (to - from) as u64,
        pts: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;
    const T0: u64 = 1_000_000 * MS;
    /// 30 fps: one frame is 1600 samples at 48 kHz.
    const FPS30: Tick = Tick { num: 1, den: 30 };
    const RATE: u32 = 48_000;

    fn started() -> Pause {
        let mut p = Pause::new(false, T0 - 100 * MS);
        p.start(T0, Some(FPS30));
        p
    }

    /// Slots `from..to` of a 30 fps camera: their output pts (`None`: cut).
    fn place(p: &mut Pause, from: i64, to: i64) -> Vec<Option<i64>> {
        (from..to).map(|s| p.video(FPS30, s)).collect()
    }

    /// Audio `first .. first + count` as (offset, len, pts) runs.
    fn audio(p: &mut Pause, first: i64, count: u64) -> Vec<(u64, u64, i64)> {
        let mut spans = Vec::new();
        p.audio(RATE, first, count, true, &mut spans);
        spans.iter().map(|s| (s.offset, s.len, s.pts)).collect()
    }

    #[test]
    fn the_span_is_rounded_up_to_whole_frames_of_the_grid() {
        let mut p = started();
        // Paused 1010.5 ms after T0 for 1490 ms: 44.7 frames, so 45 (1.5 s).
        assert!(p.set(true, T0 + 1_010_500_000));
        assert!(!p.set(true, T0 + 1_200 * MS), "already paused");
        assert!(p.is_paused());
        assert!(p.set(false, T0 + 2_500_500_000));
        assert_eq!(p.last_cut(), Some((1.5, 45)));
        assert_eq!(p.cut_s(T0 + 9_000 * MS), 1.5);
        // Slot 30 (1000 ms) is before the pause, slots 31 (1033 ms) .. 75
        // (2500 ms) are in [1010.5, 2510.5) ms, slot 76 follows slot 30.
        assert_eq!(place(&mut p, 29, 32), [Some(29), Some(30), None]);
        assert_eq!(place(&mut p, 75, 78), [None, Some(31), Some(32)]);
        assert_eq!(p.frames(), 2);
        assert_eq!(p.output_at_s(), Some(31.0 / 30.0));
    }

    #[test]
    fn audio_is_cut_to_the_sample_and_shifted_like_the_video() {
        let mut p = started();
        p.set(true, T0 + 1_010_500_000);
        p.set(false, T0 + 2_500_500_000);
        // The cut is [⌈1.0105 s × 48000⌉, + 1.5 s × 48000) = [48504, 120504).
        assert_eq!(audio(&mut p, 47_000, 1024), [(0, 1024, 47_000)]);
        assert_eq!(audio(&mut p, 48_000, 1024), [(0, 504, 48_000)]);
        assert_eq!(audio(&mut p, 60_000, 1024), []);
        assert_eq!(audio(&mut p, 120_000, 1024), [(504, 520, 48_504)]);
        assert_eq!(audio(&mut p, 121_024, 1024), [(0, 1024, 49_024)]);
        assert_eq!(p.samples(), 520 + 1024 + 504);
        // Both outputs moved back by the same 1.5 s: 45 frames, 72000 samples.
        assert_eq!(p.video(FPS30, 90), Some(45));
        assert_eq!(audio(&mut p, 90 * 1600, 1), [(0, 1, 45 * 1600)]);
        assert_eq!(p.audio_kept(RATE, 121_024), 49_024);
        // A frame spanning the whole cut keeps its head and its tail, back to back.
        let mut q = started();
        q.set(true, T0 + 1_010_500_000);
        q.set(false, T0 + 1_020 * MS);
        assert_eq!(q.last_cut(), Some((1.0 / 30.0, 1)));
        assert_eq!(
            audio(&mut q, 48_000, 8192),
            [(0, 504, 48_000), (504 + 1600, 8192 - 2104, 48_504)]
        );
    }

    #[test]
    fn several_pauses_add_up() {
        let mut p = started();
        let mut expected_shift = 0;
        for (i, (at_ms, for_ms)) in [(1_000u64, 500u64), (3_000, 1_234), (6_000, 20)]
            .into_iter()
            .enumerate()
        {
            p.set(true, T0 + at_ms * MS);
            assert!(p.is_paused());
            p.set(false, T0 + (at_ms + for_ms) * MS);
            let frames = (for_ms * 30).div_ceil(1000) as i64;
            assert_eq!(p.last_cut().unwrap().1, frames as i128, "pause {i}");
            expected_shift += frames;
        }
        // 15 + 38 + 1 frames: 1.8 s.
        assert_eq!(expected_shift, 54);
        assert!((p.cut_s(0) - 1.8).abs() < 1e-12);
        // Well after the last pause, every output is back by the same amount.
        assert_eq!(p.video(FPS30, 300), Some(300 - 54));
        assert_eq!(audio(&mut p, 300 * 1600, 10), [(0, 10, (300 - 54) * 1600)]);
        // Before the first, nothing moved.
        assert_eq!(p.video(FPS30, 29), Some(29));
        assert_eq!(p.frames(), 0);
        assert_eq!(p.samples(), 0);
    }

    #[test]
    fn while_paused_later_media_goes_and_earlier_media_still_comes_out() {
        let mut p = started();
        p.set(true, T0 + 1_000 * MS);
        // Frames captured before the pause, arriving now, go out.
        assert_eq!(place(&mut p, 28, 30), [Some(28), Some(29)]);
        // From the pause on, nothing does.
        assert_eq!(place(&mut p, 30, 40), [None; 10]);
        assert_eq!(audio(&mut p, 47_000, 2048), [(0, 1000, 47_000)]);
        assert!((p.cut_s(T0 + 1_250 * MS) - 0.25).abs() < 1e-12);
        assert_eq!(p.output_at_s(), Some(1.0));
        // The end of the stream ends the pause: its span is counted.
        // The end of the stream ends the pause; the cut covers every frame
        // it took (slots 30 ..= 39).
        p.finish(T0 + 1_300 * MS);
        assert!(!p.is_paused());
        assert_eq!(p.last_cut(), Some((10.0 / 30.0, 10)));
    }

    #[test]
    fn a_pause_right_after_a_resume_starts_after_the_last_cut() {
        let mut p = started();
        p.set(true, T0 + 1_000 * MS);
        p.set(false, T0 + 1_010 * MS); // cut [1000, 1033.3) ms
        p.set(true, T0 + 1_020 * MS);
        // Paused inside the last cut: slot 31 (1033.3 ms) is captured after it.
        assert_eq!(p.video(FPS30, 31), None);
        p.set(false, T0 + 1_040 * MS); // the cut grows to [1000, 1066.7) ms
        assert_eq!(p.last_cut(), Some((2.0 / 30.0, 2)));
        assert_eq!(place(&mut p, 29, 33), [Some(29), None, None, Some(30)]);
        assert_eq!(p.frames(), 3);
    }

    #[test]
    fn a_pause_begins_after_what_was_already_sent() {
        // An app stamps its sound a frame ahead: samples up to 2.2 s (index
        // 105600) and frames up to slot 65 went out before the pause at
        // 2.197 s; sync pauses just after the latest of them.
        let sent = Tick::sample(RATE)
            .just_after(105_599)
            .max(FPS30.just_after(65));
        assert!(sent < 2_200 * MS && sent > 2_199 * MS, "{sent}");
        let mut p = started();
        p.set(true, T0 + (2_197 * MS).max(sent));
        p.set(false, T0 + 3_400 * MS);
        assert_eq!(p.last_cut(), Some((37.0 / 30.0, 37)));
        assert_eq!(place(&mut p, 65, 67), [Some(65), None]);
        assert_eq!(audio(&mut p, 104_000, 1600), [(0, 1600, 104_000)]);
        assert_eq!(audio(&mut p, 105_600, 1600), []);
        assert_eq!(audio(&mut p, 105_600 + 37 * 1600, 1), [(0, 1, 105_600)]);
    }

    #[test]
    fn a_replay_ahead_of_now_is_cut_as_far_as_it_was_dropped() {
        // Captured up to 4 s after the pause began, though resumed after 1 s.
        let mut p = started();
        p.set(true, T0 + 1_000 * MS);
        assert_eq!(place(&mut p, 30, 150), [None; 120]);
        p.set(false, T0 + 2_000 * MS);
        assert_eq!(p.last_cut(), Some((4.0, 120)));
        assert_eq!(p.video(FPS30, 150), Some(30));
    }

    #[test]
    fn a_pause_before_the_start_only_delays_it() {
        // Started paused: media arriving is dropped until resumed.
        let mut p = Pause::new(true, T0 - 3_000 * MS);
        let samples = Media::Samples {
            count: 960,
            rate: RATE,
        };
        assert!(p.drops_early(T0 - 2_000 * MS, Media::Frame));
        assert!(p.drops_early(T0 - 2_000 * MS, samples));
        p.set(false, T0 - 1_000 * MS);
        let late = T0 - 1_500 * MS;
        assert!(p.drops_early(late, Media::Frame), "captured while paused");
        assert!(!p.drops_early(T0 - 1_000 * MS, Media::Frame));
        assert!(!p.drops_early(T0 - 1_000 * MS, samples));
        assert_eq!((p.frames(), p.samples()), (2, 960));
        // The recording begins after it: nothing is cut from its timeline.
        p.start(T0, Some(FPS30));
        assert_eq!(p.cut_s(T0 + 5_000 * MS), 0.0);
        assert_eq!(p.video(FPS30, 0), Some(0));
        // A pause under way when T0 is fixed cuts from T0 on.
        let mut q = Pause::new(true, T0 - 3_000 * MS);
        q.start(T0, Some(FPS30));
        assert_eq!(q.video(FPS30, 0), None);
        q.set(false, T0 + 100 * MS);
        assert_eq!(q.last_cut(), Some((0.1, 3)));
        assert_eq!(q.video(FPS30, 3), Some(0));
    }

    #[test]
    fn ntsc_cuts_keep_audio_within_a_sample_of_the_video() {
        let ntsc = Tick::frame(TimeBase::new(1001, 30_000), 1);
        let mut p = Pause::new(false, T0);
        p.start(T0, Some(ntsc));
        p.set(true, T0 + 1_000 * MS);
        p.set(false, T0 + 2_000 * MS);
        // 30 frames of 1001/30000 s: 1.001 s, 48048 samples exactly; a
        // fraction of a sample per frame otherwise.
        assert_eq!(p.last_cut(), Some((1.001, 30)));
        let video_shift = 30 * 1001 * 48_000 / 30_000;
        assert_eq!(p.audio_kept(RATE, 1_000_000), 1_000_000 - video_shift);
        p.set(true, T0 + 5_000 * MS);
        p.set(false, T0 + 5_050 * MS); // 2 frames, 3203.2 samples
        let kept = p.audio_kept(RATE, 1_000_000);
        let shift = 1_000_000 - kept;
        assert!((shift - video_shift - 3203).abs() <= 1, "{shift}");
    }

    #[test]
    fn the_state_carries_over_to_a_restarted_sync() {
        let mut p = started();
        p.set(true, T0 + 1_000 * MS);
        p.set(false, T0 + 1_500 * MS);
        p.video(FPS30, 31);
        p.set(true, T0 + 3_000 * MS);
        let q = Pause::restore(&p.state(), Some(T0)).expect("restored");
        assert_eq!(format!("{q:?}"), format!("{p:?}"));
        assert!(Pause::restore(&json!({}), None).is_none());
    }
}
