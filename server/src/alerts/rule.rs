//! Alert rules: the rule model, loading the rules file (`[[rule]]` tables in TOML), and
//! validation into a [`Rule`] ready to evaluate.
//!
//! Validation parses every statement of the query with the query language's parser and
//! validator, so a syntax error or an unknown function is reported as
//! `rule NAME: line L, column C: message` followed by the query line and a caret. Templates
//! that read a label the query's `GROUP BY` cannot produce are rejected too.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tally_query::ast::Statement;

use super::template::{Template, TemplateError};
use crate::time_text::civil_from_days;
use crate::units::HumanDuration;

/// A rule as written in the rules file or sent to the API.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// Unique; letters, digits, `_`, `-`, `.` and `:`. It is the alert's `alertname` label.
    pub name: String,
    /// One or more SELECT statements; each resulting series is one alert.
    pub query: String,
    /// The database queried (default: `alerts.default_database`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// `> 85`, `>= 3`, `< 0.1`, `<= 0`, `== 0` or `!= 0`; without one, any value fires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    /// How the rows of a series become its value: `last` (default), `first`, `min`, `max`,
    /// `sum`, `mean`, `count`, or `age` (seconds since the last row).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// The result column holding the value (default: the first column after `time`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    /// Divide the value by the same query's value this long before (rate of change).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_over: Option<HumanDuration>,
    /// How often the rule runs (default: `alerts.evaluation_interval`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<HumanDuration>,
    /// The longest this rule's query may run (default: `alerts.query_timeout`); past it the
    /// rule is unhealthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_timeout: Option<HumanDuration>,
    /// How long the condition must hold before the alert fires.
    #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
    pub for_: Option<HumanDuration>,
    /// How long a firing alert keeps firing after the condition stops holding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_firing_for: Option<HumanDuration>,
    /// `critical`, `warning` (default) or `info`; any other word is allowed too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Receivers notified (default: `alerts.default_receivers`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receivers: Option<Vec<String>>,
    /// Fire/resolve changes within `flap_window` that make an alert flapping (0: never).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flap_threshold: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flap_window: Option<HumanDuration>,
}

/// The rules file: `[[rule]]` tables.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    #[serde(default)]
    rule: Vec<RuleSpec>,
}

/// Where a rule came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleSource {
    /// `alerts.rules_file`: read-only through the API.
    File,
    /// Created through `/api/v1/rules`, stored under `<data-dir>/alerts/`.
    Api,
}

/// `value > threshold` and the like.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Condition {
    pub op: CompareOp,
    pub threshold: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CompareOp {
    Greater,
    GreaterOrEqual,
    Less,
    LessOrEqual,
    Equal,
    NotEqual,
}

impl Condition {
    pub(crate) fn parse(text: &str) -> Result<Condition, String> {
        let text = text.trim();
        let (op, rest) = [
            (">=", CompareOp::GreaterOrEqual),
            ("<=", CompareOp::LessOrEqual),
            ("==", CompareOp::Equal),
            ("!=", CompareOp::NotEqual),
            (">", CompareOp::Greater),
            ("<", CompareOp::Less),
            ("=", CompareOp::Equal),
        ]
        .into_iter()
        .find_map(|(symbol, op)| text.strip_prefix(symbol).map(|rest| (op, rest)))
        .ok_or_else(|| {
            format!("condition {text:?}: expected an operator (>, >=, <, <=, ==, !=) and a number, such as \"> 85\"")
        })?;
        let threshold: f64 = rest
            .trim()
            .replace('_', "")
            .parse()
            .map_err(|_| format!("condition {text:?}: {:?} is not a number", rest.trim()))?;
        if !threshold.is_finite() {
            return Err(format!("condition {text:?}: the threshold must be finite"));
        }
        Ok(Condition { op, threshold })
    }

