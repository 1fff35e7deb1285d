//! The mix on synthetic frames: levels add up, mute and gains hold, inputs
//! meet by capture time, an input that ends or stalls does not stop the others.

use node_api::{AudioFrame, SampleFormat, TimeBase};

use crate::mixer::{db_to_gain, Mixer};

const RATE: u32 = 48_000;

fn names(n: &[&str]) -> Vec<String> {
    n.iter().map(|s| s.to_string()).collect()
}

/// A frame of `samples` stereo f32 samples at `value`, captured at `ms`.
fn frame(samples: u32, ms: u64, value: f32) -> (AudioFrame, Vec<u8>) {
    let h = AudioFrame {
        format: SampleFormat::F32,
        sample_rate: RATE,
        channels: 2,
        channel_layout: 0,
        samples,
        pts: 0,
        time_base: TimeBase::new(1, RATE as i32),
        capture_ns: 1_000_000_000 + ms * 1_000_000,
    };
    let data = (0..samples * 2).flat_map(|_| value.to_ne_bytes()).collect();
    (h, data)
}

/// Every block that can be mixed now: (position, first sample's left value).
fn blocks(m: &mut Mixer, live: bool) -> Vec<(u64, f32)> {
    std::iter::from_fn(|| m.next_block(live).map(|b| (b.pos, m.mixed()[0]))).collect()
}

#[test]
fn gains_add_and_mute_silences() {
    let mut m = Mixer::new(&names(&["a", "b"]), RATE, 2, 960, 4800);
    m.lanes[0].gain = db_to_gain(-6.0);
    m.lanes[0].applied = m.lanes[0].gain;
    let (h, d) = frame(960, 0, 0.5);
    m.push(0, &h, &d).unwrap();
    assert!(blocks(&mut m, false).is_empty(), "waits for `b`");
    let (h, d) = frame(960, 0, 0.25);
    m.push(1, &h, &d).unwrap();
    let got = blocks(&mut m, false);
    assert_eq!(got.len(), 1);
    assert!(
        (got[0].1 - (0.5 * 0.501_187 + 0.25)).abs() < 1e-4,
        "{got:?}"
    );
    m.lanes[1].muted = true;
    for i in 0..2 {
        let (h, d) = frame(960, 20, 0.5);
        m.push(i, &h, &d).unwrap();
    }
    let got = blocks(&mut m, false);
    assert!((got[0].1 - 0.5 * 0.501_187).abs() < 1e-4, "{got:?}");
}

#[test]
fn inputs_meet_by_capture_time_and_gaps_are_silence() {
    let mut m = Mixer::new(&names(&["a", "b"]), RATE, 2, 480, 4800);
    // `b` starts 10 ms (480 samples) after `a`.
    let (h, d) = frame(960, 0, 0.5);
    m.push(0, &h, &d).unwrap();
    let (h, d) = frame(480, 10, 0.25);
    m.push(1, &h, &d).unwrap();
    let got = blocks(&mut m, false);
    assert_eq!(got, vec![(0, 0.5), (480, 0.75)]);
    // `b` skips 100 ms: a gap, filled.
    let (h, d) = frame(480, 120, 0.25);
    let placed = m.push(1, &h, &d).unwrap();
    assert_eq!(placed.gap_filled, 4800);
    let (h, d) = frame(6000, 20, 0.5);
    m.push(0, &h, &d).unwrap();
    let got = blocks(&mut m, false);
    assert_eq!(got.first(), Some(&(960, 0.5)), "the gap is silence");
    assert_eq!(got.last(), Some(&(5760, 0.75)), "{got:?}");
}

#[test]
fn an_input_that_started_first_but_arrives_last_is_not_cut() {
    let mut m = Mixer::new(&names(&["a", "b"]), RATE, 2, 480, 4800);
    let (h, d) = frame(960, 10, 0.5);
    m.push(0, &h, &d).unwrap();
    // `b` was captured 10 ms earlier: the timeline starts with it.
    let (h, d) = frame(960, 0, 0.25);
    let placed = m.push(1, &h, &d).unwrap();
    assert_eq!(placed.late, 0);
    let got = blocks(&mut m, false);
    assert_eq!(got, vec![(0, 0.25), (480, 0.75)]);
}

#[test]
fn an_input_that_ends_or_stalls_does_not_stop_the_others() {
    let mut m = Mixer::new(&names(&["a", "b"]), RATE, 2, 480, 960);
    let (h, d) = frame(480, 0, 0.25);
    m.push(1, &h, &d).unwrap();
    let (h, d) = frame(4800, 0, 0.5);
    m.push(0, &h, &d).unwrap();
    // Replayed: `b` is waited for.
    assert_eq!(blocks(&mut m, false).len(), 1);
    // Live: `b` is late by more than the latency (960): mixed without it.
    let got = blocks(&mut m, true);
    assert_eq!(got.len(), 7, "{got:?}");
    assert_eq!(got[0], (480, 0.5));
    // Its audio for what was mixed is dropped.
    let (h, d) = frame(480, 10, 0.25);
    assert_eq!(m.push(1, &h, &d).unwrap().late, 480);
    m.close(1).unwrap();
    assert_eq!(blocks(&mut m, false).len(), 2, "`a` goes on alone");
    m.close(0).unwrap();
    assert!(blocks(&mut m, false).is_empty());
    assert_eq!(m.position(), 4800);
}

#[test]
fn pan_lowers_the_far_side_and_mono_goes_to_both() {
    let mut m = Mixer::new(&names(&["a"]), RATE, 2, 480, 960);
    m.lanes[0].pan = 0.5;
    let mut h = frame(480, 0, 0.0).0;
    h.channels = 1;
    let d: Vec<u8> = (0..480).flat_map(|_| 0.5f32.to_ne_bytes()).collect();
    m.push(0, &h, &d).unwrap();
    m.next_block(false).unwrap();
    let (l, r) = (m.mixed()[0], m.mixed()[1]);
    assert!((l - 0.25).abs() < 1e-6 && (r - 0.5).abs() < 1e-6, "{l} {r}");
}
