//! Transcode bench: the same file, the same encoder settings, our graph
//! against a single `ffmpeg` process (and `gst-launch-1.0` when installed),
//! alternated run by run so both see the same machine load.
//!
//! Run `transcode-bench --help` for the options.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use bench::procs::{run_measured, Measured};
use bench::{median, on_path, probe, Probe};

const HELP: &str = "\
transcode-bench: our graph against ffmpeg (and gst-launch-1.0) on one transcode

USAGE
    cargo build --release --workspace
    target/release/transcode-bench [OPTIONS]

WHAT IT DOES
    1. Makes the input once (if missing): SECONDS of 1920x1080 30 fps moving
       test picture (lavfi testsrc2) and a 440 Hz stereo tone, stored
       losslessly (FFV1 + PCM in Matroska), in the cache directory.
    2. Transcodes it RUNS times with each tool, alternating
       ours, ffmpeg[, gst], ours, ffmpeg[, gst], ...:
         ours    runtime run GRAPH with file sources (realtime: false),
                 video-encode speed=PRESET crf=CRF, AAC 128 kb/s, MP4 faststart
         ffmpeg  ffmpeg -i IN -c:v libx264 -preset PRESET -crf CRF -g GOP
                 -c:a aac -b:a 128k -movflags +faststart OUT
         gst     gst-launch-1.0 with x264enc / avenc_aac / mp4mux, same settings
       GOP is the graph's keyframe interval (2 s) in frames of the input.
    3. Checks every output with ffprobe (one H.264 and one AAC stream, the
       input's duration within 0.25 s, every frame there), and that the first
       output of each tool decodes without an error.
    4. Prints per run, then a table of medians and the ratios to ffmpeg.

MEASURES
    wall      time from start to exit of the command (for ours: `runtime run`,
              which waits for all its node processes)
    CPU       user + system seconds of the command and all its descendants
              (wait4 rusage: the runtime reaps its nodes, so theirs is included)
    Pss peak  highest sum of Pss over the process tree, sampled every 250 ms
              (/proc/PID/smaps_rollup): shared-memory frame pools count once,
              not once per process that maps them
    RSS peak  highest sum of RSS over the tree (counts shared pools per mapper)
    size      output file size

OPTIONS
    --runs N          runs per tool (default 5)
    --preset P        x264 preset (default veryfast)
    --crf N           x264 CRF (default 23)
    --seconds S       length of the generated input (default 20)
    --input FILE      use this file instead of the generated one
    --graph FILE      our graph (default graphs/1080p.yaml)
    --cache DIR       where the input is generated (default
                      $XDG_CACHE_HOME/mediagraph-bench or ~/.cache/mediagraph-bench)
    --keep DIR        keep every output and our run logs in DIR
    --no-gst          skip gst-launch-1.0 even when installed
    --set NODE.P=V    extra --set for our graph (repeatable)
    -h, --help        this text

Numbers on a shared or loaded machine are noisy: compare the ratios, which
come from runs made side by side, rather than absolute times.
";

struct Options {
    runs: usize,
    preset: String,
    crf: u32,
    seconds: u32,
    input: Option<PathBuf>,
    graph: String,
    cache: PathBuf,
    keep: Option<PathBuf>,
    gst: bool,
    sets: Vec<String>,
}

/// How often the process tree's memory is read during a run.
const SAMPLE_EVERY: Duration = Duration::from_millis(250);

fn default_cache() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("mediagraph-bench")
}

