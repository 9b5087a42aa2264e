//! A report after it ran: every figure with its value and method, every section with its
//! data. All output formats render this one structure, and the JSON format is it, serialized.

use std::collections::BTreeMap;

use serde::Serialize;

use super::figures::Number;
use super::model::{ChartKind, PeriodChoice, Unit};

#[derive(Clone, Debug, Serialize)]
pub(crate) struct ReportOutput {
    pub name: String,
    pub title: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    pub database: String,
    pub period: PeriodOutput,
    pub generated_at: String,
    pub parameters: BTreeMap<String, f64>,
    pub figures: Vec<FigureOutput>,
    pub sections: Vec<SectionOutput>,
    /// How the figures were computed: one note per method used (percentiles, forecasts, ...).
    pub methods: Vec<String>,
    /// Queries that failed; the report still renders, showing what is missing.
    pub errors: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub(crate) struct PeriodOutput {
    pub from: String,
    pub to: String,
    pub from_ns: i64,
    pub to_ns: i64,
    pub previous_from_ns: i64,
    pub previous_to_ns: i64,
    pub timezone: String,
    pub interval: String,
    /// `from` and `to` as people read them, in the report's zone.
    pub label: String,
}

#[derive(Clone, Debug, Serialize)]
pub(crate) struct FigureOutput {
    pub name: String,
    pub label: String,
    pub value: Option<Number>,
    /// The value as the report prints it.
    pub display: String,
    pub unit: Unit,
    pub period: PeriodChoice,
    /// The query that ran, placeholders filled in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expr: Option<String>,
    pub method: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl ReportOutput {
    pub(crate) fn figure(&self, name: &str) -> Option<&FigureOutput> {
        self.figures.iter().find(|f| f.name == name)
    }
}

/// A piece of a text section: words, or a figure's printed value.
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub(crate) enum TextPart {
    Words { text: String },
    Figure { figure: String, display: String },
}

#[derive(Clone, Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum SectionOutput {
    Title {
        text: String,
    },
    Text {
        /// The text with every figure filled in.
        text: String,
        parts: Vec<TextPart>,
    },
    Figures {
        title: String,
        figures: Vec<String>,
    },
    Chart(ChartOutput),
    Table(TableOutput),
}

/// What a chart draws: series of (time, value) points.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct ChartOutput {
    pub title: String,
    pub description: String,
    pub chart: ChartKind,
    pub unit: Unit,
    pub queries: Vec<String>,
    pub series: Vec<ChartSeries>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// How many series were left out to keep the chart readable.
    pub omitted_series: usize,
}

/// How a series is drawn.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(crate) enum SeriesRole {
    Line,
    /// The lower edge of an interval band (a column named `*_lower`).
    Lower,
    /// The upper edge (`*_upper`).
    Upper,
}

#[derive(Clone, Debug, Serialize)]
pub(crate) struct ChartSeries {
    pub label: String,
    pub tags: BTreeMap<String, String>,
    pub column: String,
    pub role: SeriesRole,
    /// `[time_ns, value]`; a missing value is null.
    pub points: Vec<(i64, Option<f64>)>,
}

/// What a column of a table holds, so that renderers can print and mark it.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ColumnKind {
    /// A tag value (text).
    Tag,
    /// Nanoseconds since the epoch.
    Time,
    /// A number or text from a query.
    Value,
    /// The same value over the previous period.
    Previous,
    /// The value minus the previous value.
    Change,
    /// The change in percent of the previous value.
    ChangePct,
    /// A list of times (nanoseconds), such as the hours that missed a target.
    Times,
    /// Text the report adds (the name of a checked column).
    Label,
}

#[derive(Clone, Debug, Serialize)]
pub(crate) struct ColumnOutput {
    pub name: String,
    pub label: String,
    pub kind: ColumnKind,
    pub unit: Unit,
}

/// A table, whatever section made it.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct TableOutput {
    /// `table`, `comparison`, `breakdown` or `targets`.
    pub source: &'static str,
    pub title: String,
    pub description: String,
    pub queries: Vec<String>,
    pub columns: Vec<ColumnOutput>,
    /// Cells as JSON values: numbers, strings, null, or arrays of times.
    pub rows: Vec<Vec<serde_json::Value>>,
    /// `[row, column]` of cells that missed their target.
    pub missed: Vec<(usize, usize)>,
    /// Rows left out by the section's limit.
    pub omitted_rows: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}
