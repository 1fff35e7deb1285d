//! Sample formats: `node_api` names, FFmpeg's, and the `sample_format` param.

use anyhow::Result;
use ffmpeg_next::format::sample::Type;
use ffmpeg_next::format::Sample;
use node_api::SampleFormat;

/// The FFmpeg sample format of a `node_api` one.
pub fn av_sample_format(format: SampleFormat) -> Sample {
    match format {
        SampleFormat::U8 => Sample::U8(Type::Packed),
        SampleFormat::S16 => Sample::I16(Type::Packed),
        SampleFormat::S32 => Sample::I32(Type::Packed),
        SampleFormat::F32 => Sample::F32(Type::Packed),
        SampleFormat::F64 => Sample::F64(Type::Packed),
        SampleFormat::S16p => Sample::I16(Type::Planar),
        SampleFormat::S32p => Sample::I32(Type::Planar),
        SampleFormat::F32p => Sample::F32(Type::Planar),
        SampleFormat::F64p => Sample::F64(Type::Planar),
    }
}

/// The `node_api` sample format of an FFmpeg one, when messages can carry it.
pub fn node_sample_format(format: Sample) -> Option<SampleFormat> {
    Some(match format {
        Sample::U8(Type::Packed) => SampleFormat::U8,
        Sample::I16(Type::Packed) => SampleFormat::S16,
        Sample::I32(Type::Packed) => SampleFormat::S32,
        Sample::F32(Type::Packed) => SampleFormat::F32,
        Sample::F64(Type::Packed) => SampleFormat::F64,
        Sample::I16(Type::Planar) => SampleFormat::S16p,
        Sample::I32(Type::Planar) => SampleFormat::S32p,
        Sample::F32(Type::Planar) => SampleFormat::F32p,
        Sample::F64(Type::Planar) => SampleFormat::F64p,
        _ => return None,
    })
}

/// A value of the `sample_format` param (`s16`, `s24`, `s32`, `f32`, all
/// interleaved) as it travels between nodes.
///
/// FFmpeg has no packed 24-bit sample format, so `s24` travels as `s32` whose
/// low byte is zero (24-bit precision, left-justified): every reader that
/// understands s32 plays it at the right level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WireFormat {
    pub format: SampleFormat,
    /// Significant bits per sample (24 for `s24`).
    pub bits: u8,
}

impl WireFormat {
    /// The wire format of a `sample_format` param.
    pub fn of(param: node_catalog::kinds::common::SampleFormat) -> WireFormat {
        use node_catalog::kinds::common::SampleFormat as Param;
        let (format, bits) = match param {
            Param::S16 => (SampleFormat::S16, 16),
            Param::S24 => (SampleFormat::S32, 24),
            Param::S32 => (SampleFormat::S32, 32),
            Param::F32 => (SampleFormat::F32, 32),
        };
        WireFormat { format, bits }
    }

    /// By name: a `sample_format` choice, or FFmpeg's `flt`.
    pub fn from_param(name: &str) -> Result<WireFormat> {
        use node_catalog::{kinds::common::SampleFormat as Param, Choice};
        let param = if name == "flt" { "f32" } else { name };
        Param::from_name(param).map(WireFormat::of).ok_or_else(|| {
            anyhow::anyhow!(
                "unknown sample format `{name}` ({})",
                Param::NAMES.join(", ")
            )
        })
    }

    pub fn name(&self) -> &'static str {
        match (self.format, self.bits) {
            (SampleFormat::S32, 24) => "s24",
            (SampleFormat::F32, _) => "f32",
            (f, _) => f.name(),
        }
    }

    pub fn av(&self) -> Sample {
        av_sample_format(self.format)
    }

    pub fn bytes_per_sample(&self) -> usize {
        self.format.bytes_per_sample()
    }

    /// Whether samples need [`WireFormat::quantize`] after a conversion to `format`.
    pub fn needs_quantize(&self) -> bool {
        self.format == SampleFormat::S32 && self.bits < 32
    }

    /// Rounds s32 samples to this format's precision (s24); other formats are untouched.
    pub fn quantize(&self, buf: &mut [u8]) {
        if !self.needs_quantize() {
            return;
        }
        let shift = 32 - self.bits as u32;
        let (lo, hi) = (-(1i64 << (self.bits - 1)), (1i64 << (self.bits - 1)) - 1);
        for chunk in buf.chunks_exact_mut(4) {
            let v = i32::from_ne_bytes(chunk.try_into().unwrap()) as i64;
            let q = ((v + (1 << (shift - 1))) >> shift).clamp(lo, hi) << shift;
            chunk.copy_from_slice(&(q as i32).to_ne_bytes());
        }
    }

    /// Writes interleaved f32 samples in this format, the way swresample
    /// converts: scale to full scale, round to nearest, clip.
    pub fn write_f32(&self, src: &[f32], dst: &mut [u8]) {
        let bps = self.bytes_per_sample();
        assert!(dst.len() >= src.len() * bps, "destination too small");
        match self.format {
            SampleFormat::S16 => {
                for (s, d) in src.iter().zip(dst.chunks_exact_mut(2)) {
                    let v = (*s as f64 * 32768.0).round().clamp(-32768.0, 32767.0) as i16;
                    d.copy_from_slice(&v.to_ne_bytes());
                }
            }
            SampleFormat::S32 => {
                let shift = 32 - self.bits as u32;
                let scale = (1u64 << (self.bits - 1)) as f64;
                for (s, d) in src.iter().zip(dst.chunks_exact_mut(4)) {
                    let v = (*s as f64 * scale).round().clamp(-scale, scale - 1.0) as i64;
                    d.copy_from_slice(&((v << shift) as i32).to_ne_bytes());
                }
            }
            SampleFormat::F32 => {
                for (s, d) in src.iter().zip(dst.chunks_exact_mut(4)) {
                    d.copy_from_slice(&s.to_ne_bytes());
                }
            }
            other => unreachable!("{} is not a wire format", other.name()),
        }
    }
}

