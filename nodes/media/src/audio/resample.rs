//! A swresample context kept for the life of a stream, converting straight
//! between payload buffers (no FFmpeg frames in between), and the plane views
//! it reads and writes.

use std::marker::PhantomData;
use std::ptr;

use anyhow::{anyhow, bail, Result};
use ffmpeg_next::ffi;
use ffmpeg_next::format::Sample;
use ffmpeg_next::frame;
use node_api::AudioFrame;

use super::format::av_sample_format;
use super::layout::{frame_layout, layout_for, Layout};

/// FFmpeg's limit on channels (SWR_CH_MAX): the most planes a block may have.
pub const MAX_PLANES: usize = 64;

/// Format, rate and channels of a stream of samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioSpec {
    pub format: Sample,
    pub rate: u32,
    pub channels: u16,
    /// Layout mask; always a real layout for `channels` (or 0 if FFmpeg has none).
    pub layout: u64,
}

impl AudioSpec {
    pub fn new(format: Sample, rate: u32, channels: u16, layout: u64) -> AudioSpec {
        AudioSpec {
            format,
            rate,
            channels,
            layout: layout_for(layout, channels),
        }
    }

    /// The spec of a raw audio message.
    pub fn of_header(h: &AudioFrame) -> AudioSpec {
        AudioSpec::new(
            av_sample_format(h.format),
            h.sample_rate,
            h.channels,
            h.channel_layout,
        )
    }

    /// The spec of a received raw audio message, checked against its
    /// payload: a header with no rate or channels, or a payload shorter
    /// than its samples, is an error naming both.
    pub fn of_message(h: &AudioFrame, payload: &[u8]) -> Result<AudioSpec> {
        if h.sample_rate == 0 || h.channels == 0 {
            bail!(
                "an audio frame with {} Hz and {} channels",
                h.sample_rate,
                h.channels
            );
        }
        let spec = AudioSpec::of_header(h);
        let need = spec.payload_bytes(h.samples as usize);
        if payload.len() < need {
            bail!(
                "an audio frame of {} samples has a {}-byte payload, {need} expected",
                h.samples,
                payload.len()
            );
        }
        Ok(spec)
    }

    /// The spec of a decoded FFmpeg frame.
    pub fn of_frame(f: &frame::Audio) -> AudioSpec {
        let (mask, channels) = frame_layout(f);
        AudioSpec::new(f.format(), f.rate(), channels, mask)
    }

    pub fn planes(&self) -> usize {
        if self.format.is_planar() {
            self.channels as usize
        } else {
            1
        }
    }

    /// Bytes of one sample of one plane (all channels for interleaved formats).
    pub fn plane_sample_bytes(&self) -> usize {
        if self.format.is_planar() {
            self.format.bytes()
        } else {
            self.format.bytes() * self.channels as usize
        }
    }

    /// Payload bytes of `samples` samples: planes back to back.
    pub fn payload_bytes(&self, samples: usize) -> usize {
        self.planes() * samples * self.plane_sample_bytes()
    }
}

/// Read-only plane pointers of a block of samples.
pub struct Planes<'a> {
    ptrs: [*const u8; MAX_PLANES],
    samples: usize,
    _data: PhantomData<&'a [u8]>,
}

