//! Bad input, end to end: `runtime run` on a graph with one mistake. Static
//! mistakes exit 2 before any process starts, naming file:line:column and the
//! field; run-time ones exit 1 naming the node and the cause. Neither leaves
//! an output file behind (static ones leave nothing at all).
//!
//! (The memlock limit too low for the SHM pools is covered, as an
//! unprivileged user, in runtime_lifecycle.rs.)

use std::path::Path;

use graph_tests::{RunResult, Scratch};

/// A small recording graph; each test changes one thing in it.
const GRAPH: &str = "name: bad-input
nodes:
  - id: camera
    node: camera
    params: { source: test, width: 320, height: 240, fps: 30, realtime: false }
  - id: microphone
    node: microphone
    params: { source: test, sample_rate: 48000, channels: 2, realtime: false }
  - id: video-normalize
    node: video-normalize
    inputs: { video: camera/video }
    params: { width: 320, height: 240, fps: 30 }
  - id: audio-normalize
    node: audio-normalize
    inputs: { audio: microphone/audio }
  - id: sync
    node: sync
    inputs: { video: video-normalize/video, audio: audio-normalize/audio }
  - id: video-encode
    node: video-encode
    inputs: { video: sync/video }
    params: { codec: h264, crf: 23 }
  - id: audio-encode
    node: audio-encode
    inputs: { audio: sync/audio }
    params: { codec: aac }
  - id: mux
    node: mux
    inputs: { video: video-encode/video, audio: audio-encode/audio }
    params: { path: {dir}/out.mp4 }
";

/// The graph with `from` replaced by `to` (which must occur).
fn with(from: &str, to: &str) -> String {
    assert!(GRAPH.contains(from), "{from}");
    GRAPH.replacen(from, to, 1)
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Runs `yaml` and checks a static error: exit 2, `g.yaml:LINE:` where LINE
/// holds `at`, the field and the message fragment; nothing written.
fn static_error(yaml: &str, at: &str, field: &str, fragment: &str) -> RunResult {
    static_error_in(&Scratch::new(), yaml, at, field, fragment)
}

/// [`static_error`] in a scratch directory the test prepared.
fn static_error_in(s: &Scratch, yaml: &str, at: &str, field: &str, fragment: &str) -> RunResult {
    let g = s.graph("g.yaml", yaml);
    let before = files_in(s.dir.path());
    let r = s.run(&g, &["--duration", "2"]);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert_located(&r.stderr, &located_at(&g, at), field, fragment);
    // Nothing started, nothing written: no run directory, no report, no output.
    assert_eq!(files_in(s.dir.path()), before, "{}", r.stderr);
    r
}

/// `g.yaml:LINE:` of the first line of the graph file `g` holding `at`.
fn located_at(g: &Path, at: &str) -> String {
    let text = String::from_utf8_lossy(&std::fs::read(g).unwrap()).into_owned();
    let line = text
        .lines()
        .position(|l| l.contains(at))
        .unwrap_or_else(|| panic!("`{at}` is not in the graph"))
        + 1;
    format!("g.yaml:{line}:")
}

fn assert_located(stderr: &str, located: &str, field: &str, fragment: &str) {
    for expected in [located, field, fragment] {
        assert!(
            stderr.contains(expected),
            "expected `{expected}` in:\n{stderr}"
        );
    }
}

/// `runtime ARGS` (run from the graph's directory) with its address space
/// capped, so a runaway allocation fails instead of taking the machine's
/// memory; (exit code, stderr).
fn runtime_capped(dir: &Path, args: &[&str]) -> (Option<i32>, String) {
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new(graph_tests::runtime_bin());
    cmd.args(args).current_dir(dir);
    // SAFETY: setrlimit is async-signal-safe and only affects the child.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 2 << 30,
                rlim_max: 2 << 30,
            };
            libc::setrlimit(libc::RLIMIT_AS, &limit);
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `runtime check`, `runtime graph` and `runtime run` all refuse the graph
/// `g` with exit 2, naming the place, the field and the cause.
fn every_command_refuses(s: &Scratch, g: &Path, located: &str, field: &str, fragment: &str) {
    let g = g.to_str().unwrap();
    let run_dir = s.path("run");
    for args in [
        vec!["check", g],
        vec!["graph", g],
        vec![
            "run",
            g,
            "--duration",
            "2",
            "--run-dir",
            run_dir.to_str().unwrap(),
        ],
    ] {
        let (code, stderr) = runtime_capped(s.dir.path(), &args);
        assert_eq!(code, Some(2), "runtime {}: {stderr}", args[0]);
        assert_located(&stderr, located, field, fragment);
    }
    assert!(!run_dir.exists(), "nothing started");
}

/// Runs `yaml` and checks a run-time error: exit 1, the node and the cause
/// named, no output file.
fn runtime_error(yaml: &str, node: &str, fragment: &str) -> RunResult {
    let s = Scratch::new();
    let g = s.graph("g.yaml", yaml);
    let r = s.run(&g, &["--duration", "5", "--grace", "10"]);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!("node `{node}`")),
        "expected node `{node}` in:\n{}",
        r.stderr
    );
    assert!(
        r.stderr.contains(fragment),
        "expected `{fragment}` in:\n{}",
        r.stderr
    );
    assert!(!s.path("out.mp4").exists(), "no partial output file");
    assert_eq!(r.node(node)["failed"], true);
    r
}

