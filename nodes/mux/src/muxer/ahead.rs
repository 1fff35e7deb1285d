//! Packets that run ahead of the split track, held while a cut whose
//! instant is not known in advance may come (a size limit). Such a cut is
//! fixed only at the split track's next keyframe; in a replay the audio
//! reaches the mux an encoder's lookahead (~1.4 s) before the video of the
//! same instant, so without this hold the audio past the cut would already
//! be in the old part when the keyframe shows where the cut is. Holding
//! the other tracks until the split track has written up to their start
//! interleaves the parts by time: when the limit comes, everything past the
//! last split-track packet is still here and goes to its side of the cut
//! (`split.rs`). A live recording, whose audio comes ~in time, is barely held.

use std::collections::{HashSet, VecDeque};

use anyhow::Result;
use node_api::EncodedPacket;

use super::split::{Held, SPLIT_HOLD_SECONDS};
use super::track::start_seconds;
use super::Muxer;

impl Muxer {
    /// Whether a cut may come that is fixed only when it is due: then
    /// other tracks must not run ahead of the split track into the part.
    fn interleaves(&self) -> bool {
        self.settings.max_bytes.is_some()
    }

    /// Whether packet `header` of track `i` waits for the split track (see
    /// the module's doc): it starts past what the split track has written,
    /// or its track already has a packet waiting (a track's packets go out
    /// in order).
    pub(super) fn runs_ahead(&self, i: usize, header: &EncodedPacket) -> bool {
        let Some(splitter) = self.split_track() else {
            return false;
        };
        if !self.interleaves() || i == splitter || self.tracks[splitter].closed {
            return false;
        }
        self.ahead.iter().any(|(j, _, _)| *j == i)
            || self
                .split_end
                .is_none_or(|end| start_seconds(header) >= end - 1e-6)
    }

    /// Holds a packet that runs ahead; beyond [`SPLIT_HOLD_SECONDS`] of
    /// them the oldest is written anyway (the split track went quiet).
    pub(super) fn hold_ahead(
        &mut self,
        i: usize,
        header: EncodedPacket,
        data: &[u8],
    ) -> Result<()> {
        let start = start_seconds(&header);
        self.ahead.push_back((i, header, data.to_vec()));
        while self
            .ahead
            .front()
            .is_some_and(|(_, h, _)| start - start_seconds(h) > SPLIT_HOLD_SECONDS)
        {
            let (j, h, d) = self.ahead.pop_front().expect("not empty");
            self.write(j, &h, &d)?;
        }
        Ok(())
    }

    /// Writes the held packets that start before `before` (stream time),
    /// each track's in order: those the split track has caught up with,
    /// those before a cut at `before` (a track's codec parameters changed),
    /// or all of them (`f64::INFINITY`: the split track ended, the part
    /// closes).
    pub(super) fn release_ahead(&mut self, before: f64) -> Result<()> {
        let mut blocked = HashSet::new();
        let mut keep = VecDeque::new();
        for (j, h, d) in std::mem::take(&mut self.ahead) {
            if blocked.contains(&j) || start_seconds(&h) >= before - 1e-6 {
                blocked.insert(j);
                keep.push_back((j, h, d));
            } else {
                self.write(j, &h, &d)?;
            }
        }
        self.ahead = keep;
        Ok(())
    }

    /// A cut is now due: what runs ahead is held by the split instead, to
    /// go to whichever side of the cut it starts on.
    pub(super) fn ahead_into_split(&mut self) -> VecDeque<Held> {
        std::mem::take(&mut self.ahead)
    }
}
