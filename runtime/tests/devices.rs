//! `runtime devices` as a user runs it: the built binary asking the built
//! node binaries beside it. Build the workspace first (`cargo build --workspace`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn runtime() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_runtime"))
}

/// Fails with instructions when the nodes' binary was not built with the runtime.
fn require_nodes() {
    let path = runtime().parent().unwrap().join("mediagraph-nodes");
    assert!(
        path.exists(),
        "{} is missing: these tests run the built-in nodes, build them first with `cargo build --workspace`",
        path.display()
    );
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("runtime-devices-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `runtime devices ARGS` with ALSA reading `alsa_config`.
fn devices(args: &[&str], alsa_config: &Path) -> Output {
    let out = Command::new(runtime())
        .arg("devices")
        .args(args)
        .env("ALSA_CONFIG_PATH", alsa_config)
        .env_remove("MEDIAGRAPH_NODE_DIR")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "runtime devices {args:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn has_cameras() -> bool {
    std::fs::read_dir("/dev").is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("video"))
    })
}

#[test]
fn says_when_there_are_no_devices() {
    require_nodes();
    let dir = temp_dir("none");
    // An empty ALSA configuration names no pcm at all, whatever the machine has.
    let conf = dir.join("empty.conf");
    std::fs::write(&conf, "").unwrap();

    let out = devices(&[], &conf);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("no audio inputs found"), "{text}");
    if !has_cameras() {
        assert!(text.contains("no cameras found"), "{text}");
    }

    let out = devices(&["--json"], &conf);
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["audio_inputs"], Value::Array(vec![]));
    if !has_cameras() {
        assert_eq!(json["cameras"], Value::Array(vec![]));
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// An ALSA `file` pcm reading a raw file over the `null` slave is a capture
/// device on any machine (the microphone node's capture test uses the same).
#[test]
fn lists_an_alsa_capture_device() {
    require_nodes();
    let dir = temp_dir("alsa");
    let infile = dir.join("in.raw");
    std::fs::write(&infile, vec![0u8; 48_000 * 4]).unwrap();
    let conf = node_microphone::test_device::write_config(&dir, &infile).unwrap();

    let out = devices(&[], &conf);
    let text = String::from_utf8(out.stdout).unwrap();
    // The device's heading line and its indented detail lines.
    let block: String = text
        .lines()
        .skip_while(|l| *l != "  testcapture: Test capture")
        .take_while(|l| *l == "  testcapture: Test capture" || l.starts_with("      "))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(!block.is_empty(), "testcapture not listed:\n{text}");
    for want in [
        "use:       microphone.source=device:testcapture",
        "rates:     8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000, 88200, 96000, 176400, 192000 Hz",
        "channels:  1-",
        "formats:   ",
        "i16",
        "f32",
        "default:   ",
    ] {
        assert!(block.contains(want), "missing `{want}` in:\n{text}");
    }

    let out = devices(&["--json"], &conf);
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let inputs = json["audio_inputs"].as_array().unwrap();
    let input = inputs
        .iter()
        .find(|i| i["name"] == "testcapture")
        .unwrap_or_else(|| panic!("testcapture not in {json}"));
    assert_eq!(input["description"], "Test capture");
    let numbers = |key: &str| -> Vec<u64> {
        input[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect()
    };
    assert!(numbers("sample_rates").contains(&48_000), "{input}");
    assert!(numbers("channels").contains(&2), "{input}");
    let formats: Vec<&str> = input["sample_formats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        formats.contains(&"i16") && formats.contains(&"f32"),
        "{input}"
    );
    assert!(input["default_config"]["sample_rate"].as_u64().unwrap() > 0);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_missing_or_failing_node_binary_is_named() {
    let dir = temp_dir("broken");
    let run = |dir: &Path| {
        let out = Command::new(runtime())
            .arg("devices")
            .env("MEDIAGRAPH_NODE_DIR", dir)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };

    let (code, stderr) = run(&dir);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("mediagraph-nodes") && stderr.contains("is missing"),
        "{stderr}"
    );

    // A stand-in for the nodes' binary answering per kind ($1).
    let nodes = |camera: &str, microphone: &str| {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join("mediagraph-nodes");
        let body = format!(
            "#!/bin/sh\ncase \"$1\" in\n camera) {camera};;\n microphone) {microphone};;\nesac\n"
        );
        std::fs::write(&path, body).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    // The camera listing failing: its own error is passed on.
    nodes(
        "echo 'error: querying cameras: denied' >&2; exit 1",
        "echo '[]'",
    );
    let (code, stderr) = run(&dir);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("`mediagraph-nodes camera --list-devices` failed")
            && stderr.contains("querying cameras: denied"),
        "{stderr}"
    );

    // Output that is not a device list is an error too.
    nodes("echo '[]'", "echo 'not json'");
    let (code, stderr) = run(&dir);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("mediagraph-nodes microphone"), "{stderr}");
    std::fs::remove_dir_all(&dir).ok();
}
