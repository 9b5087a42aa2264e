//! Templates in rule labels and annotations: text with `{{ ... }}` actions over the alert.
//!
//! An action is a variable, optionally piped through functions:
//! `{{ $value }}`, `{{ $labels.host }}`, `{{ $value | round 1 }}`, `{{ $value | humanize }}`.
//! Variables: `$value` (the alert's value), `$labels.NAME` (a label: a tag of the query's
//! GROUP BY, a rule label, `alertname` or `severity`), `$rule` (the rule's name), `$severity`.
//! Functions: `round N` (N decimals), `humanize` (k, M, G, T suffixes), `percent` (times 100,
//! one decimal, `%`). Parsing checks all of it, so a rule with a bad template never loads.

use std::collections::BTreeMap;

/// A parsed template.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Template {
    parts: Vec<Part>,
}

#[derive(Clone, Debug, PartialEq)]
enum Part {
    Text(String),
    Action {
        variable: Variable,
        functions: Vec<Function>,
    },
}

#[derive(Clone, Debug, PartialEq)]
enum Variable {
    Value,
    Label(String),
    Rule,
    Severity,
}

#[derive(Clone, Debug, PartialEq)]
enum Function {
    Round(u32),
    Humanize,
    Percent,
}

/// A template error: the message and the 1-based character column in the template.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct TemplateError {
    pub column: usize,
    pub message: String,
}

/// What a template is rendered with.
pub(crate) struct Context<'a> {
    pub value: f64,
    pub labels: &'a BTreeMap<String, String>,
    pub rule: &'a str,
    pub severity: &'a str,
}

impl Template {
    pub(crate) fn parse(text: &str) -> Result<Template, TemplateError> {
        let mut parts = Vec::new();
        let mut rest = text;
        let mut offset = 0usize;
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                parts.push(Part::Text(rest[..start].to_string()));
            }
            let column = text[..offset + start].chars().count() + 1;
            let after = &rest[start + 2..];
            let Some(end) = after.find("}}") else {
                return Err(TemplateError {
                    column,
                    message: "`{{` is not closed by `}}`".into(),
                });
            };
            parts.push(parse_action(after[..end].trim(), column)?);
            let consumed = start + 2 + end + 2;
            offset += consumed;
            rest = &rest[consumed..];
        }
        if let Some(stray) = rest.find("}}") {
            return Err(TemplateError {
                column: text[..offset + stray].chars().count() + 1,
                message: "`}}` without an opening `{{`".into(),
            });
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(Template { parts })
    }

    /// The label names the template reads (`$labels.NAME`).
    pub(crate) fn labels_used(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Action {
                variable: Variable::Label(name),
                ..
            } => Some(name.as_str()),
            _ => None,
        })
    }

    /// Whether the template reads `$value` (labels must not: the alert's identity would
    /// change with every evaluation).
    pub(crate) fn uses_value(&self) -> bool {
        self.parts.iter().any(|p| {
            matches!(
                p,
                Part::Action {
                    variable: Variable::Value,
                    ..
                }
            )
        })
    }

    pub(crate) fn render(&self, context: &Context<'_>) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Action {
                    variable,
                    functions,
                } => {
                    let mut number = None;
                    let mut text = match variable {
                        Variable::Value => {
                            number = Some(context.value);
                            format_number(context.value)
                        }
                        Variable::Label(name) => {
                            context.labels.get(name).cloned().unwrap_or_default()
                        }
                        Variable::Rule => context.rule.to_string(),
                        Variable::Severity => context.severity.to_string(),
                    };
                    for function in functions {
                        let Some(n) = number.or_else(|| text.parse::<f64>().ok()) else {
                            continue;
                        };
                        match function {
                            Function::Round(digits) => {
                                text = format!("{n:.prec$}", prec = *digits as usize);
                                number = text.parse().ok();
                            }
                            Function::Humanize => {
                                text = humanize(n);
                                number = None;
                            }
                            Function::Percent => {
                                text = format!("{:.1}%", n * 100.0);
                                number = None;
                            }
                        }
                    }
                    out.push_str(&text);
                }
            }
        }
        out
    }
}

