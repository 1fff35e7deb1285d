//! `GET /api/events`: a WebSocket of JSON text messages, each with a `type`:
//! `stats` (every half second), `state` (when the phase or the recording
//! state changes), `event` (the run's events: warnings, node restarts and
//! failures, the stop, the end of every node) and `end` (the run is over:
//! its exit code; the server closes the socket after it).
//!
//! One task (the hub) turns what the run publishes into messages, once
//! each, onto a broadcast channel; each client's task writes them to its
//! socket. The broadcast's backlog is each client's queue, bounded: a
//! client that falls [`BACKLOG`] messages behind, or whose socket takes
//! more than [`SEND_TIMEOUT`] to take one, is dropped. Nothing waits for a
//! client: not the hub, and so not the run.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{close_code, CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use serde::Serialize;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

use super::routes::Api;
use super::server::ConnectionSlot;
use super::state::{Control, StateView};
use super::views::StatsView;
use crate::run::RunEvent;

/// Messages a client may be behind before it is dropped (16 s of stats).
pub const BACKLOG: usize = 32;

/// How long a client's socket may take to accept one message.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// The largest message a client may send (it has nothing to say yet).
const MAX_INCOMING: usize = 4096;

/// One message of the stream.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum StreamMessage<'a> {
    Stats(StatsView<'a>),
    State(StateView),
    Event(&'a RunEvent),
    End {
        exit_code: i32,
        error: Option<&'a str>,
    },
}

/// A message as it goes out: serialized once for every client.
#[derive(Clone)]
struct Outgoing {
    text: Utf8Bytes,
    /// The last one: the client's socket is closed after it.
    last: bool,
}

impl Outgoing {
    fn of(event: &StreamMessage<'_>) -> Outgoing {
        let text = serde_json::to_string(event).unwrap_or_else(|e| {
            format!(r#"{{"type":"event","event":"warning","message":"unserializable: {e}"}}"#)
        });
        Outgoing {
            last: matches!(event, StreamMessage::End { .. }),
            text: text.into(),
        }
    }
}

/// The stream's sending side and its clients, shared by the routes.
#[derive(Clone)]
pub struct Stream {
    tx: broadcast::Sender<Outgoing>,
    clients: Arc<AtomicUsize>,
}

impl Default for Stream {
    fn default() -> Self {
        Stream {
            tx: broadcast::channel(BACKLOG).0,
            clients: Arc::default(),
        }
    }
}

impl Stream {
    fn send(&self, event: &StreamMessage<'_>) {
        // No client connected is fine.
        let _ = self.tx.send(Outgoing::of(event));
    }

    /// `n` messages at once, faster than any client can take them.
    #[cfg(test)]
    pub fn flood(&self, n: usize) {
        for i in 0..n {
            let message = format!("flood {i}");
            self.send(&StreamMessage::Event(&RunEvent::Warning { message }));
        }
    }

    /// Clients connected now.
    pub fn clients(&self) -> usize {
        self.clients.load(Ordering::SeqCst)
    }
}

/// How the run ended: the stream's last message.
#[derive(Debug, Clone)]
pub struct RunEnd {
    pub exit_code: i32,
    pub error: Option<String>,
}

/// Starts the hub: what the run publishes goes out as messages (the state
/// only when it changed) until `end` is set; then what is still pending,
/// and the end. The hub sends everything, so clients get it in order.
pub fn spawn_hub(
    control: Arc<Control>,
    stream: Stream,
    mut end: watch::Receiver<Option<RunEnd>>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let stop = control.stop.clone();
        let (mut stats, mut phase) = (stop.watch_stats(), stop.watch_phase());
        let mut events = stop.subscribe();
        let mut last_state = control.state();
        loop {
            let mut ended = None;
            tokio::select! {
                Ok(()) = stats.changed() => {
                    let live = stats.borrow_and_update().clone();
                    stream.send(&StreamMessage::Stats(StatsView::of(&live, stop.phase())));
                }
                Ok(()) = phase.changed() => {
                    phase.borrow_and_update();
                }
                event = events.recv() => forward(&stream, event),
                _ = control.changed.notified() => {}
                changed = end.changed() => match changed {
                    Ok(()) => ended = end.borrow_and_update().clone(),
                    // The server was dropped without an end: nobody listens.
                    Err(_) => return,
                },
            }
            if ended.is_some() {
                while let Ok(e) = events.try_recv() {
                    forward(&stream, Ok(e));
                }
            }
            let now = control.state();
            if now != last_state {
                stream.send(&StreamMessage::State(now.clone()));
                last_state = now;
            }
            if let Some(RunEnd { exit_code, error }) = ended {
                let error = error.as_deref();
                stream.send(&StreamMessage::End { exit_code, error });
                return;
            }
        }
    })
}

