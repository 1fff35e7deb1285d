//! `video-decode`: turns encoded video packets back into raw frames. The
//! runtime puts one on the receiving machine of every compressed link (a
//! raw-video edge between machines, see `link:` in the graph docs); a graph
//! may also use it on its own.

use super::{no_inputs_rule, no_rules, no_value_rule, problems, KindSpec, PortSpec};
use crate::params::{ParamSpec, Params};
use crate::read::Reader;
use crate::{PortType, Problem};

/// 0: FFmpeg picks (one per core, slice or frame threads as the codec allows).
pub const DEFAULT_THREADS: u32 = 0;

/// The params of `video-decode`, typed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    pub threads: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            threads: DEFAULT_THREADS,
        }
    }
}

impl Settings {
    pub fn from_params(p: &Params) -> Result<Settings, Problem> {
        let r = Reader::new(PARAMS, p);
        Ok(Settings {
            threads: r.int("threads", DEFAULT_THREADS.into())? as u32,
        })
    }
}

fn rules(p: &Params) -> Vec<Problem> {
    problems(Settings::from_params(p))
}

const PARAMS: &[ParamSpec] = &[ParamSpec::int(
    "threads",
    (0, 64),
    Some(DEFAULT_THREADS as i64),
    "decoder threads; 0: automatic",
)];

pub const SPEC: KindSpec = KindSpec {
    kind: "video-decode",
    doc: "Decodes encoded video packets (any codec FFmpeg decodes: mjpeg, h264, hevc, vp9, av1) to raw yuv420p frames, each with its packet's capture time; the runtime inserts one at the receiving end of a compressed link between machines.",
    // Packets always block (nothing may be lost in a stream of references).
    inputs: &[PortSpec::new("video", PortType::EncodedVideo, "encoded video packets")],
    any_inputs: None,
    outputs: &[PortSpec::new("video", PortType::RawVideo, "raw video, yuv420p, with the capture times of the packets")],
    params: PARAMS,
    rules,
    host_checks: no_rules,
    value_rule: no_value_rule,
    inputs_rule: no_inputs_rule,
    format: None,
    hosted: false,
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::testing::assert_settings_parse;

    #[test]
    fn settings_from_defaults() {
        assert_settings_parse(&SPEC, Settings::from_params);
    }
}
