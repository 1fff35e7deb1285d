//! Real servers and peers for the streaming tests: an nginx RTMP server
//! that records every publish, an nginx HTTP server (HLS to a browser), and
//! SRT listener and caller peers (srt-live-transmit). Each runs as one child
//! process on free ports on 127.0.0.1, with its config and logs in a
//! directory of the test, and is killed when dropped: nothing depends on, or
//! collides with, a system nginx.
//!
//! `scripts/setup --test` installs them (Debian: nginx, libnginx-mod-rtmp,
//! libnginx-mod-stream, openssl, srt-tools). Where one is missing, `start`
//! prints `SKIPPED: <why>` and returns `None`, and the test returns: a
//! machine without them still passes, except in CI (`CI=true`), where a
//! missing tool is a failure since CI runs the setup.

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a server may take to accept connections: generous, a loaded
/// 2-core machine is slow; a bound against a hang, not a measure.
const READY_WAIT: Duration = Duration::from_secs(30);

/// Says why a test cannot run here and lets it return: `SKIPPED: <why>` on
/// stderr; in CI (`CI=true`, where scripts/setup installed everything) a
/// panic instead, so a broken setup does not pass silently.
pub fn skip(why: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{why} (CI must run this test: scripts/setup --test installs it)");
    }
    eprintln!("SKIPPED: {why}");
}

/// `None` when `tool` runs (`tool ARG` exits, whatever its status: some
/// print their version with a failure code); else why not, naming `package`.
pub fn tool_missing(tool: &str, arg: &str, package: &str) -> Option<String> {
    let ran = Command::new(tool)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    ran.err().map(|e| {
        format!("`{tool}` cannot run ({e}): run scripts/setup --test (Debian package {package})")
    })
}

/// A TCP port on 127.0.0.1 that was free a moment ago (the kernel's pick).
/// Another process may take it before ours binds: starts retry.
pub fn free_tcp_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().unwrap().port()
}

/// A UDP port on 127.0.0.1 that was free a moment ago (SRT runs over UDP).
pub fn free_udp_port() -> u16 {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind udp 127.0.0.1:0");
    s.local_addr().unwrap().port()
}

/// Sends `signal` to a child of this test.
fn signal(child: &Child, signal: i32) {
    // SAFETY: signalling our own child, which the caller has not reaped.
    unsafe { libc::kill(child.id() as i32, signal) };
}

