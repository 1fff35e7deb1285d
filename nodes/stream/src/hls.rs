//! `mediagraph-nodes hls`: writes the encoded tracks as an HLS playlist and
//! segments (FFmpeg's HLS muxer), through an [`Outlet`](crate::outlet::Outlet).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use node_api::{EncodedPacket, NoRestart};
use node_catalog::kinds::hls::{SegmentType, Settings};

use crate::outlet::{Opener, Policy, QUEUE_BYTES};
use crate::output;
use crate::sink::{Sink, Target, Watchdog};

/// Entry point, with the arguments after the kind (none are taken).
pub fn main(_args: &[String]) {
    node_api::run_main(run);
}

/// A disk write that takes longer than this is a failed output.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

fn run() -> Result<()> {
    node_media::init()?;
    let node = node_api::Node::init()?;
    let s = Settings::from_params(node.params())?;
    let dir = PathBuf::from(&s.dir);
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create the HLS directory {}", dir.display()))
        .map_err(|e| NoRestart(format!("{e:#}")))?;
    let playlist = Playlist::new(&s, &dir);
    tracing::info!("HLS into {}", playlist.shown);
    let policy = Policy {
        queue_s: s.queue_duration,
        queue_bytes: QUEUE_BYTES,
        connect_timeout: WRITE_TIMEOUT,
        write_timeout: WRITE_TIMEOUT,
        retry_min: Duration::from_secs(1),
        retry_max: Duration::from_secs(10),
    };
    let stats = output::serve(node, s.segment_type.format(), playlist, policy)?;
    if stats.connections == 0 {
        let why = stats
            .last_error
            .unwrap_or_else(|| "no packet to write".into());
        return Err(NoRestart(format!("no HLS segment was written: {why}")).into());
    }
    Ok(())
}

/// The playlist and how its segments are cut.
struct Playlist {
    target: Target,
    shown: String,
    /// Opened before: a reopening appends to the playlist.
    opened: bool,
}

impl Playlist {
    fn new(s: &Settings, dir: &Path) -> Playlist {
        let path = dir.join(&s.playlist);
        let shown = path.display().to_string();
        let (kind, ext) = match s.segment_type {
            SegmentType::Ts => ("mpegts", "ts"),
            SegmentType::Fmp4 => ("fmp4", "m4s"),
        };
        let segments = dir.join(format!("segment-%05d.{ext}"));
        let mut options = vec![
            ("hls_time", format!("{}", s.segment_duration)),
            ("hls_list_size", s.list_size.to_string()),
            ("hls_segment_type", kind.to_string()),
            ("hls_segment_filename", segments.display().to_string()),
        ];
        let mut flags = vec!["independent_segments"];
        if s.list_size > 0 {
            flags.push("delete_segments");
        } else {
            // Every segment listed: the playlist is complete for replay at the end.
            options.push(("hls_playlist_type", "event".into()));
        }
        options.push(("hls_flags", flags.join("+")));
        if s.segment_type == SegmentType::Fmp4 {
            options.push(("hls_fmp4_init_filename", "init.mp4".into()));
        }
        let target = Target {
            url: path.display().to_string(),
            shown: shown.clone(),
            format: "hls",
            protocol_options: Vec::new(),
            muxer_options: options,
        };
        Playlist {
            target,
            shown,
            opened: false,
        }
    }
}

impl Opener for Playlist {
    fn open(
        &mut self,
        params: &[&EncodedPacket],
        offset_s: f64,
        watchdog: Arc<Watchdog>,
    ) -> Result<Sink> {
        let mut target = self.target.clone();
        if self.opened {
            // After a write failure: continue the playlist, marked as a discontinuity.
            for (k, v) in &mut target.muxer_options {
                if *k == "hls_flags" {
                    v.push_str("+append_list+discont_start");
                }
            }
        }
        let sink = Sink::open(&target, params, offset_s, watchdog)?;
        self.opened = true;
        Ok(sink)
    }

    fn shown(&self) -> &str {
        &self.shown
    }
}
