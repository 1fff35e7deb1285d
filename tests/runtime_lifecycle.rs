//! The runtime with small real node processes: spawn, the barrier, stop,
//! end-of-stream, restart policies, queue policies, zero-copy delivery,
//! memlock (stale shared-memory segments: `shm_cleanup.rs`).

use std::process::Command;
use std::time::Duration;

use graph_tests::{is_root, read_json, runtime_bin, testkit_chain as chain, Scratch};

#[test]
fn frames_flow_zero_copy_and_end_of_stream_ends_the_run() {
    let s = Scratch::new();
    let g = s.graph(
        "g.yaml",
        &chain(
            "count: 50, width: 320, height: 240",
            "",
            "start_delay_ms: 0",
            "relay/video",
        ),
    );
    let r = s.run(&g, &[]);
    r.assert_ok();
    let sink = read_json(&s.path("sink.json"));
    assert_eq!(sink["received"], 50, "{sink}");
    assert_eq!(sink["in_order"], true);
    assert_eq!(sink["last_index"], 49);
    assert_eq!(sink["end_of_stream"], 1);
    // Zero-copy: the sink read the source's shared-memory buffer, forwarded
    // by the relay without a copy.
    assert_eq!(sink["shm_payloads"], 50, "{sink}");
    assert_eq!(sink["copied_payloads"], 0);
    assert_eq!(r.node("relay")["frames_in"], 50);
    assert_eq!(r.node("relay")["frames_out"], 50);
    assert_eq!(r.node("source")["frames_out"], 50);
    assert_eq!(r.report()["exit_code"], 0);
    // The CPU account the transcode bench reads: every point of the relay's
    // life in order, its thread split, the runtime's own and its nodes'.
    let stats = &r.node("relay")["stats"];
    let at = |p: &str| stats["cpu_phases"][p].as_f64().unwrap_or(-1.0);
    let points = node_api::CPU_PHASES.map(at);
    assert!(points[0] > 0.0, "{stats}");
    assert!(points.windows(2).all(|w| w[0] <= w[1]), "{points:?}");
    assert!(
        stats["cpu_threads"]["zenoh"].as_f64() > Some(0.0),
        "{stats}"
    );
    let cpu = &r.report()["cpu"];
    assert!(cpu["runtime_s"].as_f64() > Some(0.0), "{cpu}");
    assert!(cpu["children_s"].as_f64() > Some(points[5]), "{cpu}");
}

#[test]
fn without_shared_memory_the_same_bytes_arrive_over_the_socket() {
    let s = Scratch::new();
    let g = s.graph(
        "g.yaml",
        &chain(
            "count: 20, width: 320, height: 240",
            "",
            "start_delay_ms: 0",
            "relay/video",
        ),
    );
    let r = s.run(&g, &["--no-shm"]);
    r.assert_ok();
    let sink = read_json(&s.path("sink.json"));
    assert_eq!(sink["received"], 20);
    assert_eq!(sink["in_order"], true);
    assert_eq!(sink["shm_payloads"], 0, "no SHM was asked for: {sink}");
}

#[test]
fn sources_wait_for_late_subscribers() {
    let s = Scratch::new();
    // The sink joins 1.5 s late; an unpaced source must still not lose frame 0.
    let g = s.graph(
        "g.yaml",
        &chain("count: 30", "", "start_delay_ms: 1500", "relay/video"),
    );
    let r = s.run(&g, &[]);
    r.assert_ok();
    let sink = read_json(&s.path("sink.json"));
    assert_eq!(sink["received"], 30, "{sink}");
    assert_eq!(sink["dropped"], 0);
}

#[test]
fn wall_time_stops_an_endless_graph_in_order() {
    let s = Scratch::new();
    let g = s.graph(
        "g.yaml",
        &chain("count: 0, fps: 100", "", "start_delay_ms: 0", "relay/video"),
    );
    let r = s.run(&g, &["--wall-time", "1.5"]);
    r.assert_ok();
    let sink = read_json(&s.path("sink.json"));
    assert_eq!(sink["stop_seen"], true);
    assert_eq!(
        sink["end_of_stream"], 1,
        "end-of-stream flowed through: {sink}"
    );
    assert_eq!(sink["in_order"], true);
    let received = sink["received"].as_u64().unwrap();
    let sent = r.node("source")["frames_out"].as_u64().unwrap();
    assert!(received > 10, "{sink}");
    assert_eq!(received, sent, "everything sent before the stop arrived");
}

