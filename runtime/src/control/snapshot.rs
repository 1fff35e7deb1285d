//! `GET /api/snapshot`: the latest frame of a raw-video output as a small
//! JPEG, taken without slowing the graph.
//!
//! The runtime is no consumer of the output: it subscribes to the output's
//! data key only while a snapshot waits for a frame, and drops the
//! subscription with the first whole frame. Its session has no shared
//! memory, so the producer's transport copies each frame sent to it (while
//! the producer still holds the buffer: the copy is never torn) and the
//! runtime holds none of the producer's buffers, so its pool never waits
//! for the runtime. What a snapshot costs the producer is that copy, for
//! the frame or two sent while the subscription lives. Scaling and
//! encoding happen afterwards on a blocking thread of the runtime.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, Result};
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use node_api::{header_of_attachment, keys, Header, VideoFrame};
use node_catalog::PortType;
use tokio::sync::oneshot;
use zenoh::sample::Sample;

use super::jpeg;
use super::routes::{Api, ApiError};
use crate::graph::Graph;
use crate::run::Tap;

/// How long a snapshot waits for a frame (a stream at 1 fps still gives one).
const FRAME_WAIT: Duration = Duration::from_secs(2);

/// The width when none is asked for.
pub const DEFAULT_WIDTH: u32 = 320;

/// The output a snapshot is of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub node: String,
    pub output: String,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.node, self.output)
    }
}

/// Which output `node` and `output` name: by default the program feed
/// (the raw video an encoder takes in), else the graph's first raw-video
/// output; a node alone means its first raw-video output. A port of a custom
/// node (type unknown) is taken at its word.
pub fn resolve(graph: &Graph, node: Option<&str>, output: Option<&str>) -> Result<Source, String> {
    let raw = |ty: PortType| matches!(ty, PortType::RawVideo | PortType::Any);
    let source = |node: &str, output: &str| Source {
        node: node.into(),
        output: output.into(),
    };
    let Some(id) = node else {
        if output.is_some() {
            return Err("`output` needs `node`".into());
        }
        return program_feed(graph)
            .or_else(|| {
                let n = graph
                    .nodes
                    .iter()
                    .find(|n| n.outputs.iter().any(|o| o.ty == PortType::RawVideo))?;
                let o = n.outputs.iter().find(|o| o.ty == PortType::RawVideo)?;
                Some(source(&n.id, &o.name))
            })
            .ok_or_else(|| "the graph has no raw-video output".into());
    };
    let def = graph
        .nodes
        .iter()
        .find(|n| n.id == id)
        .ok_or_else(|| format!("no node `{id}` in the graph"))?;
    let port = match output {
        Some(name) => def
            .outputs
            .iter()
            .find(|o| o.name == name)
            .ok_or_else(|| format!("node `{id}` has no output `{name}`"))?,
        None => def
            .outputs
            .iter()
            .find(|o| raw(o.ty))
            .ok_or_else(|| format!("node `{id}` has no raw-video output"))?,
    };
    if !raw(port.ty) {
        return Err(format!(
            "`{id}/{}` is {}, not raw video",
            port.name,
            port.ty.name()
        ));
    }
    Ok(source(id, &port.name))
}

/// The raw video the first encoder of the graph takes in.
fn program_feed(graph: &Graph) -> Option<Source> {
    let encoder = graph
        .nodes
        .iter()
        .find(|n| n.outputs.iter().any(|o| o.ty == PortType::EncodedVideo))?;
    let input = encoder.inputs.iter().find(|i| i.ty == PortType::RawVideo)?;
    Some(Source {
        node: input.source_node.clone(),
        output: input.source_output.clone(),
    })
}

/// The width asked for: [`DEFAULT_WIDTH`] when absent.
pub fn parse_width(given: Option<&str>) -> Result<u32, String> {
    let Some(text) = given else {
        return Ok(DEFAULT_WIDTH);
    };
    let range = jpeg::MIN_WIDTH..=jpeg::MAX_WIDTH;
    match text.parse::<u32>() {
        Ok(w) if range.contains(&w) => Ok(w),
        _ => Err(format!(
            "width `{text}`: a number of pixels from {} to {}",
            range.start(),
            range.end()
        )),
    }
}

/// One frame of `source` as it is sent: its header and a copy of its bytes.
type Frame = (VideoFrame, Vec<u8>);

