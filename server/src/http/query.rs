//! `GET|POST /query`: the InfluxDB 1.x query endpoint (`db`, `q`, `epoch`, `pretty`,
//! `chunked`), answering JSON in InfluxDB's shape, or CSV with `Accept: application/csv`.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tally_query::{QueryLimits, QueryOptions, StatementResult, Value};

use super::SharedState;
use super::status::version_headers;
use crate::error::{ApiError, Flavor};

/// Sets the query's cancel flag when the request future is dropped (the client went away)
/// before the query finished.
struct CancelOnDrop(Arc<AtomicBool>, bool);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if !self.1 {
            self.0.store(true, Ordering::Relaxed);
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Epoch {
    Rfc3339,
    Divide(i64),
}

fn parse_epoch(text: Option<&str>) -> Result<Epoch, ApiError> {
    Ok(match text {
        None | Some("") => Epoch::Rfc3339,
        Some("n" | "ns") => Epoch::Divide(1),
        Some("u" | "us" | "µ") => Epoch::Divide(1_000),
        Some("ms") => Epoch::Divide(1_000_000),
        Some("s") => Epoch::Divide(1_000_000_000),
        Some("m") => Epoch::Divide(60_000_000_000),
        Some("h") => Epoch::Divide(3_600_000_000_000),
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "invalid epoch {other:?}: expected ns, u, ms, s, m or h"
            )));
        }
    })
}

pub(super) async fn query(
    State(state): State<SharedState>,
    method: Method,
    Query(mut params): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match run(&state, method, &mut params, &headers, body).await {
        Ok(response) => response,
        Err(e) => {
            let mut response = e.into_response_for(Flavor::V1);
            version_headers(response.headers_mut());
            response
        }
    }
}

async fn run(
    state: &SharedState,
    method: Method,
    params: &mut HashMap<String, String>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    // POST may carry the parameters as a form body, as the influx CLI and Grafana send them.
    if method == Method::POST {
        let limit = state.config.query.max_query_length.0.saturating_mul(4);
        let bytes = axum::body::to_bytes(body, usize::try_from(limit).unwrap_or(usize::MAX))
            .await
            .map_err(|_| ApiError::BodyTooLarge { limit })?;
        let is_form = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_none_or(|v| v.starts_with("application/x-www-form-urlencoded"));
        if is_form && !bytes.is_empty() {
            let form: Vec<(String, String)> = serde_urlencoded_pairs(&bytes);
            for (k, v) in form {
                params.entry(k).or_insert(v);
            }
        }
    }
    let text = params.get("q").cloned().unwrap_or_default();
    if text.trim().is_empty() {
        return Err(ApiError::BadRequest(
            "missing required parameter \"q\"".into(),
        ));
    }
    let max_len = state.config.query.max_query_length.0;
    if text.len() as u64 > max_len {
        return Err(ApiError::BadRequest(format!(
            "query of {} bytes is longer than query.max_query_length ({max_len} bytes)",
            text.len()
        )));
    }
    let epoch = parse_epoch(params.get("epoch").map(String::as_str))?;
    let pretty = params.get("pretty").is_some_and(|v| v == "true");
    let csv = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/csv") || v.contains("text/csv"));
    let q = &state.config.query;
    let cancel = Arc::new(AtomicBool::new(false));
    let mut guard = CancelOnDrop(cancel.clone(), false);
    let options = QueryOptions {
        database: params.get("db").filter(|d| !d.is_empty()).cloned(),
        now_ns: None,
        limits: QueryLimits {
            max_series: q.max_series,
            max_points_scanned: q.max_points_scanned,
            max_result_rows: q.max_result_rows,
            timeout: q.timeout.0,
        },
        cancel: Some(cancel),
        // `tier=raw` forces raw data, for comparisons with the rollup tiers.
        raw_only: params.get("tier").is_some_and(|t| t == "raw"),
        alerts: Some(state.alerts.catalog()),
    };
    let engine = state.engine.clone();
    let metrics = state.metrics.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        tally_query::execute(&engine, &text, &options).map_err(|e| (e, text))
    })
    .await
    .map_err(|e| ApiError::Internal(format!("query task failed: {e}")))?;
    guard.1 = true;
    let results = match outcome {
        Ok(results) => results,
        Err((e, text)) => {
            metrics.query_errors.fetch_add(1, Ordering::Relaxed);
            let mut response = (
                StatusCode::BAD_REQUEST,
                axum::Json(serde_json::json!({
                    "error": format!("error parsing query: {e}"),
                    "position": { "line": e.line, "column": e.column, "start": e.span.start, "end": e.span.end },
                    "rendered": e.render(&text),
                })),
            )
                .into_response();
            version_headers(response.headers_mut());
            return Ok(response);
        }
    };
    metrics
        .queries
        .fetch_add(results.len() as u64, Ordering::Relaxed);
    metrics.query_errors.fetch_add(
        results.iter().filter(|r| r.error.is_some()).count() as u64,
        Ordering::Relaxed,
    );
    let (content_type, body) = if csv {
        ("application/csv", render_csv(&results, epoch))
    } else {
        ("application/json", render_json(&results, epoch, pretty))
    };
    let mut response = (StatusCode::OK, body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    version_headers(response.headers_mut());
    Ok(response)
}