#[test]
fn sigint_stops_gracefully() {
    let s = Scratch::new();
    let g = s.graph(
        "g.yaml",
        &chain("count: 0, fps: 50", "", "start_delay_ms: 0", "relay/video"),
    );
    let child = Command::new(runtime_bin())
        .args(["run", g.to_str().unwrap(), "--report"])
        .arg(s.path("report.json"))
        .arg("--run-dir")
        .arg(s.path("run"))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for frames to flow, then Ctrl-C.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !s.path("run/logs/sink.log").exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(1500));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sink = read_json(&s.path("sink.json"));
    assert_eq!(sink["end_of_stream"], 1);
    assert!(sink["received"].as_u64().unwrap() > 0);
}

#[test]
fn drop_oldest_queue_drops_and_counts_block_queue_loses_nothing() {
    let s = Scratch::new();
    let slow_graph = |policy: &str| {
        format!(
            r#"
nodes:
  - id: source
    path: {{testkit}}
    outputs: [video]
    params: {{ mode: source, count: 60 }}
  - id: sink
    path: {{testkit}}
    inputs:
      video: {{ source: source/video, queue_size: 2, policy: {policy} }}
    params: {{ mode: sink, delay_ms: 15, result: "{{dir}}/sink-{policy}.json" }}
"#
        )
    };
    let r = s.run(&s.graph("drop.yaml", &slow_graph("drop-oldest")), &[]);
    r.assert_ok();
    let sink = read_json(&s.path("sink-drop-oldest.json"));
    let received = sink["received"].as_u64().unwrap();
    let dropped = sink["dropped"].as_u64().unwrap();
    assert!(
        dropped > 0,
        "a slow consumer with drop-oldest drops: {sink}"
    );
    assert_eq!(
        received + dropped,
        60,
        "every frame is either received or counted: {sink}"
    );
    assert_eq!(sink["last_index"], 59, "the newest frame is kept");
    assert_eq!(r.node("sink")["dropped"], dropped);

    let r = s.run(&s.graph("block.yaml", &slow_graph("block")), &[]);
    r.assert_ok();
    let sink = read_json(&s.path("sink-block.json"));
    assert_eq!(sink["received"], 60, "{sink}");
    assert_eq!(sink["dropped"], 0);
}

#[test]
fn a_lossless_source_is_never_dropped_even_by_drop_oldest_queues() {
    let s = Scratch::new();
    // A file replay (realtime: false) marks its stream no_drop: the slow
    // consumer's drop-oldest queue must push back instead of dropping, also
    // behind a relay that passes the flag on.
    let g = s.graph(
        "g.yaml",
        &chain(
            "count: 60, no_drop: true",
            "",
            "delay_ms: 10",
            "relay/video",
        )
        .replace(
            "video: relay/video",
            "video: { source: relay/video, queue_size: 2, policy: drop-oldest }",
        ),
    );
    let r = s.run(&g, &[]);
    r.assert_ok();
    let sink = read_json(&s.path("sink.json"));
    assert_eq!(sink["received"], 60, "{sink}");
    assert_eq!(sink["dropped"], 0);
}

#[test]
fn a_crashed_node_is_restarted_on_failure() {
    let s = Scratch::new();
    let g = s.graph(
        "g.yaml",
        &chain(
            "count: 150, fps: 100",
            "    restart: on-failure\n    max_restarts: 3",
            "start_delay_ms: 0",
            "relay/video",
        )
        .replace(
            "params: { mode: relay }",
            "params: { mode: relay, crash_after: 20, crash_once: true }",
        ),
    );
    let r = s.run(&g, &[]);
    r.assert_ok();
    assert_eq!(r.node("relay")["restarts"], 1, "{}", r.stderr);
    let sink = read_json(&s.path("sink.json"));
    let received = sink["received"].as_u64().unwrap();
    // Frames sent while the relay was down are lost (counted by the runtime
    // later); what matters is that the chain carried on to the last frame.
    assert!(received > 20, "frames arrived after the restart: {sink}");
    assert_eq!(
        sink["last_index"], 149,
        "the chain carried on to the end: {sink}"
    );
    assert_eq!(sink["end_of_stream"], 1);
    assert!(r.stderr.contains("restarting (1/3)"), "{}", r.stderr);
}

