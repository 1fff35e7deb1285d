//! The compared tools and one measured run of each.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Result};
use bench::media::check_output;
use bench::peers::Encode;
use bench::procs::{run_measured, Measured};
use bench::Probe;

/// How often the process tree's memory is read during a run.
const SAMPLE_EVERY: Duration = Duration::from_millis(250);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tool {
    Ours,
    /// An ffmpeg CLI; `system`: the one on PATH, which the ratios are to.
    Ffmpeg {
        bin: PathBuf,
        label: String,
        system: bool,
    },
    Gst,
}

impl Tool {
    pub fn name(&self) -> &str {
        match self {
            Tool::Ours => "ours",
            Tool::Ffmpeg { label, .. } => label,
            Tool::Gst => "gst-launch",
        }
    }

    /// The name as a file name (`ffmpeg-9.0.2-static`).
    fn slug(&self) -> String {
        self.name().replace(' ', "-")
    }

    pub fn is_system_ffmpeg(&self) -> bool {
        matches!(self, Tool::Ffmpeg { system: true, .. })
    }
}

/// One measured run plus what only our runtime reports.
pub struct Run {
    pub m: Measured,
    pub size_bytes: u64,
    /// From our `--report`: graph start and each node's CPU seconds.
    pub graph_start_ms: Option<f64>,
    pub node_cpu_s: Vec<(String, f64)>,
    /// Ours: the whole report, for `bench::accounting`.
    pub report: Option<serde_json::Value>,
}

/// What every run of every tool shares.
pub struct Job {
    pub runtime: PathBuf,
    pub graph: String,
    pub sets: Vec<String>,
    pub input: PathBuf,
    /// The peers' settings; `crf` is their `Rate::Crf`, for our graph.
    pub encode: Encode,
    pub crf: u32,
    pub work: PathBuf,
    pub keep: bool,
}

impl Job {
    fn ours(&self, out: &Path, run_dir: &Path) -> Command {
        let input = self.input.display();
        let mut cmd = Command::new(&self.runtime);
        cmd.args(["run", &self.graph, "-q", "--report"])
            .arg(run_dir.join("report.json"))
            .arg("--run-dir")
            .arg(run_dir);
        for s in [
            format!("camera.source=file:{input}"),
            "camera.realtime=false".into(),
            format!("microphone.source=file:{input}"),
            "microphone.realtime=false".into(),
            format!("video-encode.speed={}", self.encode.preset),
            format!("video-encode.crf={}", self.crf),
            format!("mux.path={}", out.display()),
        ]
        .iter()
        .chain(&self.sets)
        {
            cmd.args(["--set", s]);
        }
        cmd
    }

    fn command(&self, tool: &Tool, out: &Path, run_dir: &Path) -> Result<Command> {
        let mut cmd = match tool {
            Tool::Ours => self.ours(out, run_dir),
            Tool::Ffmpeg { bin, .. } => {
                let mut cmd = Command::new(bin);
                cmd.args(["-hide_banner", "-v", "error", "-nostdin", "-y", "-i"])
                    .arg(&self.input)
                    .args(self.encode.ffmpeg_args())
                    .arg(out);
                cmd
            }
            Tool::Gst => {
                let mut cmd = Command::new("gst-launch-1.0");
                cmd.arg("-q")
                    .args(self.encode.gst_pipeline(&self.input, out)?);
                cmd
            }
        };
        cmd.stdin(Stdio::null()).stdout(Stdio::null());
        Ok(cmd)
    }

    pub fn run(&self, tool: &Tool, index: usize, input: &Probe) -> Result<Run> {
        let slug = tool.slug();
        let out = self.work.join(format!("{slug}-{index}.mp4"));
        let run_dir = self.work.join(format!("{slug}-{index}-run"));
        let _ = std::fs::remove_file(&out);
        let mut cmd = self.command(tool, &out, &run_dir)?;
        let stderr_path = self.work.join(format!("{slug}-{index}.stderr"));
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
        check_output(&out, input, index == 0)?;
        let mut run = Run {
            m,
            size_bytes: std::fs::metadata(&out)?.len(),
            graph_start_ms: None,
            node_cpu_s: Vec::new(),
            report: None,
        };
        if *tool == Tool::Ours {
            read_report(&run_dir.join("report.json"), &mut run)?;
        }
        if !self.keep {
            let _ = std::fs::remove_file(&out);
            let _ = std::fs::remove_dir_all(&run_dir);
        }
        Ok(run)
    }
}

/// Our `--report`: the graph's start time and each node's CPU.
fn read_report(path: &Path, run: &mut Run) -> Result<()> {
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(path)?)?;
    run.graph_start_ms = report["graph_start_ms"].as_f64();
    for (id, n) in report["nodes"].as_object().into_iter().flatten() {
        let cpu = n["stats"]["cpu_seconds"].as_f64().unwrap_or(f64::NAN);
        run.node_cpu_s.push((id.clone(), cpu));
    }
    run.report = Some(report);
    Ok(())
}
