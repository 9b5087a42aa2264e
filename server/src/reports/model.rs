//! What a report is: a named sequence of sections (a title, text with figures, figure tiles,
//! charts, tables, comparisons with the previous period, per-series breakdowns and target
//! checks), and the figures the text refers to, each bound to a query or computed from other
//! figures. The built-in templates, the custom report file and `/api/v1/reports` all use this
//! one format (TOML in files, JSON over HTTP), and every definition passes [`validate`] before
//! it is used: names, limits, every query parsed with its placeholders filled in, every
//! figure reference resolved, no cycles between figures.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::placeholders::{PlaceholderError, Placeholders};

/// Most sections in one report.
pub(crate) const MAX_SECTIONS: usize = 100;
/// Most figures in one report.
pub(crate) const MAX_FIGURES: usize = 200;
/// Longest query text, in bytes.
pub(crate) const MAX_QUERY_BYTES: usize = 16 * 1024;
/// Longest text of a text section or description, in characters.
pub(crate) const MAX_TEXT_CHARS: usize = 20_000;
/// Most alternative queries one query list may hold.
pub(crate) const MAX_ALTERNATIVES: usize = 8;

/// A report definition.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReportDefinition {
    /// Lower-case letters, digits, `-` and `_`; at most 64 bytes.
    pub name: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// The database queries read unless they name one.
    #[serde(default = "default_database")]
    pub database: String,
    /// The period covered when the request gives no `from`: this much before `to`.
    #[serde(default = "default_range")]
    pub range: String,
    /// Numbers the queries and figures can use as `$name`, next to the configured ones.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub parameters: BTreeMap<String, f64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub figures: Vec<FigureDefinition>,
    #[serde(default)]
    pub sections: Vec<SectionDefinition>,
}

fn default_database() -> String {
    "telemetry".into()
}

fn default_range() -> String {
    "7d".into()
}

/// One query, or a list tried in order until one returns data (for data that may come in
/// more than one schema, such as gen.py's `gpu` and the GPU sampler's `nvidia_smi`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub(crate) enum QueryList {
    One(String),
    Alternatives(Vec<String>),
}

impl QueryList {
    pub(crate) fn texts(&self) -> Vec<&str> {
        match self {
            QueryList::One(text) => vec![text.as_str()],
            QueryList::Alternatives(texts) => texts.iter().map(String::as_str).collect(),
        }
    }
}

/// Which period a figure's query reads.
#[derive(
    Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord,
)]
#[serde(rename_all = "snake_case")]
pub(crate) enum PeriodChoice {
    #[default]
    Current,
    /// The period of the same length just before.
    Previous,
}

impl PeriodChoice {
    fn is_current(&self) -> bool {
        *self == PeriodChoice::Current
    }
}

/// How the rows of a query result become one number.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Reduce {
    /// The sum of the column over every row of every series; 0 when there are no rows.
    #[default]
    Sum,
    /// The first value of the first series.
    First,
    /// The last value of the first series.
    Last,
    /// The mean of the values of every row (not weighted by points).
    Mean,
    Min,
    Max,
    /// How many rows hold a value.
    Count,
    /// How many rows hold a value below the threshold.
    CountBelow,
    /// How many rows hold a value above the threshold.
    CountAbove,
    /// How many series the result has.
    Series,
    /// The change per day between the first and last rows of the first series (the slope of
    /// a `trend()` line).
    SlopePerDay,
}

impl Reduce {
    fn needs_threshold(self) -> bool {
        matches!(self, Reduce::CountBelow | Reduce::CountAbove)
    }

    pub(crate) fn describe(self) -> &'static str {
        match self {
            Reduce::Sum => "the sum of every row",
            Reduce::First => "the first value",
            Reduce::Last => "the last value",
            Reduce::Mean => "the mean of every row",
            Reduce::Min => "the smallest row",
            Reduce::Max => "the largest row",
            Reduce::Count => "the number of rows with a value",
            Reduce::CountBelow => "the number of rows below the threshold",
            Reduce::CountAbove => "the number of rows above the threshold",
            Reduce::Series => "the number of series",
            Reduce::SlopePerDay => "the change per day from the first to the last row",
        }
    }
}

/// A number written as such or as `$parameter` (a parameter may differ per model).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub(crate) enum NumberOrParameter {
    Number(f64),
    Parameter(String),
}

/// How a value is printed.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Unit {
    #[default]
    None,
    Count,
    Requests,
    Tokens,
    Usd,
    Percent,
    Ms,
    Hours,
    Kwh,
    Watts,
    Mib,
    Bytes,
    Celsius,
    Mhz,
}

