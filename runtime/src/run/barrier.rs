//! The barrier: sources start only once every node of the graph (on every
//! machine) has armed, and the shared memory the armed nodes hold fits the
//! memlock limit.
//!
//! The words: a node *arms* once it has subscribed its inputs and every
//! consumer of its outputs has subscribed too; it says so with its `armed`
//! token. While the runtime waits for every node to arm, the run is
//! [`RunPhase::Arming`]; the barrier ends with the `started` token (the
//! sources produce) or with the stop. A few user-visible texts say "ready"
//! for armed and are kept as they are, because scripts and tests match
//! them: the `--ready-timeout` flag, `nodes never became ready within ...`
//! and the log line `all N nodes ready in ... ms; started`.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use node_api::memlock;
use node_catalog::PortType;

use super::ending;
use super::process::{Exit, NodeState};
use super::supervisor::{RunPhase, Supervisor};
use super::{logs, StopHandle};
use crate::graph::{Graph, NodeDef};

impl Supervisor<'_> {
    /// Holds the sources until every node armed, then lets them go; or, when
    /// the graph cannot start, begins the stop. Returns the time from
    /// `started_at` (the run's start) to the end of the barrier, in ms.
    pub async fn barrier(&mut self, stop: &StopHandle, started_at: Instant) -> Result<f64> {
        self.wait_armed(stop).await;
        let armed_ms = started_at.elapsed().as_secs_f64() * 1000.0;
        if self.failure.is_none() {
            if let Err(e) = check_memlock(self.graph, &self.links.armed.lock().unwrap()) {
                self.failure = Some(e.to_string());
            }
        }
        self.end_barrier(armed_ms)?;
        Ok(armed_ms)
    }

    /// Arming: waits until every node armed, or until the graph cannot
    /// start (then `failure` says why).
    async fn wait_armed(&mut self, stop: &StopHandle) {
        let RunPhase::Arming { deadline } = self.phase else {
            return;
        };
        let all_ids: HashSet<String> = self.graph.nodes.iter().map(|n| n.id.clone()).collect();
        loop {
            let armed_now: HashSet<String> =
                self.links.armed.lock().unwrap().keys().cloned().collect();
            if all_ids.is_subset(&armed_now) {
                return;
            }
            if let Ok(exit) = self.exits.try_recv() {
                if self.exited_while_arming(exit) {
                    return;
                }
                continue;
            }
            if stop.is_requested() || self.links.remote_stop.is_requested() {
                self.failure = Some("stopped before the graph started".into());
                return;
            }
            if Instant::now() > deadline {
                let up = self.links.machine.as_ref().map(|m| m.watch.up());
                self.failure = Some(not_armed_message(
                    self.graph,
                    &armed_now,
                    &up.unwrap_or_default(),
                    self.opts.arm_timeout,
                ));
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// A node ended before the graph started. One that fails fails the run
    /// (a restart would mask config errors): returns true. One that ends
    /// cleanly (e.g. after its upstream failed and closed its input) is only noted.
    fn exited_while_arming(&mut self, exit: Exit) -> bool {
        let sup = self.nodes.get_mut(&exit.node).unwrap();
        let why = exit.describe();
        sup.last_exit = Some(why.clone());
        if exit.success() {
            sup.state = NodeState::Exited;
            return false;
        }
        sup.state = NodeState::Failed;
        let links = self.links;
        let def = &self.graph.nodes[sup.index];
        ending::close_outputs_of(&links.session, &links.run_id, def, &links.closed);
        let msg = format!(
            "node `{}` exited before the graph started ({why}){}",
            exit.node,
            logs::last_lines_hint(&links.logs_dir, &exit.node)
        );
        self.blame.offer(
            self.graph,
            &links.closed,
            &mut self.failure,
            &exit.node,
            &msg,
        );
        true
    }
}

/// The barrier timed out (`--ready-timeout`): which nodes never armed, on
/// which machines, and which of those machines' runtimes never showed up.
fn not_armed_message(
    graph: &Graph,
    armed: &HashSet<String>,
    machines_up: &BTreeSet<String>,
    timeout: Duration,
) -> String {
    let mut by_machine: BTreeMap<Option<&str>, Vec<&str>> = BTreeMap::new();
    for n in graph.nodes.iter().filter(|n| !armed.contains(&n.id)) {
        by_machine
            .entry(n.machine.as_deref())
            .or_default()
            .push(&n.id);
    }
    let parts: Vec<String> = by_machine
        .iter()
        .map(|(m, ids)| match m {
            None => ids.join(", "),
            Some(m) if machines_up.contains(*m) => format!("{} (machine `{m}`)", ids.join(", ")),
            Some(m) => format!(
                "{} (machine `{m}`: its runtime is not connected; run `runtime run {} --machine {m}` there)",
                ids.join(", "),
                graph.file.display()
            ),
        })
        .collect();
    format!(
        "nodes never became ready within {} s: {}",
        timeout.as_secs(),
        parts.join("; ")
    )
}

/// The pools themselves are never locked (see node_api::segment), but zenoh
/// locks its own segments in RAM: one of buffer metadata in every process
/// that allocates shared memory, mapped by every process that reads those
/// buffers. Raw frames may have been forwarded (video-normalize, sync pass
/// buffers on), so along raw edges every allocating node further upstream
/// counts too. A receiver that cannot lock one drops what it is sent, so the
/// limit is checked once every node is armed (and has made its pools).
fn check_memlock(graph: &Graph, pools: &HashMap<String, u64>) -> Result<()> {
    let Some(limit) = memlock::limit_bytes() else {
        return Ok(());
    };
    let allocates = |id: &str| pools.get(id).is_some_and(|bytes| *bytes > 0);
    let mut problems = Vec::new();
    for node in &graph.nodes {
        let segments = usize::from(allocates(&node.id))
            + mapped_upstream(graph, node)
                .into_iter()
                .filter(|u| allocates(u))
                .count();
        let need = memlock::locked_by_transport(segments);
        if need > limit {
            problems.push(memlock::too_low_message(
                &format!("node `{}`", node.id),
                need,
                limit,
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        bail!("{}", problems.join("\n"))
    }
}

/// The nodes whose shared-memory segments `node` may map: its direct upstream
/// nodes, and along raw-media edges of one type every node further up that a
/// buffer may have been forwarded from.
fn mapped_upstream<'g>(graph: &'g Graph, node: &'g NodeDef) -> HashSet<&'g str> {
    let raw = |ty: PortType| matches!(ty, PortType::RawVideo | PortType::RawAudio);
    let mut found: HashSet<&str> = HashSet::new();
    let mut frontier: Vec<(&str, PortType)> = Vec::new();
    for input in &node.inputs {
        found.insert(input.source_node.as_str());
        if raw(input.ty) {
            frontier.push((input.source_node.as_str(), input.ty));
        }
    }
    let mut visited: HashSet<(&str, PortType)> = HashSet::new();
    while let Some((id, ty)) = frontier.pop() {
        if !visited.insert((id, ty)) {
            continue;
        }
        let Some(up) = graph.nodes.iter().find(|n| n.id == id) else {
            continue;
        };
        for input in up.inputs.iter().filter(|i| i.ty == ty) {
            found.insert(input.source_node.as_str());
            frontier.push((input.source_node.as_str(), ty));
        }
    }
    found
}

#[cfg(test)]
mod memlock_tests {
    use super::*;
    use crate::run::shipped_graph;

    #[test]
    fn forwarded_frames_count_the_pools_they_came_from() {
        let g = shipped_graph("1080p.yaml");
        let of = |id: &str| {
            let node = g.nodes.iter().find(|n| n.id == id).unwrap();
            let mut up: Vec<&str> = mapped_upstream(&g, node).into_iter().collect();
            up.sort();
            up
        };
        // The encoder reads the camera's buffers that sync and video-normalize passed on.
        assert_eq!(of("video-encode"), ["camera", "sync", "video-normalize"]);
        assert_eq!(
            of("audio-encode"),
            ["audio-normalize", "microphone", "sync"]
        );
        // Packets are copied into their messages: the chain stops at the encoders.
        assert_eq!(of("mux"), ["audio-encode", "video-encode"]);
        assert!(of("camera").is_empty());
    }
}
