//! Where the recording is ([`Recording`]) and how a part ends at a limit
//! ([`Split`]). A split happens in two steps: once a limit is reached
//! ([`Split::Due`]), the split track's next keyframe at or after the instant
//! it is due fixes the split point ([`Split::At`]); the part then ends once
//! every other track has reached that point too (tracks run ahead of or
//! behind each other by an encoder's lookahead), so each packet lands in
//! exactly one part. With `on_limit: stop` the recording ends at that
//! keyframe instead ([`Recording::Stopped`]). The commands of a recording
//! session (see `session.rs`) cut the same way: a split at its instant's
//! keyframe, a stop at its instant (no keyframe needed: nothing follows).

use std::collections::VecDeque;

use anyhow::Result;
use node_api::{EncodedPacket, MediaKind};

use super::track::{start_seconds, starts_gop};
use super::{Muxer, Part};

/// How far packets of the other tracks may run ahead of a pending split
/// before they go into the old part anyway (a video track that stopped).
pub(super) const SPLIT_HOLD_SECONDS: f64 = 5.0;

/// A packet of track `.0` held back while a split is pending.
pub(super) type Held = (usize, EncodedPacket, Vec<u8>);

/// Where the recording is.
pub(super) enum Recording {
    /// Not recording (`recording: false`): packets are let go until a
    /// start.
    Standby,
    /// No file is open: before the first (each track holds its packets
    /// until every input has begun), or after the last was closed.
    Idle,
    /// Writing `part`; `split` says whether it is about to end.
    Writing { part: Box<Part>, split: Split },
    /// `on_limit: stop` reached: nothing more is written.
    Stopped,
}

/// Whether the current part is about to end.
pub(super) enum Split {
    /// No limit reached.
    None,
    /// `limit` reached: the part ends at the split track's next keyframe at
    /// or after the instant it is due. Packets of the other tracks from
    /// that instant on wait in `held`: they go to the old part if they
    /// start before the split point, else to the new one.
    Due { limit: Limit, held: VecDeque<Held> },
    /// The split track's keyframe fixed the split point `at` (stream time,
    /// s): the part ends when the other tracks reach it.
    At {
        at: f64,
        held: VecDeque<Held>,
        limit: Limit,
    },
}

/// Why the current part must end at the next point a file can start.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Limit {
    Duration,
    Size,
    /// Split asked for: at the first keyframe captured at or after `at_ns`.
    Split {
        at_ns: u64,
    },
    /// Stop asked for: the part ends before the first packet captured at or
    /// after `at_ns`, and the mux goes to standby.
    Stop {
        at_ns: u64,
    },
}

impl Limit {
    /// The capture instant a command cuts at.
    fn at_ns(self) -> Option<u64> {
        match self {
            Limit::Split { at_ns } | Limit::Stop { at_ns } => Some(at_ns),
            Limit::Duration | Limit::Size => None,
        }
    }
}

impl Split {
    /// The packets held back, taken out (the split stays where it is).
    fn take_held(&mut self) -> VecDeque<Held> {
        match self {
            Split::None => VecDeque::new(),
            Split::Due { held, .. } | Split::At { held, .. } => std::mem::take(held),
        }
    }

    fn held_mut(&mut self) -> Option<&mut VecDeque<Held>> {
        match self {
            Split::None => None,
            Split::Due { held, .. } | Split::At { held, .. } => Some(held),
        }
    }
}

impl Muxer {
    /// The split state of the current part (`None` when no part is open).
    pub(super) fn split(&self) -> Option<&Split> {
        match &self.state {
            Recording::Writing { split, .. } => Some(split),
            _ => None,
        }
    }

    pub(super) fn split_mut(&mut self) -> Option<&mut Split> {
        match &mut self.state {
            Recording::Writing { split, .. } => Some(split),
            _ => None,
        }
    }

