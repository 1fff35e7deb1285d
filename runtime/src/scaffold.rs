//! `runtime new node NAME`: a new crate for a custom node, built on the node
//! API, that compiles and runs as it is (a pass-through filter) and an
//! example graph that uses it by `path:`.

use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context, Result};

/// The node API crate of the workspace this runtime was built from, when it
/// is still there (a source checkout); else `--api` must say where it is.
pub fn default_api_path() -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../nodes/api");
    path.join("Cargo.toml")
        .is_file()
        .then(|| std::path::absolute(&path).unwrap_or(path))
}

/// A crate (and binary) name: lowercase letters, digits, `-` and `_`,
/// starting with a letter, as cargo and graph ids both accept.
fn check_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !ok {
        bail!("`{name}` is not a valid node name: use lowercase letters, digits, `-` and `_`, starting with a letter (e.g. `my-filter`)");
    }
    Ok(())
}

/// `to` relative to the directory `from` when both are absolute; `to` as is otherwise.
fn relative_to(to: &Path, from: &Path) -> PathBuf {
    let (Ok(to), Ok(from)) = (std::path::absolute(to), std::path::absolute(from)) else {
        return to.to_path_buf();
    };
    let to: Vec<Component> = normalize(&to);
    let from: Vec<Component> = normalize(&from);
    let common = to.iter().zip(&from).take_while(|(a, b)| a == b).count();
    // Only the root in common: an absolute path reads better than `../../..`.
    if common <= 1 {
        return to.iter().collect();
    }
    let mut rel = PathBuf::new();
    for _ in common..from.len() {
        rel.push("..");
    }
    rel.extend(&to[common..]);
    rel
}

/// The components of an absolute path with `.` and `..` resolved lexically.
fn normalize(path: &Path) -> Vec<Component<'_>> {
    let mut out: Vec<Component> = Vec::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir if out.len() > 1 => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}

