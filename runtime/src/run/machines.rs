//! A graph spread over machines (`deploy: {machine: NAME}`, `runtime run
//! --machine NAME` on each): the run id every machine agrees on, which
//! machine keeps the reference clock, and noticing a machine that vanished.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use node_api::{keys, NodeStats};
use zenoh::sample::SampleKind;
use zenoh::Wait;

use super::{MachineLoss, MachineRejoin};
use crate::graph::{Graph, NodeProgram};

/// How long after a machine's token vanished its loss is judged: its last
/// end-of-stream announcements may still be on their way.
pub const LOSS_SETTLE: Duration = Duration::from_millis(500);

/// The run id: `--run-id` when given; for one machine of a graph spread over
/// machines, the graph's name and a hash of its shape (nodes, kinds, edges,
/// placement, endpoints), which every machine computes alike without talking
/// to the others (params are left out: `${timestamp}` or a `--set` may differ
/// per machine); otherwise unique to this process.
pub fn run_id(graph: &Graph, machine: Option<&str>, given: Option<&str>) -> String {
    if let Some(id) = given {
        return id.to_string();
    }
    if machine.is_some() {
        return format!("{}-{:016x}", graph.name, shape_hash(graph));
    }
    format!(
        "{}-{}",
        std::process::id(),
        super::unix_millis() % 1_000_000_000
    )
}

