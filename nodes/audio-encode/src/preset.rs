//! Choices made before the encoder opens: which FFmpeg encoder, at what
//! bitrate, sample format, rate and channel layout.

use ffmpeg_next::format::{sample::Type, Sample};
pub use node_catalog::kinds::audio_encode::Codec;

/// The FFmpeg encoder of a codec.
pub fn encoder_name(codec: Codec) -> &'static str {
    match codec {
        Codec::Aac => "aac",
        Codec::Opus => "libopus",
        Codec::Mp3 => "libmp3lame",
    }
}

/// The highest bitrate each encoder accepts for `channels` channels at `rate`.
pub fn max_bitrate(codec: Codec, channels: u16, rate: u32) -> u64 {
    match codec {
        Codec::Mp3 => 320_000,
        Codec::Opus => 256_000 * channels as u64,
        // AAC: at most 6144 bits per channel per 1024-sample frame.
        Codec::Aac => 6144 * rate as u64 / 1024 * channels as u64,
    }
}

/// The encoder's input sample format: float planar or packed first (no
/// conversion loss), then 16-bit; among those the codec supports.
pub fn pick_format(supported: &[Sample]) -> Option<Sample> {
    let prefs = [
        Sample::F32(Type::Planar),
        Sample::F32(Type::Packed),
        Sample::I16(Type::Planar),
        Sample::I16(Type::Packed),
        Sample::I32(Type::Planar),
        Sample::I32(Type::Packed),
    ];
    if supported.is_empty() {
        return Some(prefs[0]);
    }
    prefs
        .into_iter()
        .find(|f| supported.contains(f))
        .or_else(|| supported.first().copied())
}

/// The encoding rate: Opus always runs at 48 kHz; the others keep the input
/// rate when they support it, else the nearest supported rate above (or the highest).
pub fn pick_rate(codec: Codec, input: u32, supported: &[u32]) -> u32 {
    if codec == Codec::Opus {
        return 48_000;
    }
    if supported.is_empty() || supported.contains(&input) {
        return input;
    }
    supported
        .iter()
        .copied()
        .filter(|r| *r >= input)
        .min()
        .unwrap_or_else(|| supported.iter().copied().max().unwrap_or(input))
}

/// The encoding channel layout: the input's if supported, else one with as
/// many channels, else the largest with fewer (downmix), else the first.
pub fn pick_layout(input_mask: u64, channels: u16, supported: &[u64]) -> u64 {
    if supported.is_empty() || supported.contains(&input_mask) {
        return input_mask;
    }
    let count = |m: &u64| m.count_ones() as u16;
    supported
        .iter()
        .find(|m| count(m) == channels)
        .or_else(|| {
            supported
                .iter()
                .filter(|m| count(m) < channels)
                .max_by_key(|m| count(m))
        })
        .or_else(|| supported.first())
        .copied()
        .unwrap_or(input_mask)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quality_to_bitrate() {
        // The quality table itself is the catalog's (kinds::audio_encode).
        assert_eq!(max_bitrate(Codec::Mp3, 2, 48_000), 320_000);
        assert_eq!(max_bitrate(Codec::Aac, 2, 48_000), 576_000);
    }

    #[test]
    fn encoders() {
        use node_catalog::Choice;
        let codec = |name| Codec::from_name(name).unwrap();
        assert_eq!(encoder_name(codec("aac")), "aac");
        assert_eq!(encoder_name(codec("opus")), "libopus");
        assert_eq!(encoder_name(codec("mp3")), "libmp3lame");
        assert!(Codec::from_name("flac").is_none());
    }

    #[test]
    fn formats() {
        // libopus: s16, flt → flt. libmp3lame: s32p, fltp, s16p → fltp. aac: fltp.
        assert_eq!(
            pick_format(&[Sample::I16(Type::Packed), Sample::F32(Type::Packed)]),
            Some(Sample::F32(Type::Packed))
        );
        assert_eq!(
            pick_format(&[
                Sample::I32(Type::Planar),
                Sample::F32(Type::Planar),
                Sample::I16(Type::Planar)
            ]),
            Some(Sample::F32(Type::Planar))
        );
        assert_eq!(
            pick_format(&[Sample::I16(Type::Packed)]),
            Some(Sample::I16(Type::Packed))
        );
    }

    #[test]
    fn rates_and_layouts() {
        assert_eq!(pick_rate(Codec::Opus, 44_100, &[]), 48_000);
        let mp3 = [
            44_100, 48_000, 32_000, 22_050, 24_000, 16_000, 11_025, 12_000, 8_000,
        ];
        assert_eq!(pick_rate(Codec::Mp3, 44_100, &mp3), 44_100);
        assert_eq!(pick_rate(Codec::Mp3, 96_000, &mp3), 48_000);
        assert_eq!(pick_rate(Codec::Mp3, 40_000, &mp3), 44_100);
        assert_eq!(pick_rate(Codec::Aac, 96_000, &[]), 96_000);
        // mp3: mono and stereo only; 5.1 is downmixed to stereo.
        assert_eq!(pick_layout(0x3f, 6, &[0x4, 0x3]), 0x3);
        assert_eq!(pick_layout(0x3, 2, &[0x4, 0x3]), 0x3);
        assert_eq!(pick_layout(0x4, 1, &[]), 0x4);
    }
}
