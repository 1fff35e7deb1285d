//! Recording sessions inside a running graph: the mux's live params
//! `recording` (start, stop), `split` and `chapter`, each made at an
//! instant on the capture clock. The instant, not the moment the update
//! reaches the mux, decides where a cut goes: the video encoder is asked
//! for a keyframe at the same instant, so a file starts on the frame
//! captured then, and the media still on its way here (sync's buffer, the
//! encoder's lookahead) lands on the right side of the cut.
//!
//! - start (standby → a file): packets captured before the instant are let
//!   go; the first keyframe at or after it opens the next numbered file
//!   (the split track's; packets of other tracks before that keyframe's
//!   time are let go too, so every track starts together).
//! - stop: the file ends before the first packet captured at the instant
//!   (the other tracks end at the same stream time), and the mux waits in
//!   standby.
//! - split: the part ends at the first keyframe captured at the instant.
//! - chapter: begins at the first frame of the split track captured at the
//!   instant, in whichever file that frame lands.

use std::collections::VecDeque;

use anyhow::{anyhow, Result};
use ffmpeg_next::format::context::Output;
use node_api::{EncodedPacket, MediaKind};

use super::split::{Held, Limit, Recording, Split};
use super::track::{start_seconds, starts_gop};
use super::Muxer;

/// A chapter of a part: where it begins, in seconds from the part's start.
#[derive(Debug, Clone, PartialEq)]
pub struct Chapter {
    pub start: f64,
    pub title: String,
}

/// What a command found the recording doing: it was carried out, or there
/// was nothing to do (said in the log, never an error: the control API
/// refuses such commands before they are sent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Done,
    Ignored,
}

impl Muxer {
    /// `recording: true` at `at_ns`: from standby, the next file opens on
    /// the first keyframe captured at or after it.
    pub fn start_session(&mut self, at_ns: u64) -> Outcome {
        if !matches!(self.state, Recording::Standby) {
            tracing::info!("start: already recording");
            return Outcome::Ignored;
        }
        self.state = Recording::Idle;
        self.start_at = Some(at_ns);
        let starter = self.start_track();
        for (i, t) in self.tracks.iter_mut().enumerate() {
            // The streams are joined mid-way: no encoder priming ahead.
            t.priming = false;
            t.need_keyframe = Some(i) == starter;
        }
        tracing::info!("start: the next file begins at the first keyframe from here");
        Outcome::Done
    }

    /// `recording: false` at `at_ns`: the file ends there and is
    /// finalized; a start not yet begun is called off.
    pub fn stop_session(&mut self, at_ns: u64) -> Outcome {
        // Held ahead only while no split is pending: the stop holds them now.
        let ahead = self.ahead_into_split();
        match &mut self.state {
            Recording::Writing { split, .. } => {
                match split {
                    // The cut point is fixed: the file ends there instead.
                    Split::At { limit, .. } => *limit = Limit::Stop { at_ns },
                    _ => {
                        let mut held = ahead;
                        held.extend(std::mem::replace(split, Split::None).into_held());
                        *split = Split::Due {
                            limit: Limit::Stop { at_ns },
                            held,
                        };
                    }
                }
                Outcome::Done
            }
            Recording::Idle => {
                // Recording but no file open yet (a start waiting for its
                // keyframe, a restarted mux joining the streams): back to
                // standby, nothing written.
                for t in &mut self.tracks {
                    self.skipped += t.held.len() as u64;
                    t.held.clear();
                    t.held_bytes = 0;
                    t.need_keyframe = false;
                }
                self.start_at = None;
                self.state = Recording::Standby;
                Outcome::Done
            }
            _ => {
                tracing::info!("stop: not recording");
                Outcome::Ignored
            }
        }
    }

    /// A stop's cut point `at` (stream time) was reached by every track:
    /// the file is finalized; the `held` packets after it are let go.
    pub(super) fn end_session(&mut self, at: f64, held: u64) -> Result<()> {
        tracing::info!("stop: the file ends at {at:.3} s of stream time");
        self.close_part()?;
        self.state = Recording::Standby;
        self.skipped += held;
        Ok(())
    }

    /// `split: true` at `at_ns`: the part ends at the first keyframe
    /// captured at or after it.
    pub fn split_now(&mut self, at_ns: u64) -> Outcome {
        match self.split() {
            Some(Split::None) => {
                let held = self.ahead_into_split();
                *self.split_mut().expect("writing") = Split::Due {
                    limit: Limit::Split { at_ns },
                    held,
                };
                Outcome::Done
            }
            Some(_) => {
                tracing::info!("split: a cut is already on its way");
                Outcome::Ignored
            }
            None => {
                tracing::info!("split: no file is being written");
                Outcome::Ignored
            }
        }
    }