/// Decodes an `application/x-www-form-urlencoded` body.
fn serde_urlencoded_pairs(bytes: &[u8]) -> Vec<(String, String)> {
    let decode = |s: &str| -> String {
        let s = s.replace('+', " ");
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%'
                && i + 2 < bytes.len()
                && let Ok(b) = u8::from_str_radix(
                    std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"),
                    16,
                )
            {
                out.push(b);
                i += 3;
                continue;
            }
            out.push(bytes[i]);
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    String::from_utf8_lossy(bytes)
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(pair), String::new()),
        })
        .collect()
}

/// Formats nanoseconds since the epoch as RFC 3339 in UTC, with as many fractional digits as
/// needed (InfluxDB's format).
pub(super) use crate::time_text::rfc3339;
use crate::time_text::write_rfc3339;

fn json_string(out: &mut String, s: &str) {
    match serde_json::to_string(s) {
        Ok(quoted) => out.push_str(&quoted),
        Err(_) => out.push_str("\"\""),
    }
}

fn json_value(out: &mut String, v: &Value, epoch: Epoch) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Float(f) if f.is_finite() => {
            let _ = write!(out, "{f}");
        }
        // JSON has no NaN or infinity: such values are written as null.
        Value::Float(_) => out.push_str("null"),
        Value::Integer(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Unsigned(u) => {
            let _ = write!(out, "{u}");
        }
        Value::Boolean(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::String(s) => json_string(out, s),
        Value::Time(t) => match epoch {
            // RFC 3339 text holds nothing JSON escapes.
            Epoch::Rfc3339 => {
                out.push('"');
                write_rfc3339(out, *t);
                out.push('"');
            }
            Epoch::Divide(d) => {
                let _ = write!(out, "{}", t.div_euclid(d));
            }
        },
        _ => out.push_str("null"),
    }
}

fn render_json(results: &[StatementResult], epoch: Epoch, pretty: bool) -> String {
    let mut out = String::with_capacity(256);
    out.push_str("{\"results\":[");
    for (i, r) in results.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{{\"statement_id\":{}", r.statement_id);
        if !r.series.is_empty() {
            out.push_str(",\"series\":[");
            for (j, s) in r.series.iter().enumerate() {
                if j > 0 {
                    out.push(',');
                }
                out.push('{');
                let mut first = true;
                if !s.name.is_empty() {
                    out.push_str("\"name\":");
                    json_string(&mut out, &s.name);
                    first = false;
                }
                if !s.tags.is_empty() {
                    if !first {
                        out.push(',');
                    }
                    out.push_str("\"tags\":{");
                    for (k, (key, value)) in s.tags.iter().enumerate() {
                        if k > 0 {
                            out.push(',');
                        }
                        json_string(&mut out, key);
                        out.push(':');
                        json_string(&mut out, value);
                    }
                    out.push('}');
                    first = false;
                }
                if !first {
                    out.push(',');
                }
                out.push_str("\"columns\":[");
                for (k, c) in s.columns.iter().enumerate() {
                    if k > 0 {
                        out.push(',');
                    }
                    json_string(&mut out, c);
                }
                out.push_str("],\"values\":[");
                for (k, row) in s.values.iter().enumerate() {
                    if k > 0 {
                        out.push(',');
                    }
                    out.push('[');
                    for (c, v) in row.iter().enumerate() {
                        if c > 0 {
                            out.push(',');
                        }
                        json_value(&mut out, v, epoch);
                    }
                    out.push(']');
                }
                out.push_str("]}");
            }
            out.push(']');
        }
        if let Some(e) = &r.error {
            out.push_str(",\"error\":");
            json_string(&mut out, e);
        }
        if !r.messages.is_empty() {
            out.push_str(",\"messages\":[");
            for (k, m) in r.messages.iter().enumerate() {
                if k > 0 {
                    out.push(',');
                }
                out.push_str("{\"level\":\"info\",\"text\":");
                json_string(&mut out, m);
                out.push('}');
            }
            out.push(']');
        }
        out.push('}');
    }
    out.push_str("]}");
    if pretty
        && let Ok(v) = serde_json::from_str::<serde_json::Value>(&out)
        && let Ok(p) = serde_json::to_string_pretty(&v)
    {
        return p;
    }
    out
}

