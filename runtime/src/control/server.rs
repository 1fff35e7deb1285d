//! Serving the control API: binding, the connection limit, one request per
//! connection, and the end.
//!
//! Connections are served with hyper directly (not `axum::serve`) for what
//! a server beside a live recording needs: a limit on connections that
//! answers 503 past it instead of queueing, timeouts on the request (a
//! client that connects and says nothing does not keep its slot), and no
//! keep-alive (an idle connection holds no slot; the API sees a few
//! requests a second at most). A WebSocket keeps its connection's slot.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use axum::body::Body;
use axum::http::Request;
use axum::serve::Listener;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;

use super::addr::{ControlAddr, ControlFile};
use super::auth::Token;
use super::events::{self, RunEnd, Stream};
use super::routes::{self, Api};
use super::state::Control;
use super::MAX_CONNECTIONS;
use crate::graph::Graph;
use crate::run::{RunReport, StopHandle};

/// How long a client has to send its request's headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a connection may take for its one request, body and answer
/// included (a WebSocket leaves this behind when it takes the connection over).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a refused client has to send its request and take the 503.
const REFUSE_TIMEOUT: Duration = Duration::from_secs(2);

/// How long the end of the run waits for WebSocket clients to read the
/// `end` message (it never holds the exit up for longer).
const FINISH_WAIT: Duration = Duration::from_secs(1);

/// A connection's place among the [`MAX_CONNECTIONS`]: held by the
/// connection and by the WebSocket it may become.
#[derive(Clone)]
pub struct ConnectionSlot(#[allow(dead_code)] Arc<OwnedSemaphorePermit>);

/// A control API serving a run, from its start to [`ControlServer::finish`].
pub struct ControlServer {
    url: String,
    /// `URL/?token=TOKEN` (none on a unix socket: no browser opens one).
    dashboard: Option<String>,
    /// Reachable from other machines (an address given explicitly).
    exposed: bool,
    file: PathBuf,
    socket: Option<PathBuf>,
    end: watch::Sender<Option<RunEnd>>,
    shutdown: watch::Sender<bool>,
    stream: Stream,
    hub: JoinHandle<()>,
}

impl ControlServer {
    /// Listens on `addr`, writes `control.json` (URL and token) into
    /// `run_dir`, and serves the run `stop` controls until `finish`.
    pub async fn start(
        addr: &ControlAddr,
        run_dir: &Path,
        graph: Arc<Graph>,
        stop: StopHandle,
    ) -> Result<ControlServer> {
        ControlServer::serve(addr, run_dir, Arc::new(Control::new(graph, stop))).await
    }

    /// [`ControlServer::start`] over a [`Control`] others use as well (an
    /// application embedding the runtime, which drives the same recording
    /// state the API shows and changes).
    pub async fn serve(
        addr: &ControlAddr,
        run_dir: &Path,
        control: Arc<Control>,
    ) -> Result<ControlServer> {
        let token = Arc::new(Token::generate()?);
        // The snapshot helper is linked before the first snapshot is asked
        // for, not while it waits.
        control.jpeg.start().await;
        std::fs::create_dir_all(run_dir)
            .with_context(|| format!("creating the run directory {}", run_dir.display()))?;
        let graph = control.graph.clone();
        let stream = Stream::default();
        let api = Api {
            control: control.clone(),
            stream: stream.clone(),
        };
        let app = routes::router(api, token.clone());
        let (shutdown, stopped) = watch::channel(false);
        let (url, socket) = match addr {
            ControlAddr::Tcp(a) => {
                let listener = TcpListener::bind(a)
                    .await
                    .with_context(|| format!("listening on {a}"))?;
                let local = listener.local_addr()?;
                tokio::spawn(accept_loop(listener, app, stopped));
                (format!("http://{local}"), None)
            }
            ControlAddr::Unix(path) => {
                let listener = bind_unix(path)?;
                tokio::spawn(accept_loop(listener, app, stopped));
                (format!("unix:{}", path.display()), Some(path.clone()))
            }
        };
        let (end, ended) = watch::channel(None);
        let hub = events::spawn_hub(control, stream.clone(), ended);
        let file = ControlFile {
            url: url.clone(),
            token: token.as_str().to_string(),
            pid: std::process::id(),
            graph: graph.name.clone(),
        }
        .write(run_dir)?;
        let dashboard = socket
            .is_none()
            .then(|| format!("{url}/?token={}", token.as_str()));
        Ok(ControlServer {
            dashboard,
            url,
            exposed: addr.is_exposed(),
            file,
            socket,
            end,
            shutdown,
            stream,
            hub,
        })
    }

    /// `http://HOST:PORT` or `unix:PATH`.
    pub fn url(&self) -> &str {
        &self.url
    }

    #[cfg(test)]
    pub(super) fn stream(&self) -> &Stream {
        &self.stream
    }

    /// The control.json clients read the token from.
    pub fn control_file(&self) -> &Path {
        &self.file
    }

    /// Where it is and where its token is, for the console; over TCP also
    /// the dashboard's address, token included, to open in a browser (the
    /// console is its user's, like control.json).
    pub fn announcement(&self) -> String {
        let mut text = format!(
            "control API: {} (token in {})",
            self.url,
            self.file.display()
        );
        if let Some(url) = &self.dashboard {
            text += &format!("\ndashboard: {url}");
        }
        if self.exposed {
            text += "\ncontrol API: reachable from other machines; every request needs the token";
        }
        text
    }

    /// [`ControlServer::finish`] with the run's outcome (a run that could
    /// not even start ends as a failure, exit code 1).
    pub async fn finish_run(self, result: &Result<RunReport>) {
        let (code, error) = match result {
            Ok(report) => (report.exit_code, report.error.clone()),
            Err(e) => (1, Some(format!("{e:#}"))),
        };
        self.finish(code, error).await;
    }

    /// The run is over: tells the WebSocket clients (`end`), gives them a
    /// moment to read it, stops serving and removes control.json (its token
    /// opens nothing any more) and the unix socket.
    pub async fn finish(self, exit_code: i32, error: Option<String>) {
        let _ = self.end.send(Some(RunEnd { exit_code, error }));
        let _ = tokio::time::timeout(FINISH_WAIT, self.hub).await;
        let deadline = Instant::now() + FINISH_WAIT;
        while self.stream.clients() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = self.shutdown.send(true);
        let _ = std::fs::remove_file(&self.file);
        if let Some(socket) = &self.socket {
            let _ = std::fs::remove_file(socket);
        }
    }
}

/// A unix socket at `path`, for its owner only. A socket file left by a
/// run that was killed is replaced; anything else there is an error.
fn bind_unix(path: &Path) -> Result<UnixListener> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        let stale =
            meta.file_type().is_socket() && std::os::unix::net::UnixStream::connect(path).is_err();
        if !stale {
            bail!("{} already exists", path.display());
        }
        std::fs::remove_file(path).with_context(|| format!("removing {}", path.display()))?;
    }
    let listener =
        UnixListener::bind(path).with_context(|| format!("listening on {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("making {} private", path.display()))?;
    Ok(listener)
}

/// Accepts connections until `stopped`: each gets a slot and is served, or
/// is answered 503 when every slot is taken.
async fn accept_loop<L: Listener>(
    mut listener: L,
    app: Router,
    mut stopped: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    // Refusing takes a task too: bounded as well, past it a plain close.
    let refusals = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let io = tokio::select! {
            (io, _) = listener.accept() => io,
            _ = stopped.changed() => return,
        };
        match slots.clone().try_acquire_owned() {
            Ok(permit) => {
                let slot = ConnectionSlot(Arc::new(permit));
                tokio::spawn(serve_connection(io, app.clone(), slot, stopped.clone()));
            }
            Err(_) => {
                if let Ok(permit) = refusals.clone().try_acquire_owned() {
                    tokio::spawn(async move {
                        refuse(io).await;
                        drop(permit);
                    });
                }
            }
        }
    }
}

