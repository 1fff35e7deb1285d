//! The client side, for `runtime ctl`: one request, or the event stream,
//! to the server a control.json names, over TCP or its unix socket. Built on
//! hyper and tungstenite (already there for the server) rather than a
//! blocking HTTP client, because those speak over any stream, a unix
//! socket included.

use std::path::PathBuf;

use anyhow::{anyhow, bail, Context, Result};
use axum::body::Bytes;
use axum::http::{header, HeaderValue, Method, Request, StatusCode};
use futures_util::StreamExt;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};

use super::addr::ControlFile;

/// A connection to the server, whichever transport.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Where the server is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    /// `HOST:PORT`.
    Tcp(String),
    Unix(PathBuf),
}

/// A server and its token, from its control.json.
#[derive(Debug, Clone)]
pub struct Endpoint {
    target: Target,
    token: String,
}

/// An answer: its status and its JSON (a string when it was not JSON).
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
}

impl Endpoint {
    pub fn of(file: &ControlFile) -> Result<Endpoint> {
        let target = if let Some(path) = file.url.strip_prefix("unix:") {
            Target::Unix(PathBuf::from(path))
        } else if let Some(hostport) = file.url.strip_prefix("http://") {
            Target::Tcp(hostport.trim_end_matches('/').to_string())
        } else {
            bail!(
                "unknown control URL `{}` (http://HOST:PORT or unix:PATH)",
                file.url
            );
        };
        Ok(Endpoint {
            target,
            token: file.token.clone(),
        })
    }

    /// What the Host header names (any name does for a unix socket).
    fn host(&self) -> &str {
        match &self.target {
            Target::Tcp(hostport) => hostport,
            Target::Unix(_) => "localhost",
        }
    }

    async fn connect(&self) -> Result<Box<dyn Io>> {
        let not_running = "is the run still going?";
        Ok(match &self.target {
            Target::Tcp(hostport) => Box::new(
                tokio::net::TcpStream::connect(hostport)
                    .await
                    .with_context(|| format!("connecting to {hostport} ({not_running})"))?,
            ),
            Target::Unix(path) => Box::new(
                tokio::net::UnixStream::connect(path)
                    .await
                    .with_context(|| format!("connecting to {} ({not_running})", path.display()))?,
            ),
        })
    }

    /// `METHOD path` with `body` as JSON: the answer, whatever its status.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Answer> {
        let io = self.connect().await?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .context("starting HTTP")?;
        tokio::spawn(conn);
        let bytes = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        let request = Request::builder()
            .method(method.clone())
            .uri(path)
            .header(header::HOST, self.host())
            .header(header::AUTHORIZATION, self.bearer()?)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(bytes))?;
        let response = sender
            .send_request(request)
            .await
            .with_context(|| format!("{method} {path}"))?;
        let status = response.status();
        let bytes = response.into_body().collect().await?.to_bytes();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        Ok(Answer { status, body })
    }

    fn bearer(&self) -> Result<HeaderValue> {
        HeaderValue::from_str(&format!("Bearer {}", self.token))
            .map_err(|_| anyhow!("the token in control.json is not a header value"))
    }

    /// Follows `GET /api/events`, handing each message to `each` until it
    /// says stop (false), the server closes, or the run ends.
    pub async fn events(&self, mut each: impl FnMut(&str) -> bool) -> Result<()> {
        let io = self.connect().await?;
        let mut request = format!("ws://{}/api/events", self.host()).into_client_request()?;
        request
            .headers_mut()
            .insert(header::AUTHORIZATION, self.bearer()?);
        let (mut ws, _) = tokio_tungstenite::client_async(request, io)
            .await
            .map_err(refused)?;
        while let Some(message) = ws.next().await {
            match message.context("reading the event stream")? {
                Message::Text(text) if !each(text.as_str()) => {
                    let _ = ws.close(None).await;
                    return Ok(());
                }
                Message::Close(Some(frame)) if frame.code != CloseCode::Normal => {
                    bail!("the server closed the stream: {}", frame.reason)
                }
                Message::Close(_) => return Ok(()),
                _ => {}
            }
        }
        Ok(())
    }
}

/// A WebSocket handshake the server refused: its status and message.
fn refused(e: tungstenite::Error) -> anyhow::Error {
    match e {
        tungstenite::Error::Http(response) => {
            let body = response
                .body()
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default();
            anyhow!("GET /api/events: HTTP {}: {body}", response.status())
        }
        e => anyhow!("GET /api/events: {e}"),
    }
}
