//! `GET /`: the dashboard, one page with its style and script inlined (the
//! files in `dashboard/`, embedded at build time). One document means one
//! request behind the token: the page is opened as `/?token=T`, and its
//! script sends that token with every call it makes.

use std::sync::LazyLock;

use axum::http::header;
use axum::response::{IntoResponse, Response};

const HTML: &str = include_str!("dashboard/index.html");
const CSS: &str = include_str!("dashboard/dashboard.css");
const JS: &str = include_str!("dashboard/dashboard.js");

/// The page as served, made once.
static PAGE: LazyLock<String> = LazyLock::new(|| {
    HTML.replace(
        r#"<link rel="stylesheet" href="dashboard.css">"#,
        &format!("<style>\n{CSS}</style>"),
    )
    .replace(
        r#"<script src="dashboard.js"></script>"#,
        &format!("<script>\n{JS}</script>"),
    )
});

pub async fn page() -> Response {
    let headers = [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (header::CACHE_CONTROL, "no-store"),
        // The URL carries the token: never sent on to another site.
        (header::REFERRER_POLICY, "no-referrer"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
             img-src blob:; connect-src 'self' ws: wss:",
        ),
    ];
    (headers, PAGE.as_str()).into_response()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_page_carries_its_style_and_script() {
        let page = super::PAGE.as_str();
        assert!(page.contains("<style>") && page.contains("--accent"));
        assert!(page.contains("<script>") && page.contains("function connect()"));
        assert!(!page.contains("dashboard.css") && !page.contains("dashboard.js"));
    }
}
