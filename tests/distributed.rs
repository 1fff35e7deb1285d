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
use graph_tests::netns::{self, Hosts};
use graph_tests::rig::{hosts_network, rig, Rig};
use graph_tests::{RunResult, Scratch};

const FPS: f64 = 30.0;
/// Host b's clock is this far ahead of the others'.
const B_AHEAD_S: i64 = 3;
/// Generous: a run that has not ended by then is hung.
const LIMIT: Duration = Duration::from_secs(120);

/// The three-host graph at 320x240; `camera_extra` goes into both
/// cameras' params.
fn graph(s: &Scratch, network: &str, camera_extra: &str) -> (PathBuf, PathBuf) {
    rig(
        s,
        network,
        &Rig {
            camera_extra,
            ..Rig::default()
        },
    )
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

/// Waits until host c's runtime says every node is ready.
fn wait_started(c: &netns::Machine) {
    assert!(
        c.wait_for_log("nodes ready in", LIMIT),
        "the graph did not start:\n{}",
        c.stderr()
    );
}

fn two_video_tracks(out: &Path) -> Probe {
    let p = probe(out).unwrap_or_else(|e| panic!("ffprobe {}: {e}", out.display()));
    assert_eq!(p.video.len(), 2, "two video tracks: {p:?}");
    let errors = decode_errors(out);
    assert!(errors.is_empty(), "decode errors: {errors}");
    p
}

/// What crossed from a camera host came over the network as the link's
/// packets, never as shared memory, while inside host c the decoded frames
/// went on in shared memory.
fn assert_over_network(c: &RunResult) {
    for cam in ["cam-a", "cam-b"] {
        let decoder = format!("_link-{cam}-video-to-c");
        let i = &c.node(&decoder)["stats"]["inputs"]["video"];
        assert!(
            i["received"].as_u64().unwrap_or(0) > 0 && i["shm_payloads"] == 0,
            "{decoder} did not get its packets over the network: {i}"
        );
    }
    for (node, input) in [("sync", "video"), ("encode-a", "video")] {
        let i = &c.node(node)["stats"]["inputs"][input];
        assert!(
            i["shm_payloads"].as_u64().unwrap_or(0) > 0 && i["shm_payloads"] == i["received"],
            "inside host c frames should stay in shared memory ({node}.{input}): {i}"
        );
    }
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
    wait_started(&c);
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
    wait_started(&c);
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
    // The camera and the link's encoder on its host.
    assert_eq!(
        losses[0]["nodes"],
        serde_json::json!(["cam-b", "_link-cam-b-video"])
    );
    let received = losses[0]["received"]["_link-cam-b-video-to-c.video"]
        .as_u64()
        .unwrap();
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
                .contains("cam-a, _link-cam-a-video (machine `a`: its runtime is not connected")
            && r.stderr
                .contains("cam-b, _link-cam-b-video (machine `b`: its runtime is not connected"),
        "{}",
        r.stderr
    );
}

/// The 1080p rigs want every frame: each needs both of this machine's
/// cores, so they take turns rather than run beside each other.
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static CORES: std::sync::Mutex<()> = std::sync::Mutex::new(());
    CORES.lock().unwrap_or_else(|e| e.into_inner())
}

/// Raw yuv420p video at `w`x`h` and 30 fps, Mbit/s: what the link would
/// carry without compression.
fn raw_mbit(w: u32, h: u32) -> f64 {
    (w * h * 3 / 2) as f64 * 8.0 * FPS / 1e6
}

/// The report's link from camera `cam`.
fn link_of<'r>(c: &'r RunResult, cam: &str) -> &'r serde_json::Value {
    let links = c.report()["links"].as_array().expect("links in the report");
    let from = format!("{cam}/video");
    links
        .iter()
        .find(|l| l["from"] == from.as_str())
        .unwrap_or_else(|| panic!("no link from {from}: {links:?}"))
}

/// Waits for the three hosts and checks each ended cleanly.
fn all_ok(a: netns::Machine, b: netns::Machine, c: netns::Machine) -> [RunResult; 3] {
    let (c, a, b) = (c.wait(LIMIT), a.wait(LIMIT), b.wait(LIMIT));
    for (name, r) in [("a", &a), ("b", &b), ("c", &c)] {
        assert_eq!(r.code, Some(0), "host {name} failed:\n{}", r.stderr);
    }
    [a, b, c]
}

