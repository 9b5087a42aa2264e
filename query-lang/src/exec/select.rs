//! SELECT: planning and execution.
//!
//! A SELECT is either an aggregate query (every output column is built from aggregate calls,
//! possibly inside arithmetic and transformations such as `derivative`) or a raw query (fields
//! and tags point by point). Per measurement, the planner picks the columns the query needs from
//! the catalog, groups series by the GROUP BY tags, and captures one consistent read view.
//!
//! Aggregates scan each group's series in parallel (rayon fold/reduce): a chunk that lies
//! wholly inside one bucket and the time range is answered from its statistics when every
//! aggregate on its field allows it; other chunks are decoded and fed to the accumulators one
//! bucket run at a time.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::Ordering;

use rayon::prelude::*;
use tally_engine::{ColumnValues, Database, Engine, FieldType, FieldValue, ReadView, RollupParts};

use super::ExecContext;
use super::aggregate::{Accumulator, AggKind};
use super::condition::{self, Condition, RegexCache, Row, Schema, arithmetic};
use super::error::{QueryError, QueryResult, invalid};
use super::meta::CatalogSchema;
use super::result::ResultSeries;
use super::transform;
use super::value::Value;
use crate::ast::{
    BinaryOp, Call, Cast, Expr, FillOption, LiteralValue, MeasurementName, SelectStatement, Source,
    UnaryOp,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Explain {
    Plan,
    Analyze,
}

/// An output column's expression.
#[derive(Clone, Debug)]
enum Out {
    Agg(usize),
    Field { name: String, cast: Option<Cast> },
    Tag(String),
    Literal(Value),
    Binary(BinaryOp, Box<Out>, Box<Out>),
    Neg(Box<Out>),
    Transform(Box<TransformSpec>),
}

#[derive(Clone, Debug)]
struct TransformSpec {
    kind: TransformKind,
    input: Out,
}

#[derive(Clone, Copy, Debug)]
enum TransformKind {
    Derivative {
        unit: i64,
        non_negative: bool,
    },
    Difference {
        non_negative: bool,
    },
    Rate {
        unit: i64,
    },
    MovingAverage(usize),
    CumulativeSum,
    Elapsed {
        unit: i64,
    },
    Trend,
    Forecast {
        horizon: i64,
        method: transform::ForecastMethod,
        season: Option<i64>,
        part: ForecastPart,
    },
    Anomaly {
        window: usize,
        threshold: Option<f64>,
    },
}

/// Which of a forecast's numbers a column shows: a `forecast(...)` column is followed by its
/// 95 % prediction interval's bounds, `<name>_lower` and `<name>_upper`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ForecastPart {
    Value,
    Lower,
    Upper,
}

#[derive(Clone, Debug)]
struct AggSpec {
    kind: AggKind,
    field: String,
}

#[derive(Clone, Debug)]
struct OutColumn {
    name: String,
    expr: Out,
}

impl Out {
    fn has_transform(&self) -> bool {
        match self {
            Out::Transform(_) => true,
            Out::Binary(_, a, b) => a.has_transform() || b.has_transform(),
            Out::Neg(a) => a.has_transform(),
            _ => false,
        }
    }

    fn has_raw(&self) -> bool {
        match self {
            Out::Field { .. } | Out::Tag(_) => true,
            Out::Binary(_, a, b) => a.has_raw() || b.has_raw(),
            Out::Neg(a) => a.has_raw(),
            Out::Transform(t) => t.input.has_raw(),
            _ => false,
        }
    }

    fn fields(&self, out: &mut BTreeSet<String>) {
        match self {
            Out::Field { name, .. } => {
                out.insert(name.clone());
            }
            Out::Binary(_, a, b) => {
                a.fields(out);
                b.fields(out);
            }
            Out::Neg(a) => a.fields(out),
            Out::Transform(t) => t.input.fields(out),
            _ => {}
        }
    }
}

struct Planner<'a> {
    aggs: Vec<AggSpec>,
    fields: &'a BTreeMap<String, FieldType>,
    tags: &'a [String],
}

fn integer_arg(call: &Call, i: usize, what: &str) -> QueryResult<i64> {
    match call.args.get(i).map(Expr::unparenthesized) {
        Some(Expr::Literal(l)) => match l.value {
            LiteralValue::Integer(n) => Ok(n),
            _ => Err(invalid(format!(
                "{}(): the {what} must be an integer",
                call.name
            ))),
        },
        _ => Err(invalid(format!(
            "{}(): the {what} must be an integer",
            call.name
        ))),
    }
}

fn number_arg(call: &Call, i: usize, what: &str) -> QueryResult<f64> {
    match call.args.get(i).map(Expr::unparenthesized) {
        Some(Expr::Literal(l)) => match l.value {
            LiteralValue::Integer(n) => Ok(n as f64),
            LiteralValue::Float(f) => Ok(f),
            _ => Err(invalid(format!(
                "{}(): the {what} must be a number",
                call.name
            ))),
        },
        _ => Err(invalid(format!(
            "{}(): the {what} must be a number",
            call.name
        ))),
    }
}

fn duration_arg(call: &Call, i: usize, default: i64) -> QueryResult<i64> {
    match call.args.get(i).map(Expr::unparenthesized) {
        None => Ok(default),
        Some(Expr::Literal(l)) => match l.value {
            LiteralValue::Duration(d) if d > 0 => Ok(d),
            _ => Err(invalid(format!(
                "{}(): expected a positive duration such as 1s",
                call.name
            ))),
        },
        Some(other) => Err(invalid(format!(
            "{}(): `{other}` is not a duration",
            call.name
        ))),
    }
}