fn parse_args() -> Result<Options> {
    let mut o = Options {
        runs: 5,
        preset: "veryfast".into(),
        crf: 23,
        seconds: 20,
        input: None,
        graph: "graphs/1080p.yaml".into(),
        cache: default_cache(),
        keep: None,
        gst: true,
        sets: Vec::new(),
    };
    bench::each_arg(HELP, |a, value| {
        match a {
            "--runs" => o.runs = value()?.parse().context("--runs")?,
            "--preset" => o.preset = value()?,
            "--crf" => o.crf = value()?.parse().context("--crf")?,
            "--seconds" => o.seconds = value()?.parse().context("--seconds")?,
            "--input" => o.input = Some(value()?.into()),
            "--graph" => o.graph = value()?,
            "--cache" => o.cache = value()?.into(),
            "--keep" => o.keep = Some(value()?.into()),
            "--no-gst" => o.gst = false,
            "--set" => o.sets.push(value()?),
            other => bail!("unknown argument `{other}` (see --help)"),
        }
        Ok(())
    })?;
    if o.runs == 0 {
        bail!("--runs must be at least 1");
    }
    Ok(o)
}

/// Generates the lossless input if it is not cached yet.
fn ensure_input(o: &Options) -> Result<PathBuf> {
    if let Some(input) = &o.input {
        if !input.exists() {
            bail!("--input {} does not exist", input.display());
        }
        return Ok(input.clone());
    }
    std::fs::create_dir_all(&o.cache)
        .with_context(|| format!("creating the cache directory {}", o.cache.display()))?;
    let path = o
        .cache
        .join(format!("testsrc2-1080p30-{}s-ffv1-pcm.mkv", o.seconds));
    if path.exists() {
        return Ok(path);
    }
    eprintln!("generating {} (once) ...", path.display());
    let partial = path.with_extension("partial.mkv");
    let secs = o.seconds.to_string();
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("testsrc2=size=1920x1080:rate=30:duration={secs}"))
        .args(["-f", "lavfi", "-i"])
        .arg(format!(
            "sine=frequency=440:sample_rate=48000:duration={secs}"
        ))
        // FFV1 version 3 with slices: lossless, and decodable on several threads.
        .args([
            "-af",
            "aformat=channel_layouts=stereo",
            "-pix_fmt",
            "yuv420p",
        ])
        .args(["-c:v", "ffv1", "-level", "3", "-slices", "16", "-g", "1"])
        .args(["-c:a", "pcm_s16le"])
        .arg(&partial)
        .status()
        .context("running ffmpeg (install it: scripts/setup)")?;
    if !status.success() {
        bail!("ffmpeg could not generate the input ({status})");
    }
    std::fs::rename(&partial, &path)?;
    Ok(path)
}

/// Checks an output against the input: H.264 + AAC, same length, every frame.
fn verify(output: &Path, input: &Probe, decode: bool) -> Result<Probe> {
    let p = probe(output, false)?;
    if p.video_codec != "h264" || p.audio_codec != "aac" {
        bail!(
            "{}: streams are `{}` + `{}`, expected h264 + aac",
            output.display(),
            p.video_codec,
            p.audio_codec
        );
    }
    if (p.duration_s - input.duration_s).abs() > 0.25 {
        bail!(
            "{}: {:.2} s long, the input is {:.2} s",
            output.display(),
            p.duration_s,
            input.duration_s
        );
    }
    if input.video_frames > 0 && p.video_frames != input.video_frames {
        bail!(
            "{}: {} video frames, the input has {}",
            output.display(),
            p.video_frames,
            input.video_frames
        );
    }
    if decode {
        let out = Command::new("ffmpeg")
            .args(["-hide_banner", "-v", "error", "-i"])
            .arg(output)
            .args(["-f", "null", "-"])
            .output()
            .context("running ffmpeg")?;
        let errors = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() || !errors.trim().is_empty() {
            bail!(
                "{} does not decode cleanly: {}",
                output.display(),
                errors.trim()
            );
        }
    }
    Ok(p)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tool {
    Ours,
    Ffmpeg,
    Gst,
}

impl Tool {
    fn name(self) -> &'static str {
        match self {
            Tool::Ours => "ours",
            Tool::Ffmpeg => "ffmpeg",
            Tool::Gst => "gst-launch",
        }
    }
}

