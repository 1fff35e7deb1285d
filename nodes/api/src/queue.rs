//! The bounded input queues of one node.
//!
//! zenoh delivers each sample to a callback on its receive thread. The callback
//! pushes into the input's queue: a full drop-oldest queue drops (and counts) its
//! oldest message; a full block queue makes the callback wait, which holds the
//! link and so pushes back on the sender — nothing is lost. The node's event
//! loop takes messages in arrival order across all inputs.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use zenoh::bytes::ZBytes;

use crate::config::Policy;
use crate::message::{Envelope, Header, Message, Payload};
use crate::stats::InputStats;

/// A control event for the node's event loop.
#[derive(Debug, Clone, PartialEq)]
pub enum Control {
    Start,
    Stop,
    ParamUpdate {
        name: String,
        value: serde_json::Value,
        at_ns: u64,
    },
}

struct Input {
    name: String,
    /// The sending end, `node/output`, for messages about losses.
    from: String,
    items: VecDeque<(u64, Message)>,
    capacity: usize,
    policy: Policy,
    closed: bool,
    /// Not taken from while paused (its queue fills, then its sender blocks).
    paused: bool,
    last_seq: Option<u64>,
    /// Where the media seen so far ends (seconds), and the length of the last
    /// message: to measure what a restarted sender left out.
    media_end: Option<f64>,
    last_duration: f64,
    stats: InputStats,
}

/// How many times its capacity a paused input holds before it is read from
/// anyway: a message for a paused input must not wait in the transport's
/// receive thread (that would starve the other inputs), and this bounds what
/// piles up; shared-memory senders are held back sooner, by their pools.
const PAUSED_ROOM: usize = 8;

impl Input {
    /// Counts messages `first..end` of the sender as lost; the first loss is
    /// logged with its cause where the transport told one.
    fn lose(&mut self, first: u64, end: u64) {
        let count = end - first;
        self.stats.lost += count;
        if self.stats.first_loss.is_some() {
            tracing::debug!(input = %self.name, "{count} more messages from {} lost", self.from);
            return;
        }
        let cause = crate::transport_log::last_drop()
            .map_or_else(|| "cause unknown".to_string(), |c| format!("cause: {c}"));
        let what = format!(
            "messages {first}..{} from `{}` never arrived on input `{}` ({count} lost; {cause})",
            end - 1,
            self.from,
            self.name
        );
        tracing::warn!("{what}");
        self.stats.first_loss = Some(what);
    }

    /// Numbering and media accounting of a media message: gaps are losses;
    /// a restarted sender starts over at 0, and what it left out is measured
    /// in media time. (End-of-stream may come from the runtime on behalf of a
    /// dead sender, so only media messages take part.)
    fn note_media(&mut self, message: &Message) {
        let span = message.header.media_span();
        if let Some(last) = self.last_seq {
            if message.seq > last + 1 {
                self.lose(last + 1, message.seq);
            } else if message.seq <= last {
                self.stats.sender_restarts += 1;
                if let (Some(end), Some((start, _))) = (self.media_end, span) {
                    let gap = start - end;
                    if gap > 0.0 {
                        self.stats.restart_gap_s += gap;
                        if self.last_duration > 0.0 {
                            self.stats.restart_gap_messages +=
                                (gap / self.last_duration).round() as u64;
                        }
                    }
                }
            }
        }
        if let Some((start, duration)) = span {
            let end = start + duration.max(0.0);
            self.media_end = Some(self.media_end.map_or(end, |e| e.max(end)));
            self.last_duration = duration;
        }
        self.last_seq = Some(message.seq);
        self.stats.received += 1;
        if message.payload.is_shm() {
            self.stats.shm_payloads += 1;
        }
    }

    /// Messages this input holds before a sender waits.
    fn room(&self) -> usize {
        if self.paused {
            self.capacity * PAUSED_ROOM
        } else {
            self.capacity
        }
    }
}

struct State {
    inputs: Vec<Input>,
    control: VecDeque<Control>,
    arrivals: u64,
    shutting_down: bool,
}

