//! Supervision end to end: nodes of a real recording graph are killed with
//! SIGKILL mid-recording; the runtime restarts them, the recording goes on, and
//! what was lost is counted in the report. A crash loop ends the run with the
//! recording so far finalized; a restarted node that missed its input's
//! end-of-stream still lets the graph end. An encoder that cannot keep up
//! skips raw frames (counted, warned about), never packets, and with
//! `degrade: true` switches to a faster preset within the same file. The
//! nodes are forks of one server; killed, it costs its nodes a restart.

use std::time::Duration;

use graph_tests::live::{recording, small_recording, wait_for_restart, LiveRun};
use graph_tests::media::{decode_errors, probe, require_ffmpeg};
use graph_tests::{read_json, Scratch};

#[test]
fn killing_video_encode_mid_recording_restarts_it_and_the_recording_goes_on() {
    require_ffmpeg();
    let s = Scratch::new();
    let g = s.graph("g.yaml", &small_recording(""));
    let mut run = LiveRun::start(&s, &g, &["--duration", "4"]);
    run.wait_for("started");
    std::thread::sleep(Duration::from_millis(1500));
    run.kill_node("node-video-encode");
    let r = run.finish();
    r.assert_ok();
    let enc = r.node("video-encode");
    assert_eq!(enc["restarts"], 1, "{}", r.stderr);
    assert!(r.stderr.contains("restarting (1/3)"), "{}", r.stderr);

    let out = s.path("out.mp4");
    assert_eq!(decode_errors(&out), "", "the recording decodes cleanly");
    let p = probe(&out).unwrap();
    // Every frame sync sent is in the file, or counted: lost across the
    // restart (what the killed encoder held and what went by while it was
    // down), or dropped at the encoder's input.
    let sent = r.node("sync")["stats"]["outputs"]["video"]["sent"]
        .as_u64()
        .unwrap();
    let lost = enc["restart_lost_frames"].as_u64().unwrap();
    let dropped = enc["dropped"].as_u64().unwrap();
    assert!(lost > 0, "the killed encoder's frames are counted: {enc}");
    assert_eq!(
        p.video[0].frames() + lost + dropped,
        sent,
        "frames in the file + lost + dropped = frames sync sent; {enc}"
    );
    // The target is at most 1 s; a loaded machine may take longer to start a
    // process, so the test only rules out a stalled restart.
    let lost_s = enc["restart_lost_s"].as_f64().unwrap();
    assert!(lost_s > 0.0 && lost_s < 2.5, "{lost_s} s lost");
    // Media after the kill made it into the same file.
    assert!(p.video[0].span() > 3.5, "{:?}", p.video);
    assert!(
        r.stderr.contains("lost across the restarts"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_crash_looping_node_stops_the_run_with_the_recording_finalized() {
    require_ffmpeg();
    let s = Scratch::new();
    let g = s.graph(
        "g.yaml",
        &small_recording("\n    restart: on-failure\n    max_restarts: 1"),
    );
    let mut run = LiveRun::start(&s, &g, &["--duration", "60"]);
    run.wait_for("started");
    std::thread::sleep(Duration::from_millis(1000));
    let first = run.kill_node("node-video-encode");
    let second = wait_for_restart(&run, "node-video-encode", first);
    std::thread::sleep(Duration::from_millis(1000));
    // SAFETY: signalling the restarted node of this test's run.
    unsafe { libc::kill(second as i32, libc::SIGKILL) };
    let r = run.finish();
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("node `video-encode` failed after 1 restarts: was killed by signal 9"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("last log lines"), "{}", r.stderr);
    assert_eq!(r.node("video-encode")["failed"], true);
    // What was recorded before the crash loop is a finished, playable file.
    let out = s.path("out.mp4");
    assert_eq!(decode_errors(&out), "", "finalized");
    let p = probe(&out).unwrap();
    assert!(p.video[0].frames() > 0 && p.audio[0].samples > 0, "{p:?}");
}

#[test]
fn a_node_restarted_after_its_input_ended_still_ends() {
    let s = Scratch::new();
    let g = s.graph(
        "g.yaml",
        "nodes:
  - id: source
    path: {testkit}
    params: { mode: source, count: 40, fps: 200 }
    outputs: [video]
  - id: relay
    path: {testkit}
    inputs: { video: source/video }
    outputs: [video]
    params: { mode: relay, crash_on_eos: true, crash_once: true }
    restart: on-failure
  - id: sink
    path: {testkit}
    inputs: { video: relay/video }
    params: { mode: sink, result: {dir}/sink.json }
",
    );
    // Without the repeated end-of-stream the restarted relay would wait
    // forever; --duration would then stop it and the grace period kill it.
    let r = s.run(&g, &["--duration", "60", "--grace", "5"]);
    r.assert_ok();
    assert_eq!(r.node("relay")["restarts"], 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("sent it the end-of-stream it missed"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("--duration reached"), "{}", r.stderr);
    let sink = read_json(&s.path("sink.json"));
    assert_eq!(sink["end_of_stream"], 1, "{sink}");
    // The relay died right after forwarding the last frames: the one still
    // in flight may be lost with it.
    let received = sink["received"].as_u64().unwrap();
    assert!((35..=40).contains(&received), "{sink}");
}

#[test]
fn an_overloaded_encoder_skips_frames_never_packets_and_degrades() {
    require_ffmpeg();
    let s = Scratch::new();
    // 1080p30 at x264's slowest preset on one thread: far more than a core
    // encodes live (with every thread of an idle 2-core machine, the test
    // pattern's easy picture once kept up after the first second).
    let g = s.graph(
        "g.yaml",
        &recording(
            1920,
            1080,
            "{ speed: veryslow, degrade: true, threads: 1 }",
            "",
        ),
    );
    // How soon two cores fall behind depends on the machine and its load:
    // the recording goes on until the encoder has switched presets (a cap
    // of 60 s in case it never does), then is stopped as Ctrl-C would.
    let mut run = LiveRun::start(&s, &g, &["--duration", "60"]);
    run.wait_for_all(&[
        "encoding overloaded:",
        "degrade: libx264 veryslow -> slower",
    ]);
    run.signal_runtime(libc::SIGINT);
    let r = run.finish();
    r.assert_ok();
    let enc = r.node("video-encode");
    let dropped = enc["dropped"].as_u64().unwrap();
    assert!(
        dropped > 0,
        "raw frames skipped at the encoder's input: {enc}"
    );
    assert!(r.stderr.contains("encoding overloaded:"), "{}", r.stderr);
    assert!(
        r.stderr.contains("degrade: libx264 veryslow -> slower"),
        "{}",
        r.stderr
    );
    assert!(enc["stats"]["metrics"]["degrade_steps"].as_f64().unwrap() >= 1.0);
    // Every packet the encoder made reached the mux and the file: one file,
    // one set of stream headers across the preset switch.
    let sent = enc["stats"]["outputs"]["video"]["sent"].as_u64().unwrap();
    let mux_in = &r.node("mux")["stats"]["inputs"]["video"];
    assert_eq!(mux_in["received"].as_u64().unwrap(), sent);
    assert_eq!(mux_in["dropped"], 0);
    let out = s.path("out.mp4");
    assert_eq!(decode_errors(&out), "");
    assert_eq!(probe(&out).unwrap().video[0].frames(), sent);
}

/// The node processes of `run`: pid → its command line's words.
fn node_processes(run: &LiveRun) -> Vec<(u32, Vec<String>)> {
    graph_tests::descendants(run.child.id())
        .into_iter()
        .skip(1)
        .filter_map(|p| {
            let line = std::fs::read(format!("/proc/{p}/cmdline")).ok()?;
            let words = line
                .split(|b| *b == 0)
                .filter(|w| !w.is_empty())
                .map(|w| String::from_utf8_lossy(w).into_owned())
                .collect();
            Some((p, words))
        })
        .collect()
}

fn parent_of(pid: u32) -> u32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = stat.rsplit_once(')').unwrap().1;
    after.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn nodes_are_forks_of_one_server_and_a_killed_server_costs_a_restart_not_the_run() {
    require_ffmpeg();
    let s = Scratch::new();
    let g = s.graph("g.yaml", &small_recording(""));
    let mut run = LiveRun::start(&s, &g, &["--duration", "4"]);
    run.wait_for("started");
    // One server, the runtime's child; every node its child, named in its
    // command line.
    let procs = node_processes(&run);
    let server = graph_tests::live::node_pid(run.child.id(), "node-forks").unwrap();
    assert_eq!(parent_of(server), run.child.id());
    let nodes: Vec<&(u32, Vec<String>)> = procs.iter().filter(|(p, _)| *p != server).collect();
    assert_eq!(nodes.len(), 8, "{procs:?}");
    for (pid, words) in &nodes {
        assert_eq!(parent_of(*pid), server, "{words:?}");
        let id = words.iter().skip_while(|w| *w != "--node-id").nth(1);
        assert_eq!(
            id,
            Some(&words[1]),
            "kind and id (the same here): {words:?}"
        );
    }
    // Killed, the server takes its nodes with it (their parent-death
    // signal): each is restarted, started with its own exec now.
    std::thread::sleep(Duration::from_millis(1000));
    run.kill_node("node-forks");
    let r = run.finish();
    r.assert_ok();
    assert!(
        r.stderr.contains("its fork server was killed"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("starting it with exec"), "{}", r.stderr);
    assert_eq!(r.node("video-encode")["restarts"], 1, "{}", r.stderr);
    assert_eq!(decode_errors(&s.path("out.mp4")), "");
}

#[test]
fn without_the_fork_server_every_node_is_the_runtimes_own_child() {
    require_ffmpeg();
    let s = Scratch::new();
    let g = s.graph("g.yaml", &small_recording(""));
    let off = [("MEDIAGRAPH_FORK_SERVER", "off")];
    let mut run = LiveRun::start_with_env(&s, &g, &["--duration", "2"], &off);
    run.wait_for("started");
    let procs = node_processes(&run);
    assert_eq!(procs.len(), 8, "no server, eight nodes: {procs:?}");
    for (pid, words) in &procs {
        assert_eq!(parent_of(*pid), run.child.id(), "{words:?}");
    }
    let r = run.finish();
    r.assert_ok();
    assert_eq!(decode_errors(&s.path("out.mp4")), "");
}
