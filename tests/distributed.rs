//! A graph spread over three hosts: cameras on hosts `a` and `b`, sync,
//! encoders and mux on host `c`. Each host is a network namespace linked to
//! `c` by a veth pair, and its processes have their own mount and IPC
//! namespaces with a private /dev/shm, so frames can only cross hosts over
//! the network; host `b`'s monotonic clock runs 3 s ahead (a time namespace).
//! Outputs checked with ffprobe and ffmpeg. Where namespaces are not
//! permitted (not root) each test says so and is skipped. The edge-encode
//! tests put each camera's encoder on its camera's host, so sync aligns
//! packets (one of them runs on one machine, without root).

use std::path::{Path, PathBuf};
use std::time::Duration;

use graph_tests::media::{decode_errors, probe, repo_graph, require_ffmpeg, run_tool, Probe};
use graph_tests::netns::{self, hub_addr, spoke_addr, Hosts};
use graph_tests::{RunResult, Scratch};

const FPS: f64 = 30.0;
/// Host b's clock is this far ahead of the others'.
const B_AHEAD_S: i64 = 3;
/// Generous: a run that has not ended by then is hung.
const LIMIT: Duration = Duration::from_secs(120);

/// The endpoints of the three hosts: a and b dial c over their veth links.
fn hosts_network() -> String {
    format!(
        r#"network:
  a: {{ listen: ["tcp/{a}:7447"], connect: ["tcp/{ca}:7447"] }}
  b: {{ listen: ["tcp/{b}:7447"], connect: ["tcp/{cb}:7447"] }}
  c: {{ listen: ["tcp/{ca}:7447", "tcp/{cb}:7447"] }}
"#,
        a = spoke_addr(1),
        b = spoke_addr(2),
        ca = hub_addr(1),
        cb = hub_addr(2),
    )
}

/// The three-host graph; `camera_extra` goes into both cameras' params.
fn graph(s: &Scratch, network: &str, camera_extra: &str) -> (PathBuf, PathBuf) {
    let out = s.path("out.mkv");
    let camera = |id: &str, machine: &str, pattern: &str| {
        format!(
            "  - id: {id}\n    node: camera\n    deploy: {{ machine: {machine} }}\n    params: {{ source: test, width: 320, height: 240, fps: 30, pattern: {pattern}{camera_extra} }}\n"
        )
    };
    let yaml = format!(
        r#"name: three-hosts
{network}nodes:
{cam_a}{cam_b}  - id: sync
    node: sync
    deploy: {{ machine: c }}
    inputs: {{ video: cam-a/video, video2: cam-b/video }}
  - id: encode-a
    node: video-encode
    deploy: {{ machine: c }}
    inputs: {{ video: sync/video }}
    params: {{ codec: h264, quality: fast }}
  - id: encode-b
    node: video-encode
    deploy: {{ machine: c }}
    inputs: {{ video: sync/video2 }}
    params: {{ codec: h264, quality: fast }}
  - id: mux
    node: mux
    deploy: {{ machine: c }}
    inputs: {{ cam-a: encode-a/video, cam-b: encode-b/video }}
    params: {{ path: "{out}" }}
"#,
        cam_a = camera("cam-a", "a", "bars"),
        cam_b = camera("cam-b", "b", "clapper"),
        out = out.display(),
    );
    (s.graph("three-hosts.yaml", &yaml), out)
}

/// Skips (loudly) where the hosts cannot be simulated.
fn hosts_or_skip(test: &str) -> Option<Hosts> {
    if let Some(why) = netns::unavailable() {
        eprintln!("SKIPPED {test}: {why}");
        return None;
    }
    require_ffmpeg();
    Some(Hosts::new(&["a", "b", "c"]))
}

fn start(hosts: &Hosts, s: &Scratch, graph: &Path, c_args: &[&str]) -> [netns::Machine; 3] {
    let dir = s.dir.path();
    // c first: it holds the reference clock the others measure against.
    let c = hosts.run("c", None, dir, graph, c_args);
    let a = hosts.run("a", None, dir, graph, &["--quiet"]);
    let b = hosts.run("b", Some(B_AHEAD_S), dir, graph, &["--quiet"]);
    [a, b, c]
}

fn two_video_tracks(out: &Path) -> Probe {
    let p = probe(out).unwrap_or_else(|e| panic!("ffprobe {}: {e}", out.display()));
    assert_eq!(p.video.len(), 2, "two video tracks: {p:?}");
    let errors = decode_errors(out);
    assert!(errors.is_empty(), "decode errors: {errors}");
    p
}

