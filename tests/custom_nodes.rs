//! Custom nodes end to end: the example nodes (examples/overlay-filter,
//! examples/ffv1-encoder) run from the example graphs by `path:`, and a node
//! made by `runtime new node` builds, publishes its schema and runs in a
//! graph. Outputs are checked with ffprobe and ffmpeg (decoding, PSNR),
//! never wall time. (Schemas and what `runtime check` does with them:
//! node_schemas.rs.)

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use graph_tests::media::{decode_errors, probe, psnr_stats, require_ffmpeg, run_to_end, run_tool};
use graph_tests::{bin_dir, runtime_bin, Scratch};

const LIMIT: Duration = Duration::from_secs(120);

fn example_graph(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/graphs")
        .join(name)
}

/// A 1 s 320x240 30 fps test picture (30 frames): a file source replayed
/// faster than real time loses nothing and ends by itself, so two runs see
/// the same frames.
fn source_file(s: &Scratch) -> PathBuf {
    let path = s.path("source.mkv");
    run_tool(
        Command::new("ffmpeg")
            .args(["-nostdin", "-v", "error", "-f", "lavfi", "-i"])
            .arg("testsrc2=size=320x240:rate=30")
            .args([
                "-t",
                "1",
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-crf",
                "10",
            ])
            .args(["-pix_fmt", "yuv420p"])
            .arg(&path),
    );
    path
}