fn parse_action(action: &str, column: usize) -> Result<Part, TemplateError> {
    let err = |message: String| TemplateError { column, message };
    let mut pieces = action.split('|').map(str::trim);
    let variable_text = pieces.next().unwrap_or("");
    let variable = match variable_text {
        "$value" => Variable::Value,
        "$rule" => Variable::Rule,
        "$severity" => Variable::Severity,
        v if v.starts_with("$labels.") => {
            let name = &v["$labels.".len()..];
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
            {
                return Err(err(format!(
                    "{v:?} is not a label reference such as $labels.host"
                )));
            }
            Variable::Label(name.to_string())
        }
        "" => {
            return Err(err(
                "empty `{{ }}`: expected a variable such as $value".into()
            ));
        }
        other => {
            return Err(err(format!(
                "unknown variable {other:?}: expected $value, $labels.NAME, $rule or $severity"
            )));
        }
    };
    let mut functions = Vec::new();
    for piece in pieces {
        let mut words = piece.split_whitespace();
        match (words.next(), words.next(), words.next()) {
            (Some("round"), Some(n), None) => {
                let digits: u32 = n.parse().ok().filter(|d| *d <= 12).ok_or_else(|| {
                    err(format!(
                        "round takes a number of decimals from 0 to 12, not {n:?}"
                    ))
                })?;
                functions.push(Function::Round(digits));
            }
            (Some("humanize"), None, None) => functions.push(Function::Humanize),
            (Some("percent"), None, None) => functions.push(Function::Percent),
            _ => {
                return Err(err(format!(
                    "unknown template function {piece:?}: expected `round N`, `humanize` or `percent`"
                )));
            }
        }
    }
    Ok(Part::Action {
        variable,
        functions,
    })
}

/// A value as people read it: whole numbers without decimals, others with at most four.
pub(crate) fn format_number(value: f64) -> String {
    if !value.is_finite() {
        return if value.is_nan() {
            "NaN".into()
        } else if value > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if value.fract() == 0.0 && value.abs() < 1e15 {
        return format!("{value:.0}");
    }
    let text = format!("{value:.4}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" || text.is_empty() {
        "0".into()
    } else {
        text.to_string()
    }
}

fn humanize(value: f64) -> String {
    let abs = value.abs();
    for (limit, suffix) in [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")] {
        if abs >= limit {
            return format!(
                "{}{suffix}",
                format_number((value / limit * 100.0).round() / 100.0)
            );
        }
    }
    format_number((value * 100.0).round() / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(text: &str, value: f64) -> String {
        let labels = BTreeMap::from([("host".to_string(), "node-1".to_string())]);
        Template::parse(text).unwrap().render(&Context {
            value,
            labels: &labels,
            rule: "gpu_hot",
            severity: "critical",
        })
    }

    #[test]
    fn variables_and_functions_render() {
        assert_eq!(
            render(
                "{{ $labels.host }} at {{ $value }} C ({{$rule}}, {{ $severity }})",
                91.5
            ),
            "node-1 at 91.5 C (gpu_hot, critical)"
        );
        assert_eq!(render("{{ $value | round 1 }}", 2.0 / 3.0), "0.7");
        assert_eq!(render("{{ $value | humanize }}B", 1_536_000.0), "1.54MB");
        assert_eq!(render("{{ $value | percent }}", 0.256), "25.6%");
        assert_eq!(render("{{ $value }}", 85.0), "85");
        assert_eq!(render("{{ $labels.missing }}", 1.0), "");
    }

    #[test]
    fn errors_name_the_column_and_the_problem() {
        let e = Template::parse("ok {{ $valu }}").unwrap_err();
        assert_eq!(e.column, 4);
        assert!(e.message.contains("$valu"), "{e:?}");
        let e = Template::parse("é {{ $value").unwrap_err();
        assert_eq!(e.column, 3);
        assert!(e.message.contains("not closed"));
        let e = Template::parse("{{ $value | frobnicate }}").unwrap_err();
        assert!(e.message.contains("frobnicate"));
        assert!(Template::parse("x }} y").is_err());
    }

    #[test]
    fn labels_used_lists_every_label_reference() {
        let t = Template::parse("{{ $labels.host }}/{{ $labels.gpu }} {{ $value }}").unwrap();
        assert_eq!(t.labels_used().collect::<Vec<_>>(), ["host", "gpu"]);
        assert!(t.uses_value());
    }

    #[test]
    fn numbers_format_without_noise() {
        assert_eq!(format_number(0.1 + 0.2), "0.3");
        assert_eq!(format_number(-0.00001), "0");
        assert_eq!(format_number(f64::INFINITY), "+Inf");
        assert_eq!(format_number(1e20), "100000000000000000000");
    }
}
