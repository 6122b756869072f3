//! Everything outside `/api`: the dashboard. `/assets/<name>` serves the
//! embedded bundle's files by exact name (content-hashed, so cached for a
//! year); any other GET outside `/api` answers the HTML shell, so the
//! dashboard's deep links work. No path is ever mapped onto the file
//! system. [`shell`](super::shell) owns the bundle and the shell.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::Ctx;
use super::error::ApiError;
use super::shell;

pub fn router() -> Router<Ctx> {
    Router::new().route("/", get(index)).route("/index.html", get(index)).route("/assets/{name}", get(asset))
}

async fn index() -> Response {
    let (ready, html) = shell::render();
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let mut resp = (status, html).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

async fn asset(Path(name): Path<String>, headers: HeaderMap) -> Response {
    let Some((kind, data)) = shell::asset(&name) else {
        return (StatusCode::NOT_FOUND, "Not Found").into_response();
    };
    let gzip = shell::gzipped(&name).filter(|_| accepts_gzip(&headers));
    let compressed = gzip.is_some();
    let mut resp = gzip.unwrap_or(data).into_owned().into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if compressed {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable"));
    resp
}

/// Whether `Accept-Encoding` lists gzip with a non-zero weight.
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers.get_all(header::ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()).any(|v| {
        v.split(',').any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or("");
            let zero = parts.any(|p| p.strip_prefix("q=").and_then(|q| q.parse::<f32>().ok()) == Some(0.0));
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !zero
        })
    })
}

/// Unknown paths: JSON 404 under `/api`, the dashboard's shell for other
/// GETs (the app routes them), plain 404 otherwise.
pub async fn fallback(method: Method, uri: Uri) -> Response {
    let path = uri.path();
    if path == "/api" || path.starts_with("/api/") {
        return ApiError::object_not_found().into_response();
    }
    if (method == Method::GET || method == Method::HEAD)
        && !path.starts_with("/assets/")
        && path != "/metrics"
    {
        return index().await;
    }
    (StatusCode::NOT_FOUND, "Not Found").into_response()
}

/// The dashboard sends `X-Warren-Dashboard`; a 401 to it carries no Basic
/// challenge, which would make the browser open its own login dialog.
pub async fn no_challenge_for_dashboard(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let dashboard = req.headers().contains_key("x-warren-dashboard");
    let mut resp = next.run(req).await;
    if dashboard {
        resp.headers_mut().remove(header::WWW_AUTHENTICATE);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT_ENCODING, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn gzip_is_sent_only_when_accepted() {
        assert!(accepts_gzip(&with("gzip, deflate, br, zstd")));
        assert!(accepts_gzip(&with("br;q=1.0, GZIP;q=0.5")));
        assert!(accepts_gzip(&with("*")));
        assert!(!accepts_gzip(&with("gzip;q=0")));
        assert!(!accepts_gzip(&with("br, deflate")));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }
}
