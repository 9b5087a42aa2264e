//! `GET /api/v1/complete?q=&cursor=&db=`: what may be typed at the cursor of a query, for the
//! explorer's editor. Keywords and functions come from the parser (`tally_query::complete`,
//! the shell's completion); measurement, field, tag and database names come from SHOW
//! statements run against the engine, only for the kinds of name that fit at the cursor.
//!
//! Positions are counted in UTF-16 code units, as JavaScript's `selectionStart` counts them,
//! so the page can use them as they are.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tally_query::{CompletionCandidates, QueryLimits, QueryOptions, Value};

use super::super::SharedState;
use crate::error::ApiError;

/// Most candidates one answer lists.
const MAX_CANDIDATES: usize = 200;

/// One suggestion.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct Candidate {
    /// What the list shows.
    pub label: String,
    /// What replaces the word at the cursor (quoted where the name needs quotes; a function
    /// gets its opening parenthesis).
    pub insert: String,
    /// keyword, function, measurement, field, tag, database or retention_policy.
    pub kind: &'static str,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct CompletionAnswer {
    /// The part of the word before the cursor.
    pub prefix: String,
    /// The range a chosen candidate replaces, in UTF-16 code units.
    pub start: usize,
    pub end: usize,
    pub candidates: Vec<Candidate>,
}

/// Byte offset of a position given in UTF-16 code units (clamped to the text).
fn byte_offset_of_utf16(text: &str, utf16_position: usize) -> usize {
    let mut units = 0;
    for (byte_offset, c) in text.char_indices() {
        if units >= utf16_position {
            return byte_offset;
        }
        units += c.len_utf16();
    }
    text.len()
}

fn utf16_len(text: &str) -> usize {
    text.chars().map(char::len_utf16).sum()
}

/// Whether a name must be written in double quotes: it is not a plain identifier, or it is a
/// keyword (asked of the parser, as the shell does).
fn needs_quotes(name: &str) -> bool {
    let plain = name
        .chars()
        .next()
        .is_some_and(|first| first.is_alphabetic() || first == '_')
        && name.chars().all(|c| c.is_alphanumeric() || c == '_');
    !plain || tally_query::parse_statement(&format!("SELECT x FROM {name}")).is_err()
}

fn quoted_if_needed(name: &str, typed_quote: bool) -> String {
    if typed_quote || needs_quotes(name) {
        format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        name.to_string()
    }
}

/// The measurement after the first `FROM`, when it is a plain or quoted name.
fn measurement_after_from(statement: &str) -> Option<String> {
    let lower = statement.to_ascii_lowercase();
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    let mut search_from = 0;
    let after = loop {
        let found = search_from + lower.get(search_from..)?.find("from")?;
        let end = found + 4;
        let starts_word = !lower[..found].chars().next_back().is_some_and(is_word);
        let ends_word = !lower[end..].chars().next().is_some_and(is_word);
        if starts_word && ends_word {
            break end;
        }
        search_from = end;
    };
    let mut rest = statement[after..].trim_start();
    let mut last = None;
    loop {
        if let Some(quoted) = rest.strip_prefix('"') {
            let close = quoted.find('"')?;
            last = Some(quoted[..close].to_string());
            rest = &quoted[close + 1..];
        } else {
            let end = rest.find(|c: char| !is_word(c)).unwrap_or(rest.len());
            if end > 0 {
                last = Some(rest[..end].to_string());
            }
            rest = &rest[end..];
        }
        match rest.strip_prefix('.') {
            Some(after_dot) => rest = after_dot,
            None => break,
        }
    }
    last.filter(|name| !name.is_empty())
}

/// The names a SHOW statement lists: the first column of every row, with the series name
/// (the measurement, for per-measurement listings).
fn show(
    engine: &tally_engine::Engine,
    statement: &str,
    database: Option<&str>,
) -> Vec<(String, String)> {
    let options = QueryOptions {
        database: database.map(str::to_string),
        now_ns: None,
        limits: QueryLimits {
            timeout: std::time::Duration::from_secs(5),
            ..QueryLimits::default()
        },
        cancel: None,
        ..QueryOptions::default()
    };
    let Ok(results) = tally_query::execute(engine, statement, &options) else {
        return Vec::new();
    };
    let mut names = Vec::new();
    for result in results {
        for series in result.series {
            for row in series.values {
                if let Some(Value::String(name)) = row.first() {
                    names.push((series.name.clone(), name.clone()));
                }
            }
        }
    }
    names
}