impl<'a> Planes<'a> {
    /// A payload holding `samples` samples of `spec`, planes back to back.
    pub fn payload(buf: &'a [u8], spec: &AudioSpec, samples: usize) -> Result<Planes<'a>> {
        let need = spec.payload_bytes(samples);
        if buf.len() < need || spec.planes() > MAX_PLANES {
            bail!(
                "an audio payload of {} bytes cannot hold {samples} samples of {spec:?}",
                buf.len()
            );
        }
        let mut ptrs = [ptr::null(); MAX_PLANES];
        let stride = samples * spec.plane_sample_bytes();
        for (i, p) in ptrs.iter_mut().take(spec.planes()).enumerate() {
            // SAFETY: within `buf`, checked above.
            *p = unsafe { buf.as_ptr().add(i * stride) };
        }
        Ok(Planes {
            ptrs,
            samples,
            _data: PhantomData,
        })
    }

    /// The planes of a decoded frame.
    pub fn frame(f: &'a frame::Audio) -> Planes<'a> {
        let spec = AudioSpec::of_frame(f);
        let mut ptrs = [ptr::null(); MAX_PLANES];
        // SAFETY: extended_data has one pointer per plane of a valid frame.
        unsafe {
            let data = (*f.as_ptr()).extended_data;
            for (i, p) in ptrs
                .iter_mut()
                .take(spec.planes().min(MAX_PLANES))
                .enumerate()
            {
                *p = *data.add(i);
            }
        }
        Planes {
            ptrs,
            samples: f.samples(),
            _data: PhantomData,
        }
    }

    pub fn samples(&self) -> usize {
        self.samples
    }

    pub(crate) fn ptrs(&self) -> &[*const u8; MAX_PLANES] {
        &self.ptrs
    }
}

/// Writable plane pointers with room for `capacity` samples.
pub struct PlanesMut<'a> {
    ptrs: [*mut u8; MAX_PLANES],
    capacity: usize,
    _data: PhantomData<&'a mut [u8]>,
}

impl<'a> PlanesMut<'a> {
    /// A buffer laid out as a payload of `capacity` samples: planes back to back.
    pub fn payload(buf: &'a mut [u8], spec: &AudioSpec, capacity: usize) -> Result<PlanesMut<'a>> {
        let need = spec.payload_bytes(capacity);
        if buf.len() < need || spec.planes() > MAX_PLANES {
            bail!(
                "a buffer of {} bytes cannot hold {capacity} samples of {spec:?}",
                buf.len()
            );
        }
        let stride = capacity * spec.plane_sample_bytes();
        let base = buf.as_mut_ptr();
        let mut ptrs = [ptr::null_mut(); MAX_PLANES];
        for (i, p) in ptrs.iter_mut().take(spec.planes()).enumerate() {
            // SAFETY: within `buf`, checked above.
            *p = unsafe { base.add(i * stride) };
        }
        Ok(PlanesMut {
            ptrs,
            capacity,
            _data: PhantomData,
        })
    }

    /// Plane pointers the caller vouches for (the FIFO's free tail).
    ///
    /// # Safety
    /// Each of the first `planes` pointers must be valid for writes of
    /// `capacity` samples for the lifetime `'a`.
    pub(crate) unsafe fn from_raw(ptrs: [*mut u8; MAX_PLANES], capacity: usize) -> PlanesMut<'a> {
        PlanesMut {
            ptrs,
            capacity,
            _data: PhantomData,
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

/// One swresample context: converts sample format, rate and channel layout.
/// Create it once per input spec and reuse it; it keeps the resampler's
/// filter state, so consecutive blocks join without clicks.
pub struct Resampler {
    swr: *mut ffi::SwrContext,
    input: AudioSpec,
    output: AudioSpec,
}

// SAFETY: the context is only used through &mut self.
unsafe impl Send for Resampler {}

impl Resampler {
    pub fn new(input: AudioSpec, output: AudioSpec) -> Result<Resampler> {
        let mut in_layout = Layout::new(input.layout, input.channels);
        let mut out_layout = Layout::new(output.layout, output.channels);
        let mut swr = ptr::null_mut();
        // SAFETY: swr_alloc_set_opts2 allocates into `swr`; the layouts are copied.
        let e = unsafe {
            ffi::swr_alloc_set_opts2(
                &mut swr,
                &mut out_layout.0,
                output.format.into(),
                output.rate as i32,
                &mut in_layout.0,
                input.format.into(),
                input.rate as i32,
                0,
                ptr::null_mut(),
            )
        };
        let describe = || {
            format!(
                "{} {} Hz {} ch → {} {} Hz {} ch",
                input.format.name(),
                input.rate,
                input.channels,
                output.format.name(),
                output.rate,
                output.channels
            )
        };
        if e < 0 || swr.is_null() {
            return Err(anyhow!(
                "swresample {}: {}",
                describe(),
                ffmpeg_next::Error::from(e)
            ));
        }
        // Owned from here: dropping `r` on error frees the context.
        let r = Resampler { swr, input, output };
        // SAFETY: a freshly allocated context.
        let e = unsafe { ffi::swr_init(r.swr) };
        if e < 0 {
            return Err(anyhow!(
                "swresample {}: {}",
                describe(),
                ffmpeg_next::Error::from(e)
            ));
        }
        Ok(r)
    }

    pub fn input(&self) -> &AudioSpec {
        &self.input
    }

    pub fn output(&self) -> &AudioSpec {
        &self.output
    }

    /// An upper bound of the samples the next conversion of `in_samples` yields.
    pub fn max_output(&self, in_samples: usize) -> usize {
        // SAFETY: a valid, initialized context.
        let n = unsafe { ffi::swr_get_out_samples(self.swr, in_samples as i32) };
        n.max(0) as usize
    }

    /// Samples held inside the resampler, in output samples.
    pub fn delay(&self) -> i64 {
        // SAFETY: a valid, initialized context.
        unsafe { ffi::swr_get_delay(self.swr, self.output.rate as i64) }
    }

    /// Stretches the output smoothly: over the next `distance` output
    /// samples, `delta` samples more (or fewer, when negative) than the rate
    /// ratio gives. Calling it again replaces the previous request; a context
    /// converting between equal rates switches to resampling on the first call.
    pub fn set_compensation(&mut self, delta: i32, distance: i32) -> Result<()> {
        // SAFETY: a valid, initialized context.
        let e = unsafe { ffi::swr_set_compensation(self.swr, delta, distance) };
        if e < 0 {
            bail!(
                "swresample compensation {delta}/{distance}: {}",
                ffmpeg_next::Error::from(e)
            );
        }
        Ok(())
    }

    /// Converts `input` (in the input spec) into `out`; returns how many
    /// output samples were written. What does not fit stays buffered inside.
    pub fn convert(&mut self, input: &Planes<'_>, out: &mut PlanesMut<'_>) -> Result<usize> {
        let mut in_ptrs = *input.ptrs();
        self.run(in_ptrs.as_mut_ptr(), input.samples(), out)
    }

    /// Drains what the resampler still holds (end of stream).
    pub fn flush(&mut self, out: &mut PlanesMut<'_>) -> Result<usize> {
        self.run(ptr::null_mut(), 0, out)
    }

    fn run(
        &mut self,
        input: *mut *const u8,
        in_samples: usize,
        out: &mut PlanesMut<'_>,
    ) -> Result<usize> {
        // SAFETY: the plane views guarantee the pointers cover their sample counts
        // for this context's specs (they were built from the same specs).
        let n = unsafe {
            ffi::swr_convert(
                self.swr,
                out.ptrs.as_mut_ptr(),
                out.capacity as i32,
                input,
                in_samples as i32,
            )
        };
        if n < 0 {
            return Err(anyhow!(
                "swresample conversion failed: {}",
                ffmpeg_next::Error::from(n)
            ));
        }
        Ok(n as usize)
    }
}

impl Drop for Resampler {
    fn drop(&mut self) {
        // SAFETY: frees the context we allocated.
        unsafe { ffi::swr_free(&mut self.swr) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::format::{read_f32, WireFormat};
    use ffmpeg_next::format::sample::Type;
    use node_api::SampleFormat;

    fn spec(format: SampleFormat, rate: u32, channels: u16) -> AudioSpec {
        AudioSpec::new(av_sample_format(format), rate, channels, 0)
    }

    #[test]
    fn layouts_of_payloads() {
        let s = spec(SampleFormat::S16p, 48_000, 2);
        assert_eq!(s.planes(), 2);
        assert_eq!(s.payload_bytes(1024), 4096);
        let i = spec(SampleFormat::F32, 48_000, 2);
        assert_eq!(i.plane_sample_bytes(), 8);
        assert_eq!(i.payload_bytes(1024), 8192);
    }

    #[test]
    fn sample_format_round_trip_through_swresample() {
        // f32 interleaved → s16 planar → f32 interleaved: within one s16 step,
        // and swresample's s16 matches WireFormat::write_f32 bit for bit.
        let src: Vec<f32> = (0..2048).map(|i| ((i as f32) * 0.05).sin() * 0.7).collect();
        let bytes: Vec<u8> = src.iter().flat_map(|v| v.to_ne_bytes()).collect();
        let a = spec(SampleFormat::F32, 48_000, 2);
        let b = spec(SampleFormat::S16p, 48_000, 2);
        let mut to_s16 = Resampler::new(a, b).unwrap();
        let mut planar = vec![0u8; b.payload_bytes(1024)];
        let n = to_s16
            .convert(
                &Planes::payload(&bytes, &a, 1024).unwrap(),
                &mut PlanesMut::payload(&mut planar, &b, 1024).unwrap(),
            )
            .unwrap();
        assert_eq!(n, 1024);
        // Interleave our own conversion to compare with the planes.
        let mut ours = vec![0u8; 2048 * 2];
        WireFormat::from_param("s16")
            .unwrap()
            .write_f32(&src, &mut ours);
        for i in 0..1024 {
            for ch in 0..2 {
                let p = &planar[ch * 2048 + i * 2..][..2];
                assert_eq!(p, &ours[(i * 2 + ch) * 2..][..2], "sample {i} ch {ch}");
            }
        }
        let mut back = Resampler::new(b, a).unwrap();
        let mut out = vec![0u8; a.payload_bytes(1024)];
        let n = back
            .convert(
                &Planes::payload(&planar, &b, 1024).unwrap(),
                &mut PlanesMut::payload(&mut out, &a, 1024).unwrap(),
            )
            .unwrap();
        assert_eq!(n, 1024);
        let mut f = vec![0f32; 2048];
        read_f32(SampleFormat::F32, &out, &mut f);
        for (x, y) in src.iter().zip(&f) {
            assert!((x - y).abs() <= 1.0 / 32768.0, "{x} vs {y}");
        }
    }

    #[test]
    fn resampling_keeps_the_duration() {
        let a = AudioSpec::new(Sample::F32(Type::Packed), 44_100, 1, 0);
        let b = AudioSpec::new(Sample::F32(Type::Planar), 48_000, 2, 0);
        let mut r = Resampler::new(a, b).unwrap();
        let input = vec![0u8; a.payload_bytes(441)];
        let mut total = 0;
        let mut out = vec![0u8; b.payload_bytes(2000)];
        for _ in 0..100 {
            let cap = r.max_output(441);
            let mut planes = PlanesMut::payload(&mut out, &b, cap).unwrap();
            total += r
                .convert(&Planes::payload(&input, &a, 441).unwrap(), &mut planes)
                .unwrap();
        }
        loop {
            let mut planes = PlanesMut::payload(&mut out, &b, 1000).unwrap();
            let n = r.flush(&mut planes).unwrap();
            if n == 0 {
                break;
            }
            total += n;
        }
        assert_eq!(total, 48_000);
    }
}
