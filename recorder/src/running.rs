//! Any graph, run from an application: [`Runtime::start`] loads a graph file
//! as `runtime run` does and returns a [`RunningGraph`] to feed (its
//! `app-video` / `app-audio` nodes), watch, change and stop.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use runtime::control::{Control, ControlAddr, ControlServer};
use runtime::graph::{self, Graph, Override};
use runtime::run::{self, Host, RunEvent, RunOptions, RunReport, StopHandle};
use tokio::sync::broadcast;

use crate::audio::AudioInput;
use crate::config::WhenBehind;
use crate::error::{RecorderError, Result};
use crate::events::{self, StatusEvents};
use crate::host::AppHost;
use crate::stats::Statistics;
use crate::video::VideoInput;

/// How graphs are run from this application.
#[derive(Debug, Clone)]
pub struct Runtime {
    node_dir: Option<PathBuf>,
    run_dir: PathBuf,
    when_behind: WhenBehind,
    grace: Duration,
    control: Option<ControlAddr>,
}

impl Default for Runtime {
    fn default() -> Self {
        Runtime {
            node_dir: None,
            run_dir: PathBuf::from("runs"),
            when_behind: WhenBehind::Wait,
            grace: RunOptions::default().grace,
            control: None,
        }
    }
}

impl Runtime {
    /// Nodes found as [`Runtime::node_dir`] says, logs under `runs/`, back-pressure.
    pub fn new() -> Self {
        Runtime::default()
    }

