//! The tracks of an output: one per input, in the graph's order, each known
//! by its first packet (codec parameters) once it has begun.

use anyhow::{anyhow, Result};
use node_api::{EncodedPacket, MediaKind};
use node_media::packet::same_stream;

/// A packet of one track, owned (copied out of its message at once, so the
/// sender's buffer is never held by a slow output).
#[derive(Clone)]
pub struct Packet {
    pub track: usize,
    pub header: EncodedPacket,
    pub data: std::sync::Arc<[u8]>,
}

impl Packet {
    /// Whether an output can begin with this packet: a video keyframe, or
    /// any packet of an output without video.
    pub fn starts_output(&self, has_video: bool) -> bool {
        match self.header.media {
            MediaKind::Video => self.header.keyframe,
            MediaKind::Audio => !has_video,
        }
    }

    /// Media seconds this packet holds.
    pub fn seconds(&self) -> f64 {
        self.header.time_base.seconds(self.header.duration)
    }
}

pub struct Tracks {
    pub inputs: Vec<String>,
    /// Each track's first packet (its stream's parameters).
    pub firsts: Vec<Option<EncodedPacket>>,
}

impl Tracks {
    pub fn new(inputs: Vec<String>) -> Tracks {
        let firsts = vec![None; inputs.len()];
        Tracks { inputs, firsts }
    }

    pub fn index(&self, input: &str) -> Result<usize> {
        self.inputs
            .iter()
            .position(|i| i == input)
            .ok_or_else(|| anyhow!("packet on unknown input `{input}`"))
    }

    /// Notes a packet of track `i`; true when it changes the track's codec
    /// parameters (its encoder restarted).
    pub fn note(&mut self, i: usize, header: &EncodedPacket) -> bool {
        let changed = match &self.firsts[i] {
            None => false,
            Some(first) => !same_stream(first, header),
        };
        if changed || self.firsts[i].is_none() {
            self.firsts[i] = Some(header.clone());
        }
        changed
    }

    /// Every track has begun: an output can be opened.
    pub fn ready(&self) -> bool {
        self.firsts.iter().all(Option::is_some)
    }

    /// The first packet of every track (once [`Tracks::ready`]).
    pub fn params(&self) -> Vec<&EncodedPacket> {
        self.firsts.iter().flatten().collect()
    }

    pub fn has_video(&self) -> bool {
        self.firsts
            .iter()
            .flatten()
            .any(|p| p.media == MediaKind::Video)
    }

    /// The number of video and audio tracks.
    pub fn counts(&self) -> (usize, usize) {
        let video = self
            .firsts
            .iter()
            .flatten()
            .filter(|p| p.media == MediaKind::Video)
            .count();
        (video, self.firsts.iter().flatten().count() - video)
    }
}