    /// `chapter: TITLE` at `at_ns`: placed when the split track's frame
    /// captured then is written.
    pub fn add_chapter(&mut self, at_ns: u64, title: String) -> Outcome {
        if matches!(self.state, Recording::Standby | Recording::Stopped) {
            tracing::info!("chapter `{title}`: not recording");
            return Outcome::Ignored;
        }
        self.pending_chapters.push_back((at_ns, title));
        Outcome::Done
    }

    /// Whether packet `header` of track `i` is let go because no session
    /// is recording it: in standby, or before a start's instant and its
    /// keyframe.
    pub(super) fn outside_session(&mut self, i: usize, header: &EncodedPacket) -> bool {
        let outside = match (&self.state, self.start_at) {
            (Recording::Standby, _) => true,
            (Recording::Idle, Some(at_ns)) => {
                header.capture_ns < at_ns || (self.tracks[i].need_keyframe && !starts_gop(header))
            }
            _ => false,
        };
        if outside {
            self.skipped += 1;
        }
        outside
    }

    /// The track whose keyframe starts a session's file: the first video
    /// track that has begun, else the first that has.
    fn start_track(&self) -> Option<usize> {
        let begun = |video: bool| {
            self.tracks.iter().position(|t| {
                t.first
                    .as_ref()
                    .is_some_and(|f| !video || f.media == MediaKind::Video)
            })
        };
        begun(true).or_else(|| begun(false))
    }

    /// A session's first file starts at the starting track's keyframe:
    /// packets of the other tracks held from before it are let go. Returns
    /// the stream time the file starts at.
    pub(super) fn session_offset(&mut self) -> Option<f64> {
        self.start_at.take()?;
        let starter = self.start_track()?;
        let at = self.tracks[starter]
            .held
            .front()
            .map(|(p, _)| start_seconds(p))?;
        for t in &mut self.tracks {
            while t
                .held
                .front()
                .is_some_and(|(p, _)| start_seconds(p) < at - 1e-6)
            {
                let (_, data) = t.held.pop_front().expect("not empty");
                t.held_bytes -= data.len();
                self.skipped += 1;
            }
        }
        Some(at)
    }

    /// Places the chapters asked for up to the capture time of this packet
    /// of the split track, at its start in the part.
    pub(super) fn place_chapters(&mut self, header: &EncodedPacket) {
        let Recording::Writing { part, .. } = &mut self.state else {
            return;
        };
        while let Some((at_ns, _)) = self.pending_chapters.front() {
            if header.capture_ns < *at_ns {
                break;
            }
            let (_, title) = self.pending_chapters.pop_front().expect("not empty");
            let start = (start_seconds(header) - part.offset).max(0.0);
            tracing::info!(
                "chapter `{title}` at {start:.3} s of {}",
                part.path.display()
            );
            part.chapters.push(Chapter { start, title });
        }
    }
}

impl Split {
    /// The packets held back, for a cut that takes over from this one.
    fn into_held(self) -> VecDeque<Held> {
        match self {
            Split::None => VecDeque::new(),
            Split::Due { held, .. } | Split::At { held, .. } => held,
        }
    }
}

/// Chapter times in the file: milliseconds.
const CHAPTER_TIME_BASE: (i32, i32) = (1, 1000);

/// The chapter a file's chapters begin with when the first asked for
/// starts later: an MP4's chapter track plays its chapters back to back
/// from 0 (a lone chapter at 3 s would read back as 0 to 3 s).
const FIRST_CHAPTER: &str = "Start";

/// Adds `chapters` to a file about to get its trailer, each ending where
/// the next begins and the last at `end` (seconds from the file's start),
/// after a [`FIRST_CHAPTER`] from 0 when the first begins later.
pub fn add_chapters(out: &mut Output, chapters: &[Chapter], end: f64) -> Result<()> {
    let ms = |s: f64| (s * 1000.0).round() as i64;
    let lead = chapters
        .first()
        .filter(|c| ms(c.start) > 0)
        .map(|_| Chapter {
            start: 0.0,
            title: FIRST_CHAPTER.into(),
        });
    let chapters: Vec<Chapter> = lead.into_iter().chain(chapters.iter().cloned()).collect();
    for (n, c) in chapters.iter().enumerate() {
        let until = chapters.get(n + 1).map_or(end, |next| next.start);
        let (start, until) = (ms(c.start), ms(until).max(ms(c.start)));
        out.add_chapter(n as i64 + 1, CHAPTER_TIME_BASE, start, until, &c.title)
            .map_err(|e| anyhow!("adding chapter `{}`: {e}", c.title))?;
    }
    Ok(())
}
