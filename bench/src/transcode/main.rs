//! Transcode bench: the same file, the same encoder settings, our graph
//! against the system's `ffmpeg` (and other ffmpeg builds, and
//! `gst-launch-1.0` when installed), alternated run by run so all see the
//! same machine load.
//!
//! Run `transcode-bench --help` for the options.

mod table;
mod tools;

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use bench::media::{default_cache, generated_input};
use bench::peers::{self, Encode, Rate};
use bench::{on_path, probe};

use table::{print_per_node, print_run, print_table};
use tools::{Job, Run, Tool};

const HELP: &str = "\
transcode-bench: our graph against ffmpeg (other ffmpeg builds, gst-launch-1.0)
on one transcode

USAGE
    cargo build --release -p bench -p runtime -p builtin-nodes
    scripts/setup --bench        # optional: gst-launch-1.0 and a static FFmpeg
    target/release/transcode-bench [OPTIONS]

WHAT IT DOES
    1. Makes the input once (if missing): SECONDS of 1920x1080 30 fps moving
       test picture (lavfi testsrc2) and a 440 Hz stereo tone, stored
       losslessly (FFV1 + PCM in Matroska), in the cache directory.
    2. Transcodes it RUNS times with each tool, alternating
       ours, ffmpeg[, other ffmpegs][, gst], ours, ffmpeg, ...:
         ours    runtime run GRAPH with file sources (realtime: false),
                 video-encode speed=PRESET crf=CRF, AAC 128 kb/s, MP4 faststart
         ffmpeg  the system's ffmpeg -i IN -c:v libx264 -preset PRESET -crf CRF
                 -g GOP -c:a aac -b:a 128000 -movflags +faststart OUT
         ffmpeg VERSION [static]
                 each --ffmpeg binary, and the static FFmpeg that
                 scripts/setup --bench unpacks into the cache directory, with
                 the same arguments
         gst     gst-launch-1.0: matroskademux, x264enc speed-preset=PRESET
                 pass=qual quantizer=CRF key-int-max=GOP vbv-buf-capacity=0
                 aud=false, avenc_aac bitrate=128000, mp4mux faststart=true:
                 x264 gets the settings it gets from ffmpeg (its settings
                 string in the files is the same)
       GOP is the graph's keyframe interval (2 s) in frames of the input.
       gst-launch-1.0 missing: run as root, the bench runs
       scripts/setup --bench itself; else it says how to install it.
    3. Checks every output with ffprobe (one H.264 and one AAC stream, the
       input's duration within 0.25 s, every frame there), and that the first
       output of each tool decodes without an error.
    4. Prints per run, then a table of medians and the ratios to the
       system's ffmpeg, our graph's start time and per-node CPU and Pss,
       and our extra CPU against that ffmpeg per cause (start-up, setup,
       barrier, zenoh threads, plumbing nodes per hop, media work, tail,
       exit and fork server, the runtime), from each node's `cpu_phases`
       and `cpu_threads` in our `--report` (README: Benchmarks).

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
    --cache DIR       where the input is generated and the static FFmpeg is
                      looked for (default $XDG_CACHE_HOME/mediagraph-bench
                      or ~/.cache/mediagraph-bench)
    --keep DIR        keep every output and our run logs in DIR
    --ffmpeg PATH     another ffmpeg binary as one more peer (repeatable)
    --no-static       leave out the static FFmpeg of the cache directory
    --no-gst          skip gst-launch-1.0 (and its install)
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
    ffmpegs: Vec<PathBuf>,
    static_ffmpeg: bool,
    sets: Vec<String>,
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
        ffmpegs: Vec::new(),
        static_ffmpeg: true,
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
            "--ffmpeg" => o.ffmpegs.push(value()?.into()),
            "--no-static" => o.static_ffmpeg = false,
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

/// The input: `--input`, else the generated one.
fn input_file(o: &Options) -> Result<PathBuf> {
    match &o.input {
        Some(input) if !input.exists() => bail!("--input {} does not exist", input.display()),
        Some(input) => Ok(input.clone()),
        None => generated_input(&o.cache, o.seconds, 30),
    }
}

/// gst-launch-1.0 when it is (or, as root, can be) installed.
fn gst_available(o: &Options) -> bool {
    if !o.gst {
        return false;
    }
    if on_path("gst-launch-1.0", "--version") {
        return true;
    }
    if !peers::is_root() {
        eprintln!(
            "gst-launch-1.0 not installed: comparing without it (install it with `scripts/setup --bench`, as root or with sudo)"
        );
        return false;
    }
    eprintln!("gst-launch-1.0 not installed: running `scripts/setup --bench` to install it");
    match peers::run_setup_bench() {
        Ok(()) => on_path("gst-launch-1.0", "--version"),
        Err(e) => {
            eprintln!("{e:#}: comparing without gst-launch-1.0");
            false
        }
    }
}

/// The ffmpeg peers: the system's first (the ratios are to it), then each
/// `--ffmpeg`, then the cache's static build unless `--no-static`.
fn ffmpeg_tools(o: &Options) -> Result<Vec<Tool>> {
    let mut bins: Vec<(PathBuf, bool)> = vec![(PathBuf::from("ffmpeg"), true)];
    bins.extend(o.ffmpegs.iter().map(|b| (b.clone(), false)));
    if let (true, Some(bin)) = (o.static_ffmpeg, peers::static_ffmpeg(&o.cache)) {
        let same = |b: &PathBuf| b.canonicalize().ok() == bin.canonicalize().ok();
        if !o.ffmpegs.iter().any(same) {
            println!(
                "also comparing the static FFmpeg of the bench cache, {} (--no-static leaves it out)",
                bin.display()
            );
            bins.push((bin, false));
        }
    }
    let mut tools: Vec<Tool> = Vec::new();
    for (bin, system) in bins {
        let mut label = peers::ffmpeg_build(&bin)?.label();
        // Two builds of one version (a copy, another path) stay apart.
        while tools.iter().any(|t| t.name() == label) {
            label.push('\'');
        }
        tools.push(Tool::Ffmpeg { bin, label, system });
    }
    Ok(tools)
}

/// Runs every tool once per round, alternating; a failing gst-launch-1.0 is
/// left out, any other failure ends the bench.
fn run_all(
    job: &Job,
    tools: &[Tool],
    runs: usize,
    input: &bench::Probe,
) -> Result<Vec<(Tool, Vec<Run>)>> {
    let mut results: Vec<(Tool, Vec<Run>)> =
        tools.iter().map(|t| (t.clone(), Vec::new())).collect();
    for index in 0..runs {
        for (tool, done) in results.iter_mut() {
            match job.run(tool, index, input) {
                Ok(run) => {
                    print_run(index, runs, tool, &run);
                    done.push(run);
                }
                Err(e) if *tool == Tool::Gst => {
                    eprintln!("gst-launch-1.0 failed, left out: {e:#}");
                    done.clear();
                }
                Err(e) => return Err(e.context(format!("{} run {}", tool.name(), index + 1))),
            }
        }
        results.retain(|(t, done)| *t != Tool::Gst || !done.is_empty());
    }
    Ok(results)
}

fn main() -> Result<()> {
    let o = parse_args()?;
    let runtime = std::env::current_exe()?
        .parent()
        .context("the bench binary has no directory")?
        .join("runtime");
    if !runtime.exists() {
        bail!(
            "{} not found: build with `cargo build --release -p bench -p runtime -p builtin-nodes`",
            runtime.display()
        );
    }
    if !on_path("ffmpeg", "-version") || !on_path("ffprobe", "-version") {
        bail!("ffmpeg and ffprobe are needed (scripts/setup installs them)");
    }
    let input = input_file(&o)?;
    let input_probe = probe(&input, true)?;
    if input_probe.frame_rate <= 0.0 || input_probe.video_frames == 0 {
        bail!("{}: no video frames or frame rate", input.display());
    }
    let gop = (input_probe.frame_rate * 2.0).round() as u32;
    let mut tools = vec![Tool::Ours];
    tools.extend(ffmpeg_tools(&o)?);
    if gst_available(&o) {
        tools.push(Tool::Gst);
    }
    let work = match &o.keep {
        Some(dir) => dir.clone(),
        None => std::env::temp_dir().join(format!("transcode-bench-{}", std::process::id())),
    };
    std::fs::create_dir_all(&work)?;
    let job = Job {
        runtime,
        graph: o.graph.clone(),
        sets: o.sets.clone(),
        input: input.clone(),
        encode: Encode {
            preset: o.preset.clone(),
            rate: Rate::Crf(o.crf),
            gop,
            tune: None,
            threads: 0,
            audio_bps: 128_000,
            faststart: true,
        },
        crf: o.crf,
        work: work.clone(),
        keep: o.keep.is_some(),
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
    let results = run_all(&job, &tools, o.runs, &input_probe)?;
    print_table(&results, input_probe.video_frames);
    if let Some((_, ours)) = results.iter().find(|(t, _)| *t == Tool::Ours) {
        print_per_node(ours);
        // Extra CPU per cause, against the system ffmpeg (same libraries).
        let ffmpeg = results.iter().filter(|(t, _)| t.is_system_ffmpeg());
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