/// One measured run plus what only our runtime reports.
struct Run {
    m: Measured,
    size_bytes: u64,
    /// From our `--report`: graph start and each node's CPU seconds.
    graph_start_ms: Option<f64>,
    node_cpu_s: Vec<(String, f64)>,
    /// Ours: the whole report, for `bench::accounting`.
    report: Option<serde_json::Value>,
}

struct Job<'a> {
    o: &'a Options,
    runtime: PathBuf,
    input: PathBuf,
    gop: u32,
    work: PathBuf,
}

impl Job<'_> {
    fn command(&self, tool: Tool, out: &Path, run_dir: &Path) -> Command {
        let o = self.o;
        let input = self.input.display().to_string();
        let mut cmd;
        match tool {
            Tool::Ours => {
                cmd = Command::new(&self.runtime);
                cmd.args(["run", &o.graph, "-q", "--report"])
                    .arg(run_dir.join("report.json"))
                    .arg("--run-dir")
                    .arg(run_dir);
                for s in [
                    format!("camera.source=file:{input}"),
                    "camera.realtime=false".into(),
                    format!("microphone.source=file:{input}"),
                    "microphone.realtime=false".into(),
                    format!("video-encode.speed={}", o.preset),
                    format!("video-encode.crf={}", o.crf),
                    format!("mux.path={}", out.display()),
                ]
                .iter()
                .chain(&o.sets)
                {
                    cmd.args(["--set", s]);
                }
            }
            Tool::Ffmpeg => {
                cmd = Command::new("ffmpeg");
                cmd.args([
                    "-hide_banner",
                    "-v",
                    "error",
                    "-nostdin",
                    "-y",
                    "-i",
                    &input,
                ])
                .args(["-c:v", "libx264", "-preset", &o.preset])
                .args(["-crf", &o.crf.to_string(), "-g", &self.gop.to_string()])
                .args(["-c:a", "aac", "-b:a", "128k", "-movflags", "+faststart"])
                .arg(out);
            }
            Tool::Gst => {
                cmd = Command::new("gst-launch-1.0");
                let pipeline = format!(
                    "filesrc location={input} ! matroskademux name=d \
                     d.video_0 ! queue ! decodebin ! videoconvert ! \
                     x264enc speed-preset={} pass=qual quantizer={} key-int-max={} ! \
                     h264parse ! queue ! mp4mux name=m faststart=true ! filesink location={} \
                     d.audio_0 ! queue ! decodebin ! audioconvert ! audioresample ! \
                     avenc_aac bitrate=128000 ! aacparse ! queue ! m.",
                    o.preset,
                    o.crf,
                    self.gop,
                    out.display()
                );
                cmd.arg("-q");
                cmd.args(pipeline.split_whitespace());
            }
        }
        cmd.stdin(Stdio::null()).stdout(Stdio::null());
        cmd
    }

    fn run(&self, tool: Tool, index: usize, input: &Probe) -> Result<Run> {
        let out = self.work.join(format!("{}-{index}.mp4", tool.name()));
        let run_dir = self.work.join(format!("{}-{index}-run", tool.name()));
        let _ = std::fs::remove_file(&out);
        let mut cmd = self.command(tool, &out, &run_dir);
        let stderr_path = self.work.join(format!("{}-{index}.stderr", tool.name()));
        cmd.stderr(std::fs::File::create(&stderr_path)?);
        // Reading smaps_rollup walks page tables: every 50 ms over our nine
        // processes it cost ours ~8 % of its wall time against ffmpeg's one.
        // The peaks hold for seconds, so a coarser sample still finds them.
        let m = run_measured(&mut cmd, SAMPLE_EVERY)?;
        if m.code != Some(0) {
            let log = std::fs::read_to_string(&stderr_path).unwrap_or_default();
            bail!(
                "{} exited with {:?}: {}",
                tool.name(),
                m.code,
                log.lines().rev().take(8).collect::<Vec<_>>().join("\n")
            );
        }
        verify(&out, input, index == 0)?;
        let size_bytes = std::fs::metadata(&out)?.len();
        let mut run = Run {
            m,
            size_bytes,
            graph_start_ms: None,
            node_cpu_s: Vec::new(),
            report: None,
        };
        if tool == Tool::Ours {
            let report: serde_json::Value =
                serde_json::from_slice(&std::fs::read(run_dir.join("report.json"))?)?;
            run.graph_start_ms = report["graph_start_ms"].as_f64();
            for (id, n) in report["nodes"].as_object().into_iter().flatten() {
                let cpu = n["stats"]["cpu_seconds"].as_f64().unwrap_or(f64::NAN);
                run.node_cpu_s.push((id.clone(), cpu));
            }
            run.report = Some(report);
        }
        if self.o.keep.is_none() {
            let _ = std::fs::remove_file(&out);
            let _ = std::fs::remove_dir_all(&run_dir);
        }
        Ok(run)
    }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// The comparison table: medians of every tool's runs, and ratios to ffmpeg.