    pub(crate) fn holds(&self, value: f64) -> bool {
        if value.is_nan() {
            return false;
        }
        match self.op {
            CompareOp::Greater => value > self.threshold,
            CompareOp::GreaterOrEqual => value >= self.threshold,
            CompareOp::Less => value < self.threshold,
            CompareOp::LessOrEqual => value <= self.threshold,
            CompareOp::Equal => value == self.threshold,
            CompareOp::NotEqual => value != self.threshold,
        }
    }
}

impl std::fmt::Display for Condition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let op = match self.op {
            CompareOp::Greater => ">",
            CompareOp::GreaterOrEqual => ">=",
            CompareOp::Less => "<",
            CompareOp::LessOrEqual => "<=",
            CompareOp::Equal => "==",
            CompareOp::NotEqual => "!=",
        };
        write!(f, "{op} {}", self.threshold)
    }
}

/// How a series' rows become one value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reduce {
    Last,
    First,
    Min,
    Max,
    Sum,
    Mean,
    Count,
    /// Seconds from the last row to the evaluation time: absence rules.
    Age,
}

impl Reduce {
    fn parse(text: &str) -> Result<Reduce, String> {
        Ok(match text {
            "last" => Reduce::Last,
            "first" => Reduce::First,
            "min" => Reduce::Min,
            "max" => Reduce::Max,
            "sum" => Reduce::Sum,
            "mean" => Reduce::Mean,
            "count" => Reduce::Count,
            "age" => Reduce::Age,
            other => {
                return Err(format!(
                    "value {other:?} is not one of last, first, min, max, sum, mean, count, age"
                ));
            }
        })
    }

    /// Reduces `(time, value)` rows in time order; `None` when there is no row.
    pub(crate) fn apply(self, rows: &[(i64, f64)], now_ns: i64) -> Option<f64> {
        let (first, last) = (rows.first()?, rows.last()?);
        let values = rows.iter().map(|r| r.1);
        Some(match self {
            Reduce::Last => last.1,
            Reduce::First => first.1,
            Reduce::Min => values.fold(f64::INFINITY, f64::min),
            Reduce::Max => values.fold(f64::NEG_INFINITY, f64::max),
            Reduce::Sum => values.sum(),
            Reduce::Mean => values.sum::<f64>() / rows.len() as f64,
            Reduce::Count => rows.len() as f64,
            Reduce::Age => (now_ns.saturating_sub(last.0)) as f64 / 1e9,
        })
    }
}

/// Defaults a rule takes from `[alerts]`.
#[derive(Clone, Debug)]
pub(crate) struct RuleDefaults {
    pub database: String,
    pub interval: Duration,
    pub receivers: Vec<String>,
    /// Names of the configured receivers, for checking a rule's list.
    pub known_receivers: BTreeSet<String>,
}

/// A validated rule.
#[derive(Clone, Debug)]
pub(crate) struct Rule {
    pub spec: RuleSpec,
    pub source: RuleSource,
    pub database: String,
    pub interval: Duration,
    pub for_: Duration,
    pub keep_firing_for: Duration,
    pub severity: String,
    pub condition: Option<Condition>,
    pub reduce: Reduce,
    pub change_over: Option<Duration>,
    /// Overrides `alerts.query_timeout` for this rule's queries.
    pub query_timeout: Option<Duration>,
    pub labels: BTreeMap<String, Template>,
    pub annotations: BTreeMap<String, Template>,
    pub receivers: Vec<String>,
    pub flap_threshold: u32,
    pub flap_window: Duration,
}

/// A rule that did not validate: kept so that the API and SHOW RULES show it with its error.
#[derive(Clone, Debug)]
pub(crate) struct InvalidRule {
    pub spec: RuleSpec,
    pub source: RuleSource,
    pub error: String,
}

