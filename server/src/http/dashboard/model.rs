//! A custom dashboard as the API accepts and stores it, and the checks that every dashboard
//! passes before it is stored: shapes and types field by field (errors name the JSON path,
//! such as `panels[2].type`), the fixed limits below, and every panel query parsed with the
//! dashboard macros expanded, so a dashboard that is saved can always be drawn.
//!
//! Conversion goes through `serde_json::Value` by hand rather than `#[derive(Deserialize)]`
//! so that an error can say exactly which element of which panel is wrong.

use serde::Serialize;
use serde_json::{Map, Value};
use tally_query::ast::Statement;

/// Most panels in one dashboard.
pub(crate) const MAX_PANELS: usize = 100;
/// Most queries in one panel.
pub(crate) const MAX_QUERIES_PER_PANEL: usize = 10;
/// Longest query text in a panel, in bytes.
pub(crate) const MAX_QUERY_BYTES: usize = 16 * 1024;
/// Longest title (dashboard or panel), in characters.
pub(crate) const MAX_TITLE_CHARS: usize = 200;
/// Longest description, in characters.
pub(crate) const MAX_DESCRIPTION_CHARS: usize = 4_000;
/// Longest dashboard or panel id, in bytes.
pub(crate) const MAX_ID_BYTES: usize = 64;
/// Longest database name, in bytes.
const MAX_DATABASE_BYTES: usize = 255;

/// Ids that would read as an action in `/api/v1/dashboards/{id}`.
const RESERVED_IDS: [&str; 2] = ["export", "import"];

/// Chart types a panel can have.
pub(crate) const CHART_TYPES: [&str; 6] = ["line", "area", "bar", "stat", "table", "heatmap"];

/// Units the page knows how to format.
pub(crate) const UNITS: [&str; 15] = [
    "none",
    "percent",
    "bytes",
    "bytes_per_second",
    "ms",
    "seconds",
    "tokens",
    "tokens_per_second",
    "requests_per_second",
    "usd",
    "watts",
    "joules",
    "celsius",
    "mhz",
    "count",
];

/// Auto-refresh choices, `off` included.
pub(crate) const REFRESH_CHOICES: [&str; 7] = ["off", "5s", "10s", "30s", "1m", "5m", "15m"];

/// What the macros of a panel query stand for when the server checks that the query parses.
/// The page replaces them with the range, interval and tag filters being viewed.
const MACRO_STAND_INS: [(&str, &str); 4] = [
    // Longest first: `$interval` is a prefix of `$intervalSeconds`.
    ("$intervalSeconds", "60"),
    ("$interval", "1m"),
    ("$timeFilter", "time > now() - 1h"),
    ("$tagFilter", ""),
];

/// A dashboard as stored and served.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct Dashboard {
    pub id: String,
    pub title: String,
    pub description: String,
    /// Database the panels query; empty means the one selected on the page.
    pub database: String,
    pub time: TimeRange,
    pub refresh: String,
    pub panels: Vec<Panel>,
    /// Bumped on every save; an update that names an older version is refused, so two people
    /// editing the same dashboard do not silently overwrite each other.
    pub version: u64,
    pub created_at: String,
    pub updated_at: String,
}

/// A default time range: `now`, `now-<duration>` or an RFC 3339 time at each end.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct TimeRange {
    pub from: String,
    pub to: String,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct Panel {
    pub id: String,
    pub title: String,
    pub description: String,
    #[serde(rename = "type")]
    pub chart_type: String,
    pub unit: String,
    /// How many grid columns the panel spans (1 to 4; fewer on a narrow screen).
    pub span: u8,
    pub queries: Vec<String>,
}

/// A field of a dashboard document that is missing, of the wrong type or out of its limits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub(crate) struct InvalidField {
    /// JSON path of the offending value, such as `panels[2].queries[0]`.
    pub path: String,
    pub message: String,
}

fn invalid(path: &str, message: impl Into<String>) -> InvalidField {
    InvalidField {
        path: path.to_string(),
        message: message.into(),
    }
}

