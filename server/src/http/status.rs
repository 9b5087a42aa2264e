//! `/ping`, `/health` and `/metrics`.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::SharedState;

/// The InfluxDB version Tally answers as, so clients that check it enable the 1.8 features Tally
/// implements; the suffix tells people what really answers.
pub(super) const INFLUXDB_COMPAT_VERSION: &str =
    concat!("1.8.10-tally-", env!("CARGO_PKG_VERSION"));

pub(super) fn version_headers(headers: &mut HeaderMap) {
    headers.insert(
        "X-Influxdb-Version",
        HeaderValue::from_static(INFLUXDB_COMPAT_VERSION),
    );
    headers.insert("X-Influxdb-Build", HeaderValue::from_static("OSS"));
    headers.insert(
        "X-Tally-Version",
        HeaderValue::from_static(env!("CARGO_PKG_VERSION")),
    );
}

pub(super) async fn ping() -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    version_headers(response.headers_mut());
    response
}

pub(super) async fn health(State(state): State<SharedState>) -> Response {
    let databases = state.engine.database_names();
    let body = serde_json::json!({
        "name": "tally",
        "status": "pass",
        "message": "ready for queries and writes",
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": state.started.elapsed().as_secs(),
        "databases": databases,
        "checks": [],
    });
    let mut response = (StatusCode::OK, axum::Json(body)).into_response();
    version_headers(response.headers_mut());
    response
}

pub(super) async fn metrics(State(state): State<SharedState>) -> Response {
    let engine = state.engine.clone();
    let metrics = state.metrics.clone();
    let uptime = state.started.elapsed();
    let text = tokio::task::spawn_blocking(move || metrics.render(&engine, uptime))
        .await
        .unwrap_or_default();
    let mut response = text.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}
