//! Audio leaving sync. A frame sent whole goes zero-copy with a new header.
//! Anything else — a trimmed frame, silence filling a gap, the frames held
//! until T0 — is gathered into one batch and copied into one buffer, so it
//! reaches the encoder as one message rather than a burst that its bounded
//! queue would partly drop (losing audio shifts all later audio). What a
//! pause cuts is left out here, and the rest moved back (see [`Pause`]).

use anyhow::{Context, Result};
use node_api::{AudioFrame, Header, Node, Payload, TimeBase};

use crate::audio_buf::{self, At, Shape};
use crate::pause::{Pause, Span};
use crate::timeline::{AudioClock, AudioPlan};

/// The largest buffer a batch fills (the output pool is sized for it).
pub const MAX_BATCH_BYTES: usize = 256 << 10;

enum Piece {
    Silence(u64),
    /// Samples already copied into the batch's arena, from byte `offset`.
    Copied {
        offset: usize,
        samples: u64,
    },
    Samples {
        payload: Payload,
        frame_samples: u64,
        skip: u64,
        keep: u64,
    },
}

/// The samples of a planned frame: the received payload (sent on
/// zero-copy when whole) or a local buffer laid out like one (drift-corrected).
pub enum Source<'a> {
    Shared(&'a Payload),
    Copied(&'a [u8]),
}

pub struct Batch {
    /// The output the batch goes to.
    output: String,
    pieces: Vec<Piece>,
    /// Scratch: the runs of a range that a pause leaves in.
    spans: Vec<Span>,
    /// Format, rate and channels of the batch; pts, samples and capture time
    /// of its first sample.
    header: Option<AudioFrame>,
    samples: u64,
    /// Samples that exist only in this node (drift-corrected), kept until sent.
    arena: Vec<u8>,
}

impl Batch {
    pub fn new(output: &str) -> Batch {
        Batch {
            output: output.to_string(),
            pieces: Vec::with_capacity(64),
            spans: Vec::with_capacity(4),
            header: None,
            samples: 0,
            arena: Vec::with_capacity(MAX_BATCH_BYTES),
        }
    }

    fn shape(frame: &AudioFrame) -> Shape {
        Shape {
            format: frame.format,
            channels: frame.channels,
        }
    }

    /// Samples that still fit a batch of `frame`'s shape.
    fn room(&self, frame: &AudioFrame) -> u64 {
        let max = (MAX_BATCH_BYTES / Self::shape(frame).bytes(1).max(1)) as u64;
        max.saturating_sub(self.samples)
    }

    fn fits(&self, frame: &AudioFrame) -> bool {
        self.header.as_ref().is_none_or(|h| {
            h.format == frame.format
                && h.channels == frame.channels
                && h.sample_rate == frame.sample_rate
        })
    }

    /// Appends what `plan` sends of `frame` — the silence before it, then
    /// the samples it keeps — less what `pause` cuts, at the output pts the
    /// pause gives them. Returns the capture time of the first sample
    /// appended, if any.
    pub fn place(
        &mut self,
        node: &mut Node,
        frame: &AudioFrame,
        source: Source<'_>,
        plan: &AudioPlan,
        clock: &AudioClock,
        pause: &mut Pause,
    ) -> Result<Option<u64>> {
        let mut spans = std::mem::take(&mut self.spans);
        let silence_from = plan.pts - plan.silence as i64;
        pause.audio(
            frame.sample_rate,
            silence_from,
            plan.silence,
            false,
            &mut spans,
        );
        for s in &spans {
            // The output pts of a run → its place on the uncut timeline.
            let shift = silence_from + s.offset as i64 - s.pts;
            self.silence(node, frame, s.pts, s.len, |pts| {
                clock.capture_of(pts + shift)
            })?;
        }
        let first = kept_spans(pause, frame, plan, &mut spans);
        for (part, capture_ns) in spans.iter().map(|s| part_of(frame, plan, s)) {
            match source {
                Source::Shared(payload) => self.samples(node, frame, payload, &part, capture_ns)?,
                Source::Copied(data) => {
                    self.copied_samples(node, frame, data, &part, capture_ns)?
                }
            }
        }
        self.spans = spans;
        Ok(first)
    }

    /// Appends silence at `pts`; sends full batches on the way.
    pub fn silence(
        &mut self,
        node: &mut Node,
        like: &AudioFrame,
        mut pts: i64,
        mut count: u64,
        capture_of: impl Fn(i64) -> u64,
    ) -> Result<()> {
        while count > 0 {
            if !self.fits(like) || self.room(like) == 0 {
                self.send(node)?;
            }
            let n = count.min(self.room(like));
            self.start(like, pts, capture_of(pts));
            self.pieces.push(Piece::Silence(n));
            self.samples += n;
            pts += n as i64;
            count -= n;
        }
        Ok(())
    }

    /// Appends the samples of a received frame that `plan` keeps; its first
    /// kept sample was captured at `capture_ns`.
    pub fn samples(
        &mut self,
        node: &mut Node,
        frame: &AudioFrame,
        payload: &Payload,
        plan: &AudioPlan,
        capture_ns: u64,
    ) -> Result<()> {
        let (skip, keep) = (plan.skip, plan.keep);
        if !self.fits(frame) || self.room(frame) < keep as u64 {
            self.send(node)?;
        }
        self.start(frame, plan.pts, capture_ns);
        self.pieces.push(Piece::Samples {
            payload: payload.clone(),
            frame_samples: frame.samples as u64,
            skip: skip as u64,
            keep: keep as u64,
        });
        self.samples += keep as u64;
        Ok(())
    }

    /// Like [`Batch::samples`] for samples held in a local buffer (`data`,
    /// laid out as a payload of `frame.samples`): the kept ones are copied.
    pub fn copied_samples(
        &mut self,
        node: &mut Node,
        frame: &AudioFrame,
        data: &[u8],
        plan: &AudioPlan,
        capture_ns: u64,
    ) -> Result<()> {
        let keep = plan.keep as u64;
        if !self.fits(frame) || self.room(frame) < keep {
            self.send(node)?;
        }
        self.start(frame, plan.pts, capture_ns);
        let shape = Self::shape(frame);
        let offset = self.arena.len();
        self.arena.resize(offset + shape.bytes(keep), 0);
        let from = At {
            total: frame.samples as u64,
            at: plan.skip as u64,
        };
        let to = At { total: keep, at: 0 };
        audio_buf::copy_samples(shape, data, from, &mut self.arena[offset..], to, keep)?;
        self.pieces.push(Piece::Copied {
            offset,
            samples: keep,
        });
        self.samples += keep;
        Ok(())
    }

    fn start(&mut self, like: &AudioFrame, pts: i64, capture_ns: u64) {
        if self.header.is_none() {
            let time_base = TimeBase::new(1, like.sample_rate as i32);
            self.header = Some(AudioFrame {
                pts,
                capture_ns,
                time_base,
                ..like.clone()
            });
        }
    }

    /// Sends the batch: zero-copy when it is one whole received frame.
    pub fn send(&mut self, node: &mut Node) -> Result<()> {
        let Some(mut header) = self.header.take() else {
            return Ok(());
        };
        let total = std::mem::take(&mut self.samples);
        header.samples = total as u32;
        if let [Piece::Samples {
            payload,
            frame_samples,
            skip: 0,
            keep,
        }] = &self.pieces[..]
        {
            if keep == frame_samples {
                let r = node
                    .forward(&self.output, Header::Audio(header), payload)
                    .with_context(|| format!("sending {}", self.output));
                self.pieces.clear();
                return r;
            }
        }
        let shape = Self::shape(&header);
        let mut buf = node.alloc(&self.output, shape.bytes(total))?;
        let mut at = 0;
        for piece in self.pieces.drain(..) {
            match piece {
                Piece::Silence(n) => {
                    audio_buf::silence(shape, &mut buf, total, at, n)?;
                    at += n;
                }
                Piece::Samples {
                    payload,
                    frame_samples,
                    skip,
                    keep,
                } => {
                    let data = payload.as_slice();
                    let from = At {
                        total: frame_samples,
                        at: skip,
                    };
                    audio_buf::copy_samples(shape, &data, from, &mut buf, At { total, at }, keep)?;
                    at += keep;
                }
                Piece::Copied { offset, samples } => {
                    let from = At {
                        total: samples,
                        at: 0,
                    };
                    let src = &self.arena[offset..offset + shape.bytes(samples)];
                    audio_buf::copy_samples(shape, src, from, &mut buf, At { total, at }, samples)?;
                    at += samples;
                }
            }
        }
        self.arena.clear();
        node.send_audio(&self.output, header, buf)
            .with_context(|| format!("sending {}", self.output))
    }
}

/// The runs of the samples `plan` keeps that `pause` leaves in, in
/// `spans`; the capture time of the first one.
pub fn kept_spans(
    pause: &mut Pause,
    frame: &AudioFrame,
    plan: &AudioPlan,
    spans: &mut Vec<Span>,
) -> Option<u64> {
    pause.audio(frame.sample_rate, plan.pts, plan.keep as u64, true, spans);
    spans.first().map(|s| part_of(frame, plan, s).1)
}

/// One run of a frame's kept samples as a plan of its own, and the capture
/// time of its first sample.
fn part_of(frame: &AudioFrame, plan: &AudioPlan, run: &Span) -> (AudioPlan, u64) {
    let skip = plan.skip + run.offset as u32;
    let part = AudioPlan {
        skip,
        keep: run.len as u32,
        pts: run.pts,
        ..AudioPlan::default()
    };
    let capture_ns =
        frame.capture_ns + skip as u64 * 1_000_000_000 / frame.sample_rate.max(1) as u64;
    (part, capture_ns)
}
