//! Security end to end: the processes of a running graph open no network
//! socket at all unless the graph's `network:` asks for one; they talk over
//! unix sockets in a private directory, which no run leaves behind, not even
//! a killed one. (No telemetry: nothing dials out.)

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use graph_tests::{runtime_bin, Scratch};

/// Socket inodes a process holds (`socket:[N]` links in /proc/PID/fd).
fn socket_inodes(pid: u32) -> HashSet<u64> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .filter_map(|l| {
                    let l = l.to_string_lossy().into_owned();
                    l.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Inodes of the sockets in one of /proc/net/{tcp,tcp6,udp,udp6,unix}.
fn table_inodes(table: &str) -> HashSet<u64> {
    let text = std::fs::read_to_string(format!("/proc/net/{table}")).unwrap_or_default();
    let column = if table == "unix" { 6 } else { 9 };
    text.lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(column)?.parse().ok())
        .collect()
}

#[test]
fn a_running_graph_uses_unix_sockets_only() {
    let s = Scratch::new();
    let g = s.graph(
        "g.yaml",
        "nodes:
  - id: source
    path: {testkit}
    params: { mode: source, count: 0, fps: 30 }
    outputs: [video]
  - id: relay
    path: {testkit}
    inputs: { video: source/video }
    outputs: [video]
    params: { mode: relay }
  - id: sink
    path: {testkit}
    inputs: { video: relay/video }
    params: { mode: sink }
",
    );
    let mut child = Command::new(runtime_bin())
        .args(["run"])
        .arg(&g)
        .args(["--duration", "30", "-q", "--run-dir"])
        .arg(s.path("run"))
        .current_dir(s.dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the three nodes run and have had time to link up.
    for _ in 0..400 {
        if graph_tests::descendants(child.id()).len() == 4 {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    std::thread::sleep(Duration::from_secs(2));
    let pids = graph_tests::descendants(child.id());
    let sockets: HashSet<u64> = pids.iter().flat_map(|p| socket_inodes(*p)).collect();
    let network: HashSet<u64> = ["tcp", "tcp6", "udp", "udp6"]
        .iter()
        .flat_map(|t| table_inodes(t))
        .collect();
    let unix = table_inodes("unix");
    // SAFETY: stopping the runtime this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    assert_eq!(pids.len(), 4, "runtime and three nodes: {pids:?}");
    assert!(!sockets.is_empty(), "the processes hold sockets");
    let tcp_udp: Vec<_> = sockets.intersection(&network).collect();
    assert!(
        tcp_udp.is_empty(),
        "TCP/UDP sockets opened by the graph: {tcp_udp:?}"
    );
    assert!(
        sockets.iter().filter(|i| unix.contains(i)).count() >= 4,
        "they talk over unix sockets"
    );
    assert!(status.success(), "{status}");
}

/// The runtime's socket directories (`mediagraph-*`) in `tmp`.
fn socket_dirs(tmp: &Path) -> Vec<String> {
    let mut dirs: Vec<String> = std::fs::read_dir(tmp)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("mediagraph-"))
        .collect();
    dirs.sort();
    dirs
}

/// Starts `runtime run` of `g` with its own temp dir `tmp` and waits until
/// the graph has started (every node listens on its socket by then); returns
/// the runtime and the socket directories in `tmp` at that moment.
fn start_run(s: &Scratch, g: &Path, tmp: &Path) -> (Child, Vec<String>) {
    let mut child = s
        .runtime_run(g, &["--duration", "60"])
        .env("TMPDIR", tmp)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let (started_tx, started) = std::sync::mpsc::channel();
    // Reads to the end, so the runtime never blocks on a full pipe.
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            if line.contains("; started") {
                let _ = started_tx.send(());
            }
        }
    });
    if started.recv_timeout(Duration::from_secs(60)).is_err() {
        graph_tests::kill_tree(child.id());
        panic!("the graph did not start");
    }
    (child, socket_dirs(tmp))
}

#[test]
fn socket_directories_do_not_outlive_their_runs() {
    let s = Scratch::new();
    let tmp = s.path("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let g = s.graph(
        "g.yaml",
        "nodes:
  - id: source
    path: {testkit}
    params: { mode: source, count: 0, fps: 30 }
    outputs: [video]
  - id: sink
    path: {testkit}
    inputs: { video: source/video }
    params: { mode: sink }
",
    );
    // SIGKILL: the runtime cannot clean up; its directory stays behind.
    let (mut killed, stale) = start_run(&s, &g, &tmp);
    assert_eq!(stale.len(), 1, "{stale:?}");
    let mode = std::fs::metadata(tmp.join(&stale[0]))
        .unwrap()
        .permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o700,
        "private to the user"
    );
    graph_tests::kill_tree(killed.id());
    killed.wait().unwrap();
    assert_eq!(socket_dirs(&tmp), stale);
    // The next run removes it, and removes its own at Ctrl-C.
    let (mut next, own) = start_run(&s, &g, &tmp);
    if own.len() != 1 || own == stale {
        graph_tests::kill_tree(next.id());
        panic!("the stale {stale:?} is still there: {own:?}");
    }
    // SAFETY: stopping the runtime this test started.
    unsafe { libc::kill(next.id() as i32, libc::SIGINT) };
    assert!(next.wait().unwrap().success());
    assert!(socket_dirs(&tmp).is_empty(), "{own:?} removed at Ctrl-C");
    // And its own at a normal end.
    let r = s
        .runtime_run(&g, &["--duration", "1"])
        .env("TMPDIR", &tmp)
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert!(socket_dirs(&tmp).is_empty());
}