/// One of the run's events onto the stream.
fn forward(stream: &Stream, event: Result<RunEvent, broadcast::error::RecvError>) {
    match event {
        Ok(e) => stream.send(&StreamMessage::Event(&e)),
        Err(broadcast::error::RecvError::Lagged(n)) => {
            let message = format!("{n} events of the run were missed");
            stream.send(&StreamMessage::Event(&RunEvent::Warning { message }));
        }
        // The handle the control API holds keeps the sender: not before the end.
        Err(broadcast::error::RecvError::Closed) => {}
    }
}

/// Takes over the upgraded connection (holding its connection slot).
pub fn upgrade(ws: WebSocketUpgrade, api: Api, slot: Option<ConnectionSlot>) -> Response {
    ws.max_message_size(MAX_INCOMING)
        .max_frame_size(MAX_INCOMING)
        .on_upgrade(move |socket| async move {
            let _slot = slot;
            serve_client(socket, api).await;
        })
}

/// Counts a client while it is connected.
struct Connected(Arc<AtomicUsize>);

impl Drop for Connected {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// One client: the state and the latest statistics at once, then every
/// message, until it goes, falls behind, or the run ends.
async fn serve_client(mut socket: WebSocket, api: Api) {
    api.stream.clients.fetch_add(1, Ordering::SeqCst);
    let _connected = Connected(api.stream.clients.clone());
    let mut rx = api.stream.tx.subscribe();
    let control = &api.control;
    let live = control.stop.stats();
    let hello = [
        Outgoing::of(&StreamMessage::State(control.state())),
        Outgoing::of(&StreamMessage::Stats(StatsView::of(
            &live,
            control.stop.phase(),
        ))),
    ];
    for m in hello {
        if !send(&mut socket, m.text).await {
            return;
        }
    }
    loop {
        tokio::select! {
            next = rx.recv() => match next {
                Ok(m) => {
                    if !send(&mut socket, m.text).await {
                        return;
                    }
                    if m.last {
                        return close(socket, close_code::NORMAL, "the run is over").await;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::info!("control API: dropped a WebSocket client {n} messages behind");
                    let why = format!("too slow: {n} messages behind");
                    return close(socket, close_code::POLICY, &why).await;
                }
                Err(broadcast::error::RecvError::Closed) => {
                    return close(socket, close_code::AWAY, "the server stops").await;
                }
            },
            incoming = socket.recv() => match incoming {
                // Pings are answered by the socket itself; the rest is ignored.
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
        }
    }
}

/// Sends one message; false when the client is gone or too slow to take it.
async fn send(socket: &mut WebSocket, text: Utf8Bytes) -> bool {
    matches!(
        tokio::time::timeout(SEND_TIMEOUT, socket.send(Message::Text(text))).await,
        Ok(Ok(()))
    )
}

/// Says goodbye, without waiting on a client that does not read.
async fn close(mut socket: WebSocket, code: u16, reason: &str) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    let _ = tokio::time::timeout(SEND_TIMEOUT, socket.send(Message::Close(Some(frame)))).await;
}
