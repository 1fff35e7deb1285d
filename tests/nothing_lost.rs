//! Nothing is lost between nodes, for ordinary users on loaded machines:
//! a no_drop replay arrives whole beside CPU hogs (with an encoder that makes
//! its threads real-time) and while a forwarding node is stopped; a loss that
//! does happen fails the run naming the edge; every shipped graph records as
//! an unprivileged user at Debian's default memlock limit, zero-copy; and the
//! file size limit names what to raise.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use graph_tests::media::{probe, repo_graph, require_ffmpeg, run_tool};
use graph_tests::{descendants, is_root, unprivileged, RunResult, Scratch};

const SECONDS: u64 = 4;
const FPS: u64 = 30;
const RATE: u64 = 48_000;

/// A 640×360 FFV1 + PCM file of [`SECONDS`] s in the scratch directory.
fn source_file(s: &Scratch) -> PathBuf {
    require_ffmpeg();
    let path = s.path("in.mkv");
    run_tool(
        Command::new("ffmpeg")
            .args(["-nostdin", "-v", "error", "-y"])
            .args(["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30"])
            .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
            .args(["-t", &SECONDS.to_string()])
            .args(["-c:v", "ffv1", "-c:a", "pcm_s16le", "-ac", "2"])
            .arg(&path),
    );
    path
}

/// `runtime run graphs/1080p.yaml` replaying `input` as fast as possible
/// (no_drop: every queue blocks instead of dropping) into `out`.
fn replay(s: &Scratch, input: &Path, out: &Path, extra: &[&str]) -> Command {
    let source = format!("file:{}", input.display());
    let mut sets = vec![
        "width=640".to_string(),
        "height=360".into(),
        format!("camera.source={source}"),
        format!("microphone.source={source}"),
        "camera.realtime=false".into(),
        "microphone.realtime=false".into(),
        format!("mux.path={}", out.display()),
        "mux.overwrite=true".into(),
    ];
    sets.extend(extra.iter().map(|e| e.to_string()));
    let args: Vec<String> = sets
        .iter()
        .flat_map(|s| ["--set".into(), s.clone()])
        .collect();
    s.runtime_run(&repo_graph("1080p.yaml"), &args)
}

/// Every frame and every sample of the source reached the file, and no input
/// of any node counted a loss; or, if something was lost, the run failed
/// loudly naming the edge (then the test fails too, with that message).
fn assert_whole(r: &RunResult, out: &Path, what: &str) {
    assert_eq!(r.code, Some(0), "{what}: stderr:\n{}", r.stderr);
    let nodes = r.report()["nodes"].as_object().unwrap();
    for (id, node) in nodes {
        assert_eq!(node["lost"], 0, "{what}: `{id}` lost messages: {node}");
    }
    let p = probe(out).unwrap();
    assert_eq!(p.video[0].frames(), SECONDS * FPS, "{what}: video frames");
    let samples = p.audio[0].samples;
    assert!(
        samples.abs_diff(SECONDS * RATE) < 1024,
        "{what}: {samples} audio samples of {}",
        SECONDS * RATE
    );
}

/// Busy loops, one per `count`, killed when dropped.
struct Hogs(Vec<Child>);

impl Hogs {
    fn start(count: usize) -> Hogs {
        Hogs(
            (0..count)
                .map(|_| {
                    Command::new("sh")
                        .args(["-c", "while :; do :; done"])
                        .stdout(Stdio::null())
                        .spawn()
                        .expect("sh runs")
                })
                .collect(),
        )
    }
}

impl Drop for Hogs {
    fn drop(&mut self) {
        for hog in &mut self.0 {
            let _ = hog.kill();
            let _ = hog.wait();
        }
    }
}