/// Reads interleaved samples as f32 in -1..1 (for analysis and tests).
/// Planar formats read plane after plane, like their payload.
pub fn read_f32(format: SampleFormat, src: &[u8], dst: &mut [f32]) {
    let bps = format.bytes_per_sample();
    let n = (src.len() / bps).min(dst.len());
    let src = &src[..n * bps];
    match format {
        SampleFormat::U8 => {
            for (d, s) in dst.iter_mut().zip(src) {
                *d = (*s as f32 - 128.0) / 128.0;
            }
        }
        SampleFormat::S16 | SampleFormat::S16p => {
            for (d, s) in dst.iter_mut().zip(src.chunks_exact(2)) {
                *d = i16::from_ne_bytes([s[0], s[1]]) as f32 / 32768.0;
            }
        }
        SampleFormat::S32 | SampleFormat::S32p => {
            for (d, s) in dst.iter_mut().zip(src.chunks_exact(4)) {
                *d = (i32::from_ne_bytes(s.try_into().unwrap()) as f64 / 2147483648.0) as f32;
            }
        }
        SampleFormat::F32 | SampleFormat::F32p => {
            for (d, s) in dst.iter_mut().zip(src.chunks_exact(4)) {
                *d = f32::from_ne_bytes(s.try_into().unwrap());
            }
        }
        SampleFormat::F64 | SampleFormat::F64p => {
            for (d, s) in dst.iter_mut().zip(src.chunks_exact(8)) {
                *d = f64::from_ne_bytes(s.try_into().unwrap()) as f32;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_map_both_ways() {
        for f in [
            SampleFormat::U8,
            SampleFormat::S16,
            SampleFormat::S32,
            SampleFormat::F32,
            SampleFormat::F64,
            SampleFormat::S16p,
            SampleFormat::S32p,
            SampleFormat::F32p,
            SampleFormat::F64p,
        ] {
            assert_eq!(node_sample_format(av_sample_format(f)), Some(f));
            assert_eq!(av_sample_format(f).name(), f.name());
        }
        assert_eq!(node_sample_format(Sample::U8(Type::Planar)), None);
    }

    #[test]
    fn param_names() {
        for name in ["s16", "s24", "s32", "f32"] {
            assert_eq!(WireFormat::from_param(name).unwrap().name(), name);
        }
        assert!(WireFormat::from_param("s8").is_err());
        assert_eq!(
            WireFormat::from_param("s24").unwrap().format,
            SampleFormat::S32
        );
    }

    #[test]
    fn s24_keeps_24_bits() {
        let w = WireFormat::from_param("s24").unwrap();
        let mut buf = Vec::new();
        for v in [0x7fff_ffffi32, 0x1234_5680, 0x1234_567f, -1, i32::MIN] {
            buf.extend_from_slice(&v.to_ne_bytes());
        }
        w.quantize(&mut buf);
        let out: Vec<i32> = buf
            .chunks_exact(4)
            .map(|c| i32::from_ne_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(out, [0x7fff_ff00, 0x1234_5700, 0x1234_5600, 0, i32::MIN]);
        let mut direct = vec![0u8; 8];
        w.write_f32(&[0.5, -1.0], &mut direct);
        assert_eq!(
            i32::from_ne_bytes(direct[..4].try_into().unwrap()),
            0x4000_0000
        );
        assert_eq!(
            i32::from_ne_bytes(direct[4..].try_into().unwrap()),
            i32::MIN
        );
    }

    #[test]
    fn f32_round_trips_through_integer_formats() {
        let src: Vec<f32> = (0..200).map(|i| ((i as f32) * 0.37).sin() * 0.9).collect();
        for (name, tolerance) in [
            ("s16", 1.0 / 32768.0),
            ("s24", 1.0 / 8388608.0),
            ("s32", 1e-7),
            ("f32", 0.0),
        ] {
            let w = WireFormat::from_param(name).unwrap();
            let mut bytes = vec![0u8; src.len() * w.bytes_per_sample()];
            w.write_f32(&src, &mut bytes);
            let mut back = vec![0f32; src.len()];
            read_f32(w.format, &bytes, &mut back);
            for (a, b) in src.iter().zip(&back) {
                assert!((a - b).abs() <= tolerance, "{name}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn clipping() {
        let w = WireFormat::from_param("s16").unwrap();
        let mut bytes = [0u8; 4];
        w.write_f32(&[2.0, -2.0], &mut bytes);
        assert_eq!(i16::from_ne_bytes([bytes[0], bytes[1]]), i16::MAX);
        assert_eq!(i16::from_ne_bytes([bytes[2], bytes[3]]), i16::MIN);
    }
}
