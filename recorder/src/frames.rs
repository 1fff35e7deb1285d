//! Frames as an application hands them over: pixels or samples it owns,
//! borrowed for the call, with an optional capture timestamp.

use std::time::Duration;

use crate::config::{PixelFormat, SampleFormat};
use crate::error::{RecorderError, Result};

/// A picture the app submits: its pixels in one buffer (planes one after
/// another), its size and layout. The recorder copies it once into shared
/// memory; [`crate::VideoBuffer`] avoids even that copy.
#[derive(Debug, Clone, Copy)]
pub struct VideoFrame<'a> {
    /// The pixels, planes one after another.
    pub data: &'a [u8],
    /// Their layout.
    pub format: PixelFormat,
    /// Pixels.
    pub width: u32,
    /// Pixels.
    pub height: u32,
    /// Bytes per row of each plane; 0: rows packed without padding.
    pub strides: [usize; 3],
    /// When the picture was taken, from the recording's start (the time of
    /// `start_recording`); `None`: when it is submitted.
    pub timestamp: Option<Duration>,
}

impl<'a> VideoFrame<'a> {
    /// A frame of packed rows in `format`.
    pub fn new(data: &'a [u8], format: PixelFormat, width: u32, height: u32) -> Self {
        VideoFrame {
            data,
            format,
            width,
            height,
            strides: [0; 3],
            timestamp: None,
        }
    }

    /// 3 bytes per pixel, R G B.
    pub fn rgb24(data: &'a [u8], width: u32, height: u32) -> Self {
        Self::new(data, PixelFormat::Rgb24, width, height)
    }

    /// 4 bytes per pixel, R G B A.
    pub fn rgba(data: &'a [u8], width: u32, height: u32) -> Self {
        Self::new(data, PixelFormat::Rgba, width, height)
    }

    /// 4 bytes per pixel, B G R A.
    pub fn bgra(data: &'a [u8], width: u32, height: u32) -> Self {
        Self::new(data, PixelFormat::Bgra, width, height)
    }

    /// A Y plane, then interleaved U V at half size.
    pub fn nv12(data: &'a [u8], width: u32, height: u32) -> Self {
        Self::new(data, PixelFormat::Nv12, width, height)
    }

    /// Y, U and V planes, U and V at half size (`yuv420p`).
    pub fn i420(data: &'a [u8], width: u32, height: u32) -> Self {
        Self::new(data, PixelFormat::Yuv420p, width, height)
    }

    /// Rows of each plane are this many bytes apart (padding after each row).
    pub fn with_strides(mut self, strides: [usize; 3]) -> Self {
        self.strides = strides;
        self
    }

    /// Stamps the frame: its time from the recording's start.
    pub fn with_timestamp(mut self, timestamp: Duration) -> Self {
        self.timestamp = Some(timestamp);
        self
    }

    /// Each plane's (bytes per row with data, rows, stride).
    pub(crate) fn planes(&self) -> Vec<(usize, usize, usize)> {
        let (w, h) = (self.width as usize, self.height as usize);
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        let rows: Vec<(usize, usize)> = match self.format {
            PixelFormat::Rgb24 => vec![(w * 3, h)],
            PixelFormat::Rgba | PixelFormat::Bgra => vec![(w * 4, h)],
            PixelFormat::Nv12 => vec![(w, h), (cw * 2, ch)],
            PixelFormat::Yuv420p => vec![(w, h), (cw, ch), (cw, ch)],
        };
        rows.iter()
            .enumerate()
            .map(|(i, &(row, n))| (row, n, self.strides[i].max(row)))
            .collect()
    }

    /// The packed pixels, plane after plane, row after row, into `out`
    /// (exactly the packed size): the one copy of a submit.
    pub(crate) fn pack_into(&self, out: &mut [u8]) -> Result<()> {
        let planes = self.planes();
        // Each plane starts `stride * rows` after the previous one; the
        // last row of the last plane needs no padding after it.
        let last = planes.len() - 1;
        let needed: usize = planes
            .iter()
            .enumerate()
            .map(|(i, &(row, n, stride))| match i == last {
                true => stride * n.saturating_sub(1) + row,
                false => stride * n,
            })
            .sum();
        if self.data.len() < needed {
            return Err(RecorderError::ShortData {
                needed,
                got: self.data.len(),
            });
        }
        let (mut src, mut dst) = (0, 0);
        for (row, n, stride) in planes {
            for _ in 0..n {
                out[dst..dst + row].copy_from_slice(&self.data[src..src + row]);
                dst += row;
                src += stride;
            }
        }
        Ok(())
    }
}

