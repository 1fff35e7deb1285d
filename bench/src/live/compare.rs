//! `live-bench --vs-ffmpeg`: the same lossless file recorded in real time
//! through our graph (file sources with `realtime: true`) and through
//! `ffmpeg -re` with the graph's encoder settings, alternated run by run,
//! and what each costs: CPU share of one core, summed Pss peak, drops.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use bench::media::{check_codecs, default_cache, generated_input};
use bench::peers::{self, parse_progress, Encode, Rate};
use bench::procs::{run_measured, Measured};
use bench::{median, probe, Probe};
use node_catalog::kinds::{audio_encode, camera, mux, video_encode};
use runtime::graph::{self, Graph, Override};

/// Both tools' memory is sampled alike; 250 ms as in transcode-bench, where
/// 50 ms slowed our nine processes measurably.
const SAMPLE_EVERY: Duration = Duration::from_millis(250);

pub struct Options {
    pub graph: String,
    pub seconds: u32,
    pub runs: usize,
    /// `--set`s for our graph; they also decide the settings ffmpeg gets.
    pub sets: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tool {
    Ours,
    Ffmpeg,
}

/// One measured real-time recording.
struct Run {
    m: Measured,
    dropped: u64,
    /// Ours: the nodes that dropped, and how many each.
    dropped_at: Vec<(String, u64)>,
    /// ffmpeg only: frames its video sync duplicated.
    duplicated: Option<u64>,
    frames_out: u64,
}

/// The graph as `runtime run` loads it with these `--set`s, its mux writing
/// into `dir` as in the runs (the graph's own path may be in a folder that
/// does not exist here, which the graph's checks refuse).
fn load(path: &str, sets: &[String], dir: &Path) -> Result<Graph> {
    let out = format!("mux.path={}", dir.join("out.mp4").display());
    let overrides = std::iter::once(&out)
        .chain(sets)
        .map(|s| Override::parse(s).map_err(|e| anyhow::anyhow!("--set {s}: {e}")))
        .collect::<Result<Vec<_>>>()?;
    let builtins = [("timestamp".to_string(), runtime::timestamp())].into();
    graph::load(Path::new(path), &overrides, &builtins).map_err(|d| anyhow::anyhow!("{path}: {d}"))
}

/// The params of the graph's one node of `kind`.
fn params_of<'g>(g: &'g Graph, kind: &str) -> Result<&'g node_catalog::Params> {
    let mut nodes = g.nodes.iter().filter(|n| n.kind_name() == kind);
    match (nodes.next(), nodes.next()) {
        (Some(n), None) => Ok(&n.params),
        _ => bail!("the graph needs exactly one {kind} node to compare with ffmpeg"),
    }
}

/// What ffmpeg is given: the graph's x264, AAC and MP4 settings; and the
/// camera's frame rate, which the input is generated at.
fn graph_settings(g: &Graph) -> Result<(Encode, u32)> {
    let problem = |p: node_catalog::Problem| anyhow::anyhow!("{p}");
    let v = video_encode::Settings::from_params(params_of(g, "video-encode")?).map_err(problem)?;
    let a = audio_encode::Settings::from_params(params_of(g, "audio-encode")?).map_err(problem)?;
    let m = mux::Settings::from_params(params_of(g, "mux")?).map_err(problem)?;
    let c = camera::Settings::from_params(params_of(g, "camera")?).map_err(problem)?;
    if v.codec != video_encode::Codec::H264 || a.codec != audio_encode::Codec::Aac {
        bail!("the ffmpeg comparison is for H.264 + AAC graphs");
    }
    let fps = c.fps.num as f64 / c.fps.den.max(1) as f64;
    let rate = match (v.bitrate, v.rate_control) {
        (None, _) => Rate::Crf(v.effective_crf()),
        (Some(b), video_encode::RateMode::Abr) => Rate::Abr(b),
        (Some(b), video_encode::RateMode::Cbr) => Rate::Cbr(b),
    };
    let encode = Encode {
        preset: v.effective_speed().name().to_string(),
        rate,
        // As video-encode's Settings::gop: round(fps × interval), at least 1.
        gop: (fps * v.keyframe_interval).round().max(1.0) as u32,
        tune: v.tune.clone(),
        threads: v.threads,
        audio_bps: a.effective_bitrate(),
        faststart: m.faststart,
    };
    Ok((encode, fps.round() as u32))
}

