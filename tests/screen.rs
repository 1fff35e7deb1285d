//! Screen capture, end to end, under a virtual X screen (Xvfb) showing a
//! known picture (tests/support/xvfb.rs): the shipped graphs/screen.yaml
//! records it, the whole screen or a region; every recorded frame shows the
//! picture where it should, and the frames add up to duration x rate with
//! the screen node's own count of what it sent and dropped. Bad input (an
//! unknown display, a region off the screen, a bad rate, a Wayland-only
//! session) exits 2 before anything starts, naming the line and field.

use std::path::Path;

use graph_tests::media::{probe, repo_graph, require_ffmpeg};
use graph_tests::servers::skip;
use graph_tests::xvfb::{self, Xvfb};
use graph_tests::{one_at_a_time, runtime_bin, RunResult, Scratch};

const SECONDS: u64 = 3;
const FPS: u64 = 15;
/// Per channel, after yuv420p and H.264.
const TOLERANCE: u8 = 40;

/// An Xvfb with the picture, or `None` after `SKIPPED:` (a failure in CI).
fn xvfb(s: &Scratch) -> Option<Xvfb> {
    match Xvfb::start(s.dir.path()) {
        Ok(x) => Some(x),
        Err(why) => {
            skip(&format!("no virtual X screen: {why}"));
            None
        }
    }
}

/// graphs/screen.yaml on `x`'s display for SECONDS at FPS, the microphone's
/// test tone beside it, the picture `width` x `height` (the region's size,
/// so nothing is scaled), with `extra` --set overrides.
fn record(s: &Scratch, x: &Xvfb, (width, height): (u32, u32), extra: &[&str]) -> RunResult {
    let mut args = vec![
        "--duration".to_string(),
        SECONDS.to_string(),
        "--set".into(),
        format!("screen.display={}", x.display),
        "--set".into(),
        "microphone.source=test".into(),
        "--set".into(),
        format!("fps={FPS}"),
        "--set".into(),
        format!("width={width}"),
        "--set".into(),
        format!("height={height}"),
        "--set".into(),
        "video-encode.quality=high".into(),
        "--set".into(),
        format!("mux.path={}", s.path("screen.mp4").display()),
    ];
    // The pointer (Xvfb puts it at the screen's center) hidden, unless asked.
    if !extra.iter().any(|e| e.starts_with("screen.cursor=")) {
        args.extend(["--set".to_string(), "screen.cursor=false".to_string()]);
    }
    for e in extra {
        args.extend(["--set".to_string(), e.to_string()]);
    }
    let out = s
        .runtime_run(&repo_graph("screen.yaml"), &args)
        .env_remove("DISPLAY")
        .output()
        .expect("runtime runs");
    RunResult::new(out, &s.path("report.json"))
}

/// The file holds SECONDS x FPS frames of `width` x `height`, every one
/// showing the picture from screen point `origin`; the screen node sent or
/// counted as dropped each of those frames.
fn assert_recorded(s: &Scratch, r: &RunResult, (width, height): (u32, u32), origin: (u32, u32)) {
    r.assert_ok();
    let path = s.path("screen.mp4");
    let p = probe(&path).unwrap();
    let v = &p.video[0];
    assert_eq!((v.width, v.height), (width as u64, height as u64));
    let expected = SECONDS * FPS;
    assert!(p.audio[0].samples > 0, "the microphone's track is there");
    let screen = &r.node("screen")["stats"];
    let sent = screen["outputs"]["video"]["sent"].as_u64().unwrap();
    let dropped = screen["metrics"]["dropped"].as_f64().unwrap() as u64;
    assert_eq!(sent + dropped, expected, "the screen's counters: {screen}");
    // A machine too busy to keep up can lose frames on the way (a full
    // queue, a slot sync leaves empty): each missing one is counted.
    let counted: u64 = ["screen", "video-normalize", "sync", "video-encode", "mux"]
        .iter()
        .map(|id| r.node(id)["dropped"].as_u64().unwrap())
        .sum::<u64>()
        + r.node("sync")["stats"]["metrics"]["video_gaps"]
            .as_f64()
            .unwrap() as u64;
    assert!(v.frames() <= expected, "{v:?}");
    assert!(
        expected - v.frames() <= counted,
        "{} frames missing, {counted} counted: {v:?}",
        expected - v.frames()
    );
    assert!(v.frames() >= expected / 2, "most frames are there: {v:?}");
    for (n, frame) in xvfb::decode_rgb(&path, width, height).iter().enumerate() {
        let bad = xvfb::mismatches(frame, width, origin, TOLERANCE);
        assert!(bad.is_empty(), "frame {n} is not the picture at {bad:?}");
    }
}