/// A named number the text of a report can show as `{{ name }}`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct FigureDefinition {
    /// Lower-case letters, digits and `_`, starting with a letter.
    pub name: String,
    /// What the figure is, as a person reads it; the name when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub label: String,
    /// The query (or alternatives) the figure comes from; exactly one of `query` and `expr`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<QueryList>,
    /// Arithmetic on other figures and parameters: `+ - * / %`, parentheses, and the
    /// functions `change_pct(new, old)`, `abs`, `min`, `max`, `round`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expr: Option<String>,
    #[serde(default, skip_serializing_if = "PeriodChoice::is_current")]
    pub period: PeriodChoice,
    /// The result column; the first one after `time` when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub column: String,
    #[serde(default)]
    pub reduce: Reduce,
    /// For `count_below` and `count_above`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<NumberOrParameter>,
    /// Multiplies the result (such as 1/60 to turn minutes into hours).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub scale: f64,
    #[serde(default)]
    pub unit: Unit,
    /// How the figure is computed, in words; generated from the query when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub method: String,
}

fn one() -> f64 {
    1.0
}

fn is_one(value: &f64) -> bool {
    *value == 1.0
}

/// How a chart draws its series.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ChartKind {
    #[default]
    Line,
    /// Stacked areas.
    Area,
    /// Stacked bars per time bucket, or one bar per series when the result has no time axis.
    Bar,
}

/// How a comparison orders its rows.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ComparisonSort {
    /// Largest current value first.
    #[default]
    Current,
    /// Largest change either way first: the top movers.
    Change,
}

/// One column of a breakdown: a figure computed per series.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct BreakdownColumn {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub label: String,
    pub query: QueryList,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub column: String,
    #[serde(default)]
    pub reduce: Reduce,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<NumberOrParameter>,
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub scale: f64,
    #[serde(default)]
    pub unit: Unit,
}