/// Writes the crate `dir` (which must not exist or be empty) for node `name`
/// depending on the node API crate at `api`. Returns the files written.
pub fn new_node(name: &str, dir: &Path, api: &Path) -> Result<Vec<PathBuf>> {
    check_name(name)?;
    if !api.join("Cargo.toml").is_file() {
        bail!(
            "{} is not the node API crate (no Cargo.toml there): pass --api <path to nodes/api>",
            api.display()
        );
    }
    if dir.exists()
        && std::fs::read_dir(dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        bail!("{} already exists and is not empty", dir.display());
    }
    std::fs::create_dir_all(dir.join("src"))
        .with_context(|| format!("creating {}", dir.display()))?;
    let api_rel = relative_to(api, dir);
    let files = [
        ("Cargo.toml", cargo_toml(name, &api_rel)),
        ("src/main.rs", main_rs(name)),
        ("graph.yaml", graph_yaml(name)),
    ];
    let mut written = Vec::new();
    for (file, text) in files {
        let path = dir.join(file);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

fn cargo_toml(name: &str, api: &Path) -> String {
    format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2021"
publish = false

[dependencies]
# The node API: events, typed sends, shared-memory buffers, params, metrics.
node-api = {{ path = "{api}" }}
anyhow = "1"
tracing = "0.1"

# A crate of its own, even inside another workspace's directory; delete this
# table (and add the crate to that workspace's members) to join it instead.
[workspace]

# As the runtime's own release build, so that a shared CARGO_TARGET_DIR can
# reuse its compiled dependencies.
[profile.release]
debug = "line-tables-only"
"#,
        api = api.display()
    )
}

fn main_rs(name: &str) -> String {
    format!(
        r#"//! `{name}`: a custom node for a mediagraph graph (made by `runtime new node`).
//!
//! As written it is a pass-through filter: every message on input `video`
//! goes out on output `video` unchanged and without a copy (the same
//! shared-memory buffer). Put your processing where it says so; see the
//! node API's documentation (`cargo doc -p node-api --open` in the mediagraph
//! repository) and docs/custom-nodes.md there.
//!
//! Build with `cargo build --release`, then run `runtime run graph.yaml`.
//! `{name} --describe` prints the node's schema ([`SCHEMA`]) as JSON: the
//! runtime reads it to check the node's params and edges in the graph
//! before anything runs, like a built-in node's.

use anyhow::{{bail, Result}};
use node_api::{{Event, Header, Node, NodeSchema, ParamSpec, PortSpec, PortType}};

/// What the node takes, sends and accepts as params, declared once: add a
/// `ParamSpec` for every param you read (type, range or choices, default,
/// description; `.live()` if you apply `Event::ParamUpdate`s of it).
static SCHEMA: NodeSchema = NodeSchema::new("{name}", "a pass-through filter (made by `runtime new node`)")
    .with_inputs(&[PortSpec::new("video", PortType::RawVideo, "raw video")])
    .with_outputs(&[PortSpec::new("video", PortType::RawVideo, "the same video")])
    .with_params(&[ParamSpec::text(
        "label",
        Some(DEFAULT_LABEL),
        "the name in the node's last log line",
    )]);

/// Each param's default, written once: the schema declares it, `run` reads it.
const DEFAULT_LABEL: &str = "{name}";

fn main() {{
    // Prints `error: <cause>` and exits 1 on error: the runtime shows it.
    node_api::run_main(run);
}}

fn run() -> Result<()> {{
    // Answers `--describe` (prints SCHEMA, exits); otherwise reads the config
    // the runtime passed in the environment and joins the graph.
    let mut node = Node::init_with_schema(&SCHEMA)?;
    // Checked against SCHEMA, defaults filled in.
    let label = node.params().str_or("label", DEFAULT_LABEL).to_string();
    let mut frames = 0u64;
    // `None` once every input has closed (end of stream).
    while let Some(event) = node.next_event()? {{
        match event {{
            Event::Input {{ input, message }} => match &message.header {{
                Header::Video(frame) => {{
                    // Your processing here. `message.payload.as_slice()` reads
                    // the pixels in place (laid out as `frame.layout` says); to
                    // change them, `node.alloc("video", len)` a buffer, write it
                    // and `node.send_video("video", header, buf)`.
                    node.forward("video", Header::Video(frame.clone()), &message.payload)?;
                    frames += 1;
                    node.metrics().set("frames", frames as f64);
                }}
                Header::EndOfStream | Header::Stats(_) => {{}}
                Header::Audio(_) | Header::Packet(_) => {{
                    bail!("input `{{input}}` does not carry raw video")
                }}
            }},
            Event::InputClosed {{ input }} => tracing::debug!("input `{{input}}` ended"),
            // Sources stop producing; a filter keeps draining until its input closes.
            Event::Stop => {{}}
            Event::ParamUpdate {{ name, value, .. }} => tracing::info!("param {{name}} = {{value}}"),
        }}
    }}
    tracing::info!("{{label}}: {{frames}} frames passed through");
    // End-of-stream on every output; waits until consumers released our buffers.
    node.finish()
}}
"#
    )
}

fn graph_yaml(name: &str) -> String {
    format!(
        r#"# A test pattern through `{name}` into an MP4.
#
#   cargo build --release && runtime run graph.yaml --duration 5
#
# `path:` is resolved from this file's directory; with another target
# directory, --set bin=<that directory>/release.
name: {name}
vars:
  bin: target/release
nodes:
  - id: camera
    node: camera
    params: {{ source: test, width: 640, height: 360 }}
  - id: video-normalize
    node: video-normalize
    inputs: {{ video: camera/video }}
    params: {{ width: 640, height: 360 }}
  # Its ports and the types of its params come from its schema (`--describe`).
  - id: {name}
    path: ${{bin}}/{name}
    inputs: {{ video: video-normalize/video }}
    params: {{ label: "{name}" }}
  - id: video-encode
    node: video-encode
    inputs: {{ video: {name}/video }}
  - id: mux
    node: mux
    inputs: {{ video: video-encode/video }}
    params: {{ path: "{name}.mp4" }}
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(check_name("my-filter2").is_ok());
        for bad in ["", "My", "2x", "a b", "a/b", "-a"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn relative_paths() {
        assert_eq!(
            relative_to(Path::new("/a/b/nodes/api"), Path::new("/a/b/examples/x")),
            PathBuf::from("../../nodes/api")
        );
        assert_eq!(
            relative_to(Path::new("/a/b/nodes/api"), Path::new("/a/b/./c/../d")),
            PathBuf::from("../nodes/api")
        );
        assert_eq!(
            relative_to(Path::new("/a/nodes/api"), Path::new("/tmp/x")),
            PathBuf::from("/a/nodes/api")
        );
    }

    #[test]
    fn refuses_a_directory_with_files_and_a_missing_api() {
        let dir = std::env::temp_dir().join(format!("scaffold-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("x"), "").unwrap();
        let api = default_api_path().expect("built from the workspace");
        let e = new_node("n", &dir, &api).unwrap_err().to_string();
        assert!(e.contains("not empty"), "{e}");
        let e = new_node("n", &dir.join("new"), &dir)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not the node API crate"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
