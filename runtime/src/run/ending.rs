//! Ending the streams of nodes that will not end them themselves (dead, hung,
//! or still running when the grace is over), so everything downstream still
//! finalizes; and naming the failure that caused the others.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use node_api::keys;
use zenoh::Wait;

use super::process::{NodeState, Supervised};
use super::restarts::{self, ClosedOutputs};
use crate::graph::{Graph, NodeDef};

/// Acknowledges, while the graph stops, the end-of-stream of every input of
/// every node that is gone (exited, or killed by the runtime), as long as
/// the sender of that input runs. A finishing node waits for its consumers'
/// acknowledgements (they say its buffers are released) and would otherwise
/// wait its whole release timeout for a consumer that never started or died.
/// Repeated every tick: the sender may not listen yet (still connecting), and
/// a repeated acknowledgement changes nothing.
pub(super) fn ack_for_gone(
    session: &zenoh::Session,
    run_id: &str,
    graph: &Graph,
    nodes: &BTreeMap<String, Supervised>,
) {
    let gone = nodes
        .values()
        .filter(|s| s.state != NodeState::Running || s.kill.is_none());
    for sup in gone {
        let def = &graph.nodes[sup.index];
        for input in &def.inputs {
            let sender_runs = nodes
                .get(&input.source_node)
                .is_none_or(|s| s.state == NodeState::Running);
            if sender_runs {
                let key = keys::eos_ack(run_id, &input.source_node, &input.source_output, &def.id);
                let _ = session.put(key, Vec::<u8>::new()).wait();
            }
        }
    }
}

/// Kills a node that will not finish and ends its streams for it (its
/// inputs are acknowledged for it once their senders end them).
pub(super) fn end_for(
    session: &zenoh::Session,
    run_id: &str,
    def: &NodeDef,
    closed: &ClosedOutputs,
    sup: &mut Supervised,
) {
    if let Some(k) = sup.kill.take() {
        let _ = k.send(());
    }
    close_outputs_of(session, run_id, def, closed);
}

/// Publishes end-of-stream on every output of a node that died, so its
/// consumers finish instead of waiting for the grace timeout.
pub(super) fn close_outputs_of(
    session: &zenoh::Session,
    run_id: &str,
    def: &NodeDef,
    closed: &ClosedOutputs,
) {
    for out in &def.outputs {
        restarts::put_end_of_stream(session, run_id, &def.id, &out.name);
        closed.insert_by_runtime(&def.id, &out.name);
    }
}

/// Ends, on behalf of lost machine `machine`, every output of its nodes that
/// had not ended, so consumers on the machines still up finish. Returns those nodes.
pub(super) fn end_streams_of_lost_machine(
    session: &zenoh::Session,
    run_id: &str,
    graph: &Graph,
    machine: &str,
    closed: &ClosedOutputs,
) -> Vec<String> {
    let mut nodes = Vec::new();
    for def in graph
        .nodes
        .iter()
        .filter(|n| n.machine.as_deref() == Some(machine))
    {
        let open: Vec<_> = def
            .outputs
            .iter()
            .filter(|o| !closed.is_closed(&def.id, &o.name))
            .collect();
        if open.is_empty() && !def.outputs.is_empty() {
            continue;
        }
        for out in open {
            restarts::put_end_of_stream(session, run_id, &def.id, &out.name);
            closed.insert_by_runtime(&def.id, &out.name);
        }
        nodes.push(def.id.clone());
    }
    nodes
}

/// Running nodes the runtime has not killed yet.
fn alive(nodes: &BTreeMap<String, Supervised>) -> impl Iterator<Item = &String> {
    nodes
        .iter()
        .filter(|(_, s)| s.state == NodeState::Running && s.kill.is_some())
        .map(|(id, _)| id)
}

