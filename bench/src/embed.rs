//! Embedding bench: the recorder as a library (`recorder::CombinedRecorder`,
//! the app's process being the graph's `app-video` / `app-audio` node), its
//! submit cost per 1080p frame on the copy and zero-copy paths, and the
//! frames per second of a whole recording against `runtime run` and ffmpeg.
//!
//! Run `embed-bench --help` for what it runs and what each number includes.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bench::procs::run_measured;
use bench::{median, on_path, percentile};
use node_camera::pattern::{PatternConfig, TestPattern};
use node_catalog::Rational;
use recorder::{AudioFrame, CombinedRecorder, RecordingConfig, RecordingSummary, VideoFrame};

const HELP: &str = "\
embed-bench: the recorder embedded in an app (recorder::CombinedRecorder),
its submit cost per frame and its throughput against runtime run and ffmpeg

USAGE
    cargo build --release --workspace
    target/release/embed-bench [--frames N] [--runs R] [--graph FILE] [--keep DIR]
    (from the workspace root: the CLI rows run GRAPH, default graphs/1080p.yaml)

WHAT IT DOES
    Every recording is RecordingConfig::hd_1080p(): 1920x1080 RGB24 frames
    submitted at 30 fps timestamps, H.264 balanced (x264 veryfast, CRF 23,
    keyframe every 2 s) + AAC 128 kb/s, MP4; WhenBehind::Wait (back-pressure,
    nothing dropped). The app draws the camera's test pattern (the picture
    `camera.source=test` sends) and a 440 Hz stereo tone, 1600 samples per
    frame, submitted after each picture.
    1. Paced (once per path): N frames submitted at 30 fps in real time, so the
       graph keeps up and a submit does not wait for room: the cost of the call.
    2. Unpaced, R rounds of, in this order:
         copy       submit_video_frame(VideoFrame::rgb24(..)) of a drawn frame
         zero-copy  video_buffer(), draw into it, submit_video_buffer()
         cli        runtime run GRAPH with camera and microphone source=test,
                    realtime=false, duration=N/30 s (the camera sends YUV 4:2:0)
         cli-rgb24  the same with camera.pixel_format=rgb24: converted to
                    YUV 4:2:0 in video-normalize, as the app's frames are
         ffmpeg     ffmpeg -f lavfi -i testsrc2=size=1920x1080:rate=30
                    -f lavfi -i sine=frequency=440:sample_rate=48000 -t N/30
                    -pix_fmt yuv420p -ac 2 -c:v libx264 -preset veryfast -crf 23
                    -g 60 -c:a aac -b:a 128k -movflags +faststart
         ffmpeg-pipe  the same ffmpeg fed the app's drawn RGB24 frames on
                    stdin (-f rawvideo -pix_fmt rgb24 -i pipe:0): the same
                    picture and conversion as the embedded rows, and what an
                    app would do without the recorder
       each as fast as it goes (the app submits as fast as the graph takes
       frames). testsrc2 is a busier picture than the camera's pattern
       (more bits, more x264 work): compare the MB column.
    Every file is checked with ffprobe (h264 + aac, N video frames, N/30 s).

