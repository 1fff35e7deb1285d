//! Capture from an input device with cpal. The device's callback (a real-time
//! thread) copies its samples into a preallocated lock-free ring, with the
//! capture time of the block's first sample; the node thread drains the ring,
//! converts to the requested format with swresample and cuts 1024-sample frames.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::Thread;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use ffmpeg_next::format::{sample::Type, Sample};
use node_api::clock;
use node_media::audio::{
    default_layout, AudioSpec, CaptureTimeline, Planes, Resampler, SampleFifo,
};
use serde::Serialize;

use crate::ring::{ring, Consumer, Producer};
use crate::source::{Chunk, OutFormat, Source, FRAME_SAMPLES};

/// Seconds of audio the ring holds while the node thread is busy.
const RING_SECONDS: usize = 2;
/// Callback timestamps kept until the node thread reads them.
const MAX_MARKS: usize = 4096;
/// Frames moved from the ring per conversion.
const DRAIN_FRAMES: usize = 4096;
/// How long the minimum of the clock offset is kept (see [`ClockMapper`]).
const CLOCK_WINDOW_NS: u64 = 2_000_000_000;

/// Which device to open.
#[derive(Debug, Clone)]
pub enum DeviceChoice {
    Default,
    Named(String),
}

/// Maps the stream clock of the capture callbacks to the capture clock
/// (CLOCK_MONOTONIC). The offset between the clocks is `now - callback time`
/// at each callback minus a scheduling delay that is never negative, so the
/// smallest value seen is the best estimate; it is kept over a sliding
/// window so drift between the clocks is followed.
#[derive(Debug)]
pub struct ClockMapper {
    current: i128,
    previous: i128,
    window_start: u64,
}

impl ClockMapper {
    pub fn new() -> ClockMapper {
        ClockMapper {
            current: i128::MAX,
            previous: i128::MAX,
            window_start: 0,
        }
    }

    /// The capture-clock time of `capture_ns` (stream clock), given the
    /// callback's time on both clocks.
    pub fn map(&mut self, now_ns: u64, callback_ns: u128, capture_ns: u128) -> u64 {
        let offset = now_ns as i128 - callback_ns as i128;
        if now_ns.saturating_sub(self.window_start) > CLOCK_WINDOW_NS {
            self.previous = self.current;
            self.current = offset;
            self.window_start = now_ns;
        } else {
            self.current = self.current.min(offset);
        }
        (capture_ns as i128 + self.current.min(self.previous)).max(0) as u64
    }
}

impl Default for ClockMapper {
    fn default() -> Self {
        ClockMapper::new()
    }
}

/// State shared with the callbacks.
struct Shared {
    overruns: AtomicU64,
    dropped_frames: AtomicU64,
    error: Mutex<Option<String>>,
    reader: Thread,
}

/// The FFmpeg format of a cpal sample format the node can convert, and
/// whether it is 24-bit in the low bytes of 32 (shifted up on reading).
fn av_format(format: cpal::SampleFormat) -> Option<(Sample, bool)> {
    Some(match format {
        cpal::SampleFormat::U8 => (Sample::U8(Type::Packed), false),
        cpal::SampleFormat::I16 => (Sample::I16(Type::Packed), false),
        cpal::SampleFormat::I24 => (Sample::I32(Type::Packed), true),
        cpal::SampleFormat::I32 => (Sample::I32(Type::Packed), false),
        cpal::SampleFormat::F32 => (Sample::F32(Type::Packed), false),
        cpal::SampleFormat::F64 => (Sample::F64(Type::Packed), false),
        _ => return None,
    })
}

/// `id (description)` of a device, for logs and errors.
fn label(device: &cpal::Device) -> String {
    let id = device
        .id()
        .map(|i| i.id().to_string())
        .unwrap_or_else(|_| "?".into());
    match device.description() {
        Ok(d) if d.name() != id => format!("{id} ({})", d.name()),
        _ => id,
    }
}

