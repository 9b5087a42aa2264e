//! `$name` placeholders in report queries: the period (`$timeFilter`, `$from`, `$to`,
//! `$interval`, ...) and numeric parameters (`$gpu_hour_price`, `$latency_p95_ms`, ...).
//!
//! Filling is textual and strict: a `$` followed by a name that is not known is an error that
//! lists the known names, so a typo never reaches the query engine as odd syntax. `$$` stands
//! for a lone `$` (for a regex ending in `$`, write `$$`).

use std::collections::{BTreeMap, BTreeSet};

use super::period::{ReportPeriod, duration_literal};

/// A `$name` that is not known, or a lone `$`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PlaceholderError {
    #[error("unknown placeholder ${name} at byte {offset}; known: {known}")]
    Unknown {
        name: String,
        offset: usize,
        known: String,
    },
    #[error("a `$` at byte {offset} is not followed by a name (write `$$` for a `$`)")]
    Lone { offset: usize },
}

/// The values placeholders stand for in one run (or in validation, stand-ins).
#[derive(Clone, Debug, Default)]
pub(crate) struct Placeholders {
    /// Period placeholders, as query text.
    period: BTreeMap<&'static str, String>,
    parameters: BTreeMap<String, f64>,
    /// Per-model values of parameters, by the value of the `model` tag.
    overrides: BTreeMap<String, BTreeMap<String, f64>>,
    /// Target parameters the configuration knows but leaves unset: checks that use them are
    /// skipped rather than refused.
    optional_targets: BTreeSet<String>,
}

/// The period placeholders, in the order the documentation lists them.
pub(crate) const PERIOD_PLACEHOLDERS: [&str; 12] = [
    "timeFilter",
    "from",
    "to",
    "interval",
    "previous_from",
    "previous_to",
    "month_start",
    "month_end",
    "forecast_from",
    "forecast_to",
    "forecast_horizon",
    "history",
];

impl Placeholders {
    /// Placeholders for `period` (or for its previous period when `previous`).
    pub(crate) fn new(
        period: &ReportPeriod,
        previous: bool,
        parameters: BTreeMap<String, f64>,
        overrides: BTreeMap<String, BTreeMap<String, f64>>,
        optional_targets: BTreeSet<String>,
    ) -> Placeholders {
        let (from, to) = if previous {
            (period.previous_from, period.previous_to)
        } else {
            (period.from, period.to)
        };
        let mut values = BTreeMap::new();
        values.insert("timeFilter", format!("time >= {from} AND time < {to}"));
        values.insert("from", from.to_string());
        values.insert("to", to.to_string());
        values.insert("interval", duration_literal(period.interval));
        values.insert("previous_from", period.previous_from.to_string());
        values.insert("previous_to", period.previous_to.to_string());
        values.insert("month_start", period.month_start.to_string());
        values.insert("month_end", period.month_end.to_string());
        values.insert("forecast_from", period.forecast_from.to_string());
        values.insert("forecast_to", period.forecast_to.to_string());
        values.insert(
            "forecast_horizon",
            duration_literal(period.forecast_horizon),
        );
        values.insert(
            "history",
            duration_literal(period.forecast_to - period.forecast_from),
        );
        Placeholders {
            period: values,
            parameters,
            overrides,
            optional_targets,
        }
    }

    /// The same placeholders with more parameters (a report's own), which win.
    pub(crate) fn with_parameters(&self, extra: &BTreeMap<String, f64>) -> Placeholders {
        let mut out = self.clone();
        for (name, value) in extra {
            out.parameters.insert(name.clone(), *value);
        }
        out
    }

    pub(crate) fn parameter(&self, name: &str) -> Option<f64> {
        self.parameters.get(name).copied()
    }

    /// A parameter's value for a series: the series' model's own value when it has one.
    pub(crate) fn parameter_for(&self, name: &str, tags: &[(String, String)]) -> Option<f64> {
        tags.iter()
            .find(|(key, _)| key == "model")
            .and_then(|(_, model)| self.overrides.get(model))
            .and_then(|values| values.get(name).copied())
            .or_else(|| self.parameter(name))
    }

    pub(crate) fn is_optional_target(&self, name: &str) -> bool {
        self.optional_targets.contains(name)
    }

