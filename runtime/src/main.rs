//! `runtime`: the command line over the runtime library.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use runtime::control::{ctl, ControlAddr, ControlServer};
use runtime::graph::{self, Override, RenderFormat};
use runtime::run::{RunOptions, StopHandle};

/// Exit codes: 0 success, 1 a node failed at run time, 2 bad usage or bad graph.
const EXIT_FAILED: u8 = 1;
const EXIT_USAGE: u8 = 2;

#[derive(Parser)]
#[command(
    name = "runtime",
    version,
    about = "Runs media dataflow graphs: one process per node, frames shared zero-copy over zenoh shared memory.",
    long_about = "Runs media dataflow graphs written in YAML. Each node (capture, normalize, sync, \
encode, mux, or your own executable) runs as its own process; frames travel between them in \
shared memory with no copies, or over the network between machines.",
    after_help = "Examples:
  runtime run graphs/1080p.yaml --duration 10        record 10 s (test sources when no camera/microphone)
  runtime run graphs/1080p.yaml --set video-encode.quality=high --set mux.path=take1.mp4
  runtime check graphs/webm.yaml                     validate: every error with file:line:column
  runtime graph graphs/1080p.yaml --format dot | dot -Tpng > graph.png
  runtime nodes video-encode                         params, defaults and ranges of a node kind
  runtime recover take.mp4                           finalize a recording a crash interrupted
  runtime run graphs/1080p.yaml --control            then `runtime ctl pause`, `runtime ctl stats`, ...

Exit codes: 0 success, 1 a node failed at run time, 2 bad usage or bad graph.
Logging: RUST_LOG (e.g. RUST_LOG=debug) applies to the runtime and every node."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a graph until its sources end (or sent --duration seconds of media), --wall-time passes, or Ctrl-C.
    #[command(after_help = "Examples:
  runtime run graphs/1080p.yaml --duration 10
  runtime run graphs/1080p.yaml --set camera.source=file:in.mkv --set camera.realtime=false \\
      --set microphone.source=file:in.mkv --set microphone.realtime=false --set mux.path=out.mp4
  runtime run graphs/distributed.yaml --machine cam-a   (only the nodes deployed on cam-a)

Ctrl-C or SIGTERM stop the graph in order: sources stop, end-of-stream flows through every
edge, the mux finalizes its file. SIGUSR1 saves every replay-buffer node's last seconds to a
new file (as `runtime ctl save-replay`). Per-node logs are kept in the run directory.")]
    Run {
        /// The graph file (YAML).
        graph: PathBuf,
        /// Override a node param (NODE.PARAM=VALUE) or a graph var (VAR=VALUE); values parse as YAML scalars.
        #[arg(long = "set", value_name = "NODE.PARAM=VALUE|VAR=VALUE")]
        sets: Vec<String>,
        /// Record this many seconds of media, on the same clock as `mux.max_duration`
        /// (every source ends after sending that much; a replay faster than real time
        /// records as much as a live run) (0 < SECONDS <= 31536000, a year).
        #[arg(long, value_name = "SECONDS", allow_negative_numbers = true, value_parser = positive_seconds)]
        duration: Option<f64>,
        /// Stop after this many seconds of wall-clock time from the start, however much
        /// media the sources produced by then (0 < SECONDS <= 31536000).
        #[arg(long, value_name = "SECONDS", allow_negative_numbers = true, value_parser = positive_seconds)]
        wall_time: Option<f64>,
        /// Write a JSON summary of every node's counters here at the end.
        #[arg(long, value_name = "FILE.json")]
        report: Option<PathBuf>,
        /// Run only the nodes deployed on this machine (`deploy: {machine: NAME}`).
        #[arg(long, value_name = "NAME")]
        machine: Option<String>,
        /// The id all machines of one run share [default with --machine: the
        /// graph's name and a hash of its nodes and network]; set it to run the
        /// same graph twice at once.
        #[arg(long, value_name = "ID")]
        run_id: Option<String>,
        /// Seconds every node of the graph (all machines) gets to arm: to subscribe its inputs and see its consumers subscribed (0 < SECONDS <= 31536000).
        #[arg(long, value_name = "SECONDS", default_value_t = 60.0, allow_negative_numbers = true, value_parser = positive_seconds)]
        ready_timeout: f64,
        /// Seconds nodes get to finish after a stop before they are killed (0 <= SECONDS <= 31536000).
        #[arg(long, value_name = "SECONDS", default_value_t = 20.0, allow_negative_numbers = true, value_parser = seconds_or_zero)]
        grace: f64,
        /// Seconds a node may go without progress (no stats, or counters still
        /// with its input queues full) before it is killed and restarted like a
        /// crash; 0: hung nodes are only reported. At stop a node without
        /// progress for 3 s (or this, if shorter) is killed and its streams are
        /// ended for it.
        #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
        hang_timeout: f64,
        /// With --machine: seconds another machine that vanished (its runtime
        /// killed, its network cut) may take to come back before it is judged
        /// lost and its streams are ended; a runtime of it started again
        /// within them rejoins the running recording (0 < SECONDS <= 3600).
        #[arg(long, value_name = "SECONDS")]
        rejoin_timeout: Option<f64>,
        /// Directory for this run's logs [default: runs/<timestamp>-<graph>].
        #[arg(long, value_name = "DIR")]
        run_dir: Option<PathBuf>,
        /// Send frames over the socket instead of shared memory (for comparison).
        #[arg(long)]
        no_shm: bool,
        /// No node log lines or status line on the console (logs still go to the run directory).
        #[arg(long, short)]
        quiet: bool,
        /// Serve the live control API (HTTP + WebSocket, docs/control-api.md) on
        /// HOST:PORT or unix:PATH [default: 127.0.0.1, a free port]; its URL and
        /// token go to <run dir>/control.json. Without a value, put it after the graph.
        #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:0")]
        control: Option<ControlAddr>,
    },
    /// Control a graph running with --control: pause, resume, stop, change live params, read stats.
    Ctl(ctl::CtlArgs),
    /// Validate a graph and print every error at once (exit 0 valid, 2 invalid).
    Check {
        graph: PathBuf,
        #[arg(long = "set", value_name = "NODE.PARAM=VALUE|VAR=VALUE")]
        sets: Vec<String>,
    },
    /// Print the graph as a Mermaid or Graphviz diagram.
    Graph {
        graph: PathBuf,
        #[arg(long, value_enum, default_value_t = Format::Mermaid)]
        format: Format,
        #[arg(long = "set", value_name = "NODE.PARAM=VALUE|VAR=VALUE")]
        sets: Vec<String>,
    },
    /// List the built-in node kinds, or one kind's ports and params with defaults and ranges.
    Nodes {
        /// A kind such as `video-encode`.
        kind: Option<String>,
    },
    /// List the cameras (formats, sizes, frame rates), the X screens of $DISPLAY (sizes) and audio inputs (rates, channels, sample formats).
    #[command(after_help = "Examples:
  runtime devices
  runtime devices --json > devices.json
  runtime run graphs/1080p.yaml --set camera.source=device:0 --set microphone.source=device:NAME

