//! Administration and discovery: CREATE/DROP DATABASE and the SHOW statements, answered from
//! the catalog without reading data. Result shapes follow InfluxDB 1.x, which Grafana and the
//! `influx` CLI parse.

use std::sync::Arc;

use tally_engine::{Database, Engine, TagFilter};

use super::ExecContext;
use super::alerts::AlertCatalog;
use super::condition::{self, Schema, compile_regex};
use super::error::{QueryError, QueryResult, invalid};
use super::result::ResultSeries;
use super::value::Value;
use crate::ast::{
    CardinalityKind, Ident, MeasurementName, MeasurementRef, RetentionDuration, Statement,
    TagKeyMatch,
};

pub(crate) fn execute(
    engine: &Engine,
    default_db: Option<&str>,
    statement: &Statement,
    ctx: &ExecContext,
    alerts: Option<&dyn AlertCatalog>,
) -> QueryResult<Vec<ResultSeries>> {
    match statement {
        Statement::CreateDatabase(s) => {
            let db = engine.create_database(&s.name.name)?;
            if let Some(d) = s.retention.as_ref().and_then(|r| r.duration) {
                set_raw_retention(&db, d)?;
            }
            Ok(Vec::new())
        }
        Statement::DropDatabase(s) => {
            match engine.drop_database(&s.name.name) {
                // As in InfluxDB, dropping a database that does not exist is not an error.
                Ok(()) | Err(tally_engine::EngineError::DatabaseNotFound { .. }) => Ok(Vec::new()),
                Err(e) => Err(e.into()),
            }
        }
        Statement::ShowDatabases { .. } => Ok(vec![ResultSeries {
            name: "databases".into(),
            columns: vec!["name".into()],
            values: engine
                .database_names()
                .into_iter()
                .map(|n| vec![Value::String(n)])
                .collect(),
            ..ResultSeries::default()
        }]),
        Statement::ShowRetentionPolicies(s) => {
            let db = database(engine, s.database.as_ref(), default_db)?;
            // Tally keeps one retention per database (raw data plus rollup tiers); it is shown
            // in the shape clients expect, as InfluxDB's default policy, with the tiers added.
            let retention = db.retention();
            let raw = retention
                .raw
                .map_or_else(|| "0s".to_string(), influx_duration);
            let tiers: Vec<String> = retention
                .tiers
                .iter()
                .map(|t| {
                    format!(
                        "{}={}",
                        tally_engine::format_duration(t.resolution),
                        t.retention
                            .map_or_else(|| "inf".to_string(), tally_engine::format_duration)
                    )
                })
                .collect();
            Ok(vec![ResultSeries {
                columns: [
                    "name",
                    "duration",
                    "shardGroupDuration",
                    "replicaN",
                    "default",
                    "tiers",
                ]
                .map(String::from)
                .to_vec(),
                values: vec![vec![
                    Value::String("autogen".into()),
                    Value::String(raw),
                    Value::String(influx_duration(std::time::Duration::from_secs(86_400))),
                    Value::Integer(1),
                    Value::Boolean(true),
                    Value::String(tiers.join(",")),
                ]],
                ..ResultSeries::default()
            }])
        }
        Statement::ShowMeasurements(s) => {
            let db = database(engine, s.database.as_ref(), default_db)?;
            let mut names = db.measurements();
            match &s.measurement {
                Some(MeasurementName::Name(n)) => names.retain(|m| *m == n.name),
                Some(MeasurementName::Regex(r)) => {
                    let re = compile_regex(&r.pattern)?;
                    names.retain(|m| re.is_match(m));
                }
                None => {}
            }
            if s.condition.is_some() {
                let mut kept = Vec::new();
                for m in names {
                    let filter = condition::tag_only_filter(
                        s.condition.as_ref(),
                        &CatalogSchema::new(&db, &m),
                    )?;
                    if !db.series(&m, &filter).is_empty() {
                        kept.push(m);
                    }
                }
                names = kept;
            }
            let names = page(names, s.limit, s.offset);
            if names.is_empty() {
                return Ok(Vec::new());
            }
            Ok(vec![ResultSeries {
                name: "measurements".into(),
                columns: vec!["name".into()],
                values: names.into_iter().map(|n| vec![Value::String(n)]).collect(),
                ..ResultSeries::default()
            }])
        }
        Statement::ShowTagKeys(s) => {
            let db = database(engine, s.database.as_ref(), default_db)?;
            let mut out = Vec::new();
            for m in measurements(&db, &s.sources)? {
                let schema = CatalogSchema::new(&db, &m);
                let filter = condition::tag_only_filter(s.condition.as_ref(), &schema)?;
                let mut keys = db.tag_keys(&m);
                if !matches!(filter, TagFilter::All) {
                    keys.retain(|k| !db.tag_values(&m, k, &filter).is_empty());
                }
                let keys = page(keys, s.limit, s.offset);
                if !keys.is_empty() {
                    out.push(ResultSeries {
                        name: m,
                        columns: vec!["tagKey".into()],
                        values: keys.into_iter().map(|k| vec![Value::String(k)]).collect(),
                        ..ResultSeries::default()
                    });
                }
            }
            Ok(out)
        }
        Statement::ShowTagValues(s) => {
            let db = database(engine, s.database.as_ref(), default_db)?;
            let mut out = Vec::new();
            for m in measurements(&db, &s.sources)? {
                let schema = CatalogSchema::new(&db, &m);
                let filter = condition::tag_only_filter(s.condition.as_ref(), &schema)?;
                let keys = matching_keys(db.tag_keys(&m), &s.key)?;
                let mut rows = Vec::new();
                for k in keys {
                    for v in db.tag_values(&m, &k, &filter) {
                        rows.push(vec![Value::String(k.clone()), Value::String(v)]);
                    }
                }
                let rows = page(rows, s.limit, s.offset);
                if !rows.is_empty() {
                    out.push(ResultSeries {
                        name: m,
                        columns: vec!["key".into(), "value".into()],
                        values: rows,
                        ..ResultSeries::default()
                    });
                }
            }
            Ok(out)
        }
        Statement::ShowFieldKeys(s) => {
            let db = database(engine, s.database.as_ref(), default_db)?;
            let mut out = Vec::new();
            for m in measurements(&db, &s.sources)? {
                let keys = page(db.field_keys(&m), s.limit, s.offset);
                if !keys.is_empty() {
                    out.push(ResultSeries {
                        name: m,
                        columns: vec!["fieldKey".into(), "fieldType".into()],
                        values: keys
                            .into_iter()
                            .map(|(k, t)| vec![Value::String(k), Value::String(t.name().into())])
                            .collect(),
                        ..ResultSeries::default()
                    });
                }
            }
            Ok(out)
        }
        Statement::ShowSeries(s) => {
            let db = database(engine, s.database.as_ref(), default_db)?;
            let mut keys = Vec::new();
            for m in measurements(&db, &s.sources)? {
                let schema = CatalogSchema::new(&db, &m);
                let filter = condition::tag_only_filter(s.condition.as_ref(), &schema)?;
                for (name, tags) in db.series(&m, &filter) {
                    keys.push(series_key(&name, &tags));
                }
            }
            let keys = page(keys, s.limit, s.offset);
            if keys.is_empty() {
                return Ok(Vec::new());
            }
            Ok(vec![ResultSeries {
                columns: vec!["key".into()],
                values: keys.into_iter().map(|k| vec![Value::String(k)]).collect(),
                ..ResultSeries::default()
            }])
        }
        Statement::ShowCardinality(s) => {
            let db = database(engine, s.database.as_ref(), default_db)?;
            let ms = measurements(&db, &s.sources)?;
            let count = |m: &str| -> QueryResult<u64> {
                let schema = CatalogSchema::new(&db, m);
                let filter = condition::tag_only_filter(s.condition.as_ref(), &schema)?;
                Ok(match s.kind {
                    CardinalityKind::Series => db.series(m, &filter).len() as u64,
                    CardinalityKind::Measurement => u64::from(!db.series(m, &filter).is_empty()),
                    CardinalityKind::TagKey => db.tag_keys(m).len() as u64,
                    CardinalityKind::FieldKey => db.field_keys(m).len() as u64,
                    CardinalityKind::TagValues => {
                        let keys = match &s.key {
                            Some(k) => matching_keys(db.tag_keys(m), k)?,
                            None => db.tag_keys(m),
                        };
                        keys.iter()
                            .map(|k| db.tag_values(m, k, &filter).len() as u64)
                            .sum()
                    }
                })
            };
            // Counts are exact (the catalog is in memory), so EXACT changes nothing.
            if matches!(
                s.kind,
                CardinalityKind::Series | CardinalityKind::Measurement
            ) {
                let mut total = 0u64;
                for m in &ms {
                    total += count(m)?;
                }
                return Ok(vec![ResultSeries {
                    columns: vec!["count".into()],
                    values: vec![vec![Value::Integer(total as i64)]],
                    ..ResultSeries::default()
                }]);
            }
            let mut out = Vec::new();
            for m in ms {
                let n = count(&m)?;
                out.push(ResultSeries {
                    name: m,
                    columns: vec!["count".into()],
                    values: vec![vec![Value::Integer(n as i64)]],
                    ..ResultSeries::default()
                });
            }
            Ok(out)
        }
        Statement::ShowDiagnostics { .. } | Statement::ShowStats { .. } => {
            let mut values = Vec::new();
            for name in engine.database_names() {
                if let Some(db) = engine.database(&name) {
                    let s = db.stats();
                    values.push(vec![
                        Value::String(name),
                        Value::Integer(s.series as i64),
                        Value::Integer(s.columns as i64),
                        Value::Integer(s.points_written as i64),
                        Value::Integer(s.head_bytes as i64),
                        Value::Integer(s.segments as i64),
                        Value::Integer(s.segment_bytes as i64),
                    ]);
                }
            }
            Ok(vec![ResultSeries {
                name: "databases".into(),
                columns: [
                    "database",
                    "series",
                    "columns",
                    "pointsWritten",
                    "headBytes",
                    "segments",
                    "segmentBytes",
                ]
                .map(String::from)
                .to_vec(),
                values,
                ..ResultSeries::default()
            }])
        }
        Statement::ShowRules { .. } | Statement::ShowAlerts { .. } => {
            let Some(catalog) = alerts else {
                return Err(invalid(
                    "SHOW RULES and SHOW ALERTS need a server with alert rules (tallyd); this query runs without one",
                ));
            };
            let (name, table) = match statement {
                Statement::ShowRules { .. } => ("rules", catalog.rules()),
                _ => ("alerts", catalog.alerts()),
            };
            Ok(vec![ResultSeries {
                name: name.into(),
                columns: table.columns,
                values: table.rows,
                ..ResultSeries::default()
            }])
        }
        Statement::ShowCompactions { .. } => {
            let mut values = Vec::new();
            for name in engine.database_names() {
                let Some(db) = engine.database(&name) else {
                    continue;
                };
                for c in db.compactions() {
                    values.push(vec![
                        Value::Time(c.finished_ns),
                        Value::String(name.clone()),
                        Value::Time(c.block_start),
                        Value::Integer(c.inputs as i64),
                        Value::Integer(c.outputs as i64),
                        Value::Integer(c.bytes_in as i64),
                        Value::Integer(c.bytes_out as i64),
                        Value::Integer(c.points as i64),
                        Value::Integer(c.rollup_rows as i64),
                        Value::Float(c.duration.as_secs_f64() * 1000.0),
                        Value::String(c.outcome.clone()),
                    ]);
                }
            }
            Ok(vec![ResultSeries {
                name: "compactions".into(),
                columns: [
                    "time",
                    "database",
                    "block",
                    "inputs",
                    "outputs",
                    "bytes_in",
                    "bytes_out",
                    "points",
                    "rollup_rows",
                    "duration_ms",
                    "outcome",
                ]
                .map(String::from)
                .to_vec(),
                values,
                ..ResultSeries::default()
            }])
        }
        Statement::CreateRetentionPolicy(s) => {
            let db = database(engine, Some(&s.database), default_db)?;
            set_raw_retention(&db, s.duration)?;
            Ok(Vec::new())
        }
        Statement::AlterRetentionPolicy(s) => {
            let db = database(engine, Some(&s.database), default_db)?;
            if let Some(d) = s.duration {
                set_raw_retention(&db, d)?;
            }
            Ok(Vec::new())
        }
        Statement::DropRetentionPolicy(_) => Err(invalid(
            "a database always has exactly one retention; set DURATION INF to keep raw data forever",
        )),
        Statement::DropMeasurement(s) => {
            let db = database(engine, None, default_db)?;
            db.delete(Some(&s.name.name), &TagFilter::All, i64::MIN, i64::MAX)?;
            Ok(Vec::new())
        }
        Statement::DropSeries(s) => {
            let db = database(engine, None, default_db)?;
            delete(&db, &s.sources, s.condition.as_ref(), ctx, true)?;
            Ok(Vec::new())
        }
        Statement::Delete(s) => {
            let db = database(engine, None, default_db)?;
            let sources: Vec<MeasurementRef> = s.source.iter().cloned().collect();
            delete(&db, &sources, s.condition.as_ref(), ctx, false)?;
            Ok(Vec::new())
        }
        other => Err(invalid(format!("`{other}` cannot run here"))),
    }
}

