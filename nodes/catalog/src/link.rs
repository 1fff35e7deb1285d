//! Compressed links: how a raw-video edge between two machines travels.
//!
//! Inside a machine frames stay raw in shared memory. An edge from a node on
//! one machine to a node on another is compressed on the way: the runtime
//! puts a `video-encode` on the sending machine and a `video-decode` on the
//! receiving one (the graph's nodes are unchanged). The graph chooses per
//! edge (`link:` on the input) or for every edge (`link:` at the top); the
//! settings are `video-encode`'s params, plus `codec: raw` for none.

use serde_json::Value;

use crate::kinds::video_encode::{Codec, Quality};

/// `codec: raw`: frames cross uncompressed (a studio network: a 1080p30
/// yuv420p stream is 746 Mbit/s).
pub const RAW: &str = "raw";
/// The mezzanine: intra-only (a lost packet costs one picture), cheap on a
/// small machine's cores.
pub const DEFAULT_CODEC: Codec = Codec::Mjpeg;
/// MJPEG's quantizer 4: no visible loss on camera pictures.
pub const DEFAULT_MJPEG_QUALITY: Quality = Quality::High;
/// Inter-frame codecs on a link hold no frame back (no B-frames, no
/// look-ahead): the receiving machine gets each picture as it was encoded.
pub const TUNE: &str = "zerolatency";
/// A picture lost on the way costs at most this long of its stream.
pub const DEFAULT_KEYFRAME_INTERVAL: f64 = 1.0;

/// The `video-encode` params a link sets where its settings give none.
pub fn defaults(codec: Codec) -> Vec<(&'static str, Value)> {
    let mut out = vec![("codec", Value::from(codec.name()))];
    match codec {
        Codec::Mjpeg => out.push(("quality", Value::from(DEFAULT_MJPEG_QUALITY.name()))),
        Codec::H264 | Codec::H265 => out.push(("tune", Value::from(TUNE))),
        Codec::Vp9 | Codec::Av1 => {}
    }
    if codec != Codec::Mjpeg {
        out.push(("keyframe_interval", Value::from(DEFAULT_KEYFRAME_INTERVAL)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Choice;

    #[test]
    fn link_defaults_per_codec() {
        let names = |c| defaults(c).into_iter().map(|(n, _)| n).collect::<Vec<_>>();
        assert_eq!(names(Codec::Mjpeg), ["codec", "quality"]);
        assert_eq!(names(Codec::H264), ["codec", "tune", "keyframe_interval"]);
        assert_eq!(Codec::from_name(RAW), None, "raw is no encoder's codec");
    }
}