fn csv_field(out: &mut String, s: &str) {
    if s.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&s.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(s);
    }
}

/// CSV as InfluxDB writes it: `name,tags,<columns...>` then one line per row, tags as
/// `k=v,k=v`; statement errors as `error` lines.
fn render_csv(results: &[StatementResult], epoch: Epoch) -> String {
    let mut out = String::new();
    for r in results {
        if let Some(e) = &r.error {
            out.push_str("error\n");
            csv_field(&mut out, e);
            out.push('\n');
            continue;
        }
        let mut header_written: Option<&Vec<String>> = None;
        for s in &r.series {
            if header_written != Some(&s.columns) {
                out.push_str("name,tags");
                for c in &s.columns {
                    out.push(',');
                    csv_field(&mut out, c);
                }
                out.push('\n');
                header_written = Some(&s.columns);
            }
            let tags: Vec<String> = s.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
            for row in &s.values {
                csv_field(&mut out, &s.name);
                out.push(',');
                csv_field(&mut out, &tags.join(","));
                for v in row {
                    out.push(',');
                    let mut cell = String::new();
                    match v {
                        Value::Null => {}
                        Value::String(s) => cell.push_str(s),
                        Value::Time(t) => match epoch {
                            Epoch::Rfc3339 => cell.push_str(&t.to_string()),
                            Epoch::Divide(d) => cell.push_str(&t.div_euclid(d).to_string()),
                        },
                        other => json_value(&mut cell, other, epoch),
                    }
                    csv_field(&mut out, &cell);
                }
                out.push('\n');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_matches_influxdb_formatting() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_796_083_200_000_000_000), "2026-12-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000_500_000_000), "2023-11-14T22:13:20.5Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59.999999999Z");
        assert_eq!(rfc3339(951_782_400_000_000_000), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_000), "1970-01-01T00:00:00.000001Z");
        assert_eq!(rfc3339(i64::MIN), "1677-09-21T00:12:43.145224192Z");
        assert_eq!(rfc3339(i64::MAX), "2262-04-11T23:47:16.854775807Z");
        for ns in [
            -86_400_000_000_001i64,
            123_456_789,
            1_796_083_199_999_999_990,
        ] {
            let secs = ns.div_euclid(1_000_000_000);
            let nanos = ns.rem_euclid(1_000_000_000);
            let text = rfc3339(ns);
            let (whole, fraction) = text
                .trim_end_matches('Z')
                .split_once('.')
                .unwrap_or((text.trim_end_matches('Z'), ""));
            assert_eq!(whole.len(), 19, "{text}");
            assert_eq!(
                format!("{:0<9}", fraction).parse::<i64>().unwrap_or(0),
                nanos,
                "{text}"
            );
            assert_eq!(&rfc3339(secs * 1_000_000_000)[..19], whole);
        }
    }

    #[test]
    fn form_bodies_decode_plus_and_percent_escapes() {
        let pairs = serde_urlencoded_pairs(b"q=SELECT+mean%28v%29+FROM+cpu&db=telemetry");
        assert_eq!(
            pairs,
            vec![
                ("q".into(), "SELECT mean(v) FROM cpu".into()),
                ("db".into(), "telemetry".into())
            ]
        );
    }
}