#[test]
fn the_whole_screen_is_recorded_with_its_picture_in_every_frame() {
    require_ffmpeg();
    let _turn = one_at_a_time();
    let s = Scratch::new();
    let Some(x) = xvfb(&s) else { return };
    let size = (xvfb::WIDTH, xvfb::HEIGHT);
    let r = record(&s, &x, size, &[]);
    assert_recorded(&s, &r, size, (0, 0));
}

#[test]
fn a_region_is_cut_from_the_screen_where_it_says() {
    require_ffmpeg();
    let _turn = one_at_a_time();
    let s = Scratch::new();
    let Some(x) = xvfb(&s) else { return };
    // Across the red block's right and bottom edges: red in its top-left
    // 80x80, blue elsewhere, only if cut at (320, 80).
    let (left, top, size) = (320, 80, (160, 160));
    let region = [
        format!("screen.x={left}"),
        format!("screen.y={top}"),
        format!("screen.width={}", size.0),
        format!("screen.height={}", size.1),
    ];
    let region: Vec<&str> = region.iter().map(String::as_str).collect();
    let r = record(&s, &x, size, &region);
    assert_recorded(&s, &r, size, (left, top));
}

#[test]
fn the_pointer_is_drawn_only_when_asked() {
    require_ffmpeg();
    let _turn = one_at_a_time();
    let s = Scratch::new();
    let Some(x) = xvfb(&s) else { return };
    // 32x32 around the screen's center, where Xvfb's pointer (an X, black
    // and white) sits; the screen is blue there.
    let (left, top, size) = (304, 224, (32, 32));
    let region = [
        format!("screen.x={left}"),
        format!("screen.y={top}"),
        "screen.width=32".to_string(),
        "screen.height=32".to_string(),
    ];
    let mut extra: Vec<&str> = region.iter().map(String::as_str).collect();
    let hidden = record(&s, &x, size, &extra);
    assert_recorded(&s, &hidden, size, (left, top));
    std::fs::remove_file(s.path("screen.mp4")).unwrap();
    extra.push("screen.cursor=true");
    let drawn = record(&s, &x, size, &extra);
    drawn.assert_ok();
    let frames = xvfb::decode_rgb(&s.path("screen.mp4"), size.0, size.1);
    assert_eq!(frames.len() as u64, SECONDS * FPS);
    for (n, frame) in frames.iter().enumerate() {
        // Not blue: the pointer's black and white pixels.
        let pointer = frame.chunks(3).filter(|p| p[2] < 128 || p[0] > 128).count();
        assert!(pointer >= 30, "frame {n}: {pointer} pointer pixels");
    }
}

/// A graph of a screen on `display` feeding a mux through the usual chain;
/// `params` are the screen's other params.
fn screen_graph(dir: &Path, display: &str, params: &str) -> String {
    format!(
        "name: screen
nodes:
  - id: screen
    node: screen
    params:
      display: \"{display}\"
{params}
  - id: video-normalize
    node: video-normalize
    inputs: {{ video: screen/video }}
    params: {{ width: 320, height: 240 }}
  - id: video-encode
    node: video-encode
    inputs: {{ video: video-normalize/video }}
  - id: mux
    node: mux
    inputs: {{ video: video-encode/video }}
    params: {{ path: {}/out.mp4 }}
",
        dir.display()
    )
}

