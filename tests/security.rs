//! Security end to end: the processes of a running graph open no network
//! socket at all unless the graph's `network:` asks for one; they talk over
//! unix sockets in a private directory. (No telemetry: nothing dials out.)

use std::collections::HashSet;
use std::process::{Command, Stdio};
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
