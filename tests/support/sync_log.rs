//! What sync's log says about its pauses: where the last cut went in the
//! output, and its summary of everything cut.

/// Where in the output the last pause was cut, from sync's log line
/// `resumed: 1.500 s (45 frame periods) cut at 1.533 s of the output, ...`.
pub fn cut_at(log: &str) -> f64 {
    let line = log
        .lines()
        .rfind(|l| l.contains("resumed: "))
        .unwrap_or_else(|| panic!("no resume in sync's log:\n{log}"));
    let at = line
        .split("cut at ")
        .nth(1)
        .and_then(|r| r.split(' ').next());
    at.and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("no cut position in `{line}`"))
}

/// Sync's own count of what its pauses cut, from its last log line
/// (`... paused: 1.233 s cut, 37 frames, 59200 samples`): (s, frames, samples).
pub fn cut_in_log(log: &str) -> (f64, u64, u64) {
    let tail = log
        .lines()
        .rfind(|l| l.contains("sync done"))
        .and_then(|l| l.split("paused: ").nth(1))
        .unwrap_or_else(|| panic!("no summary in sync's log:\n{log}"));
    let n: Vec<f64> = tail
        .split([' ', ','])
        .filter_map(|w| w.parse().ok())
        .collect();
    assert_eq!(n.len(), 3, "{tail}");
    (n[0], n[1] as u64, n[2] as u64)
}