/// Completes `query` at `cursor` (UTF-16 code units) against the names of `database`.
pub(crate) fn complete_query(
    engine: &tally_engine::Engine,
    query: &str,
    cursor: usize,
    database: Option<&str>,
) -> CompletionAnswer {
    let cursor_byte = byte_offset_of_utf16(query, cursor);
    // Completion looks at the statement under the cursor only: earlier statements of a
    // multi-statement query do not change what fits here.
    let statement_start = query[..cursor_byte].rfind(';').map_or(0, |i| i + 1);
    let statement = &query[statement_start..];
    let completion = tally_query::complete(statement, cursor_byte - statement_start);
    let replace_start = statement_start + completion.prefix_span.start as usize;
    let replace_end = statement_start + completion.prefix_span.end as usize;
    let typed_quote = completion.prefix_span.len() as usize > completion.prefix.len();
    let prefix = completion.prefix.clone();
    let lower_prefix = prefix.to_lowercase();
    let measurement = measurement_after_from(&statement[..cursor_byte - statement_start]);
    let mut candidates: Vec<Candidate> = Vec::new();
    let add = |candidates: &mut Vec<Candidate>, label: String, insert: String, kind| {
        if candidates.len() < MAX_CANDIDATES
            && !candidates
                .iter()
                .any(|c| c.label == label && c.kind == kind)
        {
            candidates.push(Candidate {
                label,
                insert,
                kind,
            });
        }
    };
    let add_names =
        |candidates: &mut Vec<Candidate>, names: Vec<(String, String)>, kind: &'static str| {
            let mut sorted: Vec<String> = names
                .into_iter()
                .filter(|(owner, _)| {
                    // Keys of the measurement after FROM when it is known, else of every one.
                    kind == "measurement"
                        || kind == "database"
                        || kind == "retention_policy"
                        || measurement.as_deref().is_none_or(|m| m == owner)
                })
                .map(|(_, name)| name)
                .filter(|name| name.to_lowercase().starts_with(&lower_prefix))
                .collect();
            sorted.sort();
            sorted.dedup();
            for name in sorted {
                let insert = quoted_if_needed(&name, typed_quote);
                add(candidates, name, insert, kind);
            }
        };
    for kind in &completion.candidates {
        match kind {
            CompletionCandidates::Keyword(keywords) => {
                let lower_case = !prefix.is_empty() && prefix.chars().all(|c| !c.is_uppercase());
                for keyword in keywords {
                    let insert = if lower_case {
                        keyword.to_lowercase()
                    } else {
                        (*keyword).to_string()
                    };
                    add(&mut candidates, (*keyword).to_string(), insert, "keyword");
                }
            }
            CompletionCandidates::Function(functions) => {
                for function in functions {
                    add(
                        &mut candidates,
                        (*function).to_string(),
                        format!("{function}("),
                        "function",
                    );
                }
            }
            CompletionCandidates::Measurement => {
                let names = show(engine, "SHOW MEASUREMENTS", database);
                add_names(&mut candidates, names, "measurement");
            }
            CompletionCandidates::Field => {
                let names = show(engine, "SHOW FIELD KEYS", database);
                add_names(&mut candidates, names, "field");
            }
            CompletionCandidates::Tag => {
                let names = show(engine, "SHOW TAG KEYS", database);
                add_names(&mut candidates, names, "tag");
            }
            CompletionCandidates::Database => {
                let names = show(engine, "SHOW DATABASES", None);
                add_names(&mut candidates, names, "database");
            }
            CompletionCandidates::RetentionPolicy => {
                let names = show(engine, "SHOW RETENTION POLICIES", database);
                add_names(&mut candidates, names, "retention_policy");
            }
            _ => {}
        }
    }
    CompletionAnswer {
        prefix,
        start: utf16_len(&query[..replace_start.min(query.len())]),
        end: utf16_len(&query[..replace_end.min(query.len())]),
        candidates,
    }
}

pub(super) async fn complete(
    State(state): State<SharedState>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let query = params.get("q").cloned().unwrap_or_default();
    let max_len = state.config.query.max_query_length.0;
    if query.len() as u64 > max_len {
        return ApiError::BadRequest(format!(
            "query of {} bytes is longer than query.max_query_length ({max_len} bytes)",
            query.len()
        ))
        .into_response();
    }
    let cursor = match params.get("cursor").map(|c| c.parse::<usize>()) {
        None => utf16_len(&query),
        Some(Ok(cursor)) => cursor,
        Some(Err(_)) => {
            return ApiError::BadRequest(format!(
                "cursor must be a position in the query (UTF-16 code units), not {:?}",
                params.get("cursor").map(String::as_str).unwrap_or_default()
            ))
            .into_response();
        }
    };
    let database = params.get("db").filter(|d| !d.is_empty()).cloned();
    let engine = state.engine.clone();
    let answer = tokio::task::spawn_blocking(move || {
        complete_query(&engine, &query, cursor, database.as_deref())
    })
    .await;
    match answer {
        Ok(answer) => Json(answer).into_response(),
        Err(e) => ApiError::Internal(format!("completion task failed: {e}")).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf16_positions_map_to_byte_offsets() {
        let text = "SELECT \"é😀\" FROM x";
        // `😀` is two UTF-16 units and four bytes.
        assert_eq!(byte_offset_of_utf16(text, 8), 8);
        assert_eq!(byte_offset_of_utf16(text, 9), 10);
        assert_eq!(byte_offset_of_utf16(text, 11), 14);
        assert_eq!(byte_offset_of_utf16(text, 1000), text.len());
        assert_eq!(utf16_len(text), 19);
    }

    #[test]
    fn the_measurement_after_from_is_found_quoted_or_qualified() {
        assert_eq!(
            measurement_after_from("SELECT x FROM gpu WHERE "),
            Some("gpu".into())
        );
        assert_eq!(
            measurement_after_from("select x from telemetry..\"nvidia smi\" where"),
            Some("nvidia smi".into())
        );
        assert_eq!(measurement_after_from("SELECT fromage FROM "), None);
    }

    #[test]
    fn names_that_are_keywords_or_odd_are_quoted() {
        assert_eq!(quoted_if_needed("gpu", false), "gpu");
        assert_eq!(quoted_if_needed("select", false), "\"select\"");
        assert_eq!(quoted_if_needed("nvidia smi", false), "\"nvidia smi\"");
        assert_eq!(quoted_if_needed("gpu", true), "\"gpu\"");
    }
}
