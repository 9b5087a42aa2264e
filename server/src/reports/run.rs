//! Running a report: every query with its placeholders filled in, every figure computed in
//! dependency order, every section turned into the data its renderers draw.
//!
//! A query that fails does not stop the report: the figure or section shows the error and the
//! report lists it under `errors`, so a scheduled report still arrives and says what is wrong.

use std::collections::{BTreeMap, BTreeSet};

use tally_engine::Engine;
use tally_query::{QueryOptions, ResultSeries, Value};

use super::figures::{self, Number};
use super::model::{
    BreakdownSection, ChartSection, ComparisonSection, ComparisonSort, FigureDefinition,
    NumberOrParameter, PeriodChoice, QueryList, ReportDefinition, SectionDefinition, TableSection,
    TargetsSection, Unit,
};
use super::output::{
    ChartOutput, ChartSeries, ColumnKind, ColumnOutput, FigureOutput, PeriodOutput, ReportOutput,
    SectionOutput, SeriesRole, TableOutput, TextPart,
};
use super::period::{ReportPeriod, duration_literal, format_instant, rfc3339};
use super::placeholders::Placeholders;
use super::units::format_value;

/// Most series one chart draws; the rest are counted as omitted.
const MAX_CHART_SERIES: usize = 24;
/// Most rows one table shows when its section sets no limit.
const MAX_TABLE_ROWS: usize = 500;

/// The parameters every report can use, from the configuration.
#[derive(Clone, Debug, Default)]
pub(crate) struct Parameters {
    pub values: BTreeMap<String, f64>,
    /// Per-model values (latency targets), by model name.
    pub overrides: BTreeMap<String, BTreeMap<String, f64>>,
    /// Target parameters the configuration leaves unset.
    pub unset_targets: BTreeSet<String>,
    /// The history trend and forecast queries read, in nanoseconds.
    pub history_ns: i64,
}

/// One run of one report.
pub(crate) struct RunRequest<'a> {
    pub definition: &'a ReportDefinition,
    pub period: ReportPeriod,
    /// The database the queries read; the definition's when `None`.
    pub database: Option<String>,
    /// Read raw data only, never rollup tiers (for comparisons and benchmarks).
    pub raw_only: bool,
    /// When the report was made, in nanoseconds.
    pub generated_at_ns: i64,
}

/// The placeholders of one period of a run, the report's own parameters included.
pub(crate) fn placeholders_for(
    period: &ReportPeriod,
    previous: bool,
    parameters: &Parameters,
    definition: &ReportDefinition,
) -> Placeholders {
    Placeholders::new(
        period,
        previous,
        parameters.values.clone(),
        parameters.overrides.clone(),
        parameters.unset_targets.clone(),
    )
    .with_parameters(&definition.parameters)
}

/// The threshold of a count for a series, by its tags.
type Threshold<'a> = Box<dyn Fn(&[(String, String)]) -> Option<f64> + 'a>;

struct Runner<'a> {
    engine: &'a Engine,
    database: String,
    raw_only: bool,
    now_ns: i64,
    current: Placeholders,
    previous: Placeholders,
    errors: Vec<String>,
    methods: BTreeSet<String>,
    /// Results by filled-in query text, so a query shared by figures and sections runs once.
    cache: BTreeMap<String, Result<Vec<ResultSeries>, String>>,
}