/// What crossed from a camera host into sync came over the network, never
/// as shared memory, while inside host c the frames went on in shared memory.
fn assert_over_network(c: &RunResult) {
    for input in ["video", "video2"] {
        let i = &c.node("sync")["stats"]["inputs"][input];
        assert!(
            i["received"].as_u64().unwrap_or(0) > 0 && i["shm_payloads"] == 0,
            "sync's `{input}` did not come over the network: {i}"
        );
    }
    let i = &c.node("encode-a")["stats"]["inputs"]["video"];
    assert!(
        i["shm_payloads"].as_u64().unwrap_or(0) > 0 && i["shm_payloads"] == i["received"],
        "inside host c frames should stay in shared memory: {i}"
    );
}

#[test]
fn cameras_on_two_hosts_recorded_on_a_third_with_clocks_3s_apart() {
    let Some(hosts) = hosts_or_skip("cameras_on_two_hosts_recorded_on_a_third") else {
        return;
    };
    let s = Scratch::new();
    // Each camera produces 2 s of media, then the graph ends by itself.
    let (g, out) = graph(&s, &hosts_network(), ", duration: 2");
    let [a, b, c] = start(&hosts, &s, &g, &["--quiet"]);
    let (c, a, b) = (c.wait(LIMIT), a.wait(LIMIT), b.wait(LIMIT));
    for (name, r) in [("a", &a), ("b", &b), ("c", &c)] {
        assert_eq!(r.code, Some(0), "host {name} failed:\n{}", r.stderr);
    }
    // The same run on every host, one barrier for all six nodes.
    let id = c.report()["run_id"].clone();
    assert_eq!(a.report()["run_id"], id);
    assert_eq!(b.report()["run_id"], id);

    // b measured its clock 3 s ahead of c's (the reference, hosting sync).
    let clock = &b.report()["clock"];
    assert_eq!(clock["reference"], "c", "{clock}");
    let offset = clock["offset_ms"].as_f64().unwrap();
    let rtt = clock["rtt_ms"].as_f64().unwrap();
    assert!(
        (offset + B_AHEAD_S as f64 * 1000.0).abs() <= rtt / 2.0 + 1.0,
        "b's clock offset {offset} ms (round trip {rtt} ms), expected -{B_AHEAD_S} s"
    );
    eprintln!("host b's clock offset to c: {offset:.3} ms (round trip {rtt:.3} ms)");
    let a_offset = a.report()["clock"]["offset_ms"].as_f64().unwrap();
    assert!(a_offset.abs() < 50.0, "a's clock offset {a_offset} ms");

    // Both cameras' 2 s made it: without the offset, sync would have found
    // b's frames 3 s after a's and kept almost nothing of a's.
    let p = two_video_tracks(&out);
    for (i, v) in p.video.iter().enumerate() {
        assert!(
            (55..=61).contains(&v.frames()),
            "track {i}: {} frames, expected ~60: {p:?}",
            v.frames()
        );
    }
    let spread = (p.video[0].start() - p.video[1].start()).abs();
    assert!(spread < 1.0 / FPS, "tracks start {spread} s apart");
    let sync = &c.node("sync")["stats"]["metrics"];
    let start_spread = sync["start_spread_ms"].as_f64().unwrap();
    assert!(
        start_spread < 1000.0 / FPS,
        "first frames {start_spread} ms apart in capture time: {sync}"
    );
    assert_over_network(&c);
}

#[test]
fn ctrl_c_on_a_camera_host_stops_all_three_cleanly() {
    let Some(hosts) = hosts_or_skip("ctrl_c_on_a_camera_host_stops_all_three_cleanly") else {
        return;
    };
    let s = Scratch::new();
    let (g, out) = graph(&s, &hosts_network(), "");
    let [a, b, c] = start(&hosts, &s, &g, &[]);
    assert!(
        c.wait_for_log("nodes ready in", LIMIT),
        "the graph did not start:\n{}",
        c.stderr()
    );
    // Record about a second and a half, then Ctrl-C on host a.
    std::thread::sleep(Duration::from_millis(1500));
    a.signal(libc::SIGINT);
    let (a, b, c) = (a.wait(LIMIT), b.wait(LIMIT), c.wait(LIMIT));
    for (name, r) in [("a", &a), ("b", &b), ("c", &c)] {
        assert_eq!(
            r.code,
            Some(0),
            "host {name} did not stop cleanly:\n{}",
            r.stderr
        );
    }
    assert!(
        c.stderr.contains("another machine stopped the graph"),
        "{}",
        c.stderr
    );
    assert_over_network(&c);
    let p = two_video_tracks(&out);
    for (i, v) in p.video.iter().enumerate() {
        assert!(v.frames() >= 15, "track {i}: only {} frames", v.frames());
    }
}

