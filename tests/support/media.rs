//! Helpers for the recording tests: run the repository's graphs, inspect what
//! they wrote with the external tools only (ffprobe, ffmpeg), read the MP4 box
//! layout, and serve files to a browser.

use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{RunResult, Scratch};

/// A graph shipped in the repository's `graphs/` directory.
pub fn repo_graph(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../graphs")
        .join(name)
}

/// Panics with the fix when ffmpeg or ffprobe is missing: every check here needs them.
pub fn require_ffmpeg() {
    for tool in ["ffmpeg", "ffprobe"] {
        let ok = Command::new(tool)
            .arg("-version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "`{tool}` is not installed: run scripts/setup (Debian package `ffmpeg`)"
        );
    }
}

/// Runs a command to completion; panics if it cannot start or fails.
pub fn run_tool(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Each track's name as an editor shows it: its `title` (MKV) or, failing
/// that, its handler name (MP4), in stream order.
pub fn track_names(path: &Path) -> Vec<String> {
    let out = run_tool(
        Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-show_entries",
                "stream_tags=title,handler_name",
            ])
            .args(["-of", "json"])
            .arg(path),
    );
    let json: serde_json::Value = serde_json::from_str(&out).expect("ffprobe's JSON");
    json["streams"]
        .as_array()
        .expect("streams")
        .iter()
        .map(|s| {
            let tags = &s["tags"];
            tags["title"]
                .as_str()
                .or(tags["handler_name"].as_str())
                .unwrap_or("")
                .to_string()
        })
        .collect()
}

/// What `ffmpeg -v error -i FILE -f null -` prints: empty for a file that
/// demuxes and decodes cleanly to its end.
pub fn decode_errors(path: &Path) -> String {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg runs");
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    if !out.status.success() && text.is_empty() {
        text = format!("ffmpeg exited with {}", out.status);
    }
    text
}

/// PSNR (dB, all planes) of each picture of `a` against the picture of `b`
/// with the same index, as ffmpeg's psnr filter computes it: a frame dropped
/// or repeated shifts every later pair onto different pictures.
pub fn psnr_by_index(a: &Path, b: &Path) -> Vec<f64> {
    psnr_stats(
        &[a, b],
        "[0:v]settb=1/30,setpts=N[a];[1:v]settb=1/30,setpts=N[b];[a][b]psnr=stats_file=-",
    )
}

/// The per-picture PSNR (dB, all planes) printed by the `psnr=stats_file=-`
/// filter that ends `lavfi`, a filter graph over `inputs` (`[0:v:1]` is the
/// second video stream of the first input, and so on).
pub fn psnr_stats(inputs: &[&Path], lavfi: &str) -> Vec<f64> {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-nostdin", "-v", "error"]);
    for input in inputs {
        cmd.arg("-i").arg(input);
    }
    let out = run_tool(cmd.args(["-lavfi", lavfi, "-f", "null", "-"]));
    out.lines()
        .filter_map(|l| {
            let v = l
                .split_whitespace()
                .find_map(|f| f.strip_prefix("psnr_avg:"))?;
            // Identical pictures print "inf".
            Some(v.parse().unwrap_or(f64::INFINITY))
        })
        .collect()
}

/// A video stream as ffprobe sees it, frames counted by decoding.
#[derive(Debug, Clone)]
pub struct VideoTrack {
    pub codec: String,
    pub width: u64,
    pub height: u64,
    /// `r_frame_rate` as (num, den).
    pub frame_rate: (u64, u64),
    /// Presentation times of the decoded frames, in seconds, in decode order.
    pub pts: Vec<f64>,
}

