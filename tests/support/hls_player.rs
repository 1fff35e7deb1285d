//! HLS played in a real browser: a directory served by nginx
//! ([`HttpServer`]) and a playlist in it played with hls.js in headless
//! Chromium by tests/browser/hls-play.mjs (playwright-core; Debian's
//! Chromium, no browser download), which reports what the video element
//! saw. Needs Node.js, Chromium, nginx and tests/browser/node_modules
//! (`scripts/setup --test`).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::servers::{skip, tool_missing, HttpServer};

/// What the browser saw playing a playlist.
#[derive(Debug, Clone)]
pub struct HlsPlayback {
    /// The video element fired `ended`.
    pub ended: bool,
    /// `ended`, or the playlist had ended (ENDLIST) and playback stopped
    /// within 0.5 s of its duration.
    pub reached_end: bool,
    /// The media's duration as the element has it, s (NaN if unknown,
    /// infinite while live).
    pub duration: f64,
    /// Where playback got to, s.
    pub current_time: f64,
    /// `getVideoPlaybackQuality().totalVideoFrames`: frames decoded.
    pub total_frames: u64,
    pub dropped_frames: u64,
    /// The playlist was live (no ENDLIST) when last loaded.
    pub live: bool,
    /// Every hls.js `ERROR` event: `{type, details, fatal, reason}`.
    pub errors: Vec<Value>,
    /// Playback stopped moving before the end (the script gave up).
    pub stalled: bool,
    /// The script's whole report (also video size, fragments buffered,
    /// the page's script errors, hls.js's version).
    pub json: Value,
}

impl HlsPlayback {
    /// The hls.js errors that stopped playback.
    pub fn fatal_errors(&self) -> Vec<&Value> {
        self.errors.iter().filter(|e| e["fatal"] == true).collect()
    }

    fn from_json(json: Value) -> HlsPlayback {
        let f = |k: &str| json[k].as_f64().unwrap_or(f64::NAN);
        let u = |k: &str| json[k].as_u64().unwrap_or(0);
        let b = |k: &str| json[k].as_bool().unwrap_or(false);
        HlsPlayback {
            ended: b("ended"),
            reached_end: b("reachedEnd"),
            duration: f("duration"),
            current_time: f("currentTime"),
            total_frames: u("totalVideoFrames"),
            dropped_frames: u("droppedVideoFrames"),
            live: b("live"),
            errors: json["errors"].as_array().cloned().unwrap_or_default(),
            stalled: b("stalled"),
            json,
        }
    }
}

/// The browser the script drives (Debian's), unless `HLS_BROWSER` names another.
fn browser() -> PathBuf {
    std::env::var_os("HLS_BROWSER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("browser")
}

/// Why HLS cannot be played in a browser here, if it cannot.
pub fn unavailable() -> Option<String> {
    if let Some(why) = tool_missing("node", "--version", "nodejs") {
        return Some(why);
    }
    if !browser().exists() {
        let b = browser();
        return Some(format!(
            "no browser at {}: run scripts/setup --test",
            b.display()
        ));
    }
    for module in ["playwright-core", "hls.js"] {
        if !browser_dir().join("node_modules").join(module).is_dir() {
            return Some(format!(
                "tests/browser/node_modules has no {module}: run scripts/setup --test"
            ));
        }
    }
    HttpServer::unavailable()
}

/// Serves `dir` over HTTP and plays `playlist` (a path in `dir`) to its end
/// in headless Chromium; `None` (having said SKIPPED) when a tool is
/// missing. `extra` goes to the script (e.g. `["--live-seconds", "3"]`).
/// Panics with the script's output when it could not report.
pub fn play_hls_in_browser(dir: &Path, playlist: &str, extra: &[&str]) -> Option<HlsPlayback> {
    if let Some(why) = unavailable() {
        skip(&why);
        return None;
    }
    let server = HttpServer::start(dir)?;
    let out = Command::new("node")
        .arg(browser_dir().join("hls-play.mjs"))
        .arg("--url")
        .arg(server.url(playlist))
        .arg("--browser")
        .arg(browser())
        .args(extra)
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let json: Value = stdout
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("no JSON from hls-play.mjs:\n{stdout}\n{stderr}"));
    assert!(
        out.status.success(),
        "hls-play.mjs failed: {json}\n{stderr}\nnginx:\n{}",
        server.log()
    );
    Some(HlsPlayback::from_json(json))
}
