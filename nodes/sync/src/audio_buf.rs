//! Sample-level copies between raw audio payloads: part of a frame, or
//! silence, written at a sample offset of a larger buffer, for interleaved
//! and planar layouts alike.

use anyhow::{bail, Result};
use node_api::SampleFormat;

/// The shape shared by a source frame and the buffer it is copied into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub format: SampleFormat,
    pub channels: u16,
}

impl Shape {
    /// Bytes of one sample of one channel.
    fn bps(self) -> usize {
        self.format.bytes_per_sample()
    }

    /// Payload bytes of `samples` samples.
    pub fn bytes(self, samples: u64) -> usize {
        samples as usize * self.channels as usize * self.bps()
    }

    /// (byte offset, byte length) of each contiguous run holding samples
    /// `from..from + count` of a buffer of `total` samples: one run per plane
    /// when planar, one run when interleaved.
    fn runs(self, total: u64, from: u64, count: u64) -> impl Iterator<Item = (usize, usize)> {
        let (bps, ch) = (self.bps(), self.channels as usize);
        let planar = self.format.is_planar();
        let (planes, frame_bytes) = if planar { (ch, bps) } else { (1, ch * bps) };
        (0..planes).map(move |p| {
            (
                p * total as usize * bps + from as usize * frame_bytes,
                count as usize * frame_bytes,
            )
        })
    }
}

/// A sample position in a buffer of `total` samples.
#[derive(Debug, Clone, Copy)]
pub struct At {
    pub total: u64,
    pub at: u64,
}

/// Copies `count` samples from position `from` of `src` to position `to` of `dst`.
pub fn copy_samples(
    shape: Shape,
    src: &[u8],
    from: At,
    dst: &mut [u8],
    to: At,
    count: u64,
) -> Result<()> {
    let (
        At {
            total: src_total,
            at: skip,
        },
        At {
            total: dst_total,
            at,
        },
    ) = (from, to);
    if skip + count > src_total || at + count > dst_total {
        bail!(
            "audio copy out of range: samples {skip}..{} of {src_total} to {at}.. of {dst_total}",
            skip + count
        );
    }
    if src.len() < shape.bytes(src_total) || dst.len() < shape.bytes(dst_total) {
        bail!(
            "audio payload too short: {} bytes for {src_total} samples, {} bytes for {dst_total}",
            src.len(),
            dst.len()
        );
    }
    for ((from, len), (to, _)) in shape
        .runs(src_total, skip, count)
        .zip(shape.runs(dst_total, at, count))
    {
        dst[to..to + len].copy_from_slice(&src[from..from + len]);
    }
    Ok(())
}

/// Writes digital silence over samples `at..at + count` of `dst` (a buffer of
/// `dst_total` samples); unsigned 8-bit silence is mid-scale.
pub fn silence(shape: Shape, dst: &mut [u8], dst_total: u64, at: u64, count: u64) -> Result<()> {
    if at + count > dst_total || dst.len() < shape.bytes(dst_total) {
        bail!(
            "silence out of range: samples {at}..{} of {dst_total}",
            at + count
        );
    }
    let value = if shape.format == SampleFormat::U8 {
        0x80
    } else {
        0
    };
    for (to, len) in shape.runs(dst_total, at, count) {
        dst[to..to + len].fill(value);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const S16: Shape = Shape {
        format: SampleFormat::S16,
        channels: 2,
    };
    const FLTP: Shape = Shape {
        format: SampleFormat::F32p,
        channels: 2,
    };

    #[test]
    fn interleaved_part_into_offset() {
        // s16 stereo, 4 samples: sample i of channel c holds bytes [i, c].
        let src: Vec<u8> = (0..4u8).flat_map(|i| [i, 0, i, 1]).collect();
        let mut dst = vec![9; S16.bytes(3)];
        copy_samples(
            S16,
            &src,
            At { total: 4, at: 1 },
            &mut dst,
            At { total: 3, at: 1 },
            2,
        )
        .unwrap();
        assert_eq!(dst, [9, 9, 9, 9, 1, 0, 1, 1, 2, 0, 2, 1]);
        silence(S16, &mut dst, 3, 0, 1).unwrap();
        assert_eq!(&dst[..4], &[0, 0, 0, 0]);
    }

    #[test]
    fn planar_part_into_offset() {
        // fltp stereo, 3 samples a plane: each value fills its 4 bytes.
        let src: Vec<u8> = (0..6u8).flat_map(|v| [v; 4]).collect();
        let mut dst = vec![9; FLTP.bytes(2)];
        copy_samples(
            FLTP,
            &src,
            At { total: 3, at: 2 },
            &mut dst,
            At { total: 2, at: 1 },
            1,
        )
        .unwrap();
        silence(FLTP, &mut dst, 2, 0, 1).unwrap();
        assert_eq!(dst, [0, 0, 0, 0, 2, 2, 2, 2, 0, 0, 0, 0, 5, 5, 5, 5]);
    }

    #[test]
    fn out_of_range_is_refused() {
        let src = vec![0; S16.bytes(4)];
        let mut dst = vec![0; S16.bytes(2)];
        assert!(copy_samples(
            S16,
            &src,
            At { total: 4, at: 3 },
            &mut dst,
            At { total: 2, at: 0 },
            2
        )
        .is_err());
        assert!(copy_samples(
            S16,
            &src,
            At { total: 4, at: 0 },
            &mut dst,
            At { total: 2, at: 1 },
            2
        )
        .is_err());
        assert!(copy_samples(
            S16,
            &src[..8],
            At { total: 4, at: 0 },
            &mut dst,
            At { total: 2, at: 0 },
            2
        )
        .is_err());
        assert!(silence(S16, &mut dst, 2, 1, 2).is_err());
    }

    #[test]
    fn unsigned_silence_is_mid_scale() {
        let u8s = Shape {
            format: SampleFormat::U8,
            channels: 1,
        };
        let mut b = [7u8; 4];
        silence(u8s, &mut b, 4, 0, 4).unwrap();
        assert_eq!(b, [0x80; 4]);
    }
}
