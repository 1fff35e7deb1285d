//! The event loop every live output shares (`stream`, `hls`): packets in,
//! copied into the output's own queue, stats out.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use node_api::{metrics, Event, Header, NoRestart, Node};
use node_catalog::Format;

use crate::link::LinkStats;
use crate::outlet::{Opener, Outlet, Policy};
use crate::tracks::{Packet, Tracks};

/// How often the metrics are refreshed.
const PUBLISH_EVERY: Duration = Duration::from_millis(500);
/// How long the end waits for what is still queued to go out.
const DRAIN_LIMIT: Duration = Duration::from_secs(10);

/// Runs the output until every input has ended; its final stats.
pub fn serve(
    mut node: Node,
    format: Format,
    opener: impl Opener,
    policy: Policy,
) -> Result<LinkStats> {
    let inputs = node.input_names();
    if inputs.is_empty() {
        bail!("no inputs: connect at least one encoded track");
    }
    let shown = opener.shown().to_string();
    let mut tracks = Tracks::new(inputs);
    let outlet = Outlet::start(opener, policy);
    let mut last_publish = Instant::now();
    let started = Instant::now();
    loop {
        match node.poll_event(PUBLISH_EVERY)? {
            Some(Event::Input { input, message }) => {
                let Header::Packet(header) = message.header else {
                    if matches!(message.header, Header::Video(_) | Header::Audio(_)) {
                        bail!("input `{input}` carries raw media: put an encoder before it");
                    }
                    continue;
                };
                let track = tracks.index(&input)?;
                let was_ready = tracks.ready();
                let changed = tracks.note(track, &header);
                if !was_ready || changed {
                    check_codec(format, &tracks, &input, &header.codec)?;
                    if tracks.ready() {
                        let params = tracks.params().into_iter().cloned().collect();
                        outlet.set_params(params, tracks.has_video());
                    }
                }
                let data = message.payload.as_slice().to_vec().into();
                outlet.push(Packet {
                    track,
                    header,
                    data,
                });
            }
            Some(Event::InputClosed { .. } | Event::Stop | Event::ParamUpdate { .. }) => {}
            None if node.is_finished() => break,
            None => {}
        }
        if last_publish.elapsed() >= PUBLISH_EVERY {
            last_publish = Instant::now();
            publish(&node, &tracks, &outlet.stats(), outlet.depth().1, started);
        }
    }
    let stats = outlet.close(DRAIN_LIMIT);
    publish(&node, &tracks, &stats, 0.0, started);
    tracing::info!(
        "{shown}: sent {} packets ({:.1} MB); {} dropped ({:.2} s of media), {} reconnections, {:.1} s down",
        stats.sent_packets,
        stats.sent_bytes as f64 / 1e6,
        stats.dropped,
        stats.lost_s(),
        stats.reconnects(),
        stats.outage_total_s()
    );
    node.finish()?;
    Ok(stats)
}

/// The output's container must carry the track's codec, and FLV one video
/// and one audio track at most (`runtime check` says so before the start
/// when it knows the encoders).
fn check_codec(format: Format, tracks: &Tracks, input: &str, codec: &str) -> Result<()> {
    if !format.accepts(codec) {
        return Err(NoRestart(format!(
            "{codec} (input `{input}`) cannot go in {format} ({format} takes {})",
            format.codecs().join(", ")
        ))
        .into());
    }
    let (video, audio) = tracks.counts();
    if format == Format::Flv && (video > 1 || audio > 1) {
        return Err(NoRestart(format!(
            "FLV carries one video and one audio track; this stream has {video} and {audio}"
        ))
        .into());
    }
    Ok(())
}

fn publish(node: &Node, tracks: &Tracks, stats: &LinkStats, queue_s: f64, started: Instant) {
    let m = node.metrics();
    m.set(metrics::CONNECTED, f64::from(stats.connected));
    m.set(metrics::RECONNECTS, stats.reconnects() as f64);
    m.set(metrics::OUTAGE_S, stats.outage_total_s());
    m.set(metrics::DROPPED, stats.dropped as f64);
    m.set(metrics::LOST_S, stats.lost_s());
    m.set(metrics::QUEUE_S, queue_s);
    m.set(metrics::BYTES_WRITTEN, stats.sent_bytes as f64);
    let seconds = started.elapsed().as_secs_f64();
    if seconds > 0.0 {
        m.set(
            metrics::BITRATE_BPS,
            stats.sent_bytes as f64 * 8.0 / seconds,
        );
    }
    for (input, latency) in tracks.inputs.iter().zip(&stats.latency) {
        if let Some(p50) = latency.quantile_ms(0.5) {
            m.set(&metrics::per_input(metrics::LATENCY_P50_MS, input), p50);
        }
        if let Some(p99) = latency.quantile_ms(0.99) {
            m.set(&metrics::per_input(metrics::LATENCY_P99_MS, input), p99);
        }
    }
}