    /// Writes a packet into the current part, or holds it while a split is
    /// pending (see the module's doc).
    pub(super) fn route(&mut self, i: usize, header: EncodedPacket, data: &[u8]) -> Result<()> {
        if matches!(self.split_mut(), Some(Split::None)) {
            if let Some(limit) = self.limit_reached(i, &header) {
                tracing::debug!("{limit:?} limit reached on `{}`", self.tracks[i].input);
                let held = self.ahead_into_split();
                *self.split_mut().expect("writing") = Split::Due { limit, held };
            } else if self.runs_ahead(i, &header) {
                return self.hold_ahead(i, header, data);
            }
        }
        match self.split_mut() {
            Some(Split::Due { limit, .. }) => {
                let limit = *limit;
                self.route_due(limit, i, header, data)
            }
            Some(Split::At { at, .. }) => {
                let at = *at;
                self.route_at(at, i, header, data)
            }
            _ => {
                self.write(i, &header, data)?;
                match self.split_end {
                    Some(end) if Some(i) == self.split_track() => self.release_ahead(end),
                    _ => Ok(()),
                }
            }
        }
    }

    /// A limit was reached: packets before the instant the split is due stay
    /// in this part; the split track's first keyframe from then on fixes
    /// the split point (or ends the recording, `on_limit: stop`).
    fn route_due(
        &mut self,
        limit: Limit,
        i: usize,
        header: EncodedPacket,
        data: &[u8],
    ) -> Result<()> {
        let start = start_seconds(&header);
        let due = self.split_due(limit);
        // Past the instant the cut is due: by stream time at a limit, by
        // capture time for a command (its instant is a wall-clock one).
        let past = match limit.at_ns() {
            Some(at_ns) => header.capture_ns >= at_ns,
            None => start >= due - 1e-6,
        };
        if Some(i) == self.split_track() {
            let stop = matches!(limit, Limit::Stop { .. });
            if !(past && (starts_gop(&header) || stop)) {
                return self.write(i, &header, data);
            }
            self.flush_split_hold(Some(start))?;
            if self.settings.stop_at_limit && limit.at_ns().is_none() {
                return self.stop_at_limit();
            }
            tracing::debug!("cut point fixed at {start:.3} s ({limit:?})");
            let split = self.split_mut().expect("writing");
            let mut held = split.take_held();
            held.push_back((i, header, data.to_vec()));
            *split = Split::At {
                at: start,
                held,
                limit,
            };
            return self.split_when_reached();
        }
        let held = self
            .split_mut()
            .and_then(Split::held_mut)
            .expect("a split is due");
        // Behind a packet of its track that is held, a packet waits too:
        // a track's packets go out in order.
        if !past && !held.iter().any(|(j, _, _)| *j == i) {
            return self.write(i, &header, data);
        }
        held.push_back((i, header, data.to_vec()));
        let front = held.front().map(|(_, h, _)| start_seconds(h));
        if front.is_some_and(|a| start - a > SPLIT_HOLD_SECONDS) {
            // The split track went quiet: do not hold the others forever.
            let (j, h, d) = held.pop_front().expect("not empty");
            self.write(j, &h, &d)?;
        }
        Ok(())
    }

    /// The split point `at` is fixed: packets of the other tracks before it
    /// go to this part, the rest wait for the next.
    fn route_at(&mut self, at: f64, i: usize, header: EncodedPacket, data: &[u8]) -> Result<()> {
        if Some(i) != self.split_track() && start_seconds(&header) < at {
            return self.write(i, &header, data);
        }
        let held = self
            .split_mut()
            .and_then(Split::held_mut)
            .expect("a split point");
        held.push_back((i, header, data.to_vec()));
        self.split_when_reached()
    }

    /// `on_limit: stop`, at the split track's keyframe: the part ends before
    /// it; that keyframe and the packets held are discarded.
    fn stop_at_limit(&mut self) -> Result<()> {
        let held = self.split_mut().map_or(0, |s| s.take_held().len());
        self.close_part()?;
        self.state = Recording::Stopped;
        self.discarded += 1 + held as u64;
        tracing::warn!(
            "limit reached (on_limit: stop): the recording ends here; later packets are discarded"
        );
        Ok(())
    }

