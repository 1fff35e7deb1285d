//! Graphs run in the background: a recording chain with live test sources,
//! a `runtime run` whose stderr the test reads as it comes, and the node
//! processes under it, to kill or stop while the graph runs.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::{RunResult, Scratch};

/// The nodes of [`recording_with`]'s chain (graphs/1080p.yaml's), in order.
pub const RECORDING_NODES: [&str; 8] = [
    "camera",
    "microphone",
    "video-normalize",
    "audio-normalize",
    "sync",
    "video-encode",
    "audio-encode",
    "mux",
];

/// The mux's params in [`recording_with`]'s graphs.
const MUX_PARAMS: &str = "params: { path: {dir}/out.mp4 }";

/// The recording chain of graphs/1080p.yaml at 320×240, live test sources.
pub fn small_recording(extra_video_encode: &str) -> String {
    recording(320, 240, "{ speed: ultrafast }", extra_video_encode)
}

pub fn recording(width: u32, height: u32, encode_params: &str, extra_video_encode: &str) -> String {
    recording_with(width, height, encode_params, extra_video_encode, "", "")
}

/// The chain at 160×120 from live clapper test sources, a keyframe a
/// second, with `extra_sync` added to the sync node (see [`recording_with`]).
pub fn clapper_recording(extra_sync: &str) -> String {
    recording_with(
        160,
        120,
        "{ speed: ultrafast, keyframe_interval: 1 }",
        "",
        ", pattern: clapper",
        extra_sync,
    )
}

/// `graph` (one of [`recording_with`]'s) with the mux's params `params`
/// (e.g. `{ path: '{dir}/take.mkv', recording: false }`) instead of its own.
pub fn with_mux_params(graph: &str, params: &str) -> String {
    assert!(graph.contains(MUX_PARAMS), "not a recording_with graph");
    graph.replace(MUX_PARAMS, &format!("params: {params}"))
}

/// [`recording`], with `sources` appended to both test sources' params
/// (e.g. `, pattern: clapper`) and `extra_sync` to the sync node (e.g.
/// `\n    params: { paused: true }`).
pub fn recording_with(
    width: u32,
    height: u32,
    encode_params: &str,
    extra_video_encode: &str,
    sources: &str,
    extra_sync: &str,
) -> String {
    format!(
        "name: supervised
nodes:
  - id: camera
    node: camera
    params: {{ source: test{sources}, width: {width}, height: {height}, fps: 30 }}
  - id: microphone
    node: microphone
    params: {{ source: test{sources} }}
  - id: video-normalize
    node: video-normalize
    inputs: {{ video: camera/video }}
    params: {{ width: {width}, height: {height}, fps: 30 }}
  - id: audio-normalize
    node: audio-normalize
    inputs: {{ audio: microphone/audio }}
  - id: sync
    node: sync
    inputs: {{ video: video-normalize/video, audio: audio-normalize/audio }}{extra_sync}
  - id: video-encode
    node: video-encode
    inputs: {{ video: sync/video }}
    params: {encode_params}{extra_video_encode}
  - id: audio-encode
    node: audio-encode
    inputs: {{ audio: sync/audio }}
  - id: mux
    node: mux
    inputs: {{ video: video-encode/video, audio: audio-encode/audio }}
    {MUX_PARAMS}
"
    )
}

/// A `runtime run` in the background whose stderr is collected, so the test
/// can wait for the graph to start and then kill one of its nodes.
pub struct LiveRun {
    pub child: Child,
    lines: mpsc::Receiver<String>,
    stderr: Vec<String>,
    report: std::path::PathBuf,
}

impl LiveRun {
    pub fn start(s: &Scratch, graph: &Path, args: &[&str]) -> LiveRun {
        Self::start_with_env(s, graph, args, &[])
    }

    /// As `start`, with these variables in the runtime's environment.
    pub fn start_with_env(
        s: &Scratch,
        graph: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> LiveRun {
        let report = s.path("report.json");
        let mut child = s
            .runtime_run(graph, args)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("runtime starts");
        let (tx, lines) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        LiveRun {
            child,
            lines,
            stderr: Vec::new(),
            report,
        }
    }

    /// Waits for a stderr line containing `text` (panics if the run ends
    /// first); the line.
    pub fn wait_for(&mut self, text: &str) -> String {
        loop {
            match self.lines.recv_timeout(Duration::from_secs(120)) {
                Ok(line) => {
                    let found = line.contains(text);
                    self.stderr.push(line.clone());
                    if found {
                        return line;
                    }
                }
                Err(_) => panic!("no `{text}` on stderr; so far:\n{}", self.stderr.join("\n")),
            }
        }
    }

    /// Waits until every one of `texts` has been on stderr, in any order.
    pub fn wait_for_all(&mut self, texts: &[&str]) {
        let seen = |lines: &[String], t: &str| lines.iter().any(|l| l.contains(t));
        while let Some(missing) = texts.iter().find(|t| !seen(&self.stderr, t)) {
            self.wait_for(missing);
        }
    }

    /// SIGKILLs the running process of `binary` (a node of this run).
    pub fn kill_node(&self, binary: &str) -> u32 {
        self.signal_node(binary, libc::SIGKILL)
    }

    /// Sends `signal` to the running process of `binary` (a node of this run).
    pub fn signal_node(&self, binary: &str, signal: i32) -> u32 {
        let pid = node_pid(self.child.id(), binary)
            .unwrap_or_else(|| panic!("no {binary} process under the runtime"));
        // SAFETY: signalling a process this test started (through the runtime).
        unsafe { libc::kill(pid as i32, signal) };
        pid
    }

    /// Sends `signal` to the runtime itself (SIGINT: Ctrl-C).
    pub fn signal_runtime(&self, signal: i32) {
        // SAFETY: signalling our own child, which has not been waited for.
        unsafe { libc::kill(self.child.id() as i32, signal) };
    }

    pub fn finish(mut self) -> RunResult {
        let status = self.child.wait().expect("runtime ends");
        self.stderr.extend(self.lines.iter());
        let _ = status;
        let output = std::process::Output {
            status,
            stdout: Vec::new(),
            stderr: self.stderr.join("\n").into_bytes(),
        };
        RunResult::new(output, &self.report)
    }
}

/// The pid of the child of `runtime` running `binary` (comm is cut at 15 bytes).
pub fn node_pid(runtime: u32, binary: &str) -> Option<u32> {
    let comm = &binary[..binary.len().min(15)];
    crate::descendants(runtime).into_iter().skip(1).find(|p| {
        std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == comm)
    })
}

/// Waits until a process other than `old` runs `binary` (the restart).
pub fn wait_for_restart(run: &LiveRun, binary: &str, old: u32) -> u32 {
    for _ in 0..2400 {
        if let Some(pid) = node_pid(run.child.id(), binary).filter(|p| *p != old) {
            return pid;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("{binary} was not restarted");
}