fn print_table(results: &[(Tool, Vec<Run>)], video_frames: u64) {
    let stat =
        |runs: &[Run], f: &dyn Fn(&Run) -> f64| median(&runs.iter().map(f).collect::<Vec<_>>());
    let wall = |r: &Run| r.m.wall.as_secs_f64();
    let cpu = |r: &Run| r.m.cpu_s;
    let pss = |r: &Run| mib(r.m.peaks.pss_sum_kib);
    let rss = |r: &Run| mib(r.m.peaks.rss_sum_kib);
    let size = |r: &Run| r.size_bytes as f64 / 1e6;
    let ffmpeg_runs = &results
        .iter()
        .find(|(t, _)| *t == Tool::Ffmpeg)
        .expect("ffmpeg always runs")
        .1;
    println!();
    println!(
        "| tool | wall s | fps | CPU s | CPU % of a core | Pss peak MiB | RSS peak MiB | size MB | wall / ffmpeg | paired wall / ffmpeg | CPU / ffmpeg | Pss / ffmpeg |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for (tool, runs) in results {
        let w = stat(runs, &wall);
        let c = stat(runs, &cpu);
        // Run i of a tool against ffmpeg's run i: the two ran back to back.
        let paired: Vec<f64> = runs
            .iter()
            .zip(ffmpeg_runs)
            .map(|(a, b)| wall(a) / wall(b))
            .collect();
        println!(
            "| {} | {w:.2} | {:.1} | {c:.2} | {:.0} | {:.0} | {:.0} | {:.2} | {:.3} | {:.3} | {:.3} | {:.3} |",
            tool.name(),
            video_frames as f64 / w,
            c / w * 100.0,
            stat(runs, &pss),
            stat(runs, &rss),
            stat(runs, &size),
            w / stat(ffmpeg_runs, &wall),
            median(&paired),
            c / stat(ffmpeg_runs, &cpu),
            stat(runs, &pss) / stat(ffmpeg_runs, &pss),
        );
    }
}

/// Our graph's start time and each node's share of CPU and memory.
fn print_per_node(ours: &[Run]) {
    let starts: Vec<f64> = ours.iter().filter_map(|r| r.graph_start_ms).collect();
    println!();
    println!(
        "ours: graph start (runtime run → every node armed) median {:.0} ms; per node, median CPU s and peak Pss MiB:",
        median(&starts)
    );
    let nodes: Vec<String> = ours[0].node_cpu_s.iter().map(|(n, _)| n.clone()).collect();
    for node in nodes {
        let cpu: Vec<f64> = ours
            .iter()
            .filter_map(|r| {
                r.node_cpu_s
                    .iter()
                    .find(|(n, _)| *n == node)
                    .map(|(_, c)| *c)
            })
            .collect();
        let pss: Vec<f64> = ours
            .iter()
            .filter_map(|r| r.m.peaks.pss_by_name.get(&node).map(|k| mib(*k)))
            .collect();
        println!(
            "  {node:<16} CPU {:>6.2} s  Pss {:>6.1} MiB",
            median(&cpu),
            median(&pss)
        );
    }
}

