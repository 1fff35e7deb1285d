//! The endpoints. Every answer is JSON; every error is
//! `{"error": "...", ...}` with a status saying what kind (400 the request,
//! 401 the token, 404 the path, 405 the method, 409 the run's state).
//!
//! Two answers are not JSON: `GET /` is the dashboard (HTML, see
//! `dashboard`) and `GET /api/snapshot` a JPEG (see `snapshot`); their
//! errors are JSON like the others. Routes go in [`router`]: under `/api/`
//! for the API, anything else for pages; the token check in front covers
//! them all.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{DefaultBodyLimit, Extension, State};
use axum::http::{Method, StatusCode, Uri};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::{require_token, Token};
use super::events::{self, Stream};
use super::server::ConnectionSlot;
use super::session::Command;
use super::state::{Control, Refusal, StateView};
use super::views::StatsView;
use super::{dashboard, snapshot};

/// What every handler gets.
#[derive(Clone)]
pub struct Api {
    pub control: Arc<Control>,
    pub stream: Stream,
}

/// The largest request body (a param update is a few dozen bytes).
const MAX_BODY: usize = 64 * 1024;

/// The endpoints, as `GET /api` lists them.
const ENDPOINTS: &[&str] = &[
    "GET / (the dashboard, HTML)",
    "GET /api/graph",
    "GET /api/stats",
    "GET /api/state",
    "POST /api/start",
    "POST /api/stop",
    "POST /api/pause",
    "POST /api/resume",
    "POST /api/split",
    "POST /api/chapter",
    "POST /api/replay/save",
    "POST /api/shutdown",
    "POST /api/params",
    "GET /api/events (WebSocket)",
    "GET /api/snapshot?node=N&output=O&width=W (image/jpeg)",
];

pub fn router(api: Api, token: Arc<Token>) -> Router {
    Router::new()
        .route(
            "/api",
            get(|| async { Json(json!({ "endpoints": ENDPOINTS })) }),
        )
        .route("/", get(dashboard::page))
        .route("/api/graph", get(graph))
        .route("/api/stats", get(stats))
        .route("/api/state", get(state))
        .route("/api/start", post(|api| session(api, Command::Start)))
        .route("/api/stop", post(|api| session(api, Command::Stop)))
        .route("/api/pause", post(pause))
        .route("/api/resume", post(resume))
        .route("/api/split", post(|api| session(api, Command::Split)))
        .route("/api/chapter", post(chapter))
        .route("/api/replay/save", post(save_replay))
        .route("/api/shutdown", post(shutdown))
        .route("/api/params", post(params))
        .route("/api/events", get(event_stream))
        .route("/api/snapshot", get(snapshot::handler))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(from_fn_with_state(token, require_token))
        .with_state(api)
}

/// An error answer: its status and `{"error": message, ...}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: serde_json::Map<String, Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        let mut body = serde_json::Map::new();
        body.insert("error".into(), Value::String(message.into()));
        ApiError { status, body }
    }

    /// Adds `key: value` beside the message.
    pub fn with(mut self, key: &str, value: impl serde::Serialize) -> ApiError {
        let value = serde_json::to_value(value).unwrap_or(Value::Null);
        self.body.insert(key.into(), value);
        self
    }

    fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    /// 409: refused in the run's present state, which comes with it.
    fn conflict(refusal: Refusal, control: &Control) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, refusal.message()).with("state", control.state())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(Value::Object(self.body))).into_response()
    }
}

async fn graph(State(api): State<Api>) -> Json<Value> {
    Json(api.control.graph_view.clone())
}

async fn stats(State(api): State<Api>) -> Response {
    let live = api.control.stop.stats();
    Json(StatsView::of(&live, api.control.stop.phase())).into_response()
}

async fn state(State(api): State<Api>) -> Json<StateView> {
    Json(api.control.state())
}

async fn pause(State(api): State<Api>) -> Result<Json<StateView>, ApiError> {
    let control = &api.control;
    control
        .set_paused(true)
        .map(Json)
        .map_err(|r| ApiError::conflict(r, control))
}

async fn resume(State(api): State<Api>) -> Result<Json<StateView>, ApiError> {
    let control = &api.control;
    control
        .set_paused(false)
        .map(Json)
        .map_err(|r| ApiError::conflict(r, control))
}

