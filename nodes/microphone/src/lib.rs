//! `mediagraph-nodes microphone`: the audio source. Captures the default or a named input
//! device (cpal), reads a file (FFmpeg), or generates a deterministic test
//! signal, and emits raw audio frames in the requested format.
//!
//! Frames carry pts = sample index (time base 1/sample_rate) and the capture
//! time of their first sample: the device's callback timestamp mapped to the
//! capture clock, or for test and file sources start + samples / rate.
//! `sample_format: s24` travels as s32 with the low byte zero (FFmpeg has no
//! packed 24-bit format).
//!
//! `mediagraph-nodes microphone --list-devices` prints the audio inputs as a JSON array
//! and exits (used by `runtime devices`; no graph environment needed).

mod alsa_log;
mod capture;
mod file;
mod ring;
mod signal;
mod source;
#[doc(hidden)]
pub mod test_device;

use anyhow::{Context, Result};
use node_api::clock::{self, SimulatedDevice};
use node_api::{metrics, AudioFrame, Node, TimeBase};
use node_catalog::kinds::microphone::{self as kind, Source as MicSource};
use node_media::audio::{default_layout, WireFormat};

use capture::{CaptureSource, DeviceChoice};
use file::FileSource;
use signal::Pattern;
use source::{OutFormat, Source, TestSource};

/// How far behind real time a realtime source may fall before it warns.
const BEHIND_WARN_S: f64 = 0.25;

/// Entry point, with the arguments after the kind.
pub fn main(args: &[String]) {
    // Before Node::init(), which needs the runtime's environment.
    if args.iter().any(|a| a == "--list-devices") {
        node_api::run_main(list_devices);
    } else {
        node_api::run_main(run);
    }
}

/// Opens the source the `source` param names. Devices are opened (not
/// started) here so a wrong name fails before the graph starts.
fn open_source(
    spec: &MicSource,
    out: OutFormat,
    test: TestSignal,
    looping: bool,
) -> Result<Box<dyn Source>> {
    Ok(match spec {
        MicSource::Auto => {
            match alsa_log::quiet(|| CaptureSource::open(&DeviceChoice::Default, out)) {
                Ok(c) => Box::new(c),
                Err(e) => {
                    tracing::warn!("no microphone found; using a test tone ({e:#})");
                    test.source(out)
                }
            }
        }
        MicSource::Test => test.source(out),
        MicSource::Device(name) => Box::new(CaptureSource::open(
            &DeviceChoice::Named(name.to_string()),
            out,
        )?),
        MicSource::File(path) => Box::new(FileSource::open(path, out, looping)?),
    })
}

fn list_devices() -> Result<()> {
    node_api::logging::init();
    let inputs = alsa_log::quiet(capture::list_inputs)?;
    println!("{}", capture::listing_json(&inputs));
    Ok(())
}

/// The test signal and the device imperfections it is recorded with.
#[derive(Clone, Copy)]
struct TestSignal {
    pattern: Pattern,
    rate_factor: f64,
}

impl TestSignal {
    fn source(self, out: OutFormat) -> Box<dyn Source> {
        Box::new(TestSource::new(self.pattern, self.rate_factor, out))
    }
}

