//! `mediagraph-nodes audio-normalize`: converts raw audio to the configured rate, channel
//! count and sample format with swresample, optionally normalizing loudness
//! (EBU R128) under a true-peak ceiling. Frames already in the output format
//! are forwarded without a copy.

mod gating;
mod limiter;
mod loudness;
mod normalizer;
mod two_pass;

use anyhow::{Context, Result};
use node_api::{metrics, Event, Header, Node};
use node_media::audio::{LevelMeter, WireFormat};

use node_catalog::kinds::audio_normalize::Mode;
use normalizer::{Normalizer, Output, Settings};
use two_pass::TwoPass;

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

/// A live param change: to the held program's gain when holding.
fn update(norm: &mut Normalizer, hold: Option<&mut TwoPass>, name: &str, v: f64) {
    let done = match (name, hold) {
        ("target_lufs", Some(h)) => h.set_target(v),
        ("gain_db", Some(h)) => h.set_gain(v),
        ("target_lufs", None) => norm.set_target(v),
        ("gain_db", None) => norm.set_gain(v),
        _ => Err(format!("`{name}` is not live")),
    };
    match done {
        Ok(()) => tracing::info!("{name} = {v}"),
        Err(why) => tracing::warn!("{name} not changed: {why}"),
    }
}

/// `mode: two-pass` at the first frame: a replay (no_drop, nothing is lost
/// by waiting) is held to its end; a live stream cannot wait, and is
/// normalized in one pass.
fn hold_if_replay(
    node: &Node,
    settings: Settings,
    encoder_loss_lu: f64,
) -> Result<Option<TwoPass>> {
    if !node.is_no_drop() {
        tracing::warn!(
            "mode two-pass: the input is live (not no_drop), normalizing in one pass instead"
        );
        return Ok(None);
    }
    tracing::info!("mode two-pass: holding the whole input to measure it at the end of stream");
    Ok(Some(
        TwoPass::new(settings, encoder_loss_lu).context("audio-normalize")?,
    ))
}

/// End of a held program: measured, one gain, sent in the frames it came in.
fn send_held(node: &mut Node, mut held: TwoPass) -> Result<()> {
    let seconds = held.held_seconds();
    let (mut meter, mut frames) = (LevelMeter::default(), 0u64);
    let found = held
        .finish(|h, data| {
            let mut buf = node.alloc("audio", data.len())?;
            buf.copy_from_slice(data);
            if let Some(level) = meter.add(&h, data) {
                node.metrics()
                    .set(metrics::LEVEL_PEAK_DBFS, level.peak_dbfs);
                node.metrics().set(metrics::LEVEL_RMS_DBFS, level.rms_dbfs);
            }
            frames += 1;
            node.send_audio("audio", h, buf)
        })
        .context("audio-normalize")?;
    node.metrics().set(metrics::GAIN_DB, found.gain_db);
    node.metrics().set(metrics::LOUDNESS_LUFS, found.input_lufs);
    tracing::info!(
        "two-pass: {seconds:.2} s held; input {:.2} LUFS, gain {:.2} dB: {:.2} LUFS after the limiter ({} iterations); {frames} frames out",
        found.input_lufs, found.gain_db, found.output_lufs, found.iterations
    );
    Ok(())
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
        lookahead_s: s.lookahead_s,
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
    let two_pass = s.mode == Mode::TwoPass && settings.target_lufs.is_some();
    let mut hold: Option<TwoPass> = None;
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
                if two_pass && frames_in == 0 {
                    hold = hold_if_replay(&node, settings, s.encoder_loss_lu)?;
                }
                if let Some(held) = hold.as_mut() {
                    held.hold(h, &data).context("audio-normalize")?;
                    frames_in += 1;
                    continue;
                }
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
            Event::ParamUpdate { name, value, .. } => update(
                &mut norm,
                hold.as_mut(),
                &name,
                value.as_f64().unwrap_or_default(),
            ),
            Event::InputClosed { .. } | Event::Stop => {}
        }
    }
    if let Some(held) = hold {
        send_held(&mut node, held)?;
        return node.finish();
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