pub(crate) struct Queues {
    state: Mutex<State>,
    /// Per input, the copies made of its payloads (counted by
    /// [`Payload::as_slice`], outside the lock).
    copies: Vec<Arc<AtomicU64>>,
    changed: Condvar,
}

/// What the event loop took next.
pub(crate) enum Next {
    Control(Control),
    Input(String, Message),
    Closed(String),
    /// Every input has closed.
    AllClosed,
    Timeout,
}

impl Queues {
    /// Inputs as (name, sending `node/output`, capacity, policy).
    pub fn new(inputs: impl IntoIterator<Item = (String, String, usize, Policy)>) -> Self {
        let inputs: Vec<Input> = inputs
            .into_iter()
            .map(|(name, from, capacity, policy)| Input {
                name,
                from,
                items: VecDeque::with_capacity(capacity),
                capacity: capacity.max(1),
                policy,
                closed: false,
                paused: false,
                last_seq: None,
                media_end: None,
                last_duration: 0.0,
                stats: InputStats {
                    queue_capacity: capacity.max(1) as u64,
                    ..Default::default()
                },
            })
            .collect();
        Queues {
            copies: inputs.iter().map(|_| Arc::default()).collect(),
            state: Mutex::new(State {
                inputs,
                control: VecDeque::new(),
                arrivals: 0,
                shutting_down: false,
            }),
            changed: Condvar::new(),
        }
    }

    /// Called from zenoh's receive thread for every sample on input `index`.
    /// Returns true for an end-of-stream.
    #[cfg(test)]
    pub fn push(&self, index: usize, attachment: Option<&ZBytes>, payload: ZBytes) -> bool {
        self.push_flagged(index, attachment, payload, None).0
    }