/// The JSON type of a value, as an error message says it.
fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The keys of an object, refusing keys that are not in `known` (a typo such as `tilte` would
/// otherwise be dropped without a word).
fn object<'a>(
    value: &'a Value,
    path: &str,
    known: &[&str],
) -> Result<&'a Map<String, Value>, InvalidField> {
    let map = value.as_object().ok_or_else(|| {
        invalid(
            path,
            format!("expected an object, found {}", json_type(value)),
        )
    })?;
    for key in map.keys() {
        if !known.contains(&key.as_str()) {
            return Err(invalid(
                &join(path, key),
                format!("unknown field; expected one of {}", known.join(", ")),
            ));
        }
    }
    Ok(map)
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// An optional string field, with a default and a length limit in characters.
fn string_field(
    map: &Map<String, Value>,
    path: &str,
    key: &str,
    default: &str,
    max_chars: usize,
) -> Result<String, InvalidField> {
    let path = join(path, key);
    match map.get(key) {
        None | Some(Value::Null) => Ok(default.to_string()),
        Some(Value::String(text)) => {
            let n_chars = text.chars().count();
            if n_chars > max_chars {
                return Err(invalid(
                    &path,
                    format!("{n_chars} characters is longer than the limit of {max_chars}"),
                ));
            }
            if text
                .chars()
                .any(|c| c.is_control() && c != '\n' && c != '\t')
            {
                return Err(invalid(&path, "control characters are not allowed"));
            }
            Ok(text.clone())
        }
        Some(other) => Err(invalid(
            &path,
            format!("expected a string, found {}", json_type(other)),
        )),
    }
}

/// Whether `id` may name a dashboard or a panel: 1 to 64 lower-case letters, digits and `-`,
/// starting with a letter or digit. Ids become file names, so nothing else is allowed.
pub(crate) fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_BYTES
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !id.starts_with('-')
}

/// Checks a dashboard id from a URL or a document.
pub(crate) fn check_dashboard_id(id: &str, path: &str) -> Result<(), InvalidField> {
    if !is_valid_id(id) {
        return Err(invalid(
            path,
            format!(
                "invalid id {id:?}: expected 1 to {MAX_ID_BYTES} lower-case letters, digits and '-', not starting with '-'"
            ),
        ));
    }
    if RESERVED_IDS.contains(&id) {
        return Err(invalid(
            path,
            format!("the id {id:?} is reserved (it names an API action); choose another"),
        ));
    }
    Ok(())
}

/// An id made from a title: `GPU fleet (prod)` gives `gpu-fleet-prod`.
pub(crate) fn slug(title: &str) -> String {
    let mut out = String::new();
    for c in title.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
        if out.len() >= MAX_ID_BYTES - 4 {
            // Room for a `-NNN` suffix that makes the id unique.
            break;
        }
    }
    let trimmed = out.trim_end_matches('-');
    if trimmed.is_empty() || RESERVED_IDS.contains(&trimmed) {
        "dashboard".to_string()
    } else {
        trimmed.to_string()
    }
}

/// Whether `text` is `now`, `now-<duration>` or an RFC 3339 time.
fn check_time_bound(text: &str, path: &str) -> Result<(), InvalidField> {
    let text = text.trim();
    if text == "now" {
        return Ok(());
    }
    if let Some(ago) = text.strip_prefix("now-") {
        return crate::units::HumanDuration::parse(ago)
            .map(|_| ())
            .map_err(|e| invalid(path, e));
    }
    tally_query::TimeLiteral::parse(text)
        .map(|_| ())
        .map_err(|e| {
            invalid(
                path,
                format!(
                    "{text:?} is not `now`, `now-<duration>` (e.g. now-6h) or an RFC 3339 time: {}",
                    e.reason
                ),
            )
        })
}