/// Serves one request (or one WebSocket) on `io`.
async fn serve_connection<I>(
    io: I,
    app: Router,
    slot: ConnectionSlot,
    mut stopped: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
        req.extensions_mut().insert(slot.clone());
        tower::ServiceExt::oneshot(app.clone(), req.map(Body::new))
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .keep_alive(false)
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = tokio::time::sleep(REQUEST_TIMEOUT) => {
            tracing::debug!("control API: a request took over {REQUEST_TIMEOUT:?}; dropped");
            Ok(())
        }
        _ = stopped.changed() => {
            conn.as_mut().graceful_shutdown();
            tokio::time::timeout(FINISH_WAIT, conn).await.unwrap_or(Ok(()))
        }
    };
    if let Err(e) = result {
        tracing::debug!("control API connection: {e}");
    }
}

/// Answers 503 on a connection past the limit. It reads the request's
/// head first: closing a socket with unread bytes resets it, and the
/// client would see a reset instead of the answer.
async fn refuse<I: AsyncRead + AsyncWrite + Unpin>(mut io: I) {
    let body = format!(
        r#"{{"error":"busy: {MAX_CONNECTIONS} connections are open already; try again later"}}"#
    );
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\nretry-after: 1\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(REFUSE_TIMEOUT, async {
        let mut head = Vec::new();
        let mut buf = [0u8; 2048];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
            let n = io.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        io.write_all(answer.as_bytes()).await?;
        io.shutdown().await
    })
    .await;
}