MEASURES
    submit µs   time inside the call, per frame, median / p99 (the unpaced
                column pools the R runs). The app's drawing is in none of
                them. video_buffer() is where the zero-copy path waits for a
                free buffer (back-pressure); submit_video_frame waits in the
                same place, then copies the frame into it.
    memcpy µs   a plain copy of a drawn 6,220,800-byte frame into the buffer
                from video_buffer() (paced zero-copy run only; drawn over
                before it is sent)
    wall s      copy / zero-copy: CombinedRecorder::new + start_recording
                through stop_recording returning (file finalized); cli,
                ffmpeg: the command's start to exit. Median of R runs.
    fps         N / wall
    CPU s       user + system: for copy / zero-copy / ffmpeg-pipe this process
                (the app's drawing and submits) and the processes it reaped;
                for cli and ffmpeg the command and its children (wait4);
                video-normalize / video-encode: those nodes' own, from the
                run's report
    MB          the output file

OPTIONS
    --frames N    frames per recording, a multiple of 30 (default 300: 10 s)
    --runs R      unpaced rounds (default 3)
    --graph FILE  the CLI's graph (default graphs/1080p.yaml)
    --keep DIR    keep the files and run logs in DIR
    -h, --help    this text
";

const WIDTH: u32 = 1920;
const HEIGHT: u32 = 1080;
const FPS: u64 = 30;
const RATE: u32 = 48_000;
const CHANNELS: u32 = 2;
const FRAME_BYTES: usize = WIDTH as usize * HEIGHT as usize * 3;

struct Options {
    frames: u64,
    runs: usize,
    graph: String,
    keep: Option<PathBuf>,
    /// Where the runs write: `keep`, else a scratch directory.
    work: PathBuf,
}

fn parse_args() -> Result<Options> {
    let mut o = Options {
        frames: 300,
        runs: 3,
        graph: "graphs/1080p.yaml".into(),
        keep: None,
        work: std::env::temp_dir().join(format!("embed-bench-{}", std::process::id())),
    };
    bench::each_arg(HELP, |a, value| {
        match a {
            "--frames" => o.frames = value()?.parse().context("--frames")?,
            "--runs" => o.runs = value()?.parse().context("--runs")?,
            "--graph" => o.graph = value()?,
            "--keep" => o.keep = Some(value()?.into()),
            other => bail!("unknown argument `{other}` (see --help)"),
        }
        Ok(())
    })?;
    if o.frames == 0 || !o.frames.is_multiple_of(FPS) {
        bail!(
            "--frames must be a positive multiple of {FPS} (whole seconds for the CLI and ffmpeg)"
        );
    }
    if o.runs == 0 {
        bail!("--runs must be at least 1");
    }
    if let Some(keep) = &o.keep {
        o.work = keep.clone();
    }
    Ok(o)
}

/// How the app hands its pictures over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Handover {
    /// `submit_video_frame`: drawn in the app's memory, copied once.
    Copy,
    /// `video_buffer` + `submit_video_buffer`: drawn in shared memory.
    ZeroCopy,
}

/// One row of the throughput table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Job {
    Embedded(Handover),
    Cli,
    /// The CLI with an RGB24 camera: the same conversion to YUV 4:2:0 in
    /// video-normalize as the app's RGB24 frames get.
    CliRgb24,
    /// ffmpeg's own test source.
    Ffmpeg,
    /// ffmpeg fed the app's RGB24 frames through a pipe: what an app
    /// would do without the recorder.
    FfmpegPipe,
}

impl Job {
    const ALL: [Job; 6] = [
        Job::Embedded(Handover::Copy),
        Job::Embedded(Handover::ZeroCopy),
        Job::Cli,
        Job::CliRgb24,
        Job::Ffmpeg,
        Job::FfmpegPipe,
    ];

    fn name(self) -> &'static str {
        match self {
            Job::Embedded(Handover::Copy) => "copy",
            Job::Embedded(Handover::ZeroCopy) => "zero-copy",
            Job::Cli => "cli",
            Job::CliRgb24 => "cli-rgb24",
            Job::Ffmpeg => "ffmpeg",
            Job::FfmpegPipe => "ffmpeg-pipe",
        }
    }

    /// What the row runs, for the table.
    fn describe(self) -> &'static str {
        match self {
            Job::Embedded(Handover::Copy) => "embedded, copy: `submit_video_frame`",
            Job::Embedded(Handover::ZeroCopy) => {
                "embedded, zero-copy: `video_buffer` + `submit_video_buffer`"
            }
            Job::Cli => "CLI: `runtime run` GRAPH, test sources, `realtime=false`",
            Job::CliRgb24 => {
                "CLI as above, `camera.pixel_format=rgb24` (converted like the app's frames)"
            }
            Job::Ffmpeg => "ffmpeg: testsrc2 + sine, libx264 veryfast CRF 23, AAC",
            Job::FfmpegPipe => "ffmpeg fed the app's RGB24 frames on stdin, + sine, same settings",
        }
    }
}