#[test]
fn malformed_yaml() {
    static_error(
        &with("  - id: sync\n", "  - id: sync\n   node: [broken\n"),
        "node: [broken",
        "",
        "",
    );
}

#[test]
fn unknown_field() {
    static_error(
        &with("    node: sync\n", "    node: sync\n    restrat: always\n"),
        "restrat",
        "nodes[4].restrat",
        "did you mean `restart`",
    );
}

#[test]
fn unknown_node_kind() {
    static_error(
        &with("node: sync", "node: synk"),
        "node: synk",
        "nodes[4].node",
        "synk",
    );
}

#[test]
fn missing_executable() {
    static_error(
        &with("node: sync", "path: ./no-such-node"),
        "no-such-node",
        "nodes[4].path",
        "no-such-node",
    );
}

#[test]
fn non_executable_path() {
    static_error(
        &with("node: sync", "path: g.yaml"),
        "path: g.yaml",
        "nodes[4].path",
        "not executable",
    );
}

#[test]
fn duplicate_id() {
    static_error(
        &with("  - id: audio-encode", "  - id: video-encode # again"),
        "video-encode # again",
        "id",
        "duplicate",
    );
}

#[test]
fn dangling_input() {
    static_error(
        &with("video: camera/video", "video: kamera/video"),
        "kamera",
        "nodes[2].inputs.video",
        "kamera",
    );
}

#[test]
fn type_mismatched_edge() {
    static_error(
        &with("video: camera/video", "video: microphone/audio"),
        "video: microphone/audio",
        "nodes[2].inputs.video",
        "type mismatch: `microphone/audio` is raw-audio",
    );
}

#[test]
fn cycle() {
    static_error(
        &with("video: camera/video", "video: sync/video"),
        "inputs: { video: video-normalize/video, audio",
        "nodes[4].inputs.video",
        "cycle in the graph: sync → video-normalize → sync",
    );
}

#[test]
fn resolution_zero_odd_and_too_large() {
    for (value, fragment) in [
        ("width: 0", "out of range 16..=8192"),
        ("width: 321", "odd"),
        ("width: 9000", "out of range 16..=8192"),
    ] {
        static_error(
            &with(
                "source: test, width: 320",
                &format!("source: test, {value}"),
            ),
            value,
            "nodes[0].params.width",
            fragment,
        );
    }
}

#[test]
fn fps_not_positive() {
    for value in ["fps: 0", "fps: -30"] {
        static_error(
            &with(
                "height: 240, fps: 30, realtime",
                &format!("height: 240, {value}, realtime"),
            ),
            value,
            "nodes[0].params.fps",
            "positive",
        );
    }
}

#[test]
fn codec_container_pair() {
    static_error(
        &with("out.mp4", "out.webm"),
        "video: video-encode/video, audio",
        "inputs.video",
        "h264 cannot go in a webm file",
    );
}

/// Audio frames too short for the graph to carry in real time (1 sample:
/// the microphone fell behind and 92 % of the audio never reached the file,
/// with exit 0) are refused before anything starts.
#[test]
fn audio_frames_too_short_to_keep_up() {
    static_error(
        &with(
            "channels: 2, realtime: false }",
            "channels: 2, realtime: false, frame_samples: 1 }",
        ),
        "frame_samples: 1",
        "nodes[1].params.frame_samples",
        "frame_samples 1 is below 48 (1 ms at 48000 Hz)",
    );
}