Asks the camera, screen and microphone built-ins (mediagraph-nodes, beside the runtime) with --list-devices. Exit 0 also when
there are none; 1 when that binary is missing or fails.")]
    Devices {
        /// Print {"cameras": [...], "screens": [...], "audio_inputs": [...]} as JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Finalize interrupted recordings in place (a crash or kill -9 left them fragmented).
    #[command(after_help = "Examples:
  runtime recover recordings/20261124-101500.mp4
  runtime recover take.mp4 take-001.mp4

While recording, MP4 files are written as fragments of at most `mux.fragment_duration`
(0.5 s) and MKV/WebM as clusters, so a file whose recording was interrupted plays up to
about then. `recover` rewrites it as a normal file: MP4 with its index (moov) first and a
fragment the interruption cut short left out; MKV/WebM with duration and cues. An MP4
that is already final is left as it is (MKV/WebM are rewritten every time, which is
harmless). Exit 0 when every file is final, 1 when one could not be recovered, 2 for a
missing file or an unknown file type.")]
    Recover {
        /// Recordings (.mp4, .mkv, .webm).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Create something new: `runtime new node NAME` scaffolds a custom node crate.
    New {
        #[command(subcommand)]
        what: New,
    },
}

#[derive(Subcommand)]
enum New {
    /// A crate for a custom node on the node API: a working pass-through filter and a graph using it.
    #[command(after_help = "Example:
  runtime new node my-filter && cd my-filter && cargo build --release && runtime run graph.yaml --duration 5

See docs/custom-nodes.md for writing the node.")]
    Node {
        /// The node's name: the crate, its binary and its id in the example graph.
        name: String,
        /// Where to create the crate [default: ./NAME].
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// The node API crate (nodes/api of a mediagraph checkout) [default: the one this runtime was built from].
        #[arg(long, value_name = "PATH")]
        api: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Mermaid,
    Dot,
}

fn main() -> ExitCode {
    init_logging();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    ExitCode::SUCCESS
                }
                _ => ExitCode::from(EXIT_USAGE),
            };
        }
    };
    match cli.command {
        Command::Check { graph, sets } => match load(&graph, &sets, None) {
            Ok(g) => {
                println!("{}: valid ({} nodes)", graph.display(), g.nodes.len());
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Command::Graph {
            graph,
            format,
            sets,
        } => match load(&graph, &sets, None) {
            Ok(g) => {
                let f = match format {
                    Format::Mermaid => RenderFormat::Mermaid,
                    Format::Dot => RenderFormat::Dot,
                };
                print!("{}", graph::render(&g, f));
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Command::Nodes { kind } => match runtime::nodes_doc::describe(kind.as_deref()) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(EXIT_USAGE)
            }
        },
        Command::Devices { json } => match runtime::devices::list() {
            Ok(devices) => {
                if json {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&devices).unwrap_or_default()
                    );
                } else {
                    print!("{}", runtime::devices::render(&devices));
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(EXIT_FAILED)
            }
        },
        Command::Recover { files } => match runtime::recover::recover(&files) {
            Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(EXIT_FAILED)
            }
        },
        Command::New {
            what: New::Node { name, dir, api },
        } => new_node(&name, dir, api),
        Command::Ctl(args) => ExitCode::from(ctl::main(args)),
        Command::Run {
            graph,
            sets,
            duration,
            wall_time,
            report,
            machine,
            run_id,
            ready_timeout,
            grace,
            hang_timeout,
            rejoin_timeout,
            run_dir,
            no_shm,
            quiet,
            control,
        } => {
            let g = match load(&graph, &sets, machine.as_deref()) {
                Ok(g) => g,
                Err(code) => return code,
            };
            if let Some(why) = runtime::run::needs_host(&g) {
                eprintln!("error: {why}");
                return ExitCode::from(EXIT_USAGE);
            }
            if !(hang_timeout == 0.0 || (2.0..=3600.0).contains(&hang_timeout)) {
                eprintln!("error: --hang-timeout must be 0 (off) or 2 to 3600 seconds (nodes publish their stats every 0.5 s)");
                return ExitCode::from(EXIT_USAGE);
            }
            if rejoin_timeout.is_some_and(|s| !(s > 0.0 && s <= 3600.0)) {
                eprintln!("error: --rejoin-timeout must be over 0 and at most 3600 seconds");
                return ExitCode::from(EXIT_USAGE);
            }
            if let Some(m) = &machine {
                let known = g.nodes.iter().any(|n| n.machine.as_ref() == Some(m))
                    || g.network.machines.contains_key(m);
                if !known {
                    eprintln!(
                        "error: --machine {m}: no node of {} is deployed on `{m}` and `network:` does not name it",
                        graph.display()
                    );
                    return ExitCode::from(EXIT_USAGE);
                }
            }
            let run_dir = run_dir.unwrap_or_else(|| {
                let machine = machine
                    .as_ref()
                    .map(|m| format!("-{m}"))
                    .unwrap_or_default();
                PathBuf::from("runs").join(format!("{}-{}{machine}", runtime::timestamp(), g.name))
            });
            let opts = RunOptions {
                duration: duration.map(Duration::from_secs_f64),
                wall_time: wall_time.map(Duration::from_secs_f64),
                grace: Duration::from_secs_f64(grace),
                hang_timeout: (hang_timeout > 0.0).then(|| Duration::from_secs_f64(hang_timeout)),
                run_dir,
                machine,
                console: !quiet,
                shared_memory: !no_shm,
                arm_timeout: Duration::from_secs_f64(ready_timeout),
                rejoin_timeout: rejoin_timeout.map(Duration::from_secs_f64),
                run_id,
                host: None,
                node_dir: None,
            };
            run(g, opts, report, control)
        }
    }
}

