//! `runtime ctl`: one call to a running graph's control API, its JSON answer
//! on stdout. Exit codes: 0 the call succeeded, 1 the server answered an
//! error or could not be reached (no running graph), 2 bad usage.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context};
use axum::http::Method;
use serde_json::{json, Value};

use super::addr::{ControlFile, CONTROL_FILE};
use super::client::{Answer, Endpoint};

/// Where the runs are when no `--run-dir` is given (as `runtime run` puts them).
const RUNS_DIR: &str = "runs";

/// `runtime ctl`'s arguments.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  runtime ctl state                                  the newest run under ./runs
  runtime ctl --run-dir runs/take1 pause
  runtime ctl start; runtime ctl chapter \"Take 2\"; runtime ctl split; runtime ctl stop
  runtime ctl save-replay                            every replay buffer's last seconds to a new file
  runtime ctl param sync buffer_ms 300
  runtime ctl events --count 10                      one JSON message a line

Prints the server's JSON answer. Exit 0 success, 1 an error answer or no running graph to
reach, 2 bad usage.")]
pub struct CtlArgs {
    /// The graph's run directory, where `runtime run --control` wrote
    /// control.json [default: the newest run under ./runs that has one].
    #[arg(long, value_name = "DIR", global = true)]
    pub run_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: CtlCommand,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum CtlCommand {
    /// The graph: every node's kind, params (which are live), inputs and outputs.
    Graph,
    /// The live statistics: per node fps, queue, drops, lost, bitrate, A/V offset, restarts.
    Stats,
    /// The run's phase, the recording state (running or paused) and the
    /// session (recording or stopped, files, chapters).
    State,
    /// Start recording: a new numbered file, from the frame captured now.
    Start,
    /// Stop recording: the file ends here and is finalized; the graph runs on.
    Stop,
    /// Pause the recording (every sync node): what is captured meanwhile is left out.
    Pause,
    /// Resume a paused recording.
    Resume,
    /// End the file at the frame captured now and go on in the next numbered one.
    Split,
    /// A chapter marker here, in the file being written.
    Chapter {
        /// Its title [default: "Chapter N"].
        title: Option<String>,
    },
    /// Every replay buffer writes its last seconds to a new file, up to now.
    SaveReplay,
    /// Stop the graph as Ctrl-C does: the files are finalized.
    Shutdown,
    /// Change a live param: `param NODE NAME VALUE` (VALUE read as with
    /// --set) or `param '{"node": ..., "name": ..., "value": ...}'`.
    Param {
        #[arg(required = true, num_args = 1..=3, value_name = "NODE NAME VALUE | JSON")]
        args: Vec<String>,
    },
    /// Print the event stream, one JSON message a line, until the run ends.
    Events {
        /// Stop after this many messages.
        #[arg(long, value_name = "N")]
        count: Option<u64>,
    },
}

/// Why `runtime ctl` failed, and so its exit code.
#[derive(Debug)]
pub enum CtlError {
    /// Bad arguments (exit 2).
    Usage(String),
    /// An error answer, or no server to ask (exit 1).
    Failed(anyhow::Error),
}

impl CtlError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CtlError::Usage(_) => 2,
            CtlError::Failed(_) => 1,
        }
    }
}

impl std::fmt::Display for CtlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CtlError::Usage(m) => f.write_str(m),
            CtlError::Failed(e) => write!(f, "{e:#}"),
        }
    }
}

impl From<anyhow::Error> for CtlError {
    fn from(e: anyhow::Error) -> Self {
        CtlError::Failed(e)
    }
}

/// What a command asks of the server.
#[derive(Debug, Clone, PartialEq)]
enum Call {
    Request {
        method: Method,
        path: &'static str,
        body: Option<Value>,
    },
    Events {
        count: Option<u64>,
    },
}

/// Runs `runtime ctl`; prints the answer, returns the exit code.
pub fn main(args: CtlArgs) -> u8 {
    match run(args) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    }
}

fn run(args: CtlArgs) -> Result<(), CtlError> {
    let call = call(&args.command)?;
    let file = find_control_file(args.run_dir.as_deref())?;
    let endpoint = Endpoint::of(&ControlFile::read(&file)?)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async {
        match call {
            Call::Request { method, path, body } => {
                let answer = endpoint
                    .request(method.clone(), path, body.as_ref())
                    .await?;
                print_answer(&method, path, answer)
            }
            Call::Events { count } => follow(&endpoint, count).await,
        }
    })
}

fn call(command: &CtlCommand) -> Result<Call, CtlError> {
    let get = |path| Call::Request {
        method: Method::GET,
        path,
        body: None,
    };
    let post = |path, body| Call::Request {
        method: Method::POST,
        path,
        body,
    };
    Ok(match command {
        CtlCommand::Graph => get("/api/graph"),
        CtlCommand::Stats => get("/api/stats"),
        CtlCommand::State => get("/api/state"),
        CtlCommand::Start => post("/api/start", None),
        CtlCommand::Stop => post("/api/stop", None),
        CtlCommand::Pause => post("/api/pause", None),
        CtlCommand::Resume => post("/api/resume", None),
        CtlCommand::Split => post("/api/split", None),
        CtlCommand::Chapter { title } => post(
            "/api/chapter",
            title.as_ref().map(|t| json!({ "title": t })),
        ),
        CtlCommand::SaveReplay => post("/api/replay/save", None),
        CtlCommand::Shutdown => post("/api/shutdown", None),
        CtlCommand::Param { args } => post("/api/params", Some(param_body(args)?)),
        CtlCommand::Events { count } => Call::Events { count: *count },
    })
}