#[test]
fn a_lossless_replay_beside_cpu_hogs_arrives_whole() {
    let _one = graph_tests::one_at_a_time();
    let s = Scratch::new();
    let input = source_file(&s);
    // Three busy loops per core. AV1 is libsvtav1, which (run as root) makes
    // its threads real-time: that starved zenoh's watchdogs and frames vanished.
    let _hogs = Hogs::start(6);
    for run in 0..2 {
        let out = s.path(&format!("out{run}.mp4"));
        let r = RunResult::new(
            replay(&s, &input, &out, &["video-encode.codec=av1"])
                .output()
                .unwrap(),
            &s.path("report.json"),
        );
        assert_whole(&r, &out, &format!("AV1 run {run} beside 6 busy loops"));
    }
}

/// Stops `node` (SIGSTOP) twice for 0.6 s while `child` runs.
fn stop_twice(child: &Child, node: &str) {
    let pid = node_pid(child, node);
    // Its queues fill with buffers it has mapped but not yet passed on.
    std::thread::sleep(Duration::from_millis(500));
    for _ in 0..2 {
        // SAFETY: signalling a process this test started.
        unsafe { libc::kill(pid as i32, libc::SIGSTOP) };
        std::thread::sleep(Duration::from_millis(600));
        unsafe { libc::kill(pid as i32, libc::SIGCONT) };
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn a_forwarding_node_stopped_for_a_while_loses_nothing() {
    let _one = graph_tests::one_at_a_time();
    let s = Scratch::new();
    let input = source_file(&s);
    let mut stale = 0;
    for run in 0..2 {
        let out = s.path(&format!("out{run}.mp4"));
        let mut cmd = replay(&s, &input, &out, &["video-encode.quality=high"]);
        let child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // sync holds (paused) audio and video it passes on without a copy,
        // some already in its outgoing link queue: their senders keep them
        // confirmed while it is stopped (or sync copies those whose
        // transport watchdog expired all the same: `stale_copies`).
        stop_twice(&child, "sync");
        let r = RunResult::new(child.wait_with_output().unwrap(), &s.path("report.json"));
        assert_whole(&r, &out, &format!("run {run} with sync stopped twice"));
        let outputs = &r.node("sync")["stats"]["outputs"];
        stale += outputs["audio"]["stale_copies"].as_u64().unwrap()
            + outputs["video"]["stale_copies"].as_u64().unwrap();
    }
    eprintln!("buffers copied because their watchdog expired while sync was stopped: {stale} (their senders confirm them: 0 expected)");
}

/// A cgroup limiting its processes to `percent` of one CPU (cgroup v2's
/// `cpu.max` or v1's CFS quota), removed when dropped.
struct Throttle(PathBuf);

impl Throttle {
    fn new(percent: u32) -> Option<Throttle> {
        let name = format!("mediagraph-test-{}", std::process::id());
        let v2 = Path::new("/sys/fs/cgroup/cgroup.controllers");
        let (dir, limit_file, limit) = if v2.exists() {
            let dir = Path::new("/sys/fs/cgroup").join(&name);
            let _ = std::fs::write("/sys/fs/cgroup/cgroup.subtree_control", "+cpu");
            (dir, "cpu.max", format!("{} 100000", percent * 1000))
        } else {
            let dir = Path::new("/sys/fs/cgroup/cpu").join(&name);
            (dir, "cpu.cfs_quota_us", (percent * 1000).to_string())
        };
        std::fs::create_dir(&dir).ok()?;
        let throttle = Throttle(dir);
        std::fs::write(throttle.0.join(limit_file), limit).ok()?;
        Some(throttle)
    }

    fn add(&self, pid: u32) {
        std::fs::write(self.0.join("cgroup.procs"), pid.to_string()).expect("move into the cgroup");
    }
}

impl Drop for Throttle {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// The pid of node `node` among `child`'s descendants, once it is there.
fn node_pid(child: &Child, node: &str) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let found = descendants(child.id()).into_iter().find(|p| {
            std::fs::read_to_string(format!("/proc/{p}/comm"))
                .is_ok_and(|c| c.trim() == format!("node-{node}"))
        });
        if let Some(pid) = found {
            return pid;
        }
        assert!(Instant::now() < deadline, "node `{node}` never started");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_lossless_replay_with_one_node_throttled_arrives_whole() {
    let _one = graph_tests::one_at_a_time();
    let Some(throttle) = Throttle::new(15) else {
        eprintln!(
            "SKIPPED: cannot create a CPU-limited cgroup here (needs root and the cpu controller)"
        );
        return;
    };
    let s = Scratch::new();
    let input = source_file(&s);
    let _hogs = Hogs::start(2);
    let out = s.path("out.mp4");
    let mut cmd = replay(&s, &input, &out, &["video-encode.quality=high"]);
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // sync, with its transport threads, gets 15 % of one CPU: the buffers it
    // holds and passes on go unconfirmed for most of every 100 ms.
    throttle.add(node_pid(&child, "sync"));
    let r = RunResult::new(child.wait_with_output().unwrap(), &s.path("report.json"));
    assert_whole(
        &r,
        &out,
        "sync throttled to 15 % of a CPU beside 2 busy loops",
    );
}

const DEFAULT_MEMLOCK: u64 = 8 << 20;

#[test]
fn every_shipped_graph_records_as_an_ordinary_user_at_default_limits() {
    if !is_root() {
        eprintln!("SKIPPED: needs root to run as another user (nobody)");
        return;
    }
    let _one = graph_tests::one_at_a_time();
    for (graph, ext) in [
        ("1080p.yaml", "mp4"),
        ("1080p60.yaml", "mp4"),
        ("720p.yaml", "mp4"),
        ("4k.yaml", "mp4"),
        ("multicam.yaml", "mkv"),
    ] {
        let s = Scratch::new();
        let out = s.path(&format!("out.{ext}"));
        let report = s.path("report.json");
        let output = unprivileged(&s, DEFAULT_MEMLOCK, None)
            .arg("run")
            .arg(repo_graph(graph))
            .args(["--duration", "2", "--run-dir"])
            .arg(s.path("run"))
            .arg("--report")
            .arg(&report)
            .args(["--set", &format!("mux.path={}", out.display())])
            .output()
            .unwrap();
        let r = RunResult::new(output, &report);
        assert_eq!(r.code, Some(0), "{graph} as nobody: {}", r.stderr);
        let p = probe(&out).unwrap();
        assert!(
            !p.video.is_empty() && p.video.iter().all(|v| v.frames() > 0),
            "{graph}: video in the file"
        );
        assert!(p.audio[0].samples > 0, "{graph}: audio in the file");
        let nodes = r.report()["nodes"].as_object().unwrap();
        let mut in_place = 0;
        for (id, node) in nodes {
            assert_eq!(node["lost"], 0, "{graph}: `{id}` lost messages");
            for input in node["stats"]["inputs"].as_object().unwrap().values() {
                in_place += input["shm_payloads"].as_u64().unwrap();
            }
        }
        assert!(in_place > 0, "{graph}: frames crossed in shared memory");
    }
}

#[test]
fn the_file_size_limit_bounds_the_recording_not_the_pools() {
    if !is_root() {
        eprintln!("SKIPPED: needs root to run as another user (nobody)");
        return;
    }
    let _one = graph_tests::one_at_a_time();
    let run = |fsize: u64| {
        let s = Scratch::new();
        let output = unprivileged(&s, DEFAULT_MEMLOCK, Some(fsize))
            .arg("run")
            .arg(repo_graph("1080p.yaml"))
            .args(["--duration", "1", "--run-dir"])
            .arg(s.path("run"))
            .args(["--set", "mux.path=out.mp4"])
            .output()
            .unwrap();
        let code = output.status.code();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        (s, code, stderr)
    };
    // 1 MiB: below zenoh's own segment in /dev/shm: said before anything starts.
    let (_s, code, stderr) = run(1 << 20);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("`ulimit -f 1280`"), "{stderr}");
    // 4 MiB: far below a 1080p pool (tens of MB), which is not a file: a
    // 1 s test-pattern recording (a few hundred KB) is made.
    let (s, code, stderr) = run(4 << 20);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(probe(&s.path("out.mp4")).unwrap().video[0].frames() > 0);
}