/// `runtime run` of `yaml` exits 2 naming g.yaml's line holding `at`, the
/// field and `fragment`; nothing was started or written.
fn refused(s: &Scratch, yaml: &str, at: &str, field: &str, fragment: &str) {
    refused_with(s, yaml, at, field, fragment, &[]);
}

fn refused_with(
    s: &Scratch,
    yaml: &str,
    at: &str,
    field: &str,
    fragment: &str,
    env: &[(&str, Option<&str>)],
) {
    let g = s.graph("g.yaml", yaml);
    let mut cmd = s.runtime_run(&g, &["--duration", "2"]);
    for (name, value) in env {
        match value {
            Some(v) => cmd.env(name, v),
            None => cmd.env_remove(name),
        };
    }
    let r = RunResult::new(cmd.output().unwrap(), &s.path("report.json"));
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    let line = yaml.lines().position(|l| l.contains(at)).unwrap() + 1;
    for expected in [format!("g.yaml:{line}:"), field.into(), fragment.into()] {
        assert!(
            r.stderr.contains(&expected),
            "no `{expected}` in:\n{}",
            r.stderr
        );
    }
    assert!(!s.path("run").exists(), "nothing started");
    assert!(!s.path("out.mp4").exists());
}

#[test]
fn an_unknown_display_is_refused_before_anything_starts() {
    let s = Scratch::new();
    let yaml = screen_graph(s.dir.path(), ":4093", "");
    refused(
        &s,
        &yaml,
        "display:",
        "nodes[0].params.display",
        "cannot open X display `:4093`",
    );
    let yaml = screen_graph(s.dir.path(), "my-screen", "");
    refused(
        &s,
        &yaml,
        "display:",
        "nodes[0].params.display",
        "`my-screen` is not an X display name",
    );
}

#[test]
fn a_region_off_the_screen_or_a_bad_rate_is_refused_before_anything_starts() {
    let s = Scratch::new();
    let Some(x) = xvfb(&s) else { return };
    let off = "      x: 600\n      width: 100";
    refused(
        &s,
        &screen_graph(s.dir.path(), &x.display, off),
        "width: 100",
        "nodes[0].params.width",
        "past the screen's edge (640x480): x + width must be at most 640",
    );
    let below = "      y: 480";
    refused(
        &s,
        &screen_graph(s.dir.path(), &x.display, below),
        "y: 480",
        "nodes[0].params.y",
        "y 480 is off the screen (640x480)",
    );
    refused(
        &s,
        &screen_graph(s.dir.path(), &x.display, "      fps: 0"),
        "fps: 0",
        "nodes[0].params.fps",
        "rational > 0",
    );
}

#[test]
fn a_wayland_only_session_is_refused_with_what_to_do() {
    let s = Scratch::new();
    let yaml =
        screen_graph(s.dir.path(), "", "").replace("      display: \"\"\n", "      cursor: true\n");
    refused_with(
        &s,
        &yaml,
        "params:",
        "nodes[0].params.display",
        "Wayland screen capture (desktop portal + PipeWire) is not supported yet",
        &[("DISPLAY", None), ("WAYLAND_DISPLAY", Some("wayland-1"))],
    );
}

#[test]
fn runtime_devices_lists_the_screen_with_its_size() {
    let s = Scratch::new();
    let Some(x) = xvfb(&s) else { return };
    let out = std::process::Command::new(runtime_bin())
        .args(["devices", "--json"])
        .env("DISPLAY", &x.display)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        json["screens"],
        serde_json::json!([{
            "display": format!("{}.0", x.display),
            "width": xvfb::WIDTH,
            "height": xvfb::HEIGHT,
            "error": null
        }])
    );
    let text = std::process::Command::new(runtime_bin())
        .arg("devices")
        .env("DISPLAY", &x.display)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    let line = format!(
        "  {}.0: 640x480\n      use: screen.display={}.0\n",
        x.display, x.display
    );
    assert!(text.contains(&line), "{text}");
}