impl VideoTrack {
    pub fn frames(&self) -> u64 {
        self.pts.len() as u64
    }
    pub fn fps(&self) -> f64 {
        self.frame_rate.0 as f64 / self.frame_rate.1.max(1) as f64
    }
    pub fn start(&self) -> f64 {
        self.pts.iter().copied().fold(f64::INFINITY, f64::min)
    }
    /// Frames × frame period: the time the track shows pictures for.
    pub fn duration(&self) -> f64 {
        self.frames() as f64 / self.fps()
    }
    /// First picture to the end of the last one, seconds.
    pub fn span(&self) -> f64 {
        let last = self.pts.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        last - self.start() + 1.0 / self.fps()
    }
    /// Empty slots of the frame-rate grid between the first and last picture
    /// (negative: more pictures than slots).
    pub fn holes(&self) -> i64 {
        (self.span() * self.fps()).round() as i64 - self.frames() as i64
    }
    /// The largest distance of a pts from the frame-rate grid that starts at
    /// the first picture, seconds (containers round timestamps: Matroska to ms).
    pub fn off_grid(&self) -> f64 {
        let (start, period) = (self.start(), 1.0 / self.fps());
        self.pts
            .iter()
            .map(|t| {
                let slots = (t - start) / period;
                (slots - slots.round()).abs() * period
            })
            .fold(0.0, f64::max)
    }
}

/// An audio stream as ffprobe sees it, samples counted by decoding (priming
/// the container signals is already skipped by the decoder).
#[derive(Debug, Clone)]
pub struct AudioTrack {
    pub codec: String,
    pub sample_rate: u64,
    pub channels: u64,
    pub samples: u64,
    /// Presentation time of the first decoded frame, seconds.
    pub start: f64,
    /// Presentation time just after the last decoded sample, seconds.
    pub end: f64,
}

/// What ffprobe reports about a file.
#[derive(Debug, Clone)]
pub struct Probe {
    pub format_name: String,
    pub video: Vec<VideoTrack>,
    pub audio: Vec<AudioTrack>,
}

fn num(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn ratio(v: &Value) -> (u64, u64) {
    v.as_str()
        .and_then(|s| s.split_once('/'))
        .and_then(|(n, d)| Some((n.parse().ok()?, d.parse().ok()?)))
        .unwrap_or((0, 1))
}

/// Probes a file with one ffprobe run: streams, format, and every decoded frame.
pub fn probe(path: &Path) -> Result<Probe, String> {
    let json = bench::ffprobe_json(
        path,
        &[
            "-show_entries",
            "frame=media_type,stream_index,best_effort_timestamp_time,nb_samples",
        ],
    )
    .map_err(|e| e.to_string())?;
    let streams = json["streams"].as_array().cloned().unwrap_or_default();
    let frames = json["frames"].as_array().cloned().unwrap_or_default();
    let mut probe = Probe {
        format_name: json["format"]["format_name"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        video: Vec::new(),
        audio: Vec::new(),
    };
    for s in &streams {
        let index = s["index"].as_u64();
        let of_stream = || {
            frames
                .iter()
                .filter(move |f| f["stream_index"].as_u64() == index)
        };
        let codec = s["codec_name"].as_str().unwrap_or_default().to_string();
        match s["codec_type"].as_str() {
            Some("video") => probe.video.push(VideoTrack {
                codec,
                width: s["width"].as_u64().unwrap_or(0),
                height: s["height"].as_u64().unwrap_or(0),
                frame_rate: ratio(&s["r_frame_rate"]),
                pts: of_stream()
                    .filter_map(|f| num(&f["best_effort_timestamp_time"]))
                    .collect(),
            }),
            Some("audio") => {
                let sample_rate = num(&s["sample_rate"]).unwrap_or(0.0) as u64;
                let mut track = AudioTrack {
                    codec,
                    sample_rate,
                    channels: s["channels"].as_u64().unwrap_or(0),
                    samples: 0,
                    start: f64::INFINITY,
                    end: f64::NEG_INFINITY,
                };
                for f in of_stream() {
                    let n = f["nb_samples"].as_u64().unwrap_or(0);
                    track.samples += n;
                    if let Some(t) = num(&f["best_effort_timestamp_time"]) {
                        track.start = track.start.min(t);
                        track.end = track.end.max(t + n as f64 / sample_rate.max(1) as f64);
                    }
                }
                probe.audio.push(track);
            }
            _ => {}
        }
    }
    Ok(probe)
}

/// The top-level boxes of an ISO-BMFF (MP4) file: (type, size in bytes).
/// Errors when a box header runs past the end of the file.
pub fn top_level_boxes(path: &Path) -> std::io::Result<Vec<(String, u64)>> {
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    let mut boxes = Vec::new();
    let mut pos = 0u64;
    while pos < len {
        file.seek(SeekFrom::Start(pos))?;
        let mut header = [0u8; 8];
        file.read_exact(&mut header)?;
        let kind = String::from_utf8_lossy(&header[4..]).into_owned();
        let size = match u32::from_be_bytes(header[..4].try_into().unwrap()) {
            // The size does not fit 32 bits: a 64-bit size follows the type.
            1 => {
                let mut large = [0u8; 8];
                file.read_exact(&mut large)?;
                u64::from_be_bytes(large)
            }
            // The last box, up to the end of the file.
            0 => len - pos,
            n => n as u64,
        };
        if size < 8 || pos + size > len {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("box `{kind}` at {pos} claims {size} bytes of a {len}-byte file"),
            ));
        }
        boxes.push((kind, size));
        pos += size;
    }
    Ok(boxes)
}