#[test]
fn a_camera_host_that_dies_leaves_the_recorder_finalizing_with_the_loss_reported() {
    let Some(hosts) = hosts_or_skip("a_camera_host_that_dies_leaves_the_recorder_finalizing")
    else {
        return;
    };
    let s = Scratch::new();
    let (g, out) = graph(&s, &hosts_network(), "");
    let [a, mut b, c] = start(&hosts, &s, &g, &["--duration", "4"]);
    assert!(
        c.wait_for_log("nodes ready in", LIMIT),
        "the graph did not start:\n{}",
        c.stderr()
    );
    std::thread::sleep(Duration::from_millis(1500));
    b.kill_all();
    let (a, c) = (a.wait(LIMIT), c.wait(LIMIT));
    // Every machine still up reports the loss and fails the run, though
    // its own nodes all ended cleanly.
    for (name, r) in [("a", &a), ("c", &c)] {
        assert_eq!(
            r.code,
            Some(1),
            "the loss must fail host {name}'s run:\n{}",
            r.stderr
        );
        assert_eq!(
            r.report()["lost_machines"][0]["machine"],
            "b",
            "host {name}"
        );
        for (id, n) in r.report()["nodes"].as_object().unwrap() {
            assert_eq!(n["failed"], false, "host {name}: node {id} failed: {n}");
        }
    }
    let losses = c.report()["lost_machines"].as_array().unwrap().clone();
    assert_eq!(losses.len(), 1, "{losses:?}");
    assert_eq!(losses[0]["machine"], "b");
    assert_eq!(losses[0]["nodes"], serde_json::json!(["cam-b"]));
    let received = losses[0]["received"]["sync.video2"].as_u64().unwrap();
    assert!(
        received > 0,
        "sync got nothing from b before it died: {losses:?}"
    );
    assert!(losses[0]["media_lost_s"].as_f64().unwrap() > 0.5);
    assert!(c.stderr.contains("machine `b` was lost"), "{}", c.stderr);

    // Host a's camera kept recording to the end; b's track stops early.
    let p = two_video_tracks(&out);
    let (a_frames, b_frames) = (p.video[0].frames(), p.video[1].frames());
    assert!(a_frames >= 100, "track a: {a_frames} frames in 4 s: {p:?}");
    assert!(
        b_frames > 0 && b_frames + 15 < a_frames,
        "track b: {b_frames} frames, a: {a_frames}"
    );
}

#[test]
fn the_ready_barrier_names_the_machines_that_never_came() {
    // No namespaces needed: host c alone waits for a and b, which never come.
    let s = Scratch::new();
    let network = "network:\n  a: {}\n  b: {}\n  c: { listen: [\"tcp/127.0.0.1:0\"] }\n";
    let (g, _) = graph(&s, network, "");
    let r = s.run(
        &g,
        &[
            "--machine",
            "c",
            "--ready-timeout",
            "2",
            "--quiet",
            "--run-id",
            "lonely",
        ],
    );
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(
        r.stderr.contains("nodes never became ready within 2 s")
            && r.stderr
                .contains("cam-a (machine `a`: its runtime is not connected")
            && r.stderr
                .contains("cam-b (machine `b`: its runtime is not connected"),
        "{}",
        r.stderr
    );
}

