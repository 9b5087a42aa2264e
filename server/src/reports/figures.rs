//! Figures: one number from a query result ([`reduce`]) or from other figures ([`evaluate`]).
//!
//! Sums and counts are exact: integer columns are added in 128 bits, counts are integers, and
//! floats are added in the order of the result's rows. Expressions are parsed with the query
//! language's expression parser, so they read like the SELECT clause of a query.

use std::collections::BTreeMap;

use serde::{Serialize, Serializer};
use tally_query::ast::{BinaryOp, Expr, LiteralValue, UnaryOp};
use tally_query::{ResultSeries, Value};

use super::model::{FigureDefinition, Reduce};
use super::period::NANOS_PER_DAY;
use super::placeholders::Placeholders;

/// A figure's value: an integer when it is an exact count or a sum of integers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Number {
    Integer(i64),
    Float(f64),
}

impl Number {
    pub(crate) fn as_f64(self) -> f64 {
        match self {
            Number::Integer(i) => i as f64,
            Number::Float(f) => f,
        }
    }

    fn from_i128(value: i128) -> Number {
        i64::try_from(value).map_or(Number::Float(value as f64), Number::Integer)
    }

    pub(crate) fn to_json(self) -> serde_json::Value {
        match self {
            Number::Integer(i) => serde_json::Value::from(i),
            Number::Float(f) => serde_json::Number::from_f64(f)
                .map_or(serde_json::Value::Null, serde_json::Value::Number),
        }
    }
}