/// An MP4 is "faststart" when its index (moov) comes before the media (mdat),
/// so a player can start before it has the whole file.
pub fn faststart_problem(path: &Path) -> Option<String> {
    let boxes = match top_level_boxes(path) {
        Ok(b) => b,
        Err(e) => return Some(format!("{}: {e}", path.display())),
    };
    let names: Vec<&str> = boxes.iter().map(|(k, _)| k.as_str()).collect();
    let at = |k: &str| names.iter().position(|n| *n == k);
    match (names.first(), at("moov"), at("mdat")) {
        (Some(&"ftyp"), Some(moov), Some(mdat)) if moov < mdat => None,
        _ => Some(format!(
            "{}: top-level boxes {names:?}: want ftyp first and moov before mdat",
            path.display()
        )),
    }
}

/// [`run_with_limit`] for a run that must end by itself within `limit` and
/// succeed; `ending` says what should have ended it, for the failure message.
pub fn run_to_end(
    s: &Scratch,
    graph: &Path,
    args: &[&str],
    limit: Duration,
    ending: &str,
) -> RunResult {
    let (r, hung) = run_with_limit(s, graph, args, limit);
    assert!(
        !hung,
        "the graph did not stop at {ending}; stderr:\n{}",
        r.stderr
    );
    r.assert_ok();
    r
}

/// `runtime run GRAPH ARGS` in the scratch directory like [`Scratch::run`],
/// but a graph that has not ended after `limit` is stopped with SIGINT (then
/// killed) and reported as hung, so a broken end-of-stream fails the test
/// instead of hanging it. Returns the result and whether it had to be stopped.
pub fn run_with_limit(
    s: &Scratch,
    graph: &Path,
    args: &[&str],
    limit: Duration,
) -> (RunResult, bool) {
    let report = s.path("report.json");
    let mut child = s
        .runtime_run(graph, args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runtime starts");
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            buf
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + limit;
    let mut hung = false;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for runtime") {
            break status;
        }
        let now = Instant::now();
        if now >= deadline + Duration::from_secs(30) {
            // SIGINT did not end it within the runtime's grace: give up on it.
            let _ = child.kill();
        } else if now >= deadline && !hung {
            hung = true;
            // SAFETY: signalling our own child, not reaped yet (try_wait said so).
            unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = std::process::Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    };
    (RunResult::new(output, &report), hung)
}

/// A tiny HTTP/1.1 server on 127.0.0.1 for one browser session: serves files
/// (with single `Range` requests, as media elements use them), takes the
/// page's result at `/result?<text>`, and answers `/hold` only once the result
/// came (or after `hold_limit`): a page that loads `/hold` keeps its load
/// event, and so Chromium's `--dump-dom`, waiting until it has reported.
pub struct PageServer {
    pub port: u16,
    state: Arc<(Mutex<Option<String>>, Condvar)>,
}

