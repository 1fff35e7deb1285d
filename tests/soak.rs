//! The short version of the soak test (`bench/src/soak.rs`; the hour-long
//! run and its figures are in the README): a minute of media at 320×240 from
//! the test sources, faster than real time, every node's RSS and open file
//! descriptors sampled from /proc. Passes when both stay flat after warm-up
//! and no shared-memory segment is left in /dev/shm.

use std::process::Command;

#[test]
fn a_minute_of_media_leaves_memory_fds_and_dev_shm_flat() {
    let soak = graph_tests::bin_dir().join("soak");
    let graph = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../graphs/720p.yaml");
    let out = Command::new(&soak)
        .arg("--graph")
        .arg(&graph)
        .args(["--media-seconds", "60", "--interval", "0.5"])
        .args(["--set", "width=320", "--set", "height=240"])
        .output()
        .expect("the soak binary runs (build the workspace first)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("left in /dev/shm after exit: 0"),
        "{stdout}"
    );
    // Every node of the graph was watched.
    for node in [
        "camera",
        "microphone",
        "video-encode",
        "audio-encode",
        "mux",
    ] {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with(node) && l.ends_with("ok")),
            "{node}: {stdout}"
        );
    }
}
