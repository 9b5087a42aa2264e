//! Helpers shared by the executor's test crates (`differential`, `scripts`, `known_bugs`): an
//! engine in a temporary directory, loading line protocol, running queries, and printing
//! results as text that a person can review.
//!
//! The printed form is the one the query scripts state their expectations in:
//!
//! ```text
//! name: cpu
//! tags: host=a, region=eu
//! time                  mean
//! 1970-01-01T00:00:10Z  2.5
//! ```
//!
//! Values print with their type visible: floats always carry a decimal point or an exponent
//! (`2.0`, `1e21`), integers do not (`2`), unsigned integers end in `u` (`2u`), strings are
//! double-quoted with Rust escapes, times are RFC 3339 in UTC with as many fraction digits as
//! they need (InfluxDB's `RFC3339Nano`), and a missing value is `null`.

#![allow(
    dead_code,
    reason = "each test crate uses a different part of these helpers"
)]

use std::sync::Arc;
use std::time::Duration;

use tally_engine::{CompactionOptions, Database, Engine, EngineOptions, FsyncPolicy, PointBatch};
use tally_ingest::line_protocol::{ParseOptions, Precision, parse_lines};
use tally_query::{ParseError, QueryLimits, QueryOptions, StatementResult, Value};

/// An engine in a temporary directory that is removed when the value is dropped.
pub struct TestEngine {
    // Declared before `dir` so the engine closes before its directory is removed.
    pub engine: Engine,
    pub dir: tempfile::TempDir,
}

/// Engine settings for tests: no fsync (the tests never crash the process), small chunks and
/// blocks when the caller asks for them, and no background compaction, so that what a query
/// reads (raw chunks or rollups) depends only on what the test did, never on timing.
pub fn test_options(
    chunk_span: Duration,
    block_duration: Duration,
    max_chunk_points: usize,
) -> EngineOptions {
    EngineOptions {
        fsync: FsyncPolicy::Never,
        chunk_span,
        block_duration,
        max_chunk_points,
        compaction: CompactionOptions {
            enabled: false,
            ..CompactionOptions::default()
        },
        ..EngineOptions::default()
    }
}