/// Sets a database's raw retention, keeping its tiers.
fn set_raw_retention(db: &Database, d: RetentionDuration) -> QueryResult<()> {
    let mut retention = db.retention();
    retention.raw = match d {
        RetentionDuration::Infinite => None,
        RetentionDuration::Finite(0) => None,
        RetentionDuration::Finite(ns) if ns < 3_600_000_000_000 => {
            return Err(invalid("retention duration must be at least 1h, or INF"));
        }
        RetentionDuration::Finite(ns) => Some(std::time::Duration::from_nanos(ns as u64)),
    };
    db.set_retention(retention)?;
    Ok(())
}

/// InfluxDB's duration format: `168h0m0s`.
fn influx_duration(d: std::time::Duration) -> String {
    let s = d.as_secs();
    format!("{}h{}m{}s", s / 3600, s % 3600 / 60, s % 60)
}

/// DELETE and DROP SERIES: tag conditions select the series, time conditions (DELETE only)
/// bound the points.
fn delete(
    db: &Database,
    sources: &[MeasurementRef],
    condition: Option<&crate::ast::Expr>,
    ctx: &ExecContext,
    series_only: bool,
) -> QueryResult<()> {
    let names = if sources.is_empty() {
        db.measurements()
    } else {
        measurements(db, sources)?
    };
    for m in names {
        let schema = CatalogSchema::new(db, &m);
        let cond = condition::analyze(condition, ctx.now, &schema)?;
        if cond.row_filter.is_some() {
            return Err(invalid(
                "DELETE and DROP SERIES accept conditions on tags and time only, not on field values",
            ));
        }
        if series_only && (cond.min_time != i64::MIN || cond.max_time != i64::MAX) {
            return Err(invalid(
                "DROP SERIES does not take time conditions; use DELETE to remove a time range",
            ));
        }
        db.delete(Some(&m), &cond.tag_filter, cond.min_time, cond.max_time)?;
    }
    Ok(())
}

