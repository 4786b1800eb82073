//! The built-in browser app (`client-web/dist/`, committed and embedded at compile time), served at
//! `/` when no `--web-root` is given: a fresh clone's `octo` binary serves a working client with no
//! npm step. `tests/tests/web_client.rs` checks that `dist/` matches a fresh build of its sources.

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

const INDEX_HTML: &str = include_str!("../../client-web/dist/index.html");
const APP_JS: &str = include_str!("../../client-web/dist/app.js");
const STYLE_CSS: &str = include_str!("../../client-web/dist/style.css");

/// `/`, `/index.html`, `/app.js` and `/style.css`. The page's query (`/?room=NAME`) is the client's.
pub fn routes() -> Router {
    Router::new()
        .route("/", get(|| async { asset(INDEX_HTML, "text/html; charset=utf-8") }))
        .route("/index.html", get(|| async { asset(INDEX_HTML, "text/html; charset=utf-8") }))
        .route("/app.js", get(|| async { asset(APP_JS, "text/javascript; charset=utf-8") }))
        .route("/style.css", get(|| async { asset(STYLE_CSS, "text/css; charset=utf-8") }))
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            // The binary is the version: revalidate rather than run an old app against a new server.
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
        .into_response()
}
