//! The control API as its clients see it: an HTTP client of its own (not
//! the runtime's) that reads control.json, and waits on what a live graph
//! says (its answers, its logs), never on wall time.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Longest wait for anything the graph should do: a guard against a hang
/// on a loaded machine, never a measure.
pub const HANG_GUARD: Duration = Duration::from_secs(120);

/// The control API as a client sees it: the URL and token of control.json.
pub struct Api {
    pub url: String,
    pub token: String,
    agent: ureq::Agent,
}

impl Api {
    /// Reads control.json: its URL, and a token of 32 random bytes in hex,
    /// in a file only its owner may read.
    pub fn from_file(path: &Path) -> Api {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{}", path.display());
        let file: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        let token = file["token"].as_str().unwrap().to_string();
        assert_eq!(token.len(), 64);
        assert!(token.bytes().all(|c| c.is_ascii_hexdigit()));
        let url = file["url"].as_str().unwrap().to_string();
        assert!(url.starts_with("http://127.0.0.1:"), "loopback: {url}");
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build();
        Api {
            url,
            token,
            agent: config.into(),
        }
    }

    /// `METHOD path` with `auth` as the bearer token (none: no header).
    pub fn call(
        &self,
        method: &str,
        path: &str,
        auth: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let url = format!("{}{path}", self.url);
        let bearer = auth.map(|t| format!("Bearer {t}"));
        let response = match method {
            "GET" => {
                let request = self.agent.get(&url);
                match &bearer {
                    Some(b) => request.header("Authorization", b).call(),
                    None => request.call(),
                }
            }
            _ => {
                let request = self.agent.post(&url);
                let request = match &bearer {
                    Some(b) => request.header("Authorization", b),
                    None => request,
                };
                request.send(body.map(|b| b.to_string()).unwrap_or_default())
            }
        };
        let mut response = response.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap();
        let value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
        (status, value)
    }

    pub fn get(&self, path: &str) -> Value {
        let (status, body) = self.call("GET", path, Some(&self.token), None);
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    pub fn post(&self, path: &str, body: Option<Value>) -> (u16, Value) {
        self.call("POST", path, Some(&self.token), body)
    }
}

/// Polls `poll` until `ready` holds of its value (at most [`HANG_GUARD`]).
pub fn wait_until<T: std::fmt::Debug>(
    what: &str,
    poll: impl Fn() -> T,
    ready: impl Fn(&T) -> bool,
) -> T {
    let deadline = Instant::now() + HANG_GUARD;
    loop {
        let value = poll();
        if ready(&value) {
            return value;
        }
        assert!(Instant::now() < deadline, "never {what}: {value:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until the log at `path` contains `text`.
pub fn wait_for_log(path: &Path, text: &str) {
    let read = || std::fs::read_to_string(path).unwrap_or_default();
    wait_until(&format!("`{text}` in {}", path.display()), read, |log| {
        log.contains(text)
    });
}