/// `NODE NAME VALUE` or one JSON object, as `POST /api/params` takes it.
fn param_body(args: &[String]) -> Result<Value, CtlError> {
    match args {
        [json] => serde_json::from_str::<Value>(json)
            .ok()
            .filter(Value::is_object)
            .ok_or_else(|| {
                CtlError::Usage(format!(
                    "param `{json}`: expected NODE NAME VALUE or a JSON object {{\"node\": ..., \"name\": ..., \"value\": ...}}"
                ))
            }),
        [node, name, value] => {
            // A map or a list (audio-mix's `{"host": -3}`, `["guest"]`) is
            // JSON; anything else is read as `--set` reads it.
            let value = match serde_json::from_str::<Value>(value) {
                Ok(v @ (Value::Object(_) | Value::Array(_))) => v,
                _ => crate::graph::override_value(value).0,
            };
            Ok(json!({ "node": node, "name": name, "value": value }))
        }
        _ => Err(CtlError::Usage(
            "param takes NODE NAME VALUE, or one JSON object".into(),
        )),
    }
}

/// Prints the answer's JSON; an error status fails the command.
fn print_answer(method: &Method, path: &str, answer: Answer) -> Result<(), CtlError> {
    println!(
        "{}",
        serde_json::to_string_pretty(&answer.body).unwrap_or_default()
    );
    if answer.status.is_success() {
        return Ok(());
    }
    let why = answer.body["error"].as_str().unwrap_or("(no message)");
    Err(CtlError::Failed(anyhow!(
        "{method} {path}: HTTP {}: {why}",
        answer.status
    )))
}

/// Prints each message of the event stream on its own line.
async fn follow(endpoint: &Endpoint, count: Option<u64>) -> Result<(), CtlError> {
    use std::io::Write;
    let mut seen = 0u64;
    let mut stdout = std::io::stdout();
    endpoint
        .events(|message| {
            seen += 1;
            // A closed stdout (`| head`) ends the stream like a count.
            let printed = writeln!(stdout, "{message}").and_then(|_| stdout.flush());
            printed.is_ok() && count.is_none_or(|n| seen < n)
        })
        .await?;
    Ok(())
}

/// The control.json of `run_dir`, or of the newest run under ./runs.
fn find_control_file(run_dir: Option<&Path>) -> Result<PathBuf, CtlError> {
    if let Some(dir) = run_dir {
        let file = dir.join(CONTROL_FILE);
        if file.is_file() {
            return Ok(file);
        }
        return Err(CtlError::Failed(anyhow!(
            "{} has no {CONTROL_FILE}: its graph is not running, or was started without --control",
            dir.display()
        )));
    }
    newest_control_file(Path::new(RUNS_DIR)).ok_or_else(|| {
        CtlError::Failed(anyhow!(
            "no running graph with a control API under ./{RUNS_DIR} \
             (start one with `runtime run GRAPH --control`, or pass --run-dir DIR)"
        ))
    })
}

/// The most recently written `DIR/*/control.json`.
fn newest_control_file(runs: &Path) -> Option<PathBuf> {
    std::fs::read_dir(runs)
        .ok()?
        .flatten()
        .map(|run| run.path().join(CONTROL_FILE))
        .filter_map(|file| {
            let written = std::fs::metadata(&file).and_then(|m| m.modified()).ok()?;
            Some((written, file))
        })
        .max()
        .map(|(_, file)| file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn param_arguments_become_the_request_body() {
        let body = param_body(&args(&["sync", "paused", "true"])).unwrap();
        assert_eq!(
            body,
            json!({"node": "sync", "name": "paused", "value": true})
        );
        let body = param_body(&args(&["mix", "gain_db", r#"{"host": -3}"#])).unwrap();
        assert_eq!(
            body,
            json!({"node": "mix", "name": "gain_db", "value": {"host": -3}})
        );
        let body = param_body(&args(&["mix", "mute", r#"["guest"]"#])).unwrap();
        assert_eq!(body["value"], json!(["guest"]));
        let body = param_body(&args(&["sync", "buffer_ms", "300"])).unwrap();
        assert_eq!(body["value"], json!(300));
        let body = param_body(&args(&["cam", "source", "'123'"])).unwrap();
        assert_eq!(body["value"], json!("123"));
        let raw = r#"{"node": "sync", "name": "paused", "value": false}"#;
        assert_eq!(param_body(&args(&[raw])).unwrap()["value"], json!(false));
        for bad in [&["sync", "paused"][..], &["[1]"], &["{"]] {
            let e = param_body(&args(bad)).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad:?}: {e}");
        }
    }

    #[test]
    fn the_newest_run_with_a_control_file_is_found() {
        let runs = std::env::temp_dir().join(format!("ctl-runs-{}", std::process::id()));
        for run in ["a", "b", "c"] {
            std::fs::create_dir_all(runs.join(run)).unwrap();
        }
        assert_eq!(newest_control_file(&runs), None);
        std::fs::write(runs.join("a").join(CONTROL_FILE), "{}").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(runs.join("b").join(CONTROL_FILE), "{}").unwrap();
        assert_eq!(
            newest_control_file(&runs),
            Some(runs.join("b").join(CONTROL_FILE))
        );
        let e = find_control_file(Some(&runs.join("c"))).unwrap_err();
        assert_eq!(e.exit_code(), 1);
        assert!(e.to_string().contains("has no control.json"), "{e}");
        std::fs::remove_dir_all(&runs).unwrap();
    }
}
