//! The page's files, embedded in the binary at build time from `server/assets/`, so the
//! dashboard needs nothing but tallyd (no CDN, no internet access).
//!
//! Each file is served with its content type, an `ETag` (revalidated with `If-None-Match`,
//! answered 304), and gzip-compressed when the client accepts it and that is smaller; the
//! compressed bytes are made once, on first use. The page gets a Content-Security-Policy
//! that allows only this origin, which also proves it loads nothing from elsewhere.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

struct Asset {
    /// Path under `/assets/` (and under `server/assets/`).
    path: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

macro_rules! asset {
    ($path:literal, $content_type:literal) => {
        Asset {
            path: $path,
            content_type: $content_type,
            bytes: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/", $path)),
        }
    };
}

/// Every file of `server/assets/` (a test checks that none is missing).
static ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("app.css", "text/css; charset=utf-8"),
    asset!("favicon.svg", "image/svg+xml"),
    asset!("js/api.js", "text/javascript; charset=utf-8"),
    asset!("js/chart.js", "text/javascript; charset=utf-8"),
    asset!("js/dashboards.js", "text/javascript; charset=utf-8"),
    asset!("js/explorer.js", "text/javascript; charset=utf-8"),
    asset!("js/main.js", "text/javascript; charset=utf-8"),
    asset!("js/overview.js", "text/javascript; charset=utf-8"),
    asset!("js/panels.js", "text/javascript; charset=utf-8"),
    asset!("js/time.js", "text/javascript; charset=utf-8"),
    asset!("js/units.js", "text/javascript; charset=utf-8"),
    asset!("vendor/uPlot.iife.min.js", "text/javascript; charset=utf-8"),
    asset!("vendor/uPlot.min.css", "text/css; charset=utf-8"),
    asset!("vendor/uPlot-LICENSE.txt", "text/plain; charset=utf-8"),
];

/// Only this origin: scripts, styles, images and fetches all come from tallyd itself.
/// Inline style attributes are allowed because the chart library positions elements with them.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Per asset: the ETag and, when gzip makes it smaller, the compressed bytes.
struct Prepared {
    etag: String,
    gzipped: Option<Vec<u8>>,
}

fn prepared() -> &'static [Prepared] {
    static PREPARED: OnceLock<Vec<Prepared>> = OnceLock::new();
    PREPARED.get_or_init(|| {
        ASSETS
            .iter()
            .map(|asset| Prepared {
                etag: format!("\"{:016x}\"", fnv1a(asset.bytes)),
                gzipped: gzip(asset.bytes).filter(|g| g.len() < asset.bytes.len()),
            })
            .collect()
    })
}

/// FNV-1a, 64 bits: a content hash for ETags, stable across builds and platforms.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

fn gzip(bytes: &[u8]) -> Option<Vec<u8>> {
    use std::io::Write as _;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes).ok()?;
    encoder.finish().ok()
}

fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.trim().split(';');
            let name = parts.next().unwrap_or("").trim();
            let refused = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    == Some(0.0)
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
}

fn serve(index: usize, headers: &HeaderMap) -> Response {
    let (Some(asset), Some(prepared)) = (ASSETS.get(index), prepared().get(index)) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let etag = HeaderValue::from_str(&prepared.etag).ok();
    let not_modified = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == prepared.etag));
    let mut response = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        match &prepared.gzipped {
            Some(gzipped) if accepts_gzip(headers) => {
                let mut response = (StatusCode::OK, gzipped.clone()).into_response();
                response
                    .headers_mut()
                    .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
                response
            }
            _ => (StatusCode::OK, asset.bytes).into_response(),
        }
    };
    let out = response.headers_mut();
    out.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    // Revalidate every time (cheap: a 304), so a new tallyd's page is never mixed with an
    // old one's scripts.
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    out.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    out.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Some(etag) = etag {
        out.insert(header::ETAG, etag);
    }
    if asset.path == "index.html" {
        out.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        );
        out.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
    }
    response
}

fn position_of(path: &str) -> Option<usize> {
    ASSETS.iter().position(|asset| asset.path == path)
}

pub(super) async fn index(headers: HeaderMap) -> Response {
    match position_of("index.html") {
        Some(index) => serve(index, &headers),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

pub(super) async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    match position_of(&path) {
        Some(index) => serve(index, &headers),
        None => (
            StatusCode::NOT_FOUND,
            axum::Json(serde_json::json!({
                "error": format!("no dashboard asset {path:?}")
            })),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_under_assets_is_embedded() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets");
        let mut on_disk = Vec::new();
        let mut stack = vec![root.clone()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    let relative = path.strip_prefix(&root).unwrap();
                    on_disk.push(relative.to_string_lossy().replace('\\', "/"));
                }
            }
        }
        on_disk.sort();
        let mut embedded: Vec<String> = ASSETS.iter().map(|a| a.path.to_string()).collect();
        embedded.sort();
        assert_eq!(
            embedded, on_disk,
            "server/assets/ and ASSETS differ: add new files to ASSETS"
        );
    }

    #[test]
    fn the_page_references_only_embedded_files_on_this_origin() {
        let page = std::str::from_utf8(ASSETS[0].bytes).unwrap();
        for reference in page
            .split(['"', '\''])
            .filter(|s| s.starts_with("/assets/"))
        {
            let path = reference.trim_start_matches("/assets/");
            assert!(position_of(path).is_some(), "{reference} is not embedded");
        }
        assert!(!page.contains("http://") && !page.contains("https://"));
    }

    #[test]
    fn gzip_is_used_only_when_accepted() {
        let mut headers = HeaderMap::new();
        assert!(!accepts_gzip(&headers));
        headers.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("gzip, deflate, br"),
        );
        assert!(accepts_gzip(&headers));
        headers.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("gzip;q=0, br"),
        );
        assert!(!accepts_gzip(&headers));
    }

    #[test]
    fn etags_change_with_content() {
        assert_ne!(fnv1a(b"a"), fnv1a(b"b"));
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
    }
}