/// Query placeholders, replaced at each evaluation: `{{ month_start }}` (the first instant of
/// the evaluation's month, UTC, as a time string), `{{ until_month_end }}` (a duration from
/// the evaluation time to the next month's start, at least 1s) and `{{ interval }}` (the
/// rule's interval).
pub(crate) fn expand_query(query: &str, now_ns: i64, interval: Duration) -> String {
    if !query.contains("{{") {
        return query.to_string();
    }
    let (month_start, next_month_start) = month_bounds(now_ns);
    let until_end = ((next_month_start - now_ns) / 1_000_000_000).max(1);
    let mut out = query.to_string();
    for (names, value) in [
        (
            ["{{ month_start }}", "{{month_start}}"],
            format!("'{}'", rfc3339_seconds(month_start)),
        ),
        (
            ["{{ until_month_end }}", "{{until_month_end}}"],
            format!("{until_end}s"),
        ),
        (
            ["{{ interval }}", "{{interval}}"],
            format!("{}s", interval.as_secs().max(1)),
        ),
    ] {
        for name in names {
            out = out.replace(name, &value);
        }
    }
    out
}

/// The start of the UTC month holding `now_ns` and the start of the next one, in ns.
fn month_bounds(now_ns: i64) -> (i64, i64) {
    let days = now_ns.div_euclid(86_400_000_000_000);
    let (year, month, day) = civil_from_days(days);
    let start_days = days - i64::from(day) + 1;
    let (next_year, next_month) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    let next_days = days_from_civil(next_year, next_month);
    (
        start_days.saturating_mul(86_400_000_000_000),
        next_days.saturating_mul(86_400_000_000_000),
    )
}

/// Days since 1970-01-01 of the first day of a month (Howard Hinnant's days_from_civil).
fn days_from_civil(year: i64, month: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// RFC 3339 of the whole second holding `ns`.
fn rfc3339_seconds(ns: i64) -> String {
    crate::time_text::rfc3339(ns.div_euclid(1_000_000_000).saturating_mul(1_000_000_000))
}

fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("a rule has an empty name".into());
    }
    if name.len() > 200 {
        return Err(format!("rule name {name:?} is longer than 200 bytes"));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_-.:".contains(c))
    {
        return Err(format!(
            "rule name {name:?} may hold only letters, digits, `_`, `-`, `.` and `:`"
        ));
    }
    Ok(())
}

fn check_label_name(name: &str) -> bool {
    !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit())
}

/// The tag keys a query's series can carry: the GROUP BY tags of every statement, or `None`
/// when a statement groups by `*` or a regex (any tag is possible then).
fn group_by_tags(statements: &[Statement]) -> Option<BTreeSet<String>> {
    let mut tags = BTreeSet::new();
    for statement in statements {
        if let Statement::Select(select) = statement
            && let Some(group_by) = &select.group_by
        {
            if group_by.wildcard || !group_by.regexes.is_empty() {
                return None;
            }
            tags.extend(group_by.tags.iter().map(|t| t.name.clone()));
        }
    }
    Some(tags)
}

fn template_error(name: &str, what: &str, key: &str, e: &TemplateError) -> String {
    format!(
        "rule {name}: {what} {key:?}: column {}: {}",
        e.column, e.message
    )
}

