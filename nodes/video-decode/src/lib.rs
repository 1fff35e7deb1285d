//! `mediagraph-nodes video-decode`: encoded video packets back to raw
//! yuv420p frames, each stamped with its packet's capture time, pts and
//! duration, so what follows (sync, an encoder) sees the frames the sender's
//! side had. The runtime inserts one at the receiving end of every
//! compressed link between machines.
//!
//! Pictures are copied once, from the decoder's frame into the output's
//! shared memory. Metrics: `decoded`, `corrupt` (packets the decoder refused:
//! their pictures are lost, and counted as such by the frames that follow).

mod decoder;

use anyhow::{bail, Context, Result};
use node_api::{metrics, Event, Header, MediaKind, Node};

use crate::decoder::PacketDecoder;

/// Entry point, with the arguments after the kind (none are taken).
pub fn main(_args: &[String]) {
    node_api::run_main(run);
}

fn run() -> Result<()> {
    let mut node = Node::init()?;
    node_media::init()?;
    let settings = node_catalog::kinds::video_decode::Settings::from_params(node.params())?;
    let mut decoder: Option<PacketDecoder> = None;
    while let Some(event) = node.next_event()? {
        match event {
            Event::Input { input, message } => {
                let Header::Packet(packet) = &message.header else {
                    bail!("input `{input}` carries something other than encoded packets");
                };
                if packet.media != MediaKind::Video {
                    bail!(
                        "input `{input}` carries {} packets, not video",
                        packet.codec
                    );
                }
                // A restarted sender may come back with other stream
                // parameters: the old stream's pictures go out first.
                if decoder.as_ref().is_some_and(|d| !d.decodes(packet)) {
                    if let Some(mut old) = decoder.take() {
                        old.finish(&mut node)?;
                    }
                }
                if decoder.is_none() {
                    let d = PacketDecoder::open(packet, settings.threads)
                        .with_context(|| format!("opening the {} decoder", packet.codec))?;
                    tracing::info!(
                        "decoding {} {}x{}",
                        packet.codec,
                        packet.params.width,
                        packet.params.height
                    );
                    decoder = Some(d);
                }
                let d = decoder.as_mut().expect("opened above");
                d.decode(&mut node, packet, &message.payload.as_slice())?;
            }
            Event::InputClosed { .. } => break,
            Event::Stop | Event::ParamUpdate { .. } => {}
        }
    }
    if let Some(mut d) = decoder {
        d.finish(&mut node)?;
        tracing::info!(
            "{} pictures decoded, {} packets refused",
            d.decoded,
            d.corrupt
        );
    }
    node.finish()
}

/// Publishes the decoder's counters.
fn publish(node: &mut Node, d: &PacketDecoder) {
    node.metrics().set(metrics::DECODED, d.decoded as f64);
    node.metrics().set(metrics::CORRUPT, d.corrupt as f64);
}