/// The longest `--duration`, `--wall-time`, `--grace` or `--ready-timeout`: a year. Longer
/// ones overflow the clock arithmetic (`Duration::from_secs_f64` panics past
/// 2^64 s, `Instant + Duration` much earlier on some systems).
const MAX_SECONDS: f64 = 31_536_000.0;

/// A number of seconds in (0, MAX_SECONDS] (clap names the flag in its error).
fn positive_seconds(text: &str) -> Result<f64, String> {
    seconds_in(text, false)
}

/// A number of seconds in [0, MAX_SECONDS].
fn seconds_or_zero(text: &str) -> Result<f64, String> {
    seconds_in(text, true)
}

fn seconds_in(text: &str, zero_ok: bool) -> Result<f64, String> {
    let range = if zero_ok {
        format!("allowed: 0 <= SECONDS <= {MAX_SECONDS} (a year)")
    } else {
        format!("allowed: 0 < SECONDS <= {MAX_SECONDS} (a year)")
    };
    match text.trim().parse::<f64>() {
        Ok(s) if s > 0.0 && s <= MAX_SECONDS => Ok(s),
        Ok(s) if s == 0.0 && zero_ok => Ok(0.0),
        Ok(s) if s.is_nan() => Err(format!("not a number; {range}")),
        Ok(_) => Err(format!("out of range; {range}")),
        Err(_) => Err(format!("not a number of seconds; {range}")),
    }
}