/// Our graph, its sources replaying `input` in real time.
fn ours(o: &Options, input: &Path, out: &Path, dir: &Path) -> Command {
    let mut cmd = Command::new(runtime_bin());
    cmd.args(["run", &o.graph, "-q", "--report"])
        .arg(dir.join("report.json"))
        .arg("--run-dir")
        .arg(dir.join("run"));
    let i = input.display();
    for s in [
        format!("camera.source=file:{i}"),
        "camera.realtime=true".into(),
        format!("microphone.source=file:{i}"),
        "microphone.realtime=true".into(),
        format!("mux.path={}", out.display()),
    ]
    .iter()
    .chain(&o.sets)
    {
        cmd.args(["--set", s]);
    }
    cmd
}

fn runtime_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    exe.parent().unwrap_or(Path::new(".")).join("runtime")
}

/// ffmpeg reading `input` at its native rate (`-re`), its counters to
/// `progress`.
fn ffmpeg(encode: &Encode, input: &Path, out: &Path, progress: &Path) -> Command {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-v", "error", "-nostdin", "-y", "-re", "-i"])
        .arg(input)
        .args(encode.ffmpeg_args())
        .arg("-progress")
        .arg(progress)
        .arg(out);
    cmd
}

/// Drops our nodes counted: each node's `dropped` in the report, where not 0.
fn ours_dropped(report: &Path) -> Result<Vec<(String, u64)>> {
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(report)?)?;
    Ok(r["nodes"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(id, n)| Some((id.clone(), n["dropped"].as_u64()?)))
        .filter(|(_, d)| *d > 0)
        .collect())
}

/// One run of `tool`; its output is checked with ffprobe (H.264 + AAC, and
/// its frames counted against the input's).
fn run_one(tool: Tool, o: &Options, encode: &Encode, input: &Path, dir: &Path) -> Result<Run> {
    let out = dir.join("out.mp4");
    let progress = dir.join("progress.txt");
    let mut cmd = match tool {
        Tool::Ours => ours(o, input, &out, dir),
        Tool::Ffmpeg => ffmpeg(encode, input, &out, &progress),
    };
    let stderr = dir.join("stderr.txt");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr)?);
    let m = run_measured(&mut cmd, SAMPLE_EVERY)?;
    if m.code != Some(0) {
        let log = std::fs::read_to_string(&stderr).unwrap_or_default();
        bail!("{tool:?} exited with {:?}: {}", m.code, log.trim());
    }
    let p = probe(&out, false)?;
    check_codecs(&out, &p)?;
    let (dropped_at, dropped, duplicated) = match tool {
        Tool::Ours => {
            let at = ours_dropped(&dir.join("report.json"))?;
            let sum = at.iter().map(|(_, d)| d).sum();
            (at, sum, None)
        }
        Tool::Ffmpeg => {
            let p = parse_progress(&std::fs::read_to_string(&progress)?);
            if !p.ended {
                bail!("ffmpeg's progress never said `progress=end`");
            }
            (Vec::new(), p.dropped, Some(p.duplicated))
        }
    };
    Ok(Run {
        m,
        dropped,
        dropped_at,
        duplicated,
        frames_out: p.video_frames,
    })
}

fn tool_name(tool: Tool, ffmpeg_label: &str) -> String {
    match tool {
        Tool::Ours => "ours".into(),
        Tool::Ffmpeg => ffmpeg_label.into(),
    }
}

fn print_run(name: &str, i: usize, o: &Options, r: &Run, input: &Probe) {
    let at: Vec<String> = r
        .dropped_at
        .iter()
        .map(|(n, d)| format!("{n} {d}"))
        .collect();
    println!(
        "run {}/{} {name:<14} wall {:>6.2} s (+{:.2})  CPU {:>6.2} s ({:>5.1} % of a core)  Pss peak {:>6.1} MiB  dropped {}{}{}  frames {}/{}",
        i + 1,
        o.runs,
        r.m.wall.as_secs_f64(),
        behind_s(r, input),
        r.m.cpu_s,
        cpu_pct(r),
        pss_mib(r),
        r.dropped,
        if at.is_empty() { String::new() } else { format!(" ({})", at.join(", ")) },
        r.duplicated.map(|d| format!(" duplicated {d}")).unwrap_or_default(),
        r.frames_out,
        input.video_frames
    );
}

/// Wall time beyond the input's length: start-up and finishing, and for
/// ffmpeg, which does not drop when it cannot keep up, how far it fell
/// behind real time.
fn behind_s(r: &Run, input: &Probe) -> f64 {
    r.m.wall.as_secs_f64() - input.duration_s
}

