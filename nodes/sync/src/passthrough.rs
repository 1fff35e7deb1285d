//! Sync's side of packet cameras (see [`crate::packets`] for how their
//! tracks are started together): asking the encoders, fixing T0 from the
//! start keyframes, and forwarding the packets, payloads untouched, with
//! their new timestamps. The stream parameters (extradata included) travel
//! in every packet's header, so the mux reads them from sync's output as it
//! would from the encoder's.

use anyhow::{Context, Result};
use node_api::clock::now_ns;
use node_api::{EncodedPacket, Header, Node, Payload};
use serde_json::json;

use crate::packets::{Placed, Todo};
use crate::Sync;

/// Audio kept from this long before the instant the packet cameras were
/// asked to start at: more than an audio frame, so T0 (which may move
/// back by half a video frame) finds its samples.
const AUDIO_MARGIN_NS: u64 = 100_000_000;
/// Audio held at most this long beyond the buffer while the packet cameras'
/// start keyframes are awaited (an encoder that never answers must not make
/// sync hold every audio buffer of the run, and starve their pool).
const AUDIO_WAIT_MAX_NS: u64 = 10_000_000_000;

impl Sync {
    pub(crate) fn on_packet(
        &mut self,
        node: &mut Node,
        input: &str,
        packet: EncodedPacket,
        payload: Payload,
    ) -> Result<()> {
        let Some(i) = self.packets.index(input) else {
            anyhow::bail!("input `{input}` carries encoded packets, but it is not a camera input (`video` .. `video8`)");
        };
        self.pacer.seen(input, packet.capture_ns);
        if let Some(t0) = self.t0 {
            return self.send_packet(node, i, packet, &payload, t0);
        }
        let todo = self.packets.hold(i, packet, payload, now_ns());
        self.act(node, todo)
    }

    pub(crate) fn close_packets(&mut self, node: &mut Node, input: &str) -> Result<()> {
        let Some(i) = self.packets.index(input) else {
            return Ok(());
        };
        let todo = self.packets.close(i, now_ns());
        self.act(node, todo)
    }

    fn act(&mut self, node: &mut Node, todo: Todo) -> Result<()> {
        match todo {
            Todo::Nothing => Ok(()),
            Todo::Ask(at) => self.ask_keyframes(node, at),
            Todo::Start => self.try_start(node),
        }
    }

    /// Asks the encoder of every packet camera for a keyframe on its first
    /// frame captured at or after `at_ns`.
    fn ask_keyframes(&mut self, node: &mut Node, at_ns: u64) -> Result<()> {
        let ahead_ms = at_ns.saturating_sub(now_ns()) as f64 / 1e6;
        tracing::info!(
            "asking the camera encoders for the keyframe every track starts on, {ahead_ms:.0} ms ahead (request {})",
            self.packets.asks
        );
        for lane in self.packets.lanes.iter().filter(|l| !l.closed) {
            node.ask_upstream(&lane.name, "keyframe", json!(true), at_ns)
                .with_context(|| format!("asking the encoder of `{}` for a keyframe", lane.name))?;
        }
        Ok(())
    }

    /// Every packet camera can start: T0 is fixed by their keyframes (see
    /// [`crate::packets::Packets::start`]), and what they held goes out.
    pub(crate) fn start_packets(&mut self, node: &mut Node) -> Result<Option<u64>> {
        let Some((t0, tick)) = self.packets.start() else {
            return Ok(None);
        };
        self.t0 = Some(t0);
        self.pause.start(t0, Some(tick));
        for i in 0..self.packets.lanes.len() {
            for (packet, payload) in self.packets.take_held(i) {
                self.send_packet(node, i, packet, &payload, t0)?;
            }
        }
        Ok(Some(t0))
    }

    fn send_packet(
        &mut self,
        node: &mut Node,
        i: usize,
        packet: EncodedPacket,
        payload: &Payload,
        t0: u64,
    ) -> Result<()> {
        match self.packets.place(i, packet, t0, now_ns()) {
            Placed::Send(header) => {
                let lane = &self.packets.lanes[i];
                if lane.has_output {
                    node.forward(&lane.name, Header::Packet(header), payload)
                        .with_context(|| format!("sending {}", lane.name))?;
                }
                Ok(())
            }
            Placed::Before => Ok(()),
            Placed::Ask(todo) => self.act(node, todo),
        }
    }

    /// How much of audio lane `i` to hold before the start, now that a
    /// frame captured at `capture_ns` came: the buffer, for raw cameras.
    /// Packet cameras start at an instant asked for ahead of now: what is
    /// older than the buffer and before that instant is before the start
    /// (counted so, not as dropped), and what comes after it is kept until
    /// the start keyframes are in, however long the encoders take.
    pub(crate) fn audio_hold_limit(&mut self, i: usize, capture_ns: u64) -> u64 {
        if self.packets.is_empty() {
            return self.buffer_ns;
        }
        let asked = self.packets.asked();
        let held = &mut self.audio[i].held;
        while let Some(first) = held.first_capture() {
            let age = capture_ns.saturating_sub(first);
            let wanted = asked.is_some_and(|at| first + AUDIO_MARGIN_NS >= at);
            if age <= self.buffer_ns || (wanted && age <= self.buffer_ns + AUDIO_WAIT_MAX_NS) {
                break;
            }
            let (early, _) = held.pop().expect("has a first");
            self.n.audio_before_start += early.samples as u64;
        }
        u64::MAX
    }

    /// The describe-the-start line of every packet camera.
    pub(crate) fn packet_starts(&self) -> Vec<String> {
        self.packets
            .lanes
            .iter()
            .map(|l| match l.first_from_t0 {
                Some(ns) => format!("{} keyframe {:.1} ms from T0", l.name, ns as f64 / 1e6),
                None => format!("{} never began", l.name),
            })
            .collect()
    }
}
