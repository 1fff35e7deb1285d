//! `mediagraph-nodes audio-normalize`: converts raw audio to the configured rate, channel
//! count and sample format with swresample, optionally normalizing loudness
//! (EBU R128) under a true-peak ceiling. Frames already in the output format
//! are forwarded without a copy.

mod gating;
mod level;
mod limiter;
mod loudness;
mod normalizer;

use anyhow::{Context, Result};
use node_api::{metrics, Event, Header, Node};
use node_media::audio::WireFormat;

use level::LevelMeter;
use normalizer::{Normalizer, Output, Settings};

/// Entry point, with the arguments after the kind (none are taken).
pub fn main(_args: &[String]) {
    node_api::run_main(run);
}

/// Samples per output frame the pool is sized for (it grows if needed).
const RESERVE_SAMPLES: usize = 4096;

fn send(node: &mut Node, out: Output<'_>, input: Option<&node_api::Payload>) -> Result<()> {
    match out {
        Output::Forward(header) => {
            let payload = input.expect("forwarding needs the input payload");
            node.forward("audio", Header::Audio(header), payload)
        }
        Output::Converted(header, data) => {
            let mut buf = node.alloc("audio", data.len())?;
            buf.copy_from_slice(data);
            node.send_audio("audio", header, buf)
        }
        Output::Nothing => Ok(()),
    }
}

/// Feeds what is sent (`input` when forwarded) to the level meter; its
/// level goes into the metrics every half second of audio.
fn measure(node: &mut Node, meter: &mut LevelMeter, out: &Output<'_>, input: &[u8]) {
    let level = match out {
        Output::Forward(header) => meter.add(header, input),
        Output::Converted(header, data) => meter.add(header, data),
        Output::Nothing => None,
    };
    if let Some(level) = level {
        node.metrics()
            .set(metrics::LEVEL_PEAK_DBFS, level.peak_dbfs);
        node.metrics().set(metrics::LEVEL_RMS_DBFS, level.rms_dbfs);
    }
}

fn run() -> Result<()> {
    let mut node = Node::init()?;
    node_media::init()?;
    let s = node_catalog::kinds::audio_normalize::Settings::from_params(node.params())?;
    let settings = Settings {
        rate: s.sample_rate,
        channels: s.channels,
        wire: WireFormat::of(s.sample_format),
        target_lufs: s.target_lufs,
        gain_db: s.gain_db,
        // The limiter's own ceiling: under the file's by the encoder's overshoot.
        true_peak_db: s.true_peak_db - s.true_peak_margin_db,
    };
    let mut norm = Normalizer::new(settings).context("audio-normalize")?;
    node.reserve("audio", norm.out_spec().payload_bytes(RESERVE_SAMPLES))?;
    tracing::info!(
        "output {} Hz, {} ch, {}{}",
        settings.rate,
        settings.channels,
        settings.wire.name(),
        match settings.target_lufs {
            Some(t) => format!(
                ", loudness target {t} LUFS, true peak ≤ {} dBTP",
                settings.true_peak_db
            ),
            None => String::new(),
        }
    );

    let (mut frames_in, mut forwarded, mut warned) = (0u64, 0u64, false);
    let mut meter = LevelMeter::default();
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
                let data = message.payload.as_slice();
                let out = norm.process(h, &data).context("audio-normalize")?;
                measure(&mut node, &mut meter, &out, &data);
                if matches!(out, Output::Forward(_)) {
                    forwarded += 1;
                }
                send(&mut node, out, Some(&message.payload))?;
                frames_in += 1;
                if frames_in % 50 == 0 {
                    if let Some((gain, lufs, limiter)) = norm.loudness_state() {
                        node.metrics().set(metrics::GAIN_DB, gain);
                        node.metrics().set(metrics::LOUDNESS_LUFS, lufs);
                        node.metrics().set(metrics::LIMITER_DB, limiter);
                    }
                }
            }
            Event::ParamUpdate { name, value, .. } => {
                let v = value.as_f64().unwrap_or_default();
                let done = match name.as_str() {
                    "target_lufs" => norm.set_target(v),
                    "gain_db" => norm.set_gain(v),
                    _ => Err(format!("`{name}` is not live")),
                };
                match done {
                    Ok(()) => tracing::info!("{name} = {v}"),
                    Err(why) => tracing::warn!("{name} not changed: {why}"),
                }
            }
            Event::InputClosed { .. } | Event::Stop => {}
        }
    }
    let tail = norm.flush().context("audio-normalize")?;
    send(&mut node, tail, None)?;
    tracing::info!(
        "{frames_in} frames in ({forwarded} forwarded without a copy), {:.2} s out",
        norm.samples_out() as f64 / settings.rate as f64
    );
    if let Some(s) = norm.loudness_end() {
        tracing::info!(
            "loudness: input {:.2} LUFS over the last window, gain {:.2} dB (limiter makeup {:.2} dB); program {:.2} LUFS into the limiter, {:.2} LUFS out",
            s.window_lufs, s.gain_db, s.makeup_db, s.program_in_lufs, s.program_out_lufs
        );
    }
    node.finish()
}