#[test]
fn restart_never_fails_the_run_and_names_the_node() {
    let s = Scratch::new();
    let g = s.graph(
        "g.yaml",
        &chain(
            "count: 0, fps: 100",
            "    restart: never",
            "start_delay_ms: 0",
            "relay/video",
        )
        .replace(
            "params: { mode: relay }",
            "params: { mode: relay, crash_after: 10 }",
        ),
    );
    let r = s.run(&g, &[]);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(r.stderr.contains("node `relay` failed"), "{}", r.stderr);
    assert!(r.stderr.contains("SIGABRT"), "{}", r.stderr);
    assert!(
        r.stderr.contains("crashing on purpose"),
        "last log lines are shown: {}",
        r.stderr
    );
    // Downstream still finished: the runtime ended the stream for the dead node.
    let sink = read_json(&s.path("sink.json"));
    assert_eq!(sink["end_of_stream"], 1);
    assert_eq!(r.report()["exit_code"], 1);
    assert_eq!(r.node("relay")["failed"], true);
}

#[test]
fn a_crash_loop_stops_after_max_restarts() {
    let s = Scratch::new();
    let g = s.graph(
        "g.yaml",
        &chain(
            "count: 0, fps: 100",
            "    restart: always\n    max_restarts: 2",
            "start_delay_ms: 0",
            "relay/video",
        )
        .replace(
            "params: { mode: relay }",
            "params: { mode: relay, crash_after: 3 }",
        ),
    );
    let r = s.run(&g, &[]);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(
        r.stderr.contains("node `relay` failed after 2 restarts"),
        "{}",
        r.stderr
    );
    assert_eq!(r.node("relay")["restarts"], 2);
}

#[test]
fn a_node_failing_at_start_fails_the_run() {
    let s = Scratch::new();
    let g = s.graph(
        "g.yaml",
        &chain("count: 10", "", "start_delay_ms: 0", "relay/video")
            .replace("params: { mode: relay }", "params: { mode: fail }"),
    );
    let r = s.run(&g, &[]);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(r.stderr.contains("node `relay`"), "{}", r.stderr);
    assert!(
        r.stderr.contains("failing on purpose at start"),
        "{}",
        r.stderr
    );
}

#[test]
fn an_invalid_graph_exits_2_before_anything_starts() {
    let s = Scratch::new();
    let g = s.graph("bad.yaml", "nodes:\n  - id: a\n    node: camrea\n");
    let r = s.run(&g, &[]);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(r.stderr.contains("bad.yaml:3:"), "{}", r.stderr);
    assert!(!s.path("run").exists(), "nothing was started or written");
}

/// Runs `runtime` as an unprivileged user with the given memlock limit (KiB).
fn run_unprivileged(
    s: &Scratch,
    graph: &std::path::Path,
    memlock_kib: u64,
) -> std::process::Output {
    graph_tests::unprivileged(s, memlock_kib * 1024, None)
        .args(["run", graph.to_str().unwrap(), "--run-dir"])
        .arg(s.path("run-nobody"))
        .output()
        .expect("prlimit and setpriv (util-linux) run")
}

#[test]
fn memlock_too_low_is_reported_with_the_fix() {
    // Pools are not locked; zenoh's metadata segments (1.25 MiB each) are:
    // 1 MiB cannot hold the source's.
    let s = Scratch::new();
    let g = s.graph(
        "big.yaml",
        &chain(
            "count: 5, width: 1920, height: 1080",
            "",
            "start_delay_ms: 0",
            "source/video",
        ),
    );
    let out = if is_root() {
        run_unprivileged(&s, &g, 1024)
    } else {
        Command::new(runtime_bin())
            .args(["run", g.to_str().unwrap()])
            .current_dir(s.dir.path())
            .output()
            .unwrap()
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !is_root() && !stderr.contains("memlock") {
        // This user may lock enough memory: nothing to check here.
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        return;
    }
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("ulimit -l"), "{stderr}");
    assert!(stderr.contains("memlock limit is 1.0 MiB"), "{stderr}");
}