/// Checks that a panel query parses and only reads, with its macros replaced by stand-ins.
pub(crate) fn check_panel_query(text: &str, path: &str) -> Result<(), InvalidField> {
    if text.trim().is_empty() {
        return Err(invalid(path, "the query is empty"));
    }
    if text.len() > MAX_QUERY_BYTES {
        return Err(invalid(
            path,
            format!(
                "{} bytes is longer than the limit of {MAX_QUERY_BYTES} bytes",
                text.len()
            ),
        ));
    }
    let expanded = expand_macros_for_check(text);
    let query = tally_query::parse_query(&expanded).map_err(|e| {
        invalid(
            path,
            format!("the query does not parse:\n{}", e.render(&expanded)),
        )
    })?;
    for statement in &query.statements {
        if let Err(e) = tally_query::validate(statement, &expanded) {
            return Err(invalid(
                path,
                format!("the query is not valid:\n{}", e.render(&expanded)),
            ));
        }
        if !is_read_only(statement) {
            return Err(invalid(
                path,
                "a panel may only run SELECT, SHOW and EXPLAIN statements, which read; this one changes data",
            ));
        }
    }
    Ok(())
}

fn is_read_only(statement: &Statement) -> bool {
    matches!(
        statement,
        Statement::Select(_)
            | Statement::Explain(_)
            | Statement::ShowDatabases { .. }
            | Statement::ShowMeasurements(_)
            | Statement::ShowTagKeys(_)
            | Statement::ShowTagValues(_)
            | Statement::ShowFieldKeys(_)
            | Statement::ShowSeries(_)
            | Statement::ShowCardinality(_)
            | Statement::ShowRetentionPolicies(_)
            | Statement::ShowDiagnostics { .. }
            | Statement::ShowStats { .. }
            | Statement::ShowRules { .. }
            | Statement::ShowAlerts { .. }
            | Statement::ShowCompactions { .. }
    )
}

fn expand_macros_for_check(text: &str) -> String {
    let mut out = text.to_string();
    for (name, stand_in) in MACRO_STAND_INS {
        out = out.replace(name, stand_in);
    }
    out
}

fn one_of(value: &str, choices: &[&str], path: &str) -> Result<(), InvalidField> {
    if choices.contains(&value) {
        Ok(())
    } else {
        Err(invalid(
            path,
            format!("{value:?} is not one of {}", choices.join(", ")),
        ))
    }
}

/// What a client sends to create, replace or import a dashboard. Server-kept fields (version,
/// timestamps) may be present, as in an exported document, and are read where they matter.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct DashboardInput {
    pub id: Option<String>,
    pub title: String,
    pub description: String,
    pub database: String,
    pub time: TimeRange,
    pub refresh: String,
    pub panels: Vec<Panel>,
    pub version: Option<u64>,
    pub created_at: Option<String>,
}

const DASHBOARD_KEYS: [&str; 10] = [
    "id",
    "title",
    "description",
    "database",
    "time",
    "refresh",
    "panels",
    "version",
    "created_at",
    "updated_at",
];

const PANEL_KEYS: [&str; 7] = [
    "id",
    "title",
    "description",
    "type",
    "unit",
    "span",
    "queries",
];

