//! The server end of a streaming benchmark: the ffmpeg CLI listening for one
//! RTMP publisher and keeping what it receives in an FLV file, so a bench
//! measures a stream that really left the process and crossed a socket.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};

pub struct RtmpPeer {
    child: Child,
    /// rtmp://127.0.0.1:PORT/live (the key goes after it).
    pub url: String,
    pub file: PathBuf,
}

impl RtmpPeer {
    /// Listens on a free loopback port for a publisher of `live/KEY`.
    pub fn start(dir: &Path, key: &str) -> Result<RtmpPeer> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let url = format!("rtmp://127.0.0.1:{port}/live");
        let file = dir.join("received.flv");
        let child = Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-listen", "1", "-i"])
            .arg(format!("{url}/{key}"))
            .args(["-c", "copy", "-y"])
            .arg(&file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting ffmpeg as the RTMP server")?;
        // ffmpeg takes one connection only: no probe may connect first.
        for _ in 0..250 {
            if listening(port) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(RtmpPeer { child, url, file })
    }

    /// Waits for the publisher's end to close the file; (seconds, video frames) received.
    pub fn finish(mut self) -> Result<(f64, u64)> {
        for _ in 0..250 {
            if self.child.try_wait()?.is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let out = Command::new("ffprobe")
            .args(["-v", "error", "-select_streams", "v:0", "-count_packets"])
            .args([
                "-show_entries",
                "stream=nb_read_packets:format=duration",
                "-of",
                "csv=p=0",
            ])
            .arg(&self.file)
            .output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let mut lines = text.lines();
        let frames = lines
            .next()
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or(0);
        let seconds = lines
            .next()
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or(0.0);
        Ok((seconds, frames))
    }
}

/// Whether a socket listens on TCP `port` (from /proc/net/tcp, without connecting).
fn listening(port: u16) -> bool {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let local = format!(":{port:04X}");
    table.lines().skip(1).any(|l| {
        let cols: Vec<&str> = l.split_whitespace().collect();
        cols.len() > 3 && cols[1].ends_with(&local) && cols[3] == "0A"
    })
}

impl Drop for RtmpPeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