/// The edge-encode rig: cameras (test sources, `camera_params` each) with their
/// encoders (`encode_a` / `encode_b` params) on `machine_a` / `machine_b`,
/// sync, a test microphone, the audio encoder and the mux on `machine_c`.
/// Machines `None`: one machine. The encoders' input queues hold half a
/// second (16 frames, not 8): the hosts share this machine's two cores, with
/// whatever else runs on it, and the test wants no frame dropped.
fn edge_graph(
    s: &Scratch,
    network: &str,
    machines: [Option<&str>; 3],
    camera_params: [&str; 2],
    encode: [&str; 2],
) -> (PathBuf, PathBuf) {
    let out = s.path("edge.mkv");
    let deploy = |m: Option<&str>| match m {
        Some(m) => format!("    deploy: {{ machine: {m} }}\n"),
        None => String::new(),
    };
    let camera = |id: &str, m: Option<&str>, pattern: &str, camera_params: &str, enc: &str| {
        format!(
            "  - id: cam-{id}\n    node: camera\n{d}    params: {{ source: test, fps: 30, pattern: {pattern}, {camera_params} }}\n  - id: encode-{id}\n    node: video-encode\n{d}    inputs: {{ video: {{ source: cam-{id}/video, queue_size: 16 }} }}\n    params: {{ codec: h264, {enc} }}\n",
            d = deploy(m)
        )
    };
    let c = deploy(machines[2]);
    let yaml = format!(
        r#"name: edge-encode
{network}nodes:
{cam_a}{cam_b}  - id: mic
    node: microphone
{c}    params: {{ source: test }}
  - id: sync
    node: sync
{c}    inputs: {{ video: encode-a/video, video2: encode-b/video, audio: mic/audio }}
  - id: audio-encode
    node: audio-encode
{c}    inputs: {{ audio: sync/audio }}
  - id: mux
    node: mux
{c}    inputs: {{ cam-a: sync/video, cam-b: sync/video2, audio: audio-encode/audio }}
    params: {{ path: "{out}" }}
"#,
        cam_a = camera("a", machines[0], "bars", camera_params[0], encode[0]),
        cam_b = camera("b", machines[1], "clapper", camera_params[1], encode[1]),
        out = out.display(),
    );
    (s.graph("edge-encode.yaml", &yaml), out)
}

/// One video stream's packets in the file: (pts s, keyframe, size bytes).
fn video_packets(out: &Path, index: usize) -> Vec<(f64, bool, u64)> {
    let text = run_tool(std::process::Command::new("ffprobe").args([
        "-v",
        "error",
        "-select_streams",
        &format!("v:{index}"),
        "-show_entries",
        "packet=pts_time,flags,size",
        "-of",
        "csv=p=0",
        &out.display().to_string(),
    ]));
    text.lines()
        .filter_map(|l| {
            let mut f = l.split(',');
            let pts = f.next()?.parse().ok()?;
            let size = f.next()?.parse().ok()?;
            Some((pts, f.next()?.starts_with('K'), size))
        })
        .collect()
}

/// What the edge-encode file and the run's reports must show: both camera
/// tracks start with a keyframe at the same time (sync's start keyframes
/// within a frame in capture time), every packet an encoder sent is in the
/// file or counted before the start, none dropped, a clean decode. Returns
/// each camera track's packets.
fn assert_edge_recording(
    out: &Path,
    sync: &serde_json::Value,
    encoders: [&serde_json::Value; 2],
) -> [Vec<(f64, bool, u64)>; 2] {
    let p = probe(out).unwrap_or_else(|e| panic!("ffprobe {}: {e}", out.display()));
    assert_eq!(p.video.len(), 2, "two camera tracks: {p:?}");
    assert_eq!(p.audio.len(), 1, "the microphone's track: {p:?}");
    let errors = decode_errors(out);
    assert!(errors.is_empty(), "decode errors: {errors}");
    let tracks = [video_packets(out, 0), video_packets(out, 1)];
    for (i, t) in tracks.iter().enumerate() {
        let first = t
            .iter()
            .min_by(|a, b| a.0.total_cmp(&b.0))
            .expect("packets");
        assert!(
            first.1,
            "track {i} starts on a keyframe: {:?}",
            &t[..3.min(t.len())]
        );
        assert_eq!(
            t.len() as u64,
            p.video[i].frames(),
            "track {i}: a frame per packet"
        );
    }
    let spread = (p.video[0].start() - p.video[1].start()).abs();
    assert!(spread < 1.0 / FPS, "tracks start {spread} s apart");
    let m = &sync["stats"]["metrics"];
    let start_spread = m["start_spread_ms"].as_f64().unwrap();
    assert!(
        start_spread < 1000.0 / FPS,
        "start keyframes {start_spread} ms apart in capture time: {m}"
    );
    assert!(m["keyframe_requests"].as_f64().unwrap() >= 1.0, "{m}");
    // Every packet is in the file or was before the common start.
    let sent: u64 = encoders
        .iter()
        .map(|e| e["stats"]["outputs"]["video"]["sent"].as_u64().unwrap())
        .sum();
    let before = m["video_before_start"].as_f64().unwrap() as u64;
    let in_file = (tracks[0].len() + tracks[1].len()) as u64;
    assert_eq!(
        sent,
        in_file + before,
        "sent {sent}, in the file {in_file}, before the start {before}"
    );
    for (i, e) in encoders.iter().enumerate() {
        let input = &e["stats"]["inputs"]["video"];
        assert_eq!(input["dropped"], 0, "encoder {i} dropped frames: {input}");
        assert_eq!(input["lost"], 0, "encoder {i} lost frames: {input}");
    }
    for (name, input) in sync["stats"]["inputs"].as_object().unwrap() {
        assert_eq!(input["dropped"], 0, "sync's {name}: {input}");
        assert_eq!(input["lost"], 0, "sync's {name}: {input}");
    }
    eprintln!(
        "edge: {} + {} frames in the file, {before} before the start, keyframes {start_spread:.1} ms apart, {} request(s)",
        tracks[0].len(),
        tracks[1].len(),
        m["keyframe_requests"]
    );
    tracks
}