fn database(
    engine: &Engine,
    on: Option<&Ident>,
    default_db: Option<&str>,
) -> QueryResult<Arc<Database>> {
    let name = on
        .map(|i| i.name.as_str())
        .or(default_db)
        .ok_or(QueryError::DatabaseRequired)?;
    engine
        .database(name)
        .ok_or_else(|| QueryError::DatabaseNotFound(name.to_string()))
}

/// The measurements a FROM clause names (all of them without FROM).
fn measurements(db: &Database, sources: &[MeasurementRef]) -> QueryResult<Vec<String>> {
    let all = db.measurements();
    if sources.is_empty() {
        return Ok(all);
    }
    let mut out = Vec::new();
    for source in sources {
        match &source.name {
            MeasurementName::Name(n) => {
                if all.contains(&n.name) {
                    out.push(n.name.clone());
                }
            }
            MeasurementName::Regex(r) => {
                let re = compile_regex(&r.pattern)?;
                out.extend(all.iter().filter(|m| re.is_match(m)).cloned());
            }
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn matching_keys(keys: Vec<String>, key: &TagKeyMatch) -> QueryResult<Vec<String>> {
    Ok(match key {
        TagKeyMatch::Equal(k) => keys.into_iter().filter(|x| *x == k.name).collect(),
        TagKeyMatch::NotEqual(k) => keys.into_iter().filter(|x| *x != k.name).collect(),
        TagKeyMatch::Regex(r) => {
            let re = compile_regex(&r.pattern)?;
            keys.into_iter().filter(|x| re.is_match(x)).collect()
        }
        TagKeyMatch::NotRegex(r) => {
            let re = compile_regex(&r.pattern)?;
            keys.into_iter().filter(|x| !re.is_match(x)).collect()
        }
        TagKeyMatch::In(list) => keys
            .into_iter()
            .filter(|x| list.iter().any(|k| k.name == *x))
            .collect(),
    })
}

fn page<T>(items: Vec<T>, limit: Option<u64>, offset: Option<u64>) -> Vec<T> {
    let offset = offset.unwrap_or(0) as usize;
    let limit = limit.map_or(usize::MAX, |l| l as usize);
    items.into_iter().skip(offset).take(limit).collect()
}

/// A series key as InfluxDB prints it: `cpu,host=a,region=x` with line protocol escaping.
pub(crate) fn series_key(measurement: &str, tags: &[(String, String)]) -> String {
    let mut out = String::new();
    escape_into(&mut out, measurement, &[',', ' ']);
    for (k, v) in tags {
        out.push(',');
        escape_into(&mut out, k, &[',', '=', ' ']);
        out.push('=');
        escape_into(&mut out, v, &[',', '=', ' ']);
    }
    out
}

fn escape_into(out: &mut String, text: &str, special: &[char]) {
    for c in text.chars() {
        if special.contains(&c) {
            out.push('\\');
        }
        out.push(c);
    }
}

/// Tells fields from tags using the catalog of one measurement.
pub(crate) struct CatalogSchema {
    fields: Vec<String>,
}

impl CatalogSchema {
    pub(crate) fn new(db: &Database, measurement: &str) -> CatalogSchema {
        CatalogSchema {
            fields: db
                .field_keys(measurement)
                .into_iter()
                .map(|(k, _)| k)
                .collect(),
        }
    }
}

impl Schema for CatalogSchema {
    fn is_field(&self, name: &str) -> bool {
        self.fields.iter().any(|f| f == name)
    }
}