/// The input device called `name`: its id (the ALSA pcm name) or its
/// description, exactly or else case-insensitively; a unique partial match
/// of the description is accepted too.
pub fn find_device(host: &cpal::Host, name: &str) -> Result<cpal::Device> {
    let devices: Vec<cpal::Device> = host
        .input_devices()
        .map(|it| it.collect())
        .unwrap_or_default();
    let id_of = |d: &cpal::Device| d.id().map(|i| i.id().to_string()).unwrap_or_default();
    let desc_of = |d: &cpal::Device| {
        d.description()
            .map(|x| x.name().to_string())
            .unwrap_or_default()
    };
    let lower = name.to_lowercase();
    let exact = devices
        .iter()
        .find(|d| id_of(d) == name || desc_of(d) == name);
    let loose = || {
        devices
            .iter()
            .find(|d| id_of(d).to_lowercase() == lower || desc_of(d).to_lowercase() == lower)
    };
    let partial = || {
        let hits: Vec<&cpal::Device> = devices
            .iter()
            .filter(|d| desc_of(d).to_lowercase().contains(&lower))
            .collect();
        (hits.len() == 1).then(|| hits[0])
    };
    if let Some(d) = exact.or_else(loose).or_else(partial) {
        return Ok(d.clone());
    }
    let available = if devices.is_empty() {
        "none".to_string()
    } else {
        devices.iter().map(label).collect::<Vec<_>>().join(", ")
    };
    bail!("no audio input device named `{name}`; available inputs: {available}")
}

/// Sample rates a listing names when a device takes any rate in a range.
const LISTED_RATES: [u32; 12] = [
    8_000, 11_025, 16_000, 22_050, 24_000, 32_000, 44_100, 48_000, 88_200, 96_000, 176_400, 192_000,
];

/// One audio input as `--list-devices` reports it: what its supported
/// configs allow, summed up per property.
#[derive(Debug, Clone, PartialEq)]
pub struct InputListing {
    /// The id `source: device:<name>` takes (the ALSA pcm name).
    pub name: String,
    pub description: String,
    pub is_default: bool,
    /// Rates the device takes: its fixed rates, and the common ones inside
    /// its continuous ranges.
    pub sample_rates: Vec<u32>,
    /// Continuous (min, max) ranges, for rates beyond the listed ones.
    pub rate_ranges: Vec<(u32, u32)>,
    pub channels: Vec<u16>,
    pub sample_formats: Vec<cpal::SampleFormat>,
    /// (rate, channels, format) the device opens with when the requested
    /// ones are not offered.
    pub default_config: Option<(u32, u16, cpal::SampleFormat)>,
}

impl InputListing {
    fn new(
        name: String,
        description: String,
        is_default: bool,
        ranges: &[cpal::SupportedStreamConfigRange],
    ) -> InputListing {
        let mut l = InputListing {
            name,
            description,
            is_default,
            sample_rates: Vec::new(),
            rate_ranges: Vec::new(),
            channels: Vec::new(),
            sample_formats: Vec::new(),
            default_config: None,
        };
        for r in ranges {
            let (min, max) = (r.min_sample_rate(), r.max_sample_rate());
            if min == max {
                l.sample_rates.push(min);
            } else {
                l.rate_ranges.push((min, max));
                l.sample_rates
                    .extend(LISTED_RATES.iter().filter(|x| (min..=max).contains(x)));
            }
            l.channels.push(r.channels());
            if !l.sample_formats.contains(&r.sample_format()) {
                l.sample_formats.push(r.sample_format());
            }
        }
        l.sample_rates.sort_unstable();
        l.sample_rates.dedup();
        l.rate_ranges.sort_unstable();
        l.rate_ranges.dedup();
        l.channels.sort_unstable();
        l.channels.dedup();
        l
    }
}

/// The input devices that can be opened, with what they support. Inputs the
/// system names but cannot open (ALSA's `default` without a sound card) are
/// left out, the node could not capture from them either; so is ALSA's `null`
/// pcm, which opens anywhere but only ever "captures" silence.
pub fn list_inputs() -> Result<Vec<InputListing>> {
    let host = cpal::default_host();
    let default_id = host
        .default_input_device()
        .and_then(|d| d.id().ok())
        .map(|i| i.id().to_string());
    let devices = host
        .input_devices()
        .context("listing audio input devices")?;
    let mut out = Vec::new();
    for device in devices {
        let name = device
            .id()
            .map(|i| i.id().to_string())
            .unwrap_or_else(|_| "?".into());
        if name == "null" {
            continue;
        }
        let ranges: Vec<cpal::SupportedStreamConfigRange> = match device.supported_input_configs() {
            Ok(r) => r.collect(),
            Err(e) => {
                tracing::debug!("audio input `{name}` skipped: {e}");
                continue;
            }
        };
        if ranges.is_empty() {
            continue;
        }
        let description = device
            .description()
            .map(|d| d.name().to_string())
            .unwrap_or_default();
        let is_default = default_id.as_deref() == Some(name.as_str());
        let mut listing = InputListing::new(name, description, is_default, &ranges);
        listing.default_config = device
            .default_input_config()
            .ok()
            .map(|c| (c.sample_rate(), c.channels(), c.sample_format()));
        out.push(listing);
    }
    Ok(out)
}