#[test]
fn packet_cameras_start_together_on_keyframes_on_one_machine() {
    require_ffmpeg();
    let s = Scratch::new();
    // Camera a's encoder sends each packet at once; camera b's holds frames
    // back (lookahead, B-frames): the start must not depend on that. Camera
    // b's capture times jitter by up to 8 ms, and its clock runs 2000 ppm
    // fast: a drift packets cannot correct, only report.
    let (g, out) = edge_graph(
        &s,
        "",
        [None, None, None],
        [
            "width: 640, height: 360",
            "width: 640, height: 360, jitter_ms: 8, clock_skew_ppm: 2000",
        ],
        [
            "bitrate: 1M, rate_control: cbr, speed: ultrafast, tune: zerolatency",
            "quality: fast",
        ],
    );
    let r = s.run(&g, &["--duration", "4", "--quiet"]);
    r.assert_ok();
    let tracks = assert_edge_recording(
        &out,
        r.node("sync"),
        [r.node("encode-a"), r.node("encode-b")],
    );
    for (i, t) in tracks.iter().enumerate() {
        // 4 s sent; the start waits for both encoders and the lead ahead.
        assert!(
            (75..=120).contains(&t.len()),
            "track {i}: {} frames of 4 s",
            t.len()
        );
    }
    let m = &r.node("sync")["stats"]["metrics"];
    let drift = |input: &str| m[format!("video_drift_ms_{input}")].as_f64().unwrap();
    // b's frames come 2 ms a second early: placed by their count, they end
    // up ahead of their capture time.
    assert!(drift("video").abs() < 1.0, "{m}");
    assert!(drift("video2") < -1.0, "{m}");
    // Every track starts in slot 0 with its keyframe less than half a frame
    // off it (picture and sound of the first camera too).
    for input in ["video", "video2"] {
        let first = m[format!("first_offset_ms_{input}")].as_f64().unwrap();
        assert!(first.abs() < 500.0 / FPS, "{input}: {m}");
    }
    assert!(
        m["av_offset_ms"].as_f64().unwrap().abs() < 500.0 / FPS,
        "{m}"
    );
    let sync_log = std::fs::read_to_string(s.path("run/logs/sync.log")).unwrap_or_default();
    assert!(
        sync_log.contains("asking the camera encoders for the keyframe"),
        "{sync_log}"
    );
}

