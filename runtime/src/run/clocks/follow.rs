//! Following the reference clock while the run goes on: two crystals never
//! tick alike (tens of ppm apart, moving with temperature), so an offset
//! measured once drifts, 50 ppm by 30 ms in ten minutes, a frame. Every
//! [`INTERVAL`] a burst of round trips gives a point (the one with the
//! shortest round trip); a line through the last couple of minutes of points
//! ([`fit`]) gives the rate and the offset now. The model this machine's
//! nodes apply is brought onto that estimate by a bounded slew, never a
//! jump ([`ClockModel::slewed_towards`]), and published to them.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use node_api::clock::{self, ClockModel};
use node_api::keys;
use zenoh::Wait;

use super::fit::{self, Fit, Point};
use super::{best_of_burst, ClockSync};

/// Time between two measurements.
const INTERVAL: Duration = Duration::from_secs(2);
/// Round trips per measurement; the shortest wins.
const BURST: usize = 4;
/// Points the fit goes over: two minutes, enough for the rate to within a
/// ppm or so on a LAN, short enough to follow a crystal warming up.
const WINDOW: usize = 60;

/// Turns the following off (`off`): the clock is still measured and the
/// report says what the rate was, but the nodes keep the offset measured at
/// the start. For tests and diagnosis: what drift would do unfollowed.
pub const FOLLOW_ENV: &str = "MEDIAGRAPH_CLOCK_FOLLOW";

/// What the follower knows, for the status line and the report.
#[derive(Debug, Clone)]
pub struct FollowState {
    pub reference: String,
    /// The measurement before the nodes started.
    pub start: ClockSync,
    /// The model this machine's nodes apply now.
    pub applied: ClockModel,
    /// The latest estimate, once there are points enough for a rate.
    pub fit: Option<Fit>,
    pub measurements: u64,
    /// Measurements the reference did not answer.
    pub unanswered: u64,
    /// The largest disagreement between the applied offset and a new
    /// estimate, ns (what had to be slewed).
    pub largest_gap_ns: i64,
    /// Whether the nodes follow the estimates (see [`FOLLOW_ENV`]).
    pub following: bool,
}

/// The running follower; stops when dropped.
pub struct Follower {
    pub state: Arc<Mutex<FollowState>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The model the nodes start with: the start measurement's offset.
pub fn start_model(start: &ClockSync) -> ClockModel {
    ClockModel {
        at_ns: clock::host_now_ns(),
        uncertainty_ns: start.rtt_ns / 2,
        remote: true,
        ..ClockModel::constant(start.offset_ns)
    }
}

/// Starts following the reference for machine `me`'s nodes.
pub fn start(
    session: &zenoh::Session,
    run_id: &str,
    me: &str,
    reference: &str,
    start: ClockSync,
) -> Follower {
    let applied = start_model(&start);
    clock::set_model(applied);
    let following = std::env::var(FOLLOW_ENV).map_or(true, |v| v != "off");
    if !following {
        tracing::warn!("{FOLLOW_ENV}=off: the clock is measured but not followed");
    }
    let state = Arc::new(Mutex::new(FollowState {
        reference: reference.to_string(),
        start,
        applied,
        fit: None,
        measurements: 0,
        unanswered: 0,
        largest_gap_ns: 0,
        following,
    }));
    let task = tokio::spawn(follow(
        session.clone(),
        run_id.to_string(),
        me.to_string(),
        state.clone(),
    ));
    Follower { state, task }
}

async fn follow(
    session: zenoh::Session,
    run_id: String,
    me: String,
    state: Arc<Mutex<FollowState>>,
) {
    let key = keys::clock_model(&run_id, &me);
    let mut points = VecDeque::with_capacity(WINDOW + 1);
    points.push_back(start_point(&state.lock().unwrap().start));
    let mut silent_since_warned = false;
    loop {
        tokio::time::sleep(INTERVAL).await;
        let Some(point) = best_of_burst(&session, &run_id, BURST).await else {
            let mut s = state.lock().unwrap();
            s.unanswered += 1;
            if !silent_since_warned {
                // The nodes go on with the model they have: its rate keeps
                // them close for a long while.
                tracing::warn!(
                    "the clock reference, machine `{}`, does not answer: keeping the last estimate",
                    s.reference
                );
                silent_since_warned = true;
            }
            continue;
        };
        silent_since_warned = false;
        points.push_back(point);
        if points.len() > WINDOW {
            points.pop_front();
        }
        let now = clock::host_now_ns();
        let estimate = fit::fit(points.make_contiguous(), now);
        let mut s = state.lock().unwrap();
        s.measurements += 1;
        let Some(estimate) = estimate else {
            continue;
        };
        let target = ClockModel {
            at_ns: now,
            offset_ns: estimate.offset_ns,
            rate_ppm: estimate.rate_ppm,
            uncertainty_ns: estimate.uncertainty_ns,
            remote: true,
            ..ClockModel::constant(0)
        };
        let gap = target.offset_at(now) - s.applied.offset_at(now);
        if gap.abs() > s.largest_gap_ns.abs() {
            s.largest_gap_ns = gap;
        }
        s.fit = Some(estimate);
        if s.following {
            s.applied = s.applied.slewed_towards(now, &target);
        } else {
            s.applied.uncertainty_ns = estimate.uncertainty_ns;
        }
        let applied = s.applied;
        drop(s);
        clock::set_model(applied);
        let body = serde_json::to_vec(&applied).unwrap_or_default();
        let _ = session.put(&key, body).wait();
    }
}

/// The start measurement as the first point of the line.
fn start_point(start: &ClockSync) -> Point {
    Point {
        host_ns: start.host_ns,
        offset_ns: start.offset_ns,
        rtt_ns: start.rtt_ns,
    }
}