#[test]
fn an_unprivileged_user_records_small_frames_within_the_default_limit() {
    if !is_root() {
        // Already unprivileged: the other tests cover it.
        return;
    }
    let s = Scratch::new();
    let g = s.graph(
        "small.yaml",
        &chain(
            "count: 40, width: 320, height: 240",
            "",
            "start_delay_ms: 0",
            "relay/video",
        ),
    );
    let out = run_unprivileged(&s, &g, 8192);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sink = read_json(&s.path("sink.json"));
    assert_eq!(sink["received"], 40);
    assert_eq!(
        sink["shm_payloads"], 40,
        "shared memory worked without privileges: {sink}"
    );
}

#[test]
fn an_embedding_application_changes_a_param_and_stops_the_graph() {
    let s = Scratch::new();
    let path = s.graph(
        "g.yaml",
        &chain("count: 0, fps: 50", "", "start_delay_ms: 0", "relay/video"),
    );
    // Once frames flow, change a param, then stop.
    let report = s.run_embedded(&path, "sink", |control| {
        control.set_param("sink", "gain", serde_json::json!(2.5));
    });
    assert_eq!(report.exit_code, 0, "{:?}", report.error);
    let sink = read_json(&s.path("sink.json"));
    assert_eq!(
        sink["param_updates"],
        serde_json::json!([{ "gain": 2.5 }]),
        "{sink}"
    );
    assert_eq!(sink["stop_seen"], true);
    assert_eq!(sink["end_of_stream"], 1);
}

/// `runtime graph` takes the same `--set` as `run` and `check`, so a graph
/// whose paths come from variables can be drawn.
#[test]
fn graph_renders_with_overrides() {
    let s = Scratch::new();
    let draw = |sets: &[&str]| {
        let mut cmd = Command::new(runtime_bin());
        cmd.arg("graph")
            .arg(graph_tests::media::repo_graph("1080p.yaml"))
            .args(["--format", "dot"]);
        for set in sets {
            cmd.args(["--set", set]);
        }
        cmd.current_dir(s.dir.path()).output().unwrap()
    };
    let path = format!("mux.path={}", s.path("take.mp4").display());
    let out = draw(&[&path, "video-encode.codec=h265"]);
    let dot = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        dot.starts_with("digraph") && dot.contains("video-encode"),
        "{dot}"
    );
    let out = draw(&[&path, "video-encode.crf=99"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("crf"));
}

/// `runtime devices` names every hardware encoder it tried (NVENC and VAAPI
/// for each codec, opened as a run opens them) and says which are usable;
/// on a machine without them (CI, this VM) it says so rather than nothing.
#[test]
fn devices_lists_the_hardware_encoders_it_tried() {
    let run = |args: &[&str]| {
        let out = Command::new(runtime_bin())
            .arg("devices")
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        String::from_utf8(out.stdout).unwrap()
    };
    let json: serde_json::Value = serde_json::from_str(&run(&["--json"])).unwrap();
    let tried = json["hardware_encoders"]
        .as_array()
        .expect("a list")
        .clone();
    for hw in ["nvenc", "vaapi"] {
        for codec in ["h264", "h265", "vp9", "av1"] {
            let entry = tried
                .iter()
                .find(|e| e["hwaccel"] == hw && e["codec"] == codec)
                .unwrap_or_else(|| panic!("{hw}/{codec} not tried: {tried:?}"));
            let usable = entry["usable"].as_bool().expect("usable or not");
            assert_eq!(entry["reason"].is_null(), usable, "why not: {entry}");
        }
    }
    let text = run(&[]);
    let section = text
        .split_once("Hardware encoders")
        .unwrap_or_else(|| panic!("no hardware encoder section:\n{text}"))
        .1;
    let any_usable = tried.iter().any(|e| e["usable"] == true);
    assert_eq!(section.contains("none usable"), !any_usable, "{text}");
    for name in ["h264_nvenc", "hevc_nvenc", "h264_vaapi", "av1_vaapi"] {
        assert!(section.contains(name), "{name} not named:\n{text}");
    }
}

#[test]
fn the_runtime_process_links_no_codec_library() {
    // Exec'ing a program that links FFmpeg costs ~60 ms of CPU (its ~200
    // libraries are bound at start); the runtime has no codec work of its
    // own (snapshots are encoded by a helper process), so it pays none.
    let out = Command::new("ldd").arg(runtime_bin()).output().unwrap();
    let libs = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{libs}");
    for lib in ["libavcodec", "libavformat", "libavutil", "libswscale"] {
        assert!(!libs.contains(lib), "runtime links {lib}:\n{libs}");
    }
}