impl PageServer {
    /// Serves `files` (URL path → (content type, file)).
    pub fn start(files: Vec<(String, &'static str, PathBuf)>, hold_limit: Duration) -> PageServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().unwrap().port();
        let state: Arc<(Mutex<Option<String>>, Condvar)> = Arc::default();
        let files = Arc::new(files);
        let st = state.clone();
        // The thread ends with the test process; each connection gets its own
        // thread because `/hold` blocks.
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let files = files.clone();
                let st = st.clone();
                std::thread::spawn(move || {
                    let _ = serve(conn, &files, &st, hold_limit);
                });
            }
        });
        PageServer { port, state }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// What the page reported, if it did.
    pub fn result(&self) -> Option<String> {
        self.state.0.lock().unwrap().clone()
    }
}

fn serve(
    conn: TcpStream,
    files: &[(String, &'static str, PathBuf)],
    state: &(Mutex<Option<String>>, Condvar),
    hold_limit: Duration,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut conn = conn;
    let mut request = String::new();
    reader.read_line(&mut request)?;
    let target = request.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut range = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.trim().eq_ignore_ascii_case("range") {
                range = value.trim().strip_prefix("bytes=").map(str::to_string);
            }
        }
    }
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let respond = |conn: &mut TcpStream, status: &str, headers: &str, body: &[u8]| {
        write!(
            conn,
            "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
            body.len()
        )?;
        conn.write_all(body)
    };
    match path {
        "/result" => {
            *state.0.lock().unwrap() = Some(percent_decode(query));
            state.1.notify_all();
            respond(&mut conn, "204 No Content", "", b"")
        }
        "/hold" => {
            let deadline = Instant::now() + hold_limit;
            let mut result = state.0.lock().unwrap();
            while result.is_none() && Instant::now() < deadline {
                result = state
                    .1
                    .wait_timeout(result, deadline - Instant::now())
                    .unwrap()
                    .0;
            }
            drop(result);
            respond(&mut conn, "204 No Content", "", b"")
        }
        _ => match files.iter().find(|(p, _, _)| p == path) {
            Some((_, content_type, file)) => {
                let data = std::fs::read(file)?;
                let len = data.len();
                let ct = format!("Content-Type: {content_type}\r\nAccept-Ranges: bytes\r\n");
                match range.as_deref().and_then(|r| parse_range(r, len)) {
                    Some((a, b)) => respond(
                        &mut conn,
                        "206 Partial Content",
                        &format!("{ct}Content-Range: bytes {a}-{b}/{len}\r\n"),
                        &data[a..=b],
                    ),
                    None => respond(&mut conn, "200 OK", &ct, &data),
                }
            }
            None => respond(&mut conn, "404 Not Found", "", b""),
        },
    }
}

/// A single `a-b`, `a-` or `-n` byte range within `len` bytes, inclusive.
fn parse_range(spec: &str, len: usize) -> Option<(usize, usize)> {
    if len == 0 || spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (a, b) = match (a.trim(), b.trim()) {
        ("", n) => {
            let n: usize = n.parse().ok()?;
            (len.saturating_sub(n), len - 1)
        }
        (a, "") => (a.parse().ok()?, len - 1),
        (a, b) => (a.parse().ok()?, b.parse::<usize>().ok()?.min(len - 1)),
    };
    (a <= b && a < len).then_some((a, b))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = match bytes.get(i..i + 3) {
            Some([b'%', h, l]) => hex(*h).zip(hex(*l)).map(|(h, l)| h << 4 | l),
            _ => None,
        };
        match escaped {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("0-", 10), Some((0, 9)));
        assert_eq!(parse_range("2-5", 10), Some((2, 5)));
        assert_eq!(parse_range("2-50", 10), Some((2, 9)));
        assert_eq!(parse_range("-3", 10), Some((7, 9)));
        assert_eq!(parse_range("12-", 10), None);
        assert_eq!(parse_range("0-1,4-5", 10), None);
    }

    #[test]
    fn percent() {
        assert_eq!(percent_decode("%7B%22a%22%3A1%7D"), r#"{"a":1}"#);
        assert_eq!(percent_decode("a%2"), "a%2");
    }
}
