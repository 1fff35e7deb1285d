//! `stream`: pushes encoded tracks live to an RTMP/RTMPS server or an SRT peer.

use super::{no_inputs_rule, no_value_rule, problems, KindSpec};
use crate::params::{ParamSpec, Params};
use crate::read::Reader;
use crate::{Format, PortType, Problem};

crate::choice! {
    /// SRT's side of the handshake: `caller` connects to a listener at the
    /// URL's host; `listener` waits on the URL's port for a caller.
    pub enum SrtMode { Caller = "caller", Listener = "listener" }
}

/// The protocol of a stream's URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Rtmp,
    Rtmps,
    Srt,
}

impl Protocol {
    /// The container sent over it.
    pub fn format(self) -> Format {
        match self {
            Protocol::Rtmp | Protocol::Rtmps => Format::Flv,
            Protocol::Srt => Format::MpegTs,
        }
    }
}

pub const DEFAULT_MODE: SrtMode = SrtMode::Caller;
/// ms: libsrt's own default.
pub const DEFAULT_LATENCY: i64 = 120;
/// Seconds of media.
pub const DEFAULT_QUEUE_DURATION: f64 = 5.0;
pub const DEFAULT_CONNECT_TIMEOUT: f64 = 5.0;
pub const DEFAULT_WRITE_TIMEOUT: f64 = 5.0;
pub const DEFAULT_RETRY_DELAY: f64 = 1.0;
/// The longest wait between two attempts to reconnect, seconds.
pub const RETRY_DELAY_MAX: f64 = 15.0;

/// The params of `stream`, typed.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub url: String,
    pub key: Option<String>,
    pub mode: SrtMode,
    /// ms.
    pub latency: i64,
    pub passphrase: Option<String>,
    pub queue_duration: f64,
    pub connect_timeout: f64,
    pub write_timeout: f64,
    pub retry_delay: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            url: String::new(),
            key: None,
            mode: DEFAULT_MODE,
            latency: DEFAULT_LATENCY,
            passphrase: None,
            queue_duration: DEFAULT_QUEUE_DURATION,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            write_timeout: DEFAULT_WRITE_TIMEOUT,
            retry_delay: DEFAULT_RETRY_DELAY,
        }
    }
}

impl Settings {
    pub fn from_params(p: &Params) -> Result<Settings, Problem> {
        let r = Reader::new(PARAMS, p);
        Ok(Settings {
            url: r.text("url", "")?,
            key: r.text_opt("key")?.filter(|k| !k.is_empty()),
            mode: r.choice("mode", DEFAULT_MODE)?,
            latency: r.int("latency", DEFAULT_LATENCY)?,
            passphrase: r.text_opt("passphrase")?,
            queue_duration: r.float("queue_duration", DEFAULT_QUEUE_DURATION)?,
            connect_timeout: r.float("connect_timeout", DEFAULT_CONNECT_TIMEOUT)?,
            write_timeout: r.float("write_timeout", DEFAULT_WRITE_TIMEOUT)?,
            retry_delay: r.float("retry_delay", DEFAULT_RETRY_DELAY)?,
        })
    }

    /// The URL's protocol, or why the URL cannot be streamed to.
    pub fn protocol(&self) -> Result<Protocol, Problem> {
        let bad = |m: String| Err(Problem::new("url", m));
        if self.url.is_empty() {
            return bad(
                "a stream needs a `url`: rtmp://host/app, rtmps://host/app or srt://host:port"
                    .into(),
            );
        }
        let Some((scheme, rest)) = self.url.split_once("://") else {
            return bad(format!(
                "`{}` is not a URL: use rtmp://host/app, rtmps://host/app or srt://host:port",
                self.url
            ));
        };
        let protocol = match scheme.to_ascii_lowercase().as_str() {
            "rtmp" => Protocol::Rtmp,
            "rtmps" => Protocol::Rtmps,
            "srt" => Protocol::Srt,
            other => {
                return bad(format!(
                    "cannot stream to `{other}://` URLs: use rtmp://, rtmps:// or srt:// (HLS is the `hls` kind)"
                ))
            }
        };
        let host = rest.split(['/', '?']).next().unwrap_or("");
        if protocol == Protocol::Srt
            && host
                .rsplit_once(':')
                .is_none_or(|(_, p)| p.parse::<u16>().is_err())
        {
            return bad(format!("`{}` has no port: srt://host:port", self.url));
        }
        if protocol != Protocol::Srt && (host.is_empty() || !rest.contains('/')) {
            return bad(format!(
                "`{}` has no host or application: rtmp://host/app",
                self.url
            ));
        }
        Ok(protocol)
    }

    /// Params that belong to one protocol only.
    fn check_protocol_params(&self, protocol: Protocol) -> Result<(), Problem> {
        let srt = protocol == Protocol::Srt;
        if srt && self.key.is_some() {
            return Err(Problem::new(
                "key",
                "`key` is the RTMP stream key: SRT has none (use `passphrase` for encryption)",
            ));
        }
        if !srt && self.passphrase.is_some() {
            return Err(Problem::new(
                "passphrase",
                "`passphrase` is SRT's: an RTMP URL takes `key` (use rtmps:// for encryption)",
            ));
        }
        if !srt && self.mode == SrtMode::Listener {
            return Err(Problem::new(
                "mode",
                "`mode: listener` is SRT's: an RTMP stream always connects to its server",
            ));
        }
        if let Some(p) = &self.passphrase {
            if !(10..=79).contains(&p.chars().count()) {
                return Err(Problem::new(
                    "passphrase",
                    "an SRT passphrase has 10 to 79 characters",
                ));
            }
        }
        Ok(())
    }
}