    /// Starts the next part at the split point once every open track has a
    /// packet past it (or the held packets span too long: a track went quiet).
    pub(super) fn split_when_reached(&mut self) -> Result<()> {
        let splitter = self.split_track();
        let Some(Split::At { at, held, limit }) = self.split() else {
            return Ok(());
        };
        let (at, limit) = (*at, *limit);
        let waiting = self.tracks.iter().enumerate().any(|(j, t)| {
            Some(j) != splitter
                && t.stream.is_some()
                && !t.closed
                && !held.iter().any(|(k, _, _)| *k == j)
        });
        let span = match (held.front(), held.back()) {
            (Some(a), Some(b)) => start_seconds(&b.1) - start_seconds(&a.1),
            _ => 0.0,
        };
        if waiting && span <= SPLIT_HOLD_SECONDS {
            return Ok(());
        }
        tracing::debug!("splitting at {at:.3} s, {} packets held", held.len());
        let held = self.split_mut().expect("writing").take_held();
        if matches!(limit, Limit::Stop { .. }) {
            return self.end_session(at, held.len() as u64);
        }
        self.next_file(at)?;
        // Routed again: they may reach the next part's limit too.
        for (j, h, d) in held {
            self.route(j, h, &d)?;
        }
        Ok(())
    }

    /// Writes the held packets of other tracks that start before `split_at`
    /// (all of them when `None`) into the current part.
    pub(super) fn flush_split_hold(&mut self, split_at: Option<f64>) -> Result<()> {
        let Some(split) = self.split_mut() else {
            return Ok(());
        };
        let mut keep = VecDeque::new();
        let mut held = split.take_held();
        while let Some((j, h, d)) = held.pop_front() {
            if split_at.is_some_and(|at| start_seconds(&h) >= at) {
                keep.push_back((j, h, d));
            } else {
                self.write(j, &h, &d)?;
            }
        }
        if let Some(held) = self.split_mut().and_then(Split::held_mut) {
            *held = keep;
        }
        Ok(())
    }

    /// The stream time from which a part that reached `limit` may end: the
    /// duration limit itself, or at once for the size limit.
    fn split_due(&self, limit: Limit) -> f64 {
        match (limit, self.settings.max_duration, self.part()) {
            (Limit::Duration, Some(max), Some(part)) => {
                part.span.map_or(part.offset, |s| s.0) + max
            }
            _ => f64::NEG_INFINITY,
        }
    }

    /// The track whose keyframes may start a part: the first video track
    /// (else the first track) that has a stream in the current part.
    pub(super) fn split_track(&self) -> Option<usize> {
        let with_stream = |video: bool| {
            self.tracks.iter().position(|t| {
                t.stream.is_some()
                    && (!video
                        || t.first
                            .as_ref()
                            .is_some_and(|f| f.media == MediaKind::Video))
            })
        };
        with_stream(true).or_else(|| with_stream(false))
    }

    /// Whether this packet takes the current part past a limit.
    /// Sizes count payload bytes: the container's own overhead is small against them.
    fn limit_reached(&self, i: usize, header: &EncodedPacket) -> Option<Limit> {
        let part = self.part()?;
        if let Some(max) = self.settings.max_duration {
            let start = part.span.map_or(part.offset, |s| s.0);
            // A packet that starts at the limit: the split is due. Any track
            // may get there first (audio runs ahead of an encoder's
            // lookahead); its packets are then held until the keyframe that
            // starts the next part, so none lands on both sides.
            if self.tracks[i].stream.is_some() && start_seconds(header) - start >= max - 1e-6 {
                return Some(Limit::Duration);
            }
        }
        if let Some(max) = self.settings.max_bytes {
            if part.payload_bytes >= max {
                return Some(Limit::Size);
            }
        }
        None
    }
}