impl Runner<'_> {
    fn placeholders(&self, period: PeriodChoice) -> &Placeholders {
        match period {
            PeriodChoice::Current => &self.current,
            PeriodChoice::Previous => &self.previous,
        }
    }

    fn run_one(&mut self, filled: &str) -> Result<Vec<ResultSeries>, String> {
        if let Some(cached) = self.cache.get(filled) {
            return cached.clone();
        }
        let options = QueryOptions {
            database: Some(self.database.clone()),
            now_ns: Some(self.now_ns),
            raw_only: self.raw_only,
            ..QueryOptions::default()
        };
        let outcome = match tally_query::execute(self.engine, filled, &options) {
            Err(e) => Err(format!("{e}\n{}", e.render(filled))),
            Ok(results) => match results.into_iter().next() {
                None => Ok(Vec::new()),
                Some(result) => match result.error {
                    Some(error) => Err(error),
                    None => Ok(result.series),
                },
            },
        };
        self.note_methods(filled);
        self.cache.insert(filled.to_string(), outcome.clone());
        outcome
    }

    /// Runs a query list: the first alternative that returns data wins; with none, the last
    /// that ran without error (an empty result) or the first error.
    fn run(
        &mut self,
        queries: &QueryList,
        period: PeriodChoice,
    ) -> (String, Result<Vec<ResultSeries>, String>) {
        let mut first_error: Option<(String, String)> = None;
        let mut empty: Option<String> = None;
        for text in queries.texts() {
            let filled = match self.placeholders(period).fill(text) {
                Ok(filled) => filled,
                Err(e) => {
                    first_error.get_or_insert((text.to_string(), e.to_string()));
                    continue;
                }
            };
            match self.run_one(&filled) {
                Ok(series) if series.iter().any(|s| !s.values.is_empty()) => {
                    return (filled, Ok(series));
                }
                Ok(_) => {
                    empty.get_or_insert(filled);
                }
                Err(e) => {
                    first_error.get_or_insert((filled, e));
                }
            }
        }
        match (empty, first_error) {
            (Some(filled), _) => (filled, Ok(Vec::new())),
            (None, Some((filled, error))) => (filled, Err(error)),
            (None, None) => (String::new(), Ok(Vec::new())),
        }
    }

    fn note_methods(&mut self, query: &str) {
        let lower = query.to_ascii_lowercase();
        if ["percentile(", "p50(", "p90(", "p95(", "p99(", "median("]
            .iter()
            .any(|f| lower.contains(f))
        {
            self.methods.insert(if self.raw_only {
                "Percentiles are exact: the nearest-rank value of the raw points.".to_string()
            } else {
                "Percentiles are read from rollup tiers where a tier covers the interval (a sketch within 1 % relative error of the exact value), otherwise they are the exact nearest-rank value of the raw points.".to_string()
            });
        }
        if lower.contains("forecast(") {
            let method = if lower.contains("'linear'") {
                "linear: the least-squares line extrapolated, with the textbook 95 % prediction interval"
            } else {
                "Holt-Winters: additive exponential smoothing fitted by least squares, with a 95 % interval growing with the square root of the steps ahead"
            };
            self.methods.insert(format!(
                "Forecasts use forecast() over daily sums ({method}); the interval of a month-end total adds the daily bounds, which is wider than the interval of the sum."
            ));
        }
        if lower.contains("trend(") {
            self.methods.insert(
                "Trends are the least-squares line of trend() over daily sums; the slope is the line's change per day.".to_string(),
            );
        }
        if lower.contains("sum(") || lower.contains("count(") {
            self.methods.insert(
                "Sums and counts are exact: integers are added in 128 bits, counts are integers, and rollup tiers hold exact sums and counts.".to_string(),
            );
        }
    }

    fn threshold(&self, threshold: Option<&NumberOrParameter>) -> Option<Threshold<'_>> {
        match threshold? {
            NumberOrParameter::Number(n) => {
                let n = *n;
                Some(Box::new(move |_: &[(String, String)]| Some(n)))
            }
            NumberOrParameter::Parameter(name) => {
                let bare = name.strip_prefix('$').unwrap_or(name).to_string();
                Some(Box::new(move |tags: &[(String, String)]| {
                    self.current.parameter_for(&bare, tags)
                }))
            }
        }
    }
}

