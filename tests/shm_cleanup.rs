//! Shared-memory segments a killed run leaves behind are removed by the next
//! run's start. Alone in its own test binary: zenoh scans for and removes
//! unlocked segments whenever any of its processes starts or exits, so a run
//! of another test side by side would clean them first.

use std::process::Command;
use std::time::Duration;

use graph_tests::{
    descendants, kill_tree, runtime_bin, shm_segments, testkit_chain as chain, Scratch,
};

#[test]
fn segments_of_killed_runs_are_cleaned_at_the_next_start() {
    let s = Scratch::new();
    let g = s.graph(
        "g.yaml",
        &chain("count: 0, fps: 30", "", "start_delay_ms: 0", "relay/video"),
    );
    let mut child = Command::new(runtime_bin())
        .args(["run", g.to_str().unwrap(), "-q", "--run-dir"])
        .arg(s.path("run"))
        .spawn()
        .unwrap();
    // The segments this run's processes map (other tests run concurrently).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut created = Vec::new();
    while created.len() < 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        created = mapped_segments(&descendants(child.id()));
    }
    assert!(
        !created.is_empty(),
        "the run created shared-memory segments"
    );
    std::thread::sleep(Duration::from_millis(300));
    // kill -9 the runtime and every node at once: nothing gets to clean up.
    kill_tree(child.id());
    let _ = child.wait();
    std::thread::sleep(Duration::from_millis(500));
    let stale: Vec<String> = shm_segments()
        .into_iter()
        .filter(|n| created.contains(n))
        .collect();
    assert!(!stale.is_empty(), "kill -9 left segments behind");
    // The next run cleans them at start.
    let g2 = s.graph(
        "g2.yaml",
        &chain("count: 5", "", "start_delay_ms: 0", "relay/video"),
    );
    s.run(&g2, &[]).assert_ok();
    let left: Vec<String> = shm_segments()
        .into_iter()
        .filter(|n| stale.contains(n))
        .collect();
    assert!(left.is_empty(), "stale segments removed: {left:?}");
}

/// zenoh segments mapped by these processes.
fn mapped_segments(pids: &[u32]) -> Vec<String> {
    let mut names: Vec<String> = pids
        .iter()
        .filter_map(|p| std::fs::read_to_string(format!("/proc/{p}/maps")).ok())
        .flat_map(|maps| {
            maps.lines()
                .filter_map(|l| l.split_whitespace().last())
                .filter(|f| f.starts_with("/dev/shm/") && f.ends_with(".zenoh"))
                .map(|f| f.trim_start_matches("/dev/shm/").to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    names.sort();
    names.dedup();
    names
}
