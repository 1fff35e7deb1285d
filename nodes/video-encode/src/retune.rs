//! Rate control changed while encoding (the live params `crf` and
//! `bitrate`). Only libx264 takes such a change mid-stream: FFmpeg's
//! wrapper compares its options with x264's before each frame and
//! reconfigures x264 when they differ. The mode stays the one the encoder
//! started in (a CRF encode stays CRF, an ABR or CBR one keeps its mode);
//! other encoders keep their settings and say so.

use ffmpeg_next as ff;

use crate::encoder::VideoEncoder;
use crate::settings::RateControl;

/// The one encoder that applies a new rate mid-stream.
const RETUNABLE: &str = "libx264";

impl VideoEncoder {
    /// Moves the running encoder to `wanted`: what was done, or why not.
    pub fn retune(&mut self, wanted: RateControl) -> Result<String, String> {
        if self.name != RETUNABLE {
            return Err(format!(
                "{} cannot change its rate control while running (only {RETUNABLE} can)",
                self.name
            ));
        }
        let ctx = unsafe { &mut *self.encoder.as_mut_ptr() };
        match (self.rate, wanted) {
            (RateControl::Crf(_), RateControl::Crf(crf)) => {
                let value = std::ffi::CString::new(crf.to_string()).expect("digits");
                // SAFETY: the encoder's own private options, by name.
                let ret = unsafe {
                    ff::ffi::av_opt_set(ctx.priv_data, c"crf".as_ptr(), value.as_ptr(), 0)
                };
                if ret < 0 {
                    return Err(format!("setting crf: {}", ff::Error::from(ret)));
                }
            }
            (RateControl::Abr(_), RateControl::Abr(bps)) => ctx.bit_rate = bps as i64,
            (RateControl::Cbr(_), RateControl::Cbr(bps)) => {
                ctx.bit_rate = bps as i64;
                ctx.rc_max_rate = bps as i64;
                ctx.rc_buffer_size = bps.min(i32::MAX as u64) as i32;
            }
            (now, _) => {
                return Err(format!(
                    "{} runs {}: its rate control mode cannot change while running",
                    self.name,
                    describe(now)
                ))
            }
        }
        self.rate = wanted;
        Ok(format!("{}: now {}", self.name, describe(wanted)))
    }
}

fn describe(rate: RateControl) -> String {
    match rate {
        RateControl::Crf(crf) => format!("crf {crf}"),
        RateControl::Abr(bps) => format!("abr {} kb/s", bps / 1000),
        RateControl::Cbr(bps) => format!("cbr {} kb/s", bps / 1000),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Settings;
    use node_api::{EncodedPacket, PixelFormat, TimeBase};
    use node_media::video::packed_frame;
    use serde_json::json;

    fn open(params: serde_json::Value) -> VideoEncoder {
        ff::init().unwrap();
        let s = Settings::from_params(&node_api::Params(params.as_object().unwrap().clone()));
        let first = packed_frame(PixelFormat::Yuv420p, 160, 96, 0, TimeBase::new(1, 30), 0);
        VideoEncoder::open(&s.unwrap(), &first).unwrap()
    }

    /// Encodes frames `range` (noise, captured at their index in ns): the
    /// packets and their sizes.
    fn encode(enc: &mut VideoEncoder, range: std::ops::Range<i64>) -> Vec<(EncodedPacket, usize)> {
        let mut packets = Vec::new();
        for i in range {
            let header = packed_frame(
                PixelFormat::Yuv420p,
                160,
                96,
                i,
                TimeBase::new(1, 30),
                i as u64,
            );
            let data: Vec<u8> = (0..header.layout.size)
                .map(|k| ((k as i64 * 7919 + i * 104_729) % 251) as u8)
                .collect();
            enc.encode(&header, &data, &mut |p, d| {
                packets.push((p, d.len()));
                Ok(())
            })
            .unwrap();
        }
        enc.finish(&mut |p, d| {
            packets.push((p, d.len()));
            Ok(())
        })
        .unwrap();
        packets
    }

    fn bytes(packets: &[(EncodedPacket, usize)]) -> usize {
        packets.iter().map(|p| p.1).sum()
    }

    #[test]
    fn libx264_takes_a_new_crf_while_running() {
        let params =
            json!({ "codec": "h264", "speed": "ultrafast", "crf": 45, "keyframe_interval": 60 });
        let mut steady = open(params.clone());
        let coarse = bytes(&encode(&mut steady, 0..40)[20..]);
        let mut retuned = open(params);
        retuned.retune(RateControl::Crf(5)).unwrap();
        let fine = bytes(&encode(&mut retuned, 0..40)[20..]);
        assert!(fine > 3 * coarse, "crf 5: {fine} bytes, crf 45: {coarse}");
        let refused = retuned.retune(RateControl::Abr(1_000_000)).unwrap_err();
        assert!(refused.contains("mode cannot change"), "{refused}");
    }

    #[test]
    fn other_encoders_say_they_cannot() {
        let mut vp9 = open(json!({ "codec": "vp9", "speed": "ultrafast" }));
        let refused = vp9.retune(RateControl::Crf(20)).unwrap_err();
        assert!(refused.contains("only libx264"), "{refused}");
    }

    #[test]
    fn a_keyframe_lands_on_the_frame_captured_at_the_instant_asked() {
        let mut enc =
            open(json!({ "codec": "h264", "speed": "ultrafast", "keyframe_interval": 60 }));
        enc.keyframe_from(17);
        let keyframes: Vec<i64> = encode(&mut enc, 0..30)
            .iter()
            .filter(|p| p.0.keyframe)
            .map(|p| p.0.pts)
            .collect();
        assert_eq!(keyframes, [0, 17]);
    }
}