/// A section of a report.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum SectionDefinition {
    /// A heading.
    Title(TitleSection),
    /// A paragraph; `{{ name }}` shows a figure, `{{ from }}` and `{{ to }}` the period.
    Text(TextSection),
    /// Figures as large tiles, each with its change when a figure `<name>_change_pct` exists.
    Figures(FiguresSection),
    Chart(ChartSection),
    /// A query's result as a table.
    Table(TableSection),
    /// A query run over the period and the previous one, joined by tags, with the change.
    Comparison(ComparisonSection),
    /// A table with one row per series and a column per reduction.
    Breakdown(BreakdownSection),
    /// For each series and checked column, how many rows (hours) missed the target, and when.
    Targets(TargetsSection),
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct TitleSection {
    pub text: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct TextSection {
    pub text: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct FiguresSection {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub title: String,
    pub figures: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChartSection {
    pub title: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    pub query: QueryList,
    /// More queries whose series are drawn on the same chart.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overlays: Vec<String>,
    #[serde(default)]
    pub chart: ChartKind,
    #[serde(default)]
    pub unit: Unit,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct TableSection {
    pub title: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    pub query: QueryList,
    /// Units by column name; columns not named get one from their name (`_usd`, `_ms`, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub units: BTreeMap<String, Unit>,
    /// Target parameters by column name: cells above their target are marked.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub targets: BTreeMap<String, String>,
    /// Adds, for each number column, its change from the previous row of the series.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub changes: bool,
    /// Sorts rows by this column, largest first.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sort: String,
    /// Keeps at most this many rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct ComparisonSection {
    pub title: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    pub query: QueryList,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub units: BTreeMap<String, Unit>,
    #[serde(default)]
    pub sort: ComparisonSort,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct BreakdownSection {
    pub title: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    pub columns: Vec<BreakdownColumn>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sort: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct TargetsSection {
    pub title: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Usually grouped by `time(1h)` and a tag, so each row is one hour of one series.
    pub query: QueryList,
    /// Target parameters by column name (`latency_p95 = "latency_p95_ms"`).
    pub targets: BTreeMap<String, String>,
    #[serde(default)]
    pub unit: Unit,
}

/// A definition that cannot be used, with where the problem is (`sections[3].query`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub(crate) struct InvalidDefinition {
    pub path: String,
    pub message: String,
}

fn invalid(path: impl Into<String>, message: impl Into<String>) -> InvalidDefinition {
    InvalidDefinition {
        path: path.into(),
        message: message.into(),
    }
}

/// Whether `name` is a valid report name.
pub(crate) fn check_report_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric());
    if name == "schedules" {
        // `/api/v1/reports/schedules` lists the schedules; a report cannot take that path.
        return Err("report name \"schedules\" is reserved".to_string());
    }
    if valid {
        Ok(())
    } else {
        Err(format!(
            "report name {name:?} must be 1 to 64 lower-case letters, digits, `-` or `_`, starting with a letter or digit"
        ))
    }
}

fn check_identifier(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Words `{{ ... }}` may name besides figures.
pub(crate) const TEXT_VARIABLES: [&str; 6] =
    ["from", "to", "title", "timezone", "interval", "database"];

/// The names inside `{{ ... }}` in a text, or the first malformed place.
pub(crate) fn text_references(text: &str) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        let after = &rest[open + 2..];
        let close = after
            .find("}}")
            .ok_or_else(|| "a `{{` is not closed by `}}`".to_string())?;
        let name = after[..close].trim();
        if !check_identifier(name) {
            return Err(format!("`{{{{ {name} }}}}` does not name a figure"));
        }
        names.push(name.to_string());
        rest = &after[close + 2..];
    }
    Ok(names)
}

fn check_queries(
    queries: &QueryList,
    path: &str,
    placeholders: &Placeholders,
) -> Result<(), InvalidDefinition> {
    let texts = queries.texts();
    if texts.is_empty() {
        return Err(invalid(path, "the list of queries is empty"));
    }
    if texts.len() > MAX_ALTERNATIVES {
        return Err(invalid(
            path,
            format!(
                "at most {MAX_ALTERNATIVES} alternative queries, not {}",
                texts.len()
            ),
        ));
    }
    for (i, text) in texts.iter().enumerate() {
        let path = if texts.len() > 1 {
            format!("{path}[{i}]")
        } else {
            path.to_string()
        };
        check_query(text, &path, placeholders)?;
    }
    Ok(())
}

/// A query must be one SELECT that parses once its placeholders are filled in.
pub(crate) fn check_query(
    text: &str,
    path: &str,
    placeholders: &Placeholders,
) -> Result<(), InvalidDefinition> {
    if text.len() > MAX_QUERY_BYTES {
        return Err(invalid(
            path,
            format!(
                "the query is {} bytes, more than the limit of {MAX_QUERY_BYTES}",
                text.len()
            ),
        ));
    }
    let filled = placeholders
        .fill(text)
        .map_err(|e: PlaceholderError| invalid(path, e.to_string()))?;
    let statement = tally_query::parse_statement(&filled).map_err(|e| {
        invalid(
            path,
            format!("{e} (query with placeholders filled in: {filled})"),
        )
    })?;
    if !matches!(statement, tally_query::ast::Statement::Select(_)) {
        return Err(invalid(path, "a report query must be a SELECT statement"));
    }
    tally_query::validate(&statement, &filled).map_err(|e| invalid(path, e.to_string()))?;
    Ok(())
}

fn check_threshold(
    threshold: Option<&NumberOrParameter>,
    reduce: Reduce,
    path: &str,
    placeholders: &Placeholders,
) -> Result<(), InvalidDefinition> {
    match (reduce.needs_threshold(), threshold) {
        (true, None) => Err(invalid(
            format!("{path}.threshold"),
            "count_below and count_above need a threshold",
        )),
        (_, Some(NumberOrParameter::Number(n))) if !n.is_finite() => Err(invalid(
            format!("{path}.threshold"),
            "must be a finite number",
        )),
        (_, Some(NumberOrParameter::Parameter(name))) => {
            let bare = name.strip_prefix('$').unwrap_or(name);
            if placeholders.parameter(bare).is_none() {
                return Err(invalid(
                    format!("{path}.threshold"),
                    format!(
                        "unknown parameter {name:?}; known: {}",
                        placeholders.parameter_names().join(", ")
                    ),
                ));
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn check_title(text: &str, path: &str) -> Result<(), InvalidDefinition> {
    if text.chars().count() > 200 {
        return Err(invalid(path, "longer than 200 characters"));
    }
    Ok(())
}

fn check_text(text: &str, path: &str) -> Result<(), InvalidDefinition> {
    if text.chars().count() > MAX_TEXT_CHARS {
        return Err(invalid(
            path,
            format!("longer than {MAX_TEXT_CHARS} characters"),
        ));
    }
    Ok(())
}

fn check_target_parameters(
    targets: &BTreeMap<String, String>,
    path: &str,
    placeholders: &Placeholders,
) -> Result<(), InvalidDefinition> {
    for (column, parameter) in targets {
        let bare = parameter.strip_prefix('$').unwrap_or(parameter);
        if placeholders.parameter(bare).is_none() && !placeholders.is_optional_target(bare) {
            return Err(invalid(
                format!("{path}.targets.{column}"),
                format!(
                    "unknown parameter {parameter:?}; known: {}",
                    placeholders.parameter_names().join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// Checks a definition against the placeholders and parameters it will run with.
pub(crate) fn validate(
    definition: &ReportDefinition,
    placeholders: &Placeholders,
) -> Result<(), InvalidDefinition> {
    check_report_name(&definition.name).map_err(|e| invalid("name", e))?;
    if definition.title.trim().is_empty() {
        return Err(invalid("title", "a report needs a title"));
    }
    check_title(&definition.title, "title")?;
    check_text(&definition.description, "description")?;
    if definition.database.is_empty() || definition.database.len() > 255 {
        return Err(invalid("database", "must be 1 to 255 bytes"));
    }
    super::period::parse_duration_ns(&definition.range).map_err(|e| invalid("range", e))?;
    for (name, value) in &definition.parameters {
        if !check_identifier(name) {
            return Err(invalid(
                format!("parameters.{name}"),
                "a parameter name is lower-case letters, digits and `_`, starting with a letter",
            ));
        }
        if !value.is_finite() {
            return Err(invalid(
                format!("parameters.{name}"),
                "must be a finite number",
            ));
        }
    }
    if definition.figures.len() > MAX_FIGURES {
        return Err(invalid(
            "figures",
            format!(
                "at most {MAX_FIGURES} figures, not {}",
                definition.figures.len()
            ),
        ));
    }
    if definition.sections.len() > MAX_SECTIONS {
        return Err(invalid(
            "sections",
            format!(
                "at most {MAX_SECTIONS} sections, not {}",
                definition.sections.len()
            ),
        ));
    }
    let mut figure_names = BTreeSet::new();
    for (i, figure) in definition.figures.iter().enumerate() {
        let path = format!("figures[{i}]");
        if !check_identifier(&figure.name) {
            return Err(invalid(
                format!("{path}.name"),
                format!(
                    "figure name {:?} must be lower-case letters, digits and `_`, starting with a letter",
                    figure.name
                ),
            ));
        }
        if TEXT_VARIABLES.contains(&figure.name.as_str()) {
            return Err(invalid(
                format!("{path}.name"),
                format!(
                    "{:?} is reserved for the report's own variables",
                    figure.name
                ),
            ));
        }
        if !figure_names.insert(figure.name.as_str()) {
            return Err(invalid(
                format!("{path}.name"),
                format!("a figure named {:?} is defined twice", figure.name),
            ));
        }
        check_title(&figure.label, &format!("{path}.label"))?;
        if !figure.scale.is_finite() {
            return Err(invalid(format!("{path}.scale"), "must be a finite number"));
        }
        match (&figure.query, &figure.expr) {
            (Some(queries), None) => {
                check_queries(queries, &format!("{path}.query"), placeholders)?;
                check_threshold(
                    figure.threshold.as_ref(),
                    figure.reduce,
                    &path,
                    placeholders,
                )?;
            }
            (None, Some(_)) => {}
            _ => {
                return Err(invalid(
                    path,
                    "a figure has either a query or an expr, not both and not neither",
                ));
            }
        }
    }
    // Expressions may refer to figures defined after them; the order of evaluation follows
    // the references, and a cycle is an error.
    let mut references: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (i, figure) in definition.figures.iter().enumerate() {
        if let Some(expr) = &figure.expr {
            let path = format!("figures[{i}].expr");
            let names = super::figures::expression_references(expr, placeholders)
                .map_err(|e| invalid(&path, e))?;
            for name in &names {
                if !figure_names.contains(name.as_str()) && placeholders.parameter(name).is_none() {
                    return Err(invalid(
                        &path,
                        format!("{name:?} is neither a figure of this report nor a parameter"),
                    ));
                }
            }
            references.insert(&figure.name, names);
        }
    }
    super::figures::evaluation_order(&definition.figures).map_err(|e| invalid("figures", e))?;
    for (i, section) in definition.sections.iter().enumerate() {
        let path = format!("sections[{i}]");
        match section {
            SectionDefinition::Title(title) => check_title(&title.text, &format!("{path}.text"))?,
            SectionDefinition::Text(text) => {
                check_text(&text.text, &format!("{path}.text"))?;
                let names =
                    text_references(&text.text).map_err(|e| invalid(format!("{path}.text"), e))?;
                for name in names {
                    if !figure_names.contains(name.as_str())
                        && !TEXT_VARIABLES.contains(&name.as_str())
                    {
                        return Err(invalid(
                            format!("{path}.text"),
                            format!("`{{{{ {name} }}}}` names no figure of this report"),
                        ));
                    }
                }
            }
            SectionDefinition::Figures(figures) => {
                check_title(&figures.title, &format!("{path}.title"))?;
                if figures.figures.is_empty() {
                    return Err(invalid(format!("{path}.figures"), "the list is empty"));
                }
                for name in &figures.figures {
                    if !figure_names.contains(name.as_str()) {
                        return Err(invalid(
                            format!("{path}.figures"),
                            format!("{name:?} names no figure of this report"),
                        ));
                    }
                }
            }
            SectionDefinition::Chart(chart) => {
                check_title(&chart.title, &format!("{path}.title"))?;
                check_text(&chart.description, &format!("{path}.description"))?;
                check_queries(&chart.query, &format!("{path}.query"), placeholders)?;
                if chart.overlays.len() > MAX_ALTERNATIVES {
                    return Err(invalid(
                        format!("{path}.overlays"),
                        format!("at most {MAX_ALTERNATIVES} overlays"),
                    ));
                }
                for (j, overlay) in chart.overlays.iter().enumerate() {
                    check_query(overlay, &format!("{path}.overlays[{j}]"), placeholders)?;
                }
            }
            SectionDefinition::Table(table) => {
                check_title(&table.title, &format!("{path}.title"))?;
                check_text(&table.description, &format!("{path}.description"))?;
                check_queries(&table.query, &format!("{path}.query"), placeholders)?;
                check_target_parameters(&table.targets, &path, placeholders)?;
            }
            SectionDefinition::Comparison(comparison) => {
                check_title(&comparison.title, &format!("{path}.title"))?;
                check_text(&comparison.description, &format!("{path}.description"))?;
                check_queries(&comparison.query, &format!("{path}.query"), placeholders)?;
            }
            SectionDefinition::Breakdown(breakdown) => {
                check_title(&breakdown.title, &format!("{path}.title"))?;
                check_text(&breakdown.description, &format!("{path}.description"))?;
                if breakdown.columns.is_empty() {
                    return Err(invalid(
                        format!("{path}.columns"),
                        "a breakdown needs columns",
                    ));
                }
                let mut names = BTreeSet::new();
                for (j, column) in breakdown.columns.iter().enumerate() {
                    let column_path = format!("{path}.columns[{j}]");
                    if !check_identifier(&column.name) || !names.insert(column.name.as_str()) {
                        return Err(invalid(
                            format!("{column_path}.name"),
                            format!("{:?} must be a unique lower-case name", column.name),
                        ));
                    }
                    check_queries(&column.query, &format!("{column_path}.query"), placeholders)?;
                    check_threshold(
                        column.threshold.as_ref(),
                        column.reduce,
                        &column_path,
                        placeholders,
                    )?;
                    if matches!(column.reduce, Reduce::Series) {
                        return Err(invalid(
                            format!("{column_path}.reduce"),
                            "`series` counts series, which a per-series column cannot do",
                        ));
                    }
                }
                if !breakdown.sort.is_empty() && !names.contains(breakdown.sort.as_str()) {
                    return Err(invalid(
                        format!("{path}.sort"),
                        format!("{:?} is not one of the columns", breakdown.sort),
                    ));
                }
            }
            SectionDefinition::Targets(targets) => {
                check_title(&targets.title, &format!("{path}.title"))?;
                check_text(&targets.description, &format!("{path}.description"))?;
                check_queries(&targets.query, &format!("{path}.query"), placeholders)?;
                if targets.targets.is_empty() {
                    return Err(invalid(
                        format!("{path}.targets"),
                        "name at least one column and its target parameter",
                    ));
                }
                check_target_parameters(&targets.targets, &path, placeholders)?;
            }
        }
    }
    Ok(())
}

/// The custom report file: `[[report]]` tables.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportFile {
    #[serde(default)]
    report: Vec<ReportDefinition>,
}

/// Reads the definitions of a TOML report file (not yet validated).
pub(crate) fn parse_report_file(text: &str) -> Result<Vec<ReportDefinition>, String> {
    toml::from_str::<ReportFile>(text)
        .map(|file| file.report)
        .map_err(|e| e.to_string())
}