/// `--set` args for the example graphs: the file source, small, this build's binaries.
fn example_args(source: &Path, out: &Path) -> Vec<String> {
    [
        format!("source=file:{}", source.display()),
        "realtime=false".into(),
        "width=320".into(),
        "height=240".into(),
        format!("out={}", out.display()),
        format!("bin={}", bin_dir().display()),
    ]
    .into_iter()
    .flat_map(|s| ["--set".to_string(), s])
    .collect()
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Mean of per-frame PSNRs, with identical pictures (inf) counted as 99 dB.
fn mean(v: &[f64]) -> f64 {
    assert!(!v.is_empty(), "no PSNR values");
    v.iter().map(|x| x.min(99.0)).sum::<f64>() / v.len() as f64
}

/// Per-frame PSNR of the same `w`x`h`+`x`+`y` region of two files' videos.
fn region_psnr(a: &Path, b: &Path, (w, h, x, y): (u32, u32, u32, u32)) -> Vec<f64> {
    psnr_stats(
        &[a, b],
        &format!(
            "[0:v]crop={w}:{h}:{x}:{y},setpts=N[a];[1:v]crop={w}:{h}:{x}:{y},setpts=N[b];[a][b]psnr=stats_file=-"
        ),
    )
}

#[test]
fn ffv1_encoder_packets_are_muxed_and_decode_losslessly() {
    require_ffmpeg();
    let s = Scratch::new();
    let source = source_file(&s);
    let out = s.path("ffv1.mkv");
    let args = example_args(&source, &out);
    let r = run_to_end(
        &s,
        &example_graph("ffv1.yaml"),
        &strs(&args),
        LIMIT,
        "the end of the file",
    );
    let p = probe(&out).unwrap();
    assert_eq!(p.video.len(), 1);
    let v = &p.video[0];
    assert_eq!((v.codec.as_str(), v.width, v.height), ("ffv1", 320, 240));
    assert_eq!(v.frames(), 30, "{v:?}");
    assert_eq!(decode_errors(&out), "");
    assert_eq!(
        r.node("ffv1")["stats"]["metrics"]["frames"].as_f64(),
        Some(30.0)
    );
    // Lossless: every decoded picture is the source's decoded picture exactly.
    let psnr = psnr_stats(
        &[&out, &source],
        "[0:v]setpts=N[a];[1:v]setpts=N[b];[a][b]psnr=stats_file=-",
    );
    assert_eq!(psnr.len(), 30);
    assert!(
        psnr.iter().all(|p| p.is_infinite()),
        "not no_drop: PSNR {psnr:?}"
    );
}

#[test]
fn overlay_filter_burns_its_plate_and_nothing_else() {
    require_ffmpeg();
    let s = Scratch::new();
    let source = source_file(&s);
    let graph = example_graph("overlay.yaml");
    let with = s.path("with.mp4");
    let r = run_to_end(
        &s,
        &graph,
        &strs(&example_args(&source, &with)),
        LIMIT,
        "the end of the file",
    );
    assert_eq!(
        r.node("overlay")["stats"]["metrics"]["frames"].as_f64(),
        Some(30.0)
    );
    // The same graph with the encoder fed from before the overlay.
    let text = std::fs::read_to_string(&graph).unwrap();
    let bypass = text.replace("video: overlay/video", "video: video-normalize/video");
    assert_ne!(
        bypass, text,
        "overlay.yaml no longer feeds the encoder from the overlay"
    );
    let baseline_graph = s.graph("baseline.yaml", &bypass);
    let without = s.path("without.mp4");
    let args = example_args(&source, &without);
    run_to_end(
        &s,
        &baseline_graph,
        &strs(&args),
        LIMIT,
        "the end of the file",
    );

    for f in [&with, &without] {
        let p = probe(f).unwrap();
        assert_eq!(p.video[0].frames(), 30, "{}", f.display());
        assert_eq!(decode_errors(f), "");
    }
    // The plate (defaults: bottom-left, scale 2, margin 8): two lines of 12
    // characters, (12 * 6 - 1) * 2 + 4 = 146 wide, 2 * 9 * 2 = 36 high.
    let plate = (146, 36, 8, 240 - 8 - 36);
    let inside = mean(&region_psnr(&with, &without, plate));
    // Above it, the pictures are the same but for the encoder's rounding.
    let above = mean(&region_psnr(&with, &without, (320, 160, 0, 0)));
    assert!(
        inside < 20.0 && above > 35.0,
        "PSNR with vs without the overlay: {inside:.1} dB on the plate, {above:.1} dB above it"
    );
    // The plate is black with white text: its luma is mostly near black.
    let gray = run_tool(
        Command::new("ffmpeg")
            .args(["-nostdin", "-v", "error", "-i"])
            .arg(&with)
            .args(["-vf", "crop=146:36:8:196,format=gray", "-frames:v", "1"])
            .args(["-f", "rawvideo", "-"]),
    );
    let bytes = gray.as_bytes();
    let dark = bytes.iter().filter(|&&b| b < 40).count() as f64 / bytes.len().max(1) as f64;
    let bright = bytes.iter().filter(|&&b| b > 200).count();
    assert!(
        dark > 0.5 && bright > 50,
        "plate: {dark:.2} dark, {bright} bright pixels"
    );
}

#[test]
fn scaffolded_node_builds_and_runs_in_a_graph() {
    require_ffmpeg();
    let s = Scratch::new();
    let dir = s.path("my-node");
    let out = Command::new(runtime_bin())
        .args(["new", "node", "my-node", "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Again: the directory is no longer empty.
    let again = Command::new(runtime_bin())
        .args(["new", "node", "my-node", "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2));

    // Built into the workspace's target directory with its lock file, so the
    // compiled dependencies are reused: only the node API and the new crate
    // are compiled.
    let target = bin_dir().parent().unwrap().to_path_buf();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.lock"),
        dir.join("Cargo.lock"),
    )
    .unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let build = Command::new(cargo)
        .args(["build", "--release", "--offline", "--quiet"])
        .env("CARGO_TARGET_DIR", &target)
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(
        build.status.success(),
        "the scaffolded crate does not build:\n{}",
        String::from_utf8_lossy(&build.stderr)
    );
    // It publishes its schema: the graph lists no `outputs:` for it.
    let describe = Command::new(bin_dir().join("my-node"))
        .arg("--describe")
        .output()
        .unwrap();
    assert!(describe.status.success(), "{describe:?}");
    let schema: serde_json::Value = serde_json::from_slice(&describe.stdout).unwrap();
    assert_eq!(schema["kind"], "my-node", "{schema}");
    assert_eq!(schema["outputs"][0]["type"], "raw-video", "{schema}");
    assert_eq!(schema["params"][0]["name"], "label", "{schema}");
    let bin = format!("bin={}", bin_dir().display());
    let r = run_to_end(
        &s,
        &dir.join("graph.yaml"),
        &[
            "--set",
            &bin,
            "--duration",
            "1",
            "--set",
            "mux.path=my-node.mp4",
        ],
        LIMIT,
        "--duration",
    );
    let node = r.node("my-node");
    let frames = node["stats"]["metrics"]["frames"].as_f64().unwrap_or(0.0);
    assert!(frames >= 20.0, "my-node passed {frames} frames: {node}");
    let p = probe(&s.path("my-node.mp4")).unwrap();
    assert_eq!(p.video[0].frames() as f64, frames, "{p:?}");
}

/// A custom node that rejects its params at init (here the testkit node's
/// unknown `mode`) is what the run's error names, with its own message:
/// not the mux, which fails later with "no input sent any packet" when the
/// custom node's end-of-stream reaches it through the encoder, and which
/// used to be blamed because its exit came first (the custom node was still
/// waiting for its end-of-stream to be acknowledged).
#[test]
fn a_custom_node_rejecting_its_params_is_the_error_not_the_mux() {
    let s = Scratch::new();
    let g = s.graph(
        "bad.yaml",
        r#"
name: bad-params
nodes:
  - id: camera
    node: camera
    params: { source: test, width: 320, height: 240 }
  - id: picky
    path: {testkit}
    inputs: { video: camera/video }
    outputs: [video: raw-video]
    params: { mode: bogus }
  - id: video-encode
    node: video-encode
    inputs: { video: picky/video }
  - id: mux
    node: mux
    inputs: { video: video-encode/video }
    params: { path: "{dir}/out.mp4" }
"#,
    );
    let r = s.run(&g, &[]);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    let error = r
        .stderr
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_else(|| panic!("no error line:\n{}", r.stderr));
    assert!(
        error.contains("node `picky`") && !error.contains("`mux`"),
        "the first node to fail is the error: {error}\n{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("unknown mode `bogus`"),
        "with its own message:\n{}",
        r.stderr
    );
}
