//! `/api/v1/rules`, `/api/v1/alerts` and `/api/v1/silences`: alert rules (list, get, create,
//! update, delete, test over past data), current alerts, and silences. Errors are JSON
//! `{"error": "..."}` as elsewhere; a rule that does not validate answers 400 with the
//! validator's message (rule name, line, column and a caret under the query).

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::SharedState;
use crate::alerts::{Alerts, AlertsError, RuleSpec};

pub(crate) fn routes() -> Router<SharedState> {
    Router::new()
        .route("/api/v1/rules", get(list_rules).post(create_rule))
        .route("/api/v1/rules/test", post(test_rule))
        .route(
            "/api/v1/rules/{name}",
            get(get_rule).put(update_rule).delete(delete_rule),
        )
        .route("/api/v1/alerts", get(list_alerts))
        .route("/api/v1/silences", get(list_silences).post(create_silence))
        .route(
            "/api/v1/silences/{id}",
            axum::routing::delete(delete_silence),
        )
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "error": message.into() }))).into_response()
}

fn failure(e: AlertsError) -> Response {
    let status = match &e {
        AlertsError::NotFound(_) => StatusCode::NOT_FOUND,
        AlertsError::Conflict(_) => StatusCode::CONFLICT,
        AlertsError::ReadOnly(_) => StatusCode::FORBIDDEN,
        AlertsError::Invalid(_) => StatusCode::BAD_REQUEST,
        AlertsError::Storage(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    if status.is_server_error() {
        tracing::warn!(error = %e, "alerts request failed");
    }
    error(status, e.to_string())
}

/// Runs `f` on the blocking pool (rule operations write files and may run queries).
async fn blocking<T: Send + 'static>(
    state: &SharedState,
    f: impl FnOnce(&Alerts) -> T + Send + 'static,
) -> Result<T, Response> {
    let alerts: Arc<Alerts> = state.alerts.clone();
    tokio::task::spawn_blocking(move || f(&alerts))
        .await
        .map_err(|e| {
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("alerts task failed: {e}"),
            )
        })
}

fn parse_spec(body: &[u8]) -> Result<RuleSpec, String> {
    serde_json::from_slice(body).map_err(|e| {
        format!(
            "invalid rule JSON: {e} (line {}, column {})",
            e.line(),
            e.column()
        )
    })
}

fn parse_json(body: &[u8]) -> Result<Value, String> {
    serde_json::from_slice(body).map_err(|e| format!("invalid JSON: {e}"))
}

async fn list_rules(State(state): State<SharedState>) -> Response {
    match blocking(&state, |a| a.list_rules()).await {
        Ok(rules) => {
            axum::Json(json!({ "rules": rules, "enabled": state.alerts.enabled() })).into_response()
        }
        Err(r) => r,
    }
}

async fn get_rule(State(state): State<SharedState>, Path(name): Path<String>) -> Response {
    match blocking(&state, move |a| a.get_rule(&name)).await {
        Ok(Ok(rule)) => axum::Json(rule).into_response(),
        Ok(Err(e)) => failure(e),
        Err(r) => r,
    }
}

