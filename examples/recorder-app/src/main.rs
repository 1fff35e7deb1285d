//! A small app that records what it draws, through `CombinedRecorder`:
//! a moving test card with a white flash at every whole second, and a quiet
//! tone with a 1 kHz beep at every whole second (a clapperboard: in the
//! file each flash and its beep must coincide).
//!
//!   recorder-app out.mp4 [--seconds 5] [--preset 720p|1080p|4k]
//!                [--zero-copy] [--fast] [--pause-at S --resume-at S]
//!
//! `--zero-copy` draws straight into the recorder's shared memory
//! (`video_buffer`); `--fast` submits as fast as the graph takes frames
//! instead of at the frame rate (timestamps stay those of the frame rate).

use std::time::{Duration, Instant};

use recorder::{AudioFrame, CombinedRecorder, RecordingConfig, VideoFrame};

/// What the command line asks for.
struct Args {
    out: String,
    seconds: f64,
    config: RecordingConfig,
    zero_copy: bool,
    fast: bool,
    pause: Option<(f64, f64)>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let mut a = Args {
        out: String::new(),
        seconds: 5.0,
        config: RecordingConfig::hd_1080p(),
        zero_copy: false,
        fast: false,
        pause: None,
    };
    let (mut pause_at, mut resume_at) = (None, None);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--seconds" => a.seconds = number(&value("--seconds")?)?,
            "--preset" => {
                a.config = match value("--preset")?.as_str() {
                    "720p" => RecordingConfig::hd_720p(),
                    "1080p" => RecordingConfig::hd_1080p(),
                    "4k" => RecordingConfig::uhd_4k(),
                    other => return Err(format!("--preset {other}: 720p, 1080p or 4k")),
                }
            }
            "--zero-copy" => a.zero_copy = true,
            "--fast" => a.fast = true,
            "--pause-at" => pause_at = Some(number(&value("--pause-at")?)?),
            "--resume-at" => resume_at = Some(number(&value("--resume-at")?)?),
            _ if a.out.is_empty() && !arg.starts_with('-') => a.out = arg,
            _ => return Err(format!("unknown argument `{arg}`")),
        }
    }
    if a.out.is_empty() {
        return Err("usage: recorder-app OUT [--seconds S] [--preset 720p|1080p|4k] [--zero-copy] [--fast] [--pause-at S --resume-at S]".into());
    }
    a.pause = pause_at.zip(resume_at);
    Ok(a)
}

fn number(text: &str) -> Result<f64, String> {
    text.parse()
        .map_err(|_| format!("`{text}` is not a number"))
}