/// Runs a report over its period.
pub(crate) fn run_report(
    engine: &Engine,
    request: &RunRequest<'_>,
    parameters: &Parameters,
) -> ReportOutput {
    let definition = request.definition;
    let period = &request.period;
    let database = request
        .database
        .clone()
        .unwrap_or_else(|| definition.database.clone());
    let mut runner = Runner {
        engine,
        database: database.clone(),
        raw_only: request.raw_only,
        now_ns: period.to,
        current: placeholders_for(period, false, parameters, definition),
        previous: placeholders_for(period, true, parameters, definition),
        errors: Vec::new(),
        methods: BTreeSet::new(),
        cache: BTreeMap::new(),
    };
    let figures = compute_figures(&mut runner, &definition.figures);
    let by_name: BTreeMap<&str, &FigureOutput> =
        figures.iter().map(|f| (f.name.as_str(), f)).collect();
    let variables = text_variables(definition, period, &database);
    let mut sections = Vec::with_capacity(definition.sections.len());
    for section in &definition.sections {
        let output = match section {
            SectionDefinition::Title(title) => SectionOutput::Title {
                text: title.text.clone(),
            },
            SectionDefinition::Text(text) => {
                let parts = fill_text(&text.text, &by_name, &variables);
                let text = parts
                    .iter()
                    .map(|part| match part {
                        TextPart::Words { text } => text.as_str(),
                        TextPart::Figure { display, .. } => display.as_str(),
                    })
                    .collect();
                SectionOutput::Text { text, parts }
            }
            SectionDefinition::Figures(list) => SectionOutput::Figures {
                title: list.title.clone(),
                figures: list.figures.clone(),
            },
            SectionDefinition::Chart(chart) => SectionOutput::Chart(run_chart(&mut runner, chart)),
            SectionDefinition::Table(table) => SectionOutput::Table(run_table(&mut runner, table)),
            SectionDefinition::Comparison(comparison) => {
                SectionOutput::Table(run_comparison(&mut runner, comparison))
            }
            SectionDefinition::Breakdown(breakdown) => {
                SectionOutput::Table(run_breakdown(&mut runner, breakdown))
            }
            SectionDefinition::Targets(targets) => {
                SectionOutput::Table(run_targets(&mut runner, targets))
            }
        };
        if let SectionOutput::Chart(ChartOutput {
            error: Some(error),
            title,
            ..
        })
        | SectionOutput::Table(TableOutput {
            error: Some(error),
            title,
            ..
        }) = &output
        {
            runner.errors.push(format!("section {title:?}: {error}"));
        }
        sections.push(output);
    }
    let mut all_parameters = runner.current.parameters().clone();
    all_parameters.extend(definition.parameters.clone());
    ReportOutput {
        name: definition.name.clone(),
        title: definition.title.clone(),
        description: definition.description.clone(),
        database,
        period: PeriodOutput {
            from: rfc3339(period.from),
            to: rfc3339(period.to),
            from_ns: period.from,
            to_ns: period.to,
            previous_from_ns: period.previous_from,
            previous_to_ns: period.previous_to,
            timezone: period.zone.name.clone(),
            interval: duration_literal(period.interval),
            label: format!(
                "{} to {}",
                format_instant(period.from, &period.zone),
                format_instant(period.to, &period.zone)
            ),
        },
        generated_at: rfc3339(request.generated_at_ns),
        parameters: all_parameters,
        figures,
        sections,
        methods: runner.methods.into_iter().collect(),
        errors: runner.errors,
    }
}

fn text_variables(
    definition: &ReportDefinition,
    period: &ReportPeriod,
    database: &str,
) -> BTreeMap<&'static str, String> {
    BTreeMap::from([
        ("from", format_instant(period.from, &period.zone)),
        ("to", format_instant(period.to, &period.zone)),
        ("title", definition.title.clone()),
        ("timezone", period.zone.name.clone()),
        ("interval", duration_literal(period.interval)),
        ("database", database.to_string()),
    ])
}

fn compute_figures(runner: &mut Runner<'_>, definitions: &[FigureDefinition]) -> Vec<FigureOutput> {
    let order = match figures::evaluation_order(definitions) {
        Ok(order) => order,
        Err(e) => {
            runner.errors.push(e);
            (0..definitions.len()).collect()
        }
    };
    let mut values: BTreeMap<String, Option<Number>> = BTreeMap::new();
    let mut outputs: Vec<Option<FigureOutput>> = vec![None; definitions.len()];
    for index in order {
        let Some(definition) = definitions.get(index) else {
            continue;
        };
        let (value, query, error) = match (&definition.query, &definition.expr) {
            (Some(queries), _) => {
                let (filled, result) = runner.run(queries, definition.period);
                let value = result.and_then(|series| {
                    let threshold = runner.threshold(definition.threshold.as_ref());
                    figures::reduce(
                        &series,
                        &definition.column,
                        definition.reduce,
                        threshold.as_deref(),
                        definition.scale,
                    )
                });
                match value {
                    Ok(value) => (value, Some(filled), None),
                    Err(e) => (None, Some(filled), Some(e)),
                }
            }
            (None, Some(expr)) => {
                match figures::evaluate(expr, &values, runner.placeholders(definition.period)) {
                    Ok(value) => (value.map(Number::Float), None, None),
                    Err(e) => (None, None, Some(e)),
                }
            }
            (None, None) => (
                None,
                None,
                Some("the figure has neither query nor expr".into()),
            ),
        };
        if let Some(error) = &error {
            runner
                .errors
                .push(format!("figure {:?}: {error}", definition.name));
        }
        values.insert(definition.name.clone(), value);
        let method = if definition.method.is_empty() {
            match (&query, &definition.expr) {
                (Some(query), _) => format!("{} of `{query}`", definition.reduce.describe()),
                (None, Some(expr)) => format!("computed as `{expr}`"),
                (None, None) => String::new(),
            }
        } else {
            runner
                .placeholders(definition.period)
                .fill(&definition.method)
                .unwrap_or_else(|_| definition.method.clone())
        };
        let display = match value {
            Some(value) => format_value(value, definition.unit),
            None => "n/a".to_string(),
        };
        let label = if definition.label.is_empty() {
            definition.name.clone()
        } else {
            definition.label.clone()
        };
        if let Some(slot) = outputs.get_mut(index) {
            *slot = Some(FigureOutput {
                name: definition.name.clone(),
                label,
                value,
                display,
                unit: definition.unit,
                period: definition.period,
                query,
                expr: definition.expr.clone(),
                method,
                error,
            });
        }
    }
    outputs.into_iter().flatten().collect()
}