/// A moment on the wall clock and on this thread's CPU clock.
#[derive(Debug, Clone, Copy)]
struct Stamp {
    wall: Instant,
    cpu_ns: u64,
}

impl Stamp {
    fn now() -> Stamp {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` outlives the call; the clock id is valid on Linux.
        unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        Stamp {
            wall: Instant::now(),
            cpu_ns: ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64,
        }
    }

    /// Wall and CPU µs from `self` to now.
    fn elapsed_us(self) -> (f64, f64) {
        let now = Stamp::now();
        let wall = (now.wall - self.wall).as_secs_f64() * 1e6;
        (wall, now.cpu_ns.saturating_sub(self.cpu_ns) as f64 / 1e3)
    }
}

/// One call's durations, frame by frame, µs: wall clock, and the CPU time
/// of the calling thread (without the time it was preempted or waited).
#[derive(Debug, Default, Clone)]
struct Series {
    wall: Vec<f64>,
    cpu: Vec<f64>,
}

impl Series {
    fn push(&mut self, (wall, cpu): (f64, f64)) {
        self.wall.push(wall);
        self.cpu.push(cpu);
    }

    fn extend(&mut self, other: &Series) {
        self.wall.extend(&other.wall);
        self.cpu.extend(&other.cpu);
    }
}

/// Per-frame durations of the recorder's calls, and of the app's own work.
#[derive(Debug, Default, Clone)]
struct Times {
    /// The whole submit of a picture: `submit_video_frame`, or
    /// `video_buffer` + `submit_video_buffer`.
    submit: Series,
    /// Zero-copy: `video_buffer()` alone.
    buffer: Series,
    /// Zero-copy: `submit_video_buffer` alone.
    send: Series,
    /// A plain copy of a frame into a shared-memory buffer.
    memcpy: Series,
    /// `submit_audio_frame`.
    audio: Series,
    /// The app drawing a picture (in its memory, or in the shared buffer).
    draw: Series,
}

impl Times {
    fn extend(&mut self, other: &Times) {
        for (a, b) in self.all_mut().into_iter().zip(other.all()) {
            a.extend(b);
        }
    }

    fn all(&self) -> [&Series; 6] {
        [
            &self.submit,
            &self.buffer,
            &self.send,
            &self.memcpy,
            &self.audio,
            &self.draw,
        ]
    }

    fn all_mut(&mut self) -> [&mut Series; 6] {
        let t = self;
        [
            &mut t.submit,
            &mut t.buffer,
            &mut t.send,
            &mut t.memcpy,
            &mut t.audio,
            &mut t.draw,
        ]
    }
}

/// One finished recording or command.
#[derive(Debug, Clone, Default)]
struct Run {
    wall_s: f64,
    cpu_s: f64,
    times: Times,
    /// Embedded: `start_recording` and `stop_recording`, s.
    start_s: f64,
    stop_s: f64,
    /// Embedded: picture submits that waited for a free buffer.
    pool_waits: u64,
    /// Ours: CPU seconds of video-normalize and video-encode.
    node_cpu: [Option<f64>; 2],
    /// The output file's size.
    size_mb: f64,
}

/// What the app draws and plays: the camera's test pattern and a 440 Hz
/// tone, one frame period at a time.
struct App {
    pattern: TestPattern,
    /// The copy path's picture, in the app's own memory.
    pixels: Vec<u8>,
    /// A drawn frame, the source of the plain memcpy.
    reference: Vec<u8>,
    samples: Vec<f32>,
}

impl App {
    fn new() -> Result<App> {
        let pattern = TestPattern::new(PatternConfig {
            width: WIDTH,
            height: HEIGHT,
            format: node_api::PixelFormat::Rgb24,
            fps: Rational {
                num: FPS as i64,
                den: 1,
            },
            clapper: false,
            noise: 0,
        })?;
        let mut reference = vec![0; FRAME_BYTES];
        pattern.render(0, false, &mut reference);
        Ok(App {
            pattern,
            pixels: vec![0; FRAME_BYTES],
            reference,
            samples: Vec::new(),
        })
    }

    /// Interleaved stereo samples of frame period `n`, and their timestamp.
    fn tone(&mut self, n: u64) -> (&[f32], Duration) {
        let (from, to) = (n * u64::from(RATE) / FPS, (n + 1) * u64::from(RATE) / FPS);
        self.samples.clear();
        for k in from..to {
            let t = k as f64 / f64::from(RATE);
            let v = (0.25 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()) as f32;
            self.samples.extend([v; CHANNELS as usize]);
        }
        let ts = Duration::from_nanos(from * 1_000_000_000 / u64::from(RATE));
        (&self.samples, ts)
    }
}

/// Draws and submits picture `n` (and its sound), timing the recorder's calls.
fn submit_frame(
    recorder: &CombinedRecorder,
    app: &mut App,
    path: Handover,
    n: u64,
    measure_memcpy: bool,
    times: &mut Times,
) -> Result<()> {
    let ts = Duration::from_nanos(n * 1_000_000_000 / FPS);
    match path {
        Handover::Copy => {
            let t = Stamp::now();
            app.pattern.render(n, false, &mut app.pixels);
            times.draw.push(t.elapsed_us());
            let frame = VideoFrame::rgb24(&app.pixels, WIDTH, HEIGHT).with_timestamp(ts);
            let t = Stamp::now();
            recorder.submit_video_frame(frame)?;
            times.submit.push(t.elapsed_us());
        }
        Handover::ZeroCopy => {
            let t = Stamp::now();
            let mut buf = recorder.video_buffer()?;
            let buffer = t.elapsed_us();
            if measure_memcpy {
                let t = Stamp::now();
                buf.copy_from_slice(&app.reference);
                std::hint::black_box(&mut *buf);
                times.memcpy.push(t.elapsed_us());
            }
            let t = Stamp::now();
            app.pattern.render(n, false, &mut buf);
            times.draw.push(t.elapsed_us());
            let t = Stamp::now();
            recorder.submit_video_buffer(buf, Some(ts))?;
            let send = t.elapsed_us();
            times.buffer.push(buffer);
            times.send.push(send);
            times.submit.push((buffer.0 + send.0, buffer.1 + send.1));
        }
    }
    let (samples, ts) = app.tone(n);
    let frame = AudioFrame::interleaved_f32(samples, RATE, CHANNELS).with_timestamp(ts);
    let t = Stamp::now();
    recorder.submit_audio_frame(frame)?;
    times.audio.push(t.elapsed_us());
    Ok(())
}

/// User + system CPU seconds of this process and of the children it reaped
/// (the node processes of its recordings).
fn cpu_with_children() -> f64 {
    // SAFETY: an all-zero rusage is valid; getrusage fills it in.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `u` outlives the call.
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut u) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    node_api::cpu_seconds() + secs(u.ru_utime) + secs(u.ru_stime)
}

/// One recording through `CombinedRecorder`: `paced` submits at 30 fps in
/// real time, else as fast as the graph takes the frames.
fn record(app: &mut App, path: Handover, paced: bool, frames: u64, dir: &Path) -> Result<Run> {
    let mut config = RecordingConfig::hd_1080p();
    config.run_dir = dir.join("runs");
    let cpu = cpu_with_children();
    let begin = Instant::now();
    let recorder = CombinedRecorder::new(config)?;
    recorder.start_recording(dir.join("out.mp4"))?;
    let started = Instant::now();
    let mut times = Times::default();
    for n in 0..frames {
        if paced {
            let due = Duration::from_nanos(n * 1_000_000_000 / FPS);
            std::thread::sleep(due.saturating_sub(started.elapsed()));
        }
        submit_frame(&recorder, app, path, n, paced, &mut times)?;
    }
    let stopping = Instant::now();
    let summary = recorder.stop_recording()?;
    let wall_s = begin.elapsed().as_secs_f64();
    check_summary(&summary, frames)?;
    Ok(Run {
        wall_s,
        cpu_s: cpu_with_children() - cpu,
        times,
        start_s: (started - begin).as_secs_f64(),
        stop_s: stopping.elapsed().as_secs_f64(),
        pool_waits: app_video_pool_waits(&summary),
        node_cpu: ["video-normalize", "video-encode"].map(|id| {
            let node = summary.report.nodes.get(id)?;
            Some(node.stats.as_ref()?.cpu_seconds)
        }),
        size_mb: 0.0,
    })
}

/// Every submitted frame encoded, none dropped or refused.
fn check_summary(s: &RecordingSummary, frames: u64) -> Result<()> {
    let dropped: u64 = s.dropped.iter().map(|d| d.frames).sum();
    if s.video_frames != frames || dropped > 0 || s.rejected > 0 {
        bail!(
            "{}: {} of {frames} frames encoded, {dropped} dropped, {} rejected",
            s.path.display(),
            s.video_frames,
            s.rejected
        );
    }
    Ok(())
}

fn app_video_pool_waits(s: &RecordingSummary) -> u64 {
    s.report
        .nodes
        .get(recorder::APP_VIDEO)
        .and_then(|n| n.stats.as_ref())
        .map_or(0, |st| st.outputs.values().map(|o| o.pool_waits).sum())
}

/// The command of a CLI or ffmpeg row, writing `out`.
fn command(job: Job, o: &Options, out: &Path, dir: &Path) -> Result<Command> {
    let seconds = (o.frames / FPS).to_string();
    let mut cmd;
    match job {
        Job::Cli | Job::CliRgb24 => {
            let runtime = std::env::current_exe()?
                .parent()
                .context("the bench binary has no directory")?
                .join("runtime");
            cmd = Command::new(runtime);
            cmd.args(["run", &o.graph, "-q", "--run-dir"])
                .arg(dir.join("run"))
                .arg("--report")
                .arg(dir.join("report.json"));
            for source in ["camera", "microphone"] {
                for (param, value) in [("source", "test"), ("realtime", "false")] {
                    cmd.args(["--set", &format!("{source}.{param}={value}")]);
                }
                cmd.args(["--set", &format!("{source}.duration={seconds}")]);
            }
            if job == Job::CliRgb24 {
                cmd.args(["--set", "camera.pixel_format=rgb24"]);
            }
            cmd.args(["--set", &format!("mux.path={}", out.display())]);
        }
        Job::Ffmpeg | Job::FfmpegPipe => {
            cmd = Command::new("ffmpeg");
            cmd.args(["-hide_banner", "-v", "error", "-y"]);
            match job {
                Job::Ffmpeg => cmd.args([
                    "-nostdin",
                    "-f",
                    "lavfi",
                    "-i",
                    "testsrc2=size=1920x1080:rate=30",
                ]),
                _ => cmd
                    .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", "1920x1080"])
                    .args(["-r", "30", "-i", "pipe:0"]),
            };
            cmd.args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
                .args(["-t", &seconds, "-pix_fmt", "yuv420p", "-ac", "2"])
                .args(["-c:v", "libx264", "-preset", "veryfast", "-crf", "23"])
                .args(["-g", "60", "-c:a", "aac", "-b:a", "128k"])
                .args(["-movflags", "+faststart"])
                .arg(out);
        }
        Job::Embedded(_) => unreachable!("embedded recordings run in this process"),
    }
    cmd.stdin(Stdio::null()).stdout(Stdio::null());
    Ok(cmd)
}

/// The CPU seconds of video-normalize and video-encode in a run's report.
fn node_cpu(report: &serde_json::Value) -> [Option<f64>; 2] {
    ["video-normalize", "video-encode"]
        .map(|id| report["nodes"][id]["stats"]["cpu_seconds"].as_f64())
}

/// Runs a CLI or ffmpeg row to its end.
fn run_command(job: Job, o: &Options, dir: &Path) -> Result<Run> {
    let out = dir.join("out.mp4");
    let stderr = dir.join("stderr.log");
    let mut cmd = command(job, o, &out, dir)?;
    cmd.stderr(std::fs::File::create(&stderr)?);
    // Memory is not reported here: sample the tree seldom.
    let m = run_measured(&mut cmd, Duration::from_secs(1))?;
    if m.code != Some(0) {
        let log = std::fs::read_to_string(&stderr).unwrap_or_default();
        bail!("{} exited with {:?}: {}", job.name(), m.code, log.trim());
    }
    let report = std::fs::read(dir.join("report.json")).ok();
    let report = report.and_then(|r| serde_json::from_slice(&r).ok());
    Ok(Run {
        wall_s: m.wall.as_secs_f64(),
        cpu_s: m.cpu_s,
        node_cpu: report.as_ref().map_or([None; 2], node_cpu),
        ..Run::default()
    })
}

/// ffmpeg fed the app's frames on its stdin, drawn as the copy path draws
/// them; CPU as for the embedded rows (this process and its children).
fn run_ffmpeg_pipe(app: &mut App, o: &Options, dir: &Path) -> Result<Run> {
    let mut cmd = command(Job::FfmpegPipe, o, &dir.join("out.mp4"), dir)?;
    let stderr = dir.join("stderr.log");
    cmd.stdin(Stdio::piped())
        .stderr(std::fs::File::create(&stderr)?);
    let cpu = cpu_with_children();
    let begin = Instant::now();
    let mut child = cmd.spawn().context("starting ffmpeg")?;
    let mut stdin = child.stdin.take().context("ffmpeg's stdin")?;
    let mut fed = Ok(());
    for n in 0..o.frames {
        app.pattern.render(n, false, &mut app.pixels);
        fed = stdin.write_all(&app.pixels);
        if fed.is_err() {
            break;
        }
    }
    drop(stdin);
    let status = child.wait()?;
    let wall_s = begin.elapsed().as_secs_f64();
    if !status.success() || fed.is_err() {
        let log = std::fs::read_to_string(&stderr).unwrap_or_default();
        bail!("ffmpeg (pipe) {status}, {fed:?}: {}", log.trim());
    }
    Ok(Run {
        wall_s,
        cpu_s: cpu_with_children() - cpu,
        ..Run::default()
    })
}

/// H.264 + AAC, every frame, the whole length: a broken run cannot pass
/// for a fast one.
fn verify(file: &Path, frames: u64) -> Result<()> {
    let p = bench::probe(file, false)?;
    let seconds = (frames / FPS) as f64;
    if p.video_codec != "h264" || p.audio_codec != "aac" {
        bail!(
            "{}: streams `{}` + `{}`, expected h264 + aac",
            file.display(),
            p.video_codec,
            p.audio_codec
        );
    }
    if p.video_frames != frames || (p.duration_s - seconds).abs() > 0.25 {
        bail!(
            "{}: {} video frames in {:.2} s, expected {frames} in {seconds} s",
            file.display(),
            p.video_frames,
            p.duration_s
        );
    }
    Ok(())
}

/// Runs `job` once in a directory of its own, checks its file and cleans
/// up; `paced`: an embedded recording submits at 30 fps in real time.
fn run_job(job: Job, paced: bool, app: &mut App, o: &Options, label: &str) -> Result<Run> {
    let dir = o.work.join(label);
    std::fs::create_dir_all(&dir)?;
    let mut run = match job {
        Job::Embedded(path) => record(app, path, paced, o.frames, &dir)?,
        Job::FfmpegPipe => run_ffmpeg_pipe(app, o, &dir)?,
        Job::Cli | Job::CliRgb24 | Job::Ffmpeg => run_command(job, o, &dir)?,
    };
    let out = dir.join("out.mp4");
    verify(&out, o.frames).with_context(|| label.to_string())?;
    run.size_mb = std::fs::metadata(&out)?.len() as f64 / 1e6;
    println!(
        "{label:<18} wall {:>6.2} s  {:>5.1} fps  CPU {:>6.2} s{}",
        run.wall_s,
        o.frames as f64 / run.wall_s,
        run.cpu_s,
        match job {
            Job::Embedded(_) => format!(
                "  start_recording {:.0} ms, stop_recording {:.0} ms, {} of {} picture submits waited for a buffer",
                run.start_s * 1e3,
                run.stop_s * 1e3,
                run.pool_waits,
                o.frames
            ),
            _ => String::new(),
        }
    );
    if o.keep.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(run)
}

/// `median / p99` of `xs`, or `-` when there are none.
fn cell(xs: &[f64]) -> String {
    match xs.is_empty() {
        true => "-".into(),
        false => format!("{:.0} / {:.0}", median(xs), percentile(xs, 0.99)),
    }
}

/// A row of the submit table: wall and thread CPU, paced and unpaced.
fn print_row(name: &str, paced: &Series, unpaced: &Series) {
    println!(
        "| {name} | {} | {} | {} | {} |",
        cell(&paced.wall),
        cell(&paced.cpu),
        cell(&unpaced.wall),
        cell(&unpaced.cpu)
    );
}

/// The submit-cost table: paced (no back-pressure) beside unpaced.
fn print_submit_table(paced: &[Times; 2], unpaced: &[Times; 2], frames: u64, runs: usize) {
    let [pc, pz] = paced;
    let [uc, uz] = unpaced;
    println!();
    println!("Submit cost per 1920x1080 RGB24 frame ({FRAME_BYTES} B), µs, median / p99: paced over {frames} frames, unpaced over {runs} x {frames}; wall clock, and CPU time of the submitting thread (without preemption and waits)");
    println!();
    println!("| call (what it includes) | paced at 30 fps (the graph keeps up): wall | CPU | unpaced (as fast as the graph takes them, incl. the back-pressure wait): wall | CPU |");
    println!("|---|---|---|---|---|");
    print_row(
        "copy: `submit_video_frame` (checks, wait for a free buffer, copy into it, stamp, send)",
        &pc.submit,
        &uc.submit,
    );
    print_row(
        "zero-copy: `video_buffer()` (wait for a free buffer)",
        &pz.buffer,
        &uz.buffer,
    );
    print_row(
        "zero-copy: `submit_video_buffer` (stamp, send)",
        &pz.send,
        &uz.send,
    );
    print_row("zero-copy: both calls", &pz.submit, &uz.submit);
    print_row(
        "plain memcpy of a drawn frame into a `video_buffer()`",
        &pz.memcpy,
        &uz.memcpy,
    );
    let diff = |c: &[f64], z: &[f64]| format!("{:.0}", median(c) - median(z));
    println!(
        "| copy − zero-copy, difference of the medians (the copy's share) | {} | {} | {} | {} |",
        diff(&pc.submit.wall, &pz.submit.wall),
        diff(&pc.submit.cpu, &pz.submit.cpu),
        diff(&uc.submit.wall, &uz.submit.wall),
        diff(&uc.submit.cpu, &uz.submit.cpu)
    );
    let both = |a: &Times, b: &Times| {
        let mut s = a.audio.clone();
        s.extend(&b.audio);
        s
    };
    print_row(
        "`submit_audio_frame`, 1600 stereo f32 samples (both paths)",
        &both(pc, pz),
        &both(uc, uz),
    );
    print_row(
        "not a submit: the app drawing the pattern into its memory (copy)",
        &pc.draw,
        &uc.draw,
    );
    print_row(
        "not a submit: the app drawing the pattern into the `video_buffer()` (zero-copy)",
        &pz.draw,
        &uz.draw,
    );
}

/// The throughput table: medians of every row's runs, ratios to both ffmpegs.
fn print_throughput_table(results: &[(Job, Vec<Run>)], frames: u64) {
    let med = |runs: &[Run], f: &dyn Fn(&Run) -> Option<f64>| {
        let xs: Vec<f64> = runs.iter().filter_map(f).collect();
        median(&xs)
    };
    let fps_of = |job: Job| {
        let runs = results.iter().find(|(j, _)| *j == job).map(|(_, r)| r);
        runs.map_or(f64::NAN, |r| frames as f64 / med(r, &|r| Some(r.wall_s)))
    };
    let (ffmpeg, pipe) = (fps_of(Job::Ffmpeg), fps_of(Job::FfmpegPipe));
    println!();
    println!(
        "Throughput, {frames} frames of 1080p30 H.264 balanced + AAC to MP4, medians of {} runs:",
        results[0].1.len()
    );
    println!();
    println!("| run | wall s | fps | CPU s | CPU % of a core | video-normalize / video-encode CPU s | MB | fps / ffmpeg | fps / ffmpeg-pipe |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for (job, runs) in results {
        let (w, c) = (
            med(runs, &|r| Some(r.wall_s)),
            med(runs, &|r| Some(r.cpu_s)),
        );
        let nodes = match (med(runs, &|r| r.node_cpu[0]), med(runs, &|r| r.node_cpu[1])) {
            (n, e) if n.is_nan() || e.is_nan() => "-".to_string(),
            (n, e) => format!("{n:.2} / {e:.2}"),
        };
        let fps = frames as f64 / w;
        println!(
            "| {} | {w:.2} | {fps:.1} | {c:.2} | {:.0} | {nodes} | {:.2} | {:.3} | {:.3} |",
            job.describe(),
            c / w * 100.0,
            med(runs, &|r| Some(r.size_mb)),
            fps / ffmpeg,
            fps / pipe
        );
    }
}

/// The machine, its load and the command, as the other benches print them.
fn print_header(o: &Options) {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    let command: Vec<String> = std::env::args().collect();
    println!(
        "embed-bench: {}; load average {} at the start",
        bench::machine(),
        load.join(" ")
    );
    println!("command: {}", command.join(" "));
    println!(
        "{} frames (RGB24 1920x1080 from the app, {} s at 30 fps) per recording; H.264 balanced (veryfast, CRF 23) + AAC 128 kb/s; {} unpaced rounds",
        o.frames,
        o.frames / FPS,
        o.runs
    );
}

fn main() -> Result<()> {
    let o = parse_args()?;
    if !on_path("ffmpeg", "-version") || !on_path("ffprobe", "-version") {
        bail!("ffmpeg and ffprobe are needed (scripts/setup installs them)");
    }
    std::fs::create_dir_all(&o.work)?;
    print_header(&o);
    let mut app = App::new()?;
    let mut paced = [Times::default(), Times::default()];
    for (i, path) in [Handover::Copy, Handover::ZeroCopy].into_iter().enumerate() {
        let label = format!("paced-{}", Job::Embedded(path).name());
        paced[i] = run_job(Job::Embedded(path), true, &mut app, &o, &label)?.times;
    }
    let mut results: Vec<(Job, Vec<Run>)> = Job::ALL.iter().map(|j| (*j, Vec::new())).collect();
    for round in 0..o.runs {
        for (job, runs) in results.iter_mut() {
            let label = format!("{}-{}", job.name(), round + 1);
            runs.push(run_job(*job, false, &mut app, &o, &label)?);
        }
    }
    let mut unpaced = [Times::default(), Times::default()];
    for (i, (_, runs)) in results.iter().take(2).enumerate() {
        runs.iter().for_each(|r| unpaced[i].extend(&r.times));
    }
    print_submit_table(&paced, &unpaced, o.frames, o.runs);
    print_throughput_table(&results, o.frames);
    if o.keep.is_none() {
        let _ = std::fs::remove_dir_all(&o.work);
    } else {
        println!("files and logs kept in {}", o.work.display());
    }
    Ok(())
}
