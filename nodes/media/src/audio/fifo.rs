//! A sample FIFO: blocks of any size in, fixed-size frames out (the encoders'
//! frame sizes, the sources' 1024-sample frames). Its buffer is allocated once
//! and only grows if a burst exceeds it, so steady streaming never allocates.

use std::ptr;

use anyhow::{bail, Result};
use ffmpeg_next::ffi;
use ffmpeg_next::format::Sample;
use ffmpeg_next::frame;

use super::resample::{AudioSpec, Planes, PlanesMut, MAX_PLANES};

pub struct SampleFifo {
    format: Sample,
    planes: usize,
    /// Bytes of one sample of one plane.
    sample_bytes: usize,
    /// Planes one after another, each `capacity` samples long.
    data: Vec<u8>,
    capacity: usize,
    read: usize,
    write: usize,
}

impl SampleFifo {
    /// A FIFO of `spec`'s format and channels with room for `capacity` samples.
    pub fn new(spec: &AudioSpec, capacity: usize) -> SampleFifo {
        let capacity = capacity.max(1);
        let (planes, sample_bytes) = (spec.planes(), spec.plane_sample_bytes());
        SampleFifo {
            format: spec.format,
            planes,
            sample_bytes,
            data: vec![0; planes * capacity * sample_bytes],
            capacity,
            read: 0,
            write: 0,
        }
    }

    /// Samples queued.
    pub fn len(&self) -> usize {
        self.write - self.read
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn clear(&mut self) {
        self.read = 0;
        self.write = 0;
    }

    fn plane_offset(&self, plane: usize, sample: usize) -> usize {
        (plane * self.capacity + sample) * self.sample_bytes
    }

    /// Makes room for `n` more samples at the tail: moves the queued samples to
    /// the front, and grows the buffer only when that is not enough.
    fn reserve(&mut self, n: usize) {
        if self.write + n <= self.capacity {
            return;
        }
        let len = self.len();
        if len + n <= self.capacity {
            for p in 0..self.planes {
                let from = self.plane_offset(p, self.read);
                let to = self.plane_offset(p, 0);
                self.data
                    .copy_within(from..from + len * self.sample_bytes, to);
            }
        } else {
            let capacity = (self.capacity * 2).max(len + n);
            let mut data = vec![0; self.planes * capacity * self.sample_bytes];
            for p in 0..self.planes {
                let from = self.plane_offset(p, self.read);
                let to = p * capacity * self.sample_bytes;
                data[to..to + len * self.sample_bytes]
                    .copy_from_slice(&self.data[from..from + len * self.sample_bytes]);
            }
            self.data = data;
            self.capacity = capacity;
        }
        self.read = 0;
        self.write = len;
    }

    /// The free tail, with room for at least `n` samples, to write into (e.g. as
    /// a resampler's output); then [`SampleFifo::commit`] what was written.
    pub fn tail(&mut self, n: usize) -> PlanesMut<'_> {
        self.reserve(n);
        let mut ptrs = [ptr::null_mut(); MAX_PLANES];
        let base = self.data.as_mut_ptr();
        for (p, ptr) in ptrs.iter_mut().take(self.planes).enumerate() {
            // SAFETY: within `data`: plane p from `write` to the end of the plane.
            *ptr = unsafe { base.add((p * self.capacity + self.write) * self.sample_bytes) };
        }
        // SAFETY: each pointer has `capacity - write` samples of room, borrowed from self.
        unsafe { PlanesMut::from_raw(ptrs, self.capacity - self.write) }
    }

    /// Counts `n` samples written into the last [`SampleFifo::tail`].
    pub fn commit(&mut self, n: usize) {
        assert!(self.write + n <= self.capacity, "commit beyond the tail");
        self.write += n;
    }

    /// Appends `src` (in this FIFO's spec).
    pub fn push(&mut self, src: &Planes<'_>) {
        let n = src.samples();
        self.reserve(n);
        let bytes = n * self.sample_bytes;
        for p in 0..self.planes {
            let to = self.plane_offset(p, self.write);
            // SAFETY: a Planes view covers `samples` samples of each of its planes.
            let from = unsafe { std::slice::from_raw_parts(src.ptrs()[p], bytes) };
            self.data[to..to + bytes].copy_from_slice(from);
        }
        self.write += n;
    }

    /// Appends `n` samples of silence.
    pub fn push_silence(&mut self, n: usize) {
        self.reserve(n);
        // Unsigned 8-bit silence is the mid value; every other format is zero.
        let fill = if matches!(self.format, Sample::U8(_)) {
            0x80
        } else {
            0
        };
        for p in 0..self.planes {
            let to = self.plane_offset(p, self.write);
            self.data[to..to + n * self.sample_bytes].fill(fill);
        }
        self.write += n;
    }

    /// The queued samples of one plane.
    pub fn plane(&self, plane: usize) -> &[u8] {
        let from = self.plane_offset(plane, self.read);
        &self.data[from..from + self.len() * self.sample_bytes]
    }

    /// Drops `n` samples from the front.
    pub fn discard(&mut self, n: usize) {
        assert!(n <= self.len(), "discarding more than queued");
        self.read += n;
        if self.read == self.write {
            self.clear();
        }
    }

    /// Moves `n` samples from the front into `out`, laid out as a payload (planes back to back).
    pub fn pop_to_payload(&mut self, out: &mut [u8], n: usize) -> Result<()> {
        if n > self.len() || out.len() < self.planes * n * self.sample_bytes {
            bail!(
                "cannot take {n} samples ({} queued) into {} bytes",
                self.len(),
                out.len()
            );
        }
        let bytes = n * self.sample_bytes;
        for p in 0..self.planes {
            let from = self.plane_offset(p, self.read);
            out[p * bytes..(p + 1) * bytes].copy_from_slice(&self.data[from..from + bytes]);
        }
        self.discard(n);
        Ok(())
    }

