//! Helpers for the unit tests of every phase: a graph from text, its single error.

use std::collections::BTreeMap;
use std::path::Path;

use crate::graph::{load_str, Diagnostics, Graph};

pub(super) fn check(text: &str) -> Result<Graph, Diagnostics> {
    load_str(text, Path::new("t.yaml"), &[], &BTreeMap::new())
}

/// The single error of `text`, as `line:col field: message`.
#[track_caller]
pub(super) fn error(text: &str) -> String {
    let diags = check(text).expect_err("should not validate");
    assert_eq!(diags.len(), 1, "{diags}");
    let d = &diags.0[0];
    format!("{}:{} {}: {}", d.line, d.col, d.field, d.message)
}

const CHAIN: &str = "  - id: enc\n    node: video-encode\n    inputs: {video: cam/video}\n  - id: mux\n    node: mux\n    inputs: {video: enc/video}\n    params: {path: a.mkv}\n";

/// A camera (with `camera_extra` lines), an encoder and a mux.
pub(super) fn with_camera(camera_extra: &str) -> String {
    format!("nodes:\n  - id: cam\n    node: camera\n{camera_extra}{CHAIN}")
}