    /// Where the built-in nodes' executable (`mediagraph-nodes`) is. By
    /// default: `MEDIAGRAPH_NODE_DIR`, else beside this program (a cargo
    /// build of an app in this workspace puts it there; examples and tests
    /// look one directory up), else the release or debug build of the
    /// mediagraph checkout this crate comes from.
    pub fn node_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.node_dir = Some(dir.into());
        self
    }

    /// Where runs keep their node logs (a directory per run inside).
    pub fn run_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.run_dir = dir.into();
        self
    }

    /// What a submit does when the graph is behind.
    pub fn when_behind(mut self, w: WhenBehind) -> Self {
        self.when_behind = w;
        self
    }

    /// Serves the control API (and its dashboard) over every graph it
    /// starts, as `runtime run --control ADDR` does: control.json in the
    /// graph's run directory. The app and the API's clients drive the same
    /// [`Control`] ([`RunningGraph::control`]).
    pub fn control(mut self, addr: ControlAddr) -> Self {
        self.control = Some(addr);
        self
    }

    /// This machine's cameras, screens (`$DISPLAY`'s), audio inputs and
    /// hardware encoders, as `runtime devices` lists them: what a
    /// [`crate::VideoSource`] or [`crate::AudioSource`] can name.
    pub fn devices(&self) -> Result<runtime::devices::Devices> {
        runtime::devices::list_in(&self.find_node_dir()?)
            .map_err(|e| RecorderError::Failed(format!("{e:#}")))
    }

    /// The directory of `mediagraph-nodes`: the one set, else the runtime's
    /// default (`MEDIAGRAPH_NODE_DIR` when set, beside this program), else the
    /// release or debug build of the checkout this crate was built from (an
    /// app that depends on it by path or git); an error naming every place.
    fn find_node_dir(&self) -> Result<PathBuf> {
        if let Some(dir) = &self.node_dir {
            run::builtin_binary_in(dir)?;
            return Ok(dir.clone());
        }
        let default = run::builtin_binary(None);
        if let Ok(binary) = &default {
            return Ok(binary.parent().unwrap_or(Path::new(".")).to_path_buf());
        }
        // A directory the user named is not second-guessed.
        if std::env::var_os("MEDIAGRAPH_NODE_DIR").is_some() {
            return Err(RecorderError::Failed(format!("{:#}", default.unwrap_err())));
        }
        let checkout = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join("target");
        let builds = [checkout.join("release"), checkout.join("debug")];
        if let Some(dir) = builds.iter().find(|d| run::builtin_binary_in(d).is_ok()) {
            return Ok(dir.clone());
        }
        Err(RecorderError::Failed(format!(
            "{:#}; nor in {} or {} (build it: `cargo build --release --workspace` in the mediagraph checkout, or set Runtime::node_dir / RecordingConfig::node_dir / MEDIAGRAPH_NODE_DIR)",
            default.unwrap_err(),
            builds[0].display(),
            builds[1].display()
        )))
    }

    /// Loads `graph` as `runtime run` does (`--set` style `overrides`,
    /// `${timestamp}`), checks it, starts it, and returns once every node
    /// is armed and sources produce. An invalid graph is
    /// [`RecorderError::InvalidConfig`] with `runtime check`'s lines.
    pub fn start(&self, graph: impl AsRef<Path>, overrides: &[&str]) -> Result<RunningGraph> {
        let mut sets = Vec::new();
        for o in overrides {
            sets.push(
                Override::parse(o).map_err(|e| {
                    RecorderError::InvalidConfig(vec![format!("override `{o}`: {e}")])
                })?,
            );
        }
        let builtins = [("timestamp".to_string(), run_stamp())].into();
        let g = graph::load(graph.as_ref(), &sets, &builtins).map_err(|d| {
            RecorderError::InvalidConfig(d.0.iter().map(|d| d.to_string()).collect())
        })?;
        self.start_graph(g)
    }

    /// Starts a graph already loaded and validated.
    pub fn start_graph(&self, graph: Graph) -> Result<RunningGraph> {
        let host = AppHost::new(&graph, self.when_behind == WhenBehind::Wait)?;
        let tokio = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("recorder-runtime")
            .enable_all()
            .build()
            .map_err(|e| RecorderError::Failed(format!("cannot start the async runtime: {e}")))?;
        let opts = RunOptions {
            run_dir: self.run_dir.join(unique_run_name(&graph.name)),
            console: false,
            grace: self.grace,
            host: Some(Host(host.clone())),
            node_dir: Some(self.find_node_dir()?),
            ..RunOptions::default()
        };
        let handle = StopHandle::default();
        let control = Control::new(Arc::new(graph.clone()), handle.clone());
        let control = Arc::new(control.with_node_dir(opts.node_dir.clone()));
        let server = match &self.control {
            Some(addr) => Some(
                tokio
                    .block_on(ControlServer::serve(addr, &opts.run_dir, control.clone()))
                    .map_err(|e| RecorderError::Failed(format!("the control API: {e:#}")))?,
            ),
            None => None,
        };
        if let Some(server) = &server {
            tracing::info!("{}", server.announcement());
        }
        let mut events = handle.subscribe();
        let status = events::forward(&tokio, &handle, graph.clone());
        let task = {
            let (graph, handle) = (graph.clone(), handle.clone());
            tokio.spawn(async move { run::run(&graph, &opts, handle).await })
        };
        let mut running = RunningGraph {
            tokio,
            handle,
            control,
            server,
            task: Some(task),
            host,
            status,
            graph,
        };
        running.wait_started(&mut events)?;
        Ok(running)
    }
}

/// A graph running in this application's care.
pub struct RunningGraph {
    tokio: tokio::runtime::Runtime,
    handle: StopHandle,
    /// The recording state (pause, sessions) the app and the control API share.
    control: Arc<Control>,
    server: Option<ControlServer>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<RunReport>>>,
    host: Arc<AppHost>,
    status: StatusEvents,
    graph: Graph,
}

impl RunningGraph {
    /// The validated graph it runs.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// Submits frames to the `app-video` node `node`.
    pub fn video_input(&self, node: &str) -> Result<VideoInput> {
        VideoInput::new(self.slot(node, "video")?)
    }

    /// Submits samples to the `app-audio` node `node`.
    pub fn audio_input(&self, node: &str) -> Result<AudioInput> {
        AudioInput::new(self.slot(node, "audio")?)
    }