    /// Moves `n` samples from the front into a writable frame of this format
    /// (whose buffers hold at least `n` samples) and sets its sample count.
    pub fn pop_to_frame(&mut self, f: &mut frame::Audio, n: usize) -> Result<()> {
        let spec = AudioSpec::of_frame(f);
        if spec.format != self.format
            || spec.planes() != self.planes
            || spec.plane_sample_bytes() != self.sample_bytes
        {
            bail!(
                "frame format {} does not match the FIFO's {}",
                spec.format.name(),
                self.format.name()
            );
        }
        if n > self.len() {
            bail!("cannot take {n} samples, {} queued", self.len());
        }
        let bytes = n * self.sample_bytes;
        // SAFETY: a writable frame; linesize[0] bounds every plane's buffer.
        unsafe {
            let fp = f.as_mut_ptr();
            if ((*fp).linesize[0] as usize) < bytes {
                bail!(
                    "frame buffers hold {} bytes per plane, {bytes} needed",
                    (*fp).linesize[0]
                );
            }
            for p in 0..self.planes {
                let from = self.plane_offset(p, self.read);
                ptr::copy_nonoverlapping(
                    self.data.as_ptr().add(from),
                    *(*fp).extended_data.add(p),
                    bytes,
                );
            }
            (*fp).nb_samples = n as i32;
        }
        self.discard(n);
        Ok(())
    }
}

/// Makes a frame's buffers writable (copying them if an encoder still holds a
/// reference), so a reused input frame never changes data the encoder keeps.
pub fn make_writable(f: &mut frame::Audio) -> Result<()> {
    // SAFETY: a valid frame.
    let e = unsafe { ffi::av_frame_make_writable(f.as_mut_ptr()) };
    if e < 0 {
        bail!(
            "cannot make an audio frame writable: {}",
            ffmpeg_next::Error::from(e)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::format::av_sample_format;
    use crate::audio::layout::alloc_frame;
    use node_api::SampleFormat;

    fn s16p() -> AudioSpec {
        AudioSpec::new(av_sample_format(SampleFormat::S16p), 48_000, 2, 0)
    }

    /// A payload of `n` s16p samples whose values count up from `start` (right plane negated).
    fn counting(start: i16, n: usize) -> Vec<u8> {
        let left = (0..n).flat_map(|i| (start + i as i16).to_ne_bytes());
        let right = (0..n).flat_map(|i| (-(start + i as i16)).to_ne_bytes());
        left.chain(right).collect()
    }

    #[test]
    fn framing_keeps_order_across_odd_blocks() {
        let spec = s16p();
        let mut fifo = SampleFifo::new(&spec, 1500);
        let mut next = 0i16;
        let mut expected = 0i16;
        let mut frame = vec![0u8; spec.payload_bytes(1024)];
        let mut frames = 0;
        // Blocks of 441 samples in, frames of 1024 out (more than the FIFO's
        // initial room in total, so it compacts and grows).
        for _ in 0..40 {
            let block = counting(next, 441);
            fifo.push(&Planes::payload(&block, &spec, 441).unwrap());
            next += 441;
            while fifo.len() >= 1024 {
                fifo.pop_to_payload(&mut frame, 1024).unwrap();
                for i in 0..1024 {
                    let l = i16::from_ne_bytes([frame[2 * i], frame[2 * i + 1]]);
                    let r = i16::from_ne_bytes([frame[2048 + 2 * i], frame[2048 + 2 * i + 1]]);
                    assert_eq!((l, r), (expected, -expected));
                    expected += 1;
                }
                frames += 1;
            }
        }
        assert_eq!(frames, 40 * 441 / 1024);
        assert_eq!(fifo.len(), 40 * 441 - frames * 1024);
    }

    #[test]
    fn tail_and_commit() {
        let spec = AudioSpec::new(av_sample_format(SampleFormat::F32), 48_000, 2, 0);
        let mut fifo = SampleFifo::new(&spec, 16);
        let mut tail = fifo.tail(100);
        assert!(tail.capacity() >= 100);
        let src: Vec<u8> = (0..200u32).flat_map(|v| (v as f32).to_ne_bytes()).collect();
        let planes = Planes::payload(&src, &spec, 100).unwrap();
        // Write through a resampler that only copies.
        let mut r = crate::audio::Resampler::new(spec, spec).unwrap();
        let n = r.convert(&planes, &mut tail).unwrap();
        fifo.commit(n);
        assert_eq!(fifo.len(), 100);
        assert_eq!(fifo.plane(0), &src[..]);
    }

    #[test]
    fn frames_and_silence() {
        let spec = AudioSpec::new(av_sample_format(SampleFormat::F32p), 48_000, 2, 0);
        let mut fifo = SampleFifo::new(&spec, 2048);
        let src: Vec<u8> = (0..2 * 1000u32)
            .flat_map(|v| (v as f32 + 1.0).to_ne_bytes())
            .collect();
        fifo.push(&Planes::payload(&src, &spec, 1000).unwrap());
        fifo.push_silence(24);
        let mut f = alloc_frame(spec.format, 1024, 0, 2).unwrap();
        make_writable(&mut f).unwrap();
        fifo.pop_to_frame(&mut f, 1024).unwrap();
        assert!(fifo.is_empty());
        let right: &[f32] = f.plane(1);
        assert_eq!(right[0], 1001.0);
        assert_eq!(right[999], 2000.0);
        assert_eq!(right[1000], 0.0);
        assert_eq!(right[1023], 0.0);
    }
}