async fn create_rule(State(state): State<SharedState>, body: axum::body::Bytes) -> Response {
    let spec = match parse_spec(&body) {
        Ok(s) => s,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    match blocking(&state, move |a| a.create_rule(spec)).await {
        Ok(Ok(rule)) => (StatusCode::CREATED, axum::Json(rule)).into_response(),
        Ok(Err(e)) => failure(e),
        Err(r) => r,
    }
}

async fn update_rule(
    State(state): State<SharedState>,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let spec = match parse_spec(&body) {
        Ok(s) => s,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    match blocking(&state, move |a| a.update_rule(&name, spec)).await {
        Ok(Ok(rule)) => axum::Json(rule).into_response(),
        Ok(Err(e)) => failure(e),
        Err(r) => r,
    }
}

async fn delete_rule(State(state): State<SharedState>, Path(name): Path<String>) -> Response {
    match blocking(&state, move |a| a.delete_rule(&name)).await {
        Ok(Ok(())) => StatusCode::NO_CONTENT.into_response(),
        Ok(Err(e)) => failure(e),
        Err(r) => r,
    }
}

/// The evaluation times of a test request: `times` (RFC 3339 strings or nanoseconds), or
/// `start`, `end` and `step`; none means now.
fn test_times(body: &Value, now: i64) -> Result<Vec<i64>, String> {
    let time = |v: &Value| -> Result<i64, String> {
        match v {
            Value::Number(n) => n
                .as_i64()
                .ok_or_else(|| format!("{n} is not a time in nanoseconds")),
            Value::String(s) => crate::alerts::parse_time(s).ok_or_else(|| {
                format!("{s:?} is not an RFC 3339 time such as 2026-12-04T18:00:00Z")
            }),
            other => Err(format!("{other} is not a time")),
        }
    };
    if let Some(list) = body.get("times") {
        let list = list.as_array().ok_or("`times` must be a list")?;
        return list.iter().map(time).collect();
    }
    match (body.get("start"), body.get("end")) {
        (None, None) => Ok(vec![now]),
        (Some(start), Some(end)) => {
            let (start, end) = (time(start)?, time(end)?);
            let step = body
                .get("step")
                .and_then(Value::as_str)
                .ok_or("`step` (a duration such as 1m) is required with `start` and `end`")?;
            let step = crate::units::HumanDuration::parse(step)?;
            let step = i64::try_from(step.0.as_nanos()).unwrap_or(i64::MAX).max(1);
            if end < start {
                return Err("`end` is before `start`".into());
            }
            let n = (end - start) / step + 1;
            if n > 1000 {
                return Err(format!("{n} evaluations; at most 1000 (raise `step`)"));
            }
            Ok((0..n).map(|i| start + i * step).collect())
        }
        _ => Err("give both `start` and `end`".into()),
    }
}

async fn test_rule(State(state): State<SharedState>, body: axum::body::Bytes) -> Response {
    let body = match parse_json(&body) {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let spec: RuleSpec =
        match serde_json::from_value(body.get("rule").cloned().unwrap_or(Value::Null)) {
            Ok(s) => s,
            Err(e) => return error(StatusCode::BAD_REQUEST, format!("`rule`: {e}")),
        };
    let times = match test_times(&body, super::now_ns()) {
        Ok(t) => t,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    match blocking(&state, move |a| a.test_rule(spec, &times)).await {
        Ok(Ok(result)) => axum::Json(result).into_response(),
        Ok(Err(e)) => failure(e),
        Err(r) => r,
    }
}

async fn list_alerts(
    State(state): State<SharedState>,
    axum::extract::Query(params): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Response {
    let wanted = params.get("state").cloned();
    match blocking(&state, |a| a.alerts_json()).await {
        Ok(mut alerts) => {
            if let Some(wanted) = wanted {
                alerts.retain(|a| a["state"] == wanted.as_str());
            }
            axum::Json(json!({ "alerts": alerts })).into_response()
        }
        Err(r) => r,
    }
}

async fn list_silences(State(state): State<SharedState>) -> Response {
    match blocking(&state, |a| a.list_silences()).await {
        Ok(s) => axum::Json(json!({ "silences": s })).into_response(),
        Err(r) => r,
    }
}

async fn create_silence(State(state): State<SharedState>, body: axum::body::Bytes) -> Response {
    let body = match parse_json(&body) {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    match blocking(&state, move |a| a.create_silence(&body)).await {
        Ok(Ok(s)) => (StatusCode::CREATED, axum::Json(s)).into_response(),
        Ok(Err(e)) => failure(e),
        Err(r) => r,
    }
}

async fn delete_silence(State(state): State<SharedState>, Path(id): Path<String>) -> Response {
    match blocking(&state, move |a| a.delete_silence(&id)).await {
        Ok(Ok(())) => StatusCode::NO_CONTENT.into_response(),
        Ok(Err(e)) => failure(e),
        Err(r) => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_times_come_from_a_list_or_a_range() {
        let now = 5;
        assert_eq!(test_times(&json!({}), now).unwrap(), vec![5]);
        assert_eq!(
            test_times(&json!({"times": ["1970-01-01T00:00:01Z", 7]}), now).unwrap(),
            vec![1_000_000_000, 7]
        );
        assert_eq!(
            test_times(
                &json!({"start": "1970-01-01T00:00:00Z", "end": "1970-01-01T00:02:00Z", "step": "1m"}),
                now
            )
            .unwrap(),
            vec![0, 60_000_000_000, 120_000_000_000]
        );
        assert!(
            test_times(
                &json!({"start": 0, "end": 1_000_000_000_000_000_i64, "step": "1ms"}),
                now
            )
            .is_err()
        );
        assert!(
            test_times(&json!({"times": ["yesterday"]}), now)
                .unwrap_err()
                .contains("yesterday")
        );
    }
}
