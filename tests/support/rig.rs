//! The test rig of the distributed tests: two cameras on hosts `a` and `b`
//! ([`crate::netns::Hosts`]), sync, an encoder per camera and the mux on
//! host `c`, as a graph file.

use std::path::PathBuf;

use crate::netns::{hub_addr, spoke_addr};
use crate::Scratch;

/// The endpoints of the three hosts: a and b dial c over their veth links.
pub fn hosts_network() -> String {
    format!(
        r#"network:
  a: {{ listen: ["tcp/{a}:7447"], connect: ["tcp/{ca}:7447"] }}
  b: {{ listen: ["tcp/{b}:7447"], connect: ["tcp/{cb}:7447"] }}
  c: {{ listen: ["tcp/{ca}:7447", "tcp/{cb}:7447"] }}
"#,
        a = spoke_addr(1),
        b = spoke_addr(2),
        ca = hub_addr(1),
        cb = hub_addr(2),
    )
}

/// A rig of two cameras (hosts a and b) recorded on host c.
pub struct Rig<'a> {
    pub width: u32,
    pub height: u32,
    /// Added to both cameras' params.
    pub camera_extra: &'a str,
    /// The graph's top-level `link:` line, if any.
    pub link: &'a str,
    /// The recorder's encoder params.
    pub encoder: &'a str,
    /// The test patterns of cameras a and b.
    pub patterns: [&'a str; 2],
}

impl Default for Rig<'_> {
    fn default() -> Self {
        Rig {
            width: 320,
            height: 240,
            camera_extra: "",
            link: "",
            encoder: "codec: h264, quality: fast",
            patterns: ["bars", "clapper"],
        }
    }
}

/// The rig's graph file and the file it records.
pub fn rig(s: &Scratch, network: &str, r: &Rig) -> (PathBuf, PathBuf) {
    let out = s.path("out.mkv");
    let camera = |id: &str, machine: &str, pattern: &str| {
        format!(
            "  - id: {id}\n    node: camera\n    deploy: {{ machine: {machine} }}\n    params: {{ source: test, width: {w}, height: {h}, fps: 30, pattern: {pattern}{extra} }}\n",
            w = r.width,
            h = r.height,
            extra = r.camera_extra,
        )
    };
    let yaml = format!(
        r#"name: three-hosts
{network}{link}nodes:
{cam_a}{cam_b}  - id: sync
    node: sync
    deploy: {{ machine: c }}
    inputs: {{ video: cam-a/video, video2: cam-b/video }}
  - id: encode-a
    node: video-encode
    deploy: {{ machine: c }}
    inputs: {{ video: sync/video }}
    params: {{ {encoder} }}
  - id: encode-b
    node: video-encode
    deploy: {{ machine: c }}
    inputs: {{ video: sync/video2 }}
    params: {{ {encoder} }}
  - id: mux
    node: mux
    deploy: {{ machine: c }}
    inputs: {{ cam-a: encode-a/video, cam-b: encode-b/video }}
    params: {{ path: "{out}" }}
"#,
        link = r.link,
        encoder = r.encoder,
        cam_a = camera("cam-a", "a", r.patterns[0]),
        cam_b = camera("cam-b", "b", r.patterns[1]),
        out = out.display(),
    );
    (s.graph("three-hosts.yaml", &yaml), out)
}