/// The listing as the JSON array `--list-devices` prints (the shape
/// `runtime devices` reads).
pub fn listing_json(list: &[InputListing]) -> String {
    let inputs: Vec<InputJson> = list.iter().map(InputJson::from).collect();
    serde_json::to_string(&inputs).expect("an audio input listing always serializes")
}

/// An [`InputListing`] as JSON: cpal's types are not serializable.
#[derive(Serialize)]
struct InputJson<'a> {
    name: &'a str,
    description: &'a str,
    default: bool,
    sample_rates: &'a [u32],
    /// Each range a `[min, max]` array.
    rate_ranges: &'a [(u32, u32)],
    channels: &'a [u16],
    sample_formats: Vec<String>,
    default_config: Option<ConfigJson>,
}

#[derive(Serialize)]
struct ConfigJson {
    sample_rate: u32,
    channels: u16,
    sample_format: String,
}

impl<'a> From<&'a InputListing> for InputJson<'a> {
    fn from(l: &'a InputListing) -> Self {
        InputJson {
            name: &l.name,
            description: &l.description,
            default: l.is_default,
            sample_rates: &l.sample_rates,
            rate_ranges: &l.rate_ranges,
            channels: &l.channels,
            sample_formats: l.sample_formats.iter().map(|f| f.to_string()).collect(),
            default_config: l
                .default_config
                .map(|(sample_rate, channels, format)| ConfigJson {
                    sample_rate,
                    channels,
                    sample_format: format.to_string(),
                }),
        }
    }
}

/// The stream config closest to what was asked: the requested channels and
/// rate if the device has them (in the requested sample format if possible,
/// else the best it offers), else the device's default config.
fn choose_config(
    device: &cpal::Device,
    want: &OutFormat,
) -> Result<(cpal::StreamConfig, cpal::SampleFormat)> {
    use cpal::SampleFormat as F;
    let wanted_format = match (want.wire.format, want.wire.bits) {
        (node_api::SampleFormat::S16, _) => F::I16,
        (node_api::SampleFormat::F32, _) => F::F32,
        _ => F::I32,
    };
    let rank = |f: F| -> usize {
        if f == wanted_format {
            return 0;
        }
        [F::F32, F::I32, F::I24, F::I16, F::F64, F::U8]
            .iter()
            .position(|x| *x == f)
            .map_or(usize::MAX, |i| i + 1)
    };
    let ranges: Vec<cpal::SupportedStreamConfigRange> = device
        .supported_input_configs()
        .with_context(|| format!("cannot query audio input `{}`", label(device)))?
        .filter(|r| av_format(r.sample_format()).is_some())
        .collect();
    let mut best: Option<(usize, cpal::SupportedStreamConfig)> = None;
    for r in ranges {
        if r.channels() != want.channels {
            continue;
        }
        let f = r.sample_format();
        if let Some(c) = r.try_with_sample_rate(want.rate) {
            if best.as_ref().is_none_or(|(k, _)| rank(f) < *k) {
                best = Some((rank(f), c));
            }
        }
    }
    let chosen = match best {
        Some((_, c)) => c,
        None => device.default_input_config().with_context(|| {
            format!(
                "audio input `{}` has no usable configuration",
                label(device)
            )
        })?,
    };
    if av_format(chosen.sample_format()).is_none() {
        bail!(
            "audio input `{}` only offers {:?} samples, which the node cannot convert",
            label(device),
            chosen.sample_format()
        );
    }
    Ok((chosen.config(), chosen.sample_format()))
}

