//! Helpers for the end-to-end tests: locate the built binaries, write graphs
//! into temporary directories, run `runtime` and read its report.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub mod audio;
pub mod claps;
pub mod control_api;
pub mod hls_player;
pub mod live;
pub mod media;
pub mod netns;
pub mod rig;
pub mod servers;
pub mod sync_log;
pub mod xvfb;

/// The directory holding `runtime` and the node binaries of the profile under test.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test>-<hash>
    let dir = exe.parent().unwrap().parent().unwrap().to_path_buf();
    assert!(
        dir.join("runtime").exists(),
        "{} has no `runtime` binary: build the workspace first (`cargo build --workspace`)",
        dir.display()
    );
    dir
}

pub fn runtime_bin() -> PathBuf {
    bin_dir().join("runtime")
}

pub fn testkit_bin() -> PathBuf {
    bin_dir().join("testkit-node")
}

/// A temporary directory holding a graph file and everything a run writes.
/// Live graphs of one test binary take turns: two real-time recordings
/// at once on two cores make each other skip frames. The guard is held for
/// the test's run.
pub fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static GRAPH_RUNS: std::sync::Mutex<()> = std::sync::Mutex::new(());
    GRAPH_RUNS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Scratch {
        let dir = tempfile::Builder::new()
            .prefix("graph-test-")
            .tempdir()
            .expect("tempdir");
        // Runs as another user (memlock tests) need to write here too.
        let _ = std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o777),
        );
        Scratch { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes a graph; `{testkit}` in the text becomes the testkit node's path.
    pub fn graph(&self, name: &str, yaml: &str) -> PathBuf {
        let text = yaml
            .replace("{testkit}", &testkit_bin().display().to_string())
            .replace("{dir}", &self.dir.path().display().to_string());
        let path = self.path(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// The command `runtime run GRAPH --report report.json --run-dir run ARGS`
    /// in the scratch directory (an earlier run's report removed).
    pub fn runtime_run<S: AsRef<std::ffi::OsStr>>(&self, graph: &Path, args: &[S]) -> Command {
        let report = self.path("report.json");
        let _ = std::fs::remove_file(&report);
        let mut cmd = Command::new(runtime_bin());
        cmd.arg("run")
            .arg(graph)
            .arg("--report")
            .arg(&report)
            .arg("--run-dir")
            .arg(self.path("run"))
            .args(args)
            .current_dir(self.dir.path());
        cmd
    }

    /// Runs [`Scratch::runtime_run`] to its end.
    pub fn run(&self, graph: &Path, args: &[&str]) -> RunResult {
        let output = self
            .runtime_run(graph, args)
            .output()
            .expect("runtime runs");
        RunResult::new(output, &self.path("report.json"))
    }

    /// Runs `graph` through the runtime library, as an application embedding
    /// it does: a second after node `watch` started logging (frames flow),
    /// `control` gets the run's handle (e.g. to change params); half a
    /// second later the run is stopped.
    pub fn run_embedded(
        &self,
        graph: &Path,
        watch: &str,
        control: impl FnOnce(&runtime::run::StopHandle) + Send + 'static,
    ) -> runtime::run::RunReport {
        use std::time::Duration;
        let graph = runtime::graph::load(graph, &[], &Default::default()).expect("valid graph");
        let opts = runtime::run::RunOptions {
            console: false,
            run_dir: self.path("run"),
            ..Default::default()
        };
        let log = self.path(&format!("run/logs/{watch}.log"));
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let handle = runtime::run::StopHandle::default();
            let handed = handle.clone();
            tokio::spawn(async move {
                while !log.exists() {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                tokio::time::sleep(Duration::from_millis(1000)).await;
                control(&handed);
                tokio::time::sleep(Duration::from_millis(500)).await;
                handed.stop();
            });
            runtime::run::run(&graph, &opts, handle).await.expect("run")
        })
    }

    /// Writes an executable shell script.
    pub fn script(&self, name: &str, body: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, body).unwrap();
        let mode = std::os::unix::fs::PermissionsExt::from_mode(0o755);
        std::fs::set_permissions(&path, mode).unwrap();
        path
    }
}

impl Default for Scratch {
    fn default() -> Self {
        Self::new()
    }
}

pub struct RunResult {
    pub code: Option<i32>,
    pub stderr: String,
    pub stdout: String,
    pub report: Option<serde_json::Value>,
}

impl RunResult {
    pub fn new(output: Output, report: &Path) -> RunResult {
        RunResult {
            code: output.status.code(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            report: std::fs::read(report)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok()),
        }
    }