impl DashboardInput {
    /// Reads and checks a dashboard document; `path` prefixes error paths (empty at the top).
    pub(crate) fn from_value(value: &Value, path: &str) -> Result<DashboardInput, InvalidField> {
        let map = object(value, path, &DASHBOARD_KEYS)?;
        let id = match map.get("id") {
            None | Some(Value::Null) => None,
            Some(Value::String(id)) => {
                check_dashboard_id(id, &join(path, "id"))?;
                Some(id.clone())
            }
            Some(other) => {
                return Err(invalid(
                    &join(path, "id"),
                    format!("expected a string, found {}", json_type(other)),
                ));
            }
        };
        let title = string_field(map, path, "title", "", MAX_TITLE_CHARS)?;
        if title.trim().is_empty() {
            return Err(invalid(
                &join(path, "title"),
                "a dashboard needs a title (a non-empty string)",
            ));
        }
        let description = string_field(map, path, "description", "", MAX_DESCRIPTION_CHARS)?;
        let database = string_field(map, path, "database", "", MAX_DATABASE_BYTES)?;
        let time = match map.get("time") {
            None | Some(Value::Null) => TimeRange {
                from: "now-1h".into(),
                to: "now".into(),
            },
            Some(time) => {
                let time_path = join(path, "time");
                let time_map = object(time, &time_path, &["from", "to"])?;
                let from = string_field(time_map, &time_path, "from", "now-1h", 64)?;
                let to = string_field(time_map, &time_path, "to", "now", 64)?;
                check_time_bound(&from, &join(&time_path, "from"))?;
                check_time_bound(&to, &join(&time_path, "to"))?;
                TimeRange { from, to }
            }
        };
        let refresh = string_field(map, path, "refresh", "off", 16)?;
        one_of(&refresh, &REFRESH_CHOICES, &join(path, "refresh"))?;
        let panels_path = join(path, "panels");
        let panels = match map.get("panels") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => {
                if items.len() > MAX_PANELS {
                    return Err(invalid(
                        &panels_path,
                        format!(
                            "{} panels is more than the limit of {MAX_PANELS} per dashboard",
                            items.len()
                        ),
                    ));
                }
                let mut panels: Vec<Panel> = Vec::with_capacity(items.len());
                for (index, item) in items.iter().enumerate() {
                    let panel = Panel::from_value(item, &format!("{panels_path}[{index}]"), index)?;
                    if panels.iter().any(|earlier| earlier.id == panel.id) {
                        return Err(invalid(
                            &format!("{panels_path}[{index}].id"),
                            format!("panel id {:?} is used twice in this dashboard", panel.id),
                        ));
                    }
                    panels.push(panel);
                }
                panels
            }
            Some(other) => {
                return Err(invalid(
                    &panels_path,
                    format!("expected an array of panels, found {}", json_type(other)),
                ));
            }
        };
        let version = match map.get("version") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) if n.as_u64().is_some() => n.as_u64(),
            Some(other) => {
                return Err(invalid(
                    &join(path, "version"),
                    format!(
                        "expected a non-negative integer (the version read before editing), found {other}"
                    ),
                ));
            }
        };
        let created_at = match map.get("created_at") {
            Some(Value::String(text)) if tally_query::TimeLiteral::parse(text).is_ok() => {
                Some(text.clone())
            }
            _ => None,
        };
        Ok(DashboardInput {
            id,
            title,
            description,
            database,
            time,
            refresh,
            panels,
            version,
            created_at,
        })
    }

    /// The stored dashboard this input becomes under `id`, at `version`, saved at `now`.
    pub(crate) fn into_dashboard(
        self,
        id: String,
        version: u64,
        created_at: String,
        now: String,
    ) -> Dashboard {
        Dashboard {
            id,
            title: self.title,
            description: self.description,
            database: self.database,
            time: self.time,
            refresh: self.refresh,
            panels: self.panels,
            version,
            created_at,
            updated_at: now,
        }
    }
}