pub struct CaptureSource {
    label: String,
    stream: cpal::Stream,
    shared: Arc<Shared>,
    bytes: Consumer<u8>,
    marks: Consumer<(u64, u64)>,
    /// Device frames read from the ring so far.
    device_pos: u64,
    device: AudioSpec,
    shift_i24: bool,
    scratch: Vec<u8>,
    mark_scratch: Vec<(u64, u64)>,
    resampler: Resampler,
    fifo: SampleFifo,
    timeline: CaptureTimeline,
    out: OutFormat,
    /// Output samples handed out so far.
    out_pos: u64,
    last_capture_ns: u64,
    pending: usize,
}

impl CaptureSource {
    /// Opens the device and builds its stream (not started yet).
    pub fn open(choice: &DeviceChoice, out: OutFormat) -> Result<CaptureSource> {
        let host = cpal::default_host();
        let device = match choice {
            DeviceChoice::Default => host
                .default_input_device()
                .ok_or_else(|| anyhow!("no default audio input device"))?,
            DeviceChoice::Named(name) => find_device(&host, name)?,
        };
        let label = label(&device);
        let (config, format) = choose_config(&device, &out)?;
        let (av, shift_i24) = av_format(format).expect("checked by choose_config");
        let device_spec = AudioSpec::new(
            av,
            config.sample_rate,
            config.channels,
            default_layout(config.channels),
        );
        let frame_bytes = device_spec.payload_bytes(1);

        let (mut producer, bytes): (Producer<u8>, Consumer<u8>) =
            ring(RING_SECONDS * config.sample_rate as usize * frame_bytes);
        let (mut mark_producer, marks) = ring::<(u64, u64)>(MAX_MARKS);
        let shared = Arc::new(Shared {
            overruns: AtomicU64::new(0),
            dropped_frames: AtomicU64::new(0),
            error: Mutex::new(None),
            reader: std::thread::current(),
        });
        let mut written: u64 = 0;
        let mut clock_map = ClockMapper::new();
        let data_shared = shared.clone();
        let data_callback = move |data: &cpal::Data, info: &cpal::InputCallbackInfo| {
            let ts = info.timestamp();
            let capture_ns = clock_map.map(
                clock::now_ns(),
                ts.callback.as_nanos(),
                ts.capture.as_nanos(),
            );
            let block = data.bytes();
            let frames = (block.len() / frame_bytes) as u64;
            if producer.push(block) {
                // Without room for the mark the timeline extrapolates from the last one.
                mark_producer.push(&[(written, capture_ns)]);
                written += frames;
            } else {
                data_shared.overruns.fetch_add(1, Ordering::Relaxed);
                data_shared
                    .dropped_frames
                    .fetch_add(frames, Ordering::Relaxed);
            }
            data_shared.reader.unpark();
        };
        let err_shared = shared.clone();
        let error_callback = move |e: cpal::Error| {
            if e.kind() == cpal::ErrorKind::Xrun {
                err_shared.overruns.fetch_add(1, Ordering::Relaxed);
            } else if let Ok(mut slot) = err_shared.error.lock() {
                slot.get_or_insert_with(|| e.to_string());
            }
            err_shared.reader.unpark();
        };
        let stream = device
            .build_input_stream_raw(config, format, data_callback, error_callback, None)
            .with_context(|| format!("cannot open audio input `{label}`"))?;

        let out_spec = AudioSpec::new(
            out.wire.av(),
            out.rate,
            out.channels,
            default_layout(out.channels),
        );
        let resampler = Resampler::new(device_spec, out_spec)
            .with_context(|| format!("audio input `{label}`"))?;
        tracing::debug!(
            "audio input `{label}`: {:?} {} Hz {} ch",
            format,
            config.sample_rate,
            config.channels
        );
        Ok(CaptureSource {
            label,
            stream,
            shared,
            bytes,
            marks,
            device_pos: 0,
            device: device_spec,
            shift_i24,
            scratch: vec![0; DRAIN_FRAMES * frame_bytes],
            mark_scratch: vec![(0, 0); MAX_MARKS],
            resampler,
            fifo: SampleFifo::new(&out_spec, 4 * FRAME_SAMPLES),
            timeline: CaptureTimeline::new(config.sample_rate),
            out,
            out_pos: 0,
            last_capture_ns: 0,
            pending: 0,
        })
    }