/// A recording session's command: the instant it was made (capture clock,
/// ns: where the files are cut) and the state after it.
async fn session(State(api): State<Api>, command: Command) -> Result<Json<Value>, ApiError> {
    let control = &api.control;
    let at_ns = control
        .session(&command)
        .map_err(|r| ApiError::conflict(r, control))?;
    Ok(Json(json!({
        "command": command.name(),
        "at_ns": at_ns,
        "state": control.state(),
    })))
}

/// Every replay-buffer node writes its buffer to a new file, up to the
/// instant answered (capture clock, ns).
async fn save_replay(State(api): State<Api>) -> Result<Json<Value>, ApiError> {
    let control = &api.control;
    let save = control
        .save_replay()
        .map_err(|r| ApiError::conflict(r, control))?;
    Ok(Json(json!({
        "command": "save-replay",
        "at_ns": save.at_ns,
        "nodes": save.nodes,
    })))
}

/// `POST /api/chapter`' body (optional: an untitled chapter).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChapterRequest {
    title: Option<String>,
}

/// The longest chapter title taken.
const MAX_TITLE: usize = 200;

async fn chapter(
    api: State<Api>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let body = body.map_err(|r| ApiError::new(r.status(), r.body_text()))?;
    let request: ChapterRequest = if body.iter().all(u8::is_ascii_whitespace) {
        ChapterRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::bad_request(format!(
                "malformed JSON: {e}; expected {{\"title\": TEXT}} or nothing"
            ))
            .with("field", "title")
        })?
    };
    let number = api
        .control
        .state()
        .session
        .mux
        .values()
        .filter_map(|m| m.chapters)
        .max();
    let title = request
        .title
        .unwrap_or_else(|| format!("Chapter {}", number.unwrap_or(0) + 1));
    if title.chars().count() > MAX_TITLE || title.chars().any(char::is_control) {
        let why = format!("title: at most {MAX_TITLE} characters, no control characters");
        return Err(ApiError::bad_request(why).with("field", "title"));
    }
    session(api, Command::Chapter(title)).await
}

async fn shutdown(State(api): State<Api>) -> Result<Json<StateView>, ApiError> {
    let control = &api.control;
    control
        .request_stop()
        .map(Json)
        .map_err(|r| ApiError::conflict(r, control))
}

/// `POST /api/params`' body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ParamUpdate {
    node: String,
    name: String,
    value: Value,
}

/// Checks the update as the supervisor will (only live params, values of
/// their type and range), so that a refusal is an answer, not a log line.
async fn params(
    State(api): State<Api>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    // Too large (413) or unreadable: said in JSON like every other error.
    let body = body.map_err(|r| ApiError::new(r.status(), r.body_text()))?;
    let update: ParamUpdate = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!(
            "malformed JSON: {e}; expected {{\"node\": NODE, \"name\": PARAM, \"value\": VALUE}}"
        ))
    })?;
    let ParamUpdate { node, name, value } = update;
    let at = format!("{node}.{name}");
    let control = &api.control;
    let value = control
        .graph
        .check_param_update(&node, &name, &value)
        .map_err(|why| ApiError::bad_request(format!("{at}: {why}")).with("param", &at))?;
    control
        .send_param(&node, &name, value.clone())
        .map_err(|r| ApiError::conflict(r, control))?;
    Ok(Json(
        json!({ "node": node, "name": name, "value": value, "sent": true }),
    ))
}

/// `GET /api/events`: the WebSocket (see `events`).
async fn event_stream(
    State(api): State<Api>,
    slot: Option<Extension<ConnectionSlot>>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let ws = ws.map_err(|r| {
        let why = format!("GET /api/events is a WebSocket: {}", r.body_text());
        ApiError::new(r.status(), why)
    })?;
    let slot = slot.map(|Extension(s)| s);
    Ok(events::upgrade(ws, api, slot))
}

async fn not_found(method: Method, uri: Uri) -> ApiError {
    let why = format!("no endpoint {method} {}", uri.path());
    ApiError::new(StatusCode::NOT_FOUND, why).with("endpoints", ENDPOINTS)
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    let why = format!("{} does not take {method}", uri.path());
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, why).with("endpoints", ENDPOINTS)
}
