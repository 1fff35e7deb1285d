//! `mediagraph-nodes video-encode`: encodes raw video to H.264, H.265, VP9 or AV1.
//!
//! The encoder opens on the first frame (its size and rate decide the stream),
//! with time base 1/fps and global headers, so every packet carries the full
//! stream parameters, extradata included. See [`settings`] for how `quality`,
//! `speed`, `crf` and `bitrate` map to each encoder. Metrics: `bitrate_bps`
//! (average so far), `keyframes`, `overloaded_pct` (share of input frames
//! skipped in the last second), `degrade_steps` (presets below the configured
//! one), `preset_switches`, `delay_frames` / `delay_s` (the most frames the
//! encoder held before their packet came out: lookahead, B-frames, threads). See [`overload`] for `degrade`.

mod encoder;
mod hw;
mod overload;
mod probe;
mod retune;
mod settings;

use std::time::Instant;

use anyhow::{bail, Context, Result};
use node_api::{metrics, Event, Header, Node};

use crate::encoder::VideoEncoder;
use crate::overload::{Advice, Monitor};
use crate::settings::{CodecExt, Settings};

/// Entry point, with the arguments after the kind: `--list-devices` lists
/// the hardware encoders this machine can use (for `runtime devices`).
pub fn main(args: &[String]) {
    // Before Node::init(), which needs the runtime's environment.
    if args.iter().any(|a| a == "--list-devices") {
        node_api::run_main(probe::list_devices);
    } else {
        node_api::run_main(run);
    }
}

fn run() -> Result<()> {
    let mut node = Node::init()?;
    node_media::init()?;
    let mut settings = Settings::from_params(node.params())?;
    // No output pool: packets are copied into their messages (`send_packet`),
    // so none of this node's memory is locked for them.
    let mut encoder: Option<VideoEncoder> = None;
    // The settings in force: `settings` one or more presets faster when degraded.
    let mut current = settings.clone();
    let mut monitor = Monitor::new(Instant::now());
    let mut switches = 0u32;
    // A keyframe asked for before the first frame opened the encoder: sync
    // asks for one at an instant ahead, which a frame captured earlier
    // (and so the encoder's own first keyframe) does not meet.
    let mut keyframe_pending: Option<u64> = None;

    while let Some(event) = node.next_event()? {
        match event {
            Event::Input { input, message } => {
                let Header::Video(frame) = &message.header else {
                    bail!("input `{input}` carries something other than raw video");
                };
                if encoder.is_none() {
                    let enc = VideoEncoder::open(&settings, frame).with_context(|| {
                        format!("opening the {} encoder", settings.codec.stream_name())
                    })?;
                    if settings.degrade && !enc.can_switch() {
                        tracing::warn!(
                            "degrade: {} cannot change its preset mid-stream; ignored",
                            enc.name
                        );
                    }
                    encoder = Some(enc);
                }
                if let (Some(at_ns), Some(enc)) = (keyframe_pending.take(), encoder.as_mut()) {
                    enc.keyframe_from(at_ns);
                }
                let enc = encoder.as_mut().expect("opened above");
                let data = message.payload.as_slice();
                enc.encode(frame, &data, &mut |packet, bytes| {
                    send(&mut node, packet, bytes)
                })?;
                publish(&node, enc);
                let now = Instant::now();
                if monitor.wants_sample(now) {
                    let stats = node.stats();
                    let Some(queue) = stats.inputs.get(&input) else {
                        continue;
                    };
                    let degrade = settings.degrade && !node.is_no_drop() && enc.can_switch();
                    let degraded = current.headers_of.is_some();
                    let Some((window, advice)) = monitor.sample(queue, now, degrade, degraded)
                    else {
                        continue;
                    };
                    node.metrics()
                        .set(metrics::OVERLOADED_PCT, window.skipped_pct);
                    if window.skipped > 0 && monitor.warning_due(now) {
                        tracing::warn!(
                            "encoding overloaded: {:.0}% of frames skipped in the last second ({} of {}; input queue {}/{}); {}",
                            window.skipped_pct,
                            window.skipped,
                            window.arrived,
                            window.max_depth,
                            window.capacity,
                            if degrade { "degrading to a faster preset" } else { "lower the size, rate or quality, or set degrade: true" }
                        );
                    }
                    let next = match advice {
                        Advice::Keep => None,
                        Advice::Faster => current.faster(),
                        Advice::Slower => current.slower(),
                    };
                    if let Some(next) = next {
                        let from = enc.speed_name;
                        if enc.switch_settings(&next, &mut |packet, bytes| {
                            send(&mut node, packet, bytes)
                        })? {
                            switches += 1;
                            tracing::warn!(
                                "degrade: {} {from} -> {} ({})",
                                enc.name,
                                next.speed.name(),
                                if advice == Advice::Faster {
                                    "input queue stays full"
                                } else {
                                    "recovered"
                                }
                            );
                            current = next;
                            node.metrics()
                                .set(metrics::PRESET_SWITCHES, switches as f64);
                            node.metrics().set(
                                metrics::DEGRADE_STEPS,
                                settings.speed.rank_distance(current.speed) as f64,
                            );
                        }
                        monitor.switched(now);
                    }
                }
            }
            Event::InputClosed { .. } => break,
            // A recording starts or splits here, or sync starts every
            // camera's track here: the frame captured then (not the one
            // being encoded now) must start a GOP.
            Event::ParamUpdate { name, at_ns, .. } if name == "keyframe" => {
                match encoder.as_mut() {
                    Some(enc) => enc.keyframe_from(at_ns),
                    None => keyframe_pending = Some(at_ns),
                }
            }
            // `crf` or `bitrate`: the params already follow the update.
            Event::ParamUpdate { name, .. } => {
                let wanted = Settings::from_params(node.params())?;
                let outcome = match encoder.as_mut() {
                    Some(enc) => enc.retune(wanted.rate),
                    None => Ok("before the first frame: the encoder opens with it".into()),
                };
                match outcome {
                    Ok(done) => {
                        tracing::info!("{name} changed: {done}");
                        settings.rate = wanted.rate;
                        current.rate = wanted.rate;
                    }
                    Err(why) => tracing::warn!("{name} not changed: {why}"),
                }
            }
            // Drain until upstream closes.
            Event::Stop => {}
        }
    }
    if let Some(enc) = encoder.as_mut() {
        enc.finish(&mut |packet, bytes| send(&mut node, packet, bytes))?;
        publish(&node, enc);
        let s = enc.stats();
        tracing::info!(
            "{}: {} packets ({} keyframes), {:.0} kb/s average",
            enc.name,
            s.packets,
            s.keyframes,
            s.bitrate_bps(enc.time_base()) / 1000.0
        );
    } else {
        tracing::info!("no frames to encode");
    }
    node.finish()
}

fn send(node: &mut Node, packet: node_api::EncodedPacket, bytes: &[u8]) -> Result<()> {
    node.send_packet("video", packet, bytes)
}

fn publish(node: &Node, enc: &VideoEncoder) {
    let s = enc.stats();
    node.metrics()
        .set(metrics::BITRATE_BPS, s.bitrate_bps(enc.time_base()));
    node.metrics().set(metrics::KEYFRAMES, s.keyframes as f64);
    let delay = enc.delay_frames();
    node.metrics().set(metrics::DELAY_FRAMES, delay as f64);
    node.metrics()
        .set(metrics::DELAY_S, enc.time_base().seconds(delay as i64));
}