fn main() {
    // The recorder logs through `tracing`: RUST_LOG=info shows its steps.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = record(&args) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn record(args: &Args) -> recorder::Result<()> {
    let config = args.config.clone();
    let (width, height) = config.video.resolution.dimensions();
    let fps = config.video.frame_rate.fps().round() as u64;
    let rate = config.audio.as_ref().map_or(48_000, |a| a.sample_rate);
    let channels = config.audio.as_ref().map_or(2, |a| a.channels);
    let recorder = CombinedRecorder::new(config)?;
    let asked = Instant::now();
    let session = recorder.start_recording(&args.out)?;
    let started = Instant::now();
    let frames = (args.seconds * fps as f64).round() as u64;
    let mut card = TestCard::new(width, height);
    let mut tone = Tone::new(rate, channels);
    let mut paused = false;
    for n in 0..frames {
        let ts = Duration::from_nanos(n * 1_000_000_000 / fps);
        if !args.fast {
            std::thread::sleep(ts.saturating_sub(started.elapsed()));
        }
        if let Some((at, until)) = args.pause {
            let t = ts.as_secs_f64();
            if !paused && t >= at && t < until {
                recorder.pause_recording()?;
                paused = true;
            } else if paused && t >= until {
                recorder.resume_recording()?;
                paused = false;
            }
        }
        let flash = n % fps == 0;
        if args.zero_copy {
            let mut buf = recorder.video_buffer()?;
            card.draw(&mut buf, n, flash);
            recorder.submit_video_buffer(buf, Some(ts))?;
        } else {
            let pixels = card.frame(n, flash);
            recorder
                .submit_video_frame(VideoFrame::rgb24(pixels, width, height).with_timestamp(ts))?;
        }
        // The sound of the same frame period.
        let from = n * u64::from(rate) / fps;
        let to = (n + 1) * u64::from(rate) / fps;
        let samples = tone.samples(from, to);
        let frame = AudioFrame::interleaved_f32(samples, rate, channels)
            .with_timestamp(Duration::from_nanos(from * 1_000_000_000 / u64::from(rate)));
        recorder.submit_audio_frame(frame)?;
    }
    let stopping = Instant::now();
    let summary = recorder.stop_recording()?;
    let (start_s, run_s, stop_s) = (
        (started - asked).as_secs_f64(),
        (stopping - started).as_secs_f64(),
        stopping.elapsed().as_secs_f64(),
    );
    println!("{session}: {}", summary.path.display());
    println!("  duration      {:.3} s", summary.duration.as_secs_f64());
    println!("  video frames  {}", summary.video_frames);
    println!("  audio samples {}", summary.audio_samples);
    println!(
        "  dropped       {}",
        summary.dropped.iter().map(|d| d.frames).sum::<u64>()
    );
    println!("  rejected      {}", summary.rejected);
    println!(
        "  restarts      {}",
        summary.restarts.iter().map(|r| r.times).sum::<u32>()
    );
    for r in &summary.restarts {
        println!(
            "    {}: {} time(s), {} frames lost: {}",
            r.node,
            r.times,
            r.lost_frames,
            r.why.join("; ")
        );
    }
    match summary.av_offset_ms {
        Some(o) => println!("  A/V offset    {o:+.1} ms"),
        None => println!("  A/V offset    -"),
    }
    println!("  file size     {} bytes", summary.file_size);
    println!("  wall time     start {start_s:.2} s, submit {run_s:.2} s, stop {stop_s:.2} s");
    Ok(())
}

/// A moving test card: dark colour bars, a bar moving across, white at
/// every whole second.
struct TestCard {
    width: u32,
    height: u32,
    pixels: Vec<u8>,
}

impl TestCard {
    fn new(width: u32, height: u32) -> Self {
        TestCard {
            width,
            height,
            pixels: vec![0; width as usize * height as usize * 3],
        }
    }

    fn frame(&mut self, n: u64, flash: bool) -> &[u8] {
        let mut pixels = std::mem::take(&mut self.pixels);
        self.draw(&mut pixels, n, flash);
        self.pixels = pixels;
        &self.pixels
    }

    /// Packed RGB24 rows into `out`.
    fn draw(&self, out: &mut [u8], n: u64, flash: bool) {
        const BARS: [[u8; 3]; 6] = [
            [150, 150, 150],
            [150, 150, 0],
            [0, 150, 150],
            [0, 150, 0],
            [150, 0, 150],
            [150, 0, 0],
        ];
        let (w, h) = (self.width as usize, self.height as usize);
        let moving = (n as usize * 8) % w;
        for y in 0..h {
            let row = &mut out[y * w * 3..(y + 1) * w * 3];
            for (x, px) in row.chunks_exact_mut(3).enumerate() {
                let colour = if flash {
                    [255, 255, 255]
                } else if x.abs_diff(moving) < 8 {
                    [200, 200, 200]
                } else {
                    BARS[x * BARS.len() / w]
                };
                px.copy_from_slice(&colour);
            }
        }
    }
}

/// A quiet 440 Hz tone, and a loud 1 kHz beep for 100 ms at every whole second.
struct Tone {
    rate: u32,
    channels: u32,
    buf: Vec<f32>,
}

impl Tone {
    fn new(rate: u32, channels: u32) -> Self {
        Tone {
            rate,
            channels,
            buf: Vec::new(),
        }
    }

    /// Interleaved samples `from..to`.
    fn samples(&mut self, from: u64, to: u64) -> &[f32] {
        self.buf.clear();
        let rate = u64::from(self.rate);
        for k in from..to {
            let t = k as f64 / rate as f64;
            let beep = k % rate < rate / 10;
            let v = if beep {
                0.5 * (2.0 * std::f64::consts::PI * 1000.0 * t).sin()
            } else {
                0.003 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()
            };
            for _ in 0..self.channels {
                self.buf.push(v as f32);
            }
        }
        &self.buf
    }
}
