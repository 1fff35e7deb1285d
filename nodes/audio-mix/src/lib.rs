//! `mediagraph-nodes audio-mix`: mixes its raw-audio inputs (any names, up
//! to 8) by capture time into one output, `audio`, with a gain, mute and
//! pan per input (live), and a level meter per input and for the mix.

mod lane;
mod mixer;
#[cfg(test)]
mod tests;

use anyhow::{Context, Result};
use node_api::{metrics, AudioFrame, Event, Header, Node, TimeBase};
use node_catalog::kinds::audio_mix::Settings;
use node_media::audio::{default_layout, LevelMeter, WireFormat};
use serde_json::Value;

use lane::LaneState;
use mixer::{db_to_gain, Mixer};

/// Entry point, with the arguments after the kind (none are taken).
pub fn main(_args: &[String]) {
    node_api::run_main(run);
}

/// A replayed input this far (seconds) ahead of the mix is held back (its
/// queue fills and its sender waits), so one fast file cannot make the
/// mixer buffer the whole of it while another input is slow.
const MAX_AHEAD_S: u64 = 2;

/// The output side: format, meter and counters.
struct Out {
    wire: WireFormat,
    layout: u64,
    meter: LevelMeter,
    gap_fills: u64,
    overlap_trims: u64,
    late: u64,
}

/// Applies the gain, mute and pan of `s` to every input.
fn apply(mixer: &mut Mixer, s: &Settings) {
    for lane in &mut mixer.lanes {
        lane.gain = db_to_gain(s.gain_of(&lane.name));
        lane.muted = s.is_muted(&lane.name);
        lane.pan = s.pan_of(&lane.name) as f32;
    }
}

/// A live change of `gain_db`, `mute` or `pan` (already in the node's
/// params, checked): the whole mapping (list) replaces the previous one.
fn update(node: &Node, mixer: &mut Mixer, name: &str, value: &Value) {
    match Settings::from_params(node.params()) {
        Ok(s) => {
            apply(mixer, &s);
            tracing::info!("{name} = {value}");
        }
        Err(e) => tracing::warn!("{name} not changed: {e}"),
    }
}

/// Sends every block the mix can make now.
fn drain(node: &mut Node, mixer: &mut Mixer, out: &mut Out) -> Result<()> {
    let live = !node.is_no_drop();
    while let Some(block) = mixer.next_block(live) {
        let samples = mixer.mixed();
        let bytes = samples.len() * out.wire.bytes_per_sample();
        let mut buf = node.alloc("audio", bytes)?;
        out.wire.write_f32(samples, &mut buf);
        let header = AudioFrame {
            format: out.wire.format,
            sample_rate: mixer.rate,
            channels: mixer.channels,
            channel_layout: out.layout,
            samples: block.samples as u32,
            pts: block.pos as i64,
            time_base: TimeBase::new(1, mixer.rate as i32),
            capture_ns: block.capture_ns,
        };
        if let Some(level) = out.meter.add_f32(samples, block.samples, mixer.rate) {
            publish(node, mixer, out, level);
        }
        node.send_audio("audio", header, buf)?;
    }
    Ok(())
}

/// The meters and counters, every half second of mixed audio.
fn publish(node: &Node, mixer: &mut Mixer, out: &Out, level: node_media::audio::Level) {
    let m = node.metrics();
    m.set(metrics::LEVEL_PEAK_DBFS, level.peak_dbfs);
    m.set(metrics::LEVEL_RMS_DBFS, level.rms_dbfs);
    for lane in &mut mixer.lanes {
        if let Some(l) = lane.last_level.take() {
            m.set(&lane.peak_metric, l.peak_dbfs);
            m.set(&lane.rms_metric, l.rms_dbfs);
        }
    }
    m.set(metrics::AUDIO_GAP_FILLS, out.gap_fills as f64);
    m.set(metrics::AUDIO_OVERLAP_TRIMS, out.overlap_trims as f64);
    m.set(metrics::DROPPED, out.late as f64);
}

/// Replayed inputs: holds back the ones far ahead of the mix, lets the
/// others go. The input the mix waits for is never ahead, so never held.
fn pace(node: &Node, mixer: &Mixer, paused: &mut [bool]) {
    if !node.is_no_drop() {
        return;
    }
    let limit = mixer.rate as u64 * MAX_AHEAD_S;
    for (i, lane) in mixer.lanes.iter().enumerate() {
        let ahead = mixer.ahead(i) > limit;
        if ahead != paused[i] {
            match ahead {
                true => node.pause_input(&lane.name),
                false => node.resume_input(&lane.name),
            }
            paused[i] = ahead;
        }
    }
}

fn run() -> Result<()> {
    let mut node = Node::init()?;
    node_media::init()?;
    let s = Settings::from_params(node.params())?;
    let names = node.input_names();
    let frame = (s.sample_rate as f64 * s.frame_ms / 1000.0).round() as u64;
    let latency = (s.sample_rate as f64 * s.latency_ms / 1000.0).round() as u64;
    let mut mixer = Mixer::new(&names, s.sample_rate, s.channels, frame, latency);
    apply(&mut mixer, &s);
    let mut out = Out {
        wire: WireFormat::of(s.sample_format),
        layout: default_layout(s.channels),
        meter: LevelMeter::default(),
        gap_fills: 0,
        overlap_trims: 0,
        late: 0,
    };
    node.reserve("audio", frame as usize * s.channels as usize * 4)?;
    tracing::info!(
        "mixing {} at {} Hz, {} ch, {}; frames of {frame} samples, live inputs waited for up to {} ms",
        names.join(", "),
        s.sample_rate,
        s.channels,
        out.wire.name(),
        s.latency_ms
    );
    let mut paused = vec![false; names.len()];
    let mut warned = false;
    while let Some(event) = node.next_event()? {
        match event {
            Event::Input { input, message } => {
                let (Header::Audio(h), Some(lane)) = (&message.header, mixer.lane(&input)) else {
                    if !warned {
                        tracing::warn!("ignoring a non-audio message on input `{input}`");
                        warned = true;
                    }
                    continue;
                };
                let data = message.payload.as_slice();
                let placed = mixer
                    .push(lane, h, &data)
                    .with_context(|| format!("audio-mix input `{input}`"))?;
                out.gap_fills += placed.gap_filled;
                out.overlap_trims += placed.overlap_trimmed;
                out.late += placed.late;
                drain(&mut node, &mut mixer, &mut out)?;
                pace(&node, &mixer, &mut paused);
            }
            Event::InputClosed { input } => {
                if let Some(lane) = mixer.lane(&input) {
                    tracing::info!("input `{input}` ended; the others go on");
                    mixer
                        .close(lane)
                        .with_context(|| format!("audio-mix input `{input}`"))?;
                    drain(&mut node, &mut mixer, &mut out)?;
                    pace(&node, &mixer, &mut paused);
                }
            }
            Event::ParamUpdate { name, value, .. } => update(&node, &mut mixer, &name, &value),
            Event::Stop => {}
        }
    }
    for lane in 0..mixer.lanes.len() {
        if mixer.lanes[lane].state != LaneState::Closed {
            mixer.close(lane).context("audio-mix")?;
        }
    }
    drain(&mut node, &mut mixer, &mut out)?;
    tracing::info!(
        "{:.2} s mixed; {} samples of gaps filled, {} of overlaps trimmed, {} late dropped",
        mixer.position() as f64 / mixer.rate as f64,
        out.gap_fills,
        out.overlap_trims,
        out.late
    );
    node.finish()
}