fn main() -> Result<()> {
    let o = parse_args()?;
    let runtime = std::env::current_exe()?
        .parent()
        .context("the bench binary has no directory")?
        .join("runtime");
    if !runtime.exists() {
        bail!(
            "{} not found: build with `cargo build --release --workspace`",
            runtime.display()
        );
    }
    if !on_path("ffmpeg", "-version") || !on_path("ffprobe", "-version") {
        bail!("ffmpeg and ffprobe are needed (scripts/setup installs them)");
    }
    let input = ensure_input(&o)?;
    let input_probe = probe(&input, true)?;
    if input_probe.frame_rate <= 0.0 || input_probe.video_frames == 0 {
        bail!("{}: no video frames or frame rate", input.display());
    }
    let gop = (input_probe.frame_rate * 2.0).round() as u32;
    let mut tools = vec![Tool::Ours, Tool::Ffmpeg];
    if o.gst {
        if on_path("gst-launch-1.0", "--version") {
            tools.push(Tool::Gst);
        } else {
            eprintln!("gst-launch-1.0 not installed: comparing with ffmpeg only");
        }
    }
    let work = match &o.keep {
        Some(dir) => dir.clone(),
        None => std::env::temp_dir().join(format!("transcode-bench-{}", std::process::id())),
    };
    std::fs::create_dir_all(&work)?;
    let job = Job {
        o: &o,
        runtime,
        input: input.clone(),
        gop,
        work: work.clone(),
    };

    println!(
        "input {}: {:.2} s, {} frames at {:.2} fps; x264 preset {} crf {} keyint {gop}, AAC 128 kb/s, MP4 faststart; {} runs each, alternated",
        input.display(),
        input_probe.duration_s,
        input_probe.video_frames,
        input_probe.frame_rate,
        o.preset,
        o.crf,
        o.runs
    );
    let mut results: Vec<(Tool, Vec<Run>)> = tools.iter().map(|t| (*t, Vec::new())).collect();
    for index in 0..o.runs {
        for (tool, runs) in results.iter_mut() {
            match job.run(*tool, index, &input_probe) {
                Ok(run) => {
                    println!(
                        "run {}/{} {:<10} wall {:>6.2} s  CPU {:>6.2} s  Pss peak {:>6.1} MiB  RSS peak {:>6.1} MiB  {:>5.2} MB{}",
                        index + 1,
                        o.runs,
                        tool.name(),
                        run.m.wall.as_secs_f64(),
                        run.m.cpu_s,
                        mib(run.m.peaks.pss_sum_kib),
                        mib(run.m.peaks.rss_sum_kib),
                        run.size_bytes as f64 / 1e6,
                        run.graph_start_ms
                            .map(|ms| format!("  graph start {ms:.0} ms"))
                            .unwrap_or_default()
                    );
                    runs.push(run);
                }
                Err(e) if *tool == Tool::Gst => {
                    eprintln!("gst-launch-1.0 failed, left out: {e:#}");
                    runs.clear();
                }
                Err(e) => {
                    return Err(e.context(format!("{} run {}", tool.name(), index + 1)));
                }
            }
        }
        results.retain(|(t, runs)| *t != Tool::Gst || !runs.is_empty());
    }

    print_table(&results, input_probe.video_frames);
    if let Some((_, ours)) = results.iter().find(|(t, _)| *t == Tool::Ours) {
        print_per_node(ours);
        let ffmpeg = results.iter().filter(|(t, _)| *t == Tool::Ffmpeg);
        let ours = ours.iter().map(|r| (r.m.cpu_s, r.report.as_ref()));
        bench::accounting::print(ours, ffmpeg.flat_map(|(_, r)| r).map(|r| r.m.cpu_s));
    }
    if o.keep.is_none() {
        let _ = std::fs::remove_dir_all(&work);
    } else {
        println!("outputs and logs kept in {}", work.display());
    }
    Ok(())
}
