//! `/api/v1/reports`: list, get, create, update and delete report definitions; render one
//! over a period (`GET /api/v1/reports/{name}/render?from=&to=&format=`, also reachable as
//! `GET /api/v1/reports/{name}?format=...`); and run a configured schedule now
//! (`POST /api/v1/reports/schedules/{index}/run`). Errors are JSON `{"error": "..."}`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use super::SharedState;
use crate::reports::{OutputFormat, RenderRequest, ReportDefinition, Reports, ReportsError};

pub(crate) fn routes() -> Router<SharedState> {
    Router::new()
        .route("/api/v1/reports", get(list).post(create))
        .route("/api/v1/reports/schedules", get(list_schedules))
        .route("/api/v1/reports/schedules/{index}/run", post(run_schedule))
        .route(
            "/api/v1/reports/{name}",
            get(get_or_render).put(update).delete(delete),
        )
        .route("/api/v1/reports/{name}/render", get(render))
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "error": message.into() }))).into_response()
}

fn failure(e: ReportsError) -> Response {
    let status = match &e {
        ReportsError::NotFound(_) => StatusCode::NOT_FOUND,
        ReportsError::Conflict(_) => StatusCode::CONFLICT,
        ReportsError::ReadOnly(..) => StatusCode::FORBIDDEN,
        ReportsError::Invalid(_) | ReportsError::BadRequest(_) => StatusCode::BAD_REQUEST,
        ReportsError::Pdf(_) => StatusCode::NOT_IMPLEMENTED,
        ReportsError::Delivery(_) => StatusCode::BAD_GATEWAY,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    if status.is_server_error() {
        tracing::warn!(error = %e, "reports request failed");
    }
    error(status, e.to_string())
}

/// Runs `f` on the blocking pool (reports run queries and write files).
async fn blocking<T: Send + 'static>(
    state: &SharedState,
    f: impl FnOnce(&Reports) -> T + Send + 'static,
) -> Result<T, Response> {
    let reports: Arc<Reports> = state.reports.clone();
    tokio::task::spawn_blocking(move || f(&reports))
        .await
        .map_err(|e| {
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("reports task failed: {e}"),
            )
        })
}

fn parse_definition(body: &[u8]) -> Result<ReportDefinition, String> {
    serde_json::from_slice(body).map_err(|e| {
        format!(
            "invalid report JSON: {e} (line {}, column {})",
            e.line(),
            e.column()
        )
    })
}

async fn list(State(state): State<SharedState>) -> Response {
    match blocking(&state, |r| r.list()).await {
        Ok(reports) => axum::Json(json!({ "reports": reports })).into_response(),
        Err(r) => r,
    }
}

async fn list_schedules(State(state): State<SharedState>) -> Response {
    axum::Json(json!({ "schedules": state.reports.schedules() })).into_response()
}

async fn create(State(state): State<SharedState>, body: Bytes) -> Response {
    let definition = match parse_definition(&body) {
        Ok(d) => d,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    let name = definition.name.clone();
    match blocking(&state, move |r| r.create(definition)).await {
        Ok(Ok(())) => (StatusCode::CREATED, axum::Json(json!({ "created": name }))).into_response(),
        Ok(Err(e)) => failure(e),
        Err(r) => r,
    }
}

async fn update(
    State(state): State<SharedState>,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let definition = match parse_definition(&body) {
        Ok(d) => d,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    let shown = name.clone();
    match blocking(&state, move |r| r.update(&name, definition)).await {
        Ok(Ok(())) => axum::Json(json!({ "updated": shown })).into_response(),
        Ok(Err(e)) => failure(e),
        Err(r) => r,
    }
}

async fn delete(State(state): State<SharedState>, Path(name): Path<String>) -> Response {
    let shown = name.clone();
    match blocking(&state, move |r| r.delete(&name)).await {
        Ok(Ok(())) => axum::Json(json!({ "deleted": shown })).into_response(),
        Ok(Err(e)) => failure(e),
        Err(r) => r,
    }
}

/// `GET /api/v1/reports/{name}`: the definition, or with `format`, `from` or `to` the report.
async fn get_or_render(
    State(state): State<SharedState>,
    Path(name): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    if ["format", "from", "to"]
        .iter()
        .any(|k| params.contains_key(*k))
    {
        return render_with(state, name, params).await;
    }
    match blocking(&state, move |r| r.get(&name)).await {
        Ok(Ok((definition, source))) => {
            axum::Json(json!({ "report": definition, "source": source })).into_response()
        }
        Ok(Err(e)) => failure(e),
        Err(r) => r,
    }
}

async fn render(
    State(state): State<SharedState>,
    Path(name): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    render_with(state, name, params).await
}

async fn render_with(
    state: SharedState,
    name: String,
    params: HashMap<String, String>,
) -> Response {
    let format = match OutputFormat::parse(params.get("format").map_or("html", String::as_str)) {
        Ok(f) => f,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let raw_only = match params.get("tier").map(String::as_str) {
        None | Some("" | "auto") => false,
        Some("raw") => true,
        Some(other) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("invalid tier {other:?}: expected raw or auto"),
            );
        }
    };
    let request = RenderRequest {
        from: params.get("from").cloned(),
        to: params.get("to").cloned(),
        timezone: params.get("tz").or_else(|| params.get("timezone")).cloned(),
        database: params.get("db").cloned(),
        raw_only,
    };
    let now = super::now_ns();
    match blocking(&state, move |r| r.render(&name, &request, format, now)).await {
        Ok(Ok(rendered)) => {
            let mut response = rendered.bytes.into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(format.content_type()),
            );
            if let Ok(value) =
                HeaderValue::from_str(&format!("inline; filename=\"{}\"", rendered.file_name))
            {
                headers.insert(header::CONTENT_DISPOSITION, value);
            }
            response
        }
        Ok(Err(e)) => failure(e),
        Err(r) => r,
    }
}

/// Runs configured schedule number `index` now, as if it fired at this instant, and delivers
/// it to its destinations (the ones in the configuration: a request cannot name others).
async fn run_schedule(State(state): State<SharedState>, Path(index): Path<usize>) -> Response {
    let now = super::now_ns();
    let outcome = blocking(&state, move |r| match r.schedules().get(index) {
        None => Err(ReportsError::NotFound(format!("schedule {index}"))),
        Some(schedule) => {
            let schedule = schedule.clone();
            r.run_schedule(&schedule, now)
        }
    })
    .await;
    match outcome {
        Ok(Ok(delivered)) => axum::Json(json!({ "delivered": delivered })).into_response(),
        Ok(Err(e)) => failure(e),
        Err(r) => r,
    }
}
