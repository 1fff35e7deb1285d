//! One capture clock for a graph spread over machines: the reference
//! machine's runtime answers clock queries; every other runtime measures the
//! offset of its machine's clock to it (NTP-style round trips over zenoh)
//! before it starts its nodes, and hands them that offset and the reference's
//! run epoch; then it goes on measuring and follows the rate difference
//! (`follow`).
//!
//! What this can do without NTP or PTP: an offset is right within half the
//! round trip of the exchange it comes from (the two directions may take
//! unequal times, and nothing here can tell), so on a LAN to a few tens of
//! µs, over Wi-Fi or a loaded link to milliseconds. Crystals are specified
//! to ±20 to ±100 ppm and move a few ppm with temperature: followed, that is
//! invisible; measured once, 50 ppm is a frame in ten minutes. The clock is
//! `CLOCK_MONOTONIC`, which a step of the wall clock (NTP's, or a user's)
//! never moves; NTP's slewing of its rate does, which the rate estimate follows.

mod fit;
pub mod follow;

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use node_api::clock::{self, ClockSample};
use node_api::keys;
use serde::{Deserialize, Serialize};
use zenoh::Wait;

/// Exchanges made before the nodes start; the one with the shortest round
/// trip wins.
const SAMPLES: usize = 12;

/// What the reference replies to a clock query.
#[derive(Serialize, Deserialize)]
struct Reading {
    received_ns: u64,
    sent_ns: u64,
    /// The run's epoch on the reference clock.
    epoch_ns: u64,
}

/// This machine's place on the reference clock.
#[derive(Debug, Clone, Copy)]
pub struct ClockSync {
    /// Reference clock minus this machine's clock.
    pub offset_ns: i64,
    /// Round trip of the sample the offset comes from: the offset is right
    /// within half of it.
    pub rtt_ns: u64,
    /// The run's epoch on the reference clock.
    pub epoch_ns: u64,
    /// Our clock halfway through that sample's round trip.
    pub host_ns: u64,
}

/// Answers clock queries for as long as the returned queryable lives.
pub fn serve(
    session: &zenoh::Session,
    run_id: &str,
    epoch_ns: u64,
) -> Result<zenoh::query::Queryable<()>> {
    session
        .declare_queryable(keys::clock(run_id))
        .callback(move |query| {
            let received_ns = clock::host_now_ns();
            let reading = Reading {
                received_ns,
                sent_ns: clock::host_now_ns(),
                epoch_ns,
            };
            let body = serde_json::to_vec(&reading).unwrap_or_default();
            let _ = query.reply(query.key_expr().clone(), body).wait();
        })
        .wait()
        .map_err(|e| anyhow!("{e}"))
}

/// Measures this machine's clock against the reference machine's, waiting
/// up to `timeout` for it to answer (its runtime may start later than ours).
pub async fn measure(
    session: &zenoh::Session,
    run_id: &str,
    reference: &str,
    timeout: Duration,
) -> Result<ClockSync> {
    let deadline = Instant::now() + timeout;
    let mut samples = Vec::new();
    let mut epoch_ns = 0;
    while samples.len() < SAMPLES {
        if Instant::now() > deadline {
            bail!(
                "the clock reference, machine `{reference}`, did not answer within {} s \
                 (is `runtime run --machine {reference}` running, and are the `network:` endpoints reachable?)",
                timeout.as_secs()
            );
        }
        match query_once(session, run_id).await {
            Some((sample, epoch)) => {
                samples.push(sample);
                epoch_ns = epoch;
            }
            None => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let best = clock::best_sample(&samples).expect("samples were taken");
    Ok(ClockSync {
        offset_ns: best.offset_ns(),
        rtt_ns: best.rtt_ns(),
        epoch_ns,
        host_ns: midpoint(best),
    })
}

/// The best of `count` round trips made one after the other: `None` when
/// the reference answered none.
async fn best_of_burst(session: &zenoh::Session, run_id: &str, count: usize) -> Option<fit::Point> {
    let mut samples = Vec::with_capacity(count);
    for _ in 0..count {
        if let Some((sample, _)) = query_once(session, run_id).await {
            samples.push(sample);
        }
    }
    clock::best_sample(&samples).map(|b| fit::Point {
        host_ns: midpoint(b),
        offset_ns: b.offset_ns(),
        rtt_ns: b.rtt_ns(),
    })
}

fn midpoint(s: &ClockSample) -> u64 {
    s.sent + s.received.saturating_sub(s.sent) / 2
}

/// One round trip: the sample and the reference's epoch, or `None` when no
/// reference answered.
async fn query_once(session: &zenoh::Session, run_id: &str) -> Option<(ClockSample, u64)> {
    let sent = clock::host_now_ns();
    let replies = session
        .get(keys::clock(run_id))
        .timeout(Duration::from_secs(1))
        .await
        .ok()?;
    let reply = replies.recv_async().await.ok()?;
    let received = clock::host_now_ns();
    let bytes = reply.result().ok()?.payload().to_bytes();
    let reading: Reading = serde_json::from_slice(&bytes).ok()?;
    Some((
        ClockSample {
            sent,
            ref_received: reading.received_ns,
            ref_sent: reading.sent_ns,
            received,
        },
        reading.epoch_ns,
    ))
}