fn fill_text(
    text: &str,
    figures: &BTreeMap<&str, &FigureOutput>,
    variables: &BTreeMap<&'static str, String>,
) -> Vec<TextPart> {
    let mut parts = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            break;
        };
        if open > 0 {
            parts.push(TextPart::Words {
                text: rest[..open].to_string(),
            });
        }
        let name = after[..close].trim();
        if let Some(figure) = figures.get(name) {
            parts.push(TextPart::Figure {
                figure: name.to_string(),
                display: figure.display.clone(),
            });
        } else if let Some(value) = variables.get(name) {
            parts.push(TextPart::Words {
                text: value.clone(),
            });
        } else {
            parts.push(TextPart::Words {
                text: format!("{{{{ {name} }}}}"),
            });
        }
        rest = &after[close + 2..];
    }
    if !rest.is_empty() {
        parts.push(TextPart::Words {
            text: rest.to_string(),
        });
    }
    parts
}

fn number_of(value: &Value) -> Option<f64> {
    match value {
        Value::Float(f) if f.is_finite() => Some(*f),
        Value::Integer(i) => Some(*i as f64),
        Value::Unsigned(u) => Some(*u as f64),
        _ => None,
    }
}

fn time_of(value: &Value) -> Option<i64> {
    match value {
        Value::Time(t) | Value::Integer(t) => Some(*t),
        _ => None,
    }
}

fn cell_json(value: &Value) -> serde_json::Value {
    match value {
        Value::Null => serde_json::Value::Null,
        Value::Float(f) => serde_json::Number::from_f64(*f)
            .map_or(serde_json::Value::Null, serde_json::Value::Number),
        Value::Integer(i) => (*i).into(),
        Value::Unsigned(u) => (*u).into(),
        Value::Boolean(b) => (*b).into(),
        Value::String(s) => s.clone().into(),
        Value::Time(t) => (*t).into(),
        other => serde_json::Value::String(format!("{other:?}")),
    }
}

fn number_json(value: Option<f64>) -> serde_json::Value {
    value
        .and_then(serde_json::Number::from_f64)
        .map_or(serde_json::Value::Null, serde_json::Value::Number)
}

/// A unit for a column from its name, when the section names none.
fn unit_from_name(name: &str, units: &BTreeMap<String, Unit>, fallback: Unit) -> Unit {
    if let Some(unit) = units.get(name) {
        return *unit;
    }
    let lower = name.to_ascii_lowercase();
    if lower.ends_with("_usd") || lower.contains("cost") {
        Unit::Usd
    } else if lower.ends_with("_ms") || lower.starts_with("latency") || lower.starts_with("ttft") {
        Unit::Ms
    } else if lower.contains("tokens") {
        Unit::Tokens
    } else if lower == "requests" {
        Unit::Requests
    } else if lower.ends_with("_pct") || lower.ends_with("percent") {
        Unit::Percent
    } else if lower.ends_with("_mib") {
        Unit::Mib
    } else {
        fallback
    }
}

