//! Opening a zenoh session the way every process of a run does: peer mode, no
//! multicast scouting, explicit endpoints, shared memory on or off.

use anyhow::{anyhow, Result};
use zenoh::{Config, Session, Wait};

/// Opens a session listening on `listen` and connecting to `connect`.
/// Connections to endpoints not yet up are retried in the background, so
/// processes of a graph may start in any order.
///
/// Every node is a peer. A runtime is a peer too, except in a graph spread
/// over machines (`router`): there each machine's runtime is a zenoh router,
/// the gateway of its machine. Its nodes still exchange frames over direct
/// links (and shared memory); what a node on another machine needs goes
/// node → runtime → network → runtime → node, with no change to the nodes.
pub fn open(
    listen: &[String],
    connect: &[String],
    shared_memory: bool,
    router: bool,
) -> Result<Session> {
    let mut config = Config::default();
    let set = |config: &mut Config, key: &str, value: String| {
        config
            .insert_json5(key, &value)
            .map_err(|e| anyhow!("zenoh config {key}={value}: {e}"))
    };
    let mode = if router { "\"router\"" } else { "\"peer\"" };
    set(&mut config, "mode", mode.into())?;
    // Nothing is discovered by multicast: a run only talks to the endpoints it was given.
    set(&mut config, "scouting/multicast/enabled", "false".into())?;
    // Links are explicit (each node dials its upstream nodes and the runtime);
    // gossip would make every pair race to dial each other.
    set(&mut config, "scouting/gossip/enabled", "false".into())?;
    set(
        &mut config,
        "listen/endpoints",
        serde_json::to_string(listen)?,
    )?;
    set(
        &mut config,
        "connect/endpoints",
        serde_json::to_string(connect)?,
    )?;
    // With the default (infinite) timeout and no exit on failure, zenoh keeps
    // dialing in the background until the endpoint comes up.
    set(&mut config, "connect/exit_on_failure", "false".into())?;
    set(
        &mut config,
        "connect/retry",
        "{ period_init_ms: 10, period_max_ms: 40, period_increase_factor: 1.5 }".into(),
    )?;
    // open() would otherwise wait up to scouting/delay (500 ms) for endpoints
    // not yet listening. Nothing is lost by returning at once: a node sends
    // only after its consumers' subscriptions are seen, and the runtime's
    // start/stop are liveliness tokens with history.
    set(
        &mut config,
        "open/return_conditions/connect_scouted",
        "false".into(),
    )?;
    // A message that waits this long for room in a link (its consumer blocks
    // it: a full queue, a paused input) makes zenoh close the link, and what
    // was queued is lost. The default 5 s is shorter than a slow encoder's
    // start under load; a consumer that really hangs is the supervisor's to
    // detect and restart (its hang timeout), not the transport's.
    set(
        &mut config,
        "transport/link/tx/queue/congestion_control/block/wait_before_close",
        "60000000".into(),
    )?;
    set(
        &mut config,
        "transport/shared_memory/enabled",
        shared_memory.to_string(),
    )?;
    // Our payloads are allocated in shared memory by the sender; the implicit
    // copy-into-SHM pool would only cost locked memory.
    set(
        &mut config,
        "transport/shared_memory/transport_optimization/enabled",
        "false".into(),
    )?;
    // Experiments with zenoh's own settings, for every process of a run
    // (the runtime passes its environment on): `key=json5;key=json5`.
    if let Ok(extra) = std::env::var("MEDIAGRAPH_ZENOH_SET") {
        for kv in extra.split(';').filter(|kv| !kv.trim().is_empty()) {
            let (key, value) = kv
                .split_once('=')
                .ok_or_else(|| anyhow!("MEDIAGRAPH_ZENOH_SET: `{kv}` is not key=value"))?;
            set(&mut config, key.trim(), value.trim().to_string())?;
        }
    }
    let mut open = zenoh::open(config);
    if shared_memory {
        // Our pools' segments (see crate::segment) are mapped by our client.
        open = open.with_shm_clients(crate::segment::client_storage());
    }
    open.wait().map_err(|e| {
        anyhow!("cannot open a zenoh session (listen {listen:?}, connect {connect:?}): {e}")
    })
}