/// Samples as the app has them.
#[derive(Debug, Clone)]
pub enum Samples<'a> {
    /// Interleaved 32-bit float (L R L R ...).
    F32(&'a [f32]),
    /// Interleaved signed 16-bit.
    S16(&'a [i16]),
    /// One slice per channel, 32-bit float.
    F32Planar(Vec<&'a [f32]>),
    /// One slice per channel, signed 16-bit.
    S16Planar(Vec<&'a [i16]>),
}

/// Sound the app submits.
#[derive(Debug, Clone)]
pub struct AudioFrame<'a> {
    /// The samples, in one of four layouts.
    pub samples: Samples<'a>,
    /// Samples per second.
    pub sample_rate: u32,
    /// Channels (planar: the number of slices).
    pub channels: u32,
    /// When its first sample was captured, from the recording's start;
    /// `None`: right after the previous frame (the first one: when submitted).
    pub timestamp: Option<Duration>,
}

impl<'a> AudioFrame<'a> {
    /// Interleaved f32 samples.
    pub fn interleaved_f32(samples: &'a [f32], sample_rate: u32, channels: u32) -> Self {
        Self::of(Samples::F32(samples), sample_rate, channels)
    }

    /// Interleaved i16 samples.
    pub fn interleaved_i16(samples: &'a [i16], sample_rate: u32, channels: u32) -> Self {
        Self::of(Samples::S16(samples), sample_rate, channels)
    }

    /// One f32 slice per channel.
    pub fn planar_f32(planes: Vec<&'a [f32]>, sample_rate: u32) -> Self {
        let channels = planes.len() as u32;
        Self::of(Samples::F32Planar(planes), sample_rate, channels)
    }

    /// One i16 slice per channel.
    pub fn planar_i16(planes: Vec<&'a [i16]>, sample_rate: u32) -> Self {
        let channels = planes.len() as u32;
        Self::of(Samples::S16Planar(planes), sample_rate, channels)
    }

    fn of(samples: Samples<'a>, sample_rate: u32, channels: u32) -> Self {
        AudioFrame {
            samples,
            sample_rate,
            channels,
            timestamp: None,
        }
    }

    /// Stamps the frame: its first sample's time from the recording's start.
    pub fn with_timestamp(mut self, timestamp: Duration) -> Self {
        self.timestamp = Some(timestamp);
        self
    }

    /// Its layout.
    pub fn format(&self) -> SampleFormat {
        match self.samples {
            Samples::F32(_) => SampleFormat::F32,
            Samples::S16(_) => SampleFormat::S16,
            Samples::F32Planar(_) => SampleFormat::F32p,
            Samples::S16Planar(_) => SampleFormat::S16p,
        }
    }

    /// Samples per channel (planes of unequal length are an error).
    pub(crate) fn samples_per_channel(&self) -> Result<usize> {
        let ch = self.channels.max(1) as usize;
        let planar = |lens: Vec<usize>| match lens.iter().min() == lens.iter().max() {
            true => Ok(lens.first().copied().unwrap_or(0)),
            false => Err(RecorderError::ShortData {
                needed: lens.iter().max().copied().unwrap_or(0),
                got: lens.iter().min().copied().unwrap_or(0),
            }),
        };
        match &self.samples {
            Samples::F32(s) if s.len() % ch == 0 => Ok(s.len() / ch),
            Samples::S16(s) if s.len() % ch == 0 => Ok(s.len() / ch),
            Samples::F32(s) => Err(short(s.len(), ch)),
            Samples::S16(s) => Err(short(s.len(), ch)),
            Samples::F32Planar(p) => planar(p.iter().map(|c| c.len()).collect()),
            Samples::S16Planar(p) => planar(p.iter().map(|c| c.len()).collect()),
        }
    }

    /// Samples `from..from + n` (per channel) as bytes in its own layout
    /// (planar: plane after plane), into `out`.
    pub(crate) fn bytes_into(&self, from: usize, n: usize, out: &mut [u8]) {
        let ch = self.channels as usize;
        let mut put = |bytes: &[u8], at: &mut usize| {
            out[*at..*at + bytes.len()].copy_from_slice(bytes);
            *at += bytes.len();
        };
        let mut at = 0;
        match &self.samples {
            Samples::F32(s) => s[from * ch..(from + n) * ch]
                .iter()
                .for_each(|v| put(&v.to_ne_bytes(), &mut at)),
            Samples::S16(s) => s[from * ch..(from + n) * ch]
                .iter()
                .for_each(|v| put(&v.to_ne_bytes(), &mut at)),
            Samples::F32Planar(p) => p
                .iter()
                .flat_map(|c| &c[from..from + n])
                .for_each(|v| put(&v.to_ne_bytes(), &mut at)),
            Samples::S16Planar(p) => p
                .iter()
                .flat_map(|c| &c[from..from + n])
                .for_each(|v| put(&v.to_ne_bytes(), &mut at)),
        }
    }
}

/// Interleaved data whose length is not a multiple of the channel count.
fn short(len: usize, channels: usize) -> RecorderError {
    RecorderError::ShortData {
        needed: len.div_ceil(channels) * channels,
        got: len,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strided_rows_are_packed() {
        // 2x2 RGB24 with 2 bytes of padding per row.
        let data = [1, 2, 3, 4, 5, 6, 0, 0, 7, 8, 9, 10, 11, 12, 0, 0];
        let f = VideoFrame::rgb24(&data, 2, 2).with_strides([8, 0, 0]);
        let mut out = [0u8; 12];
        f.pack_into(&mut out).unwrap();
        assert_eq!(out, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    }

    #[test]
    fn short_data_is_refused() {
        let data = [0u8; 10];
        let f = VideoFrame::i420(&data, 4, 4);
        let mut out = [0u8; 24];
        assert_eq!(
            f.pack_into(&mut out),
            Err(RecorderError::ShortData {
                needed: 24,
                got: 10
            })
        );
    }

    #[test]
    fn planar_audio_goes_plane_after_plane() {
        let l = [1i16, 2, 3];
        let r = [4i16, 5, 6];
        let f = AudioFrame::planar_i16(vec![&l, &r], 48_000);
        assert_eq!(f.samples_per_channel().unwrap(), 3);
        let mut out = [0u8; 8];
        f.bytes_into(1, 2, &mut out);
        let got: Vec<i16> = out
            .chunks(2)
            .map(|b| i16::from_ne_bytes([b[0], b[1]]))
            .collect();
        assert_eq!(got, [2, 3, 5, 6]);
    }
}