fn run() -> Result<()> {
    let mut node = Node::init()?;
    node_media::init()?;
    let s = kind::Settings::from_params(node.params())?;
    let out = OutFormat {
        rate: s.sample_rate,
        channels: s.channels,
        wire: WireFormat::of(s.sample_format),
    };
    let pattern = Pattern::new(s.pattern, s.frequency);
    let realtime = s.realtime;
    let spec = s.source.clone();
    let mut device = SimulatedDevice::new(&s.test_device);
    let test = TestSignal {
        pattern,
        rate_factor: device.rate_factor(),
    };
    // A test source's own `duration`, or the run's `--duration`: ending on
    // the sample (not after the frame that crosses it, as the node API's
    // limit would) keeps the audio as long as the video.
    let duration = [s.test_device.duration, node.config().media_duration_s]
        .into_iter()
        .flatten()
        .reduce(f64::min)
        .map(|secs| (secs.max(0.0) * out.rate as f64) as u64);
    let mut source = open_source(&spec, out, test, s.looping)
        .with_context(|| format!("microphone source `{spec}`"))?;

    // Not paced by a clock: nothing downstream may drop what it produces.
    node.set_no_drop(!realtime && source.self_clocked());
    let frame_samples = source::frame_samples(
        s.frame_samples as i64,
        !realtime && matches!(spec, MicSource::File(_)),
    );
    node.reserve("audio", out.frame_bytes(frame_samples))?;
    if !node.wait_for_start()? {
        return node.finish();
    }
    if let Err(e) = source.start() {
        if spec != MicSource::Auto {
            return Err(e);
        }
        tracing::warn!("no microphone found; using a test tone ({e:#})");
        source = test.source(out);
    }
    tracing::info!(
        "{}: {} Hz, {} ch, {}, frames of {frame_samples} samples{}",
        source.describe(),
        out.rate,
        out.channels,
        out.wire.name(),
        if realtime || !source.self_clocked() {
            ", real time"
        } else {
            ", as fast as consumed"
        }
    );

    let layout = default_layout(out.channels);
    // A test signal's timeline starts at the run's epoch, shared by every
    // test source (their clapperboards meet); a realtime one joins it at the
    // first sample not yet due. Files replayed faster than real time start
    // there too (their first samples meet the other replayed sources' at
    // sync's common start); realtime files start now.
    let epoch = node.config().epoch_ns;
    let now = clock::now_ns();
    let first = if epoch == 0 || !realtime {
        0
    } else {
        (now.saturating_sub(epoch) as f64 * out.rate as f64 * device.rate_factor() / 1e9).ceil()
            as u64
    };
    let replayed = !realtime && source.self_clocked();
    let start_ns = if epoch != 0 && (replayed || source.start_at(first)) {
        epoch
    } else {
        now
    };
    // Capture time of the device's sample `n` (a test source's simulated
    // clock; an ideal one for files).
    let ns_at = |device: &SimulatedDevice, n: u64| {
        start_ns + device.true_ns((n as u128 * 1_000_000_000 / out.rate as u128) as u64)
    };
    // Samples sent (the pts) and samples the device produced, lost ones too.
    let mut pos: u64 = 0;
    let mut device_pos: u64 = if start_ns == epoch { first } else { 0 };
    let end = duration.map(|d| device_pos + d);
    let mut frames: u64 = 0;
    let mut last_metrics = 0u64;
    // How far a realtime test source is behind real time: audio it never
    // produced (frames it cannot send as fast as they last).
    let mut behind_s = 0.0f64;
    while !node.stop_requested() {
        let stop = || node.stop_requested();
        let want = match end {
            Some(end) if device_pos >= end => break,
            Some(end) => frame_samples.min((end - device_pos) as usize),
            None => frame_samples,
        };
        let Some(chunk) = source.prepare(want, &stop)? else {
            break;
        };
        let at_ns = ns_at(&device, device_pos);
        let capture_ns = chunk.capture_ns.unwrap_or_else(|| device.stamp(at_ns));
        device_pos += chunk.samples as u64;
        if realtime && source.self_clocked() {
            // Like a device, a frame is ready once its last sample was "captured".
            let due = ns_at(&device, device_pos);
            let late_s = clock::now_ns().saturating_sub(due) as f64 / 1e9;
            if late_s > BEHIND_WARN_S && behind_s <= BEHIND_WARN_S {
                tracing::warn!(
                    "{late_s:.2} s behind real time: frames of {} samples cost more than they last; that audio is missing from the recording (counted as behind_s)",
                    chunk.samples
                );
            }
            behind_s = late_s;
            clock::sleep_until_ns(due);
        }
        let mut buf = node.alloc("audio", out.frame_bytes(chunk.samples))?;
        source.write(&mut buf)?;
        if device.lost(at_ns - start_ns) {
            // A simulated dropout: captured, never delivered.
            continue;
        }
        let header = AudioFrame {
            format: out.wire.format,
            sample_rate: out.rate,
            channels: out.channels,
            channel_layout: layout,
            samples: chunk.samples as u32,
            pts: pos as i64,
            time_base: TimeBase::new(1, out.rate as i32),
            capture_ns,
        };
        node.send_audio("audio", header, buf)?;
        tracing::debug!(pts = pos, samples = chunk.samples, capture_ns, "frame");
        pos += chunk.samples as u64;
        frames += 1;
        if pos - last_metrics >= out.rate as u64 {
            node.metrics()
                .set(metrics::DROPPED, source.dropped() as f64);
            node.metrics().set(metrics::BEHIND_S, behind_s);
            last_metrics = pos;
        }
    }
    node.metrics()
        .set(metrics::DROPPED, source.dropped() as f64);
    node.metrics().set(metrics::BEHIND_S, behind_s);
    tracing::info!(
        "sent {frames} frames, {:.2} s of audio, {} overruns, {behind_s:.2} s behind real time",
        pos as f64 / out.rate as f64,
        source.dropped()
    );
    drop(source);
    node.finish()
}