/// The grace is over: the nodes still running with no running node upstream
/// of them are killed and their streams ended for them. The others were
/// still waiting for input: they get a new grace to finalize what they have
/// (the mux is only killed when it did not finish within a grace of its own).
/// Returns the next deadline, if any node is left.
pub(super) fn grace_over(
    session: &zenoh::Session,
    run_id: &str,
    graph: &Graph,
    closed: &ClosedOutputs,
    nodes: &mut BTreeMap<String, Supervised>,
    failure: &mut Option<String>,
    grace: Duration,
) -> Option<Instant> {
    let running: Vec<String> = alive(nodes).cloned().collect();
    let mut first: Vec<String> = running
        .iter()
        .filter(|id| !running.iter().any(|up| is_upstream(graph, up, id)))
        .cloned()
        .collect();
    if first.is_empty() {
        // A cycle of nodes feeding each other: none goes first.
        first = running.clone();
    }
    for id in &first {
        let sup = nodes.get_mut(id).unwrap();
        tracing::error!("node `{id}` did not finish within the grace period; killing it");
        end_for(session, run_id, &graph.nodes[sup.index], closed, sup);
        failure
            .get_or_insert_with(|| format!("node `{id}` had to be killed after the grace period"));
    }
    let left = alive(nodes).count();
    if left > 0 {
        tracing::info!(
            "{left} node(s) downstream get {} s more to finalize after those streams were ended",
            grace.as_secs_f64()
        );
    }
    (left > 0).then(|| Instant::now() + grace)
}

/// Whether `ancestor` feeds `node`, directly or through other nodes.
pub fn is_upstream(graph: &Graph, ancestor: &str, node: &str) -> bool {
    let mut frontier = vec![node];
    let mut seen = std::collections::HashSet::new();
    while let Some(n) = frontier.pop() {
        if !seen.insert(n) {
            continue;
        }
        let Some(def) = graph.nodes.iter().find(|d| d.id == n) else {
            continue;
        };
        for input in &def.inputs {
            if input.source_node == ancestor {
                return true;
            }
            frontier.push(&input.source_node);
        }
    }
    false
}

/// Which node's failure is the run's error. A node whose input ended
/// before it failed may have failed because of it (a stream cut short): if
/// a node upstream of it, which ended a stream on the way to it, fails too,
/// even later (it may still have been waiting for its end-of-stream to be
/// acknowledged, as a custom node rejecting its params at init does while
/// the mux two nodes down already failed for want of packets), its failure
/// is the cause and replaces the other. Otherwise the first failure stays
/// the run's error.
#[derive(Default)]
pub struct Blame {
    /// The node blamed, and when it failed (capture clock, ns).
    blamed: Option<(String, u64)>,
}

impl Blame {
    /// Node `node` failed with `msg`: it becomes the run's error if there is
    /// none yet, or if it ended an input of the node blamed so far before
    /// that node failed.
    pub fn offer(
        &mut self,
        graph: &Graph,
        closed: &ClosedOutputs,
        failure: &mut Option<String>,
        node: &str,
        msg: &str,
    ) {
        let replaces = match (&*failure, &self.blamed) {
            (None, _) => true,
            (Some(_), Some((blamed, at))) => ended_input_before(graph, closed, node, blamed, *at),
            (Some(_), None) => false,
        };
        if !replaces {
            return;
        }
        if let (Some(_), Some((blamed, _))) = (&*failure, &self.blamed) {
            tracing::info!(
                "node `{blamed}` failed after a stream from `{node}` to it ended, and `{node}` failed too: `{node}` is the cause"
            );
        }
        *failure = Some(msg.to_string());
        self.blamed = Some((node.to_string(), node_api::clock::now_ns()));
    }
}

/// Whether `sender` ended, before `at` (capture clock, ns), an output that
/// feeds `node`, directly or through other nodes (each of which ended its
/// own stream in turn, as nodes do when their inputs end).
fn ended_input_before(
    graph: &Graph,
    closed: &ClosedOutputs,
    sender: &str,
    node: &str,
    at: u64,
) -> bool {
    graph
        .nodes
        .iter()
        .filter(|d| d.id == node || is_upstream(graph, &d.id, node))
        .flat_map(|d| &d.inputs)
        .filter(|i| i.source_node == sender)
        .any(|i| {
            closed
                .closed_at_ns(sender, &i.source_output)
                .is_some_and(|t| t < at)
        })
}
