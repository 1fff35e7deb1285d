//! The control API's snapshots: the runtime, which links no codec library,
//! asks a helper process (`mediagraph-nodes --jpeg-server`, kept for the
//! run) for the JPEG of a frame. One request is a JSON line of
//! [`JpegRequest`] followed by its `len` payload bytes; one answer is a JSON
//! line of [`JpegReply`] followed, for a JPEG, by its `len` bytes.

use serde::{Deserialize, Serialize};

use crate::VideoFrame;

/// The flag that makes `mediagraph-nodes` the snapshot helper.
pub const JPEG_SERVER_FLAG: &str = "--jpeg-server";

/// A frame to make into a JPEG `width` pixels wide.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JpegRequest {
    pub frame: VideoFrame,
    pub width: u32,
    /// Bytes of the frame's payload that follow the line.
    pub len: usize,
}

/// The helper's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum JpegReply {
    /// A JPEG of `len` bytes follows the line.
    Jpeg { len: usize },
    /// Why the frame could not be made into a JPEG.
    Error(String),
}
