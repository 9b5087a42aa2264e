//! `/api/v1/dashboards`: list, get, create, replace, delete, export and import custom
//! dashboards. Errors become statuses and bodies in one place, [`error_response`].

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::super::SharedState;
use super::super::query::rfc3339;
use super::model::{Dashboard, DashboardInput, InvalidField};
use super::store::{DashboardError, DashboardStore, OnConflict, Saved};

/// The `format` marker of an export document, and the version this tallyd writes and reads.
const EXPORT_FORMAT_KEY: &str = "tally_dashboards";
const EXPORT_FORMAT_VERSION: u64 = 1;

fn error_response(error: DashboardError) -> Response {
    let status = match &error {
        DashboardError::Syntax { .. }
        | DashboardError::Invalid(_)
        | DashboardError::BadRequest { .. } => StatusCode::BAD_REQUEST,
        DashboardError::NotFound { .. } => StatusCode::NOT_FOUND,
        DashboardError::AlreadyExists { .. }
        | DashboardError::ImportConflict { .. }
        | DashboardError::VersionConflict { .. }
        | DashboardError::TooMany { .. } => StatusCode::CONFLICT,
        DashboardError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        DashboardError::Io { source, .. } if source.kind() == std::io::ErrorKind::StorageFull => {
            StatusCode::INSUFFICIENT_STORAGE
        }
        DashboardError::Io { .. } => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let mut body = json!({ "error": error.to_string() });
    match &error {
        DashboardError::Syntax { line, column, .. } => {
            body["line"] = json!(line);
            body["column"] = json!(column);
        }
        DashboardError::Invalid(InvalidField { path, .. }) => body["path"] = json!(path),
        DashboardError::ImportConflict { ids } => body["ids"] = json!(ids),
        DashboardError::VersionConflict { current, .. } => {
            body["current_version"] = json!(current);
        }
        DashboardError::TooLarge { limit, .. } => body["limit"] = json!(limit),
        DashboardError::TooMany { limit, .. } => body["limit"] = json!(limit),
        _ => {}
    }
    if status.is_server_error() {
        tracing::warn!(status = status.as_u16(), error = %error, "dashboard request failed");
    }
    (status, Json(body)).into_response()
}

/// Reads a body of at most `limit` bytes and parses it as JSON, reporting syntax errors with
/// their line and column.
async fn json_body(
    body: Body,
    limit: u64,
    what: &'static str,
    setting: &'static str,
) -> Result<Value, DashboardError> {
    let bytes = axum::body::to_bytes(body, usize::try_from(limit).unwrap_or(usize::MAX))
        .await
        .map_err(|_| DashboardError::TooLarge {
            what: what.to_string(),
            limit,
            setting,
        })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(DashboardError::BadRequest {
            reason: "the body is empty: send the dashboard as JSON, e.g. {\"title\": \"GPUs\", \"panels\": []}".into(),
        });
    }
    serde_json::from_slice(&bytes).map_err(|e| {
        let message = e.to_string();
        // serde_json appends " at line L column C"; the fields carry those.
        let reason = message
            .rfind(" at line ")
            .map_or(message.as_str(), |at| &message[..at])
            .to_string();
        DashboardError::Syntax {
            line: e.line(),
            column: e.column(),
            reason,
        }
    })
}

/// Runs store work on the blocking pool (it does file I/O and fsync).
async fn blocking<T: Send + 'static>(
    store: &Arc<DashboardStore>,
    work: impl FnOnce(&DashboardStore) -> Result<T, DashboardError> + Send + 'static,
) -> Result<T, DashboardError> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || work(&store))
        .await
        .map_err(|e| DashboardError::Io {
            action: "finish a task on",
            path: std::path::PathBuf::from("the dashboards directory"),
            source: std::io::Error::other(e.to_string()),
        })?
}

fn now() -> String {
    rfc3339(super::super::now_ns())
}

fn with_location(mut response: Response, id: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(&format!("/api/v1/dashboards/{id}")) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

pub(super) async fn list(State(state): State<SharedState>) -> Response {
    let (dashboards, unreadable) = state.dashboards.list();
    let limits = state.dashboards.limits();
    Json(json!({
        "dashboards": dashboards,
        "unreadable": unreadable,
        "limits": { "max_count": limits.max_count, "max_size": limits.max_bytes },
    }))
    .into_response()
}

pub(super) async fn get_one(State(state): State<SharedState>, Path(id): Path<String>) -> Response {
    match state.dashboards.get(&id) {
        Ok(dashboard) => Json(dashboard).into_response(),
        Err(e) => error_response(e),
    }
}

pub(super) async fn create(State(state): State<SharedState>, body: Body) -> Response {
    let result = async {
        let limit = state.dashboards.limits().max_bytes;
        let value = json_body(body, limit, "the request body", "dashboards.max_size").await?;
        let input = DashboardInput::from_value(&value, "")?;
        blocking(&state.dashboards, move |store| store.create(input, now())).await
    }
    .await;
    match result {
        Ok(dashboard) => {
            let id = dashboard.id.clone();
            with_location((StatusCode::CREATED, Json(dashboard)).into_response(), &id)
        }
        Err(e) => error_response(e),
    }
}

pub(super) async fn put(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    let result = async {
        let limit = state.dashboards.limits().max_bytes;
        let value = json_body(body, limit, "the request body", "dashboards.max_size").await?;
        let input = DashboardInput::from_value(&value, "")?;
        let id = id.clone();
        blocking(&state.dashboards, move |store| store.put(&id, input, now())).await
    }
    .await;
    match result {
        Ok((dashboard, Saved::Created)) => {
            with_location((StatusCode::CREATED, Json(dashboard)).into_response(), &id)
        }
        Ok((dashboard, Saved::Replaced)) => Json(dashboard).into_response(),
        Err(e) => error_response(e),
    }
}

pub(super) async fn delete(State(state): State<SharedState>, Path(id): Path<String>) -> Response {
    match blocking(&state.dashboards, move |store| store.delete(&id)).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => error_response(e),
    }
}

