//! The shipped podcast graph: two microphones, each denoised, each its own
//! track, and their mix, in one file on one timeline. Test microphones
//! with clapper beeps on clocks skewed +300 and −300 ppm, replayed faster
//! than real time.

use std::time::Duration;

use graph_tests::claps::beeps_of;
use graph_tests::media::{decode_errors, probe, repo_graph, require_ffmpeg, run_to_end};
use graph_tests::Scratch;

/// Seconds of media recorded.
const SECONDS: usize = 60;

/// Every beep of track `a` and the beep of track `b` nearest to it, s.
fn pairs(a: &[f64], b: &[f64]) -> Vec<(f64, f64)> {
    a.iter()
        .map(|&t| {
            let near = b
                .iter()
                .copied()
                .min_by(|x, y| (x - t).abs().total_cmp(&(y - t).abs()))
                .unwrap_or(f64::NAN);
            (t, near)
        })
        .collect()
}

#[test]
fn each_microphone_and_the_mix_are_tracks_on_one_timeline() {
    require_ffmpeg();
    let s = Scratch::new();
    let out = s.path("podcast.mkv");
    let sets = [
        "realtime=false".to_string(),
        "host=test".into(),
        "host.pattern=clapper".into(),
        "guest.pattern=clapper".into(),
        format!("host.duration={SECONDS}"),
        format!("guest.duration={SECONDS}"),
        "host.clock_skew_ppm=300".into(),
        "guest.clock_skew_ppm=-300".into(),
        format!("mux.path={}", out.display()),
    ];
    let args: Vec<String> = sets
        .iter()
        .flat_map(|v| ["--set".into(), v.clone()])
        .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = run_to_end(
        &s,
        &repo_graph("podcast.yaml"),
        &args,
        Duration::from_secs(300),
        "the end of its microphones",
    );
    assert_eq!(decode_errors(&out), "", "the file decodes cleanly");
    let p = probe(&out).unwrap();
    assert_eq!(p.audio.len(), 3, "mix, host, guest");
    let channels: Vec<u64> = p.audio.iter().map(|a| a.channels).collect();
    assert_eq!(
        channels,
        [2, 1, 1],
        "the mix in stereo, each microphone mono"
    );
    // Each microphone's 60 s of samples span 60 s ∓ 18 ms of real time
    // (its crystal); the file adds the AAC priming (not trimmed in MKV by
    // FFmpeg 5.1) and up to a frame of padding.
    for a in &p.audio {
        let lasts = a.end - a.start;
        assert!(
            (lasts - SECONDS as f64).abs() <= 0.065,
            "a track of {lasts} s"
        );
    }
    // Sync's own count is exact: the capture time each track spans.
    let log = std::fs::read_to_string(s.path("run/logs/sync.log")).unwrap();
    for (input, ppm) in [("audio", 300.0), ("audio2", -300.0)] {
        let expected = SECONDS as f64 * 48_000.0 * (1.0 - ppm * 1e-6);
        let samples: f64 = log
            .split(&format!("{input} "))
            .filter_map(|rest| rest.split(" samples").next()?.parse().ok())
            .next()
            .unwrap_or_else(|| panic!("no sample count of {input} in sync's log:\n{log}"));
        assert!(
            (samples - expected).abs() <= 48.0,
            "{input}: {samples} samples, {expected} for {SECONDS} s at {ppm:+} ppm"
        );
    }
    // The beep at 0 s starts on the first sample: the AAC encoder's
    // pre-echo of it in the louder (normalized) mix reads as an earlier
    // onset, so the comparison starts at the second beep.
    let [mix, host, guest] = [0, 1, 2].map(|t| {
        let beeps = beeps_of(&out, t);
        beeps.into_iter().filter(|t| *t > 0.5).collect::<Vec<f64>>()
    });
    assert!(
        host.len() >= SECONDS - 1,
        "{} beeps of the host",
        host.len()
    );
    for (name, other) in [("guest", &guest), ("mix", &mix)] {
        let worst = pairs(&host, other)
            .iter()
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(
            // Beeps are found to the millisecond.
            worst <= 0.001 + 1e-6,
            "the host's beeps and the {name}'s are up to {:.1} ms apart",
            worst * 1000.0
        );
    }
    // Drift corrected: a beep a second to the end (uncorrected, ±18 ms).
    let span = host[host.len() - 1] - host[0];
    let whole = span.round();
    assert!((span - whole).abs() <= 0.001 + 1e-6, "beeps {span} s apart");
    let m = &r.node("sync")["stats"]["metrics"];
    for (input, ppm) in [("audio", 300.0), ("audio2", -300.0)] {
        let estimated = m[format!("track_drift_ppm_{input}")].as_f64().unwrap();
        assert!(
            (estimated - ppm).abs() < 10.0,
            "{input}: {estimated} ppm: {m}"
        );
    }
}