impl Rule {
    /// Validates `spec`; the error names the rule and says exactly what is wrong.
    pub(crate) fn compile(
        spec: RuleSpec,
        source: RuleSource,
        defaults: &RuleDefaults,
        now_ns: i64,
    ) -> Result<Rule, String> {
        check_name(&spec.name)?;
        let name = spec.name.clone();
        let fail = |message: String| format!("rule {name}: {message}");
        let interval = spec.interval.map_or(defaults.interval, |d| d.0);
        if interval < Duration::from_secs(1) {
            return Err(fail("interval must be at least 1s".into()));
        }
        if spec.query.trim().is_empty() {
            return Err(fail("query is empty".into()));
        }
        let text = expand_query(&spec.query, now_ns, interval);
        let query = tally_query::parse_query(&text).map_err(|e| {
            format!(
                "rule {name}: line {}, column {}: {}\n{}",
                e.line,
                e.column,
                e.message,
                e.render(&text)
            )
        })?;
        for statement in &query.statements {
            tally_query::validate(statement, &text).map_err(|e| {
                format!(
                    "rule {name}: line {}, column {}: {}\n{}",
                    e.line,
                    e.column,
                    e.message,
                    e.render(&text)
                )
            })?;
            if !matches!(statement, Statement::Select(_)) {
                return Err(fail(format!(
                    "the query must hold SELECT statements only, not `{statement}`"
                )));
            }
        }
        let condition = spec
            .condition
            .as_deref()
            .filter(|c| !c.trim().is_empty())
            .map(Condition::parse)
            .transpose()
            .map_err(&fail)?;
        let reduce = spec
            .value
            .as_deref()
            .map_or(Ok(Reduce::Last), Reduce::parse)
            .map_err(&fail)?;
        let severity = spec
            .severity
            .clone()
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| "warning".into());
        if !check_label_name(&severity.replace('-', "_")) {
            return Err(fail(format!(
                "severity {severity:?} must be a plain word such as critical"
            )));
        }
        let database = spec
            .database
            .clone()
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| defaults.database.clone());
        let tags = group_by_tags(&query.statements);
        let mut known: BTreeSet<String> = spec.labels.keys().cloned().collect();
        known.insert("alertname".into());
        known.insert("severity".into());
        let check_labels = |template: &Template, what: &str, key: &str| -> Result<(), String> {
            let Some(tags) = &tags else { return Ok(()) };
            for label in template.labels_used() {
                if !tags.contains(label) && !known.contains(label) {
                    let grouped: Vec<&str> = tags.iter().map(String::as_str).collect();
                    return Err(fail(format!(
                        "{what} {key:?} reads $labels.{label}, but the query's GROUP BY gives only {grouped:?} (and the rule's labels {:?}); add `{label}` to GROUP BY",
                        spec.labels.keys().collect::<Vec<_>>()
                    )));
                }
            }
            Ok(())
        };
        let mut labels = BTreeMap::new();
        for (key, text) in &spec.labels {
            if !check_label_name(key) || key == "alertname" || key == "severity" {
                return Err(fail(format!(
                    "label name {key:?} must be letters, digits and `_` (not alertname or severity: set `severity` instead)"
                )));
            }
            let template =
                Template::parse(text).map_err(|e| template_error(&name, "label", key, &e))?;
            if template.uses_value() {
                return Err(fail(format!(
                    "label {key:?} reads $value: labels name the alert, so they must not change with its value; use an annotation"
                )));
            }
            check_labels(&template, "label", key)?;
            labels.insert(key.clone(), template);
        }
        let mut annotations = BTreeMap::new();
        for (key, text) in &spec.annotations {
            if key.is_empty() {
                return Err(fail("an annotation has an empty name".into()));
            }
            let template =
                Template::parse(text).map_err(|e| template_error(&name, "annotation", key, &e))?;
            check_labels(&template, "annotation", key)?;
            annotations.insert(key.clone(), template);
        }
        let receivers = spec
            .receivers
            .clone()
            .unwrap_or_else(|| defaults.receivers.clone());
        for r in &receivers {
            if !defaults.known_receivers.contains(r) {
                return Err(fail(format!(
                    "receiver {r:?} is not defined: add an [[alerts.receiver]] named {r:?}"
                )));
            }
        }
        let flap_window = spec.flap_window.map_or(Duration::from_secs(3600), |d| d.0);
        let query_timeout = spec.query_timeout.map(|d| d.0);
        if query_timeout.is_some_and(|d| d.is_zero()) {
            return Err(fail("query_timeout must be positive".into()));
        }
        Ok(Rule {
            database,
            interval,
            for_: spec.for_.map_or(Duration::ZERO, |d| d.0),
            keep_firing_for: spec.keep_firing_for.map_or(Duration::ZERO, |d| d.0),
            severity,
            condition,
            reduce,
            change_over: spec.change_over.map(|d| d.0).filter(|d| !d.is_zero()),
            query_timeout,
            labels,
            annotations,
            receivers,
            flap_threshold: spec.flap_threshold.unwrap_or(0),
            flap_window,
            source,
            spec,
        })
    }
}