#[test]
fn two_1080p_cameras_share_100_mbit_links_through_the_mezzanine_without_a_drop() {
    let _cores = one_at_a_time();
    let test = "two_1080p_cameras_share_100_mbit_links";
    let Some(hosts) = hosts_or_skip(test) else {
        return;
    };
    let s = Scratch::new();
    for host in ["a", "b"] {
        let shaping = hosts.shape(host, 100, 2);
        if shaping.delay_ms.is_none() {
            eprintln!("{test}: this kernel has no netem: link {host} is rate-limited to 100 Mbit/s without the 2 ms delay");
        }
    }
    let r = Rig {
        width: 1920,
        height: 1080,
        camera_extra: ", duration: 10",
        // The recorder's encoders are not what is tested: the cheapest.
        encoder: "codec: mjpeg, quality: fast",
        ..Rig::default()
    };
    let (g, out) = rig(&s, &hosts_network(), &r);
    let [a, b, c] = start(&hosts, &s, &g, &["--quiet"]);
    let [a, b, c] = all_ok(a, b, c);
    let raw = raw_mbit(1920, 1080);
    for (cam, host, r) in [("cam-a", "a", &a), ("cam-b", "b", &b)] {
        let l = link_of(&c, cam);
        let wire = hosts.tx_bytes(host) as f64 * 8.0 / 10.0 / 1e6;
        eprintln!(
            "{cam}: 1080p30 mjpeg link {:.1} Mbit/s of packets, {wire:.1} Mbit/s on the wire (raw: {raw:.0} Mbit/s); {l}",
            l["mbit_per_s"].as_f64().unwrap()
        );
        assert_eq!(l["frames"], 300, "{cam}'s link took every frame: {l}");
        assert_eq!(l["dropped"], 0, "{l}");
        assert_eq!(l["pictures"], 300, "{l}");
        assert_eq!(l["lost"], 0, "{l}");
        assert!(
            wire < 100.0,
            "{cam}: {wire} Mbit/s through a 100 Mbit/s link?"
        );
        for (id, n) in r.report()["nodes"].as_object().unwrap() {
            assert_eq!(
                n["dropped"], 0,
                "host {host}: node {id} dropped frames: {n}"
            );
        }
    }
    for (id, n) in c.report()["nodes"].as_object().unwrap() {
        assert_eq!(n["dropped"], 0, "host c: node {id} dropped frames: {n}");
    }
    let p = two_video_tracks(&out);
    for (i, v) in p.video.iter().enumerate() {
        assert_eq!((v.width, v.height), (1920, 1080), "track {i}: {p:?}");
        assert!(
            (297..=300).contains(&v.frames()),
            "track {i}: {} frames of 300: {p:?}",
            v.frames()
        );
    }
    let spread = (p.video[0].start() - p.video[1].start()).abs();
    assert!(spread < 1.0 / FPS, "tracks start {spread} s apart");
}

#[test]
fn a_link_too_thin_for_its_camera_drops_at_the_sender_and_spares_the_other() {
    let test = "a_link_too_thin_for_its_camera_drops_at_the_sender";
    let Some(hosts) = hosts_or_skip(test) else {
        return;
    };
    let s = Scratch::new();
    // Camera a's mezzanine needs several Mbit/s; its link carries one.
    hosts.shape("a", 1, 2);
    hosts.shape("b", 100, 2);
    let r = Rig {
        width: 640,
        height: 360,
        camera_extra: ", duration: 6",
        // MJPEG at quantizer 2: several Mbit/s even for a test pattern.
        link: "link: { codec: mjpeg, quality: ultra }\n",
        ..Rig::default()
    };
    let (g, out) = rig(&s, &hosts_network(), &r);
    let [a, b, c] = start(&hosts, &s, &g, &["--quiet"]);
    let [a, _b, c] = all_ok(a, b, c);
    let (la, lb) = (link_of(&c, "cam-a"), link_of(&c, "cam-b"));
    eprintln!("thin link: {la}\nfull link: {lb}");
    // The camera itself never waited: all its frames went out; what the
    // link could not carry was dropped before it, and counted.
    assert_eq!(a.node("cam-a")["frames_out"], 180, "{}", a.node("cam-a"));
    let dropped = la["dropped"].as_u64().unwrap();
    assert!(dropped > 30, "the thin link dropped {dropped} frames: {la}");
    assert_eq!(
        la["frames"].as_u64().unwrap(),
        180,
        "the link's encoder saw every frame (taken or dropped): {la}"
    );
    assert!(la["mbit_per_s"].as_f64().unwrap() < 1.5, "{la}");
    // Camera b's track is whole.
    assert_eq!(lb["dropped"], 0, "{lb}");
    let p = two_video_tracks(&out);
    assert!((177..=180).contains(&p.video[1].frames()), "track b: {p:?}");
    assert!(p.video[0].frames() > 0, "track a: {p:?}");
}

