//! `runtime run --duration`: a source ends by itself after that many
//! seconds of media, so a replay faster than real time records as much as
//! a live run does (a wall-clock stop would cut it after however much media
//! it had produced by then). The node API applies it to every node without
//! inputs, built-in or custom, at the send: a frame that starts past the
//! limit is not sent, and once every output that sent media is past it the
//! source sees `stop_requested()` and ends as it would at a stop (its
//! end-of-stream flows, the mux finalizes).

use anyhow::Result;

use super::Node;
use crate::message::Header;

/// One output's media clock: seconds from its first frame.
#[derive(Debug, Default)]
pub(super) struct MediaClock {
    /// The first frame's start, in seconds of the frame's own timeline.
    first_s: Option<f64>,
    /// A frame started at or past the limit: nothing more goes out.
    pub ended: bool,
}

/// Frames that start this close below the limit count as past it: a
/// frame at exactly 2 s of a 30 fps stream, computed from nanoseconds,
/// may come out a hair short.
const EPSILON_S: f64 = 1e-6;

impl MediaClock {
    /// Whether a frame starting at `at_s` is within `limit_s` of the first
    /// frame; the first refusal ends the output's media.
    pub fn admits(&mut self, at_s: f64, limit_s: f64) -> bool {
        if self.ended {
            return false;
        }
        let first = *self.first_s.get_or_insert(at_s);
        if at_s - first < limit_s - EPSILON_S {
            return true;
        }
        self.ended = true;
        false
    }

    fn started(&self) -> bool {
        self.first_s.is_some()
    }
}

impl Node {
    /// Whether `header` may go out on `output` under `--duration`. Where it
    /// cannot, the caller drops the frame; the node's stop follows once
    /// every output that carried media reached the limit.
    pub(super) fn within_media_limit(&mut self, output: &str, header: &Header) -> Result<bool> {
        let Some(limit_s) = self.config.media_duration_s else {
            return Ok(true);
        };
        // Only sources: a node with inputs ends when they end.
        if !self.config.inputs.is_empty() {
            return Ok(true);
        }
        let Some((at_s, _)) = header.media_span() else {
            return Ok(true);
        };
        let admitted = self.output_mut(output)?.media.admits(at_s, limit_s);
        if !admitted && !self.media_limit_reached {
            let started = self.outputs.iter().filter(|o| o.media.started());
            if started.clone().all(|o| o.media.ended) {
                tracing::info!("{limit_s} s of media sent (--duration): ending the source");
                self.media_limit_reached = true;
            }
        }
        Ok(admitted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_seconds_at_30_fps_are_60_frames() {
        let mut clock = MediaClock::default();
        let start_ns = 1_234_567_890_123u64;
        let sent = (0..100u64)
            .map(|k| start_ns + k * 1_000_000_000 / 30)
            .take_while(|&ns| clock.admits(ns as f64 * 1e-9, 2.0))
            .count();
        assert_eq!(sent, 60);
        assert!(clock.ended);
        assert!(!clock.admits(start_ns as f64 * 1e-9, 2.0), "ended for good");
    }

    #[test]
    fn counts_from_the_first_frame_not_from_zero() {
        let mut clock = MediaClock::default();
        assert!(clock.admits(100.0, 0.5));
        assert!(clock.admits(100.4, 0.5));
        assert!(!clock.admits(100.5, 0.5));
    }
}