    /// Moves what the callback delivered into the FIFO, converted.
    fn drain(&mut self) -> Result<()> {
        let n = self.marks.pop(&mut self.mark_scratch);
        for &(pos, ns) in &self.mark_scratch[..n] {
            self.timeline.mark(pos, ns);
        }
        let frame_bytes = self.device.payload_bytes(1);
        loop {
            let avail = self.bytes.available() / frame_bytes;
            if avail == 0 {
                return Ok(());
            }
            let frames = avail.min(DRAIN_FRAMES);
            let block = &mut self.scratch[..frames * frame_bytes];
            let got = self.bytes.pop(block);
            debug_assert_eq!(got, block.len());
            if self.shift_i24 {
                // cpal's I24 is right-justified in 32 bits; FFmpeg's s32 is full scale.
                for s in block.chunks_exact_mut(4) {
                    let v = i32::from_ne_bytes(s.try_into().unwrap()) << 8;
                    s.copy_from_slice(&v.to_ne_bytes());
                }
            }
            let input = Planes::payload(block, &self.device, frames)?;
            let mut tail = self.fifo.tail(self.resampler.max_output(frames));
            let written = self.resampler.convert(&input, &mut tail)?;
            self.fifo.commit(written);
            self.device_pos += frames as u64;
        }
    }
}

impl Source for CaptureSource {
    fn describe(&self) -> String {
        format!(
            "audio input `{}` ({} Hz {} ch)",
            self.label, self.device.rate, self.device.channels
        )
    }

    fn start(&mut self) -> Result<()> {
        self.stream
            .play()
            .with_context(|| format!("cannot start audio input `{}`", self.label))
    }

    fn prepare(&mut self, max: usize, stop: &dyn Fn() -> bool) -> Result<Option<Chunk>> {
        let want = max;
        loop {
            self.drain()?;
            if self.fifo.len() >= want {
                break;
            }
            if let Some(e) = self.shared.error.lock().ok().and_then(|e| e.clone()) {
                bail!("audio input `{}` failed: {e}", self.label);
            }
            if stop() {
                return Ok(None);
            }
            std::thread::park_timeout(Duration::from_millis(20));
        }
        self.pending = want;
        // swresample keeps its output aligned with its input: output sample k
        // was captured with device sample k × device rate / output rate.
        let device_pos =
            (self.out_pos as u128 * self.device.rate as u128 / self.out.rate as u128) as u64;
        // Callback jitter or a device running fast must not make times go back.
        let capture_ns = self
            .timeline
            .capture_ns(device_pos)
            .max(self.last_capture_ns);
        self.last_capture_ns = capture_ns;
        Ok(Some(Chunk {
            samples: want,
            capture_ns: Some(capture_ns),
        }))
    }

    fn write(&mut self, out: &mut [u8]) -> Result<()> {
        self.fifo.pop_to_payload(out, self.pending)?;
        self.out.wire.quantize(out);
        self.out_pos += self.pending as u64;
        Ok(())
    }

    fn self_clocked(&self) -> bool {
        false
    }

    fn dropped(&self) -> u64 {
        self.shared.overruns.load(Ordering::Relaxed)
    }
}