#[test]
fn a_3_s_network_cut_leaves_a_counted_gap_and_the_other_track_whole() {
    let test = "a_3_s_network_cut_leaves_a_counted_gap";
    let Some(hosts) = hosts_or_skip(test) else {
        return;
    };
    let s = Scratch::new();
    let r = Rig {
        width: 640,
        height: 360,
        camera_extra: ", duration: 8",
        ..Rig::default()
    };
    let (g, out) = rig(&s, &hosts_network(), &r);
    let [a, b, c] = start(&hosts, &s, &g, &["--quiet"]);
    wait_started(&c);
    std::thread::sleep(Duration::from_secs(2));
    hosts.set_link("a", false);
    std::thread::sleep(Duration::from_secs(3));
    hosts.set_link("a", true);
    let [_a, _b, c] = all_ok(a, b, c);
    let (la, lb) = (link_of(&c, "cam-a"), link_of(&c, "cam-b"));
    eprintln!("cut link: {la}\nother link: {lb}");
    // Shorter than zenoh's lease: the session survived, and what the cut
    // cost was dropped before the link and counted.
    assert!(c.report()["lost_machines"].as_array().unwrap().is_empty());
    // The gap is the cut's, no more: at most its 3 s of frames (and half a
    // second for the link to come back) were dropped.
    let dropped = la["dropped"].as_u64().unwrap();
    assert!(dropped > 0 && dropped <= 105, "{la}");
    assert_eq!(la["lost"], 0, "{la}");
    assert_eq!(lb["dropped"], 0, "{lb}");
    let p = two_video_tracks(&out);
    assert!((237..=240).contains(&p.video[1].frames()), "track b: {p:?}");
    let a_frames = p.video[0].frames();
    assert!(
        a_frames > 60 && a_frames < 230,
        "track a: {a_frames} frames: the cut's gap should show: {p:?}"
    );
}

/// One camera's link in a table run: what it carried and what it cost.
struct LinkFigures {
    packets_mbit: f64,
    wire_mbit: f64,
    dropped: u64,
    frames_in_file: u64,
    /// How long the 6 s of media took to record.
    run_s: f64,
}

/// Two grainy 1080p30 cameras (camera-like entropy) over 100 Mbit/s links
/// with `link`; the figures of camera a's link.
fn table_run(hosts: &Hosts, link: &str) -> LinkFigures {
    let s = Scratch::new();
    let before = hosts.tx_bytes("a");
    let r = Rig {
        width: 1920,
        height: 1080,
        camera_extra: ", duration: 6, noise: 4",
        link,
        encoder: "codec: mjpeg, quality: fast",
        ..Rig::default()
    };
    let (g, out) = rig(&s, &hosts_network(), &r);
    let [a, b, c] = start(hosts, &s, &g, &["--quiet"]);
    let [a, _b, c] = all_ok(a, b, c);
    let run_s = c.report()["duration_s"].as_f64().unwrap();
    let wire_mbit = (hosts.tx_bytes("a") - before) as f64 * 8.0 / run_s.max(6.0) / 1e6;
    let p = two_video_tracks(&out);
    let links = c.report()["links"].as_array().cloned().unwrap_or_default();
    let (packets_mbit, dropped) = match links.iter().find(|l| l["from"] == "cam-a/video") {
        // Every link measures over the run's media time.
        Some(l) => {
            // Every frame the link took in either crossed or was dropped
            // (counted) before it: nothing vanished.
            assert_eq!(
                l["frames"].as_u64().unwrap(),
                l["pictures"].as_u64().unwrap() + l["dropped"].as_u64().unwrap(),
                "{l}"
            );
            assert_eq!(l["lost"], 0, "{l}");
            (
                l["mbit_per_s"].as_f64().unwrap(),
                l["dropped"].as_u64().unwrap(),
            )
        }
        // Raw: no link nodes; the camera's own drops.
        None => (wire_mbit, a.node("cam-a")["dropped"].as_u64().unwrap_or(0)),
    };
    LinkFigures {
        packets_mbit,
        wire_mbit,
        dropped,
        frames_in_file: p.video[0].frames(),
        run_s,
    }
}

#[test]
fn bandwidth_of_raw_mezzanine_and_h264_links_at_100_mbit() {
    let _cores = one_at_a_time();
    let test = "bandwidth_of_raw_mezzanine_and_h264_links_at_100_mbit";
    let Some(hosts) = hosts_or_skip(test) else {
        return;
    };
    for host in ["a", "b"] {
        hosts.shape(host, 100, 2);
    }
    eprintln!(
        "{test}: 1080p30 test pattern with grain (noise: 4), 6 s, links limited to 100 Mbit/s"
    );
    eprintln!("| link | packets Mbit/s | on the wire Mbit/s | dropped before the link | frames in the file (of 180) | recorded in |");
    eprintln!("|---|---|---|---|---|---|");
    let raw_need = raw_mbit(1920, 1080);
    for (name, link) in [
        ("raw", "link: { codec: raw }\n"),
        ("mjpeg (default)", ""),
        (
            "h264 8M",
            "link: { codec: h264, bitrate: 8M, speed: ultrafast }\n",
        ),
    ] {
        let f = table_run(&hosts, link);
        eprintln!(
            "| {name} | {:.1} | {:.1} | {} | {} | {:.1} s |",
            f.packets_mbit, f.wire_mbit, f.dropped, f.frames_in_file, f.run_s
        );
        assert!(
            f.wire_mbit < 101.0,
            "{name}: {} Mbit/s through 100",
            f.wire_mbit
        );
        if name == "raw" {
            // 746 Mbit/s cannot cross 100: raw frames leave the camera
            // itself, whose sends wait for the link (not a link's encoder
            // that drops): 6 s of media take several times as long.
            assert!(f.run_s > 18.0, "raw: {} s", f.run_s);
            eprintln!("(raw would need {raw_need:.0} Mbit/s)");
        } else {
            assert!(f.frames_in_file > 0, "{name}: nothing crossed");
        }
        if name == "h264 8M" {
            assert!(f.packets_mbit < 10.0, "h264 8M: {} Mbit/s", f.packets_mbit);
        }
    }
}