fn rules(p: &Params) -> Vec<Problem> {
    let s = match Settings::from_params(p) {
        Ok(s) => s,
        read => return problems(read),
    };
    problems(
        s.protocol()
            .and_then(|proto| s.check_protocol_params(proto)),
    )
}

/// The container a stream with these params sends.
fn format(p: &Params) -> Option<Format> {
    Some(Settings::from_params(p).ok()?.protocol().ok()?.format())
}

const PARAMS: &[ParamSpec] = &[
    ParamSpec::text("url", None, "where to stream: `rtmp://host[:port]/app` or `rtmps://...` (FLV: H.264 with AAC or MP3), or `srt://host:port` (MPEG-TS: H.264/H.265 with AAC, Opus or MP3). Required"),
    ParamSpec::text("key", None, "RTMP(S): the stream key, added to the URL's path; a secret: never shown in logs, reports or the control API").secret(),
    ParamSpec::choice("mode", SrtMode::NAMES, Some(DEFAULT_MODE.name()), "SRT: `caller` connects to the listener at the URL's host and port; `listener` waits on the URL's port (`srt://:9000`) for a caller, and waits again when it leaves"),
    ParamSpec::int("latency", (20, 10_000), Some(DEFAULT_LATENCY), "SRT: the receive buffer of the link, ms (what SRT waits to retransmit lost packets; 3-4 times the round trip)"),
    ParamSpec::text("passphrase", None, "SRT: encrypts the link (AES); 10 to 79 characters, the same on both sides; a secret like `key`").secret(),
    ParamSpec::float("queue_duration", (0.5, 60.0), Some(DEFAULT_QUEUE_DURATION), "seconds of media this output queues while its peer is slow or away; past it the queue is dropped (counted in `dropped`, `lost_s`) and the stream resumes at the next keyframe. The encoders and the recording never wait for a stream"),
    ParamSpec::float("connect_timeout", (0.5, 120.0), Some(DEFAULT_CONNECT_TIMEOUT), "seconds an attempt to connect may take"),
    ParamSpec::float("write_timeout", (0.5, 120.0), Some(DEFAULT_WRITE_TIMEOUT), "seconds a write may block (the peer stopped reading) before the connection is dropped and made again"),
    ParamSpec::float("retry_delay", (0.1, 60.0), Some(DEFAULT_RETRY_DELAY), "seconds before reconnecting after a failure; doubled at each failed attempt up to 15 s"),
];

pub const SPEC: KindSpec = KindSpec {
    kind: "stream",
    doc: "Streams encoded tracks live (RTMP/RTMPS push in FLV; SRT caller or listener in MPEG-TS), fed by the same encoders as the recording. The output has its own bounded queue: a slow, stalled or unreachable peer makes it drop (counted) and reconnect with a growing delay, resuming on a keyframe, and never slows the encoders, the recording or other outputs. The report gives the reconnections, the seconds of media not sent and the time down; the node fails at the end when the stream was down then, or never connected.",
    inputs: &[],
    any_inputs: Some(&[PortType::EncodedVideo, PortType::EncodedAudio]),
    outputs: &[],
    params: PARAMS,
    rules,
    host_checks: super::no_rules,
    value_rule: no_value_rule,
    inputs_rule: no_inputs_rule,
    format: Some(format),
    hosted: false,
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::testing::{assert_settings_parse, with};
    use serde_json::json;

    fn problem(params: &[(&str, serde_json::Value)]) -> Option<String> {
        let mut p = with(&SPEC, "url", json!("rtmp://localhost/live"));
        for (k, v) in params {
            p.0.insert(k.to_string(), v.clone());
        }
        rules(&p)
            .first()
            .map(|p| format!("{}: {}", p.param, p.message))
    }

    #[test]
    fn settings_parse() {
        assert_settings_parse(&SPEC, Settings::from_params);
    }

    #[test]
    fn urls_and_protocol_params() {
        assert_eq!(problem(&[]), None);
        assert_eq!(
            problem(&[
                ("url", json!("srt://10.0.0.2:9000")),
                ("passphrase", json!("0123456789"))
            ]),
            None
        );
        assert_eq!(
            problem(&[("url", json!("srt://:9000")), ("mode", json!("listener"))]),
            None
        );
        assert!(problem(&[("url", json!("http://x/y"))])
            .unwrap()
            .contains("cannot stream to `http://`"));
        assert!(problem(&[("url", json!("srt://host"))])
            .unwrap()
            .contains("has no port"));
        assert!(problem(&[("url", json!("rtmp://host"))])
            .unwrap()
            .contains("no host or application"));
        assert!(problem(&[("key", json!("k")), ("url", json!("srt://h:1"))])
            .unwrap()
            .starts_with("key:"));
        assert!(problem(&[("passphrase", json!("0123456789"))])
            .unwrap()
            .starts_with("passphrase:"));
        assert!(
            problem(&[("url", json!("srt://h:1")), ("passphrase", json!("short"))])
                .unwrap()
                .contains("10 to 79")
        );
        assert_eq!(
            format(&with(&SPEC, "url", json!("srt://h:1"))),
            Some(Format::MpegTs)
        );
    }
}