impl Serialize for Number {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

/// A numeric cell as a float and, for integer columns, exactly.
fn numeric(value: &Value) -> Option<(f64, Option<i128>)> {
    match value {
        Value::Integer(i) => Some((*i as f64, Some(i128::from(*i)))),
        Value::Unsigned(u) => Some((*u as f64, Some(i128::from(*u)))),
        Value::Float(f) if f.is_finite() => Some((*f, None)),
        _ => None,
    }
}

/// The index of `column` in a series (the first column after `time` when empty).
pub(crate) fn column_index(series: &ResultSeries, column: &str) -> Result<usize, String> {
    if column.is_empty() {
        return series
            .columns
            .iter()
            .position(|c| c != "time")
            .ok_or_else(|| "the result has no column besides time".to_string());
    }
    series
        .columns
        .iter()
        .position(|c| c == column)
        .ok_or_else(|| {
            format!(
                "the result has no column {column:?} (it has {})",
                series.columns.join(", ")
            )
        })
}

/// The threshold of a count for a series' tags.
pub(crate) type ThresholdFor<'a> = &'a dyn Fn(&[(String, String)]) -> Option<f64>;

/// Reduces the rows of every series to one number; `None` when no row holds a value.
pub(crate) fn reduce(
    series: &[ResultSeries],
    column: &str,
    how: Reduce,
    threshold: Option<ThresholdFor<'_>>,
    scale: f64,
) -> Result<Option<Number>, String> {
    if how == Reduce::Series {
        return Ok(Some(scaled(Number::Integer(series.len() as i64), scale)));
    }
    // (time, float, exact integer) of every numeric cell, series after series.
    let mut cells: Vec<(i64, f64, Option<i128>)> = Vec::new();
    let mut counted: i64 = 0;
    let mut first_series_cells = 0usize;
    for (series_index, one) in series.iter().enumerate() {
        let index = column_index(one, column)?;
        let time_index = one.columns.iter().position(|c| c == "time");
        let limit = match how {
            Reduce::CountBelow | Reduce::CountAbove => match threshold.and_then(|t| t(&one.tags)) {
                Some(limit) => Some(limit),
                // A series without a target (a model with the target unset) is not counted.
                None => continue,
            },
            _ => None,
        };
        for row in &one.values {
            let Some((float, exact)) = row.get(index).and_then(numeric) else {
                continue;
            };
            let time = time_index
                .and_then(|t| row.get(t))
                .and_then(|v| match v {
                    Value::Time(t) => Some(*t),
                    Value::Integer(t) => Some(*t),
                    _ => None,
                })
                .unwrap_or(0);
            match (how, limit) {
                (Reduce::CountBelow, Some(limit)) if float < limit => counted += 1,
                (Reduce::CountAbove, Some(limit)) if float > limit => counted += 1,
                _ => {}
            }
            cells.push((time, float, exact));
            if series_index == 0 {
                first_series_cells += 1;
            }
        }
    }
    if matches!(how, Reduce::CountBelow | Reduce::CountAbove) {
        return Ok(Some(scaled(Number::Integer(counted), scale)));
    }
    if how == Reduce::Count {
        return Ok(Some(scaled(Number::Integer(cells.len() as i64), scale)));
    }
    if cells.is_empty() {
        // A sum over nothing is exactly zero (no requests cost nothing); other reductions of
        // nothing have no value.
        return Ok((how == Reduce::Sum).then_some(Number::Integer(0)));
    }
    let keep_exact = |(_, float, exact): (i64, f64, Option<i128>)| match exact {
        Some(exact) => Number::from_i128(exact),
        None => Number::Float(float),
    };
    let first_series = &cells[..first_series_cells];
    let value = match how {
        Reduce::Sum => {
            if cells.iter().all(|(_, _, exact)| exact.is_some()) {
                Number::from_i128(cells.iter().filter_map(|(_, _, e)| *e).sum())
            } else {
                Number::Float(cells.iter().map(|(_, f, _)| f).sum())
            }
        }
        Reduce::Mean => {
            Number::Float(cells.iter().map(|(_, f, _)| f).sum::<f64>() / cells.len() as f64)
        }
        Reduce::First => match first_series.first() {
            Some(cell) => keep_exact(*cell),
            None => return Ok(None),
        },
        Reduce::Last => match first_series.last() {
            Some(cell) => keep_exact(*cell),
            None => return Ok(None),
        },
        Reduce::Min => cells
            .iter()
            .copied()
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map_or(Number::Float(f64::NAN), keep_exact),
        Reduce::Max => cells
            .iter()
            .copied()
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map_or(Number::Float(f64::NAN), keep_exact),
        Reduce::SlopePerDay => {
            let (Some(first), Some(last)) = (first_series.first(), first_series.last()) else {
                return Ok(None);
            };
            if last.0 <= first.0 {
                return Ok(None);
            }
            Number::Float((last.1 - first.1) / ((last.0 - first.0) as f64 / NANOS_PER_DAY as f64))
        }
        Reduce::Count | Reduce::CountBelow | Reduce::CountAbove | Reduce::Series => {
            return Err("BUG: counts are handled above".into());
        }
    };
    Ok(Some(scaled(value, scale)))
}

fn scaled(value: Number, scale: f64) -> Number {
    if scale == 1.0 {
        value
    } else {
        Number::Float(value.as_f64() * scale)
    }
}

fn parse(text: &str, placeholders: &Placeholders) -> Result<Expr, String> {
    let filled = placeholders.fill(text).map_err(|e| e.to_string())?;
    tally_query::parse_expression(&filled).map_err(|e| format!("{e}\n{}", e.render(&filled)))
}

/// The figure and parameter names an expression refers to.
pub(crate) fn expression_references(
    text: &str,
    placeholders: &Placeholders,
) -> Result<Vec<String>, String> {
    let expr = parse(text, placeholders)?;
    let mut names = Vec::new();
    let mut problem = None;
    expr.for_each(&mut |e| match e {
        Expr::VarRef(var) => names.push(var.name.clone()),
        Expr::Call(call) if !EXPRESSION_FUNCTIONS.contains(&call.name.as_str()) => {
            problem.get_or_insert_with(|| {
                format!(
                    "unknown function {}(); expressions may use {}",
                    call.name,
                    EXPRESSION_FUNCTIONS.join(", ")
                )
            });
        }
        Expr::Wildcard(_) | Expr::Now { .. } => {
            problem.get_or_insert_with(|| {
                "expressions use figures, parameters and numbers only".into()
            });
        }
        Expr::Binary(binary)
            if !matches!(
                binary.op,
                BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div | BinaryOp::Mod
            ) =>
        {
            problem.get_or_insert_with(|| "expressions use + - * / % only".into());
        }
        Expr::Literal(literal)
            if !matches!(
                literal.value,
                LiteralValue::Integer(_) | LiteralValue::Unsigned(_) | LiteralValue::Float(_)
            ) =>
        {
            problem.get_or_insert_with(|| "expressions hold numbers only".into());
        }
        _ => {}
    });
    match problem {
        Some(problem) => Err(problem),
        None => Ok(names),
    }
}

/// The functions expressions may call.
pub(crate) const EXPRESSION_FUNCTIONS: [&str; 5] = ["change_pct", "abs", "min", "max", "round"];

/// Evaluates an expression over computed figures and parameters. A figure without a value,
/// and a division by zero, give no value.
pub(crate) fn evaluate(
    text: &str,
    figures: &BTreeMap<String, Option<Number>>,
    placeholders: &Placeholders,
) -> Result<Option<f64>, String> {
    let expr = parse(text, placeholders)?;
    eval(&expr, figures, placeholders)
}

fn eval(
    expr: &Expr,
    figures: &BTreeMap<String, Option<Number>>,
    placeholders: &Placeholders,
) -> Result<Option<f64>, String> {
    Ok(match expr {
        Expr::Literal(literal) => match literal.value {
            LiteralValue::Integer(i) => Some(i as f64),
            LiteralValue::Unsigned(u) => Some(u as f64),
            LiteralValue::Float(f) => Some(f),
            _ => return Err("expressions hold numbers only".into()),
        },
        Expr::VarRef(var) => {
            match figures.get(&var.name) {
                Some(value) => value.map(Number::as_f64),
                None => Some(placeholders.parameter(&var.name).ok_or_else(|| {
                    format!("{:?} is neither a figure nor a parameter", var.name)
                })?),
            }
        }
        Expr::Paren(paren) => eval(&paren.inner, figures, placeholders)?,
        Expr::Unary(unary) => match unary.op {
            UnaryOp::Neg => eval(&unary.operand, figures, placeholders)?.map(|v| -v),
            _ => return Err("unsupported operator".into()),
        },
        Expr::Binary(binary) => {
            let lhs = eval(&binary.lhs, figures, placeholders)?;
            let rhs = eval(&binary.rhs, figures, placeholders)?;
            let (Some(lhs), Some(rhs)) = (lhs, rhs) else {
                return Ok(None);
            };
            match binary.op {
                BinaryOp::Add => Some(lhs + rhs),
                BinaryOp::Sub => Some(lhs - rhs),
                BinaryOp::Mul => Some(lhs * rhs),
                BinaryOp::Div => (rhs != 0.0).then(|| lhs / rhs),
                BinaryOp::Mod => (rhs != 0.0).then(|| lhs % rhs),
                _ => return Err("expressions use + - * / % only".into()),
            }
        }
        Expr::Call(call) => {
            let mut args = Vec::with_capacity(call.args.len());
            for arg in &call.args {
                args.push(eval(arg, figures, placeholders)?);
            }
            let arity = |n: usize| {
                if args.len() == n {
                    Ok(())
                } else {
                    Err(format!(
                        "{}() takes {n} argument(s), not {}",
                        call.name,
                        args.len()
                    ))
                }
            };
            match call.name.as_str() {
                "change_pct" => {
                    arity(2)?;
                    match (args[0], args[1]) {
                        (Some(new), Some(old)) if old != 0.0 => {
                            Some((new - old) / old.abs() * 100.0)
                        }
                        _ => None,
                    }
                }
                "abs" => {
                    arity(1)?;
                    args[0].map(f64::abs)
                }
                "round" => {
                    arity(1)?;
                    args[0].map(f64::round)
                }
                "min" | "max" => {
                    if args.is_empty() {
                        return Err(format!("{}() needs at least one argument", call.name));
                    }
                    let values: Option<Vec<f64>> = args.into_iter().collect();
                    values.map(|values| {
                        let pick = if call.name == "min" {
                            f64::min
                        } else {
                            f64::max
                        };
                        values.into_iter().fold(
                            if call.name == "min" {
                                f64::INFINITY
                            } else {
                                f64::NEG_INFINITY
                            },
                            pick,
                        )
                    })
                }
                other => {
                    return Err(format!(
                        "unknown function {other}(); expressions may use {}",
                        EXPRESSION_FUNCTIONS.join(", ")
                    ));
                }
            }
        }
        _ => {
            return Err("expressions use figures, parameters and numbers only".into());
        }
    }
    .filter(|v| v.is_finite()))
}

/// The order to compute figures in: query figures first, then expressions after the
/// figures they use. A cycle is an error naming the figures in it.
pub(crate) fn evaluation_order(figures: &[FigureDefinition]) -> Result<Vec<usize>, String> {
    let index: BTreeMap<&str, usize> = figures
        .iter()
        .enumerate()
        .map(|(i, f)| (f.name.as_str(), i))
        .collect();
    let mut dependencies: Vec<Vec<usize>> = vec![Vec::new(); figures.len()];
    for (i, figure) in figures.iter().enumerate() {
        if let Some(expr) = &figure.expr {
            // References are checked by `validate`; here a reference that does not parse
            // has no dependencies and fails when evaluated.
            if let Ok(parsed) = tally_query::parse_expression(&strip_placeholders(expr)) {
                parsed.for_each(&mut |e| {
                    if let Expr::VarRef(var) = e
                        && let Some(j) = index.get(var.name.as_str())
                    {
                        dependencies[i].push(*j);
                    }
                });
            }
        }
    }
    // Depth-first topological sort: 0 unvisited, 1 in progress, 2 done.
    let mut state = vec![0u8; figures.len()];
    let mut order = Vec::with_capacity(figures.len());
    fn visit(
        i: usize,
        dependencies: &[Vec<usize>],
        state: &mut [u8],
        order: &mut Vec<usize>,
        figures: &[FigureDefinition],
        path: &mut Vec<usize>,
    ) -> Result<(), String> {
        match state[i] {
            2 => return Ok(()),
            1 => {
                let start = path.iter().position(|p| *p == i).unwrap_or(0);
                let names: Vec<&str> = path[start..]
                    .iter()
                    .chain(std::iter::once(&i))
                    .map(|j| figures[*j].name.as_str())
                    .collect();
                return Err(format!(
                    "the figures refer to each other in a cycle: {}",
                    names.join(" -> ")
                ));
            }
            _ => {}
        }
        state[i] = 1;
        path.push(i);
        for j in &dependencies[i] {
            visit(*j, dependencies, state, order, figures, path)?;
        }
        path.pop();
        state[i] = 2;
        order.push(i);
        Ok(())
    }
    let mut path = Vec::new();
    // Query figures first, so that they run in the order they are written.
    for i in (0..figures.len()).filter(|i| figures[*i].expr.is_none()) {
        visit(i, &dependencies, &mut state, &mut order, figures, &mut path)?;
    }
    for i in 0..figures.len() {
        visit(i, &dependencies, &mut state, &mut order, figures, &mut path)?;
    }
    Ok(order)
}

/// An expression with `$parameters` turned into plain names, for finding references.
fn strip_placeholders(text: &str) -> String {
    text.replace("$$", "").replace('$', "")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reports::model::QueryList;

    fn series(tags: &[(&str, &str)], rows: Vec<(i64, Value)>) -> ResultSeries {
        ResultSeries {
            name: "m".into(),
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            columns: vec!["time".into(), "v".into()],
            values: rows
                .into_iter()
                .map(|(t, v)| vec![Value::Time(t), v])
                .collect(),
        }
    }

    #[test]
    fn sums_of_integers_are_exact_and_stay_integers() {
        let big = i64::MAX / 2;
        let result = [
            series(
                &[("h", "a")],
                vec![(0, Value::Integer(big)), (1, Value::Integer(big))],
            ),
            series(
                &[("h", "b")],
                vec![(0, Value::Integer(3)), (1, Value::Null)],
            ),
        ];
        assert_eq!(
            reduce(&result, "", Reduce::Sum, None, 1.0).unwrap(),
            Some(Number::Float((2 * i128::from(big) + 3) as f64))
        );
        let small = [series(
            &[],
            vec![(0, Value::Integer(2)), (1, Value::Integer(5))],
        )];
        assert_eq!(
            reduce(&small, "v", Reduce::Sum, None, 1.0).unwrap(),
            Some(Number::Integer(7))
        );
        assert_eq!(
            reduce(&small, "v", Reduce::Count, None, 1.0).unwrap(),
            Some(Number::Integer(2))
        );
        assert_eq!(
            reduce(&small, "v", Reduce::Max, None, 1.0).unwrap(),
            Some(Number::Integer(5))
        );
        assert_eq!(
            reduce(&small, "v", Reduce::Sum, None, 0.5).unwrap(),
            Some(Number::Float(3.5))
        );
    }

    #[test]
    fn counts_against_thresholds_use_each_series_own_threshold() {
        let result = [
            series(
                &[("model", "a")],
                vec![(0, Value::Float(1.0)), (1, Value::Float(9.0))],
            ),
            series(
                &[("model", "b")],
                vec![(0, Value::Float(4.0)), (1, Value::Float(6.0))],
            ),
            series(&[("model", "c")], vec![(0, Value::Float(100.0))]),
        ];
        let threshold = |tags: &[(String, String)]| match tags[0].1.as_str() {
            "a" => Some(5.0),
            "b" => Some(3.0),
            _ => None,
        };
        assert_eq!(
            reduce(&result, "", Reduce::CountAbove, Some(&threshold), 1.0).unwrap(),
            Some(Number::Integer(3))
        );
        assert_eq!(
            reduce(&result, "", Reduce::CountBelow, Some(&threshold), 1.0).unwrap(),
            Some(Number::Integer(1))
        );
        assert_eq!(
            reduce(&result, "", Reduce::Series, None, 1.0).unwrap(),
            Some(Number::Integer(3))
        );
    }

    #[test]
    fn empty_results_sum_and_count_to_zero_and_have_no_other_value() {
        assert_eq!(
            reduce(&[], "", Reduce::Sum, None, 1.0).unwrap(),
            Some(Number::Integer(0))
        );
        assert_eq!(reduce(&[], "", Reduce::Mean, None, 1.0).unwrap(), None);
        assert_eq!(reduce(&[], "", Reduce::Last, None, 1.0).unwrap(), None);
        assert_eq!(
            reduce(&[], "", Reduce::Count, None, 1.0).unwrap(),
            Some(Number::Integer(0))
        );
        let missing = reduce(&[series(&[], vec![])], "nope", Reduce::Sum, None, 1.0).unwrap_err();
        assert!(
            missing.contains("nope") && missing.contains("time, v"),
            "{missing}"
        );
    }

    #[test]
    fn slope_per_day_is_the_change_between_first_and_last_rows() {
        let day = NANOS_PER_DAY;
        let result = [series(
            &[],
            vec![
                (0, Value::Float(10.0)),
                (day, Value::Float(12.0)),
                (4 * day, Value::Float(18.0)),
            ],
        )];
        assert_eq!(
            reduce(&result, "", Reduce::SlopePerDay, None, 1.0).unwrap(),
            Some(Number::Float(2.0))
        );
    }

    fn figure(name: &str, expr: Option<&str>) -> FigureDefinition {
        FigureDefinition {
            name: name.into(),
            label: String::new(),
            query: expr.is_none().then(|| QueryList::One("SELECT 1".into())),
            expr: expr.map(str::to_string),
            period: Default::default(),
            column: String::new(),
            reduce: Reduce::Sum,
            threshold: None,
            scale: 1.0,
            unit: Default::default(),
            method: String::new(),
        }
    }

    #[test]
    fn expressions_compute_changes_and_propagate_missing_values() {
        let placeholders =
            Placeholders::default().with_parameters(&BTreeMap::from([("price".to_string(), 2.0)]));
        let figures = BTreeMap::from([
            ("current".to_string(), Some(Number::Integer(150))),
            ("before".to_string(), Some(Number::Float(100.0))),
            ("zero".to_string(), Some(Number::Integer(0))),
            ("missing".to_string(), None),
        ]);
        let run = |text: &str| evaluate(text, &figures, &placeholders).unwrap();
        assert_eq!(run("change_pct(current, before)"), Some(50.0));
        assert_eq!(run("(current - before) * $price"), Some(100.0));
        assert_eq!(run("current * price / 3"), Some(100.0));
        assert_eq!(run("current / zero"), None);
        assert_eq!(run("change_pct(current, zero)"), None);
        assert_eq!(run("missing + 1"), None);
        assert_eq!(run("max(current, before, 7)"), Some(150.0));
        assert_eq!(run("-abs(before - current)"), Some(-50.0));
        assert!(
            evaluate("mean(current)", &figures, &placeholders)
                .unwrap_err()
                .contains("unknown function")
        );
        assert!(
            expression_references("current > 1", &placeholders)
                .unwrap_err()
                .contains("+ - * / %")
        );
    }

    #[test]
    fn figures_are_ordered_after_the_figures_they_use_and_cycles_are_named() {
        let figures = vec![
            figure("total", Some("a + b")),
            figure("a", None),
            figure("b", Some("a * 2")),
        ];
        let order = evaluation_order(&figures).unwrap();
        let names: Vec<&str> = order.iter().map(|i| figures[*i].name.as_str()).collect();
        assert_eq!(names, ["a", "b", "total"]);
        let cycle = vec![figure("x", Some("y + 1")), figure("y", Some("x + 1"))];
        let error = evaluation_order(&cycle).unwrap_err();
        assert!(error.contains("x -> y -> x"), "{error}");
    }
}