    fn slot(&self, node: &str, what: &str) -> Result<Arc<crate::input::Slot>> {
        self.host.slot(node).ok_or_else(|| {
            RecorderError::NoSuchInput(format!(
                "{what} on `{node}` (no app-{what} node of that id)"
            ))
        })
    }

    /// Pause, resume and the recording sessions (start, stop, split,
    /// chapter) of this graph, as the control API drives them.
    pub fn control(&self) -> &Control {
        &self.control
    }

    /// The control API's URL, when it is served ([`Runtime::control`]).
    pub fn control_url(&self) -> Option<&str> {
        self.server.as_ref().map(ControlServer::url)
    }

    /// The latest statistics: the status line's numbers, summed and per node.
    pub fn statistics(&self) -> Statistics {
        Statistics::of(&self.handle.stats(), &self.graph)
    }

    /// Status events from now on: statistics every half second, warnings,
    /// node failures, the stop.
    pub fn subscribe(&self) -> std::sync::mpsc::Receiver<crate::StatusEvent> {
        self.status.subscribe()
    }

    /// Changes a node's param while it runs (only params its kind marks
    /// live; a refused update is logged).
    pub fn set_param(&self, node: &str, name: &str, value: serde_json::Value) {
        self.handle.set_param(node, name, value);
    }

    /// Ends the submitted streams and stops the sources; the graph then
    /// drains and finalizes its files. Returns at once; see [`Self::wait`].
    pub fn stop(&self) {
        self.host.finish_all();
        self.handle.stop();
    }

    /// Waits until every node ended: the run's report (its `error` names the
    /// first cause when a node failed).
    pub fn wait(mut self) -> Result<RunReport> {
        self.join()
    }

    /// [`Self::stop`], then [`Self::wait`].
    pub fn stop_and_wait(self) -> Result<RunReport> {
        self.stop();
        self.wait()
    }

    fn join(&mut self) -> Result<RunReport> {
        let task = self.task.take().ok_or(RecorderError::NotRecording)?;
        let result = match self.tokio.block_on(task) {
            Ok(result) => result,
            Err(e) => Err(anyhow::anyhow!("the run's task ended: {e}")),
        };
        if let Some(server) = self.server.take() {
            self.tokio.block_on(server.finish_run(&result));
        }
        result.map_err(RecorderError::from)
    }

    /// Returns once every node armed and sources produce; an error with
    /// the first cause when the graph could not start.
    fn wait_started(&mut self, events: &mut broadcast::Receiver<RunEvent>) -> Result<()> {
        let task = self.task.as_ref().expect("a running task");
        let started = self.tokio.block_on(async {
            let mut tick = tokio::time::interval(Duration::from_millis(50));
            loop {
                tokio::select! {
                    event = events.recv() => match event {
                        Ok(RunEvent::Started) => return true,
                        Ok(RunEvent::Finished) | Err(broadcast::error::RecvError::Closed) => {
                            return false
                        }
                        _ => {}
                    },
                    // A run that fails before its barrier sends no event.
                    _ = tick.tick() => if task.is_finished() {
                        return false;
                    },
                }
            }
        });
        if started {
            return Ok(());
        }
        let report = self.join()?;
        Err(RecorderError::Failed(report.error.unwrap_or_else(|| {
            "the graph ended before it started".into()
        })))
    }
}

impl Drop for RunningGraph {
    /// A graph dropped while running is stopped, and its files finalized.
    fn drop(&mut self) {
        if self.task.is_some() {
            self.stop();
            let _ = self.join();
        }
    }
}

/// The time of a run, as in run directory names and `${timestamp}`.
fn run_stamp() -> String {
    runtime::timestamp()
}

/// `<time>-<graph>-<pid>-<n>`: runs started within one second, by one
/// process or several, keep their logs apart.
fn unique_run_name(graph: &str) -> String {
    static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{}-{graph}-{}-{n}", run_stamp(), std::process::id())
}

/// This machine's devices, the node executable found as [`Runtime::new`]
/// finds it: see [`Runtime::devices`].
pub fn devices() -> Result<runtime::devices::Devices> {
    Runtime::new().devices()
}