/// FNV-1a over the graph's shape: stable across builds and hosts.
fn shape_hash(graph: &Graph) -> u64 {
    let mut text = String::new();
    for n in &graph.nodes {
        let program = match &n.program {
            NodeProgram::Builtin(kind) => kind.clone(),
            NodeProgram::Custom(path) => path
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default(),
        };
        text.push_str(&format!(
            "node {} {program} @{}\n",
            n.id,
            n.machine.as_deref().unwrap_or("")
        ));
        for i in &n.inputs {
            text.push_str(&format!(
                " in {} {}/{}\n",
                i.name, i.source_node, i.source_output
            ));
        }
        for o in &n.outputs {
            text.push_str(&format!(" out {}\n", o.name));
        }
    }
    for (name, m) in &graph.network.machines {
        text.push_str(&format!("machine {name} {:?} {:?}\n", m.listen, m.connect));
    }
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Every machine the graph names, in `network:` or in a `deploy:`.
pub fn all_machines(graph: &Graph) -> BTreeSet<String> {
    let mut set: BTreeSet<String> = graph.network.machines.keys().cloned().collect();
    set.extend(graph.nodes.iter().filter_map(|n| n.machine.clone()));
    set
}

/// The machine whose monotonic clock the whole run uses: the one hosting the
/// sync node (it compares the cameras' timestamps; its own machine's are then
/// exact), else the first machine by name.
pub fn clock_reference(graph: &Graph) -> Option<String> {
    graph
        .nodes
        .iter()
        .find(|n| matches!(&n.program, NodeProgram::Builtin(k) if k == "sync"))
        .and_then(|n| n.machine.clone())
        .or_else(|| all_machines(graph).into_iter().next())
}

/// The machines whose runtimes are up, as their liveliness tokens say, and
/// those that vanished without saying they were done.
pub struct MachineWatch {
    state: Arc<Mutex<WatchState>>,
    /// Says, for as long as the run lasts, which machines were lost.
    lost_marks: Mutex<Vec<zenoh::liveliness::LivelinessToken>>,
    _subscribers: (zenoh::pubsub::Subscriber<()>, zenoh::pubsub::Subscriber<()>),
}

#[derive(Default)]
struct WatchState {
    up: BTreeSet<String>,
    done: BTreeSet<String>,
    vanished: BTreeMap<String, Instant>,
    /// Machines that vanished and came back: when each went and returned.
    rejoins: Vec<(String, Instant, Instant)>,
}

impl MachineWatch {
    pub fn start(session: &zenoh::Session, run_id: &str) -> Result<MachineWatch> {
        let state: Arc<Mutex<WatchState>> = Arc::default();
        let tokens = {
            let state = state.clone();
            let prefix = keys::machine(run_id, "");
            session
                .liveliness()
                .declare_subscriber(keys::machine_all(run_id))
                .history(true)
                .callback(move |sample| {
                    let Some(name) = sample.key_expr().as_str().strip_prefix(&prefix) else {
                        return;
                    };
                    let mut s = state.lock().unwrap();
                    match sample.kind() {
                        SampleKind::Put => {
                            s.up.insert(name.to_string());
                            if let Some(gone) = s.vanished.remove(name) {
                                tracing::warn!(
                                    "machine `{name}` is back after {:.1} s",
                                    gone.elapsed().as_secs_f64()
                                );
                                s.rejoins.push((name.to_string(), gone, Instant::now()));
                            }
                        }
                        SampleKind::Delete => {
                            s.up.remove(name);
                            s.vanished.insert(name.to_string(), Instant::now());
                        }
                    }
                })
                .wait()
                .map_err(|e| anyhow!("{e}"))?
        };
        let done = {
            let state = state.clone();
            let prefix = keys::machine_done(run_id, "");
            session
                .declare_subscriber(keys::machine_done_all(run_id))
                .callback(move |sample| {
                    if let Some(name) = sample.key_expr().as_str().strip_prefix(&prefix) {
                        state.lock().unwrap().done.insert(name.to_string());
                    }
                })
                .wait()
                .map_err(|e| anyhow!("{e}"))?
        };
        Ok(MachineWatch {
            state,
            lost_marks: Mutex::default(),
            _subscribers: (tokens, done),
        })
    }

    /// Tells every runtime of the run that `machine` was lost (its streams
    /// ended): a runtime of it started again refuses to join (see
    /// [`was_lost`]).
    pub fn mark_lost(&self, session: &zenoh::Session, run_id: &str, machine: &str) {
        match session
            .liveliness()
            .declare_token(keys::machine_lost(run_id, machine))
            .wait()
        {
            Ok(token) => self.lost_marks.lock().unwrap().push(token),
            Err(e) => tracing::warn!("cannot mark machine `{machine}` as lost: {e}"),
        }
    }

    /// The machines that vanished and came back, in order: when each went
    /// and returned (one judged lost before is refused: see [`was_lost`]).
    pub fn rejoins(&self) -> Vec<(String, Instant, Instant)> {
        self.state.lock().unwrap().rejoins.clone()
    }

    pub fn up(&self) -> BTreeSet<String> {
        self.state.lock().unwrap().up.clone()
    }

    /// Machines that vanished without being done, at least `settle` ago
    /// (their last messages have had time to arrive).
    pub fn lost(&self, settle: Duration) -> Vec<String> {
        let s = self.state.lock().unwrap();
        s.vanished
            .iter()
            .filter(|(m, at)| at.elapsed() >= settle && !s.done.contains(*m))
            .map(|(m, _)| m.clone())
            .collect()
    }
}

/// Whether the run already lost machine `me` (a runtime of it that was
/// killed and is started again): its streams were ended, so its nodes
/// cannot rejoin the recording. Asked once connected to the other machines.
pub async fn was_lost(session: &zenoh::Session, run_id: &str, me: &str) -> bool {
    let Ok(replies) = session
        .liveliness()
        .get(keys::machine_lost(run_id, me))
        .timeout(Duration::from_secs(1))
        .await
    else {
        return false;
    };
    replies.recv_async().await.is_ok_and(|r| r.result().is_ok())
}

/// At the end of the run: the machines that came back in time (not
/// judged lost), with when they went and for how long, in media time from
/// `media_start`.
pub fn rejoined(
    watch: &MachineWatch,
    media_start: Instant,
    losses: &[MachineLoss],
) -> Vec<MachineRejoin> {
    watch
        .rejoins()
        .into_iter()
        .filter(|(m, ..)| !losses.iter().any(|l| &l.machine == m))
        .map(|(machine, gone, back)| MachineRejoin {
            machine,
            gone_at_s: gone.saturating_duration_since(media_start).as_secs_f64(),
            gap_s: back.saturating_duration_since(gone).as_secs_f64(),
        })
        .collect()
}

/// At the end of the run: how much media each lost machine's nodes left
/// missing (`media_s`: the run's media time), and what arrived from them before.
pub fn account_losses(
    losses: &mut [MachineLoss],
    media_s: f64,
    graph: &Graph,
    stats: &BTreeMap<String, NodeStats>,
) {
    for loss in losses {
        loss.media_lost_s = (media_s - loss.lost_at_s).max(0.0);
        loss.received = received_from(graph, &loss.nodes, stats);
        tracing::error!(
            "machine `{}` lost: {:.1} s of media from nodes {} missing at the end; received before: {:?}",
            loss.machine,
            loss.media_lost_s,
            loss.nodes.join(", "),
            loss.received
        );
    }
}

/// Messages this machine's nodes received from `sources` (`node.input` -> count).
fn received_from(
    graph: &Graph,
    sources: &[String],
    stats: &BTreeMap<String, NodeStats>,
) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for (id, s) in stats {
        let Some(def) = graph.nodes.iter().find(|n| &n.id == id) else {
            continue;
        };
        for input in def
            .inputs
            .iter()
            .filter(|i| sources.contains(&i.source_node))
        {
            if let Some(i) = s.inputs.get(&input.name) {
                out.insert(format!("{id}.{}", input.name), i.received);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;

    use super::*;
    use crate::graph::load_str;

    fn graph(camera_width: u32, mux_machine: &str) -> Graph {
        let text = format!(
            r#"
name: rig
network:
  a: {{ listen: ["tcp/10.0.0.1:7447"] }}
  b: {{ connect: ["tcp/10.0.0.1:7447"] }}
nodes:
  - id: camera
    node: camera
    deploy: {{ machine: b }}
    params: {{ width: {camera_width} }}
  - id: encode
    node: video-encode
    deploy: {{ machine: b }}
    inputs: {{ video: camera/video }}
  - id: mux
    node: mux
    deploy: {{ machine: {mux_machine} }}
    inputs: {{ video: encode/video }}
    params: {{ path: rig-test-output.mp4 }}
"#
        );
        load_str(&text, Path::new("rig.yaml"), &[], &BTreeMap::new()).unwrap()
    }

    #[test]
    fn every_machine_derives_the_same_run_id_from_the_graph_shape() {
        let id = run_id(&graph(640, "a"), Some("a"), None);
        assert!(id.starts_with("rig-"), "{id}");
        // Params may differ per machine (`--set`, `${timestamp}`) ...
        assert_eq!(run_id(&graph(1280, "a"), Some("b"), None), id);
        // ... placement may not.
        assert_ne!(run_id(&graph(640, "b"), Some("a"), None), id);
        assert_eq!(run_id(&graph(640, "a"), Some("a"), Some("take2")), "take2");
        // One machine: unique per process.
        assert!(!run_id(&graph(640, "a"), None, None).starts_with("rig-"));
    }

    #[test]
    fn the_reference_clock_is_the_first_machine_without_a_sync_node() {
        assert_eq!(clock_reference(&graph(640, "a")).as_deref(), Some("a"));
    }
}