/// Waits up to `wait` for the next whole frame `source` sends.
async fn next_frame(tap: &Tap, source: &Source, wait: Duration) -> Result<Option<Frame>> {
    let (tx, rx) = oneshot::channel();
    let slot = Arc::new(Mutex::new(Some(tx)));
    let taken = slot.clone();
    let key = keys::data(&tap.run_id, &source.node, &source.output);
    let subscriber = tap
        .session
        .declare_subscriber(key)
        .callback(move |sample| {
            // Once a frame is taken, the rest are ignored until the
            // subscription is gone: no copy, no wait.
            let mut slot = taken.lock().unwrap();
            if slot.is_some() {
                if let Some(frame) = copy_frame(&sample) {
                    let _ = slot.take().map(|tx| tx.send(frame));
                }
            }
        })
        .await
        .map_err(|e| anyhow!("subscribing to {source}: {e}"))?;
    let frame = tokio::time::timeout(wait, rx)
        .await
        .ok()
        .and_then(|r| r.ok());
    subscriber
        .undeclare()
        .await
        .map_err(|e| anyhow!("unsubscribing from {source}: {e}"))?;
    Ok(frame)
}

/// The frame a sample carries, copied out; `None` if it is not a whole raw
/// video frame (an end of stream, a payload shorter than its header says).
fn copy_frame(sample: &Sample) -> Option<Frame> {
    let Some(Header::Video(frame)) = header_of_attachment(&sample.attachment()?.to_bytes()) else {
        return None;
    };
    let bytes = sample.payload().to_bytes().into_owned();
    // Shared memory (should the session ever map it) whose watchdog expired
    // may have been reused under the copy: better the next frame.
    if let Some(shm) = sample.payload().as_shm() {
        use zenoh::shm::ShmBuf;
        if !shm.is_valid() {
            return None;
        }
    }
    // The helper checks that the payload holds the frame's planes.
    Some((frame, bytes))
}

/// `GET /api/snapshot?node=N&output=O&width=W`.
pub async fn handler(
    State(api): State<Api>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let arg = |name: &str| query.get(name).map(String::as_str);
    let bad = |why: String| ApiError::new(StatusCode::BAD_REQUEST, why);
    let source = resolve(&api.control.graph, arg("node"), arg("output")).map_err(bad)?;
    let width = parse_width(arg("width")).map_err(bad)?;
    let unavailable = |why: String| {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, why).with("source", source.to_string())
    };
    let tap = api
        .control
        .stop
        .tap()
        .ok_or_else(|| unavailable(format!("{source}: the graph is not running")))?;
    let frame = next_frame(&tap, &source, FRAME_WAIT)
        .await
        .map_err(|e| unavailable(format!("{e:#}")))?;
    let Some((frame, data)) = frame else {
        let why = format!("no frame from {source} within {} s", FRAME_WAIT.as_secs());
        return Err(
            ApiError::new(StatusCode::GATEWAY_TIMEOUT, why).with("source", source.to_string())
        );
    };
    let jpeg = api.control.jpeg.encode(&frame, &data, width).await;
    let jpeg = jpeg.map_err(|e| bad(format!("{source}: {e:#}")))?;
    let headers = [
        (header::CONTENT_TYPE, "image/jpeg"),
        (header::CACHE_CONTROL, "no-store"),
    ];
    Ok((headers, jpeg).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph() -> Graph {
        crate::run::shipped_graph("1080p.yaml")
    }

    fn source(node: &str, output: &str) -> Source {
        Source {
            node: node.into(),
            output: output.into(),
        }
    }

    #[test]
    fn the_default_is_the_program_feed() {
        let g = graph();
        assert_eq!(resolve(&g, None, None), Ok(source("sync", "video")));
        assert_eq!(
            resolve(&g, Some("camera"), None),
            Ok(source("camera", "video"))
        );
        assert_eq!(
            resolve(&g, Some("video-normalize"), Some("video")),
            Ok(source("video-normalize", "video"))
        );
    }

    #[test]
    fn what_is_not_raw_video_is_named() {
        let g = graph();
        let err = |node, output| resolve(&g, node, output).unwrap_err();
        assert_eq!(
            err(Some("video-encode"), Some("video")),
            "`video-encode/video` is encoded-video, not raw video"
        );
        assert_eq!(
            err(Some("microphone"), None),
            "node `microphone` has no raw-video output"
        );
        assert_eq!(err(Some("nope"), None), "no node `nope` in the graph");
        assert_eq!(
            err(Some("camera"), Some("audio")),
            "node `camera` has no output `audio`"
        );
        assert_eq!(err(None, Some("video")), "`output` needs `node`");
    }

    #[test]
    fn widths() {
        assert_eq!(parse_width(None), Ok(DEFAULT_WIDTH));
        assert_eq!(parse_width(Some("640")), Ok(640));
        assert!(parse_width(Some("8"))
            .unwrap_err()
            .contains("from 16 to 3840"));
        assert!(parse_width(Some("wide")).is_err());
        assert!(parse_width(Some("99999")).is_err());
    }
}