fn series_label(series: &ResultSeries, column: &str, single_column: bool) -> String {
    let tags: Vec<String> = series
        .tags
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    match (tags.is_empty(), single_column) {
        (true, _) => column.to_string(),
        (false, true) => tags.join(", "),
        (false, false) => format!("{} {column}", tags.join(", ")),
    }
}

fn run_chart(runner: &mut Runner<'_>, chart: &ChartSection) -> ChartOutput {
    let mut queries = Vec::new();
    let mut series_out = Vec::new();
    let mut error = None;
    let mut omitted = 0usize;
    let overlays: Vec<QueryList> = chart
        .overlays
        .iter()
        .map(|o| QueryList::One(o.clone()))
        .collect();
    for (index, list) in std::iter::once(&chart.query)
        .chain(overlays.iter())
        .enumerate()
    {
        let (filled, result) = runner.run(list, PeriodChoice::Current);
        if !filled.is_empty() {
            queries.push(filled);
        }
        let series = match result {
            Ok(series) => series,
            Err(e) => {
                if index == 0 {
                    error = Some(e);
                } else {
                    runner
                        .errors
                        .push(format!("chart {:?} overlay: {e}", chart.title));
                }
                continue;
            }
        };
        for one in &series {
            let time_index = one.columns.iter().position(|c| c == "time");
            let value_columns: Vec<(usize, &String)> = one
                .columns
                .iter()
                .enumerate()
                .filter(|(_, c)| c.as_str() != "time")
                .collect();
            let lines = value_columns
                .iter()
                .filter(|(_, c)| !c.ends_with("_lower") && !c.ends_with("_upper"))
                .count();
            for (column_index, column) in &value_columns {
                if series_out.len() >= MAX_CHART_SERIES {
                    omitted += 1;
                    continue;
                }
                let role = if column.ends_with("_lower") {
                    SeriesRole::Lower
                } else if column.ends_with("_upper") {
                    SeriesRole::Upper
                } else {
                    SeriesRole::Line
                };
                let points = one
                    .values
                    .iter()
                    .enumerate()
                    .map(|(row_index, row)| {
                        let time = time_index
                            .and_then(|t| row.get(t))
                            .and_then(time_of)
                            .unwrap_or(row_index as i64);
                        (time, row.get(*column_index).and_then(number_of))
                    })
                    .collect();
                series_out.push(ChartSeries {
                    label: series_label(one, column, lines <= 1 && role == SeriesRole::Line),
                    tags: one.tags.iter().cloned().collect(),
                    column: (*column).clone(),
                    role,
                    points,
                });
            }
        }
    }
    ChartOutput {
        title: chart.title.clone(),
        description: chart.description.clone(),
        chart: chart.chart,
        unit: chart.unit,
        queries,
        series: series_out,
        error,
        omitted_series: omitted,
    }
}

fn empty_table(source: &'static str, title: &str, description: &str) -> TableOutput {
    TableOutput {
        source,
        title: title.to_string(),
        description: description.to_string(),
        queries: Vec::new(),
        columns: Vec::new(),
        rows: Vec::new(),
        missed: Vec::new(),
        omitted_rows: 0,
        error: None,
    }
}

fn tag_keys(series: &[ResultSeries]) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    for one in series {
        for (key, _) in &one.tags {
            if !keys.contains(key) {
                keys.push(key.clone());
            }
        }
    }
    keys
}