fn export_document(dashboards: Vec<Dashboard>, file_name: &str) -> Response {
    let body = json!({
        EXPORT_FORMAT_KEY: EXPORT_FORMAT_VERSION,
        "exported_at": now(),
        "dashboards": dashboards,
    });
    let text = serde_json::to_string_pretty(&body).unwrap_or_else(|_| body.to_string());
    let mut response = (StatusCode::OK, text).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{file_name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

pub(super) async fn export_all(State(state): State<SharedState>) -> Response {
    export_document(state.dashboards.all(), "tally-dashboards.json")
}

pub(super) async fn export_one(
    State(state): State<SharedState>,
    Path(id): Path<String>,
) -> Response {
    match state.dashboards.get(&id) {
        Ok(dashboard) => export_document(vec![dashboard], &format!("{id}.tally-dashboard.json")),
        Err(e) => error_response(e),
    }
}

/// The dashboards of an import body: an export document, or one bare dashboard.
fn import_inputs(value: &Value) -> Result<Vec<DashboardInput>, DashboardError> {
    let Some(map) = value.as_object() else {
        return Err(DashboardError::BadRequest {
            reason: format!(
                "expected an export document {{\"{EXPORT_FORMAT_KEY}\": 1, \"dashboards\": [...]}} or one dashboard object"
            ),
        });
    };
    let Some(format) = map.get(EXPORT_FORMAT_KEY) else {
        return Ok(vec![DashboardInput::from_value(value, "")?]);
    };
    match format.as_u64() {
        Some(EXPORT_FORMAT_VERSION) => {}
        Some(newer) if newer > EXPORT_FORMAT_VERSION => {
            return Err(DashboardError::BadRequest {
                reason: format!(
                    "the document is in dashboard export format {newer}; this tallyd reads format {EXPORT_FORMAT_VERSION}: upgrade tallyd"
                ),
            });
        }
        _ => {
            return Err(DashboardError::Invalid(InvalidField {
                path: EXPORT_FORMAT_KEY.into(),
                message: format!(
                    "expected the format version {EXPORT_FORMAT_VERSION}, found {format}"
                ),
            }));
        }
    }
    for key in map.keys() {
        if !["tally_dashboards", "exported_at", "dashboards"].contains(&key.as_str()) {
            return Err(DashboardError::Invalid(InvalidField {
                path: key.clone(),
                message: "unknown field; expected tally_dashboards, exported_at, dashboards".into(),
            }));
        }
    }
    let Some(Value::Array(items)) = map.get("dashboards") else {
        return Err(DashboardError::Invalid(InvalidField {
            path: "dashboards".into(),
            message: "expected an array of dashboards".into(),
        }));
    };
    items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            DashboardInput::from_value(item, &format!("dashboards[{index}]"))
                .map_err(DashboardError::Invalid)
        })
        .collect()
}

pub(super) async fn import(
    State(state): State<SharedState>,
    Query(params): Query<HashMap<String, String>>,
    body: Body,
) -> Response {
    let result = async {
        let on_conflict = match params.get("on_conflict").map(String::as_str) {
            None | Some("" | "error") => OnConflict::Error,
            Some("replace") => OnConflict::Replace,
            Some("copy") => OnConflict::Copy,
            Some(other) => {
                return Err(DashboardError::BadRequest {
                    reason: format!("on_conflict must be error, replace or copy, not {other:?}"),
                });
            }
        };
        let limit = state.config.http.max_body_size.0;
        let value = json_body(body, limit, "the import body", "http.max_body_size").await?;
        let inputs = import_inputs(&value)?;
        if inputs.is_empty() {
            return Err(DashboardError::BadRequest {
                reason: "the document holds no dashboards".into(),
            });
        }
        blocking(&state.dashboards, move |store| {
            store.import(inputs, on_conflict, now())
        })
        .await
    }
    .await;
    match result {
        Ok(stored) => {
            let imported: Vec<Value> = stored
                .iter()
                .map(|d| json!({"id": d.id, "title": d.title, "version": d.version}))
                .collect();
            Json(json!({ "imported": imported })).into_response()
        }
        Err(e) => error_response(e),
    }
}