#[test]
fn crf_out_of_range() {
    static_error(
        &with("crf: 23", "crf: 60"),
        "crf: 60",
        "nodes[5].params.crf",
        "out of range 0..=51 for h264",
    );
}

#[test]
fn absurd_bitrate() {
    static_error(
        &with("codec: h264, crf: 23", "codec: h264, bitrate: 50G"),
        "bitrate: 50G",
        "nodes[5].params.bitrate",
        "out of range",
    );
}

#[test]
fn sample_rate_outside_8_to_192_khz() {
    for value in ["sample_rate: 4000", "sample_rate: 200000"] {
        static_error(
            &with("sample_rate: 48000", value),
            value,
            "nodes[1].params.sample_rate",
            "out of range 8000..=192000",
        );
    }
}

#[test]
fn channels_zero_or_more_than_eight() {
    for value in ["channels: 0", "channels: 9"] {
        static_error(
            &with("channels: 2", value),
            value,
            "nodes[1].params.channels",
            "out of range 1..=8",
        );
    }
}

#[test]
fn file_source_missing() {
    static_error(
        &with("source: test, width", "source: file:missing.mkv, width"),
        "missing.mkv",
        "nodes[0].params.source",
        "cannot read the source file `missing.mkv`",
    );
}

#[test]
fn file_source_corrupt() {
    let corrupt = std::env::temp_dir().join(format!("bad-input-{}.mkv", std::process::id()));
    std::fs::write(
        &corrupt,
        b"not a matroska file at all, just text".repeat(100),
    )
    .unwrap();
    let r = runtime_error(
        &with(
            "source: test, width",
            &format!("source: \"file:{}\", width", corrupt.display()),
        ),
        "camera",
        "cannot open",
    );
    let _ = std::fs::remove_file(&corrupt);
    assert!(
        r.stderr.contains("exited before the graph started"),
        "{}",
        r.stderr
    );
}

#[test]
fn camera_not_found() {
    runtime_error(
        &with(
            "source: test, width",
            "source: \"device:no-such-camera\", width",
        ),
        "camera",
        "not found",
    );
}

#[test]
fn microphone_not_found() {
    runtime_error(
        &with(
            "source: test, sample_rate",
            "source: \"device:no-such-microphone\", sample_rate",
        ),
        "microphone",
        "no-such-microphone",
    );
}

/// The `source` grammar of the camera and the microphone is a rule of the
/// kind: `runtime check` and `runtime run` refuse a bogus source with exit 2,
/// naming the override (or the place in the file), instead of the node
/// failing when it starts (exit 1).
#[test]
fn source_grammar_is_checked_before_the_start() {
    for (set, fragment) in [
        ("camera.source=bogus", "unknown source `bogus`"),
        (
            "microphone.source=bogus",
            "unknown microphone source `bogus`",
        ),
        ("camera.source=device:", "needs a camera index or name"),
        ("microphone.source=file:", "needs a path"),
    ] {
        let s = Scratch::new();
        let g = s.graph("g.yaml", GRAPH);
        let g = g.to_str().unwrap();
        let run_dir = s.path("run");
        let run_dir = run_dir.to_str().unwrap();
        for args in [
            vec!["check", g, "--set", set],
            vec![
                "run",
                g,
                "--set",
                set,
                "--duration",
                "2",
                "--run-dir",
                run_dir,
            ],
        ] {
            let (code, stderr) = runtime_capped(s.dir.path(), &args);
            assert_eq!(code, Some(2), "runtime {} --set {set}: {stderr}", args[0]);
            let field = set.split_once('=').unwrap().0;
            assert_located(&stderr, "g.yaml: ", &format!("--set {field}"), fragment);
        }
        assert!(!s.path("run").exists(), "nothing started");
    }
    // Written in the file, the error names its line and column.
    static_error(
        &with("source: test, sample_rate", "source: bogus, sample_rate"),
        "source: bogus",
        "nodes[1].params.source",
        "unknown microphone source `bogus`",
    );
}