impl Panel {
    fn from_value(value: &Value, path: &str, index: usize) -> Result<Panel, InvalidField> {
        let map = object(value, path, &PANEL_KEYS)?;
        let id = string_field(map, path, "id", "", MAX_ID_BYTES)?;
        let id = if id.is_empty() {
            format!("panel-{}", index + 1)
        } else if is_valid_id(&id) {
            id
        } else {
            return Err(invalid(
                &join(path, "id"),
                format!(
                    "invalid panel id {id:?}: expected lower-case letters, digits and '-', not starting with '-'"
                ),
            ));
        };
        let title = string_field(map, path, "title", "", MAX_TITLE_CHARS)?;
        let description = string_field(map, path, "description", "", MAX_DESCRIPTION_CHARS)?;
        let chart_type = match map.get("type") {
            None | Some(Value::Null) => {
                return Err(invalid(
                    &join(path, "type"),
                    format!("a panel needs a type: one of {}", CHART_TYPES.join(", ")),
                ));
            }
            Some(_) => string_field(map, path, "type", "", 16)?,
        };
        one_of(&chart_type, &CHART_TYPES, &join(path, "type"))?;
        let unit = string_field(map, path, "unit", "none", 32)?;
        one_of(&unit, &UNITS, &join(path, "unit"))?;
        let span = match map.get("span") {
            None | Some(Value::Null) => 1,
            Some(Value::Number(n)) => match n.as_u64() {
                Some(span @ 1..=4) => span as u8,
                _ => {
                    return Err(invalid(
                        &join(path, "span"),
                        format!("{n} is not a whole number from 1 to 4 (grid columns)"),
                    ));
                }
            },
            Some(other) => {
                return Err(invalid(
                    &join(path, "span"),
                    format!("expected a number from 1 to 4, found {}", json_type(other)),
                ));
            }
        };
        let queries_path = join(path, "queries");
        let queries = match map.get("queries") {
            Some(Value::Array(items)) if !items.is_empty() => {
                if items.len() > MAX_QUERIES_PER_PANEL {
                    return Err(invalid(
                        &queries_path,
                        format!(
                            "{} queries is more than the limit of {MAX_QUERIES_PER_PANEL} per panel",
                            items.len()
                        ),
                    ));
                }
                let mut queries = Vec::with_capacity(items.len());
                for (query_index, item) in items.iter().enumerate() {
                    let query_path = format!("{queries_path}[{query_index}]");
                    let Value::String(text) = item else {
                        return Err(invalid(
                            &query_path,
                            format!("expected a query string, found {}", json_type(item)),
                        ));
                    };
                    check_panel_query(text, &query_path)?;
                    queries.push(text.clone());
                }
                queries
            }
            Some(Value::Array(_)) | None | Some(Value::Null) => {
                return Err(invalid(
                    &queries_path,
                    "a panel needs at least one query, such as \"SELECT mean(util_pct) FROM gpu WHERE $timeFilter $tagFilter GROUP BY time($interval), host\"",
                ));
            }
            Some(other) => {
                return Err(invalid(
                    &queries_path,
                    format!(
                        "expected an array of query strings, found {}",
                        json_type(other)
                    ),
                ));
            }
        };
        Ok(Panel {
            id,
            title,
            description,
            chart_type,
            unit,
            span,
            queries,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn panel(query: &str) -> Value {
        json!({"title": "GPU", "type": "line", "unit": "percent", "queries": [query]})
    }

    fn error_of(document: Value) -> InvalidField {
        DashboardInput::from_value(&document, "").unwrap_err()
    }

    #[test]
    fn a_minimal_dashboard_gets_defaults() {
        let input = DashboardInput::from_value(&json!({"title": "Fleet"}), "").unwrap();
        assert_eq!(input.title, "Fleet");
        assert_eq!(input.id, None);
        assert_eq!(input.refresh, "off");
        assert_eq!(
            input.time,
            TimeRange {
                from: "now-1h".into(),
                to: "now".into()
            }
        );
        assert!(input.panels.is_empty());
    }

    #[test]
    fn panels_get_ids_from_their_position_and_keep_their_queries() {
        let input = DashboardInput::from_value(
            &json!({"title": "Fleet", "panels": [
                panel("SELECT mean(util_pct) FROM gpu WHERE $timeFilter $tagFilter GROUP BY time($interval), host"),
                {"id": "cost", "title": "Cost", "type": "stat", "unit": "usd", "span": 2,
                 "queries": ["SELECT sum(cost_usd) FROM llm WHERE $timeFilter"]}
            ]}),
            "",
        )
        .unwrap();
        assert_eq!(input.panels[0].id, "panel-1");
        assert_eq!(input.panels[1].id, "cost");
        assert_eq!(input.panels[1].span, 2);
        assert!(input.panels[0].queries[0].contains("$interval"));
    }

    #[test]
    fn an_unknown_chart_type_names_its_path_and_the_choices() {
        let mut document =
            json!({"title": "x", "panels": [panel("SELECT x FROM a"), panel("SELECT x FROM a")]});
        document["panels"][1]["type"] = json!("pie");
        let error = error_of(document);
        assert_eq!(error.path, "panels[1].type");
        assert!(error.message.contains("\"pie\""), "{error}");
        assert!(error.message.contains("heatmap"), "{error}");
    }

    #[test]
    fn a_misspelled_field_is_refused_rather_than_dropped() {
        let error = error_of(json!({"tilte": "x"}));
        assert_eq!(error.path, "tilte");
        assert!(error.message.contains("unknown field"), "{error}");
    }

    #[test]
    fn a_query_that_does_not_parse_is_refused_with_a_caret() {
        let error = error_of(
            json!({"title": "x", "panels": [panel("SELECT mean(util_pct) WHERE $timeFilter")]}),
        );
        assert_eq!(error.path, "panels[0].queries[0]");
        assert!(error.message.contains('^'), "{error}");
        assert!(error.message.contains("FROM"), "{error}");
    }

    #[test]
    fn a_query_that_writes_is_refused() {
        let error = error_of(json!({"title": "x", "panels": [panel("DROP DATABASE telemetry")]}));
        assert_eq!(error.path, "panels[0].queries[0]");
        assert!(error.message.contains("only run SELECT"), "{error}");
    }

    #[test]
    fn limits_on_panels_queries_and_titles_are_enforced() {
        let panels: Vec<Value> = (0..=MAX_PANELS).map(|_| panel("SELECT x FROM a")).collect();
        assert_eq!(
            error_of(json!({"title": "x", "panels": panels})).path,
            "panels"
        );
        let queries: Vec<String> = (0..=MAX_QUERIES_PER_PANEL)
            .map(|_| "SELECT x FROM a".to_string())
            .collect();
        let error = error_of(
            json!({"title": "x", "panels": [{"title": "p", "type": "line", "queries": queries}]}),
        );
        assert_eq!(error.path, "panels[0].queries");
        let long_query = format!(
            "SELECT x FROM a WHERE b = '{}'",
            "y".repeat(MAX_QUERY_BYTES)
        );
        assert_eq!(
            error_of(json!({"title": "x", "panels": [panel(&long_query)]})).path,
            "panels[0].queries[0]"
        );
        let error = error_of(json!({"title": "t".repeat(MAX_TITLE_CHARS + 1)}));
        assert_eq!(error.path, "title");
        assert!(error.message.contains("200"), "{error}");
    }

    #[test]
    fn ids_that_could_escape_the_directory_or_shadow_actions_are_refused() {
        for id in ["../etc", "a/b", "", "-x", "UPPER", "export", "import"] {
            let error = error_of(json!({"id": id, "title": "x"}));
            assert_eq!(error.path, "id", "{id:?}: {error}");
        }
        assert!(is_valid_id("gpu-fleet-2"));
    }

    #[test]
    fn duplicate_panel_ids_are_refused() {
        let mut first = panel("SELECT x FROM a");
        first["id"] = json!("p");
        let error = error_of(json!({"title": "x", "panels": [first.clone(), first]}));
        assert_eq!(error.path, "panels[1].id");
    }

    #[test]
    fn time_bounds_accept_relative_and_absolute_times_only() {
        let ok = json!({"title": "x", "time": {"from": "2026-11-30T00:00:00Z", "to": "now-5m"}});
        assert!(DashboardInput::from_value(&ok, "").is_ok());
        let error = error_of(json!({"title": "x", "time": {"from": "yesterday"}}));
        assert_eq!(error.path, "time.from");
    }

    #[test]
    fn slugs_are_valid_ids() {
        assert_eq!(slug("GPU fleet (prod)"), "gpu-fleet-prod");
        assert_eq!(slug("***"), "dashboard");
        assert_eq!(slug("Export"), "dashboard");
        let long = slug(&"a".repeat(500));
        assert!(is_valid_id(&long) && long.len() <= MAX_ID_BYTES - 4);
    }

    #[test]
    fn wrong_types_say_what_was_found() {
        let error = error_of(json!({"title": "x", "panels": {"a": 1}}));
        assert_eq!(error.path, "panels");
        assert!(error.message.contains("an object"), "{error}");
        let error = error_of(json!({"title": 5}));
        assert!(error.message.contains("a number"), "{error}");
    }
}
