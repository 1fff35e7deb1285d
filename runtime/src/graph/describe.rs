//! Asking a custom node for its schema: `EXECUTABLE --describe ARGS...`,
//! with the node's `env:`, no stdin, a short timeout and a cap on what it
//! may print. A node built with `Node::init_with_schema` prints its ports
//! and params as JSON and exits 0; anything else (a non-zero exit, a
//! timeout, output that is not a schema) means the node publishes none, and
//! it is checked as before.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{mpsc, LazyLock, Mutex};
use std::time::{Duration, Instant, SystemTime};

use node_api::{CONFIG_ENV, DESCRIBE_ARG};
use node_catalog::KindSpec;

/// How long a node may take to answer.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(2);

/// The most a node may print; a schema is a few kilobytes.
pub(crate) const MAX_OUTPUT: u64 = 1 << 20;

/// What a node said when asked for its schema.
#[derive(Debug, Clone)]
pub(crate) enum Described {
    /// Its schema.
    Schema(&'static KindSpec),
    /// It printed a node schema, but a wrong one (the message says what is wrong).
    Invalid(String),
    /// It publishes none (the reason, for the debug log).
    Nothing(String),
}

/// One executable as a graph runs it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Request {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
}

/// Asks every request at once (each answer takes up to [`TIMEOUT`]), in order.
/// An executable is asked once per process while it stays the same file.
pub(crate) fn describe_all(requests: &[Request]) -> Vec<Described> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = requests
            .iter()
            .map(|r| scope.spawn(move || describe_cached(r)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Described::Nothing("the describe thread panicked".into()))
            })
            .collect()
    })
}

fn describe_cached(request: &Request) -> Described {
    type Key = (Request, Option<(SystemTime, u64)>);
    static ASKED: LazyLock<Mutex<HashMap<Key, Described>>> =
        LazyLock::new(|| Mutex::new(HashMap::new()));
    let stamp = std::fs::metadata(&request.program)
        .ok()
        .and_then(|m| Some((m.modified().ok()?, m.len())));
    let key = (request.clone(), stamp);
    if let Some(known) = ASKED.lock().unwrap().get(&key) {
        return known.clone();
    }
    let answer = describe(request);
    if let Described::Nothing(why) = &answer {
        tracing::debug!(
            "{} publishes no schema ({why}): its params and ports are not checked",
            request.program.display()
        );
    }
    ASKED.lock().unwrap().insert(key, answer.clone());
    answer
}

/// Runs `program --describe args...` and reads its schema.
pub(crate) fn describe(request: &Request) -> Described {
    let output = match run(request) {
        Ok(output) => output,
        Err(why) => return Described::Nothing(why),
    };
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(&output) else {
        return Described::Nothing("its output is not JSON".into());
    };
    match KindSpec::from_json(&value) {
        Ok(Some(kind)) => Described::Schema(kind),
        Ok(None) => Described::Nothing("its JSON is not a node schema".into()),
        Err(e) => Described::Invalid(e),
    }
}

/// The process's stdout when it exits 0 within [`TIMEOUT`] having printed
/// at most [`MAX_OUTPUT`] bytes; why not otherwise. Whatever it started in
/// its process group is killed when it is done.
fn run(request: &Request) -> Result<Vec<u8>, String> {
    let mut command = Command::new(&request.program);
    command
        .arg(DESCRIBE_ARG)
        .args(&request.args)
        .envs(&request.env)
        .env_remove(CONFIG_ENV)
        .env_remove("MEDIAGRAPH_NODE_ID")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0);
    let mut child = crate::spawn_retrying_busy(|| command.spawn())
        .map_err(|e| format!("cannot start it: {e}"))?;
    let deadline = Instant::now() + TIMEOUT;
    let pid = child.id();
    let mut stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    // Reads until end of file (every process of the group closed it) or
    // past the cap; on timeout the kill closes the pipe and ends it.
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let read = (&mut stdout).take(MAX_OUTPUT + 1).read_to_end(&mut buf);
        let _ = tx.send(read.map(|_| buf));
    });
    let timeout = || format!("no answer within {} s", TIMEOUT.as_secs());
    let answer = match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        Ok(Ok(bytes)) if bytes.len() as u64 > MAX_OUTPUT => {
            Err(format!("it printed more than {MAX_OUTPUT} bytes"))
        }
        Ok(Ok(bytes)) => {
            // Its output ended: it should be exiting.
            while !exited(pid) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            if exited(pid) {
                Ok(bytes)
            } else {
                Err(timeout())
            }
        }
        Ok(Err(e)) => Err(format!("reading its output: {e}")),
        Err(_) => Err(timeout()),
    };
    // SAFETY: signals the process group of the child we started, which is
    // not reaped yet (so the group's id is still ours).
    unsafe { libc::kill(-(pid as libc::pid_t), libc::SIGKILL) };
    let status = child.wait().map_err(|e| format!("waiting for it: {e}"))?;
    let output = answer?;
    if !status.success() {
        return Err(format!("`{DESCRIBE_ARG}` {status}"));
    }
    Ok(output)
}

