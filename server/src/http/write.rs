//! `POST /write` (InfluxDB 1.x) and `POST /api/v2/write` (InfluxDB 2.x): line protocol in,
//! 204 out, or 400 listing every rejected line while the valid lines are stored.

use std::collections::HashMap;
use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tally_engine::{Database, PointBatch, WriteSummary};
use tally_ingest::line_protocol::{self, ParseOptions, Precision};

use super::{SharedState, now_ns};
use crate::error::{ApiError, Flavor, RejectedLine};

/// At most this many rejected lines are listed in a response; the rest are counted.
const MAX_LISTED_REJECTIONS: usize = 100;

pub(super) async fn write_v1(
    State(state): State<SharedState>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let result = async {
        let db = params
            .get("db")
            .filter(|d| !d.is_empty())
            .ok_or(ApiError::DatabaseRequired)?;
        let precision = match params.get("precision").map(String::as_str) {
            None => Precision::Nanoseconds,
            Some(p) => Precision::from_v1(p).ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "invalid precision {p:?}: expected n, u, ms, s, m or h"
                ))
            })?,
        };
        if params.contains_key("rp") {
            tracing::debug!(
                "the rp parameter is accepted and ignored: Tally keeps retention per database"
            );
        }
        handle_write(&state, db, precision, &headers, body).await
    }
    .await;
    result.unwrap_or_else(|e| e.into_response_for(Flavor::V1))
}

pub(super) async fn write_v2(
    State(state): State<SharedState>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let result = async {
        let bucket = params
            .get("bucket")
            .filter(|d| !d.is_empty())
            .ok_or(ApiError::DatabaseRequired)?;
        // InfluxDB 1.8's v2 compatibility names buckets "db/rp"; the retention part is ignored.
        let db = bucket.split_once('/').map_or(bucket.as_str(), |(db, _)| db);
        let precision = match params.get("precision").map(String::as_str) {
            None => Precision::Nanoseconds,
            Some(p) => Precision::from_v2(p).ok_or_else(|| {
                ApiError::BadRequest(format!("invalid precision {p:?}: expected ns, us, ms or s"))
            })?,
        };
        handle_write(&state, db, precision, &headers, body).await
    }
    .await;
    result.unwrap_or_else(|e| e.into_response_for(Flavor::V2))
}

async fn handle_write(
    state: &SharedState,
    db_name: &str,
    precision: Precision,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let limit = state.config.http.max_body_size.0;
    let raw = axum::body::to_bytes(body, usize::try_from(limit).unwrap_or(usize::MAX))
        .await
        .map_err(|_| ApiError::BodyTooLarge { limit })?;
    state
        .metrics
        .bytes_received
        .fetch_add(raw.len() as u64, Ordering::Relaxed);
    let gzip = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("gzip"));
    let database = database_for_write(state, db_name).await?;
    let max_line = usize::try_from(state.config.http.max_line_size.0).unwrap_or(usize::MAX);
    let _slot = state
        .write_slots
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| ApiError::Unavailable("tallyd is shutting down".into()))?;
    let metrics = state.metrics.clone();
    let db_for_metrics = db_name.to_string();
    let outcome = tokio::task::spawn_blocking(move || -> Result<WriteOutcome, ApiError> {
        let body: Bytes = if gzip { gunzip(&raw, limit)? } else { raw };
        ingest(&database, &body, precision, max_line)
    })
    .await
    .map_err(|e| ApiError::Internal(format!("write task failed: {e}")))??;
    metrics.lines_rejected(&db_for_metrics, u64::from(outcome.parse_rejected));
    if outcome.rejected.is_empty() {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let total_rejected = outcome.rejected.len() + outcome.parse_errors_omitted as usize;
    let first = &outcome.rejected[0];
    let message = format!(
        "partial write: {} of {} lines rejected, {} points written; first: line {}, column {}: {}",
        total_rejected,
        outcome.lines,
        outcome.summary.points_written,
        first.line,
        first.column,
        first.reason
    );
    let mut rejected = outcome.rejected;
    let omitted = rejected.len().saturating_sub(MAX_LISTED_REJECTIONS)
        + outcome.parse_errors_omitted as usize;
    rejected.truncate(MAX_LISTED_REJECTIONS);
    Err(ApiError::PartialWrite {
        message,
        written: outcome.summary.points_written,
        rejected,
        omitted,
    })
}

/// The database a write goes to, created on first write when the configuration allows.
async fn database_for_write(state: &SharedState, name: &str) -> Result<Arc<Database>, ApiError> {
    if let Some(db) = state.engine.database(name) {
        return Ok(db);
    }
    if !state.config.http.auto_create_databases {
        return Err(ApiError::DatabaseNotFound(name.to_string()));
    }
    let engine = state.engine.clone();
    let name = name.to_string();
    tokio::task::spawn_blocking(move || engine.create_database(&name))
        .await
        .map_err(|e| ApiError::Internal(format!("create database task failed: {e}")))?
        .map_err(ApiError::from)
}

fn gunzip(compressed: &[u8], limit: u64) -> Result<Bytes, ApiError> {
    let mut out = Vec::with_capacity(compressed.len().saturating_mul(4).min(limit as usize));
    let mut decoder = flate2::read::GzDecoder::new(compressed).take(limit + 1);
    decoder
        .read_to_end(&mut out)
        .map_err(|e| ApiError::BadRequest(format!("the gzip body does not decompress: {e}")))?;
    if out.len() as u64 > limit {
        return Err(ApiError::BodyTooLarge { limit });
    }
    Ok(Bytes::from(out))
}

struct WriteOutcome {
    lines: u32,
    parse_rejected: u32,
    /// Parse errors beyond the parser's list limit: counted, not described.
    parse_errors_omitted: u32,
    summary: WriteSummary,
    rejected: Vec<RejectedLine>,
}

/// Parses a body and stores its points: the valid lines are stored whatever the others do.
fn ingest(
    database: &Database,
    body: &[u8],
    precision: Precision,
    max_line: usize,
) -> Result<WriteOutcome, ApiError> {
    let mut options = ParseOptions::new(now_ns()).with_precision(precision);
    options.max_line_bytes = max_line;
    let mut batch = PointBatch::new();
    let mut point_lines = Vec::new();
    let report = line_protocol::parse_lines(body, &options, &mut batch, &mut point_lines);
    let summary = database.write(&batch)?;
    let mut rejected: Vec<RejectedLine> = report
        .errors
        .iter()
        .map(|e| RejectedLine {
            line: e.line,
            column: e.column,
            reason: e.kind.to_string(),
        })
        .collect();
    for r in &summary.rejected {
        rejected.push(RejectedLine {
            line: point_lines.get(r.point).copied().unwrap_or(0),
            column: 1,
            reason: r.error.to_string(),
        });
    }
    rejected.sort_by_key(|r| r.line);
    Ok(WriteOutcome {
        lines: report.lines_total,
        parse_rejected: report.lines_rejected(),
        parse_errors_omitted: report.errors_omitted,
        summary,
        rejected,
    })
}