/// Kills and reaps a child (a stopped one too: SIGKILL ends it).
fn kill_child(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Whether something accepts TCP connections on 127.0.0.1:`port`.
fn accepts(port: u16) -> bool {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

/// Where Debian (and the distributions that share its layout) puts nginx's
/// dynamic modules; the first that has `file`.
fn nginx_module(file: &str) -> Option<PathBuf> {
    ["/usr/lib/nginx/modules", "/usr/lib64/nginx/modules"]
        .iter()
        .map(|d| Path::new(d).join(file))
        .find(|p| p.exists())
}

/// nginx from PATH, else where Debian installs it: /usr/sbin, which a
/// user's PATH often lacks.
fn nginx_bin() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let on_path = std::env::split_paths(&path)
        .map(|d| d.join("nginx"))
        .find(|p| p.is_file());
    on_path.unwrap_or_else(|| PathBuf::from("/usr/sbin/nginx"))
}

/// Why nginx cannot run here with `module` (e.g. ngx_rtmp_module.so), if it cannot.
fn nginx_missing(module: Option<&str>) -> Option<String> {
    if let Some(why) = tool_missing(&nginx_bin().to_string_lossy(), "-v", "nginx") {
        return Some(why);
    }
    let module = module?;
    match nginx_module(module) {
        Some(_) => None,
        None => Some(format!(
            "nginx has no {module}: run scripts/setup --test (Debian package libnginx-mod-rtmp)"
        )),
    }
}

/// One nginx process in the foreground (`daemon off; master_process off;`:
/// a single process, so signalling its pid freezes or kills the whole
/// server) with its config, pid file, logs and temporary files in `dir`.
struct Nginx {
    dir: PathBuf,
    conf: PathBuf,
    ports: Vec<u16>,
    child: Option<Child>,
}

impl Nginx {
    /// Starts nginx with the dynamic `modules` (e.g. ngx_rtmp_module.so)
    /// and the config `make_conf(ports)` on `n_ports` free TCP ports, and
    /// waits until every one accepts. A port taken by another process
    /// between the pick and nginx's bind makes it try again with new ones.
    fn start(
        dir: &Path,
        modules: &[&str],
        n_ports: usize,
        make_conf: impl Fn(&[u16]) -> String,
    ) -> Nginx {
        std::fs::create_dir_all(dir.join("nginx-temp")).expect("nginx dir");
        let mut last_error = String::new();
        for _ in 0..5 {
            let ports: Vec<u16> = (0..n_ports).map(|_| free_tcp_port()).collect();
            let conf = dir.join("nginx.conf");
            let text = format!("{}{}", Nginx::core_conf(dir, modules), make_conf(&ports));
            std::fs::write(&conf, text).expect("write nginx.conf");
            let mut nginx = Nginx {
                dir: dir.to_path_buf(),
                conf,
                ports,
                child: None,
            };
            match nginx.spawn() {
                Ok(()) => return nginx,
                Err(e) if e.contains("Address already in use") => last_error = e,
                Err(e) => panic!("nginx did not start: {e}"),
            }
        }
        panic!("nginx found no free port: {last_error}");
    }

    /// The top of every config: the modules (which must come first), one
    /// foreground process, everything it writes inside `dir` (not the
    /// package's /run, /var/log, /var/lib).
    fn core_conf(dir: &Path, modules: &[&str]) -> String {
        let d = dir.display();
        let load: String = modules
            .iter()
            .map(|m| {
                let path = nginx_module(m).unwrap_or_else(|| panic!("no nginx module {m}"));
                format!("load_module {};\n", path.display())
            })
            .collect();
        format!(
            "{load}daemon off;\nmaster_process off;\npid {d}/nginx.pid;\n\
             error_log {d}/nginx-error.log info;\nevents {{ worker_connections 256; }}\n"
        )
    }

    /// Spawns nginx on the config and waits until its ports accept; the
    /// error log's new lines if it exits first.
    fn spawn(&mut self) -> Result<(), String> {
        let log = self.dir.join("nginx-error.log");
        let logged_before = std::fs::read_to_string(&log).unwrap_or_default().len();
        let child = Command::new(nginx_bin())
            .arg("-p")
            .arg(self.dir.join("nginx-temp"))
            // -e: not even the startup may write the package's error log.
            .arg("-e")
            .arg(&log)
            .arg("-c")
            .arg(&self.conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("nginx: {e}"))?;
        let child = self.child.insert(child);
        let deadline = Instant::now() + READY_WAIT;
        while !self.ports.iter().all(|p| accepts(*p)) {
            let exited = child.try_wait().ok().flatten();
            if exited.is_some() || Instant::now() > deadline {
                kill_child(child);
                self.child = None;
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                return Err(format!(
                    "{exited:?}: {}",
                    &text[logged_before.min(text.len())..]
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    fn child(&self) -> &Child {
        self.child.as_ref().expect("nginx is running (not killed)")
    }

    /// SIGKILL, and reaped: the ports are closed when this returns.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_child(&mut child);
        }
    }

    /// Kills the running nginx (if any) and starts it again on the same ports.
    fn restart(&mut self) {
        self.kill();
        self.spawn()
            .unwrap_or_else(|e| panic!("nginx did not restart: {e}"));
    }

    fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("nginx-error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.kill();
    }
}

/// An nginx RTMP server (libnginx-mod-rtmp) on 127.0.0.1 whose application
/// `live` records every publish to its own FLV file in `dir/recordings`,
/// and, where nginx's stream module and openssl are installed, an RTMPS
/// port in front of it (TLS with a self-signed certificate, ended by nginx
/// and passed on to the RTMP port).
pub struct RtmpServer {
    nginx: Nginx,
    recordings: PathBuf,
    tls: bool,
}

impl RtmpServer {
    /// Why the server cannot run here, if it cannot.
    pub fn unavailable() -> Option<String> {
        nginx_missing(Some("ngx_rtmp_module.so"))
    }

    /// Starts the server with its files in `dir` and waits until it
    /// accepts connections; `None` (having said SKIPPED) when nginx or its
    /// RTMP module is not installed.
    pub fn start(dir: &Path) -> Option<RtmpServer> {
        if let Some(why) = RtmpServer::unavailable() {
            skip(&why);
            return None;
        }
        let recordings = dir.join("recordings");
        std::fs::create_dir_all(&recordings).expect("recordings dir");
        let tls = tls_front(dir);
        let mut modules = vec!["ngx_rtmp_module.so"];
        if tls {
            modules.push("ngx_stream_module.so");
        }
        let nginx = Nginx::start(dir, &modules, 1 + tls as usize, |ports| {
            let mut conf = rtmp_conf(dir, ports[0], &recordings);
            if tls {
                conf += &rtmps_conf(dir, ports[1], ports[0]);
            }
            conf
        });
        Some(RtmpServer {
            nginx,
            recordings,
            tls,
        })
    }

    /// `rtmp://127.0.0.1:PORT/live`: a publisher adds `/<stream key>`.
    pub fn url(&self) -> String {
        format!("rtmp://127.0.0.1:{}/live", self.nginx.ports[0])
    }

    /// `rtmps://127.0.0.1:PORT/live` (the same application over TLS, with a
    /// self-signed certificate: a client must not verify it), or `None`
    /// where nginx's stream module or openssl is missing.
    pub fn rtmps_url(&self) -> Option<String> {
        let port = self.nginx.ports.get(1).filter(|_| self.tls)?;
        Some(format!("rtmps://127.0.0.1:{port}/live"))
    }

    /// The FLV recordings so far, one per publish, oldest first. nginx names
    /// each `<stream key>-<unix time of the publish>.flv`: a second publish
    /// of the same key within the same second would reuse the first's name.
    pub fn recordings(&self) -> Vec<PathBuf> {
        let mut files: Vec<(u64, PathBuf)> = std::fs::read_dir(&self.recordings)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "flv"))
            .map(|p| (publish_time(&p), p))
            .collect();
        files.sort();
        files.into_iter().map(|(_, p)| p).collect()
    }

    /// How many publishes the server accepted (its log's `publish:`
    /// lines, which survive a restart): with [`RtmpServer::recordings`],
    /// whether a reconnection within the publish's second reused a name.
    pub fn publishes(&self) -> usize {
        self.log().matches(" publish: name=").count()
    }

    /// The server's pid (one process: it is the whole server).
    pub fn pid(&self) -> u32 {
        self.nginx.child().id()
    }

    /// SIGSTOP: the server stops reading and answering, its connections
    /// stay open (a hung server, as a publisher sees one). Returns once the
    /// process is stopped (the signal is delivered asynchronously).
    pub fn freeze(&self) {
        signal(self.nginx.child(), libc::SIGSTOP);
        self.wait_frozen(true);
    }

    fn wait_frozen(&self, frozen: bool) {
        let deadline = Instant::now() + READY_WAIT;
        while self.frozen() != frozen {
            assert!(Instant::now() < deadline, "nginx frozen is not {frozen}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Whether the process is stopped (state `T` in /proc): frozen.
    pub fn frozen(&self) -> bool {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid()));
        // The state follows the command's closing parenthesis.
        let state = |s: &str| s.rsplit_once(") ").map(|(_, r)| r.starts_with('T'));
        stat.ok().and_then(|s| state(&s)).unwrap_or(false)
    }

    /// SIGCONT after [`RtmpServer::freeze`]; returns once it runs again.
    pub fn resume(&self) {
        signal(self.nginx.child(), libc::SIGCONT);
        self.wait_frozen(false);
    }

    /// SIGKILL: every connection is reset, the port refuses until
    /// [`RtmpServer::restart`]. The recording in progress keeps what was written.
    pub fn kill(&mut self) {
        self.nginx.kill();
    }

    /// Kills the server if it runs and starts it again on the same ports;
    /// returns once it accepts.
    pub fn restart(&mut self) {
        self.nginx.restart();
    }

    /// nginx's error log (at `info`: each connect, publish and disconnect).
    pub fn log(&self) -> String {
        self.nginx.error_log()
    }
}

/// The `unix time` nginx puts at the end of a recording's name (0 if none).
fn publish_time(path: &Path) -> u64 {
    let stem = path.file_stem().unwrap_or_default().to_string_lossy();
    let time = stem.rsplit('-').next().unwrap_or_default();
    time.parse().unwrap_or(0)
}

/// The RTMP part of the config: `record all` writes audio and video of
/// every publish; `record_unique` gives each publish its own file, so a
/// reconnection makes a new one instead of overwriting the last. Its
/// access log is set because the module's default is the package's
/// /var/log/nginx, which only root may open.
fn rtmp_conf(dir: &Path, port: u16, recordings: &Path) -> String {
    format!(
        "rtmp {{\n  access_log {}/nginx-rtmp-access.log;\n  server {{\n    \
         listen 127.0.0.1:{port};\n    \
         application live {{\n      live on;\n      record all;\n      \
         record_path {};\n      record_unique on;\n    }}\n  }}\n}}\n",
        dir.display(),
        recordings.display()
    )
}

/// A TLS front for RTMPS: nginx's stream module ends TLS and passes the
/// bytes to the RTMP port (nginx-rtmp has no TLS of its own).
fn rtmps_conf(dir: &Path, port: u16, rtmp_port: u16) -> String {
    let d = dir.display();
    format!(
        "stream {{\n  server {{\n    listen 127.0.0.1:{port} ssl;\n    \
         ssl_certificate {d}/tls.crt;\n    ssl_certificate_key {d}/tls.key;\n    \
         proxy_pass 127.0.0.1:{rtmp_port};\n  }}\n}}\n"
    )
}

/// Whether an RTMPS front can run: nginx's stream module is installed and
/// openssl made a self-signed certificate for 127.0.0.1 in `dir`.
fn tls_front(dir: &Path) -> bool {
    if nginx_module("ngx_stream_module.so").is_none() {
        return false;
    }
    let made = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec"])
        .args(["-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"])
        .args(["-days", "2", "-subj", "/CN=127.0.0.1"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1", "-keyout"])
        .arg(dir.join("tls.key"))
        .arg("-out")
        .arg(dir.join("tls.crt"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    made.is_ok_and(|s| s.success())
}

/// An nginx HTTP server on 127.0.0.1 serving a directory, with the media
/// types HLS players expect and no caching (a live playlist changes).
pub struct HttpServer {
    nginx: Nginx,
    /// nginx's own files, kept out of the served directory.
    _files: tempfile::TempDir,
}

impl HttpServer {
    /// Why the server cannot run here, if it cannot.
    pub fn unavailable() -> Option<String> {
        nginx_missing(None)
    }

    /// Serves `root` (read at each request: files written later are
    /// served too); `None` (having said SKIPPED) when nginx is missing.
    pub fn start(root: &Path) -> Option<HttpServer> {
        if let Some(why) = HttpServer::unavailable() {
            skip(&why);
            return None;
        }
        let files = tempfile::Builder::new()
            .prefix("nginx-http-")
            .tempdir()
            .expect("tempdir");
        let root = root.canonicalize().expect("the served directory exists");
        let nginx = Nginx::start(files.path(), &[], 1, |ports| {
            http_conf(files.path(), ports[0], &root)
        });
        Some(HttpServer {
            nginx,
            _files: files,
        })
    }

    /// `http://127.0.0.1:PORT/<path>`: `path` relative to the served directory.
    pub fn url(&self, path: &str) -> String {
        let path = path.trim_start_matches('/');
        format!("http://127.0.0.1:{}/{path}", self.nginx.ports[0])
    }

    /// nginx's error log (a 404 says which file it looked for).
    pub fn log(&self) -> String {
        self.nginx.error_log()
    }
}

/// The HTTP part of the config. The temp paths are set because nginx
/// otherwise creates the package's (/var/lib/nginx) at start.
fn http_conf(dir: &Path, port: u16, root: &Path) -> String {
    let d = dir.display();
    let temp: String = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]
        .iter()
        .map(|t| format!("  {t}_temp_path {d}/nginx-temp/{t};\n"))
        .collect();
    format!(
        "http {{\n{temp}  access_log {d}/nginx-access.log;\n  types {{\n    \
         application/vnd.apple.mpegurl m3u8;\n    video/mp2t ts;\n    \
         video/iso.segment m4s;\n    video/mp4 mp4 m4v;\n    audio/mp4 m4a;\n    \
         text/html html;\n    text/javascript js mjs;\n    application/json json;\n  }}\n  \
         default_type application/octet-stream;\n  server {{\n    \
         listen 127.0.0.1:{port};\n    root {};\n    \
         add_header Cache-Control no-cache;\n  }}\n}}\n",
        root.display()
    )
}

/// One srt-live-transmit process writing what it receives to a file, its
/// stderr (connections, rejections) collected.
///
/// srt-live-transmit rather than FFmpeg: it writes the received bytes as
/// they are, with no demuxing and remuxing that could drop, reorder or
/// retime anything, so the file is exactly what the peer sent; a listener
/// goes back to listening when a caller disconnects (auto-reconnect), so a
/// reconnecting node's streams land one after another in the same file
/// (FFmpeg's listener ends at the first disconnect); SIGINT ends it
/// cleanly; and it is an SRT peer that is not FFmpeg.
struct SrtPeer {
    child: Option<Child>,
    output: PathBuf,
    log: Arc<Mutex<String>>,
}

impl SrtPeer {
    /// Why srt-live-transmit cannot run here, if it cannot.
    fn unavailable() -> Option<String> {
        tool_missing("srt-live-transmit", "-version", "srt-tools")
    }

    /// `srt-live-transmit -v URL file://con > output`.
    fn spawn(url: &str, output: &Path) -> SrtPeer {
        let file =
            std::fs::File::create(output).unwrap_or_else(|e| panic!("{}: {e}", output.display()));
        let mut child = Command::new("srt-live-transmit")
            // -v: say when it listens, accepts, connects (stderr, as the
            // data goes to stdout).
            .args(["-v", url, "file://con"])
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("srt-live-transmit: {e}"));
        let log: Arc<Mutex<String>> = Arc::default();
        let (stderr, into) = (child.stderr.take().unwrap(), log.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = into.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        SrtPeer {
            child: Some(child),
            output: output.to_path_buf(),
            log,
        }
    }

    /// Waits until its stderr has `text`; panics (with the log) if it
    /// exits first or after [`READY_WAIT`].
    fn wait_for(&mut self, text: &str) {
        let deadline = Instant::now() + READY_WAIT;
        while !self.log().contains(text) {
            let child = self.child.as_mut().expect("running");
            let exited = child.try_wait().ok().flatten();
            if exited.is_some() || Instant::now() > deadline {
                panic!(
                    "srt-live-transmit did not say `{text}` ({exited:?}):\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// SIGINT, and waits for it to end: it closes the connection and
    /// flushes the file. Killed if it has not ended after 10 s.
    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        signal(&child, libc::SIGINT);
        let deadline = Instant::now() + Duration::from_secs(10);
        while child.try_wait().ok().flatten().is_none() {
            if Instant::now() > deadline {
                kill_child(&mut child);
                panic!("srt-live-transmit did not end on SIGINT:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for SrtPeer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_child(&mut child);
        }
    }
}

/// An SRT listener on a free UDP port of 127.0.0.1 that writes the MPEG-TS
/// it receives to `dir/srt-PORT.ts`, every connection's after the last's.
pub struct SrtListener {
    peer: SrtPeer,
    port: u16,
}

impl SrtListener {
    /// Why it cannot run here, if it cannot.
    pub fn unavailable() -> Option<String> {
        SrtPeer::unavailable()
    }

    /// Listens (with AES encryption when `passphrase` is given: 10 to 79
    /// characters; a caller without it, or with another, is refused) and
    /// returns once it does; `None` (having said SKIPPED) when
    /// srt-live-transmit is not installed.
    pub fn start(dir: &Path, passphrase: Option<&str>) -> Option<SrtListener> {
        if let Some(why) = SrtListener::unavailable() {
            skip(&why);
            return None;
        }
        let port = free_udp_port();
        let mut url = format!("srt://127.0.0.1:{port}?mode=listener");
        if let Some(p) = passphrase {
            url += &format!("&passphrase={p}");
        }
        let mut peer = SrtPeer::spawn(&url, &dir.join(format!("srt-{port}.ts")));
        peer.wait_for(" listen...");
        Some(SrtListener { peer, port })
    }

    /// `srt://127.0.0.1:PORT`: a caller adds `?mode=caller` (FFmpeg's
    /// default) and `&passphrase=...`.
    pub fn url(&self) -> String {
        format!("srt://127.0.0.1:{}", self.port)
    }

    /// The file the received stream is written to: whole once
    /// [`stop`](Self::stop) returned (until then its last few kilobytes may
    /// still be in the process's output buffer).
    pub fn output(&self) -> &Path {
        &self.peer.output
    }

    /// How many callers it accepted so far.
    pub fn connections(&self) -> usize {
        self.log().matches("Accepted SRT source connection").count()
    }

    /// Its stderr: connections, and why it refused a caller
    /// (`Incorrect passphrase`, `Password required or unexpected`).
    pub fn log(&self) -> String {
        self.peer.log()
    }

    /// Ends it cleanly (SIGINT), with everything received in the file.
    pub fn stop(&mut self) {
        self.peer.stop();
    }
}

/// An SRT caller that connects to a listener (e.g. a node listening) and
/// writes the MPEG-TS it receives to a file. Until the listener is up, and
/// after a disconnect, it keeps calling (auto-reconnect).
pub struct SrtCaller {
    peer: SrtPeer,
}

impl SrtCaller {
    /// Why it cannot run here, if it cannot.
    pub fn unavailable() -> Option<String> {
        SrtPeer::unavailable()
    }

    /// Calls `url` (`srt://HOST:PORT[?passphrase=...]`; `mode=caller` is
    /// added when no mode is given) and writes what it receives to `out`;
    /// `None` (having said SKIPPED) when srt-live-transmit is not installed.
    pub fn pull(url: &str, out: &Path) -> Option<SrtCaller> {
        if let Some(why) = SrtCaller::unavailable() {
            skip(&why);
            return None;
        }
        let url = if url.contains("mode=") {
            url.to_string()
        } else {
            let sep = if url.contains('?') { '&' } else { '?' };
            format!("{url}{sep}mode=caller")
        };
        let mut peer = SrtPeer::spawn(&url, out);
        peer.wait_for("Media path");
        Some(SrtCaller { peer })
    }

    /// Whether it is connected (it said so after its last disconnect).
    pub fn connected(&self) -> bool {
        let log = self.log();
        let last = log
            .lines()
            .rfind(|l| l.contains("SRT source connected") || l.contains("disconnected"));
        last.is_some_and(|l| l.contains("SRT source connected"))
    }

    /// The file the received stream is written to: whole once
    /// [`stop`](Self::stop) returned (until then its last few kilobytes may
    /// still be in the process's output buffer).
    pub fn output(&self) -> &Path {
        &self.peer.output
    }

    /// Its stderr: connection attempts, connects, rejections.
    pub fn log(&self) -> String {
        self.peer.log()
    }

    /// Ends it cleanly (SIGINT), with everything received in the file.
    pub fn stop(&mut self) {
        self.peer.stop();
    }
}
