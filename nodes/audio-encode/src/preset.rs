//! Choices made before the encoder opens: which FFmpeg encoder, at what
//! bitrate, sample format, rate and channel layout.

use anyhow::{bail, Result};
use ffmpeg_next::format::{sample::Type, Sample};

/// The FFmpeg encoder of a codec param value.
pub fn encoder_name(codec: &str) -> Result<&'static str> {
    Ok(match codec {
        "aac" => "aac",
        "opus" => "libopus",
        "mp3" => "libmp3lame",
        other => bail!("unknown audio codec `{other}` (aac, opus, mp3)"),
    })
}

/// The `quality` presets in bits per second.
pub fn quality_bitrate(quality: &str) -> Result<u64> {
    Ok(match quality {
        "low" => 64_000,
        "voice" => 96_000,
        "standard" => 128_000,
        "high" => 192_000,
        "maximum" => 320_000,
        other => bail!("unknown quality `{other}` (low, voice, standard, high, maximum)"),
    })
}

/// The highest bitrate each encoder accepts for `channels` channels at `rate`.
pub fn max_bitrate(codec: &str, channels: u16, rate: u32) -> u64 {
    match codec {
        "mp3" => 320_000,
        "opus" => 256_000 * channels as u64,
        // AAC: at most 6144 bits per channel per 1024-sample frame.
        _ => 6144 * rate as u64 / 1024 * channels as u64,
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
pub fn pick_rate(codec: &str, input: u32, supported: &[u32]) -> u32 {
    if codec == "opus" {
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
        let got: Vec<u64> = ["low", "voice", "standard", "high", "maximum"]
            .iter()
            .map(|q| quality_bitrate(q).unwrap())
            .collect();
        assert_eq!(got, [64_000, 96_000, 128_000, 192_000, 320_000]);
        assert!(quality_bitrate("loud").is_err());
        assert_eq!(max_bitrate("mp3", 2, 48_000), 320_000);
        assert_eq!(max_bitrate("aac", 2, 48_000), 576_000);
    }

    #[test]
    fn encoders() {
        assert_eq!(encoder_name("aac").unwrap(), "aac");
        assert_eq!(encoder_name("opus").unwrap(), "libopus");
        assert_eq!(encoder_name("mp3").unwrap(), "libmp3lame");
        assert!(encoder_name("flac").is_err());
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
        assert_eq!(pick_rate("opus", 44_100, &[]), 48_000);
        let mp3 = [
            44_100, 48_000, 32_000, 22_050, 24_000, 16_000, 11_025, 12_000, 8_000,
        ];
        assert_eq!(pick_rate("mp3", 44_100, &mp3), 44_100);
        assert_eq!(pick_rate("mp3", 96_000, &mp3), 48_000);
        assert_eq!(pick_rate("mp3", 40_000, &mp3), 44_100);
        assert_eq!(pick_rate("aac", 96_000, &[]), 96_000);
        // mp3: mono and stereo only; 5.1 is downmixed to stereo.
        assert_eq!(pick_layout(0x3f, 6, &[0x4, 0x3]), 0x3);
        assert_eq!(pick_layout(0x3, 2, &[0x4, 0x3]), 0x3);
        assert_eq!(pick_layout(0x4, 1, &[]), 0x4);
    }
}