#[test]
fn video_decode_hands_on_every_picture_with_its_capture_time() {
    // No namespaces: a link's two ends on one machine, as a graph may use
    // video-decode itself. The clapper's flashes must come out of the
    // decoder on the frames they went in on, so sync and the file see them
    // at their capture times.
    require_ffmpeg();
    let s = Scratch::new();
    let out = s.path("decoded.mkv");
    let yaml = format!(
        r#"nodes:
  - id: cam
    node: camera
    params: {{ source: test, width: 320, height: 240, fps: 30, pattern: clapper, duration: 3 }}
  - id: pack
    node: video-encode
    inputs: {{ video: cam/video }}
    params: {{ codec: h264, bitrate: 2M, tune: zerolatency, keyframe_interval: 1 }}
  - id: unpack
    node: video-decode
    inputs: {{ video: pack/video }}
  - id: sync
    node: sync
    inputs: {{ video: unpack/video }}
  - id: enc
    node: video-encode
    inputs: {{ video: sync/video }}
    params: {{ codec: mjpeg }}
  - id: mux
    node: mux
    inputs: {{ video: enc/video }}
    params: {{ path: "{out}" }}
"#,
        out = out.display()
    );
    let g = s.graph("decode.yaml", &yaml);
    let r = s.run(&g, &["--quiet"]);
    r.assert_ok();
    let m = &r.node("unpack")["stats"]["metrics"];
    assert_eq!(m["decoded"], 90.0, "{m}");
    assert_eq!(m["corrupt"], 0.0, "{m}");
    let p = probe(&out).unwrap();
    assert_eq!(p.video[0].frames(), 90, "{p:?}");
    assert!(decode_errors(&out).is_empty());
    // The pattern flashes on whole seconds of capture time: one second
    // apart in the file, to the frame.
    let flashes = graph_tests::claps::flashes(&out);
    assert!(flashes.len() >= 2, "{flashes:?}");
    for w in flashes.windows(2) {
        assert!(
            (w[1] - w[0] - 1.0).abs() < 0.5 / FPS,
            "flashes at {flashes:?}"
        );
    }
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
    let _cores = one_at_a_time();
    let Some(hosts) = hosts_or_skip("cameras_that_encode_on_their_hosts_send_only_packets") else {
        return;
    };
    for host in ["a", "b"] {
        hosts.shape(host, 100, 2);
    }
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
    let tx_at_start = [hosts.tx_bytes("a"), hosts.tx_bytes("b")];
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
    // node, and as they are in the file), and everything that left its end
    // of the link.
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
        let wire = (hosts.tx_bytes(host) - tx_at_start[i]) as f64 * 8.0 / SECONDS / 1e6;
        eprintln!(
            "camera {host}: encoder sent {mbps:.2} Mbit/s ({bytes} B in {packets} packets), file track {file_mbps:.2} Mbit/s, link {wire:.2} Mbit/s over ~{SECONDS} s"
        );
        assert!(
            mbps <= MAX_MBPS && file_mbps <= MAX_MBPS,
            "camera {host}: {mbps:.2} Mbit/s"
        );
        assert!(
            wire <= MAX_MBPS,
            "camera {host}'s link carried {wire:.2} Mbit/s"
        );
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

#[test]
fn a_lost_camera_host_started_again_is_refused_and_the_others_record_on() {
    let Some(hosts) = hosts_or_skip("a_lost_camera_host_started_again_is_refused") else {
        return;
    };
    let s = Scratch::new();
    let (g, out) = graph(&s, &hosts_network(), "");
    let [a, mut b, c] = start(&hosts, &s, &g, &["--duration", "6"]);
    wait_started(&c);
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
    wait_started(&c);
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
    // b's link saw its sender start over and counted the media it missed.
    let video2 = &c.node("_link-cam-b-video-to-c")["stats"]["inputs"]["video"];
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