/// Whether process `pid` (our child) has exited, without reaping it.
fn exited(pid: u32) -> bool {
    // SAFETY: a zeroed siginfo_t is valid; waitid only writes it.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let flags = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT;
    // SAFETY: waits (without reaping) for our own child.
    let r = unsafe { libc::waitid(libc::P_PID, pid as libc::id_t, &mut info, flags) };
    // SAFETY: si_pid is set by waitid when a child changed state.
    r == 0 && unsafe { info.si_pid() } != 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// `program` as a [`Request`] with no args or env.
    fn plain(program: &Path) -> Request {
        Request {
            program: program.to_path_buf(),
            args: Vec::new(),
            env: BTreeMap::new(),
        }
    }

    /// An executable shell script `body` in a fresh directory.
    fn script(name: &str, body: &str) -> (tempdir::Dir, PathBuf) {
        let dir = tempdir::Dir::new(name);
        let path = dir.0.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        let mut perms = std::fs::metadata(&path).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
        std::fs::set_permissions(&path, perms).unwrap();
        (dir, path)
    }

    mod tempdir {
        pub struct Dir(pub std::path::PathBuf);
        impl Dir {
            pub fn new(name: &str) -> Dir {
                let path = std::env::temp_dir()
                    .join(format!("describe-test-{name}-{}", std::process::id()));
                std::fs::create_dir_all(&path).unwrap();
                Dir(path)
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    const SCHEMA: &str = r#"{"node_schema": 1, "kind": "echo", "outputs": [{"name": "out", "type": "stats"}], "params": [{"name": "n", "type": "int", "min": 0, "max": 9}]}"#;

    #[test]
    fn a_schema_is_read() {
        let (_d, exe) = script(
            "answers",
            &format!(
                "[ \"$1\" = --describe ] && [ \"$2\" = a ] && [ \"$X\" = y ] && echo '{SCHEMA}'"
            ),
        );
        let request = Request {
            program: exe,
            args: vec!["a".into()],
            env: [("X".to_string(), "y".to_string())].into(),
        };
        match describe(&request) {
            Described::Schema(k) => {
                assert_eq!(k.kind, "echo");
                assert_eq!(k.params[0].name, "n");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn no_schema_without_a_clean_answer() {
        let cases = [
            (
                "fails",
                format!("echo '{SCHEMA}'; exit 1"),
                "exit status: 1",
            ),
            ("silent", "exit 0".to_string(), "not JSON"),
            ("text", "echo usage: node FILE".to_string(), "not JSON"),
            (
                "other-json",
                "echo '{\"a\": 1}'".to_string(),
                "not a node schema",
            ),
            ("huge", "yes '{}'".to_string(), "more than"),
            ("reads-stdin", "cat; exit 3".to_string(), "exit status: 3"),
        ];
        for (name, body, why) in cases {
            let (_d, exe) = script(name, &body);
            match describe(&plain(&exe)) {
                Described::Nothing(w) => assert!(w.contains(why), "{name}: {w}"),
                other => panic!("{name}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_hung_node_is_killed_with_what_it_started() {
        let (d, exe) = script(
            "hangs",
            "sleep 30 & echo $! > \"$(dirname \"$0\")/child\"; sleep 30",
        );
        let start = Instant::now();
        match describe(&plain(&exe)) {
            Described::Nothing(w) => assert!(w.contains("no answer within 2 s"), "{w}"),
            other => panic!("{other:?}"),
        }
        assert!(start.elapsed() < TIMEOUT + Duration::from_secs(2));
        let child: i32 = std::fs::read_to_string(d.0.join("child"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // Killed: a zombie until it is reaped, then gone.
        let alive = || {
            let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
            !stat.is_empty() && !stat.contains(") Z ")
        };
        let since = Instant::now();
        while alive() && since.elapsed() < Duration::from_secs(2) {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(!alive(), "the node's child still runs");
    }

    #[test]
    fn a_broken_schema_is_reported() {
        let (_d, exe) = script(
            "broken",
            r#"echo '{"node_schema": 1, "kind": "x", "params": [{"name": "n", "type": "int"}]}'"#,
        );
        match describe(&plain(&exe)) {
            Described::Invalid(e) => assert_eq!(e, "params[0]: `n`: `min` must be an integer"),
            other => panic!("{other:?}"),
        }
    }
}
