//! The web UI at `/`: the files built from web/ into the binary (see build.rs), or those of
//! `--web-dir`. A path with no file behind it and no extension is a view of the app (its
//! router reads the URL), so it gets index.html; API paths never reach here.

use std::path::PathBuf;

use axum::body::Bytes;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));

/// Paths the UI never owns: an unknown one there is a JSON 404, as before.
const API_PREFIXES: [&str; 4] = ["/api/", "/v1/", "/metrics", "/-/"];

#[derive(Clone)]
pub struct Web {
    dir: Option<PathBuf>,
}

impl Web {
    pub fn new(dir: Option<PathBuf>) -> anyhow::Result<Self> {
        if let Some(dir) = &dir {
            anyhow::ensure!(
                dir.join("index.html").is_file(),
                "--web-dir {}: no index.html there (run `npm run build` in web/)",
                dir.display()
            );
        }
        Ok(Self { dir })
    }

    /// The response for `uri`, or `None` when the UI has nothing for it.
    pub async fn serve(&self, uri: &Uri) -> Option<Response> {
        let path = uri.path();
        if API_PREFIXES.iter().any(|p| path.starts_with(p)) || path.contains("..") {
            return None;
        }
        let name = path.trim_start_matches('/');
        let name = if name.is_empty() { "index.html" } else { name };
        if let Some(bytes) = self.file(name).await {
            return Some(reply(name, bytes));
        }
        let last = name.rsplit('/').next().unwrap_or_default();
        if last.contains('.') {
            return None; // a missing asset, not a view
        }
        self.file("index.html")
            .await
            .map(|b| reply("index.html", b))
    }

    /// The file's bytes: read from `--web-dir`, or the binary's own (not copied).
    async fn file(&self, name: &str) -> Option<Bytes> {
        match &self.dir {
            Some(dir) => tokio::fs::read(dir.join(name)).await.ok().map(Bytes::from),
            None => ASSETS
                .iter()
                .find(|(path, _)| *path == name)
                .map(|(_, bytes)| Bytes::from_static(bytes)),
        }
    }
}

fn reply(name: &str, bytes: Bytes) -> Response {
    let kind = match name.rsplit('.').next().unwrap_or_default() {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "json" => "application/json",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    };
    // Vite names built assets by content hash; index.html must always be fetched anew.
    let cache = if name.starts_with("assets/") {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let mut response = (StatusCode::OK, bytes).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}
