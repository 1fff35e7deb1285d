//! Turning a graph node into a running OS process: finding its binary,
//! building its config, wiring its endpoints, starting it.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{anyhow, Context, Result};
use node_api::{NodeConfig, OutputConfig, TransportConfig, CONFIG_ENV};
use node_catalog::{PortType, BUILTIN_BINARY};
use tokio::process::Command;

use super::child::NodeChild;
use super::forks::ForkServer;

use crate::graph::{Graph, NodeDef, NodeProgram};

/// Where the built-in nodes' binary (`mediagraph-nodes`) lives: beside `runtime`, unless
/// `MEDIAGRAPH_NODE_DIR` says otherwise (embedding applications).
pub fn builtin_dir() -> Result<PathBuf> {
    if let Ok(dir) = std::env::var("MEDIAGRAPH_NODE_DIR") {
        return Ok(PathBuf::from(dir));
    }
    let exe = std::env::current_exe().context("locating the runtime binary")?;
    let dir = exe
        .parent()
        .ok_or_else(|| anyhow!("runtime binary has no directory"))?;
    // Test binaries live in target/<profile>/deps, examples in
    // target/<profile>/examples; the nodes one level up.
    if dir.ends_with("deps") || dir.ends_with("examples") {
        return Ok(dir.parent().unwrap().to_path_buf());
    }
    Ok(dir.to_path_buf())
}

/// The executable that runs every built-in kind: in `dir` when given
/// (an embedding application's choice), else beside the runtime.
pub fn builtin_binary(dir: Option<&Path>) -> Result<PathBuf> {
    match dir {
        Some(dir) => builtin_binary_in(dir).context("the node directory given"),
        None => {
            let from_env = std::env::var_os("MEDIAGRAPH_NODE_DIR").is_some();
            builtin_binary_in(&builtin_dir()?).with_context(|| match from_env {
                true => "looked in MEDIAGRAPH_NODE_DIR".to_string(),
                false => "looked beside this program (MEDIAGRAPH_NODE_DIR is not set)".to_string(),
            })
        }
    }
}

/// The executable that runs every built-in kind, in `dir`; an error naming
/// it when it is not there.
pub fn builtin_binary_in(dir: &Path) -> Result<PathBuf> {
    let path = dir.join(BUILTIN_BINARY);
    if !path.exists() {
        return Err(anyhow!(
            "the built-in nodes' binary {} is missing (build the workspace: `cargo build --release --workspace`)",
            path.display()
        ));
    }
    Ok(path)
}

/// The executable of a node (built-in ones in `node_dir` when given).
pub fn program_path(node: &NodeDef, node_dir: Option<&Path>) -> Result<PathBuf> {
    match &node.program {
        // The embedding application runs it (see `hosted`).
        NodeProgram::Builtin(_) if node.is_hosted() => Ok(PathBuf::new()),
        NodeProgram::Builtin(_) => {
            builtin_binary(node_dir).with_context(|| format!("node `{}`", node.id))
        }
        NodeProgram::Custom(path) => Ok(path.clone()),
    }
}

/// How many buffers of one output can be held downstream at once: sizes its
/// shared-memory pool. Nodes may forward a frame they received (video-normalize
/// when nothing changes, sync) without copying it, so the buffer can sit in a
/// queue several hops away. Along a chain of same-type edges this is the
/// deepest queue on it plus two per forwarding node (the frame in its hands and
/// one in flight): only one node of a chain is slow at a time, and a slow one
/// drains the queues after it while its own fills.
fn held_downstream(graph: &Graph, node: &str, output: &str, ty: PortType) -> usize {
    graph
        .nodes
        .iter()
        .flat_map(|c| c.inputs.iter().map(move |i| (c, i)))
        .filter(|(_, i)| i.source_node == node && i.source_output == output)
        .map(|(c, i)| {
            let forwarded = c
                .outputs
                .iter()
                .filter(|oc| oc.ty == ty)
                .map(|oc| held_downstream(graph, &c.id, &oc.name, ty) + 2)
                .max()
                .unwrap_or(0);
            i.queue_size.max(forwarded)
        })
        .max()
        .unwrap_or(1)
}

/// The unix socket a node (or the runtime, `None`) listens on.
pub fn local_endpoint(socket_dir: &Path, node: Option<&str>) -> String {
    let name = node.unwrap_or(crate::graph::RUNTIME_NAME);
    format!(
        "unixsock-stream/{}",
        socket_dir.join(format!("{name}.sock")).display()
    )
}