impl TestEngine {
    pub fn open(options: EngineOptions) -> TestEngine {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path(), options).unwrap();
        TestEngine { engine, dir }
    }

    /// The database `name`, created on first use.
    pub fn database(&self, name: &str) -> Arc<Database> {
        match self.engine.database(name) {
            Some(db) => db,
            None => self.engine.create_database(name).unwrap(),
        }
    }

    /// Parses line protocol and writes it to `database`; every line must parse and be stored,
    /// so that a typo in a test's data cannot silently shrink it.
    pub fn load(&self, database: &str, lines: &str, precision: Precision) -> Result<(), String> {
        let db = self.database(database);
        let mut batch = PointBatch::new();
        let mut point_lines = Vec::new();
        let options = ParseOptions::new(0).with_precision(precision);
        let report = parse_lines(lines.as_bytes(), &options, &mut batch, &mut point_lines);
        if let Some(error) = report.errors.first() {
            return Err(format!("line protocol does not parse: {error}"));
        }
        let summary = db.write(&batch).map_err(|e| format!("write failed: {e}"))?;
        if let Some(rejection) = summary.rejected.first() {
            return Err(format!("a point was rejected: {rejection:?}"));
        }
        Ok(())
    }

    pub fn query(
        &self,
        database: &str,
        now_ns: i64,
        limits: QueryLimits,
        text: &str,
    ) -> Result<Vec<StatementResult>, ParseError> {
        let options = QueryOptions {
            database: Some(database.to_string()),
            now_ns: Some(now_ns),
            limits,
            ..QueryOptions::default()
        };
        tally_query::execute(&self.engine, text, &options)
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (the "days from civil" algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date of a day count since 1970-01-01 (the inverse of [`days_from_civil`]).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

const NANOS_PER_SECOND: i64 = 1_000_000_000;
const SECONDS_PER_DAY: i64 = 86_400;

/// RFC 3339 in UTC, with the fraction of a second cut to the digits it needs, as InfluxDB
/// prints times: `1970-01-01T00:00:10Z`, `1969-12-31T23:59:59.75Z`.
pub fn format_time(ns: i64) -> String {
    let seconds = ns.div_euclid(NANOS_PER_SECOND);
    let fraction = ns.rem_euclid(NANOS_PER_SECOND);
    let days = seconds.div_euclid(SECONDS_PER_DAY);
    let second_of_day = seconds.rem_euclid(SECONDS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    let mut out = format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60
    );
    if fraction != 0 {
        let digits = format!("{fraction:09}");
        out.push('.');
        out.push_str(digits.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

/// Reads what [`format_time`] writes (and plain integers, as nanoseconds).
pub fn parse_time(text: &str) -> Option<i64> {
    if let Ok(ns) = text.parse::<i64>() {
        return Some(ns);
    }
    let text = text.strip_suffix('Z')?;
    let (date, clock) = text.split_once('T')?;
    let mut date_parts = date.splitn(3, '-');
    let year: i64 = date_parts.next()?.parse().ok()?;
    let month: i64 = date_parts.next()?.parse().ok()?;
    let day: i64 = date_parts.next()?.parse().ok()?;
    let (hms, fraction) = match clock.split_once('.') {
        Some((hms, fraction)) => (hms, fraction),
        None => (clock, ""),
    };
    let mut clock_parts = hms.splitn(3, ':');
    let hour: i64 = clock_parts.next()?.parse().ok()?;
    let minute: i64 = clock_parts.next()?.parse().ok()?;
    let second: i64 = clock_parts.next()?.parse().ok()?;
    if fraction.len() > 9 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let fraction_ns: i64 = if fraction.is_empty() {
        0
    } else {
        format!("{fraction:0<9}").parse().ok()?
    };
    let seconds =
        days_from_civil(year, month, day) * SECONDS_PER_DAY + hour * 3600 + minute * 60 + second;
    seconds
        .checked_mul(NANOS_PER_SECOND)?
        .checked_add(fraction_ns)
}

/// One cell as the scripts write it.
pub fn format_value(value: &Value) -> String {
    match value {
        Value::Null => "null".to_string(),
        Value::Float(f) => format!("{f:?}"),
        Value::Integer(i) => i.to_string(),
        Value::Unsigned(u) => format!("{u}u"),
        Value::Boolean(b) => b.to_string(),
        Value::String(s) => format!("{s:?}"),
        Value::Time(t) => format_time(*t),
        other => format!("{other:?}"),
    }
}

/// Prints the results of one query: each statement's series (or error), statements separated
/// by a `statement N` line when there are several.
pub fn render_results(results: &[StatementResult]) -> Vec<String> {
    let mut lines = Vec::new();
    for result in results {
        if results.len() > 1 {
            lines.push(format!("statement {}", result.statement_id));
        }
        for message in &result.messages {
            lines.push(format!("message: {message}"));
        }
        if let Some(error) = &result.error {
            lines.push(format!("error: {error}"));
            continue;
        }
        if result.series.is_empty() {
            lines.push("(no series)".to_string());
        }
        for series in &result.series {
            lines.push(format!(
                "name: {}",
                if series.name.is_empty() {
                    "(none)"
                } else {
                    &series.name
                }
            ));
            if !series.tags.is_empty() {
                let tags: Vec<String> = series
                    .tags
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                lines.push(format!("tags: {}", tags.join(", ")));
            }
            let mut table: Vec<Vec<String>> = vec![series.columns.clone()];
            table.extend(
                series
                    .values
                    .iter()
                    .map(|row| row.iter().map(format_value).collect()),
            );
            lines.extend(align(&table));
        }
    }
    lines
}

/// Left-aligns the cells of a table in columns two spaces apart.
fn align(table: &[Vec<String>]) -> Vec<String> {
    let n_columns = table.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..n_columns)
        .map(|c| {
            table
                .iter()
                .filter_map(|row| row.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    table
        .iter()
        .map(|row| {
            let mut line = String::new();
            for (c, cell) in row.iter().enumerate() {
                if c > 0 {
                    line.push_str("  ");
                }
                line.push_str(cell);
                if c + 1 < row.len() {
                    line.extend(std::iter::repeat_n(' ', widths[c] - cell.chars().count()));
                }
            }
            line
        })
        .collect()
}

/// Splits a printed line into its cells: double-quoted strings (with backslash escapes) are one
/// token each, anything else splits on white space, so expectations may be aligned freely.
pub fn tokens(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let mut token = String::new();
        if c == '"' {
            token.push(c);
            chars.next();
            while let Some(c) = chars.next() {
                token.push(c);
                if c == '\\' {
                    if let Some(escaped) = chars.next() {
                        token.push(escaped);
                    }
                } else if c == '"' {
                    break;
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                token.push(c);
                chars.next();
            }
        }
        out.push(token);
    }
    out
}