fn run(
    g: graph::Graph,
    opts: RunOptions,
    report_path: Option<PathBuf>,
    control: Option<ControlAddr>,
) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    rt.block_on(async move {
        let stop = StopHandle::default();
        stop_on_signals(&stop);
        save_replay_on_signal(std::sync::Arc::new(g.clone()), &stop);
        let server = match control {
            Some(addr) => {
                let graph = std::sync::Arc::new(g.clone());
                match ControlServer::start(&addr, &opts.run_dir, graph, stop.clone()).await {
                    Ok(server) => {
                        eprintln!("{}", server.announcement());
                        Some(server)
                    }
                    Err(e) => {
                        eprintln!("error: --control: {e:#}");
                        return ExitCode::from(EXIT_FAILED);
                    }
                }
            }
            None => None,
        };
        let result = runtime::run::run(&g, &opts, stop).await;
        if let Some(server) = server {
            server.finish_run(&result).await;
        }
        conclude(result, report_path, &opts.run_dir)
    })
}

/// Ctrl-C or SIGTERM stop the run.
fn stop_on_signals(stop: &StopHandle) {
    let stop = stop.clone();
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            return;
        };
        tokio::select! { _ = int.recv() => {}, _ = term.recv() => {} }
        stop.stop();
    });
}

/// SIGUSR1 saves every replay buffer, as `POST /api/replay/save` does
/// (with or without `--control`). The handler is installed before this
/// returns: SIGUSR1's default action would end the runtime.
fn save_replay_on_signal(graph: std::sync::Arc<graph::Graph>, stop: &StopHandle) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut usr1 = match signal(SignalKind::user_defined1()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("warning: SIGUSR1 will not save replays: {e}");
            return;
        }
    };
    let stop = stop.clone();
    tokio::spawn(async move {
        while usr1.recv().await.is_some() {
            match runtime::control::save_replay(&graph, &stop) {
                Ok(save) => eprintln!(
                    "SIGUSR1: replay save at {} ns sent to {}",
                    save.at_ns,
                    save.nodes.join(", ")
                ),
                Err(_) => eprintln!("SIGUSR1: {}", runtime::control::NoReplayBuffer::MESSAGE),
            }
        }
    });
}

/// Writes the report, says how the run ended; its exit code.
fn conclude(
    result: anyhow::Result<runtime::run::RunReport>,
    report_path: Option<PathBuf>,
    run_dir: &Path,
) -> ExitCode {
    match result {
        Ok(report) => {
            if let Some(path) = report_path {
                if let Err(e) = std::fs::write(
                    &path,
                    serde_json::to_string_pretty(&report).unwrap_or_default(),
                ) {
                    eprintln!("error: cannot write the report {}: {e}", path.display());
                }
            }
            if let Some(err) = &report.error {
                eprintln!("error: {err}");
            }
            eprintln!("logs: {}", run_dir.join("logs").display());
            ExitCode::from(report.exit_code as u8)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

fn new_node(name: &str, dir: Option<PathBuf>, api: Option<PathBuf>) -> ExitCode {
    let Some(api) = api.or_else(runtime::scaffold::default_api_path) else {
        eprintln!("error: where is the node API crate? pass --api <path to nodes/api of a mediagraph checkout>");
        return ExitCode::from(EXIT_USAGE);
    };
    let dir = dir.unwrap_or_else(|| PathBuf::from(name));
    match runtime::scaffold::new_node(name, &dir, &api) {
        Ok(files) => {
            for f in files {
                println!("created {}", f.display());
            }
            println!(
                "next: cd {} && cargo build --release && runtime run graph.yaml --duration 5",
                dir.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// Loads and validates (the files and devices of the nodes of `machine`
/// only, when given); on error prints every diagnostic and returns exit code 2.
fn load(path: &Path, sets: &[String], machine: Option<&str>) -> Result<graph::Graph, ExitCode> {
    let mut overrides = Vec::new();
    for s in sets {
        match Override::parse(s) {
            Ok(o) => overrides.push(o),
            Err(e) => {
                eprintln!("error: --set {s}: {e}");
                return Err(ExitCode::from(EXIT_USAGE));
            }
        }
    }
    let mut builtins = BTreeMap::new();
    builtins.insert("timestamp".to_string(), runtime::timestamp());
    if let Some(m) = machine {
        builtins.insert(graph::MACHINE_BUILTIN.to_string(), m.to_string());
    }
    graph::load(path, &overrides, &builtins).map_err(|diags| {
        eprint!("{diags}");
        if !diags.to_string().ends_with('\n') {
            eprintln!();
        }
        eprintln!(
            "{} error{} in {}",
            diags.0.len(),
            if diags.0.len() == 1 { "" } else { "s" },
            path.display()
        );
        ExitCode::from(EXIT_USAGE)
    })
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(node_api::logging::DEFAULT_FILTER));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only on a terminal: logs captured to files stay plain.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .without_time()
        .try_init();
}
