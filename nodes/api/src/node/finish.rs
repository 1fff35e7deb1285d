//! Finishing a node: end-of-stream on every output, then waiting until the
//! consumers acknowledged it and released our buffers, then acknowledging
//! our own inputs, last stats, session closed.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use zenoh::bytes::ZBytes;
use zenoh::Wait;

use super::phase::Step;
use super::{Node, Output};
use crate::keys;
use crate::message::{Envelope, Header};

/// How often a finishing node repeats its end-of-stream to consumers that
/// have not acknowledged it (one may have restarted after it went out).
const EOS_RESEND_EVERY: Duration = Duration::from_millis(200);

/// How long a finishing node waits for consumers to release its buffers.
pub(super) const RELEASE_TIMEOUT: Duration = Duration::from_secs(10);

impl Node {
    /// Ends the node cleanly: end-of-stream on every output, final stats, session closed.
    pub fn finish(mut self) -> Result<()> {
        self.finish_inner(RELEASE_TIMEOUT)
    }

    /// [`Node::finish`], waiting up to `timeout` (instead of 10 s) for the
    /// graph downstream to drain: for a node that lives on after it (an
    /// app's), whose buffers must stay valid until every consumer is done
    /// with the backlog.
    pub fn finish_draining(mut self, timeout: Duration) -> Result<()> {
        self.finish_inner(timeout)
    }

    pub(super) fn finish_inner(&mut self, release_timeout: Duration) -> Result<()> {
        // A source's end of stream: its last frame went out (a node with
        // inputs marked it as they all ended).
        crate::cpu::mark(crate::cpu::Mark::EndOfStream);
        let names: Vec<String> = self
            .outputs
            .iter()
            .filter(|o| !o.closed)
            .map(|o| o.config.name.clone())
            .collect();
        for name in names {
            self.close_output(&name)?;
        }
        // A shared-memory buffer of ours can no longer be read once this process
        // exits, and consumers may still hold (or have forwarded) some: wait
        // until every consumer has finished, which it acknowledges after its own
        // consumers did (bounded: a consumer may have died).
        self.wait_for_eos_acks(Instant::now() + release_timeout);
        for out in &self.outputs {
            if let Some(pool) = &out.pool {
                if !pool.wait_released(release_timeout) {
                    tracing::warn!(
                        "output `{}`: consumers still hold buffers after {:?}; ending anyway",
                        out.config.name,
                        release_timeout
                    );
                }
            }
        }
        self.acknowledge_inputs();
        // Said again: a node that ends before its link to the runtime is up
        // (failing at start) would have said it to no one. The runtime
        // compares the time with its consumers' failures to tell the cause.
        for out in self.outputs.iter().filter(|o| o.closed) {
            let key = keys::closed(&self.config.run_id, &self.config.node_id, &out.config.name);
            let _ = self.session.put(key, out.closed_at_ns.to_string()).wait();
        }
        self.queues.shut_down();
        self.stats_stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.stats_thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
        self.publish_last_stats();
        self._tokens.clear();
        self.session.close().wait().map_err(|e| anyhow!("{e}"))?;
        self.phase.step(Step::Finish);
        Ok(())
    }

    /// Waits until every consumer acknowledged our end-of-stream, repeating
    /// it to those that have not, until `deadline`.
    fn wait_for_eos_acks(&self, deadline: Instant) {
        let mut resend_at = Instant::now() + EOS_RESEND_EVERY;
        loop {
            let waiting = pending_acks(&self.eos_acks.lock().unwrap(), &self.outputs);
            if waiting.is_empty() {
                break;
            }
            if Instant::now() >= resend_at {
                // A consumer restarted after our end-of-stream went out never
                // saw it: say it again until every consumer has acknowledged.
                resend_at = Instant::now() + EOS_RESEND_EVERY;
                self.resend_eos(&waiting);
            }
            if Instant::now() >= deadline {
                tracing::warn!(
                    "no end-of-stream acknowledgement from {}; ending anyway",
                    waiting.join(", ")
                );
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Repeats the end-of-stream of the outputs that `waiting`
    /// (`<output>/<consumer>`) still waits for.
    fn resend_eos(&self, waiting: &[String]) {
        for out in &self.outputs {
            let prefix = format!("{}/", out.config.name);
            if waiting.iter().any(|w| w.starts_with(&prefix)) {
                let envelope = Envelope {
                    seq: out.seq,
                    no_drop: false,
                    header: Header::EndOfStream,
                };
                let _ = out
                    .publisher
                    .put(ZBytes::new())
                    .attachment(envelope.encode())
                    .wait();
            }
        }
    }

    /// Only now may our upstream nodes exit: the buffers we forwarded from
    /// their pools have been released by everyone downstream of us.
    fn acknowledge_inputs(&self) {
        for input in &self.config.inputs {
            let ack = keys::eos_ack(
                &self.config.run_id,
                &input.source_node,
                &input.source_output,
                &self.config.node_id,
            );
            let _ = self.session.put(ack, Vec::<u8>::new()).wait();
        }
    }
}

/// The `<output>/<consumer>` pairs that have not acknowledged our end-of-stream.
fn pending_acks(acks: &HashSet<String>, outputs: &[Output]) -> Vec<String> {
    outputs
        .iter()
        .flat_map(|o| {
            o.config
                .consumers
                .iter()
                .map(move |c| format!("{}/{c}", o.config.name))
        })
        .filter(|k| !acks.contains(k))
        .collect()
}
