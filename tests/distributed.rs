//! A graph spread over three hosts: cameras on hosts `a` and `b`, sync,
//! encoders and mux on host `c`. Each host is a network namespace linked to
//! `c` by a veth pair, and its processes have their own mount and IPC
//! namespaces with a private /dev/shm, so frames can only cross hosts over
//! the network; host `b`'s monotonic clock runs 3 s ahead (a time namespace).
//! Outputs checked with ffprobe and ffmpeg. Where namespaces are not
//! permitted (not root) each test says so and is skipped.

use std::path::{Path, PathBuf};
use std::time::Duration;

use graph_tests::media::{decode_errors, probe, require_ffmpeg, Probe};
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

#[test]
fn a_lost_camera_host_started_again_is_refused_and_the_others_record_on() {
    let Some(hosts) = hosts_or_skip("a_lost_camera_host_started_again_is_refused") else {
        return;
    };
    let s = Scratch::new();
    let (g, out) = graph(&s, &hosts_network(), "");
    let [a, mut b, c] = start(&hosts, &s, &g, &["--duration", "6"]);
    assert!(
        c.wait_for_log("nodes ready in", LIMIT),
        "the graph did not start:\n{}",
        c.stderr()
    );
    std::thread::sleep(Duration::from_millis(1500));
    b.kill_all();
    assert!(
        c.wait_for_log("machine `b` was lost", LIMIT),
        "{}",
        c.stderr()
    );
    // Its streams were ended: a camera joining them again would write
    // into outputs sync has closed. The runtime started again says so.
    let again = hosts.run("b", Some(B_AHEAD_S), s.dir.path(), &g, &["--quiet"]);
    let again = again.wait(LIMIT);
    assert_eq!(again.code, Some(1), "{}", again.stderr);
    assert!(
        again.stderr.contains("machine `b` was lost from run")
            && again.stderr.contains("cannot rejoin"),
        "{}",
        again.stderr
    );
    let (a, c) = (a.wait(LIMIT), c.wait(LIMIT));
    for (name, r) in [("a", &a), ("c", &c)] {
        assert_eq!(
            r.code,
            Some(1),
            "the loss fails host {name}'s run:\n{}",
            r.stderr
        );
        for (id, n) in r.report()["nodes"].as_object().unwrap() {
            assert_eq!(n["failed"], false, "host {name}: node {id} failed: {n}");
            assert_eq!(n["restarts"], 0, "host {name}: node {id} restarted: {n}");
        }
    }
    // Host a's track is whole: undisturbed by b coming back.
    let p = two_video_tracks(&out);
    let a_frames = p.video[0].frames();
    assert!(a_frames >= 170, "track a: {a_frames} frames in 6 s: {p:?}");
}

#[test]
fn a_camera_host_killed_and_started_again_rejoins_the_recording() {
    let Some(hosts) = hosts_or_skip("a_camera_host_killed_and_started_again_rejoins") else {
        return;
    };
    let s = Scratch::new();
    let (g, out) = graph(&s, &hosts_network(), "");
    let dir = s.dir.path();
    let rejoin = ["--quiet", "--rejoin-timeout", "20"];
    let c = hosts.run("c", None, dir, &g, &rejoin);
    let a = hosts.run("a", None, dir, &g, &rejoin);
    let mut b = hosts.run("b", Some(B_AHEAD_S), dir, &g, &rejoin);
    assert!(
        c.wait_for_log("nodes ready in", LIMIT),
        "the graph did not start:\n{}",
        c.stderr()
    );
    std::thread::sleep(Duration::from_millis(2000));
    b.kill_all();
    std::thread::sleep(Duration::from_millis(1500));
    let b = hosts.run("b", Some(B_AHEAD_S), dir, &g, &rejoin);
    assert!(
        c.wait_for_log("machine `b` is back", LIMIT),
        "{}",
        c.stderr()
    );
    // Three more seconds with b back, then Ctrl-C on c stops all three.
    std::thread::sleep(Duration::from_millis(3000));
    c.signal(libc::SIGINT);
    let (a, b, c) = (a.wait(LIMIT), b.wait(LIMIT), c.wait(LIMIT));
    for (name, r) in [("a", &a), ("b", &b), ("c", &c)] {
        assert_eq!(r.code, Some(0), "host {name} failed:\n{}", r.stderr);
        for (id, n) in r.report()["nodes"].as_object().unwrap() {
            assert_eq!(n["restarts"], 0, "host {name}: node {id} restarted: {n}");
        }
    }
    let report = c.report();
    assert_eq!(report["lost_machines"], serde_json::json!([]), "{report}");
    let back = &report["rejoined_machines"][0];
    assert_eq!(back["machine"], "b", "{report}");
    let gap = back["gap_s"].as_f64().unwrap();
    assert!((1.0..10.0).contains(&gap), "b away {gap} s: {back}");
    // sync saw b's camera start over and counted the media it missed.
    let video2 = &c.node("sync")["stats"]["inputs"]["video2"];
    assert_eq!(video2["sender_restarts"], 1, "{video2}");
    let missed = video2["restart_gap_s"].as_f64().unwrap();
    assert!(
        missed > 1.0 && missed < gap + 2.0,
        "gap {missed} s: {video2}"
    );
    eprintln!("b away {gap:.2} s; sync counted {missed:.2} s missing from it");

    // The file plays; a's track is whole, b's continues after its gap.
    let p = two_video_tracks(&out);
    let (a_track, b_track) = (&p.video[0], &p.video[1]);
    let a_span = a_track.pts.last().unwrap() - a_track.start();
    let expected = (a_span * FPS) as u64;
    assert!(
        a_track.frames() + 3 >= expected,
        "track a: {} frames over {a_span:.2} s",
        a_track.frames()
    );
    let b_last = *b_track.pts.last().unwrap();
    assert!(
        b_last > a_track.pts.last().unwrap() - 1.0,
        "track b ends at {b_last} s, a at {:?}",
        a_track.pts.last()
    );
    let b_gap = b_track
        .pts
        .windows(2)
        .map(|w| w[1] - w[0])
        .fold(0.0, f64::max);
    eprintln!("track b's largest gap in the file: {b_gap:.2} s");
}
