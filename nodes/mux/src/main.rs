//! `node-mux`: writes any number of encoded video and audio tracks into one
//! MP4, MKV or WebM file, one stream per input in the graph's order.

mod latency;
mod muxer;
mod output;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use node_api::{clock, Event, Header, Node};

use muxer::Muxer;

/// How often the metrics are refreshed.
const PUBLISH_EVERY: Duration = Duration::from_millis(500);

fn main() {
    node_api::run_main(run);
}

fn run() -> Result<()> {
    node_media::init()?;
    let mut node = Node::init()?;
    let p = node.params();
    let path_text = p.str_or("path", "").to_string();
    let container = output::container(p.str_or("container", "auto"), &path_text)?;
    let path = PathBuf::from(&path_text);
    let overwrite = p.bool_or("overwrite", false);
    // Refused before the graph starts, not after a recording.
    output::check_path(&path, overwrite)?;
    let inputs: Vec<String> = node
        .config()
        .inputs
        .iter()
        .map(|i| i.name.clone())
        .collect();
    if inputs.is_empty() {
        bail!("the mux has no inputs: connect at least one encoded track");
    }
    let mut mux = Muxer::new(
        path,
        container,
        p.bool_or("faststart", true),
        overwrite,
        &inputs,
    );
    tracing::info!(
        "mux to {path_text} ({container}): tracks {}",
        inputs.join(", ")
    );

    let mut last_publish = Instant::now();
    while let Some(event) = node.next_event()? {
        match event {
            Event::Input { input, message } => match message.header {
                Header::Packet(header) => {
                    let data = message.payload.as_slice();
                    if matches!(data, std::borrow::Cow::Owned(_)) {
                        node.count_copy(&input);
                    }
                    mux.packet(&input, header, &data, clock::now_ns())?;
                }
                Header::Video(_) | Header::Audio(_) => {
                    bail!("input `{input}` carries raw media: the mux takes encoded packets (put an encoder before it)")
                }
                Header::Stats(_) | Header::EndOfStream => {}
            },
            Event::InputClosed { input } => mux.close_input(&input)?,
            Event::Stop | Event::ParamUpdate { .. } => {}
        }
        if last_publish.elapsed() >= PUBLISH_EVERY {
            last_publish = Instant::now();
            publish(&node, &mux, mux.file_size());
        }
    }
    let line = mux.finish()?;
    publish(&node, &mux, mux.file_size());
    tracing::info!("{line}");
    node.finish()
}

fn publish(node: &Node, mux: &Muxer, file_size: u64) {
    let m = node.metrics();
    m.set("bytes_written", file_size as f64);
    let duration = mux.duration();
    if duration > 0.0 {
        m.set("bitrate_bps", mux.payload_bytes() as f64 * 8.0 / duration);
    }
    m.set("dropped", mux.dropped as f64);
    for t in &mux.tracks {
        m.set(&t.metric_packets, t.packets as f64);
        if let Some(p50) = t.latency.quantile_ms(0.5) {
            m.set(&t.metric_p50, p50);
        }
        if let Some(p99) = t.latency.quantile_ms(0.99) {
            m.set(&t.metric_p99, p99);
        }
    }
}