impl Planner<'_> {
    fn lower(&mut self, expr: &Expr) -> QueryResult<Out> {
        Ok(match expr {
            Expr::Paren(p) => self.lower(&p.inner)?,
            Expr::Literal(l) => Out::Literal(match &l.value {
                LiteralValue::Integer(v) => Value::Integer(*v),
                LiteralValue::Unsigned(v) => Value::Unsigned(*v),
                LiteralValue::Float(v) => Value::Float(*v),
                LiteralValue::String(s) => Value::String(s.clone()),
                LiteralValue::Bool(b) => Value::Boolean(*b),
                LiteralValue::Duration(d) => Value::Integer(*d),
                _ => return Err(invalid(format!("`{expr}` cannot be selected"))),
            }),
            Expr::VarRef(v) => {
                let is_tag = match v.cast {
                    Some(Cast::Tag) => true,
                    Some(Cast::Field) => false,
                    _ => !self.fields.contains_key(&v.name) && self.tags.contains(&v.name),
                };
                if is_tag {
                    Out::Tag(v.name.clone())
                } else {
                    Out::Field {
                        name: v.name.clone(),
                        cast: v.cast.filter(|c| !matches!(c, Cast::Field)),
                    }
                }
            }
            Expr::Unary(u) if u.op == UnaryOp::Neg => Out::Neg(Box::new(self.lower(&u.operand)?)),
            Expr::Binary(b) if b.op.is_arithmetic() => Out::Binary(
                b.op,
                Box::new(self.lower(&b.lhs)?),
                Box::new(self.lower(&b.rhs)?),
            ),
            Expr::Call(call) => self.lower_call(call)?,
            Expr::Wildcard(_) => {
                return Err(invalid(
                    "a wildcard can only stand alone in the SELECT list or inside a function",
                ));
            }
            other => return Err(invalid(format!("`{other}` cannot be selected"))),
        })
    }

    fn aggregate(&mut self, kind: AggKind, call: &Call) -> QueryResult<Out> {
        let field = match call.args.first().map(Expr::unparenthesized) {
            Some(Expr::VarRef(v)) => v.name.clone(),
            Some(Expr::Call(inner)) if inner.name == "distinct" && kind == AggKind::Count => {
                return self.aggregate(AggKind::CountDistinct, inner);
            }
            _ => {
                return Err(invalid(format!(
                    "{}() takes a field name as its first argument",
                    call.name
                )));
            }
        };
        if let Some(t) = self.fields.get(&field) {
            kind.check_type(&call.name, *t).map_err(invalid)?;
        }
        self.aggs.push(AggSpec { kind, field });
        Ok(Out::Agg(self.aggs.len() - 1))
    }

    fn lower_call(&mut self, call: &Call) -> QueryResult<Out> {
        let transform = |this: &mut Self, kind: TransformKind| -> QueryResult<Out> {
            let input = match call.args.first() {
                Some(arg) => this.lower(arg)?,
                None => return Err(invalid(format!("{}() needs an argument", call.name))),
            };
            Ok(Out::Transform(Box::new(TransformSpec { kind, input })))
        };
        match call.name.as_str() {
            "count" => self.aggregate(AggKind::Count, call),
            "sum" => self.aggregate(AggKind::Sum, call),
            "mean" => self.aggregate(AggKind::Mean, call),
            "median" => self.aggregate(AggKind::Median, call),
            "min" => self.aggregate(AggKind::Min, call),
            "max" => self.aggregate(AggKind::Max, call),
            "first" => self.aggregate(AggKind::First, call),
            "last" => self.aggregate(AggKind::Last, call),
            "spread" => self.aggregate(AggKind::Spread, call),
            "stddev" => self.aggregate(AggKind::Stddev, call),
            "mode" => self.aggregate(AggKind::Mode, call),
            "distinct" => self.aggregate(AggKind::Distinct, call),
            "percentile" => {
                let p = number_arg(call, 1, "percentile")?;
                if !(0.0..=100.0).contains(&p) {
                    return Err(invalid(format!("percentile(): {p} is outside 0..=100")));
                }
                self.aggregate(AggKind::Percentile(p), call)
            }
            "p50" => self.aggregate(AggKind::Percentile(50.0), call),
            "p90" => self.aggregate(AggKind::Percentile(90.0), call),
            "p95" => self.aggregate(AggKind::Percentile(95.0), call),
            "p99" => self.aggregate(AggKind::Percentile(99.0), call),
            "top" | "bottom" => {
                if call.args.len() != 2 {
                    return Err(QueryError::Unsupported(format!(
                        "{}() with tag arguments",
                        call.name
                    )));
                }
                let n = integer_arg(call, 1, "number of points")?;
                if n < 1 {
                    return Err(invalid(format!(
                        "{}(): the number of points must be at least 1",
                        call.name
                    )));
                }
                let kind = if call.name == "top" {
                    AggKind::Top(n as usize)
                } else {
                    AggKind::Bottom(n as usize)
                };
                self.aggregate(kind, call)
            }
            "derivative" | "non_negative_derivative" => transform(
                self,
                TransformKind::Derivative {
                    unit: duration_arg(call, 1, 1_000_000_000)?,
                    non_negative: call.name.starts_with("non_negative"),
                },
            ),
            "difference" | "non_negative_difference" => transform(
                self,
                TransformKind::Difference {
                    non_negative: call.name.starts_with("non_negative"),
                },
            ),
            "rate" => transform(
                self,
                TransformKind::Rate {
                    unit: duration_arg(call, 1, 1_000_000_000)?,
                },
            ),
            "moving_average" => {
                let n = integer_arg(call, 1, "window")?;
                if n < 1 {
                    return Err(invalid("moving_average(): the window must be at least 1"));
                }
                transform(self, TransformKind::MovingAverage(n as usize))
            }
            "cumulative_sum" => transform(self, TransformKind::CumulativeSum),
            "elapsed" => transform(
                self,
                TransformKind::Elapsed {
                    unit: duration_arg(call, 1, 1)?,
                },
            ),
            "trend" => transform(self, TransformKind::Trend),
            "forecast" => {
                let horizon = duration_arg(call, 1, 0)?;
                let mut method = transform::ForecastMethod::HoltWinters;
                let mut season = None;
                for arg in call.args.iter().skip(2) {
                    match arg.unparenthesized() {
                        Expr::Literal(l) => match &l.value {
                            LiteralValue::String(s) => {
                                method = transform::ForecastMethod::from_name(s).ok_or_else(|| {
                                    invalid(format!("forecast(): unknown method {s:?}; expected 'holt-winters' or 'linear'"))
                                })?;
                            }
                            LiteralValue::Duration(d) if *d > 0 => season = Some(*d),
                            _ => {
                                return Err(invalid(format!(
                                    "forecast(): unexpected argument `{arg}`; expected 'holt-winters', 'linear' or a season duration"
                                )));
                            }
                        },
                        _ => {
                            return Err(invalid(format!(
                                "forecast(): unexpected argument `{arg}`"
                            )));
                        }
                    }
                }
                transform(
                    self,
                    TransformKind::Forecast {
                        horizon,
                        method,
                        season,
                        part: ForecastPart::Value,
                    },
                )
            }
            "anomaly" => {
                // anomaly(expr[, window][, threshold]): an integer second argument is the
                // window, any other number the threshold.
                let mut window = transform::DEFAULT_ANOMALY_WINDOW as i64;
                let mut threshold = None;
                for (i, arg) in call.args.iter().enumerate().skip(1) {
                    match arg.unparenthesized() {
                        Expr::Literal(l) => match l.value {
                            LiteralValue::Integer(n) if i == 1 => window = n,
                            LiteralValue::Integer(n) => threshold = Some(n as f64),
                            LiteralValue::Float(f) => threshold = Some(f),
                            _ => {
                                return Err(invalid(format!(
                                    "anomaly(): unexpected argument `{arg}`"
                                )));
                            }
                        },
                        _ => {
                            return Err(invalid(format!("anomaly(): unexpected argument `{arg}`")));
                        }
                    }
                }
                if window < 2 {
                    return Err(invalid("anomaly(): the window must be at least 2"));
                }
                transform(
                    self,
                    TransformKind::Anomaly {
                        window: window as usize,
                        threshold,
                    },
                )
            }
            other => Err(invalid(format!("unknown function {other}()"))),
        }
    }
}

/// The column name InfluxDB gives an unaliased expression.
fn default_name(expr: &Expr) -> String {
    match expr.unparenthesized() {
        Expr::VarRef(v) => v.name.clone(),
        Expr::Call(c) => match c.name.as_str() {
            "count" if matches!(c.args.first().map(Expr::unparenthesized), Some(Expr::Call(i)) if i.name == "distinct") => {
                "count".into()
            }
            name => name.to_string(),
        },
        Expr::Binary(b) => {
            let (l, r) = (default_name(&b.lhs), default_name(&b.rhs));
            match (l.is_empty(), r.is_empty()) {
                (true, _) => r,
                (_, true) => l,
                _ => format!("{l}_{r}"),
            }
        }
        Expr::Unary(u) => default_name(&u.operand),
        _ => String::new(),
    }
}

/// The measurements of the FROM clause, per database.
fn sources(
    engine: &Engine,
    default_db: Option<&str>,
    stmt: &SelectStatement,
) -> QueryResult<Vec<(std::sync::Arc<Database>, String)>> {
    let mut out = Vec::new();
    for source in &stmt.sources {
        let m = match source {
            Source::Measurement(m) => m,
            Source::Subquery { .. } => {
                return Err(QueryError::Unsupported("subqueries in FROM".into()));
            }
        };
        // `a.b` is retention policy `a` and measurement `b`, as in InfluxQL; Tally has no
        // retention policies, so when `a` names a database (and no database is given) it is
        // read as `db.measurement`.
        let rp_as_db = match (&m.database, &m.retention_policy) {
            (None, Some(rp)) if engine.database(&rp.name).is_some() => Some(rp.name.as_str()),
            _ => None,
        };
        let db_name = m
            .database
            .as_ref()
            .map(|d| d.name.as_str())
            .or(rp_as_db)
            .or(default_db)
            .ok_or(QueryError::DatabaseRequired)?;
        let db = engine
            .database(db_name)
            .ok_or_else(|| QueryError::DatabaseNotFound(db_name.to_string()))?;
        match &m.name {
            MeasurementName::Name(n) => out.push((db.clone(), n.name.clone())),
            MeasurementName::Regex(r) => {
                let re = condition::compile_regex(&r.pattern)?;
                for name in db.measurements() {
                    if re.is_match(&name) {
                        out.push((db.clone(), name));
                    }
                }
            }
        }
    }
    out.sort_by(|a, b| a.1.cmp(&b.1));
    out.dedup_by(|a, b| a.1 == b.1 && std::sync::Arc::ptr_eq(&a.0, &b.0));
    Ok(out)
}

pub(crate) fn execute(
    engine: &Engine,
    default_db: Option<&str>,
    stmt: &SelectStatement,
    ctx: &ExecContext,
    explain: Option<Explain>,
) -> QueryResult<Vec<ResultSeries>> {
    if stmt
        .tz
        .as_deref()
        .is_some_and(|tz| !tz.eq_ignore_ascii_case("utc"))
    {
        return Err(QueryError::Unsupported("tz() other than 'UTC'".into()));
    }
    let started = std::time::Instant::now();
    let mut out = Vec::new();
    let mut plan_lines = Vec::new();
    for (db, measurement) in sources(engine, default_db, stmt)? {
        let mut series =
            execute_measurement(&db, &measurement, stmt, ctx, explain, &mut plan_lines)?;
        out.append(&mut series);
    }
    if let Some(mode) = explain {
        let c = &ctx.counters;
        if mode == Explain::Analyze {
            plan_lines.push(format!(
                "execution time: {:.3} ms",
                started.elapsed().as_secs_f64() * 1000.0
            ));
            plan_lines.push(format!(
                "chunks read: {}; answered from statistics: {}; decoded: {} ({} points)",
                c.chunks.load(Ordering::Relaxed),
                c.chunks_from_stats.load(Ordering::Relaxed),
                c.chunks_decoded.load(Ordering::Relaxed),
                c.points_decoded.load(Ordering::Relaxed)
            ));
            plan_lines.push(format!(
                "rollup rows read: {}",
                c.rollup_rows.load(Ordering::Relaxed)
            ));
            plan_lines.push(format!("result series: {}", out.len()));
        }
        return Ok(vec![ResultSeries {
            columns: vec!["QUERY PLAN".into()],
            values: plan_lines
                .into_iter()
                .map(|l| vec![Value::String(l)])
                .collect(),
            ..ResultSeries::default()
        }]);
    }
    Ok(out)
}

