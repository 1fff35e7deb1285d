//! `mediagraph-nodes video-encode --list-devices`: which hardware encoders
//! this machine can use, for `runtime devices`. Each is opened the way a
//! run opens it (`encoder::open_hardware`: the NVENC encoder, or a VAAPI
//! device with its surfaces and the VAAPI encoder), at a small size, and
//! closed again; the answer is a JSON array, one entry per (hwaccel, codec).

use anyhow::Result;
use ffmpeg_next as ff;
use node_catalog::Rational;
use serde_json::{json, Value};

use crate::encoder::open_hardware;
use crate::settings::{Codec, CodecExt, HwAccel, Settings};

/// The size probed: small, even, and within every encoder's minimum.
const PROBE_SIZE: (u32, u32) = (256, 144);

/// Prints what `probe` finds, as JSON.
pub fn list_devices() -> Result<()> {
    node_api::logging::init();
    node_media::init()?;
    println!("{}", Value::Array(probe()?));
    Ok(())
}

/// One entry per hardware path and codec: `hwaccel`, `codec`, `encoder`
/// (FFmpeg's name, or null when FFmpeg has none for that codec), `usable`,
/// and `reason` when it is not.
fn probe() -> Result<Vec<Value>> {
    let mut found = Vec::new();
    for hw in [HwAccel::Nvenc, HwAccel::Vaapi] {
        for name in Codec::NAMES {
            let params = json!({ "codec": name, "hwaccel": hw.name() });
            let settings = Settings::from_params(&serde_json::from_value(params)?)?;
            let codec = settings.codec;
            let encoder = match hw {
                HwAccel::Nvenc => codec.nvenc_encoder(),
                _ => Some(codec.vaapi_encoder()),
            };
            let (w, h) = PROBE_SIZE;
            let tick = ff::Rational::new(1, 30);
            let opened = open_hardware(&settings, hw, w, h, tick, Rational::new(30, 1));
            found.push(json!({
                "hwaccel": hw.name(),
                "codec": name,
                "encoder": encoder,
                "usable": opened.is_ok(),
                "reason": opened.err().map(|e| format!("{e:#}")),
            }));
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_hardware_path_and_codec_is_tried_and_answered() {
        node_media::init().unwrap();
        let found = probe().unwrap();
        assert_eq!(found.len(), 2 * Codec::NAMES.len());
        for f in &found {
            let usable = f["usable"].as_bool().unwrap();
            assert_eq!(
                f["reason"].is_null(),
                usable,
                "a reason when not usable: {f}"
            );
        }
        assert!(found.iter().any(|f| f["encoder"] == "h264_nvenc"));
        assert!(found.iter().any(|f| f["encoder"] == "h264_vaapi"));
    }
}
