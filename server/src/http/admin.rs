//! `/api/v1/databases`: per-database administration (retention of raw data and rollup tiers,
//! compaction on demand).

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use tally_engine::{Database, Retention, Tier, format_duration};

use super::SharedState;
use crate::error::{ApiError, Flavor};
use crate::units::HumanDuration;

pub(crate) fn routes() -> Router<SharedState> {
    Router::new()
        .route("/api/v1/databases", get(list))
        .route(
            "/api/v1/databases/{db}/retention",
            get(get_retention).put(put_retention),
        )
        .route("/api/v1/databases/{db}/compact", post(compact))
}

/// A retention setting as JSON: durations as text, `"inf"` for forever.
#[derive(Serialize, Deserialize, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
struct RetentionJson {
    raw: String,
    #[serde(default)]
    tiers: Vec<TierJson>,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
struct TierJson {
    resolution: String,
    retention: String,
}

fn keep_text(d: Option<std::time::Duration>) -> String {
    d.map_or_else(|| "inf".to_string(), format_duration)
}

fn parse_keep(text: &str, what: &str) -> Result<Option<std::time::Duration>, ApiError> {
    match text.trim() {
        "inf" | "INF" | "0" | "0s" => Ok(None),
        t => HumanDuration::parse(t)
            .map(|d| Some(d.0))
            .map_err(|e| ApiError::BadRequest(format!("{what}: {e}"))),
    }
}

impl RetentionJson {
    fn from_retention(r: &Retention) -> RetentionJson {
        RetentionJson {
            raw: keep_text(r.raw),
            tiers: r
                .tiers
                .iter()
                .map(|t| TierJson {
                    resolution: format_duration(t.resolution),
                    retention: keep_text(t.retention),
                })
                .collect(),
        }
    }

    fn to_retention(&self) -> Result<Retention, ApiError> {
        let mut tiers = Vec::new();
        for t in &self.tiers {
            let resolution = HumanDuration::parse(&t.resolution)
                .map_err(|e| ApiError::BadRequest(format!("tier resolution: {e}")))?
                .0;
            tiers.push(Tier {
                resolution,
                retention: parse_keep(&t.retention, "tier retention")?,
            });
        }
        Ok(Retention {
            raw: parse_keep(&self.raw, "raw retention")?,
            tiers,
        })
    }
}

fn database(state: &SharedState, name: &str) -> Result<Arc<Database>, ApiError> {
    state
        .engine
        .database(name)
        .ok_or_else(|| ApiError::DatabaseNotFound(name.to_string()))
}

async fn list(State(state): State<SharedState>) -> Response {
    let mut out = Vec::new();
    for name in state.engine.database_names() {
        if let Some(db) = state.engine.database(&name) {
            let s = db.stats();
            out.push(serde_json::json!({
                "name": name,
                "series": s.series,
                "columns": s.columns,
                "segments": s.segments,
                "segment_bytes": s.segment_bytes,
                "rollup_segments": s.rollup_segments,
                "head_bytes": s.head_bytes,
                "retention": RetentionJson::from_retention(&db.retention()),
            }));
        }
    }
    axum::Json(serde_json::json!({ "databases": out })).into_response()
}

async fn get_retention(State(state): State<SharedState>, Path(db): Path<String>) -> Response {
    match database(&state, &db) {
        Ok(db) => axum::Json(RetentionJson::from_retention(&db.retention())).into_response(),
        Err(e) => e.into_response_for(Flavor::V1),
    }
}

async fn put_retention(
    State(state): State<SharedState>,
    Path(db): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let result = async {
        let db = database(&state, &db)?;
        let json: RetentionJson = serde_json::from_slice(&body)
            .map_err(|e| ApiError::BadRequest(format!("invalid retention JSON: {e}")))?;
        let retention = json.to_retention()?;
        tokio::task::spawn_blocking(move || db.set_retention(retention))
            .await
            .map_err(|e| ApiError::Internal(format!("retention task failed: {e}")))??;
        Ok::<_, ApiError>(StatusCode::NO_CONTENT.into_response())
    }
    .await;
    result.unwrap_or_else(|e| e.into_response_for(Flavor::V1))
}

async fn compact(State(state): State<SharedState>, Path(db): Path<String>) -> Response {
    let result = async {
        let db = database(&state, &db)?;
        let records = tokio::task::spawn_blocking(move || {
            db.flush(true)?;
            db.compact_all()
        })
        .await
        .map_err(|e| ApiError::Internal(format!("compaction task failed: {e}")))??;
        let json: Vec<serde_json::Value> = records
            .iter()
            .map(|c| {
                serde_json::json!({
                    "block_start": c.block_start,
                    "inputs": c.inputs,
                    "outputs": c.outputs,
                    "bytes_in": c.bytes_in,
                    "bytes_out": c.bytes_out,
                    "points": c.points,
                    "rollup_rows": c.rollup_rows,
                    "duration_ms": c.duration.as_secs_f64() * 1000.0,
                    "outcome": c.outcome,
                })
            })
            .collect();
        Ok::<_, ApiError>(axum::Json(serde_json::json!({ "compactions": json })).into_response())
    }
    .await;
    result.unwrap_or_else(|e| e.into_response_for(Flavor::V1))
}
