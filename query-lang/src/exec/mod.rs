//! Query execution over the engine's read API.
//!
//! [`execute`] parses a query, runs its statements in order and returns one
//! [`StatementResult`] per statement: a statement's failure is reported in its result and the
//! others still run. InfluxDB 1.x instead stops at the first failing statement and answers
//! "not executed" for the rest; Tally runs them so that a dashboard panel that sends several
//! statements at once still draws the ones that work. A query that does not parse fails as a
//! whole with the [`ParseError`].
//!
//! Execution is bounded: every limit in [`QueryLimits`] is checked as data is read, and the
//! deadline and the cancellation flag are polled between chunks.

mod aggregate;
mod alerts;
mod condition;
mod error;
mod meta;
mod result;
mod select;
mod transform;
mod value;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tally_engine::Engine;

pub use alerts::{AlertCatalog, CatalogTable};
pub use error::{QueryError, QueryResult};
pub use result::{ResultSeries, StatementResult};
pub use value::Value;

use crate::ParseError;
use crate::ast::Statement;

/// Limits on what one query may do; 0 means no limit.
#[derive(Clone, Debug)]
pub struct QueryLimits {
    pub max_series: u64,
    pub max_points_scanned: u64,
    pub max_result_rows: u64,
    pub timeout: Duration,
}

impl Default for QueryLimits {
    fn default() -> Self {
        QueryLimits {
            max_series: 100_000,
            max_points_scanned: 2_000_000_000,
            max_result_rows: 1_000_000,
            timeout: Duration::from_secs(60),
        }
    }
}

/// How to run a query.
#[derive(Clone, Debug, Default)]
pub struct QueryOptions {
    /// The database statements use when they name none (`?db=`).
    pub database: Option<String>,
    /// "now" for `now()` and for the default end of GROUP BY time ranges, in nanoseconds; taken
    /// from the clock when `None`.
    pub now_ns: Option<i64>,
    pub limits: QueryLimits,
    /// Set to true to stop the query (the client went away).
    pub cancel: Option<Arc<AtomicBool>>,
    /// Read rollup tiers where they answer a query (on by default); off forces raw data.
    pub raw_only: bool,
    /// The alert rules and alerts SHOW RULES and SHOW ALERTS list (tallyd sets it).
    pub alerts: Option<Arc<dyn AlertCatalog>>,
}

/// Counters of one statement's execution, for EXPLAIN ANALYZE and for tests.
#[derive(Debug, Default)]
pub(crate) struct ScanCounters {
    pub(crate) series: AtomicU64,
    pub(crate) chunks: AtomicU64,
    pub(crate) chunks_from_stats: AtomicU64,
    pub(crate) chunks_decoded: AtomicU64,
    pub(crate) points_decoded: AtomicU64,
    pub(crate) rollup_rows: AtomicU64,
}

/// The running state of one query: limits, deadline, cancellation and counters.
pub(crate) struct ExecContext {
    pub(crate) now: i64,
    pub(crate) limits: QueryLimits,
    deadline: Instant,
    started: Instant,
    cancel: Option<Arc<AtomicBool>>,
    pub(crate) counters: ScanCounters,
    pub(crate) allow_rollups: bool,
}

impl ExecContext {
    fn new(options: &QueryOptions) -> ExecContext {
        let started = Instant::now();
        ExecContext {
            now: options.now_ns.unwrap_or_else(now_ns),
            limits: options.limits.clone(),
            deadline: started + options.limits.timeout,
            started,
            cancel: options.cancel.clone(),
            counters: ScanCounters::default(),
            allow_rollups: !options.raw_only,
        }
    }

    /// Fails when the query ran out of time or was cancelled.
    pub(crate) fn check(&self) -> QueryResult<()> {
        if self
            .cancel
            .as_ref()
            .is_some_and(|c| c.load(Ordering::Relaxed))
        {
            return Err(QueryError::Cancelled);
        }
        if Instant::now() > self.deadline {
            return Err(QueryError::Timeout {
                seconds: self.started.elapsed().as_secs_f64(),
            });
        }
        Ok(())
    }

    /// Counts decoded points against `max_points_scanned`.
    pub(crate) fn scanned(&self, points: u64) -> QueryResult<()> {
        let total = self
            .counters
            .points_decoded
            .fetch_add(points, Ordering::Relaxed)
            + points;
        let limit = self.limits.max_points_scanned;
        if limit > 0 && total > limit {
            return Err(QueryError::Limit {
                what: "scan points:",
                value: total,
                limit,
                setting: "query.max_points_scanned",
            });
        }
        Ok(())
    }

    pub(crate) fn check_rows(&self, rows: u64) -> QueryResult<()> {
        let limit = self.limits.max_result_rows;
        if limit > 0 && rows > limit {
            return Err(QueryError::Limit {
                what: "return rows:",
                value: rows,
                limit,
                setting: "query.max_result_rows",
            });
        }
        Ok(())
    }

    pub(crate) fn check_series(&self, series: u64) -> QueryResult<()> {
        let limit = self.limits.max_series;
        if limit > 0 && series > limit {
            return Err(QueryError::Limit {
                what: "read series:",
                value: series,
                limit,
                setting: "query.max_series",
            });
        }
        Ok(())
    }
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Parses and runs a query of one or more statements.
pub fn execute(
    engine: &Engine,
    text: &str,
    options: &QueryOptions,
) -> Result<Vec<StatementResult>, ParseError> {
    let query = crate::parse_query(text)?;
    for statement in &query.statements {
        crate::validate(statement, text)?;
    }
    let mut results = Vec::with_capacity(query.statements.len());
    for (statement_id, statement) in query.statements.iter().enumerate() {
        let ctx = ExecContext::new(options);
        let outcome = execute_statement(engine, statement, options, &ctx);
        results.push(match outcome {
            Ok(series) => StatementResult {
                statement_id,
                series,
                ..StatementResult::default()
            },
            Err(e) => StatementResult {
                statement_id,
                error: Some(e.to_string()),
                ..StatementResult::default()
            },
        });
    }
    Ok(results)
}

fn execute_statement(
    engine: &Engine,
    statement: &Statement,
    options: &QueryOptions,
    ctx: &ExecContext,
) -> QueryResult<Vec<ResultSeries>> {
    let default_db = options.database.as_deref();
    match statement {
        Statement::Select(select) => select::execute(engine, default_db, select, ctx, None),
        Statement::Explain(explain) => {
            let mode = if explain.analyze {
                select::Explain::Analyze
            } else {
                select::Explain::Plan
            };
            select::execute(engine, default_db, &explain.select, ctx, Some(mode))
        }
        other => meta::execute(engine, default_db, other, ctx, options.alerts.as_deref()),
    }
}