    pub(crate) fn parameters(&self) -> &BTreeMap<String, f64> {
        &self.parameters
    }

    pub(crate) fn parameter_names(&self) -> Vec<String> {
        self.parameters.keys().map(|k| format!("${k}")).collect()
    }

    fn known(&self) -> String {
        PERIOD_PLACEHOLDERS
            .iter()
            .map(|name| format!("${name}"))
            .chain(self.parameter_names())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `text` with every placeholder replaced by its value.
    pub(crate) fn fill(&self, text: &str) -> Result<String, PlaceholderError> {
        let mut out = String::with_capacity(text.len() + 64);
        let bytes = text.as_bytes();
        let mut i = 0;
        let mut copied = 0;
        while i < bytes.len() {
            if bytes[i] != b'$' {
                i += 1;
                continue;
            }
            out.push_str(&text[copied..i]);
            if bytes.get(i + 1) == Some(&b'$') {
                out.push('$');
                i += 2;
                copied = i;
                continue;
            }
            let start = i + 1;
            let end = text[start..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .map_or(text.len(), |n| start + n);
            let name = &text[start..end];
            if name.is_empty() || !name.as_bytes()[0].is_ascii_alphabetic() {
                return Err(PlaceholderError::Lone { offset: i });
            }
            if let Some(value) = self.period.get(name) {
                out.push_str(value);
            } else if let Some(value) = self.parameters.get(name) {
                out.push_str(&format_number(*value));
            } else {
                return Err(PlaceholderError::Unknown {
                    name: name.to_string(),
                    offset: i,
                    known: self.known(),
                });
            }
            i = end;
            copied = end;
        }
        out.push_str(&text[copied..]);
        Ok(out)
    }
}

/// A number as query text: integers without a fraction, others with enough digits to read
/// back the same value.
pub(crate) fn format_number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        format!("{value:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reports::period::{NANOS_PER_DAY, Zone};

    fn placeholders() -> Placeholders {
        let period = ReportPeriod::new(
            1_795_478_400_000_000_000,
            1_796_083_200_000_000_000,
            Zone::utc(),
            28 * NANOS_PER_DAY,
        )
        .unwrap();
        let mut parameters = BTreeMap::new();
        parameters.insert("gpu_hour_price".to_string(), 2.5);
        parameters.insert("latency_p95_ms".to_string(), 15000.0);
        let mut overrides = BTreeMap::new();
        overrides.insert(
            "gpt-4o".to_string(),
            BTreeMap::from([("latency_p95_ms".to_string(), 9000.0)]),
        );
        Placeholders::new(&period, false, parameters, overrides, BTreeSet::new())
    }

    #[test]
    fn placeholders_fill_the_period_and_parameters() {
        let p = placeholders();
        assert_eq!(
            p.fill(
                "SELECT sum(x) * $gpu_hour_price FROM m WHERE $timeFilter GROUP BY time($interval)"
            )
            .unwrap(),
            "SELECT sum(x) * 2.5 FROM m WHERE time >= 1795478400000000000 AND time < 1796083200000000000 GROUP BY time(1h)"
        );
        assert_eq!(p.fill("host =~ /a$$/").unwrap(), "host =~ /a$/");
        // 31 days (December), printed in the largest units that divide it.
        assert_eq!(p.fill("$forecast_horizon").unwrap(), "4w3d");
    }

    #[test]
    fn unknown_placeholders_are_errors_listing_the_known_ones() {
        let p = placeholders();
        let error = p.fill("WHERE $timefilter").unwrap_err().to_string();
        assert!(
            error.contains("$timefilter") && error.contains("$timeFilter"),
            "{error}"
        );
        assert!(matches!(
            p.fill("a $ b"),
            Err(PlaceholderError::Lone { offset: 2 })
        ));
    }

    #[test]
    fn per_model_parameters_win_for_their_model_only() {
        let p = placeholders();
        let gpt = vec![("model".to_string(), "gpt-4o".to_string())];
        let other = vec![("model".to_string(), "claude".to_string())];
        assert_eq!(p.parameter_for("latency_p95_ms", &gpt), Some(9000.0));
        assert_eq!(p.parameter_for("latency_p95_ms", &other), Some(15000.0));
        assert_eq!(p.parameter_for("latency_p95_ms", &[]), Some(15000.0));
    }
}