/// One series (measurement + tag set) and its columns.
struct SeriesCols {
    tags: Vec<(String, String)>,
    columns: BTreeMap<String, (u32, FieldType)>,
}

struct Group {
    tags: Vec<(String, String)>,
    series: Vec<SeriesCols>,
}

struct TimeBuckets {
    first: i64,
    interval: i64,
    count: usize,
    offset: i64,
    grouped: bool,
}

impl TimeBuckets {
    fn start_of(&self, t: i64) -> i64 {
        if !self.grouped {
            return self.first;
        }
        (t - self.offset).div_euclid(self.interval) * self.interval + self.offset
    }

    fn index(&self, t: i64) -> usize {
        if !self.grouped {
            return 0;
        }
        ((self.start_of(t) - self.first) / self.interval) as usize
    }

    fn time(&self, b: usize) -> i64 {
        if self.grouped {
            self.first + b as i64 * self.interval
        } else {
            self.first
        }
    }

    /// The earliest timestamp the buckets take: without GROUP BY time, the one bucket takes
    /// everything in the time range, whatever its label.
    fn scan_start(&self) -> i64 {
        if self.grouped { self.first } else { i64::MIN }
    }

    /// The first timestamp after bucket `b`.
    fn end(&self, b: usize) -> i64 {
        if self.grouped {
            self.time(b).saturating_add(self.interval)
        } else {
            i64::MAX
        }
    }
}

fn execute_measurement(
    db: &Database,
    measurement: &str,
    stmt: &SelectStatement,
    ctx: &ExecContext,
    explain: Option<Explain>,
    plan_lines: &mut Vec<String>,
) -> QueryResult<Vec<ResultSeries>> {
    let field_types: BTreeMap<String, FieldType> = db.field_keys(measurement).into_iter().collect();
    let tag_keys = db.tag_keys(measurement);
    let schema = CatalogSchema::new(db, measurement);
    let cond = condition::analyze(stmt.condition.as_ref(), ctx.now, &schema)?;
    let regexes = match &cond.row_filter {
        Some(f) => RegexCache::for_expr(f)?,
        None => RegexCache::default(),
    };

    // Output columns.
    let mut planner = Planner {
        aggs: Vec::new(),
        fields: &field_types,
        tags: &tag_keys,
    };
    let mut columns: Vec<OutColumn> = Vec::new();
    for field in &stmt.fields {
        match field.expr.unparenthesized() {
            Expr::Wildcard(w) => {
                let mut names: Vec<(String, Out)> = Vec::new();
                if w.cast != Some(Cast::Tag) {
                    names.extend(field_types.keys().map(|f| {
                        (
                            f.clone(),
                            Out::Field {
                                name: f.clone(),
                                cast: None,
                            },
                        )
                    }));
                }
                if w.cast != Some(Cast::Field) {
                    names.extend(tag_keys.iter().map(|t| (t.clone(), Out::Tag(t.clone()))));
                }
                names.sort_by(|a, b| a.0.cmp(&b.0));
                columns.extend(
                    names
                        .into_iter()
                        .map(|(name, expr)| OutColumn { name, expr }),
                );
            }
            Expr::Call(call)
                if matches!(
                    call.args.first().map(Expr::unparenthesized),
                    Some(Expr::Wildcard(_))
                ) =>
            {
                // mean(*) and the like: one column per field the function accepts.
                for (f, t) in &field_types {
                    let kind_ok = !matches!(
                        call.name.as_str(),
                        "sum"
                            | "mean"
                            | "median"
                            | "min"
                            | "max"
                            | "spread"
                            | "stddev"
                            | "percentile"
                            | "p50"
                            | "p90"
                            | "p95"
                            | "p99"
                            | "top"
                            | "bottom"
                    ) || t.is_numeric();
                    if !kind_ok {
                        continue;
                    }
                    let mut args = call.args.clone();
                    args[0] = Expr::VarRef(crate::ast::VarRef {
                        name: f.clone(),
                        cast: None,
                        span: call.span,
                    });
                    let expr = planner.lower_call(&Call {
                        name: call.name.clone(),
                        args,
                        span: call.span,
                    })?;
                    columns.push(OutColumn {
                        name: format!("{}_{f}", call.name),
                        expr,
                    });
                }
            }
            expr => {
                let lowered = planner.lower(expr)?;
                let name = field
                    .alias
                    .as_ref()
                    .map(|a| a.name.clone())
                    .unwrap_or_else(|| default_name(expr));
                columns.push(OutColumn {
                    name,
                    expr: lowered,
                });
            }
        }
    }
    if columns.is_empty() {
        return Ok(Vec::new());
    }
    // A forecast column is followed by its prediction interval's bounds.
    let mut expanded = Vec::with_capacity(columns.len());
    for c in columns {
        let bounds = match &c.expr {
            Out::Transform(spec) => match spec.kind {
                TransformKind::Forecast {
                    horizon,
                    method,
                    season,
                    part: ForecastPart::Value,
                } => Some(
                    [
                        (ForecastPart::Lower, "lower"),
                        (ForecastPart::Upper, "upper"),
                    ]
                    .map(|(part, suffix)| OutColumn {
                        name: format!("{}_{suffix}", c.name),
                        expr: Out::Transform(Box::new(TransformSpec {
                            kind: TransformKind::Forecast {
                                horizon,
                                method,
                                season,
                                part,
                            },
                            input: spec.input.clone(),
                        })),
                    }),
                ),
                _ => None,
            },
            _ => None,
        };
        expanded.push(c);
        if let Some(bounds) = bounds {
            expanded.extend(bounds);
        }
    }
    let mut columns = expanded;
    // Unique names: mean, mean_1, mean_2 ...
    let mut seen: HashMap<String, usize> = HashMap::new();
    for c in &mut columns {
        let n = seen.entry(c.name.clone()).or_insert(0);
        if *n > 0 {
            c.name = format!("{}_{}", c.name, n);
        }
        *n += 1;
    }
    let aggs = planner.aggs;
    let aggregate_mode = !aggs.is_empty();
    if aggregate_mode && columns.iter().any(|c| c.expr.has_raw()) {
        return Err(invalid(
            "mixing aggregate and non-aggregate queries is not supported: wrap every field in a function",
        ));
    }
    let time_dim = stmt.group_by.as_ref().and_then(|g| g.time.as_ref());
    if !aggregate_mode && time_dim.is_some() {
        return Err(invalid(
            "GROUP BY time requires an aggregate function such as mean() in the SELECT list",
        ));
    }
    if aggs.iter().any(|a| a.kind.is_multi_row()) && columns.len() > 1 {
        return Err(invalid(
            "distinct(), top() and bottom() must be the only column of their SELECT",
        ));
    }

    // Which fields to read.
    let mut needed: BTreeSet<String> = aggs.iter().map(|a| a.field.clone()).collect();
    for c in &columns {
        c.expr.fields(&mut needed);
    }
    let mut filter_fields: BTreeSet<String> = BTreeSet::new();
    if let Some(f) = &cond.row_filter {
        f.for_each(&mut |e| {
            if let Expr::VarRef(v) = e
                && schema.is_field(&v.name)
            {
                filter_fields.insert(v.name.clone());
            }
        });
    }
    needed.extend(filter_fields.iter().cloned());
    needed.retain(|f| field_types.contains_key(f));

    // Series and their columns.
    let mut by_tags: BTreeMap<Vec<(String, String)>, SeriesCols> = BTreeMap::new();
    for f in &needed {
        for info in db.select(measurement, Some(f), &cond.tag_filter) {
            by_tags
                .entry(info.tags.clone())
                .or_insert_with(|| SeriesCols {
                    tags: info.tags.clone(),
                    columns: BTreeMap::new(),
                })
                .columns
                .insert(f.clone(), (info.id, info.field_type));
        }
    }
    // A series appears when it has a selected field, not only fields of the condition.
    let mut selected: BTreeSet<String> = aggs.iter().map(|a| a.field.clone()).collect();
    for c in &columns {
        c.expr.fields(&mut selected);
    }
    by_tags.retain(|_, s| s.columns.keys().any(|f| selected.contains(f)));
    ctx.check_series(by_tags.len() as u64)?;
    ctx.counters
        .series
        .fetch_add(by_tags.len() as u64, Ordering::Relaxed);

    // Groups.
    let group_keys: Vec<String> = match &stmt.group_by {
        Some(g) if g.wildcard => tag_keys.clone(),
        Some(g) => {
            let mut keys: Vec<String> = g.tags.iter().map(|t| t.name.clone()).collect();
            for r in &g.regexes {
                let re = condition::compile_regex(&r.pattern)?;
                keys.extend(tag_keys.iter().filter(|k| re.is_match(k)).cloned());
            }
            keys.sort();
            keys.dedup();
            keys
        }
        None => Vec::new(),
    };
    let mut groups: BTreeMap<Vec<(String, String)>, Group> = BTreeMap::new();
    for (_, s) in by_tags {
        let key: Vec<(String, String)> = group_keys
            .iter()
            .map(|k| {
                (
                    k.clone(),
                    s.tags
                        .iter()
                        .find(|(tk, _)| tk == k)
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default(),
                )
            })
            .collect();
        groups
            .entry(key.clone())
            .or_insert_with(|| Group {
                tags: key,
                series: Vec::new(),
            })
            .series
            .push(s);
    }
    let soffset = stmt.soffset.unwrap_or(0) as usize;
    let slimit = stmt.slimit.map_or(usize::MAX, |l| l as usize);
    let groups: Vec<Group> = groups.into_values().skip(soffset).take(slimit).collect();

    // One consistent view of every column the query reads.
    let ids: Vec<u32> = groups
        .iter()
        .flat_map(|g| {
            g.series
                .iter()
                .flat_map(|s| s.columns.values().map(|(id, _)| *id))
        })
        .collect();
    let (mut resolution, mut tier_reason) = choose_tier(db, stmt, &columns, &aggs, &cond, ctx);
    let read_max = if aggregate_mode {
        scan_max_time(stmt, &cond, ctx)
    } else {
        cond.max_time
    };
    let mut view = db.read_tiered(&ids, cond.min_time, read_max, resolution)?;
    // Rollup rows keep no integer sum that overflowed; raw data, while it lasts, gives the
    // exact sum that sum() and mean() promise.
    if resolution > 0
        && view.tier_use().blocks_without_raw == 0
        && rollup_sum_overflowed(&view, &groups, &aggs)?
    {
        view = db.read_tiered(&ids, cond.min_time, read_max, 0)?;
        resolution = 0;
        tier_reason = "an integer sum overflowed inside a rollup row".into();
    }

    if explain.is_some() {
        plan_lines.push(format!(
            "measurement: {measurement} (database {})",
            db.name()
        ));
        plan_lines.push(format!(
            "time range: {} .. {}",
            if cond.min_time == i64::MIN {
                "unbounded".to_string()
            } else {
                cond.min_time.to_string()
            },
            if cond.max_time == i64::MAX {
                "unbounded".to_string()
            } else {
                cond.max_time.to_string()
            }
        ));
        plan_lines.push(format!(
            "series matched: {} in {} group(s), {} column(s)",
            groups.iter().map(|g| g.series.len()).sum::<usize>(),
            groups.len(),
            ids.len()
        ));
        let tier = view.tier_use();
        if resolution == 0 {
            plan_lines.push(format!("tier: raw ({tier_reason})"));
        } else {
            let mut line = format!(
                "tier: {} rollups for {} block(s), raw data for {} block(s) ({tier_reason}; blocks not rolled up yet, or cut by the time range inside a bucket, read raw data)",
                tally_engine::format_duration(std::time::Duration::from_nanos(resolution as u64)),
                tier.rollup_blocks,
                tier.raw_blocks
            );
            if tier.approximate_blocks > 0 {
                line.push_str(&format!(
                    "; {} block(s) whose raw data expired read from their finest rollup, approximate at the range's edges",
                    tier.approximate_blocks
                ));
            }
            plan_lines.push(line);
        }
        plan_lines.push(format!(
            "mode: {}{}",
            if aggregate_mode {
                "aggregate"
            } else {
                "raw points"
            },
            if cond.row_filter.is_some() {
                ", field condition evaluated per point"
            } else {
                ""
            }
        ));
    }

    let result = if aggregate_mode {
        aggregate_query(
            measurement,
            stmt,
            ctx,
            &cond,
            &schema,
            &regexes,
            &columns,
            &aggs,
            &groups,
            &view,
            explain,
        )?
    } else {
        raw_query(
            measurement,
            stmt,
            ctx,
            &cond,
            &schema,
            &regexes,
            &columns,
            &groups,
            &view,
            explain,
        )?
    };
    if explain == Some(Explain::Plan) {
        let c = &ctx.counters;
        plan_lines.push(format!(
            "chunks: {} total; {} answerable from statistics; {} to decode ({} points)",
            c.chunks.load(Ordering::Relaxed),
            c.chunks_from_stats.load(Ordering::Relaxed),
            c.chunks_decoded.load(Ordering::Relaxed),
            c.points_decoded.load(Ordering::Relaxed)
        ));
    }
    Ok(result)
}

