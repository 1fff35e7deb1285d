//! Key expressions of one run. The runtime and every node derive them from the
//! same run id, so two runs on one machine never see each other's frames.

/// Root of all keys of a run.
pub fn run_root(run_id: &str) -> String {
    format!("mediagraph/{run_id}")
}

/// Where a node publishes one of its outputs.
pub fn data(run_id: &str, node: &str, output: &str) -> String {
    format!("mediagraph/{run_id}/data/{node}/{output}")
}

/// Liveliness token: the node has declared the subscribers of all its inputs.
pub fn subscribed(run_id: &str, node: &str) -> String {
    format!("mediagraph/{run_id}/subscribed/{node}")
}

/// The runtime says a node's process ended (crashed, killed, or done): what
/// it held of other nodes' shared memory may be taken back.
pub fn gone(run_id: &str, node: &str) -> String {
    format!("mediagraph/{run_id}/gone/{node}")
}

pub fn gone_all(run_id: &str) -> String {
    format!("mediagraph/{run_id}/gone/*")
}

/// Liveliness token: the node is armed (all its consumers subscribed); the last
/// chunk carries the bytes of shared memory the node's pools hold.
pub fn armed(run_id: &str, node: &str, pool_bytes: u64) -> String {
    format!("mediagraph/{run_id}/armed/{node}/{pool_bytes}")
}

pub fn armed_all(run_id: &str) -> String {
    format!("mediagraph/{run_id}/armed/**")
}

/// Liveliness token the runtime holds once every node is armed (the barrier
/// is over): sources may start.
pub fn started(run_id: &str) -> String {
    format!("mediagraph/{run_id}/started")
}

/// Liveliness token the runtime declares to ask every node to stop.
pub fn stopping(run_id: &str) -> String {
    format!("mediagraph/{run_id}/stopping")
}

/// A consumer's acknowledgement, sent when it finishes, that it (and everyone
/// downstream of it) no longer holds buffers of one of our outputs.
pub fn eos_ack(run_id: &str, node: &str, output: &str, consumer: &str) -> String {
    format!("mediagraph/{run_id}/eos-ack/{node}/{output}/{consumer}")
}

/// Prefix of every acknowledgement addressed to `node` (ends with `/`).
pub fn eos_ack_prefix(run_id: &str, node: &str) -> String {
    format!("mediagraph/{run_id}/eos-ack/{node}/")
}

/// Put once by a node when it closes an output (after its end-of-stream), so
/// the runtime can repeat that end-of-stream to a consumer restarted later.
pub fn closed(run_id: &str, node: &str, output: &str) -> String {
    format!("mediagraph/{run_id}/closed/{node}/{output}")
}

pub fn closed_all(run_id: &str) -> String {
    format!("mediagraph/{run_id}/closed/**")
}

/// The (node, output) of a [`closed`] key.
pub fn parse_closed(key: &str) -> Option<(String, String)> {
    let mut parts = key.rsplit('/');
    let output = parts.next()?.to_string();
    let node = parts.next()?.to_string();
    (parts.next()? == "closed").then_some((node, output))
}

/// State a node saves for its next incarnation should it be restarted (JSON).
pub fn resume_state(run_id: &str, node: &str) -> String {
    format!("mediagraph/{run_id}/resume/{node}")
}

pub fn resume_state_all(run_id: &str) -> String {
    format!("mediagraph/{run_id}/resume/*")
}

/// Param updates for one node (JSON `{"name": ..., "value": ...}`).
pub fn param_update(run_id: &str, node: &str) -> String {
    format!("mediagraph/{run_id}/param/{node}")
}

/// Liveliness token a runtime holds while it runs the nodes of machine `name`
/// (a graph spread over machines).
pub fn machine(run_id: &str, name: &str) -> String {
    format!("mediagraph/{run_id}/machine/{name}")
}

pub fn machine_all(run_id: &str) -> String {
    format!("mediagraph/{run_id}/machine/*")
}

/// Put by a runtime that ends normally, just before its [`machine`] token
/// goes: a token that vanishes without it means the machine was lost.
pub fn machine_done(run_id: &str, name: &str) -> String {
    format!("mediagraph/{run_id}/machine-done/{name}")
}

pub fn machine_done_all(run_id: &str) -> String {
    format!("mediagraph/{run_id}/machine-done/*")
}

/// Declared (a liveliness token) by the runtimes still up once machine
/// `name` was lost and its streams were ended: a runtime of that machine
/// started again must not join the run.
pub fn machine_lost(run_id: &str, name: &str) -> String {
    format!("mediagraph/{run_id}/machine-lost/{name}")
}

/// Queryable of the run's reference clock: replies with its clock readings
/// (the runtimes of the other machines measure their offset to it).
pub fn clock(run_id: &str) -> String {
    format!("mediagraph/{run_id}/clock")
}

/// The clock model the runtime of machine `machine` publishes to its nodes
/// as it follows the reference clock (JSON [`crate::clock::ClockModel`]).
pub fn clock_model(run_id: &str, machine: &str) -> String {
    format!("mediagraph/{run_id}/clock-model/{machine}")
}

/// Stats a node publishes about once a second (JSON [`crate::NodeStats`]).
pub fn stats(run_id: &str, node: &str) -> String {
    format!("mediagraph/{run_id}/stats/{node}")
}

pub fn stats_all(run_id: &str) -> String {
    format!("mediagraph/{run_id}/stats/*")
}

/// Parses the node id and pool size out of an armed token's key.
pub fn parse_armed(key: &str) -> Option<(String, u64)> {
    let mut parts = key.rsplit('/');
    let bytes = parts.next()?.parse().ok()?;
    let node = parts.next()?.to_string();
    Some((node, bytes))
}

#[cfg(test)]
mod tests {
    #[test]
    fn armed_round_trip() {
        let k = super::armed("r1", "video-encode", 42);
        assert_eq!(super::parse_armed(&k), Some(("video-encode".into(), 42)));
    }

    #[test]
    fn closed_round_trip() {
        let k = super::closed("r1", "sync", "video");
        assert_eq!(
            super::parse_closed(&k),
            Some(("sync".into(), "video".into()))
        );
        assert_eq!(super::parse_closed("mediagraph/r1/stats/sync"), None);
    }
}