impl Drop for CaptureSource {
    fn drop(&mut self) {
        let dropped = self.shared.dropped_frames.load(Ordering::Relaxed);
        if dropped > 0 {
            tracing::warn!(
                "audio input `{}`: {} overruns, {dropped} frames lost",
                self.label,
                self.shared.overruns.load(Ordering::Relaxed)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use node_media::audio::WireFormat;

    #[test]
    fn clock_mapper_takes_the_smallest_delay() {
        let mut m = ClockMapper::new();
        // Stream clock = monotonic − 5 s; callbacks run 0.1..2 ms late.
        let offset = 5_000_000_000u64;
        let mut last = 0;
        for (i, late) in [2_000_000u64, 100_000, 1_500_000, 700_000]
            .iter()
            .enumerate()
        {
            let callback = 1_000_000_000u128 + i as u128 * 10_000_000;
            let now = callback as u64 + offset + late;
            last = m.map(now, callback, callback - 1_000_000);
        }
        // The capture instant (1 ms before the last callback) maps with the 0.1 ms error of the best callback.
        let truth = 1_000_000_000 + 3 * 10_000_000 - 1_000_000 + offset;
        assert_eq!(last, truth + 100_000);
    }

    #[test]
    fn input_listing_sums_up_the_ranges() {
        use cpal::{SampleFormat as F, SupportedBufferSize};
        let range = |ch, min, max, f| {
            cpal::SupportedStreamConfigRange::new(ch, min, max, SupportedBufferSize::Unknown, f)
        };
        let mut l = InputListing::new(
            "hw:CARD=0,DEV=0".into(),
            "USB \"Mic\"".into(),
            true,
            &[
                range(2, 48_000, 48_000, F::I16),
                range(1, 44_100, 44_100, F::I16),
                range(2, 16_000, 44_100, F::I32),
                range(1, 48_000, 48_000, F::I32),
            ],
        );
        assert_eq!(
            l.sample_rates,
            [16_000, 22_050, 24_000, 32_000, 44_100, 48_000]
        );
        assert_eq!(l.rate_ranges, [(16_000, 44_100)]);
        assert_eq!(l.channels, [1, 2]);
        assert_eq!(l.sample_formats, [F::I16, F::I32]);
        l.default_config = Some((48_000, 2, F::I16));
        assert_eq!(
            listing_json(&[l]),
            concat!(
                r#"[{"name":"hw:CARD=0,DEV=0","description":"USB \"Mic\"","default":true,"#,
                r#""sample_rates":[16000,22050,24000,32000,44100,48000],"rate_ranges":[[16000,44100]],"#,
                r#""channels":[1,2],"sample_formats":["i16","i32"],"#,
                r#""default_config":{"sample_rate":48000,"channels":2,"sample_format":"i16"}}]"#
            )
        );
        assert_eq!(listing_json(&[]), "[]");
    }

    /// An ALSA `file` pcm with an `infile` and a `null` slave is a capture
    /// device that plays back a known raw file: capture it through cpal
    /// (device listing, config choice, callback, ring, conversion, framing)
    /// and compare the samples with the file.
    #[test]
    fn captures_a_known_signal_from_an_alsa_device() {
        let dir = std::env::temp_dir().join(format!("mic-alsa-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // 1 s of s16le stereo at 48 kHz: a ramp on the left, its negation on the right.
        let frames = 48_000usize;
        let mut raw = Vec::with_capacity(frames * 4);
        for i in 0..frames {
            let v = ((i * 7) % 65_536) as i32 - 32_768;
            raw.extend_from_slice(&(v as i16).to_le_bytes());
            raw.extend_from_slice(&((-v).clamp(-32_768, 32_767) as i16).to_le_bytes());
        }
        let infile = dir.join("in.raw");
        std::fs::write(&infile, &raw).unwrap();
        let conf = crate::test_device::write_config(&dir, &infile).unwrap();
        // The only test in this binary that touches ALSA: set before ALSA first reads its config.
        std::env::set_var("ALSA_CONFIG_PATH", &conf);

        // A wrong name lists the inputs, ours among them.
        let host = cpal::default_host();
        let e = find_device(&host, "no-such-mic").err().unwrap().to_string();
        assert!(
            e.contains("no-such-mic") && e.contains("testcapture (Test capture)"),
            "{e}"
        );

        let out = OutFormat {
            rate: 48_000,
            channels: 2,
            wire: WireFormat::from_param("s16").unwrap(),
        };
        // Found by description as well as by pcm name.
        let mut src =
            CaptureSource::open(&DeviceChoice::Named("Test capture".into()), out).unwrap();
        assert_eq!((src.device.rate, src.device.channels), (48_000, 2));
        src.start().unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let timed_out = || std::time::Instant::now() > deadline;
        let mut got = Vec::with_capacity(raw.len());
        let mut buf = vec![0u8; out.frame_bytes(FRAME_SAMPLES)];
        let mut last_ns = 0;
        while got.len() < raw.len() {
            let chunk = src
                .prepare(FRAME_SAMPLES, &timed_out)
                .unwrap()
                .expect("capture timed out");
            let bytes = out.frame_bytes(chunk.samples);
            src.write(&mut buf[..bytes]).unwrap();
            got.extend_from_slice(&buf[..bytes]);
            let ns = chunk.capture_ns.unwrap();
            assert!(ns >= last_ns, "capture times go forward");
            last_ns = ns;
        }
        got.truncate(raw.len());
        let first_diff = got.iter().zip(&raw).position(|(a, b)| a != b);
        assert_eq!(first_diff, None, "captured samples differ from the file");
        drop(src);
        std::fs::remove_dir_all(&dir).ok();
    }
}