/// A camera asked for the screen the way ffmpeg's command line does is
/// refused with the accepted forms and pointed to the `screen` kind.
#[test]
fn a_camera_asked_for_the_screen_points_to_the_screen_kind() {
    let r = static_error(
        &with(
            "source: test, width: 320",
            "source: \"x11grab::0\", width: 320",
        ),
        "x11grab",
        "nodes[0].params.source",
        "unknown source `x11grab::0`: use auto, test, device:<index|name>, file:<path> or a URL",
    );
    assert!(
        r.stderr
            .contains("to record the screen, use a node of kind `screen` instead of a camera"),
        "{}",
        r.stderr
    );
}

#[test]
fn output_directory_missing() {
    static_error(
        &with("path: {dir}/out.mp4", "path: {dir}/no-such-dir/out.mp4"),
        "no-such-dir",
        "nodes[7].params.path",
        "no-such-dir` does not exist",
    );
}

#[test]
fn output_directory_unwritable() {
    // Not writable even for root (procfs), so the test means the same for everyone.
    static_error(
        &with("path: {dir}/out.mp4", "path: /proc/self/out.mp4"),
        "/proc/self/out.mp4",
        "nodes[7].params.path",
        "output directory `/proc/self` is not writable",
    );
}

#[test]
fn output_file_exists() {
    let elsewhere = tempfile::tempdir().unwrap();
    let taken = elsewhere.path().join("take.mp4");
    std::fs::write(&taken, b"an earlier recording").unwrap();
    let yaml = with("path: {dir}/out.mp4", &format!("path: {}", taken.display()));
    static_error(
        &yaml,
        "take.mp4",
        "nodes[7].params.path",
        "already exists; set `overwrite: true` to replace it",
    );
    assert_eq!(
        std::fs::read(&taken).unwrap(),
        b"an earlier recording",
        "the earlier recording is untouched"
    );
    // With overwrite the same graph is valid.
    let s = Scratch::new();
    let g = s.graph("g.yaml", &yaml.replace("path: ", "overwrite: true, path: "));
    let check = std::process::Command::new(graph_tests::runtime_bin())
        .arg("check")
        .arg(&g)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
}

#[test]
fn output_path_outside_the_output_directory() {
    static_error(
        &with(
            "path: {dir}/out.mp4",
            "output_dir: {dir}, path: {dir}/../out.mp4",
        ),
        "output_dir",
        "nodes[7].params.path",
        "is outside the output directory",
    );
}

#[test]
fn nul_byte_in_the_graph_file() {
    // saphyr reads a NUL as the end of the text: the nodes after it vanished
    // and the rest of the graph ran (recording nothing).
    let s = Scratch::new();
    let g = s.graph(
        "g.yaml",
        &with("    node: sync\n", "    node: sync\n\0  - id: ghost\n"),
    );
    let at = located_at(&g, "\0") + "1:";
    every_command_refuses(&s, &g, &at, "", "a NUL byte");
    assert!(!s.path("out.mp4").exists());
}

#[test]
fn control_character_in_the_graph_file() {
    static_error(
        &with("codec: aac", "codec: aac\u{1b}"),
        "codec: aac",
        "",
        "the control character U+001B",
    );
}

#[test]
fn nested_aliases_are_capped() {
    // A "billion laughs": ten aliases of ten aliases of ... expands to 10^9
    // values. Every command must refuse it at once, in bounded memory.
    let mut laughs = String::from("x-laughs:\n  - &a0 [lol]\n");
    for i in 1..=9 {
        let items = vec![format!("*a{}", i - 1); 10].join(", ");
        laughs.push_str(&format!("  - &a{i} [{items}]\n"));
    }
    let s = Scratch::new();
    let g = s.graph(
        "g.yaml",
        &GRAPH.replacen("nodes:\n", &format!("{laughs}nodes:\n"), 1),
    );
    // 23462 values up to `- &a5 [`, 21111 more per `*a4`: the fourth one
    // (column 25) passes 100000.
    let at = located_at(&g, "- &a5 [");
    every_command_refuses(
        &s,
        &g,
        &format!("{at}25:"),
        "",
        "the alias `*a4` here expands the graph past 100000 values",
    );
}

#[test]
fn reserved_node_id() {
    // `_runtime` is the runtime's own socket in the run's socket directory.
    static_error(
        &with("  - id: mux\n", "  - id: _runtime\n"),
        "id: _runtime",
        "nodes[7].id",
        "id `_runtime` is reserved: ids starting with `_` belong to the runtime",
    );
}