fn tag_value(tags: &[(String, String)], key: &str) -> String {
    tags.iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

fn column(name: &str, label: &str, kind: ColumnKind, unit: Unit) -> ColumnOutput {
    ColumnOutput {
        name: name.to_string(),
        label: label.to_string(),
        kind,
        unit,
    }
}

/// Sorts rows by a numeric column, largest first (missing values last), and applies a limit.
fn sort_and_limit(
    table: &mut TableOutput,
    sort_column: Option<usize>,
    by_magnitude: bool,
    limit: Option<usize>,
) {
    if let Some(index) = sort_column {
        let key = |row: &Vec<serde_json::Value>| {
            row.get(index)
                .and_then(serde_json::Value::as_f64)
                .map(|v| if by_magnitude { v.abs() } else { v })
        };
        // Marks point at rows by index, so they move with their rows.
        let mut indexed: Vec<(usize, Vec<serde_json::Value>)> = std::mem::take(&mut table.rows)
            .into_iter()
            .enumerate()
            .collect();
        indexed.sort_by(|a, b| match (key(&a.1), key(&b.1)) {
            (Some(x), Some(y)) => y.total_cmp(&x),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        });
        let mut new_position = vec![0usize; indexed.len()];
        for (position, (old, _)) in indexed.iter().enumerate() {
            if let Some(slot) = new_position.get_mut(*old) {
                *slot = position;
            }
        }
        table.rows = indexed.into_iter().map(|(_, row)| row).collect();
        for mark in &mut table.missed {
            mark.0 = new_position.get(mark.0).copied().unwrap_or(mark.0);
        }
    }
    let limit = limit.unwrap_or(MAX_TABLE_ROWS).min(MAX_TABLE_ROWS);
    if table.rows.len() > limit {
        table.omitted_rows = table.rows.len() - limit;
        table.rows.truncate(limit);
        table.missed.retain(|(row, _)| *row < limit);
    }
}

fn run_table(runner: &mut Runner<'_>, section: &TableSection) -> TableOutput {
    let mut table = empty_table("table", &section.title, &section.description);
    let (filled, result) = runner.run(&section.query, PeriodChoice::Current);
    table.queries.push(filled);
    let series = match result {
        Ok(series) => series,
        Err(e) => {
            table.error = Some(e);
            return table;
        }
    };
    let keys = tag_keys(&series);
    for key in &keys {
        table
            .columns
            .push(column(key, key, ColumnKind::Tag, Unit::None));
    }
    let value_columns: Vec<String> = series
        .first()
        .map(|s| s.columns.clone())
        .unwrap_or_default();
    // A result without GROUP BY time has one row per series stamped with the start of the
    // period: its time column says nothing and is left out.
    let show_time = series.iter().any(|s| s.values.len() > 1);
    for name in &value_columns {
        if name == "time" {
            if show_time {
                table
                    .columns
                    .push(column(name, "time", ColumnKind::Time, Unit::None));
            }
            continue;
        }
        let unit = unit_from_name(name, &section.units, Unit::None);
        table
            .columns
            .push(column(name, name, ColumnKind::Value, unit));
        if section.changes {
            table.columns.push(column(
                &format!("{name}_change"),
                &format!("{name} change"),
                ColumnKind::Change,
                unit,
            ));
        }
    }
    for one in &series {
        let mut previous: BTreeMap<usize, f64> = BTreeMap::new();
        for row in &one.values {
            let mut cells: Vec<serde_json::Value> = keys
                .iter()
                .map(|k| tag_value(&one.tags, k).into())
                .collect();
            for (index, name) in one.columns.iter().enumerate() {
                let value = row.get(index).cloned().unwrap_or(Value::Null);
                if name == "time" {
                    if show_time {
                        cells.push(cell_json(&value));
                    }
                    continue;
                }
                if let Some(parameter) = section.targets.get(name)
                    && let (Some(number), Some(target)) = (
                        number_of(&value),
                        runner
                            .current
                            .parameter_for(parameter.trim_start_matches('$'), &one.tags),
                    )
                    && number > target
                {
                    table.missed.push((table.rows.len(), cells.len()));
                }
                cells.push(cell_json(&value));
                if section.changes {
                    let now = number_of(&value);
                    cells.push(number_json(
                        now.zip(previous.get(&index).copied()).map(|(n, p)| n - p),
                    ));
                    if let Some(now) = now {
                        previous.insert(index, now);
                    }
                }
            }
            table.rows.push(cells);
        }
    }
    let sort_column = (!section.sort.is_empty())
        .then(|| table.columns.iter().position(|c| c.name == section.sort))
        .flatten();
    sort_and_limit(&mut table, sort_column, false, section.limit);
    table
}

type TagKey = Vec<(String, String)>;

/// The value columns of a one-row-per-series result, by series tags.
fn rows_by_tags(series: &[ResultSeries]) -> BTreeMap<TagKey, BTreeMap<String, Value>> {
    let mut out: BTreeMap<TagKey, BTreeMap<String, Value>> = BTreeMap::new();
    for one in series {
        let entry = out.entry(one.tags.clone()).or_default();
        // Without GROUP BY time there is one row; with it, the last row holds the latest value.
        if let Some(row) = one.values.last() {
            for (index, name) in one.columns.iter().enumerate() {
                if name != "time" {
                    entry.insert(name.clone(), row.get(index).cloned().unwrap_or(Value::Null));
                }
            }
        }
    }
    out
}

fn run_comparison(runner: &mut Runner<'_>, section: &ComparisonSection) -> TableOutput {
    let mut table = empty_table("comparison", &section.title, &section.description);
    let (current_query, current) = runner.run(&section.query, PeriodChoice::Current);
    let (previous_query, previous) = runner.run(&section.query, PeriodChoice::Previous);
    table.queries.push(current_query);
    table.queries.push(previous_query);
    let (current, previous) = match (current, previous) {
        (Ok(c), Ok(p)) => (c, p),
        (Err(e), _) | (_, Err(e)) => {
            table.error = Some(e);
            return table;
        }
    };
    let mut keys = tag_keys(&current);
    for key in tag_keys(&previous) {
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    let value_names: Vec<String> = current
        .iter()
        .chain(previous.iter())
        .flat_map(|s| s.columns.iter())
        .filter(|c| c.as_str() != "time")
        .fold(Vec::new(), |mut names, c| {
            if !names.contains(c) {
                names.push(c.clone());
            }
            names
        });
    for key in &keys {
        table
            .columns
            .push(column(key, key, ColumnKind::Tag, Unit::None));
    }
    for name in &value_names {
        let unit = unit_from_name(name, &section.units, Unit::None);
        table
            .columns
            .push(column(name, name, ColumnKind::Value, unit));
        table.columns.push(column(
            &format!("{name}_previous"),
            &format!("{name} before"),
            ColumnKind::Previous,
            unit,
        ));
        table.columns.push(column(
            &format!("{name}_change"),
            &format!("{name} change"),
            ColumnKind::Change,
            unit,
        ));
        table.columns.push(column(
            &format!("{name}_change_pct"),
            "%",
            ColumnKind::ChangePct,
            Unit::Percent,
        ));
    }
    let current_rows = rows_by_tags(&current);
    let previous_rows = rows_by_tags(&previous);
    let all_tags: BTreeSet<&TagKey> = current_rows.keys().chain(previous_rows.keys()).collect();
    for tags in all_tags {
        let mut cells: Vec<serde_json::Value> =
            keys.iter().map(|k| tag_value(tags, k).into()).collect();
        for name in &value_names {
            let now = current_rows.get(tags).and_then(|r| r.get(name));
            let before = previous_rows.get(tags).and_then(|r| r.get(name));
            let now_number = now.and_then(number_of);
            // A series absent from a period used nothing in it.
            let before_number = before.and_then(number_of).or(Some(0.0));
            cells.push(now.map_or(serde_json::Value::from(0), cell_json));
            cells.push(before.map_or(serde_json::Value::from(0), cell_json));
            let now_or_zero = now_number.or(Some(0.0));
            cells.push(number_json(
                now_or_zero.zip(before_number).map(|(n, b)| n - b),
            ));
            cells.push(number_json(
                now_or_zero
                    .zip(before_number)
                    .filter(|(_, b)| *b != 0.0)
                    .map(|(n, b)| (n - b) / b.abs() * 100.0),
            ));
        }
        table.rows.push(cells);
    }
    let first_value = value_names.first().cloned().unwrap_or_default();
    let (sort_name, by_magnitude) = match section.sort {
        ComparisonSort::Current => (first_value, false),
        ComparisonSort::Change => (format!("{first_value}_change"), true),
    };
    let sort_column = table.columns.iter().position(|c| c.name == sort_name);
    sort_and_limit(&mut table, sort_column, by_magnitude, section.limit);
    table
}

fn run_breakdown(runner: &mut Runner<'_>, section: &BreakdownSection) -> TableOutput {
    let mut table = empty_table("breakdown", &section.title, &section.description);
    let mut per_column: Vec<BTreeMap<TagKey, Option<Number>>> = Vec::new();
    let mut keys: Vec<String> = Vec::new();
    for definition in &section.columns {
        let (filled, result) = runner.run(&definition.query, PeriodChoice::Current);
        table.queries.push(filled);
        let series = match result {
            Ok(series) => series,
            Err(e) => {
                table.error = Some(format!("column {:?}: {e}", definition.name));
                per_column.push(BTreeMap::new());
                continue;
            }
        };
        for key in tag_keys(&series) {
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        let mut values = BTreeMap::new();
        for one in &series {
            let threshold = runner.threshold(definition.threshold.as_ref());
            let value = figures::reduce(
                std::slice::from_ref(one),
                &definition.column,
                definition.reduce,
                threshold.as_deref(),
                definition.scale,
            );
            match value {
                Ok(value) => {
                    values.insert(one.tags.clone(), value);
                }
                Err(e) => table.error = Some(format!("column {:?}: {e}", definition.name)),
            }
        }
        per_column.push(values);
    }
    for key in &keys {
        table
            .columns
            .push(column(key, key, ColumnKind::Tag, Unit::None));
    }
    for definition in &section.columns {
        let label = if definition.label.is_empty() {
            definition.name.clone()
        } else {
            definition.label.clone()
        };
        table.columns.push(column(
            &definition.name,
            &label,
            ColumnKind::Value,
            definition.unit,
        ));
    }
    let all_tags: BTreeSet<&TagKey> = per_column.iter().flat_map(|c| c.keys()).collect();
    for tags in all_tags {
        let mut cells: Vec<serde_json::Value> =
            keys.iter().map(|k| tag_value(tags, k).into()).collect();
        for values in &per_column {
            cells.push(
                values
                    .get(tags)
                    .copied()
                    .flatten()
                    .map_or(serde_json::Value::Null, Number::to_json),
            );
        }
        table.rows.push(cells);
    }
    let sort_column = (!section.sort.is_empty())
        .then(|| table.columns.iter().position(|c| c.name == section.sort))
        .flatten();
    sort_and_limit(&mut table, sort_column, false, section.limit);
    table
}

fn run_targets(runner: &mut Runner<'_>, section: &TargetsSection) -> TableOutput {
    let mut table = empty_table("targets", &section.title, &section.description);
    let (filled, result) = runner.run(&section.query, PeriodChoice::Current);
    table.queries.push(filled);
    let series = match result {
        Ok(series) => series,
        Err(e) => {
            table.error = Some(e);
            return table;
        }
    };
    let keys = tag_keys(&series);
    for key in &keys {
        table
            .columns
            .push(column(key, key, ColumnKind::Tag, Unit::None));
    }
    table
        .columns
        .push(column("checked", "checked", ColumnKind::Label, Unit::None));
    table
        .columns
        .push(column("target", "target", ColumnKind::Value, section.unit));
    table
        .columns
        .push(column("worst", "worst", ColumnKind::Value, section.unit));
    table.columns.push(column(
        "hours",
        "hours with data",
        ColumnKind::Value,
        Unit::Hours,
    ));
    table.columns.push(column(
        "missed_hours",
        "hours missed",
        ColumnKind::Value,
        Unit::Hours,
    ));
    table
        .columns
        .push(column("missed", "missed at", ColumnKind::Times, Unit::None));
    for one in &series {
        let time_index = one.columns.iter().position(|c| c == "time");
        for (checked, parameter) in &section.targets {
            let Some(index) = one.columns.iter().position(|c| c == checked) else {
                continue;
            };
            let Some(target) = runner
                .current
                .parameter_for(parameter.trim_start_matches('$'), &one.tags)
            else {
                // The configuration leaves this target unset: nothing to check.
                continue;
            };
            let mut hours = 0i64;
            let mut worst: Option<f64> = None;
            let mut missed: Vec<serde_json::Value> = Vec::new();
            for row in &one.values {
                let Some(value) = row.get(index).and_then(number_of) else {
                    continue;
                };
                hours += 1;
                worst = Some(worst.map_or(value, |w| w.max(value)));
                if value > target {
                    let time = time_index.and_then(|t| row.get(t)).and_then(time_of);
                    missed.push(time.map_or(serde_json::Value::Null, serde_json::Value::from));
                }
            }
            let mut cells: Vec<serde_json::Value> = keys
                .iter()
                .map(|k| tag_value(&one.tags, k).into())
                .collect();
            cells.push(checked.clone().into());
            cells.push(number_json(Some(target)));
            cells.push(number_json(worst));
            cells.push(hours.into());
            let missed_count = missed.len() as i64;
            if missed_count > 0 {
                table.missed.push((table.rows.len(), cells.len()));
            }
            cells.push(missed_count.into());
            cells.push(serde_json::Value::Array(missed));
            table.rows.push(cells);
        }
    }
    let sort_column = table.columns.iter().position(|c| c.name == "missed_hours");
    sort_and_limit(&mut table, sort_column, false, None);
    table
}
