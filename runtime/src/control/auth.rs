//! The token: 32 random bytes, hex, made anew for each run and written only
//! to the owner-only control.json. Every request carries it, as
//! `Authorization: Bearer TOKEN` or, where a client cannot set headers (a
//! browser's WebSocket), as `?token=TOKEN`. A local port is open to every
//! user of the machine: the token is what keeps them out.

use std::io::Read;
use std::sync::Arc;

use anyhow::{Context, Result};
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::routes::ApiError;

/// Random bytes in a token.
const TOKEN_BYTES: usize = 32;

#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl std::fmt::Debug for Token {
    // Never in a log by accident.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(…)")
    }
}

impl Token {
    /// A new token from the kernel's random source.
    pub fn generate() -> Result<Token> {
        let mut bytes = [0u8; TOKEN_BYTES];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut bytes))
            .context("reading /dev/urandom for the control API's token")?;
        Ok(Token(bytes.iter().map(|b| format!("{b:02x}")).collect()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `given` is this token, in time that does not depend on
    /// where they differ (a timing probe learns nothing).
    pub fn matches(&self, given: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), given.as_bytes());
        if a.len() != b.len() {
            return false;
        }
        a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

/// What a request presented.
enum Presented<'a> {
    Nothing,
    Token(&'a str),
}

fn presented(req: &Request) -> Presented<'_> {
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if let Some(t) = bearer {
        return Presented::Token(t.trim());
    }
    let query = req.uri().query().unwrap_or_default();
    match query.split('&').find_map(|kv| kv.strip_prefix("token=")) {
        Some(t) => Presented::Token(t),
        None => Presented::Nothing,
    }
}

/// The middleware in front of every route: 401 without the right token.
pub async fn require_token(State(token): State<Arc<Token>>, req: Request, next: Next) -> Response {
    let refused = match presented(&req) {
        Presented::Token(t) if token.matches(t) => return next.run(req).await,
        Presented::Token(_) => "wrong token (it is in the run directory's control.json)",
        Presented::Nothing => {
            "missing token: send `Authorization: Bearer TOKEN` (or `?token=TOKEN`); \
             the token is in the run directory's control.json"
        }
    };
    let mut response = ApiError::new(StatusCode::UNAUTHORIZED, refused).into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_hex_and_compared_whole() {
        let (a, b) = (Token::generate().unwrap(), Token::generate().unwrap());
        assert_eq!(a.as_str().len(), 64);
        assert!(a.as_str().bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
        assert!(a.matches(a.as_str()));
        assert!(!a.matches(b.as_str()));
        assert!(!a.matches(&a.as_str()[..63]));
        assert!(!a.matches(""));
        assert_eq!(format!("{a:?}"), "Token(…)");
    }
}