#[test]
fn cameras_that_encode_on_their_hosts_send_only_packets_at_1080p30() {
    // The namespaces before ours, to find our hosts' links among them.
    let before = wire_counters();
    let Some(hosts) = hosts_or_skip("cameras_that_encode_on_their_hosts_send_only_packets") else {
        return;
    };
    const SECONDS: f64 = 10.0;
    const MAX_MBPS: f64 = 10.0;
    let s = Scratch::new();
    // As graphs/distributed-edge.yaml, at ultrafast: the two 1080p encoders
    // share this machine's cores with the rest of the rig.
    let encode = "bitrate: 4M, rate_control: cbr, speed: ultrafast, tune: zerolatency";
    let (g, out) = edge_graph(
        &s,
        &hosts_network(),
        [Some("a"), Some("b"), Some("c")],
        ["width: 1920, height: 1080"; 2],
        [encode, encode],
    );
    let links = spoke_links(&before);
    let tx_at_start: Vec<Option<u64>> = links
        .iter()
        .map(|l| l.as_deref().and_then(tx_bytes))
        .collect();
    let args = ["--duration", "10", "--quiet"];
    let [a, b, c] = start(&hosts, &s, &g, &args);
    let (c, a, b) = (c.wait(LIMIT), a.wait(LIMIT), b.wait(LIMIT));
    for (name, r) in [("a", &a), ("b", &b), ("c", &c)] {
        assert_eq!(r.code, Some(0), "host {name} failed:\n{}", r.stderr);
    }
    let tracks = assert_edge_recording(
        &out,
        c.node("sync"),
        [a.node("encode-a"), b.node("encode-b")],
    );
    for (i, t) in tracks.iter().enumerate() {
        assert!(
            (270..=300).contains(&t.len()),
            "track {i}: {} frames of {SECONDS} s at 30 fps",
            t.len()
        );
    }
    // What each camera host sent: its encoder's packets (as counted by the
    // node, and as they are in the file), and, where the namespaces could be
    // told apart, everything that left its end of the link.
    for (i, (host, r)) in [("a", &a), ("b", &b)].into_iter().enumerate() {
        let node = format!("encode-{host}");
        let bytes = r.node(&node)["stats"]["outputs"]["video"]["bytes"]
            .as_u64()
            .unwrap();
        let packets = r.node(&node)["stats"]["outputs"]["video"]["sent"]
            .as_u64()
            .unwrap();
        let mbps = bytes as f64 * 8.0 / (packets as f64 / FPS) / 1e6;
        let in_file: u64 = tracks[i].iter().map(|p| p.2).sum();
        let file_mbps = in_file as f64 * 8.0 / (tracks[i].len() as f64 / FPS) / 1e6;
        let wire = match (&links[i], tx_at_start[i]) {
            (Some(link), Some(start)) => {
                tx_bytes(link).map(|end| (end - start) as f64 * 8.0 / SECONDS / 1e6)
            }
            _ => None,
        };
        eprintln!(
            "camera {host}: encoder sent {mbps:.2} Mbit/s ({bytes} B in {packets} packets), file track {file_mbps:.2} Mbit/s, link {}",
            wire.map_or("not measured".into(), |w| format!("{w:.2} Mbit/s over ~{SECONDS} s"))
        );
        assert!(
            mbps <= MAX_MBPS && file_mbps <= MAX_MBPS,
            "camera {host}: {mbps:.2} Mbit/s"
        );
        if let Some(w) = wire {
            assert!(w <= MAX_MBPS, "camera {host}'s link carried {w:.2} Mbit/s");
        }
        // Sync got them over the network, never as shared memory.
        let input = &c.node("sync")["stats"]["inputs"][if i == 0 { "video" } else { "video2" }];
        assert!(
            input["received"].as_u64().unwrap_or(0) > 0 && input["shm_payloads"] == 0,
            "{input}"
        );
    }
}

#[test]
fn the_shipped_edge_graph_checks_and_its_sync_cannot_pause() {
    let graph = repo_graph("distributed-edge.yaml");
    let s = Scratch::new();
    let path = format!("mux.path={}", s.path("edge.mkv").display());
    let check = |extra: &[&str]| {
        std::process::Command::new(graph_tests::runtime_bin())
            .arg("check")
            .arg(&graph)
            .args(["--set", &path])
            .args(extra)
            .output()
            .expect("runtime check runs")
    };
    let ok = check(&[]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let paused = check(&["--set", "sync.paused=true"]);
    assert_eq!(paused.status.code(), Some(2));
    let said = String::from_utf8_lossy(&paused.stdout).into_owned()
        + &String::from_utf8_lossy(&paused.stderr);
    assert!(
        said.contains("sync cannot pause encoded camera inputs"),
        "{said}"
    );
}

/// The network namespaces that exist now.
fn wire_counters() -> Vec<String> {
    let text = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    text.lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// Hosts a and b's namespaces, among those made since `before` (none when
/// other tests made theirs at the same moment and they cannot be told apart).
fn spoke_links(before: &[String]) -> [Option<String>; 2] {
    let new: Vec<String> = wire_counters()
        .into_iter()
        .filter(|n| !before.contains(n))
        .collect();
    let one = |host: char| {
        let mut of: Vec<&String> = new.iter().filter(|n| n.ends_with(host)).collect();
        (of.len() == 1).then(|| of.remove(0).clone())
    };
    [one('a'), one('b')]
}

/// Bytes sent out of the veth end inside namespace `netns` (its only link
/// besides loopback).
fn tx_bytes(netns: &str) -> Option<u64> {
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", netns, "sh", "-c"])
        .arg("for i in /sys/class/net/*; do [ \"${i##*/}\" = lo ] || cat $i/statistics/tx_bytes; done")
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}