fn cpu_pct(r: &Run) -> f64 {
    r.m.cpu_s / r.m.wall.as_secs_f64() * 100.0
}

fn pss_mib(r: &Run) -> f64 {
    r.m.peaks.pss_sum_kib as f64 / 1024.0
}

/// Medians per tool, then ours / ffmpeg.
fn print_table(results: &[(Tool, Vec<Run>)], label: &str, input: &Probe) {
    let stat =
        |runs: &[Run], f: &dyn Fn(&Run) -> f64| median(&runs.iter().map(f).collect::<Vec<_>>());
    println!();
    println!("| tool | wall s | wall − media s | CPU s | CPU % of a core | Pss peak MiB | dropped (sum) | duplicated (sum) | video frames out / in (min) |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for (tool, runs) in results {
        let dups: Option<u64> = runs.iter().map(|r| r.duplicated).sum();
        println!(
            "| {} | {:.2} | {:.2} | {:.2} | {:.1} | {:.0} | {} | {} | {} / {} |",
            tool_name(*tool, label),
            stat(runs, &|r| r.m.wall.as_secs_f64()),
            stat(runs, &|r| behind_s(r, input)),
            stat(runs, &|r| r.m.cpu_s),
            stat(runs, &cpu_pct),
            stat(runs, &pss_mib),
            runs.iter().map(|r| r.dropped).sum::<u64>(),
            dups.map(|d| d.to_string()).unwrap_or_else(|| "-".into()),
            runs.iter().map(|r| r.frames_out).min().unwrap_or(0),
            input.video_frames
        );
    }
    let (ours, ff) = (&results[0].1, &results[1].1);
    println!(
        "\nours / {label}: CPU {:.3}, CPU % of a core {:.3}, Pss peak {:.3}",
        stat(ours, &|r| r.m.cpu_s) / stat(ff, &|r| r.m.cpu_s),
        stat(ours, &cpu_pct) / stat(ff, &cpu_pct),
        stat(ours, &pss_mib) / stat(ff, &pss_mib),
    );
}

pub fn run(o: Options) -> Result<()> {
    if !runtime_bin().exists() {
        bail!(
            "{} not found: build the runtime (`cargo build --release -p runtime -p builtin-nodes`)",
            runtime_bin().display()
        );
    }
    let work = std::env::temp_dir().join(format!("live-compare-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let (encode, fps) = graph_settings(&load(&o.graph, &o.sets, &work)?)?;
    let input = generated_input(&default_cache(), o.seconds, fps)?;
    let input_probe = probe(&input, true)?;
    let label = peers::ffmpeg_build(Path::new("ffmpeg"))
        .context("the system's ffmpeg")?
        .label();
    println!(
        "{}: {} s of 1080p{fps} from {} in real time, {} runs each, alternated; {label} gets {}",
        o.graph,
        o.seconds,
        input.display(),
        o.runs,
        encode.ffmpeg_args().join(" ")
    );
    let mut results = vec![(Tool::Ours, Vec::new()), (Tool::Ffmpeg, Vec::new())];
    for i in 0..o.runs {
        for (tool, runs) in results.iter_mut() {
            let dir = work.join(format!("{tool:?}-{i}"));
            std::fs::create_dir_all(&dir)?;
            let run = run_one(*tool, &o, &encode, &input, &dir)
                .with_context(|| format!("{} run {}", tool_name(*tool, &label), i + 1))?;
            print_run(&tool_name(*tool, &label), i, &o, &run, &input_probe);
            runs.push(run);
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
    print_table(&results, &label, &input_probe);
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ffmpeg_gets_the_1080p60_graphs_settings() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../graphs/1080p60.yaml");
        let (encode, fps) =
            graph_settings(&load(path, &[], &std::env::temp_dir()).unwrap()).unwrap();
        assert_eq!(fps, 60);
        assert_eq!(
            encode,
            Encode {
                preset: "veryfast".into(),
                rate: Rate::Crf(28),
                gop: 120,
                tune: None,
                threads: 0,
                audio_bps: 192_000,
                faststart: true,
            }
        );
        // A --set changes what ffmpeg gets too.
        let sets = ["video-encode.bitrate=4M".to_string()];
        let (encode, _) =
            graph_settings(&load(path, &sets, &std::env::temp_dir()).unwrap()).unwrap();
        assert_eq!(encode.rate, Rate::Abr(4_000_000));
    }
}
