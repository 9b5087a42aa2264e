//! What statements return: the InfluxDB 1.x result shape, independent of any wire format.

use super::value::Value;

/// The result of one statement.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StatementResult {
    pub statement_id: usize,
    pub series: Vec<ResultSeries>,
    /// Set when the statement failed; the other statements of the query still ran.
    pub error: Option<String>,
    /// Informational notes (InfluxDB's `messages`), e.g. which statements were ignored.
    pub messages: Vec<String>,
}

/// One series of a result: a name, the group's tags, column names and rows.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ResultSeries {
    pub name: String,
    /// Sorted by key; empty for results that are not grouped by tag.
    pub tags: Vec<(String, String)>,
    pub columns: Vec<String>,
    pub values: Vec<Vec<Value>>,
}
