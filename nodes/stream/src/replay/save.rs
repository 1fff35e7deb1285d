//! Writing a save: a snapshot of the buffer into a new file, on a thread
//! of its own so the node keeps taking packets meanwhile.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result};
use node_api::{EncodedPacket, MediaKind};
use node_catalog::kinds::replay_buffer::Container;
use node_catalog::Format;
use node_media::packet as pk;

use super::buffer::Snapshot;
use crate::sink::{Sink, Target, Watchdog};
use crate::tracks::Packet;

/// A local file that takes longer than this to write is given up on (a
/// hung network mount): the node goes on buffering.
const WRITE_LIMIT: Duration = Duration::from_secs(120);

/// One save to write.
pub struct Job {
    pub path: PathBuf,
    pub container: Container,
    /// Each track's first packet (its stream's parameters).
    pub params: Vec<EncodedPacket>,
    pub snapshot: Snapshot,
}

/// A save written.
#[derive(Debug)]
pub struct Saved {
    pub path: PathBuf,
    /// Media seconds in the file.
    pub seconds: f64,
    /// Bytes of the file.
    pub bytes: u64,
}

/// Starts writing `job` on its own thread.
pub fn spawn(job: Job) -> Result<JoinHandle<Result<Saved>>> {
    std::thread::Builder::new()
        .name("replay-save".into())
        .spawn(move || write(job))
        .context("cannot start the thread that writes the save")
}

/// Writes the file; on a failure removes what was begun.
fn write(job: Job) -> Result<Saved> {
    // Reserving the name first: a file that appeared since the number was
    // chosen is never replaced.
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&job.path)
        .with_context(|| format!("cannot create {}", job.path.display()))?;
    let written = write_file(&job);
    if written.is_err() {
        let _ = std::fs::remove_file(&job.path);
    }
    let seconds = written?;
    let bytes = std::fs::metadata(&job.path).map(|m| m.len()).unwrap_or(0);
    Ok(Saved {
        path: job.path,
        seconds,
        bytes,
    })
}

/// The packets in decode order across tracks into the file; the media
/// seconds written.
fn write_file(job: &Job) -> Result<f64> {
    let target = target(&job.path, job.container);
    let watchdog = Arc::new(Watchdog::default());
    watchdog.arm(WRITE_LIMIT);
    let params: Vec<&EncodedPacket> = job.params.iter().collect();
    let start = job.snapshot.start_s;
    let mut sink = Sink::open(&target, &params, start, watchdog)?;
    let mut end = start;
    let mut waiting_key = other_video_tracks(job);
    for p in merged(&job.snapshot.tracks) {
        if waiting_key[p.track] && !p.header.keyframe {
            continue;
        }
        waiting_key[p.track] = false;
        if sink.write(p.track, &p.header, &p.data)? {
            end = end.max(pk::end_seconds(&p.header));
        }
    }
    sink.finish()?;
    Ok(end - start)
}

fn target(path: &Path, container: Container) -> Target {
    let shown = path.display().to_string();
    let format = container.format().unwrap_or(Format::Mp4);
    let muxer_options = match format {
        // A normal MP4 with its index first: plays while it downloads.
        Format::Mp4 => vec![("movflags", "+faststart".to_string())],
        _ => Vec::new(),
    };
    Target {
        url: shown.clone(),
        shown,
        format: format.ffmpeg_name(),
        protocol_options: Vec::new(),
        muxer_options,
    }
}

/// Per track: a video track other than the one the buffer starts on, whose
/// packets before its own first keyframe cannot be decoded.
fn other_video_tracks(job: &Job) -> Vec<bool> {
    job.params
        .iter()
        .enumerate()
        .map(|(i, p)| p.media == MediaKind::Video && Some(i) != job.snapshot.anchor)
        .collect()
}

/// Every track's packets, merged by decode time (each track already is in
/// decode order), so the muxer interleaves without holding a whole track.
fn merged(tracks: &[Vec<Packet>]) -> impl Iterator<Item = &Packet> {
    let mut next = vec![0usize; tracks.len()];
    std::iter::from_fn(move || {
        let (track, _) = tracks
            .iter()
            .enumerate()
            .filter_map(|(i, t)| Some((i, pk::decode_seconds(&t.get(next[i])?.header))))
            .min_by(|a, b| a.1.total_cmp(&b.1))?;
        next[track] += 1;
        Some(&tracks[track][next[track] - 1])
    })
}
