//! Node output: every line goes to the node's log file in the run directory
//! and, prefixed with the node id, to the console.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Result;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// The runtime's stderr, shared by node log lines and the status line.
#[derive(Clone)]
pub struct Console {
    enabled: bool,
    tty: bool,
    /// Whether a status line is on screen and must be cleared before a log line.
    status_shown: Arc<Mutex<bool>>,
}

impl Console {
    pub fn new(enabled: bool) -> Self {
        Console {
            enabled,
            tty: std::io::stderr().is_terminal(),
            status_shown: Arc::default(),
        }
    }

    pub fn is_tty(&self) -> bool {
        self.tty
    }

    pub fn line(&self, text: &str) {
        if !self.enabled {
            return;
        }
        let mut shown = self.status_shown.lock().unwrap();
        let mut err = std::io::stderr().lock();
        if *shown {
            let _ = write!(err, "\r\x1b[K");
            *shown = false;
        }
        let _ = writeln!(err, "{text}");
    }

    /// Shows the status line: redrawn in place on a terminal, a plain line otherwise.
    pub fn status(&self, text: &str) {
        if !self.enabled {
            return;
        }
        let mut shown = self.status_shown.lock().unwrap();
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = write!(err, "\r\x1b[K{text}");
            *shown = true;
        } else {
            let _ = writeln!(err, "{text}");
        }
        let _ = err.flush();
    }

    pub fn clear_status(&self) {
        let mut shown = self.status_shown.lock().unwrap();
        if *shown {
            let _ = write!(std::io::stderr(), "\r\x1b[K");
            *shown = false;
        }
    }
}

/// Copies the child's stdout and stderr, line by line, to its log file and the console.
pub(super) fn pump(
    child: &mut super::child::NodeChild,
    node: String,
    log_path: PathBuf,
    console: Console,
    restart: u32,
) -> Result<()> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)?;
    let file = Arc::new(tokio::sync::Mutex::new(tokio::fs::File::from_std(file)));
    if restart > 0 {
        let f = file.clone();
        let node = node.clone();
        tokio::spawn(async move {
            let _ = f
                .lock()
                .await
                .write_all(format!("--- {node}: restart {restart} ---\n").as_bytes())
                .await;
        });
    }
    for stream in [child.stdout.take(), child.stderr.take()]
        .into_iter()
        .flatten()
    {
        let file = file.clone();
        let console = console.clone();
        let node = node.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stream).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                {
                    let mut f = file.lock().await;
                    let _ = f.write_all(line.as_bytes()).await;
                    let _ = f.write_all(b"\n").await;
                }
                console.line(&format!("[{node}] {line}"));
            }
            let _ = file.lock().await.flush().await;
        });
    }
    Ok(())
}

/// The last lines of a node's log, for failure messages.
pub fn last_lines_hint(logs_dir: &Path, node: &str) -> String {
    let path = logs_dir.join(format!("{node}.log"));
    // The pump may still be writing the last lines.
    std::thread::sleep(std::time::Duration::from_millis(100));
    let Ok(text) = std::fs::read_to_string(&path) else {
        return String::new();
    };
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        return String::new();
    }
    let tail = &lines[lines.len().saturating_sub(5)..];
    format!(
        "; last log lines ({}):\n    {}",
        path.display(),
        tail.join("\n    ")
    )
}