/// Builds the config handed to `node`.
pub fn node_config(
    graph: &Graph,
    node: &NodeDef,
    run_id: &str,
    socket_dir: &Path,
    shared_memory: bool,
    restart_count: u32,
) -> NodeConfig {
    let inputs = node.inputs.clone();
    let outputs = node
        .outputs
        .iter()
        .map(|o| {
            let consumers: Vec<(&str, usize)> = graph
                .nodes
                .iter()
                .flat_map(|n| {
                    n.inputs
                        .iter()
                        .filter(|i| i.source_node == node.id && i.source_output == o.name)
                        .map(move |i| (n.id.as_str(), i.queue_size))
                })
                .collect();
            let mut names: Vec<String> = consumers.iter().map(|(n, _)| n.to_string()).collect();
            names.sort();
            names.dedup();
            OutputConfig {
                name: o.name.clone(),
                ty: o.ty,
                consumers: names,
                max_queue: held_downstream(graph, &node.id, &o.name, o.ty),
            }
        })
        .collect();
    // Connect to the runtime and to every upstream node on this machine: data
    // flows over direct links. Upstream nodes on other machines are reached
    // through the runtime, this machine's gateway to the network.
    let mut connect = vec![local_endpoint(socket_dir, None)];
    for input in &node.inputs {
        let upstream = graph.nodes.iter().find(|n| n.id == input.source_node);
        let is_remote = upstream.is_some_and(|u| u.machine.is_some() && u.machine != node.machine);
        if !is_remote {
            let ep = local_endpoint(socket_dir, Some(&input.source_node));
            if !connect.contains(&ep) {
                connect.push(ep);
            }
        }
    }
    NodeConfig {
        run_id: run_id.to_string(),
        node_id: node.id.clone(),
        kind: match &node.program {
            NodeProgram::Builtin(k) => k.clone(),
            NodeProgram::Custom(_) => "custom".into(),
        },
        params: node.params.clone(),
        inputs,
        outputs,
        transport: TransportConfig {
            listen: vec![local_endpoint(socket_dir, Some(&node.id))],
            connect,
            shared_memory,
        },
        restart_count,
        epoch_ns: 0,
        clock_offset_ns: 0,
        clock: None,
        machine: None,
        resume_state: None,
        media_duration_s: None,
    }
}

/// Starts the node process with piped output, in its own process group so a
/// Ctrl-C at the terminal reaches only the runtime, which stops the graph in
/// order: forked by `forks` when it serves the node's program, else exec'd.
pub fn spawn(
    node: &NodeDef,
    program: &Path,
    config: &NodeConfig,
    forks: Option<&ForkServer>,
) -> Result<NodeChild> {
    let mut args = Vec::new();
    if let NodeProgram::Builtin(kind) = &node.program {
        args.push(kind.clone());
    }
    args.extend(node.args.iter().cloned());
    let mut env: Vec<(String, String)> = node.env.clone().into_iter().collect();
    env.push((CONFIG_ENV.into(), serde_json::to_string(config)?));
    env.push(("MEDIAGRAPH_NODE_ID".into(), node.id.clone()));
    if let Some(forks) = forks.filter(|f| f.serves(program)) {
        let mut whole: Vec<(String, String)> = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        whole.extend(env.iter().cloned());
        match forks.spawn(args.clone(), whole) {
            Ok(child) => return Ok(child),
            Err(e) => tracing::warn!(
                "node `{}`: fork server: {e}; starting it with exec",
                node.id
            ),
        }
    }
    exec(node, program, &args, &env)
}

fn exec(
    node: &NodeDef,
    program: &Path,
    args: &[String],
    env: &[(String, String)],
) -> Result<NodeChild> {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .envs(env.iter().cloned())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    // SAFETY: prctl is async-signal-safe; it only marks this child to be
    // terminated if the runtime dies, so no node outlives its supervisor.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    let child = crate::spawn_retrying_busy(|| cmd.spawn())
        .with_context(|| format!("node `{}`: cannot start {}", node.id, program.display()))?;
    Ok(NodeChild::exec(child))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_cover_frames_forwarded_down_the_chain() {
        let g = crate::run::shipped_graph("1080p.yaml");
        let held = |node: &str, output: &str| {
            let ty = g.nodes.iter().find(|n| n.id == node).unwrap().outputs[0].ty;
            held_downstream(&g, node, output, ty)
        };
        // The encoder's queue of 8, plus what sync and video-normalize hold
        // while they forward the camera's buffers.
        assert_eq!(held("sync", "video"), 8);
        assert_eq!(held("video-normalize", "video"), 10);
        assert_eq!(held("camera", "video"), 12);
        // Encoded packets are new buffers: the chain stops at the encoder.
        assert_eq!(held("video-encode", "video"), 4);
        assert_eq!(held("audio-encode", "audio"), 4);
    }
}
