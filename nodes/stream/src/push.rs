//! `mediagraph-nodes stream`: pushes the encoded tracks to an RTMP/RTMPS
//! server (FLV) or an SRT peer (MPEG-TS), through an [`Outlet`].

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use node_api::{EncodedPacket, NoRestart};
use node_catalog::kinds::stream::{Protocol, Settings, SrtMode, RETRY_DELAY_MAX};

use crate::outlet::{Opener, Policy, QUEUE_BYTES};
use crate::output;
use crate::sink::{Sink, Target, Watchdog};

/// Entry point, with the arguments after the kind (none are taken).
pub fn main(_args: &[String]) {
    node_api::run_main(run);
}

fn run() -> Result<()> {
    node_media::init()?;
    let node = node_api::Node::init()?;
    let s = Settings::from_params(node.params())?;
    let protocol = s.protocol()?;
    let connection = Connection::new(&s, protocol);
    let policy = Policy {
        queue_s: s.queue_duration,
        queue_bytes: QUEUE_BYTES,
        connect_timeout: secs(s.connect_timeout),
        write_timeout: secs(s.write_timeout),
        retry_min: secs(s.retry_delay),
        retry_max: secs(RETRY_DELAY_MAX.max(s.retry_delay)),
    };
    tracing::info!("streaming to {}", connection.shown);
    let stats = output::serve(node, protocol.format(), connection, policy)?;
    if !stats.connected && stats.connections == 0 {
        let why = stats
            .last_error
            .unwrap_or_else(|| "no packet to send".into());
        return Err(NoRestart(format!("the stream never connected: {why}")).into());
    }
    if let Some(since) = stats.down_since {
        return Err(NoRestart(format!(
            "the stream was down at the end (for {:.1} s: {}); {} reconnections, {:.2} s of media not sent",
            since.elapsed().as_secs_f64(),
            stats.last_error.as_deref().unwrap_or_default(),
            stats.reconnects(),
            stats.lost_s()
        ))
        .into());
    }
    Ok(())
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// An RTMP/SRT destination: its URL with the secrets, and without.
struct Connection {
    target: Target,
    shown: String,
    /// SRT listener: the peer comes to us, whenever it does.
    listener: bool,
    srt: bool,
}

impl Connection {
    fn new(s: &Settings, protocol: Protocol) -> Connection {
        let mut url = s.url.clone();
        let mut shown = s.url.clone();
        let mut options: Vec<(&'static str, String)> = Vec::new();
        match protocol {
            Protocol::Rtmp | Protocol::Rtmps => {
                if let Some(key) = &s.key {
                    url = format!("{}/{key}", url.trim_end_matches('/'));
                    shown = format!("{}/***", shown.trim_end_matches('/'));
                }
            }
            Protocol::Srt => {
                options.push(("mode", s.mode.name().into()));
                // FFmpeg's libsrt takes the latency in microseconds.
                options.push(("latency", (s.latency * 1000).to_string()));
                // In live mode SRT drops what it has not sent yet at close:
                // the end of the stream would be cut.
                options.push(("linger", "5".into()));
                if let Some(p) = &s.passphrase {
                    options.push(("passphrase", p.clone()));
                }
                if s.mode == SrtMode::Listener {
                    options.push(("listen_timeout", "-1".into()));
                }
            }
        }
        let target = Target {
            url,
            shown: shown.clone(),
            format: protocol.format().ffmpeg_name(),
            protocol_options: options,
            muxer_options: muxer_options(protocol),
        };
        Connection {
            target,
            shown,
            listener: protocol == Protocol::Srt && s.mode == SrtMode::Listener,
            srt: protocol == Protocol::Srt,
        }
    }
}

fn muxer_options(protocol: Protocol) -> Vec<(&'static str, String)> {
    match protocol {
        // A live FLV has no duration or size to seek back and write.
        Protocol::Rtmp | Protocol::Rtmps => vec![("flvflags", "no_duration_filesize".into())],
        Protocol::Srt => Vec::new(),
    }
}

impl Opener for Connection {
    fn open(
        &mut self,
        params: &[&EncodedPacket],
        offset_s: f64,
        watchdog: Arc<Watchdog>,
    ) -> Result<Sink> {
        if self.listener {
            // A listener waits for its caller as long as the node runs (the
            // watchdog's stop still ends the wait).
            watchdog.arm(Duration::from_secs(365 * 86_400));
        }
        Sink::open(&self.target, params, offset_s, watchdog).map_err(|e| {
            // libsrt tells FFmpeg no more than "Input/output error" when
            // the listener refuses the handshake (its reason goes to the log).
            if self.srt && format!("{e:#}").ends_with("Input/output error") {
                e.context("the SRT peer refused the connection or is not listening: a wrong or missing `passphrase`, or no listener at that port")
            } else {
                e
            }
        })
    }

    fn shown(&self) -> &str {
        &self.shown
    }
}