    /// Like [`Queues::push`]; also returns whether the message was no-drop,
    /// and sets `no_drop_flag` before the message can be taken: a node
    /// asking [`crate::Node::is_no_drop`] on its first message gets the answer
    /// that message carries.
    pub fn push_flagged(
        &self,
        index: usize,
        attachment: Option<&ZBytes>,
        payload: ZBytes,
        no_drop_flag: Option<&std::sync::atomic::AtomicBool>,
    ) -> (bool, bool) {
        let envelope = match attachment.map(|a| Envelope::decode(&a.to_bytes())) {
            Some(Ok(e)) => e,
            Some(Err(e)) => {
                tracing::warn!("dropping a message with a bad header: {e}");
                return (false, false);
            }
            None => {
                tracing::warn!("dropping a message without a header");
                return (false, false);
            }
        };
        let no_drop = envelope.no_drop;
        if let (true, Some(flag)) = (no_drop, no_drop_flag) {
            flag.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        let message = Message {
            header: envelope.header,
            payload: Payload::new(payload, self.copies[index].clone()),
            seq: envelope.seq,
        };
        let mut st = self.state.lock().unwrap();
        let input = &mut st.inputs[index];
        input.stats.no_drop |= no_drop;
        let is_eos = matches!(message.header, Header::EndOfStream);
        if is_eos
            && (input.closed
                || input
                    .items
                    .iter()
                    .any(|(_, m)| matches!(m.header, Header::EndOfStream)))
        {
            // The runtime repeats an end-of-stream for a restarted consumer
            // that missed it; everyone else has it already.
            return (true, no_drop);
        }
        if is_eos {
            // A sender's own end-of-stream carries the number of messages it
            // sent: what is missing at the end is lost too. (The runtime's, on
            // behalf of a dead sender, carries 0.)
            if let Some(last) = input.last_seq.filter(|l| message.seq > l + 1) {
                input.lose(last + 1, message.seq);
            }
        } else {
            input.note_media(&message);
        }
        loop {
            let st_ref = &mut *st;
            let input = &mut st_ref.inputs[index];
            if input.items.len() < input.room() || is_eos || st_ref.shutting_down {
                break;
            }
            let policy = if no_drop { Policy::Block } else { input.policy };
            match policy {
                Policy::DropOldest => {
                    // Drop the oldest media message, never a queued end-of-stream.
                    if let Some(pos) = input
                        .items
                        .iter()
                        .position(|(_, m)| !matches!(m.header, Header::EndOfStream))
                    {
                        input.items.remove(pos);
                        input.stats.dropped += 1;
                    }
                    break;
                }
                Policy::Block => {
                    st = self.changed.wait(st).unwrap();
                }
            }
        }
        st.arrivals += 1;
        let arrival = st.arrivals;
        let input = &mut st.inputs[index];
        input.items.push_back((arrival, message));
        input.stats.queue_depth = input.items.len() as u64;
        drop(st);
        self.changed.notify_all();
        (is_eos, no_drop)
    }

    pub fn push_control(&self, control: Control) {
        self.state.lock().unwrap().control.push_back(control);
        self.changed.notify_all();
    }

    /// Releases callbacks blocked on full queues (the node is going away).
    pub fn shut_down(&self) {
        self.state.lock().unwrap().shutting_down = true;
        self.changed.notify_all();
    }

    /// Takes the next event: control first, then the input message that arrived
    /// earliest. Waits up to `timeout` (forever if `None`).
    pub fn next(&self, timeout: Option<Duration>) -> Next {
        let deadline = timeout.map(|t| std::time::Instant::now() + t);
        let mut st = self.state.lock().unwrap();
        loop {
            if let Some(c) = st.control.pop_front() {
                return Next::Control(c);
            }
            let oldest = st
                .inputs
                .iter()
                .enumerate()
                .filter(|(_, q)| !q.paused || q.items.len() >= q.room())
                .filter_map(|(i, q)| q.items.front().map(|(arrival, _)| (*arrival, i)))
                .min();
            if let Some((_, i)) = oldest {
                let input = &mut st.inputs[i];
                let (_, message) = input.items.pop_front().unwrap();
                input.stats.queue_depth = input.items.len() as u64;
                let name = input.name.clone();
                if matches!(message.header, Header::EndOfStream) {
                    input.closed = true;
                    drop(st);
                    self.changed.notify_all();
                    return Next::Closed(name);
                }
                drop(st);
                self.changed.notify_all();
                return Next::Input(name, message);
            }
            if !st.inputs.is_empty() && st.inputs.iter().all(|q| q.closed) {
                return Next::AllClosed;
            }
            match deadline {
                None => st = self.changed.wait(st).unwrap(),
                Some(d) => {
                    let now = std::time::Instant::now();
                    if now >= d {
                        return Next::Timeout;
                    }
                    st = self.changed.wait_timeout(st, d - now).unwrap().0;
                }
            }
        }
    }

    /// Stops or resumes taking messages from `input`.
    pub fn set_paused(&self, input: &str, paused: bool) {
        let mut st = self.state.lock().unwrap();
        if let Some(q) = st.inputs.iter_mut().find(|q| q.name == input) {
            q.paused = paused;
        }
        drop(st);
        self.changed.notify_all();
    }

    /// Counts a copy of a payload of `input` made other than by [`Payload::as_slice`].
    pub fn count_copy(&self, input: &str) {
        let st = self.state.lock().unwrap();
        if let Some(i) = st.inputs.iter().position(|q| q.name == input) {
            self.copies[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn snapshot(&self) -> Vec<(String, InputStats)> {
        let st = self.state.lock().unwrap();
        st.inputs
            .iter()
            .zip(&self.copies)
            .map(|(q, copies)| {
                let mut stats = q.stats.clone();
                stats.copied_payloads = copies.load(Ordering::Relaxed);
                (q.name.clone(), stats)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Envelope;

    fn push_seq(q: &Queues, idx: usize, seq: u64, header: Header) {
        let att = ZBytes::from(
            Envelope {
                seq,
                no_drop: false,
                header,
            }
            .encode(),
        );
        q.push(idx, Some(&att), ZBytes::from(vec![seq as u8]));
    }

    #[test]
    fn drop_oldest_counts_and_keeps_newest() {
        let q = inputs([("video", 2, Policy::DropOldest)]);
        for s in 0..5 {
            push_seq(&q, 0, s, Header::Stats(String::new()));
        }
        let stats = &q.snapshot()[0].1;
        assert_eq!(stats.dropped, 3);
        assert_eq!(stats.received, 5);
        match q.next(Some(Duration::ZERO)) {
            Next::Input(_, m) => assert_eq!(m.seq, 3),
            _ => panic!("expected a message"),
        }
    }

    fn inputs<const N: usize>(specs: [(&str, usize, Policy); N]) -> Queues {
        Queues::new(specs.map(|(name, capacity, policy)| {
            (name.to_string(), "up/out".to_string(), capacity, policy)
        }))
    }

    #[test]
    fn sequence_gaps_count_as_losses_not_drops() {
        let q = inputs([("a", 8, Policy::Block)]);
        push_seq(&q, 0, 0, Header::Stats(String::new()));
        push_seq(&q, 0, 4, Header::Stats(String::new()));
        let stats = &q.snapshot()[0].1;
        assert_eq!((stats.lost, stats.dropped), (3, 0));
        let first = stats.first_loss.as_deref().unwrap();
        assert!(first.contains("messages 1..3 from `up/out`"), "{first}");
    }

    #[test]
    fn messages_missing_before_the_end_of_stream_are_lost() {
        let q = inputs([("a", 8, Policy::Block)]);
        for seq in 0..3 {
            push_seq(&q, 0, seq, Header::Stats(String::new()));
        }
        // The sender sent 6 messages: 3, 4 and 5 never came.
        push_seq(&q, 0, 6, Header::EndOfStream);
        assert_eq!(q.snapshot()[0].1.lost, 3);
        // The runtime's end-of-stream for a dead sender carries 0: nothing lost.
        let q = inputs([("a", 8, Policy::Block)]);
        push_seq(&q, 0, 0, Header::Stats(String::new()));
        push_seq(&q, 0, 0, Header::EndOfStream);
        assert_eq!(q.snapshot()[0].1.lost, 0);
    }

    #[test]
    fn arrival_order_across_inputs_and_close() {
        let q = inputs([("a", 4, Policy::Block), ("b", 4, Policy::Block)]);
        push_seq(&q, 1, 0, Header::Stats("b0".into()));
        push_seq(&q, 0, 0, Header::Stats("a0".into()));
        push_seq(&q, 1, 1, Header::EndOfStream);
        push_seq(&q, 0, 1, Header::EndOfStream);
        let mut seen = Vec::new();
        loop {
            match q.next(Some(Duration::ZERO)) {
                Next::Input(n, _) => seen.push(format!("in:{n}")),
                Next::Closed(n) => seen.push(format!("closed:{n}")),
                Next::AllClosed => break,
                _ => panic!("unexpected"),
            }
        }
        assert_eq!(seen, ["in:b", "in:a", "closed:b", "closed:a"]);
    }

    fn video(pts: i64) -> Header {
        let layout = crate::PixelFormat::Gray8.packed_layout(2, 2);
        Header::Video(crate::VideoFrame {
            format: crate::PixelFormat::Gray8,
            width: 2,
            height: 2,
            layout,
            pts,
            time_base: crate::TimeBase::new(1, 30),
            duration: 1,
            capture_ns: pts as u64 * 1_000_000_000 / 30,
        })
    }

    #[test]
    fn a_restarted_sender_is_counted_with_the_media_it_left_out() {
        let q = inputs([("v", 64, Policy::Block)]);
        for seq in 0..10 {
            push_seq(&q, 0, seq, video(seq as i64));
        }
        // The sender died after pts 9 and its new incarnation starts at pts 25.
        for (seq, pts) in [(0, 25), (1, 26)] {
            push_seq(&q, 0, seq, video(pts));
        }
        let stats = &q.snapshot()[0].1;
        assert_eq!(stats.sender_restarts, 1);
        assert_eq!(stats.restart_gap_messages, 15);
        assert!((stats.restart_gap_s - 0.5).abs() < 1e-9, "{stats:?}");
        assert_eq!(stats.dropped, 0);
    }

    #[test]
    fn a_repeated_end_of_stream_is_ignored() {
        let q = inputs([("a", 4, Policy::Block)]);
        push_seq(&q, 0, 0, Header::EndOfStream);
        push_seq(&q, 0, 0, Header::EndOfStream);
        assert!(matches!(q.next(Some(Duration::ZERO)), Next::Closed(_)));
        push_seq(&q, 0, 0, Header::EndOfStream);
        assert!(matches!(q.next(Some(Duration::ZERO)), Next::AllClosed));
    }

    #[test]
    fn a_repeated_end_of_stream_closes_once() {
        let q = inputs([("a", 4, Policy::Block)]);
        push_seq(&q, 0, 0, Header::Stats("a0".into()));
        push_seq(&q, 0, 1, Header::EndOfStream);
        // Repeated while queued, and after it was taken.
        push_seq(&q, 0, 1, Header::EndOfStream);
        assert!(matches!(q.next(Some(Duration::ZERO)), Next::Input(..)));
        assert!(matches!(q.next(Some(Duration::ZERO)), Next::Closed(_)));
        push_seq(&q, 0, 1, Header::EndOfStream);
        assert!(matches!(q.next(Some(Duration::ZERO)), Next::AllClosed));
    }

    #[test]
    fn a_paused_input_is_passed_over_until_resumed() {
        let q = inputs([("a", 4, Policy::Block), ("b", 4, Policy::Block)]);
        push_seq(&q, 0, 0, Header::Stats("a0".into()));
        push_seq(&q, 1, 0, Header::Stats("b0".into()));
        q.set_paused("a", true);
        assert!(matches!(q.next(Some(Duration::ZERO)), Next::Input(name, _) if name == "b"));
        assert!(matches!(q.next(Some(Duration::ZERO)), Next::Timeout));
        q.set_paused("a", false);
        assert!(matches!(q.next(Some(Duration::ZERO)), Next::Input(name, _) if name == "a"));
    }

    #[test]
    fn a_paused_input_takes_more_without_blocking_then_is_read_anyway() {
        let q = inputs([("a", 2, Policy::Block), ("b", 2, Policy::Block)]);
        q.set_paused("a", true);
        // Past its capacity without waiting: this thread would hang otherwise.
        for seq in 0..(2 * PAUSED_ROOM as u64) {
            push_seq(&q, 0, seq, Header::Stats(format!("a{seq}")));
        }
        // Full even for a paused input: it is read from again.
        assert!(matches!(q.next(Some(Duration::ZERO)), Next::Input(name, _) if name == "a"));
    }

    #[test]
    fn block_waits_for_room() {
        let q = std::sync::Arc::new(inputs([("a", 1, Policy::Block)]));
        push_seq(&q, 0, 0, Header::Stats(String::new()));
        let q2 = q.clone();
        let t = std::thread::spawn(move || push_seq(&q2, 0, 1, Header::Stats(String::new())));
        // The second push cannot complete until the first message is taken.
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(q.snapshot()[0].1.queue_depth, 1);
        assert!(matches!(q.next(Some(Duration::ZERO)), Next::Input(..)));
        t.join().unwrap();
        assert!(matches!(q.next(Some(Duration::ZERO)), Next::Input(_, m) if m.seq == 1));
        assert_eq!(q.snapshot()[0].1.dropped, 0);
    }

    #[test]
    fn a_payload_read_as_one_slice_counts_its_copy() {
        let q = inputs([("a", 4, Policy::Block), ("b", 4, Policy::Block)]);
        let att = ZBytes::from(
            Envelope {
                seq: 0,
                no_drop: false,
                header: Header::Stats(String::new()),
            }
            .encode(),
        );
        // Contiguous: read in place.
        q.push(0, Some(&att), ZBytes::from(vec![1, 2]));
        // In two fragments (as over a network link): joined by a copy.
        let mut w = ZBytes::writer();
        w.append(ZBytes::from(vec![1]));
        w.append(ZBytes::from(vec![2]));
        q.push(1, Some(&att), w.finish());
        for _ in 0..2 {
            let Next::Input(_, m) = q.next(Some(Duration::ZERO)) else {
                panic!("expected a message")
            };
            assert_eq!(&*m.payload.as_slice(), &[1, 2]);
        }
        let copies: Vec<u64> = q
            .snapshot()
            .iter()
            .map(|(_, s)| s.copied_payloads)
            .collect();
        assert_eq!(copies, [0, 1]);
        q.count_copy("a");
        assert_eq!(q.snapshot()[0].1.copied_payloads, 1);
    }
}
