//! The control API served in-process over a graph that is not running (a
//! fresh `StopHandle`): what it accepts and refuses, the connection limit,
//! the WebSocket and its slow clients, the unix socket. The end-to-end
//! test with a live graph is tests/control.rs.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::http::{Method, StatusCode};
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

use super::client::Endpoint;
use super::*;
use crate::graph::Graph;
use crate::run::StopHandle;

/// A directory of its own for each test's run directory.
fn scratch() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("control-test-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The shipped 1080p graph (one sync node), or without its sync node.
fn graph(with_sync: bool) -> Graph {
    let mut g = crate::run::shipped_graph("1080p.yaml");
    if !with_sync {
        g.nodes.retain(|n| n.id != "sync");
    }
    g
}

struct Served {
    server: ControlServer,
    file: ControlFile,
    endpoint: Endpoint,
    stop: StopHandle,
}

async fn serve_on(addr: ControlAddr, g: Graph) -> Served {
    let stop = StopHandle::default();
    let dir = scratch();
    let server = ControlServer::start(&addr, &dir, Arc::new(g), stop.clone())
        .await
        .unwrap();
    let file = ControlFile::read(server.control_file()).unwrap();
    let endpoint = Endpoint::of(&file).unwrap();
    Served {
        server,
        file,
        endpoint,
        stop,
    }
}

async fn serve(g: Graph) -> Served {
    serve_on(ControlAddr::loopback(), g).await
}

impl Served {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let answer = self
            .endpoint
            .request(method, path, body.as_ref())
            .await
            .unwrap();
        (answer.status, answer.body)
    }

    fn hostport(&self) -> &str {
        self.file.url.strip_prefix("http://").unwrap()
    }

    /// A raw HTTP/1.1 request; the status line's code and the body.
    async fn raw(&self, request: &str) -> (u16, String) {
        let mut tcp = tokio::net::TcpStream::connect(self.hostport())
            .await
            .unwrap();
        tcp.write_all(request.as_bytes()).await.unwrap();
        let mut answer = String::new();
        let read = tcp.read_to_string(&mut answer);
        let wait = std::time::Duration::from_secs(20);
        tokio::time::timeout(wait, read)
            .await
            .unwrap_or_else(|_| panic!("no answer to {request}"))
            .unwrap();
        let code = answer[9..12].parse().unwrap();
        let body = answer
            .split("\r\n\r\n")
            .nth(1)
            .unwrap_or_default()
            .to_string();
        (code, body)
    }
}

