//! Where an output's connection is, and what it has sent and lost.

use std::time::Instant;

use node_api::{clock, MediaKind};
use node_media::latency::Latency;

use crate::sink::Sink;
use crate::tracks::Packet;

/// The connection of an output.
pub enum Link {
    /// Not connected: the next attempt at `retry_at`, after `failures`
    /// failed attempts in a row.
    Down { retry_at: Instant, failures: u32 },
    /// Connected, packets going out.
    Up(Sink),
}

/// What an output did: its part of the status line and the report.
#[derive(Clone, Default)]
pub struct LinkStats {
    pub sent_packets: u64,
    pub sent_bytes: u64,
    /// Packets not sent: dropped from a full queue, or while down.
    pub dropped: u64,
    /// Media seconds not sent (video, or audio in an output without video).
    pub lost_video_s: f64,
    pub lost_audio_s: f64,
    /// Connections made; every one after the first is a reconnection.
    pub connections: u32,
    /// Failed attempts to connect.
    pub failures: u32,
    pub connected: bool,
    /// Since when it has been down after being up (an outage under way).
    pub down_since: Option<Instant>,
    /// Wall seconds spent down between connections (outages ended).
    pub outage_s: f64,
    pub last_error: Option<String>,
    /// Capture to sent, per track.
    pub latency: Vec<Latency>,
}

impl LinkStats {
    pub fn reconnects(&self) -> u32 {
        self.connections.saturating_sub(1)
    }

    /// Media seconds not sent, of the longest track.
    pub fn lost_s(&self) -> f64 {
        if self.lost_video_s > 0.0 {
            self.lost_video_s
        } else {
            self.lost_audio_s
        }
    }

    /// Wall seconds spent down after the first connection, the outage under way included.
    pub fn outage_total_s(&self) -> f64 {
        self.outage_s + self.down_since.map_or(0.0, |t| t.elapsed().as_secs_f64())
    }

    pub(crate) fn drop_packets(&mut self, packets: &[Packet]) {
        for p in packets {
            self.dropped += 1;
            match p.header.media {
                MediaKind::Video => self.lost_video_s += p.seconds(),
                MediaKind::Audio => self.lost_audio_s += p.seconds(),
            }
        }
    }

    pub(crate) fn sent(&mut self, p: &Packet) {
        self.sent_packets += 1;
        self.sent_bytes += p.data.len() as u64;
        if p.header.capture_ns > 0 {
            if self.latency.len() <= p.track {
                self.latency.resize_with(p.track + 1, Latency::new);
            }
            let ns = clock::now_ns().saturating_sub(p.header.capture_ns);
            self.latency[p.track].record_ns(ns);
        }
    }

    pub(crate) fn connected(&mut self, shown: &str) {
        self.connections += 1;
        self.connected = true;
        self.failures = 0;
        match self.down_since.take() {
            Some(since) => {
                let down = since.elapsed().as_secs_f64();
                self.outage_s += down;
                tracing::warn!(
                    "{shown}: reconnected after {down:.1} s down (reconnection {}; {} packets, {:.2} s of media not sent so far)",
                    self.reconnects(),
                    self.dropped,
                    self.lost_s()
                );
            }
            None => tracing::info!("{shown}: connected"),
        }
    }

    /// An attempt to connect failed; `first` (the keyframe it was to start
    /// with) is not sent.
    pub(crate) fn failed(&mut self, error: &str, first: &Packet) {
        self.failures += 1;
        if self.last_error.as_deref() != Some(error) || self.failures == 1 {
            tracing::warn!("{error} (retrying)");
        } else {
            tracing::debug!("{error} (attempt {})", self.failures);
        }
        self.last_error = Some(error.to_string());
        self.drop_packets(std::slice::from_ref(first));
    }

    /// The connection ended: by an error while sending `lost` (not sent),
    /// or at the end of the stream (`None`).
    pub(crate) fn disconnected(&mut self, error: Option<(&str, &Packet)>) {
        self.connected = false;
        if let Some((error, lost)) = error {
            tracing::warn!("{error}: connection lost, reconnecting");
            self.last_error = Some(error.to_string());
            self.down_since = Some(Instant::now());
            self.drop_packets(std::slice::from_ref(lost));
        }
    }
}