/// The last timestamp an aggregate query reads: its upper bound, or, for GROUP BY time without
/// one, now() (and just before now() when the offset now() ends the last bucket there).
fn scan_max_time(stmt: &SelectStatement, cond: &Condition, ctx: &ExecContext) -> i64 {
    let time_dim = stmt.group_by.as_ref().and_then(|g| g.time.as_ref());
    match time_dim {
        Some(td) if !cond.has_max => {
            if matches!(td.offset, Some(crate::ast::TimeOffset::Now { .. })) {
                ctx.now.saturating_sub(1)
            } else {
                ctx.now
            }
        }
        _ => cond.max_time,
    }
}

/// Whether a rollup row read for an integer sum() or mean() lost its sum to overflow.
fn rollup_sum_overflowed(view: &ReadView, groups: &[Group], aggs: &[AggSpec]) -> QueryResult<bool> {
    for agg in aggs {
        if !matches!(agg.kind, AggKind::Sum | AggKind::Mean) {
            continue;
        }
        for series in groups.iter().flat_map(|g| &g.series) {
            let Some((id, field_type)) = series.columns.get(&agg.field) else {
                continue;
            };
            // Headers tell which rollup chunks may hold such a row; only those are decoded.
            if !matches!(field_type, FieldType::Integer | FieldType::Unsigned)
                || !view.rollup_sum_may_overflow(*id)
            {
                continue;
            }
            let mut overflowed = false;
            let sums = RollupParts {
                sums: true,
                ..RollupParts::COUNTS
            };
            view.for_each_rollup_rows(*id, sums, |_, rows| -> QueryResult<()> {
                overflowed |= rows.sum_overflow.iter().any(|o| *o);
                Ok(())
            })?;
            if overflowed {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// The rollup resolution an aggregate query can read (0: raw data only), and why.
fn choose_tier(
    db: &Database,
    stmt: &SelectStatement,
    columns: &[OutColumn],
    aggs: &[AggSpec],
    cond: &Condition,
    ctx: &ExecContext,
) -> (i64, String) {
    if aggs.is_empty() {
        return (0, "raw points are selected".into());
    }
    if !ctx.allow_rollups {
        return (0, "rollups were turned off for this query".into());
    }
    if cond.row_filter.is_some() {
        return (0, "a condition on field values needs every point".into());
    }
    if let Some(a) = aggs.iter().find(|a| !Accumulator::rollup_capable(a.kind)) {
        return (0, format!("{:?} needs every point", a.kind).to_lowercase());
    }
    let time_dim = stmt.group_by.as_ref().and_then(|g| g.time.as_ref());
    // Rollup rows know the times of their first and last points, not of their minimum,
    // maximum or percentiles, nor which point a percentile picks.
    let selector_time = time_dim.is_none()
        && columns.len() == 1
        && matches!(columns[0].expr, Out::Agg(i) if matches!(aggs[i].kind, AggKind::Min | AggKind::Max | AggKind::Percentile(_)));
    if selector_time {
        return (0, "the selected point's time is reported".into());
    }
    let tiers: Vec<i64> = db
        .retention()
        .tiers
        .iter()
        .map(|t| i64::try_from(t.resolution.as_nanos()).unwrap_or(i64::MAX))
        .collect();
    let Some(td) = time_dim else {
        return match tiers.last() {
            Some(r) => (*r, "the query has one bucket".into()),
            None => (0, "no rollup tier is configured".into()),
        };
    };
    let offset = match &td.offset {
        Some(crate::ast::TimeOffset::Duration { nanos, .. }) => nanos.rem_euclid(td.interval),
        Some(crate::ast::TimeOffset::Now { .. }) => ctx.now.rem_euclid(td.interval),
        None => 0,
    };
    match tiers
        .iter()
        .rev()
        .find(|r| td.interval % **r == 0 && offset % **r == 0)
    {
        Some(r) => (
            *r,
            format!(
                "GROUP BY time({}) is a multiple of {}",
                tally_engine::format_duration(std::time::Duration::from_nanos(td.interval as u64)),
                tally_engine::format_duration(std::time::Duration::from_nanos(*r as u64))
            ),
        ),
        None => (
            0,
            "GROUP BY time is not a multiple of a tier's resolution".into(),
        ),
    }
}

/// Decoded points of one column, clipped to the time range.
fn read_column(
    view: &ReadView,
    column: u32,
    field_type: FieldType,
    cond: &Condition,
    ctx: &ExecContext,
    dry_run: bool,
) -> QueryResult<(Vec<i64>, ColumnValues)> {
    let mut ts_all = Vec::new();
    let mut values_all = ColumnValues::new(field_type);
    let mut ts = Vec::new();
    let mut values = ColumnValues::new(field_type);
    for piece in view.pieces(column)? {
        ctx.check()?;
        ctx.counters.chunks.fetch_add(1, Ordering::Relaxed);
        ctx.counters.chunks_decoded.fetch_add(1, Ordering::Relaxed);
        if dry_run {
            ctx.scanned(u64::from(piece.stats().count))?;
            continue;
        }
        piece.decode_into(&mut ts, &mut values)?;
        ctx.scanned(ts.len() as u64)?;
        let start = ts.partition_point(|t| *t < cond.min_time);
        let end = ts.partition_point(|t| *t <= cond.max_time);
        ts_all.extend_from_slice(&ts[start..end]);
        for i in start..end {
            values_all.push_from(&values, i);
        }
    }
    Ok((ts_all, values_all))
}

/// A joined row of one series: its time, tags and field values.
struct SeriesRow<'a> {
    time: i64,
    tags: &'a [(String, String)],
    fields: Vec<(&'a str, Value)>,
}

impl Row for SeriesRow<'_> {
    fn field(&self, name: &str) -> Option<Value> {
        self.fields
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
    }

    fn tag(&self, name: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads the given fields of a series and joins them by time into rows.
fn series_rows<'a>(
    series: &'a SeriesCols,
    fields: &'a BTreeSet<String>,
    view: &ReadView,
    cond: &Condition,
    ctx: &ExecContext,
    dry_run: bool,
) -> QueryResult<Vec<SeriesRow<'a>>> {
    let mut per_field: Vec<(&'a str, Vec<i64>, ColumnValues)> = Vec::new();
    for f in fields {
        if let Some((id, t)) = series.columns.get(f) {
            let (ts, values) = read_column(view, *id, *t, cond, ctx, dry_run)?;
            per_field.push((f.as_str(), ts, values));
        }
    }
    let mut times: Vec<i64> = per_field
        .iter()
        .flat_map(|(_, ts, _)| ts.iter().copied())
        .collect();
    times.sort_unstable();
    times.dedup();
    let mut cursors = vec![0usize; per_field.len()];
    let mut rows = Vec::with_capacity(times.len());
    for t in times {
        let mut fields = Vec::with_capacity(per_field.len());
        for (k, (name, ts, values)) in per_field.iter().enumerate() {
            if cursors[k] < ts.len() && ts[cursors[k]] == t {
                fields.push((
                    *name,
                    values
                        .get(cursors[k])
                        .map_or(Value::Null, |v| Value::from_field(&v)),
                ));
                cursors[k] += 1;
            }
        }
        rows.push(SeriesRow {
            time: t,
            tags: &series.tags,
            fields,
        });
    }
    Ok(rows)
}

fn cast_value(v: Value, cast: Option<Cast>) -> Value {
    match (cast, v) {
        (Some(Cast::Float), Value::Integer(i)) => Value::Float(i as f64),
        (Some(Cast::Float), Value::Unsigned(u)) => Value::Float(u as f64),
        (Some(Cast::Integer), Value::Float(f)) if f.is_finite() => Value::Integer(f as i64),
        (Some(Cast::Integer), Value::Unsigned(u)) => {
            i64::try_from(u).map_or(Value::Null, Value::Integer)
        }
        (
            Some(Cast::Float | Cast::Integer | Cast::Unsigned),
            v @ (Value::Boolean(_) | Value::String(_)),
        ) => {
            let _ = v;
            Value::Null
        }
        (_, v) => v,
    }
}

fn eval_row(expr: &Out, row: &SeriesRow<'_>) -> Value {
    match expr {
        Out::Field { name, cast } => cast_value(row.field(name).unwrap_or(Value::Null), *cast),
        Out::Tag(name) => row
            .tag(name)
            .map_or(Value::Null, |v| Value::String(v.to_string())),
        Out::Literal(v) => v.clone(),
        Out::Binary(op, a, b) => arithmetic(*op, &eval_row(a, row), &eval_row(b, row)),
        Out::Neg(a) => negate(eval_row(a, row)),
        // A transformation's column holds its input until the transformation runs over the rows.
        Out::Transform(spec) => eval_row(&spec.input, row),
        Out::Agg(_) => Value::Null,
    }
}

fn negate(v: Value) -> Value {
    match v {
        Value::Float(f) => Value::Float(-f),
        Value::Integer(i) => i.checked_neg().map_or(Value::Null, Value::Integer),
        _ => Value::Null,
    }
}

#[allow(clippy::too_many_arguments)]
fn raw_query(
    measurement: &str,
    stmt: &SelectStatement,
    ctx: &ExecContext,
    cond: &Condition,
    schema: &dyn Schema,
    regexes: &RegexCache,
    columns: &[OutColumn],
    groups: &[Group],
    view: &ReadView,
    explain: Option<Explain>,
) -> QueryResult<Vec<ResultSeries>> {
    let mut fields: BTreeSet<String> = BTreeSet::new();
    for c in columns {
        c.expr.fields(&mut fields);
    }
    if let Some(f) = &cond.row_filter {
        f.for_each(&mut |e| {
            if let Expr::VarRef(v) = e
                && schema.is_field(&v.name)
            {
                fields.insert(v.name.clone());
            }
        });
    }
    let dry_run = explain == Some(Explain::Plan);
    let mut out = Vec::new();
    let mut total_rows = 0u64;
    let group_by_tags = stmt
        .group_by
        .as_ref()
        .is_some_and(|g| g.wildcard || !g.tags.is_empty() || !g.regexes.is_empty());
    let limit = stmt.limit.map_or(usize::MAX, |l| l as usize);
    let offset = stmt.offset.unwrap_or(0) as usize;
    for group in groups {
        let per_series: Vec<QueryResult<Vec<TimedRow>>> = group
            .series
            .par_iter()
            .map(|s| {
                let rows = series_rows(s, &fields, view, cond, ctx, dry_run)?;
                let mut out = Vec::with_capacity(rows.len());
                for row in rows {
                    if let Some(f) = &cond.row_filter
                        && !condition::holds(f, &row, schema, regexes)
                    {
                        continue;
                    }
                    // A row with none of the selected fields is not a row of the result.
                    let values: Vec<Value> =
                        columns.iter().map(|c| eval_row(&c.expr, &row)).collect();
                    let has_field = columns.iter().zip(&values).any(|(c, v)| {
                        !v.is_null() && !matches!(c.expr, Out::Tag(_) | Out::Literal(_))
                    });
                    if has_field || columns.iter().any(|c| c.expr.has_transform()) {
                        out.push((row.time, values));
                    }
                }
                Ok(out)
            })
            .collect();
        let mut rows: Vec<(i64, Vec<Value>)> = Vec::new();
        for r in per_series {
            rows.extend(r?);
        }
        rows.sort_by_key(|(t, _)| *t);
        if columns.iter().any(|c| c.expr.has_transform()) {
            rows = apply_raw_transforms(columns, rows)?;
        }
        if stmt.order_desc {
            rows.reverse();
        }
        let rows: Vec<(i64, Vec<Value>)> = rows.into_iter().skip(offset).take(limit).collect();
        if rows.is_empty() {
            continue;
        }
        total_rows += rows.len() as u64;
        ctx.check_rows(total_rows)?;
        out.push(series_result(
            measurement,
            if group_by_tags { &group.tags } else { &[] },
            columns,
            rows,
        ));
    }
    Ok(out)
}

fn series_result(
    measurement: &str,
    tags: &[(String, String)],
    columns: &[OutColumn],
    rows: Vec<(i64, Vec<Value>)>,
) -> ResultSeries {
    let mut names = vec!["time".to_string()];
    names.extend(columns.iter().map(|c| c.name.clone()));
    ResultSeries {
        name: measurement.to_string(),
        tags: tags.to_vec(),
        columns: names,
        values: rows
            .into_iter()
            .map(|(t, vals)| {
                let mut row = Vec::with_capacity(vals.len() + 1);
                row.push(Value::Time(t));
                row.extend(vals);
                row
            })
            .collect(),
    }
}

/// Transformations over raw rows: each transformed column (which holds its input values) is
/// computed over the row sequence, and the columns are joined back by time.
fn apply_raw_transforms(
    columns: &[OutColumn],
    rows: Vec<(i64, Vec<Value>)>,
) -> QueryResult<Vec<(i64, Vec<Value>)>> {
    let mut sequences: Vec<Vec<(i64, Value)>> = Vec::new();
    for (k, c) in columns.iter().enumerate() {
        let seq: Vec<(i64, Value)> = match &c.expr {
            Out::Transform(spec) => {
                let input: Vec<(i64, f64)> = rows
                    .iter()
                    .filter_map(|(t, vals)| vals.get(k).and_then(Value::as_f64).map(|f| (*t, f)))
                    .collect();
                run_transform(spec.kind, &input, None)?
            }
            expr if expr.has_transform() => {
                return Err(QueryError::Unsupported(
                    "arithmetic on the result of a transformation function".into(),
                ));
            }
            _ => rows
                .iter()
                .map(|(t, vals)| (*t, vals.get(k).cloned().unwrap_or(Value::Null)))
                .collect(),
        };
        sequences.push(seq);
    }
    Ok(join_sequences(&sequences))
}

/// Joins per-column (time, value) sequences into rows by time.
fn join_sequences(sequences: &[Vec<(i64, Value)>]) -> Vec<(i64, Vec<Value>)> {
    let mut rows: BTreeMap<i64, Vec<Value>> = BTreeMap::new();
    for (k, seq) in sequences.iter().enumerate() {
        for (t, v) in seq {
            let row = rows
                .entry(*t)
                .or_insert_with(|| vec![Value::Null; sequences.len()]);
            row[k] = v.clone();
        }
    }
    rows.into_iter().collect()
}

fn run_transform(
    kind: TransformKind,
    input: &[(i64, f64)],
    interval: Option<i64>,
) -> QueryResult<Vec<(i64, Value)>> {
    let floats = |v: Vec<(i64, f64)>| v.into_iter().map(|(t, x)| (t, Value::Float(x))).collect();
    Ok(match kind {
        TransformKind::Derivative { unit, non_negative } => {
            floats(transform::derivative(input, unit, non_negative))
        }
        TransformKind::Difference { non_negative } => {
            floats(transform::difference(input, non_negative))
        }
        TransformKind::Rate { unit } => floats(transform::rate(input, unit)),
        TransformKind::MovingAverage(n) => floats(transform::moving_average(input, n)),
        TransformKind::CumulativeSum => floats(transform::cumulative_sum(input)),
        TransformKind::Elapsed { unit } => {
            let times: Vec<i64> = input.iter().map(|(t, _)| *t).collect();
            transform::elapsed(&times, unit)
                .into_iter()
                .map(|(t, e)| (t, Value::Integer(e)))
                .collect()
        }
        TransformKind::Trend => match transform::trend(input) {
            Some((_, fitted)) => floats(fitted),
            None => Vec::new(),
        },
        TransformKind::Forecast {
            horizon,
            method,
            season,
            part,
        } => {
            let Some(interval) = interval else {
                return Err(invalid(
                    "forecast() needs GROUP BY time(...) so that it knows the step between predictions",
                ));
            };
            transform::forecast(input, interval, horizon, method, season)
                .map_err(invalid)?
                .into_iter()
                .map(|p| {
                    let v = match part {
                        ForecastPart::Value => p.value,
                        ForecastPart::Lower => p.lower,
                        ForecastPart::Upper => p.upper,
                    };
                    (p.time, Value::Float(v))
                })
                .collect()
        }
        TransformKind::Anomaly { window, threshold } => {
            floats(transform::anomaly(input, window, threshold))
        }
    })
}

/// A row of values at a time.
type TimedRow = (i64, Vec<Value>);

/// Per-series scan state of an aggregate query: accumulators and reusable buffers.
struct ScanState {
    accs: Vec<Accumulator>,
    ts: Vec<i64>,
    values: ColumnValues,
}

/// Points a query decodes (or equivalents: a rollup chunk counts as this many) from which its
/// series are scanned on several threads.
const PARALLEL_FROM_POINTS: u64 = 50_000;
const ROLLUP_CHUNK_COST: u64 = 2_000;

/// The bucket whose aggregates a chunk's statistics answer without decoding it, if any: a
/// chunk wholly inside the range and one bucket whose statistics answer every aggregate (min
/// and max only when no point time must be reported), or an edge chunk of `last()`/`first()`.
fn stats_bucket(
    agg_ids: &[usize],
    aggs: &[AggSpec],
    stats: &tally_engine::ChunkStats,
    buckets: &TimeBuckets,
    cond: &Condition,
    need_point_time: bool,
) -> Option<usize> {
    let whole = stats.min_time >= cond.min_time.max(buckets.scan_start())
        && stats.max_time <= cond.max_time
        && buckets.index(stats.min_time) == buckets.index(stats.max_time);
    let answered = agg_ids.iter().all(|&i| {
        let kind = aggs[i].kind;
        kind.answers_from_stats(&stats.values)
            && !(need_point_time && matches!(kind, AggKind::Min | AggKind::Max))
    });
    if whole && answered {
        return Some(buckets.index(stats.min_time));
    }
    // Only last() (or only first()): a chunk that reaches out of the range still answers from
    // its newest (oldest) point when that point is in range and every in-range point of the
    // chunk falls into the bucket of that point.
    edge_only_bucket(agg_ids, aggs, stats, buckets, cond)
}

/// The bucket a chunk's statistics answer when every aggregate over it is `last()` (or every
/// one `first()`) and the chunk's newest (oldest) point is in range, with every in-range point
/// of the chunk in that point's bucket; `None` otherwise.
fn edge_only_bucket(
    agg_ids: &[usize],
    aggs: &[AggSpec],
    stats: &tally_engine::ChunkStats,
    buckets: &TimeBuckets,
    cond: &Condition,
) -> Option<usize> {
    let lo = cond.min_time.max(buckets.scan_start());
    let hi = cond.max_time;
    let all = |kind: AggKind| {
        agg_ids
            .iter()
            .all(|&i| aggs[i].kind == kind && kind.answers_from_stats(&stats.values))
    };
    let (edge, other_end) = if all(AggKind::Last) {
        (stats.max_time, stats.min_time.max(lo))
    } else if all(AggKind::First) {
        (stats.min_time, stats.max_time.min(hi))
    } else {
        return None;
    };
    if edge < lo || edge > hi {
        return None;
    }
    let b = buckets.index(edge);
    (b < buckets.count && buckets.index(other_end) == b).then_some(b)
}

#[allow(clippy::too_many_arguments)]
fn aggregate_query(
    measurement: &str,
    stmt: &SelectStatement,
    ctx: &ExecContext,
    cond: &Condition,
    schema: &dyn Schema,
    regexes: &RegexCache,
    columns: &[OutColumn],
    aggs: &[AggSpec],
    groups: &[Group],
    view: &ReadView,
    explain: Option<Explain>,
) -> QueryResult<Vec<ResultSeries>> {
    let time_dim = stmt.group_by.as_ref().and_then(|g| g.time.as_ref());
    let dry_run = explain == Some(Explain::Plan);
    // The bucket range: the query's bounds, or the data's first point and now().
    let buckets = match time_dim {
        Some(td) => {
            if td.interval <= 0 {
                return Err(invalid("GROUP BY time interval must be positive"));
            }
            let offset = match &td.offset {
                Some(crate::ast::TimeOffset::Duration { nanos, .. }) => {
                    nanos.rem_euclid(td.interval)
                }
                Some(crate::ast::TimeOffset::Now { .. }) => ctx.now.rem_euclid(td.interval),
                None => 0,
            };
            let lo = if cond.min_time != i64::MIN {
                cond.min_time
            } else {
                match first_point_time(view, groups)? {
                    Some(m) => m,
                    None => return Ok(Vec::new()),
                }
            };
            let hi = scan_max_time(stmt, cond, ctx);
            if hi < lo {
                return Ok(Vec::new());
            }
            let probe = TimeBuckets {
                first: 0,
                interval: td.interval,
                count: 0,
                offset,
                grouped: true,
            };
            let first = probe.start_of(lo);
            let last = probe.start_of(hi);
            let count =
                ((i128::from(last) - i128::from(first)) / i128::from(td.interval) + 1) as u128;
            let limit = if ctx.limits.max_result_rows > 0 {
                ctx.limits.max_result_rows
            } else {
                u64::MAX
            };
            if count > u128::from(limit) {
                return Err(QueryError::Limit {
                    what: "produce buckets:",
                    value: u64::try_from(count).unwrap_or(u64::MAX),
                    limit,
                    setting: "query.max_result_rows",
                });
            }
            TimeBuckets {
                first,
                interval: td.interval,
                count: count as usize,
                offset,
                grouped: true,
            }
        }
        None => TimeBuckets {
            first: if cond.min_time == i64::MIN {
                0
            } else {
                cond.min_time
            },
            interval: 1,
            count: 1,
            offset: 0,
            grouped: false,
        },
    };
    let scan_cond = Condition {
        max_time: scan_max_time(stmt, cond, ctx),
        ..cond.clone()
    };
    let single_selector = time_dim.is_none()
        && columns.len() == 1
        && matches!(columns[0].expr, Out::Agg(i) if aggs[i].kind.is_selector());
    let need_point_time = single_selector;
    let field_types: BTreeMap<&str, FieldType> = groups
        .iter()
        .flat_map(|g| {
            g.series
                .iter()
                .flat_map(|s| s.columns.iter().map(|(f, (_, t))| (f.as_str(), *t)))
        })
        .collect();
    let new_accs = || -> Vec<Accumulator> {
        aggs.iter()
            .map(|a| {
                let acc = Accumulator::new(
                    a.kind,
                    field_types
                        .get(a.field.as_str())
                        .copied()
                        .unwrap_or(FieldType::Float),
                    buckets.count,
                );
                // Rows of GROUP BY time carry their bucket's time, not a chosen point's.
                if time_dim.is_some() {
                    acc.without_point_times()
                } else {
                    acc
                }
            })
            .collect()
    };
    // Aggregates grouped by the field they read, so each column is decoded once.
    let mut by_field: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, a) in aggs.iter().enumerate() {
        by_field.entry(a.field.as_str()).or_default().push(i);
    }
    let mut filter_fields: BTreeSet<String> = BTreeSet::new();
    if let Some(f) = &cond.row_filter {
        f.for_each(&mut |e| {
            if let Expr::VarRef(v) = e
                && schema.is_field(&v.name)
            {
                filter_fields.insert(v.name.clone());
            }
        });
        filter_fields.extend(by_field.keys().map(|k| k.to_string()));
    }

    let scan_series = |mut state: ScanState, series: &SeriesCols| -> QueryResult<ScanState> {
        if cond.row_filter.is_some() {
            let rows = series_rows(series, &filter_fields, view, &scan_cond, ctx, dry_run)?;
            for (field, agg_ids) in &by_field {
                let Some((_, t)) = series.columns.get(*field) else {
                    continue;
                };
                let mut ts = Vec::new();
                let mut values = ColumnValues::new(*t);
                for row in &rows {
                    let Some(filter) = &cond.row_filter else {
                        continue;
                    };
                    if !condition::holds(filter, row, schema, regexes) {
                        continue;
                    }
                    if let Some(v) = row.field(field)
                        && let Some(fv) = field_value(&v)
                    {
                        ts.push(row.time);
                        values.push(&fv);
                    }
                }
                feed_runs(&mut state.accs, agg_ids, &buckets, &ts, &values);
            }
            return Ok(state);
        }
        for (field, agg_ids) in &by_field {
            let Some((id, _)) = series.columns.get(*field) else {
                continue;
            };
            for piece in view.pieces(*id)? {
                ctx.check()?;
                ctx.counters.chunks.fetch_add(1, Ordering::Relaxed);
                let stats = piece.stats();
                let from_stats =
                    stats_bucket(agg_ids, aggs, stats, &buckets, &scan_cond, need_point_time);
                if let Some(b) = from_stats {
                    ctx.counters
                        .chunks_from_stats
                        .fetch_add(1, Ordering::Relaxed);
                    if !dry_run {
                        for &i in agg_ids {
                            if !state.accs[i].add_stats(b, stats) {
                                return Err(invalid(format!(
                                    "BUG: chunk statistics cannot answer {:?} though answers_from_stats said they could",
                                    aggs[i].kind
                                )));
                            }
                        }
                    }
                    continue;
                }
                ctx.counters.chunks_decoded.fetch_add(1, Ordering::Relaxed);
                if dry_run {
                    ctx.scanned(u64::from(stats.count))?;
                    continue;
                }
                piece.decode_into(&mut state.ts, &mut state.values)?;
                ctx.scanned(state.ts.len() as u64)?;
                let start = state
                    .ts
                    .partition_point(|t| *t < scan_cond.min_time.max(buckets.scan_start()));
                let end = state.ts.partition_point(|t| *t <= scan_cond.max_time);
                if start < end {
                    feed_runs_range(
                        &mut state.accs,
                        agg_ids,
                        &buckets,
                        &state.ts,
                        &state.values,
                        start,
                        end,
                    );
                }
            }
            // Blocks answered by a rollup tier: one row per tier bucket.
            let parts = agg_ids.iter().fold(RollupParts::COUNTS, |p, &i| {
                p.union(aggs[i].kind.rollup_parts())
            });
            view.for_each_rollup_rows(*id, parts, |_, rows| -> QueryResult<()> {
                ctx.check()?;
                ctx.counters
                    .rollup_rows
                    .fetch_add(rows.len() as u64, Ordering::Relaxed);
                if dry_run {
                    return Ok(());
                }
                for &i in agg_ids {
                    state.accs[i].reserve_rollup(rows);
                }
                for r in 0..rows.len() {
                    let t = rows.times[r];
                    if t < buckets.scan_start() || t > scan_cond.max_time {
                        continue;
                    }
                    let b = buckets.index(t);
                    if b >= buckets.count {
                        continue;
                    }
                    for &i in agg_ids {
                        state.accs[i]
                            .add_rollup(b, rows, r)
                            .map_err(|e| invalid(e.to_string()))?;
                    }
                }
                Ok(())
            })?;
        }
        Ok(state)
    };

    let mut out = Vec::new();
    let mut total_rows = 0u64;
    let group_by_tags = stmt
        .group_by
        .as_ref()
        .is_some_and(|g| g.wildcard || !g.tags.is_empty() || !g.regexes.is_empty());
    // With enough groups to keep every thread busy, a group's series are scanned in order into
    // one state: splitting them too would cost a merge of every bucket of every partial state,
    // which for sketch-backed percentiles over rollups costs as much as the scan itself.
    // A query that decodes little is done before the pool's threads would wake to share it
    // (and their handover costs more than the work on a small machine): it runs on the
    // calling thread.
    let sequential = {
        let mut points_to_decode = 0u64;
        for series in groups.iter().flat_map(|g| &g.series) {
            for (field, agg_ids) in &by_field {
                let Some((id, _)) = series.columns.get(*field) else {
                    continue;
                };
                points_to_decode += ROLLUP_CHUNK_COST * view.rollup_chunk_count(*id) as u64;
                for stats in view.chunk_stats(*id) {
                    let from_stats =
                        stats_bucket(agg_ids, aggs, stats, &buckets, &scan_cond, need_point_time);
                    if from_stats.is_none() {
                        points_to_decode += u64::from(stats.count);
                    }
                }
            }
            if points_to_decode >= PARALLEL_FROM_POINTS {
                break;
            }
        }
        cond.row_filter.is_none() && points_to_decode < PARALLEL_FROM_POINTS
    };
    let series_in_order = sequential || groups.len() >= 2 * rayon::current_num_threads();
    let scan_group = |group: &Group| {
        if series_in_order {
            let mut state = ScanState {
                accs: new_accs(),
                ts: Vec::new(),
                values: ColumnValues::new(FieldType::Float),
            };
            for series in &group.series {
                state = scan_series(state, series)?;
            }
            return Ok(state.accs);
        }
        group
            .series
            .par_iter()
            .try_fold(
                || ScanState {
                    accs: new_accs(),
                    ts: Vec::new(),
                    values: ColumnValues::new(FieldType::Float),
                },
                &scan_series,
            )
            .map(|s| s.map(|s| s.accs))
            .try_reduce(new_accs, |mut a, b| {
                for (x, y) in a.iter_mut().zip(b) {
                    x.merge(y);
                }
                Ok(a)
            })
    };
    let fill = stmt
        .fill
        .as_ref()
        .map(|f| f.option.clone())
        .unwrap_or(FillOption::Null);
    // A group's rows are computed on the thread that scanned it: percentiles over rollups
    // merge their buckets' sketches then, which is much of such a query's work.
    let scan_and_compute = |group: &Group| -> QueryResult<Vec<TimedRow>> {
        let mut accs = scan_group(group)?;
        if dry_run {
            return Ok(Vec::new());
        }
        group_rows(
            &mut accs,
            aggs,
            columns,
            &buckets,
            &fill,
            single_selector,
            time_dim.map(|t| t.interval),
        )
    };
    let computed: Vec<QueryResult<Vec<TimedRow>>> = if sequential {
        groups.iter().map(scan_and_compute).collect()
    } else {
        groups.par_iter().map(scan_and_compute).collect()
    };
    if dry_run {
        for r in computed {
            r?;
        }
        return Ok(Vec::new());
    }
    for (group, rows) in groups.iter().zip(computed) {
        let mut rows = rows?;
        if stmt.order_desc {
            rows.reverse();
        }
        let rows: Vec<(i64, Vec<Value>)> = rows
            .into_iter()
            .skip(stmt.offset.unwrap_or(0) as usize)
            .take(stmt.limit.map_or(usize::MAX, |l| l as usize))
            .collect();
        if rows.is_empty() {
            continue;
        }
        total_rows += rows.len() as u64;
        ctx.check_rows(total_rows)?;
        out.push(series_result(
            measurement,
            if group_by_tags { &group.tags } else { &[] },
            columns,
            rows,
        ));
    }
    Ok(out)
}

/// The time of the earliest point the view holds for the groups' columns, in raw chunks or in
/// rollup rows.
fn first_point_time(view: &ReadView, groups: &[Group]) -> QueryResult<Option<i64>> {
    let mut earliest: Option<i64> = None;
    for (id, _) in groups
        .iter()
        .flat_map(|g| g.series.iter().flat_map(|s| s.columns.values()))
    {
        if let Some((t, _)) = view.time_bounds(*id) {
            earliest = Some(earliest.map_or(t, |e| e.min(t)));
        }
        let edges = RollupParts {
            edges: true,
            ..RollupParts::COUNTS
        };
        view.for_each_rollup_rows(*id, edges, |_, rows| -> QueryResult<()> {
            if let Some(&t) = rows.first_times.iter().min() {
                earliest = Some(earliest.map_or(t, |e| e.min(t)));
            }
            Ok(())
        })?;
    }
    Ok(earliest)
}

fn field_value(v: &Value) -> Option<FieldValue<'static>> {
    Some(match v {
        Value::Float(f) => FieldValue::Float(*f),
        Value::Integer(i) => FieldValue::Integer(*i),
        Value::Unsigned(u) => FieldValue::Unsigned(*u),
        Value::Boolean(b) => FieldValue::Boolean(*b),
        Value::String(s) => FieldValue::String(s.clone().into()),
        _ => return None,
    })
}

fn feed_runs(
    accs: &mut [Accumulator],
    agg_ids: &[usize],
    buckets: &TimeBuckets,
    ts: &[i64],
    values: &ColumnValues,
) {
    if !ts.is_empty() {
        feed_runs_range(accs, agg_ids, buckets, ts, values, 0, ts.len());
    }
}

/// Feeds `ts[start..end]` (sorted, none before the first bucket) to the accumulators one
/// bucket run at a time.
fn feed_runs_range(
    accs: &mut [Accumulator],
    agg_ids: &[usize],
    buckets: &TimeBuckets,
    ts: &[i64],
    values: &ColumnValues,
    start: usize,
    end: usize,
) {
    if !buckets.grouped {
        for &k in agg_ids {
            accs[k].add_slice(0, ts, values, start..end);
        }
        return;
    }
    let mut i = start;
    while i < end {
        let offset = i128::from(ts[i]) - i128::from(buckets.first);
        let b = (offset / i128::from(buckets.interval)) as usize;
        if b >= buckets.count {
            break;
        }
        let bucket_end = buckets.end(b);
        // Most runs are either the whole rest of a chunk or a handful of points.
        let run_end = if ts[end - 1] < bucket_end {
            end
        } else {
            i + ts[i..end].partition_point(|t| *t < bucket_end)
        };
        for &k in agg_ids {
            accs[k].add_slice(b, ts, values, i..run_end);
        }
        i = run_end;
    }
}

/// Evaluates an output expression for one bucket from the aggregates' values.
fn eval_bucket(expr: &Out, values: &[(Value, Option<i64>)]) -> Value {
    match expr {
        Out::Agg(i) => values.get(*i).map_or(Value::Null, |v| v.0.clone()),
        Out::Literal(v) => v.clone(),
        Out::Binary(op, a, b) => arithmetic(*op, &eval_bucket(a, values), &eval_bucket(b, values)),
        Out::Neg(a) => negate(eval_bucket(a, values)),
        _ => Value::Null,
    }
}

/// Applies FILL to one column's per-bucket values (`empty[b]` marks buckets without data).
fn fill_column(values: &mut [Value], empty: &[bool], times: &[i64], fill: &FillOption) {
    match fill {
        FillOption::None | FillOption::Null => {}
        FillOption::Integer(n) => {
            for (v, e) in values.iter_mut().zip(empty) {
                if *e && v.is_null() {
                    *v = Value::Integer(*n);
                }
            }
        }
        FillOption::Float(f) => {
            for (v, e) in values.iter_mut().zip(empty) {
                if *e && v.is_null() {
                    *v = Value::Float(*f);
                }
            }
        }
        FillOption::Previous => {
            let mut previous = Value::Null;
            for (v, e) in values.iter_mut().zip(empty) {
                if *e && v.is_null() {
                    *v = previous.clone();
                } else {
                    previous = v.clone();
                }
            }
        }
        FillOption::Linear => {
            let known: Vec<usize> = (0..values.len())
                .filter(|&b| !values[b].is_null())
                .collect();
            for pair in known.windows(2) {
                let (a, z) = (pair[0], pair[1]);
                let (Some(va), Some(vz)) = (values[a].as_f64(), values[z].as_f64()) else {
                    continue;
                };
                for b in a + 1..z {
                    if !empty[b] {
                        continue;
                    }
                    let frac = (times[b] - times[a]) as f64 / (times[z] - times[a]) as f64;
                    let v = va + (vz - va) * frac;
                    // Between two integers (or two unsigned values) the column keeps its type,
                    // truncated toward zero.
                    values[b] = match (&values[a], &values[z]) {
                        (Value::Integer(_), Value::Integer(_)) => Value::Integer(v as i64),
                        (Value::Unsigned(_), Value::Unsigned(_)) => Value::Unsigned(v as u64),
                        _ => Value::Float(v),
                    };
                }
            }
        }
    }
}

fn group_rows(
    accs: &mut [Accumulator],
    aggs: &[AggSpec],
    columns: &[OutColumn],
    buckets: &TimeBuckets,
    fill: &FillOption,
    single_selector: bool,
    interval: Option<i64>,
) -> QueryResult<Vec<(i64, Vec<Value>)>> {
    // Multi-row functions (distinct, top, bottom) stand alone.
    if let [
        OutColumn {
            expr: Out::Agg(i), ..
        },
    ] = columns
        && aggs[*i].kind.is_multi_row()
    {
        let mut rows = Vec::new();
        for b in 0..buckets.count {
            for (t, v) in accs[*i].rows(b) {
                let time = if aggs[*i].kind == AggKind::Distinct {
                    buckets.time(b)
                } else {
                    t
                };
                rows.push((time, vec![v]));
            }
        }
        return Ok(rows);
    }
    let n = buckets.count;
    let empty: Vec<bool> = (0..n)
        .map(|b| accs.iter().all(|a| !a.has_data(b)))
        .collect();
    // A group without a point in the range has no rows, whatever FILL says.
    if empty.iter().all(|e| *e) {
        return Ok(Vec::new());
    }
    let times: Vec<i64> = (0..n).map(|b| buckets.time(b)).collect();
    // Every bucket's aggregate values in one buffer, `aggs.len()` per bucket: a query over
    // thousands of buckets would otherwise spend much of its time allocating.
    let stride = aggs.len();
    let mut flat: Vec<(Value, Option<i64>)> = Vec::with_capacity(n * stride);
    for (b, &bucket_empty) in empty.iter().enumerate() {
        for (a, spec) in accs.iter_mut().zip(aggs) {
            // count() is 0, not null, where other fields have points;
            // count(distinct()) is 0 even in an empty bucket.
            let counts_nothing = match spec.kind {
                AggKind::Count => !bucket_empty,
                AggKind::CountDistinct => true,
                _ => false,
            };
            flat.push(if a.has_data(b) || counts_nothing {
                a.value(b)
            } else {
                (Value::Null, None)
            });
        }
    }
    if let Some(error) = accs.iter_mut().find_map(Accumulator::take_error) {
        return Err(invalid(error));
    }
    let bucket = |b: usize| &flat[b * stride..(b + 1) * stride];
    let keep = |b: usize| !(matches!(fill, FillOption::None) && empty[b]);
    // A plain column's value in every bucket, FILL applied.
    let plain_column = |expr: &Out| -> Vec<Value> {
        let mut values: Vec<Value> = (0..n).map(|b| eval_bucket(expr, bucket(b))).collect();
        fill_column(&mut values, &empty, &times, fill);
        values
    };
    // The time of bucket `b`'s row: a lone selector's point time, else the bucket's.
    let selector = match columns {
        [
            OutColumn {
                expr: Out::Agg(i), ..
            },
        ] if single_selector => Some(*i),
        _ => None,
    };
    let row_time = |b: usize| -> i64 {
        selector
            .and_then(|i| bucket(b).get(i).and_then(|v| v.1))
            .unwrap_or(times[b])
    };
    if columns.iter().all(|c| !c.expr.has_transform()) {
        // Plain columns share their rows one to one.
        let mut values: Vec<std::vec::IntoIter<Value>> = columns
            .iter()
            .map(|c| plain_column(&c.expr).into_iter())
            .collect();
        let mut rows = Vec::with_capacity(n);
        for b in 0..n {
            let row: Vec<Value> = values
                .iter_mut()
                .map(|v| v.next().unwrap_or(Value::Null))
                .collect();
            if keep(b) {
                rows.push((row_time(b), row));
            }
        }
        return Ok(rows);
    }
    let mut sequences: Vec<Vec<(i64, Value)>> = Vec::with_capacity(columns.len());
    for column in columns {
        match &column.expr {
            Out::Transform(spec) => {
                let input = plain_column(&spec.input);
                let rows: Vec<(i64, f64)> = (0..n)
                    .filter(|&b| keep(b))
                    .filter_map(|b| input[b].as_f64().map(|f| (times[b], f)))
                    .collect();
                sequences.push(run_transform(spec.kind, &rows, interval)?);
            }
            expr if expr.has_transform() => {
                return Err(QueryError::Unsupported(
                    "arithmetic on the result of a transformation function".into(),
                ));
            }
            expr => {
                let values = plain_column(expr);
                sequences.push(
                    (0..n)
                        .filter(|&b| keep(b))
                        .map(|b| (times[b], values[b].clone()))
                        .collect(),
                );
            }
        }
    }
    Ok(join_sequences(&sequences))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_arithmetic_handles_offsets_and_negative_times() {
        let b = TimeBuckets {
            first: -120,
            interval: 60,
            count: 4,
            offset: 0,
            grouped: true,
        };
        assert_eq!(b.start_of(-61), -120);
        assert_eq!(b.index(-61), 0);
        assert_eq!(b.index(-60), 1);
        assert_eq!(b.index(59), 2);
        let b = TimeBuckets {
            first: 15,
            interval: 60,
            count: 2,
            offset: 15,
            grouped: true,
        };
        assert_eq!(b.start_of(74), 15);
        assert_eq!(b.start_of(75), 75);
    }

    #[test]
    fn linear_fill_interpolates_between_known_buckets() {
        let mut v = vec![
            Value::Float(0.0),
            Value::Null,
            Value::Null,
            Value::Float(3.0),
        ];
        fill_column(
            &mut v,
            &[false, true, true, false],
            &[0, 1, 2, 3],
            &FillOption::Linear,
        );
        assert_eq!(
            v,
            vec![
                Value::Float(0.0),
                Value::Float(1.0),
                Value::Float(2.0),
                Value::Float(3.0)
            ]
        );
    }
}