#[tokio::test]
async fn every_request_needs_the_token() {
    let s = serve(graph(true)).await;
    let get = |auth: &str| format!("GET /api/state{auth} HTTP/1.1\r\nhost: x\r\n\r\n");
    let (code, body) = s.raw(&get("")).await;
    assert_eq!(code, 401, "{body}");
    assert!(body.contains("missing token"), "{body}");
    let wrong = "GET /api/state HTTP/1.1\r\nhost: x\r\nauthorization: Bearer 00\r\n\r\n";
    let (code, body) = s.raw(wrong).await;
    assert_eq!(code, 401);
    assert!(body.contains("wrong token"), "{body}");
    // Unknown paths too: nothing is said without the token.
    assert_eq!(
        s.raw("GET /nothing HTTP/1.1\r\nhost: x\r\n\r\n").await.0,
        401
    );
    let (code, body) = s.raw(&get(&format!("?token={}", s.file.token))).await;
    assert_eq!(code, 200, "{body}");
    let (status, state) = s.call(Method::GET, "/api/state", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(state["phase"], "arming");
    assert_eq!(state["recording"], "running");
    s.server.finish(0, None).await;
}

#[tokio::test]
async fn pause_resume_and_stop_answer_409_when_already_so() {
    let s = serve(graph(true)).await;
    let (status, state) = s.call(Method::POST, "/api/resume", None).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(state["error"], "not paused");
    let (status, state) = s.call(Method::POST, "/api/pause", None).await;
    assert_eq!(status, StatusCode::OK, "{state}");
    assert_eq!(state["recording"], "paused");
    assert_eq!(state["sync"]["sync"]["requested"], "paused");
    let (status, again) = s.call(Method::POST, "/api/pause", None).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(again["error"], "already paused");
    assert_eq!(again["state"]["recording"], "paused");
    // `paused` through the params counts as well.
    let resume = json!({"node": "sync", "name": "paused", "value": false});
    let (status, _) = s.call(Method::POST, "/api/params", Some(resume)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        s.call(Method::POST, "/api/resume", None).await.0,
        StatusCode::CONFLICT
    );
    let (status, state) = s.call(Method::POST, "/api/shutdown", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(state["stop_requested"], true);
    assert!(s.stop.stop_requested());
    let (status, again) = s.call(Method::POST, "/api/shutdown", None).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(again["error"], "already stopping");
    let (status, refused) = s.call(Method::POST, "/api/pause", None).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(refused["error"].as_str().unwrap().contains("stopping"));
    s.server.finish(0, None).await;
}

#[tokio::test]
async fn session_commands_answer_409_in_the_wrong_state() {
    let s = serve(graph(true)).await;
    // The shipped graph records from its start.
    let (status, state) = s.call(Method::GET, "/api/state", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(state["session"]["state"], "recording", "{state}");
    assert_eq!(state["session"]["mux"]["mux"]["requested"], "recording");
    let (status, refused) = s.call(Method::POST, "/api/start", None).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(refused["error"], "already recording");
    assert_eq!(refused["state"]["session"]["state"], "recording");
    let title = json!({"title": "Intro"});
    let (status, done) = s.call(Method::POST, "/api/chapter", Some(title)).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["command"], "chapter");
    let (status, done) = s.call(Method::POST, "/api/stop", None).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert!(done["at_ns"].as_u64().unwrap() > 0, "{done}");
    assert_eq!(done["state"]["session"]["state"], "stopped");
    for path in ["/api/stop", "/api/split", "/api/chapter"] {
        let (status, refused) = s.call(Method::POST, path, None).await;
        assert_eq!(status, StatusCode::CONFLICT, "{path}");
        assert_eq!(refused["error"], "not recording", "{path}");
    }
    let (status, done) = s.call(Method::POST, "/api/start", None).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["state"]["session"]["state"], "recording");
    let bad = json!({"name": "x"});
    let (status, refused) = s.call(Method::POST, "/api/chapter", Some(bad)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(refused["field"], "title", "{refused}");
    let long = json!({"title": "x".repeat(201)});
    let (status, _) = s.call(Method::POST, "/api/chapter", Some(long)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    s.server.finish(0, None).await;
}

#[tokio::test]
async fn a_sync_of_packet_cameras_cannot_pause() {
    let s = serve(crate::run::shipped_graph("distributed-edge.yaml")).await;
    let (status, body) = s.call(Method::POST, "/api/pause", None).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("encoded camera packets"),
        "{body}"
    );
    assert_eq!(body["state"]["recording"], "running", "{body}");
    s.server.finish(0, None).await;
}

#[tokio::test]
async fn a_graph_without_sync_cannot_pause() {
    let s = serve(graph(false)).await;
    let (status, body) = s.call(Method::POST, "/api/pause", None).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        body["error"].as_str().unwrap().contains("no sync node"),
        "{body}"
    );
    assert_eq!(body["state"]["sync"], json!({}));
    s.server.finish(0, None).await;
}

#[tokio::test]
async fn param_updates_are_checked_as_the_supervisor_checks_them() {
    let s = serve(graph(true)).await;
    let cases = [
        (
            json!({"node": "nope", "name": "x", "value": 1}),
            "nope.x: the graph has no node",
        ),
        (
            json!({"node": "sync", "name": "pause", "value": true}),
            "sync.pause: sync has no param `pause`",
        ),
        (
            json!({"node": "video-encode", "name": "quality", "value": "high"}),
            "video-encode.quality: `quality` cannot change while running",
        ),
        (
            json!({"node": "sync", "name": "paused", "value": 3}),
            "sync.paused: ",
        ),
        (
            json!({"node": "sync", "name": "buffer_ms", "value": -5}),
            "sync.buffer_ms: ",
        ),
        (
            json!({"node": "sync", "name": "paused"}),
            "malformed JSON: missing field `value`",
        ),
        (
            json!({"node": "sync", "name": "paused", "value": true, "x": 1}),
            "malformed JSON: unknown field `x`",
        ),
    ];
    for (body, expected) in cases {
        let (status, answer) = s
            .call(Method::POST, "/api/params", Some(body.clone()))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        let error = answer["error"].as_str().unwrap();
        assert!(error.starts_with(expected), "{body}: {error}");
    }
    let (code, body) = s
        .raw(&format!(
            "POST /api/params HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\ncontent-length: 4\r\n\r\n{{\"no",
            s.file.token
        ))
        .await;
    assert_eq!(code, 400);
    assert!(body.contains("malformed JSON: EOF while parsing"), "{body}");
    let huge = json!({"node": "sync", "name": "x", "value": "a".repeat(100_000)});
    let (status, answer) = s.call(Method::POST, "/api/params", Some(huge)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{answer}");
    assert!(answer["error"].is_string(), "{answer}");
    let ok = json!({"node": "sync", "name": "buffer_ms", "value": 300});
    let (status, answer) = s.call(Method::POST, "/api/params", Some(ok)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["sent"], true);
    s.server.finish(0, None).await;
}

#[tokio::test]
async fn the_graph_says_which_params_are_live() {
    let s = serve(graph(true)).await;
    let (status, g) = s.call(Method::GET, "/api/graph", None).await;
    assert_eq!(status, StatusCode::OK);
    let nodes = g["nodes"].as_array().unwrap();
    let sync = nodes.iter().find(|n| n["id"] == "sync").unwrap();
    assert_eq!(sync["kind"], "sync");
    assert_eq!(
        sync["live_params"],
        json!(["buffer_ms", "tolerance_ms", "paused"])
    );
    assert_eq!(sync["params"]["paused"], false);
    assert_eq!(sync["inputs"][0]["from"], "video-normalize/video");
    assert_eq!(sync["outputs"][0]["type"], "raw-video");
    let (status, stats) = s.call(Method::GET, "/api/stats", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(stats["phase"], "arming");
    s.server.finish(0, None).await;
}

#[tokio::test]
async fn past_the_connection_limit_the_answer_is_503() {
    let s = serve(graph(true)).await;
    // Connections that say nothing hold their slots (until the header timeout).
    let mut idle = Vec::new();
    for _ in 0..MAX_CONNECTIONS {
        idle.push(tokio::net::TcpStream::connect(s.hostport()).await.unwrap());
    }
    // The last one is taken once the server has accepted it: a request
    // behind it in the queue is answered after.
    let mut answer = (0, String::new());
    for _ in 0..100 {
        answer = s.raw("GET /api/state HTTP/1.1\r\nhost: x\r\n\r\n").await;
        if answer.0 == 503 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(answer.0, 503, "{}", answer.1);
    assert!(answer.1.contains("busy"), "{}", answer.1);
    drop(idle);
    // The slots come back.
    let mut status = StatusCode::SERVICE_UNAVAILABLE;
    for _ in 0..100 {
        status = s.call(Method::GET, "/api/state", None).await.0;
        if status == StatusCode::OK {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(status, StatusCode::OK);
    s.server.finish(0, None).await;
}

type Client = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// A WebSocket client of `s`, authenticated through the query.
async fn websocket(s: &Served) -> Client {
    let tcp = tokio::net::TcpStream::connect(s.hostport()).await.unwrap();
    let url = format!("ws://{}/api/events?token={}", s.hostport(), s.file.token);
    tokio_tungstenite::client_async(url, tcp).await.unwrap().0
}

async fn next_json(ws: &mut Client) -> Value {
    match ws.next().await.unwrap().unwrap() {
        Message::Text(t) => serde_json::from_str(t.as_str()).unwrap(),
        other => panic!("not a text message: {other:?}"),
    }
}

#[tokio::test]
async fn the_event_stream_says_state_changes_and_the_end() {
    let s = serve(graph(true)).await;
    let mut ws = websocket(&s).await;
    assert_eq!(next_json(&mut ws).await["type"], "state");
    assert_eq!(next_json(&mut ws).await["type"], "stats");
    s.call(Method::POST, "/api/pause", None).await;
    let state = next_json(&mut ws).await;
    assert_eq!(state["type"], "state");
    assert_eq!(state["recording"], "paused");
    let control = s.server.control_file().to_path_buf();
    let finish = tokio::spawn(s.server.finish(3, Some("why".into())));
    let end = next_json(&mut ws).await;
    assert_eq!(end, json!({"type": "end", "exit_code": 3, "error": "why"}));
    match ws.next().await.unwrap().unwrap() {
        Message::Close(Some(frame)) => assert_eq!(frame.code, CloseCode::Normal),
        other => panic!("{other:?}"),
    }
    finish.await.unwrap();
    assert!(!control.exists(), "control.json is removed at the end");
}

#[tokio::test]
async fn a_client_that_falls_behind_is_dropped() {
    // One thread: the flood goes out before the client's task can run.
    let s = serve(graph(true)).await;
    let mut ws = websocket(&s).await;
    assert_eq!(next_json(&mut ws).await["type"], "state");
    s.server.stream().flood(events::BACKLOG + 8);
    let mut seen = 0;
    let frame = loop {
        match ws.next().await.unwrap().unwrap() {
            Message::Text(_) => seen += 1,
            Message::Close(frame) => break frame.unwrap(),
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(frame.code, CloseCode::Policy, "after {seen} messages");
    assert!(frame.reason.contains("too slow"), "{}", frame.reason);
    s.server.finish(0, None).await;
}

#[tokio::test]
async fn a_unix_socket_serves_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let path = scratch().with_extension("sock");
    let s = serve_on(ControlAddr::Unix(path.clone()), graph(true)).await;
    assert_eq!(s.file.url, format!("unix:{}", path.display()));
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let (status, state) = s.call(Method::GET, "/api/state", None).await;
    assert_eq!(status, StatusCode::OK, "{state}");
    let control = s.server.control_file().to_path_buf();
    s.server.finish(0, None).await;
    assert!(!path.exists() && !control.exists());
}

#[tokio::test]
async fn the_dashboard_is_behind_the_token_too() {
    let s = serve(graph(true)).await;
    let get = |query: &str| format!("GET /{query} HTTP/1.1\r\nhost: x\r\n\r\n");
    let (code, body) = s.raw(&get("")).await;
    assert_eq!(code, 401, "{body}");
    let (code, page) = s.raw(&get(&format!("?token={}", s.file.token))).await;
    assert_eq!(code, 200);
    assert!(page.starts_with("<!doctype html>"), "{page}");
    assert!(page.contains(r#"id="graph""#) && page.contains("/api/events?token="));
    s.server.finish(0, None).await;
}

#[tokio::test]
async fn a_snapshot_names_what_it_cannot_take() {
    let s = serve(graph(true)).await;
    let (status, body) = s
        .call(Method::GET, "/api/snapshot?node=mux&output=video", None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "node `mux` has no output `video`");
    let (status, body) = s
        .call(Method::GET, "/api/snapshot?node=video-encode", None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "node `video-encode` has no raw-video output");
    let (status, body) = s.call(Method::GET, "/api/snapshot?width=2", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    // Nothing runs: no session to hear a frame on.
    let (status, body) = s.call(Method::GET, "/api/snapshot", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["source"], "sync/video");
    s.server.finish(0, None).await;
}

#[tokio::test]
async fn a_replay_save_goes_to_every_replay_buffer_or_is_409() {
    let s = serve(replay_graph()).await;
    let (status, done) = s.call(Method::POST, "/api/replay/save", None).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["command"], "save-replay");
    assert_eq!(done["nodes"], json!(["replay"]));
    assert!(done["at_ns"].as_u64().unwrap() > 0, "{done}");
    s.server.finish(0, None).await;

    let s = serve(graph(true)).await;
    let (status, refused) = s.call(Method::POST, "/api/replay/save", None).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        refused["error"],
        "the graph has no replay-buffer node: nothing to save"
    );
    assert_eq!(refused["state"]["phase"], "arming", "{refused}");
    s.server.finish(0, None).await;
}

/// graphs/replay.yaml, its files in the temporary directory.
fn replay_graph() -> Graph {
    use crate::graph::{load_str, Override};
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../graphs/replay.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let dir = std::env::temp_dir();
    let sets = [
        format!("mux.path={}/{}-test.mp4", dir.display(), std::process::id()),
        format!(
            "replay.path={}/{}-replay-{{n}}.mp4",
            dir.display(),
            std::process::id()
        ),
    ];
    let sets: Vec<Override> = sets.iter().map(|s| Override::parse(s).unwrap()).collect();
    let builtins = [("timestamp".to_string(), "t".to_string())].into();
    load_str(&text, &path, &sets, &builtins).unwrap()
}