    pub fn report(&self) -> &serde_json::Value {
        self.report
            .as_ref()
            .unwrap_or_else(|| panic!("no report; stderr:\n{}", self.stderr))
    }

    /// A node's entry in the report.
    pub fn node(&self, id: &str) -> &serde_json::Value {
        &self.report()["nodes"][id]
    }

    pub fn assert_ok(&self) {
        assert_eq!(
            self.code,
            Some(0),
            "runtime failed; stderr:\n{}",
            self.stderr
        );
    }
}

/// Reads a JSON file a sink wrote.
pub fn read_json(path: &Path) -> serde_json::Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap()
}

/// The example app `recorder-app OUT ARGS` run to its end in the scratch
/// directory (its own log on stderr).
pub fn run_recorder_app(s: &Scratch, out: &Path, args: &[&str]) -> AppRun {
    let output = Command::new(bin_dir().join("recorder-app"))
        .arg(out)
        .args(args)
        .env("RUST_LOG", "info")
        .current_dir(s.dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let why = format!(
        "{stdout}{}\nthe nodes' warnings and summaries:\n{}",
        String::from_utf8_lossy(&output.stderr),
        logged_warnings(s.dir.path())
    );
    AppRun {
        output,
        stdout,
        why,
    }
}

/// What [`run_recorder_app`] saw.
pub struct AppRun {
    pub output: Output,
    /// The app's summary.
    pub stdout: String,
    /// Its summary, its stderr and the nodes' warnings: a failed
    /// assertion's message.
    pub why: String,
}

/// The warnings and errors the nodes of every run under `dir` logged
/// (`runs/*/logs/*.log`), and each log's last lines (its summary), each
/// line after its node's name: what a failed
/// assertion on an app's recording shows beside the app's output.
pub fn logged_warnings(dir: &Path) -> String {
    let mut out = String::new();
    let runs = std::fs::read_dir(dir.join("runs")).into_iter().flatten();
    for run in runs.flatten() {
        let logs = std::fs::read_dir(run.path().join("logs"))
            .into_iter()
            .flatten();
        for log in logs.flatten() {
            let text = std::fs::read_to_string(log.path()).unwrap_or_default();
            let name = log.file_name().to_string_lossy().into_owned();
            let lines: Vec<&str> = text.lines().collect();
            // Nodes end with their summary: what they took, sent and dropped.
            let last = lines.len().saturating_sub(3);
            for (i, line) in lines.iter().enumerate() {
                if i >= last || line.contains("WARN") || line.contains("ERROR") {
                    out += &format!("{name}: {line}\n");
                }
            }
        }
    }
    out
}

/// zenoh's segments of ours in /dev/shm.
pub fn shm_segments() -> Vec<String> {
    std::fs::read_dir("/dev/shm")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".zenoh"))
                .collect()
        })
        .unwrap_or_default()
}

/// `runtime` as the unprivileged user `nobody` (which the system has), with
/// `memlock` bytes of RLIMIT_MEMLOCK and, when given, `fsize` bytes of
/// RLIMIT_FSIZE, in the scratch directory. Needs root to switch users.
pub fn unprivileged(s: &Scratch, memlock: u64, fsize: Option<u64>) -> Command {
    let mut cmd = Command::new("prlimit");
    cmd.arg(format!("--memlock={memlock}:{memlock}"));
    if let Some(f) = fsize {
        cmd.arg(format!("--fsize={f}:{f}"));
    }
    cmd.args([
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--inh-caps=-all",
    ])
    .arg(runtime_bin())
    .current_dir(s.dir.path());
    cmd
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A process and all its descendants (the one /proc walk, shared with the
/// benchmarks).
pub use bench::procs::descendants;

/// SIGKILL a process and all its descendants at once.
pub fn kill_tree(pid: u32) {
    for p in descendants(pid) {
        // SAFETY: signalling processes we started.
        unsafe { libc::kill(p as i32, libc::SIGKILL) };
    }
}

/// A three-node graph of the testkit node: source → relay → sink, with
/// extra params for each and the sink's input edge.
pub fn testkit_chain(
    source_params: &str,
    relay_extra: &str,
    sink_params: &str,
    sink_input: &str,
) -> String {
    format!(
        r#"
name: chain
nodes:
  - id: source
    path: {{testkit}}
    outputs: [video]
    params: {{ mode: source, {source_params} }}
  - id: relay
    path: {{testkit}}
    inputs: {{ video: source/video }}
    outputs: [video]
    params: {{ mode: relay }}
{relay_extra}
  - id: sink
    path: {{testkit}}
    inputs: {{ video: {sink_input} }}
    params: {{ mode: sink, result: "{{dir}}/sink.json", {sink_params} }}
"#
    )
}