/// Reads a rules file: the TOML must parse (an error names the file, line and column);
/// each rule is then validated on its own, so one bad rule does not stop the others.
pub(crate) fn load_file(path: &Path) -> Result<Vec<RuleSpec>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the rules file {}: {e}", path.display()))?;
    parse_file(&text).map_err(|e| format!("rules file {}: {e}", path.display()))
}

pub(crate) fn parse_file(text: &str) -> Result<Vec<RuleSpec>, String> {
    let file: RulesFile = toml::from_str(text).map_err(|e| e.to_string())?;
    Ok(file.rule)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn defaults() -> RuleDefaults {
        RuleDefaults {
            database: "telemetry".into(),
            interval: Duration::from_secs(60),
            receivers: Vec::new(),
            known_receivers: BTreeSet::from(["ops".to_string()]),
        }
    }

    fn spec(name: &str, query: &str) -> RuleSpec {
        RuleSpec {
            name: name.into(),
            query: query.into(),
            database: None,
            condition: Some("> 85".into()),
            value: None,
            column: None,
            change_over: None,
            query_timeout: None,
            interval: None,
            for_: None,
            keep_firing_for: None,
            severity: None,
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            receivers: None,
            flap_threshold: None,
            flap_window: None,
        }
    }

    fn compile(spec: RuleSpec) -> Result<Rule, String> {
        Rule::compile(
            spec,
            RuleSource::File,
            &defaults(),
            1_796_083_200_000_000_000,
        )
    }

    #[test]
    fn a_syntax_error_names_the_rule_line_column_and_draws_a_caret() {
        let err = compile(spec(
            "gpu_hot",
            "SELECT max(temperature_gpu)\nFROM nvidia_smi GROUP host",
        ))
        .unwrap_err();
        assert!(
            err.starts_with("rule gpu_hot: line 2, column 23: "),
            "{err}"
        );
        assert!(err.contains("FROM nvidia_smi GROUP host\n"), "{err}");
        assert!(err.contains('^'), "{err}");
    }

    #[test]
    fn an_unknown_function_is_rejected_with_its_position() {
        let err = compile(spec("x", "SELECT maxx(temperature_gpu) FROM nvidia_smi")).unwrap_err();
        assert!(err.starts_with("rule x: line 1, column 8: "), "{err}");
        assert!(err.contains("maxx"), "{err}");
    }

    #[test]
    fn a_template_reading_a_tag_missing_from_group_by_is_rejected() {
        let mut s = spec(
            "gpu_hot",
            "SELECT max(temperature_gpu) FROM nvidia_smi GROUP BY host",
        );
        s.annotations
            .insert("summary".into(), "GPU {{ $labels.index }} is hot".into());
        let err = compile(s.clone()).unwrap_err();
        assert!(err.contains("$labels.index"), "{err}");
        assert!(err.contains("GROUP BY"), "{err}");
        s.query = "SELECT max(temperature_gpu) FROM nvidia_smi GROUP BY host, index".into();
        compile(s.clone()).unwrap();
        s.query = "SELECT max(temperature_gpu) FROM nvidia_smi GROUP BY *".into();
        compile(s).unwrap();
    }

    #[test]
    fn bad_conditions_values_receivers_and_names_are_rejected() {
        let mut s = spec("a", "SELECT max(x) FROM m");
        s.condition = Some("above 5".into());
        assert!(
            compile(s.clone())
                .unwrap_err()
                .contains("expected an operator")
        );
        s.condition = Some(">= lots".into());
        assert!(compile(s.clone()).unwrap_err().contains("not a number"));
        s.condition = None;
        s.value = Some("median".into());
        assert!(compile(s.clone()).unwrap_err().contains("median"));
        s.value = None;
        s.receivers = Some(vec!["pager".into()]);
        assert!(compile(s.clone()).unwrap_err().contains("pager"));
        s.receivers = Some(vec!["ops".into()]);
        compile(s.clone()).unwrap();
        s.name = "bad name".into();
        assert!(compile(s.clone()).unwrap_err().contains("bad name"));
        let mut s = spec("a", "SHOW DATABASES");
        s.condition = None;
        assert!(compile(s).unwrap_err().contains("SELECT"));
    }

    #[test]
    fn labels_must_not_read_the_value() {
        let mut s = spec("a", "SELECT max(x) FROM m");
        s.labels.insert("level".into(), "{{ $value }}".into());
        assert!(compile(s).unwrap_err().contains("$value"));
    }

    #[test]
    fn conditions_compare_as_written() {
        let c = Condition::parse("> 85").unwrap();
        assert!(c.holds(85.5) && !c.holds(85.0) && !c.holds(f64::NAN));
        assert!(Condition::parse(">=3").unwrap().holds(3.0));
        assert!(Condition::parse("< 0.5").unwrap().holds(0.25));
        assert!(Condition::parse("!= 0").unwrap().holds(f64::INFINITY));
        assert!(Condition::parse("== 1_000").unwrap().holds(1000.0));
    }

    #[test]
    fn reductions_cover_every_kind() {
        let rows = [
            (1_000_000_000, 3.0),
            (2_000_000_000, 1.0),
            (3_000_000_000, 2.0),
        ];
        assert_eq!(Reduce::Last.apply(&rows, 0), Some(2.0));
        assert_eq!(Reduce::First.apply(&rows, 0), Some(3.0));
        assert_eq!(Reduce::Min.apply(&rows, 0), Some(1.0));
        assert_eq!(Reduce::Max.apply(&rows, 0), Some(3.0));
        assert_eq!(Reduce::Sum.apply(&rows, 0), Some(6.0));
        assert_eq!(Reduce::Mean.apply(&rows, 0), Some(2.0));
        assert_eq!(Reduce::Count.apply(&rows, 0), Some(3.0));
        assert_eq!(Reduce::Age.apply(&rows, 123_000_000_000), Some(120.0));
        assert_eq!(Reduce::Last.apply(&[], 0), None);
    }

    #[test]
    fn month_placeholders_expand_to_the_evaluation_month() {
        // 2026-12-04T18:00:00Z
        let now = 1_796_083_200_000_000_000 + (3 * 86_400 + 18 * 3600) * 1_000_000_000;
        let q = expand_query(
            "SELECT sum(cost_usd) FROM llm WHERE time >= {{ month_start }}; SELECT forecast(sum(cost_usd), {{until_month_end}}) FROM llm",
            now,
            Duration::from_secs(60),
        );
        assert!(q.contains("time >= '2026-12-01T00:00:00Z'"), "{q}");
        // 27 days and 6 hours to 2027-01-01.
        assert!(q.contains(&format!("{}s", 27 * 86_400 + 6 * 3600)), "{q}");
    }

    #[test]
    fn the_rules_file_is_toml_with_rule_tables_and_unknown_keys_are_errors() {
        let specs = parse_file(
            "[[rule]]\nname = \"a\"\nquery = \"SELECT max(x) FROM m\"\nfor = \"5m\"\n[rule.labels]\nteam = \"infra\"\n",
        )
        .unwrap();
        assert_eq!(specs.len(), 1);
        assert_eq!(specs[0].for_, Some(HumanDuration(Duration::from_secs(300))));
        let err = parse_file("[[rule]]\nname = \"a\"\nquery = \"q\"\nfour = \"5m\"\n").unwrap_err();
        assert!(err.contains("four") && err.contains("line 4"), "{err}");
    }
}
