//! `mediagraph-nodes audio-encode`: encodes raw audio to AAC (FFmpeg's native encoder),
//! Opus (libopus) or MP3 (libmp3lame). Packets carry the codec params
//! (extradata, encoder delay) the muxer needs, pts in 1/sample_rate with the
//! encoder delay before zero, and the capture time of their first sample.

mod encoder;
mod preset;

use anyhow::{Context, Result};
use node_api::{metrics, Event, Header, Node};

use encoder::{AudioEncoder, Settings};

/// Entry point, with the arguments after the kind (none are taken).
pub fn main(_args: &[String]) {
    node_api::run_main(run);
}

fn run() -> Result<()> {
    let mut node = Node::init()?;
    node_media::init()?;
    let s = node_catalog::kinds::audio_encode::Settings::from_params(node.params())?;
    let codec = s.codec;
    let settings = Settings {
        codec,
        bitrate: s.effective_bitrate(),
    };
    // No output pool: packets are copied into their messages (`send_packet`).

    let mut encoder: Option<AudioEncoder> = None;
    let mut warned = false;
    let mut last_metric_bytes = 0u64;
    while let Some(event) = node.next_event()? {
        match event {
            Event::Input { input, message } => {
                let Header::Audio(h) = &message.header else {
                    if !warned {
                        tracing::warn!("ignoring a non-audio message on input `{input}`");
                        warned = true;
                    }
                    continue;
                };
                if h.samples == 0 {
                    continue;
                }
                let data = message.payload.as_slice();
                if encoder.is_none() {
                    encoder = Some(AudioEncoder::open(&settings, h).context("audio-encode")?);
                }
                let enc = encoder.as_mut().expect("just opened");
                node.metrics().add(metrics::SAMPLES_IN, h.samples as f64);
                enc.push(h, &data, &mut |packet, bytes| {
                    node.send_packet("audio", packet, bytes)
                })?;
                let (_, bytes, _) = enc.totals();
                if bytes - last_metric_bytes >= 16 * 1024 {
                    node.metrics().set(metrics::BITRATE_BPS, enc.bitrate_bps());
                    last_metric_bytes = bytes;
                }
            }
            // No param is mutable: the node API keeps updates from reaching the node.
            Event::InputClosed { .. } | Event::Stop | Event::ParamUpdate { .. } => {}
        }
    }
    match encoder.as_mut() {
        Some(enc) => {
            enc.finish(&mut |packet, bytes| node.send_packet("audio", packet, bytes))?;
            node.metrics().set(metrics::BITRATE_BPS, enc.bitrate_bps());
            let (packets, bytes, padded) = enc.totals();
            tracing::info!(
                "{codec}: {packets} packets, {bytes} bytes, {:.1} kb/s{}",
                enc.bitrate_bps() / 1000.0,
                if padded > 0 {
                    format!(", last frame padded with {padded} samples")
                } else {
                    String::new()
                }
            );
        }
        None => tracing::info!("{codec}: no audio received"),
    }
    node.finish()
}