#[test]
fn seconds_flags_out_of_range() {
    // Past 2^64 s `Duration::from_secs_f64` panicked (exit 101).
    for (flag, value, range) in [
        ("--duration", "1e20", "allowed: 0 < SECONDS <= 31536000"),
        ("--duration", "-3", "allowed: 0 < SECONDS <= 31536000"),
        ("--duration", "NaN", "allowed: 0 < SECONDS <= 31536000"),
        ("--grace", "1e20", "allowed: 0 <= SECONDS <= 31536000"),
        ("--grace", "-1", "allowed: 0 <= SECONDS <= 31536000"),
        (
            "--ready-timeout",
            "1e300",
            "allowed: 0 < SECONDS <= 31536000",
        ),
        ("--ready-timeout", "inf", "allowed: 0 < SECONDS <= 31536000"),
    ] {
        let s = Scratch::new();
        let g = s.graph("g.yaml", GRAPH);
        let r = s.run(&g, &[flag, value]);
        assert_eq!(r.code, Some(2), "{flag} {value}: {}", r.stderr);
        assert!(
            r.stderr
                .contains(&format!("'{value}' for '{flag} <SECONDS>'"))
                && r.stderr.contains(range),
            "{flag} {value}: {}",
            r.stderr
        );
        assert_eq!(files_in(s.dir.path()), ["g.yaml"], "{}", r.stderr);
    }
}

/// A directory outside the scratch one, and the path there a link must not reach.
fn elsewhere() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let escape = dir.path().join("escape.mp4");
    (dir, escape)
}

#[test]
fn output_file_is_a_link_out_of_the_output_directory() {
    // A dangling link passed the "already exists" check, and the mux wrote
    // where it pointed.
    let (_outside, escape) = elsewhere();
    let s = Scratch::new();
    std::fs::create_dir(s.path("out")).unwrap();
    std::os::unix::fs::symlink(&escape, s.path("out/take.mp4")).unwrap();
    static_error_in(
        &s,
        &with(
            "path: {dir}/out.mp4",
            "output_dir: {dir}/out, path: {dir}/out/take.mp4",
        ),
        "take.mp4",
        "nodes[7].params.path",
        "take.mp4` is a symbolic link",
    );
    assert!(!escape.exists(), "nothing written through the link");
}

#[test]
fn output_link_appearing_after_the_checks() {
    // The second file of a split recording is created during the run: a link
    // planted there (after every check at the start) is refused when the mux
    // creates the file.
    let (_outside, escape) = elsewhere();
    let s = Scratch::new();
    std::fs::create_dir(s.path("out")).unwrap();
    std::os::unix::fs::symlink(&escape, s.path("out/take-001.mp4")).unwrap();
    let g = s.graph(
        "g.yaml",
        &with(
            "path: {dir}/out.mp4",
            "output_dir: {dir}/out, path: {dir}/out/take.mp4, max_duration: 1",
        )
        .replace("crf: 23", "crf: 23, keyframe_interval: 1"),
    );
    let r = s.run(&g, &["--duration", "3", "--grace", "10"]);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(
        r.stderr.contains("node `mux`") && r.stderr.contains("take-001.mp4 is a symbolic link"),
        "{}",
        r.stderr
    );
    assert!(!escape.exists(), "nothing written through the link");
    assert_eq!(r.node("mux")["failed"], true);
}

#[test]
fn a_sync_without_inputs() {
    static_error(
        &with(
            "    inputs: { video: video-normalize/video, audio: audio-normalize/audio }\n",
            "    inputs: {}\n",
        ),
        "inputs: {}",
        "nodes[4].inputs",
        "sync needs at least one input",
    );
}

#[test]
fn a_wrong_link_between_machines() {
    // The link's settings are video-encode's, checked like a node's params,
    // at their place in the file, before anything starts.
    let yaml = "network:\n  a: {}\n  b: {}\nnodes:\n  - id: cam\n    node: camera\n    deploy: { machine: a }\n    params: { source: test }\n  - id: enc\n    node: video-encode\n    deploy: { machine: b }\n    inputs:\n      video: { source: cam/video, link: { codec: mjpeg, crf: 40 } }\n  - id: mux\n    node: mux\n    deploy: { machine: b }\n    inputs: { video: enc/video }\n    params: { path: out.mkv }\n";
    static_error(
        yaml,
        "crf: 40",
        "nodes[1].inputs.video.link.crf",
        "crf 40 is out of range 0..=31 for mjpeg",
    );
}
