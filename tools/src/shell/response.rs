//! The answer of `/query`: the InfluxDB 1.x JSON shape, read into types that keep the order the
//! server wrote tags and columns in.
//!
//! ```json
//! {"results":[{"statement_id":0,"series":[{"name":"cpu","tags":{"host":"a"},
//!   "columns":["time","mean"],"values":[["2026-11-30T00:00:00Z",1.5]]}]},
//!  {"statement_id":1,"error":"..."}]}
//! ```
//!
//! Every member is optional: a statement without rows has no `series`, a series of `SHOW
//! RETENTION POLICIES` has no `name`, and a request that failed as a whole has only `error`.

use std::fmt;

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::Value;

#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct QueryResponse {
    #[serde(default)]
    pub(crate) results: Vec<StatementResult>,
    /// Set when the request failed as a whole, such as a query that does not parse.
    #[serde(default)]
    pub(crate) error: Option<String>,
}

impl QueryResponse {
    /// Every error the answer carries, the request's own first.
    pub(crate) fn errors(&self) -> impl Iterator<Item = &str> {
        self.error.as_deref().into_iter().chain(
            self.results
                .iter()
                .filter_map(|result| result.error.as_deref()),
        )
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct StatementResult {
    #[serde(default)]
    pub(crate) series: Vec<Series>,
    #[serde(default)]
    pub(crate) messages: Vec<Message>,
    /// More rows follow in another chunk (chunked answers only).
    #[serde(default)]
    pub(crate) partial: bool,
    #[serde(default)]
    pub(crate) error: Option<String>,
}

/// A note the server attaches to a statement, such as a deprecation warning.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct Message {
    #[serde(default)]
    pub(crate) level: String,
    #[serde(default)]
    pub(crate) text: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct Series {
    #[serde(default)]
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) tags: Tags,
    #[serde(default)]
    pub(crate) columns: Vec<String>,
    #[serde(default)]
    pub(crate) values: Vec<Vec<Value>>,
}

/// Tag key/value pairs in the order the server wrote them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Tags(pub(crate) Vec<(String, String)>);

impl Tags {
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `key=value` pairs joined by `separator`.
    pub(crate) fn joined(&self, separator: &str) -> String {
        let pairs: Vec<String> = self
            .0
            .iter()
            .map(|(key, value)| format!("{key}={value}"))
            .collect();
        pairs.join(separator)
    }
}

impl<'de> Deserialize<'de> for Tags {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TagsVisitor)
    }
}

struct TagsVisitor;

impl<'de> Visitor<'de> for TagsVisitor {
    type Value = Tags;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("an object of tag keys and values, or null")
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Tags, E> {
        Ok(Tags::default())
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Tags, E> {
        Ok(Tags::default())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Tags, A::Error> {
        let mut pairs = Vec::new();
        while let Some((key, value)) = map.next_entry::<String, Value>()? {
            let value = match value {
                Value::String(text) => text,
                Value::Null => String::new(),
                other => other.to_string(),
            };
            pairs.push((key, value));
        }
        Ok(Tags(pairs))
    }
}

/// Reads an answer body; the error says where the JSON went wrong.
pub(crate) fn parse_response(body: &str) -> Result<QueryResponse, String> {
    serde_json::from_str(body).map_err(|error| {
        format!(
            "invalid JSON at line {}, column {}: {error}",
            error.line(),
            error.column()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_keep_the_order_the_server_wrote() {
        let response = parse_response(
            r#"{"results":[{"statement_id":0,"series":[{"name":"gpu","tags":{"host":"a","gpu":"0"},"columns":["time","util"],"values":[["2026-11-30T00:00:00Z",97.5]]}]}]}"#,
        )
        .unwrap();
        let series = &response.results[0].series[0];
        assert_eq!(
            series.tags.0,
            vec![
                ("host".to_owned(), "a".to_owned()),
                ("gpu".to_owned(), "0".to_owned())
            ]
        );
        assert_eq!(series.tags.joined(", "), "host=a, gpu=0");
    }

    #[test]
    fn missing_members_read_as_empty() {
        let response = parse_response(
            r#"{"results":[{"statement_id":0},{"statement_id":1,"series":[{"columns":["name"],"values":[["autogen"]],"tags":null}]}]}"#,
        )
        .unwrap();
        assert!(response.results[0].series.is_empty());
        assert_eq!(response.results[1].series[0].name, "");
        assert!(response.results[1].series[0].tags.is_empty());
        assert_eq!(response.errors().count(), 0);
    }

    #[test]
    fn errors_of_the_request_and_of_each_statement_are_collected() {
        let response = parse_response(
            r#"{"error":"boom","results":[{"statement_id":0,"error":"database not found: x"}]}"#,
        )
        .unwrap();
        let errors: Vec<&str> = response.errors().collect();
        assert_eq!(errors, vec!["boom", "database not found: x"]);
    }

    #[test]
    fn invalid_json_is_reported_with_its_position() {
        let error = parse_response("{\"results\": [}").unwrap_err();
        assert!(error.contains("line 1, column 14"), "{error}");
    }
}
