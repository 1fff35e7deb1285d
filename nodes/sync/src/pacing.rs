//! Keeps replayed streams together. Sources replaying faster than real time
//! (files, `realtime: false` test sources) each run as fast as they can, so
//! audio (cheap) would race minutes ahead of video (expensive): a graph
//! stopped by Ctrl-C or `--duration` would then hold far more sound than
//! picture. On no_drop streams sync therefore stops reading an input whose
//! capture time runs more than a window ahead of the slowest open input; its
//! queue fills and its sender waits. Live streams are never paced: they come
//! at the speed of their devices.

use std::collections::{BTreeMap, BTreeSet};

/// Which inputs to stop and to resume reading.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Decision {
    pub pause: Vec<String>,
    pub resume: Vec<String>,
}

pub struct Pacer {
    window_ns: u64,
    /// Capture time of the latest frame of each open input.
    heads: BTreeMap<String, u64>,
    /// Open inputs that have not sent a frame yet.
    waiting: BTreeSet<String>,
    /// Earliest capture time seen on any input.
    first_ns: Option<u64>,
    paused: BTreeSet<String>,
}

impl Pacer {
    pub fn new(inputs: impl IntoIterator<Item = String>, window_ns: u64) -> Pacer {
        Pacer {
            window_ns,
            heads: BTreeMap::new(),
            waiting: inputs.into_iter().collect(),
            first_ns: None,
            paused: BTreeSet::new(),
        }
    }

    pub fn seen(&mut self, input: &str, capture_ns: u64) {
        self.waiting.remove(input);
        self.first_ns = Some(self.first_ns.map_or(capture_ns, |f| f.min(capture_ns)));
        let head = self.heads.entry(input.to_string()).or_insert(capture_ns);
        *head = (*head).max(capture_ns);
    }

    pub fn closed(&mut self, input: &str) {
        self.waiting.remove(input);
        self.heads.remove(input);
    }

    /// What to change so that no open input runs more than the window ahead
    /// of the slowest one; the slowest is never paused, so reading goes on.
    /// While an open input has not begun, the others go at most the window
    /// past the earliest start: replayed sources all start at the run's epoch,
    /// so the late one begins there, and sync's hold must not drop what came
    /// first meanwhile. (Should it never begin, the paused queues' extra room
    /// lets the others through after a while.)
    pub fn decide(&mut self) -> Decision {
        let reference = if self.waiting.is_empty() {
            self.heads.values().min().copied()
        } else {
            self.first_ns
        };
        let mut want = BTreeSet::new();
        if let Some(reference) = reference {
            for (input, head) in &self.heads {
                if *head > reference + self.window_ns {
                    want.insert(input.clone());
                }
            }
        }
        let decision = Decision {
            pause: want.difference(&self.paused).cloned().collect(),
            resume: self.paused.difference(&want).cloned().collect(),
        };
        self.paused = want;
        decision
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn pacer() -> Pacer {
        Pacer::new(["audio".to_string(), "video".to_string()], 200 * MS)
    }

    #[test]
    fn the_input_running_ahead_waits_for_the_slowest() {
        let mut p = pacer();
        p.seen("audio", 0);
        assert_eq!(p.decide(), Decision::default(), "video has not begun");
        p.seen("video", 0);
        p.seen("audio", 150 * MS);
        assert_eq!(p.decide(), Decision::default(), "within the window");
        p.seen("audio", 250 * MS);
        assert_eq!(p.decide().pause, ["audio"]);
        assert_eq!(p.decide(), Decision::default(), "already paused");
        p.seen("video", 100 * MS);
        assert_eq!(p.decide().resume, ["audio"]);
    }

    #[test]
    fn inputs_wait_near_the_start_for_one_that_has_not_begun() {
        let mut p = pacer();
        p.seen("audio", 0);
        p.seen("audio", 150 * MS);
        assert_eq!(p.decide(), Decision::default(), "within the window");
        p.seen("audio", 250 * MS);
        assert_eq!(p.decide().pause, ["audio"], "video has not begun yet");
        p.seen("video", 0);
        assert_eq!(p.decide(), Decision::default(), "still 250 ms ahead");
        p.seen("video", 60 * MS);
        assert_eq!(p.decide().resume, ["audio"]);
    }

    #[test]
    fn an_input_that_ends_releases_the_others() {
        let mut p = pacer();
        p.seen("audio", 900 * MS);
        p.seen("video", 0);
        assert_eq!(p.decide().pause, ["audio"]);
        p.closed("video");
        assert_eq!(p.decide().resume, ["audio"]);
    }

    #[test]
    fn the_slowest_input_is_never_paused() {
        let mut p = Pacer::new(["a", "b", "c"].map(String::from), 100 * MS);
        p.seen("a", 0);
        p.seen("b", 500 * MS);
        p.seen("c", 900 * MS);
        let d = p.decide();
        assert_eq!(d.pause, ["b", "c"]);
        assert!(!d.pause.contains(&"a".to_string()));
    }
}
