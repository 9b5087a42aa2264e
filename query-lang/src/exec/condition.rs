//! WHERE clauses: the time range, the tag filter evaluated on the postings, and what is left to
//! check point by point.
//!
//! The top-level AND conjuncts are sorted three ways: comparisons with `time` narrow the time
//! range; conjuncts made only of tag comparisons become a [`TagFilter`] (bitmap operations, no
//! data read); everything else (field comparisons, or tags and fields mixed under OR) is
//! evaluated on each row with the series' tags at hand.

use regex::Regex;
use tally_engine::TagFilter;

use super::error::{QueryResult, invalid};
use super::value::Value;
use crate::TimeLiteral;
use crate::ast::{BinaryOp, Expr, LiteralValue, UnaryOp};

/// What a WHERE clause says.
#[derive(Clone, Debug)]
pub(crate) struct Condition {
    /// Inclusive bounds; `i64::MIN`/`i64::MAX` when unbounded.
    pub(crate) min_time: i64,
    pub(crate) max_time: i64,
    pub(crate) has_max: bool,
    pub(crate) tag_filter: TagFilter,
    /// Conjuncts to evaluate on each row (fields, or tags mixed with fields).
    pub(crate) row_filter: Option<Expr>,
}

/// How an identifier in a condition is read.
pub(crate) trait Schema: Sync {
    /// Whether `name` is a field (as opposed to a tag) of the measurement.
    fn is_field(&self, name: &str) -> bool;
}

/// Analyzes a WHERE clause.
pub(crate) fn analyze(
    condition: Option<&Expr>,
    now: i64,
    schema: &dyn Schema,
) -> QueryResult<Condition> {
    let mut out = Condition {
        min_time: i64::MIN,
        max_time: i64::MAX,
        has_max: false,
        tag_filter: TagFilter::All,
        row_filter: None,
    };
    let Some(condition) = condition else {
        return Ok(out);
    };
    let mut conjuncts = Vec::new();
    flatten_and(condition, &mut conjuncts);
    let mut tag_parts = Vec::new();
    let mut rest: Vec<Expr> = Vec::new();
    for conjunct in conjuncts {
        if mentions_time(conjunct) {
            apply_time_comparison(conjunct, now, &mut out)?;
        } else if let Some(filter) = tag_filter(conjunct, schema)? {
            tag_parts.push(filter);
        } else {
            rest.push(conjunct.clone());
        }
    }
    out.tag_filter = match tag_parts.len() {
        0 => TagFilter::All,
        1 => tag_parts.remove(0),
        _ => TagFilter::And(tag_parts),
    };
    out.row_filter = rest.into_iter().reduce(|lhs, rhs| {
        let span = lhs.span().to(rhs.span());
        Expr::Binary(crate::ast::BinaryExpr {
            op: BinaryOp::And,
            lhs: Box::new(lhs),
            rhs: Box::new(rhs),
            span,
        })
    });
    Ok(out)
}

/// Only the tag part of a condition (SHOW statements ignore time and need no data).
pub(crate) fn tag_only_filter(
    condition: Option<&Expr>,
    schema: &dyn Schema,
) -> QueryResult<TagFilter> {
    let Some(condition) = condition else {
        return Ok(TagFilter::All);
    };
    let mut conjuncts = Vec::new();
    flatten_and(condition, &mut conjuncts);
    let mut parts = Vec::new();
    for conjunct in conjuncts {
        if mentions_time(conjunct) {
            continue;
        }
        match tag_filter(conjunct, schema)? {
            Some(f) => parts.push(f),
            None => {
                return Err(invalid(format!(
                    "`{conjunct}` cannot be used here: only tag comparisons (=, !=, =~, !~ with a string or regex) are allowed"
                )));
            }
        }
    }
    Ok(match parts.len() {
        0 => TagFilter::All,
        1 => parts.remove(0),
        _ => TagFilter::And(parts),
    })
}

fn flatten_and<'a>(expr: &'a Expr, out: &mut Vec<&'a Expr>) {
    match expr.unparenthesized() {
        Expr::Binary(b) if b.op == BinaryOp::And => {
            flatten_and(&b.lhs, out);
            flatten_and(&b.rhs, out);
        }
        other => out.push(other),
    }
}

fn is_time_ref(expr: &Expr) -> bool {
    matches!(expr.unparenthesized(), Expr::VarRef(v) if v.name.eq_ignore_ascii_case("time"))
}

fn mentions_time(expr: &Expr) -> bool {
    let mut found = false;
    expr.for_each(&mut |e| {
        if is_time_ref(e) {
            found = true;
        }
    });
    found
}

fn apply_time_comparison(expr: &Expr, now: i64, out: &mut Condition) -> QueryResult<()> {
    let Expr::Binary(b) = expr.unparenthesized() else {
        return Err(invalid(format!(
            "invalid time condition `{expr}`: compare time with a time, e.g. time > now() - 1h"
        )));
    };
    if b.op.is_logical() {
        return Err(invalid(format!(
            "invalid time condition `{expr}`: conditions on time must be joined with AND at the top of the WHERE clause, not OR"
        )));
    }
    let (op, other) = if is_time_ref(&b.lhs) {
        (b.op, &*b.rhs)
    } else if is_time_ref(&b.rhs) {
        let flipped = match b.op {
            BinaryOp::Lt => BinaryOp::Gt,
            BinaryOp::LtEq => BinaryOp::GtEq,
            BinaryOp::Gt => BinaryOp::Lt,
            BinaryOp::GtEq => BinaryOp::LtEq,
            other => other,
        };
        (flipped, &*b.lhs)
    } else {
        return Err(invalid(format!(
            "invalid time condition `{expr}`: compare time directly with a time"
        )));
    };
    let t = time_value(other, now)?;
    match op {
        BinaryOp::Gt => out.min_time = out.min_time.max(t.saturating_add(1)),
        BinaryOp::GtEq => out.min_time = out.min_time.max(t),
        BinaryOp::Lt => {
            out.max_time = out.max_time.min(t.saturating_sub(1));
            out.has_max = true;
        }
        BinaryOp::LtEq => {
            out.max_time = out.max_time.min(t);
            out.has_max = true;
        }
        BinaryOp::Eq => {
            out.min_time = out.min_time.max(t);
            out.max_time = out.max_time.min(t);
            out.has_max = true;
        }
        other => {
            return Err(invalid(format!(
                "invalid time condition `{expr}`: time can be compared with =, <, <=, > or >=, not {}",
                other.as_str()
            )));
        }
    }
    Ok(())
}

/// The instant a time expression denotes: RFC 3339 strings, integers (nanoseconds), integers
/// with a unit (`1700000000000ms`), `now()`, and sums and differences with durations.
pub(crate) fn time_value(expr: &Expr, now: i64) -> QueryResult<i64> {
    match expr.unparenthesized() {
        Expr::Now { .. } => Ok(now),
        Expr::Literal(l) => {
            match &l.value {
                LiteralValue::String(s) => {
                    let literal = TimeLiteral::parse(s).map_err(|e| {
                    invalid(format!("invalid time {s:?}: {e} (expected RFC 3339 such as '2026-11-30T00:00:00Z')"))
                })?;
                    literal
                        .unix_nanos(0)
                        .ok_or_else(|| invalid(format!("time {s:?} is outside 1677..2262")))
                }
                LiteralValue::Integer(n) => Ok(*n),
                LiteralValue::Duration(n) => Ok(*n),
                LiteralValue::Float(f) if f.is_finite() => Ok(*f as i64),
                _ => Err(invalid(format!("`{expr}` is not a time"))),
            }
        }
        Expr::Binary(b) if matches!(b.op, BinaryOp::Add | BinaryOp::Sub) => {
            let lhs = time_value(&b.lhs, now)?;
            let rhs = duration_value(&b.rhs)?;
            let result = if b.op == BinaryOp::Add {
                lhs.checked_add(rhs)
            } else {
                lhs.checked_sub(rhs)
            };
            result.ok_or_else(|| invalid(format!("time `{expr}` overflows")))
        }
        _ => Err(invalid(format!(
            "`{expr}` is not a time: use an RFC 3339 string, an epoch with a unit such as 1700000000000ms, or now() - 1h"
        ))),
    }
}

fn duration_value(expr: &Expr) -> QueryResult<i64> {
    match expr.unparenthesized() {
        Expr::Literal(l) => match l.value {
            LiteralValue::Duration(n) | LiteralValue::Integer(n) => Ok(n),
            _ => Err(invalid(format!("`{expr}` is not a duration"))),
        },
        Expr::Unary(u) if u.op == UnaryOp::Neg => Ok(-duration_value(&u.operand)?),
        _ => Err(invalid(format!("`{expr}` is not a duration"))),
    }
}

/// The tag filter a conjunct stands for, if it only compares tags with literals.
fn tag_filter(expr: &Expr, schema: &dyn Schema) -> QueryResult<Option<TagFilter>> {
    match expr.unparenthesized() {
        Expr::Binary(b) if b.op.is_logical() => {
            let (Some(lhs), Some(rhs)) = (tag_filter(&b.lhs, schema)?, tag_filter(&b.rhs, schema)?)
            else {
                return Ok(None);
            };
            Ok(Some(if b.op == BinaryOp::And {
                TagFilter::And(vec![lhs, rhs])
            } else {
                TagFilter::Or(vec![lhs, rhs])
            }))
        }
        Expr::Binary(b) => {
            let (tag, literal, op) = match (tag_name(&b.lhs, schema), tag_name(&b.rhs, schema)) {
                (Some(t), None) => (t, &*b.rhs, b.op),
                (None, Some(t)) => (t, &*b.lhs, b.op),
                _ => return Ok(None),
            };
            let Expr::Literal(l) = literal.unparenthesized() else {
                return Ok(None);
            };
            Ok(match (op, &l.value) {
                (BinaryOp::Eq, LiteralValue::String(s)) => Some(TagFilter::equal(tag, s.clone())),
                (BinaryOp::NotEq, LiteralValue::String(s)) => {
                    Some(TagFilter::not_equal(tag, s.clone()))
                }
                (BinaryOp::RegexMatch, LiteralValue::Regex(r)) => {
                    Some(TagFilter::regex(tag, compile_regex(r)?))
                }
                (BinaryOp::RegexNotMatch, LiteralValue::Regex(r)) => {
                    Some(TagFilter::not_regex(tag, compile_regex(r)?))
                }
                _ => None,
            })
        }
        _ => Ok(None),
    }
}

fn tag_name(expr: &Expr, schema: &dyn Schema) -> Option<String> {
    match expr.unparenthesized() {
        Expr::VarRef(v) => match v.cast {
            Some(crate::ast::Cast::Tag) => Some(v.name.clone()),
            Some(_) => None,
            None if schema.is_field(&v.name) => None,
            None => Some(v.name.clone()),
        },
        _ => None,
    }
}

pub(crate) fn compile_regex(pattern: &str) -> QueryResult<Regex> {
    regex::RegexBuilder::new(pattern)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| invalid(format!("invalid regular expression /{pattern}/: {e}")))
}

/// What a row filter can look up.
pub(crate) trait Row {
    fn field(&self, name: &str) -> Option<Value>;
    fn tag(&self, name: &str) -> Option<&str>;
}

/// Evaluates a condition on one row: true only when it definitely holds.
pub(crate) fn holds(expr: &Expr, row: &dyn Row, schema: &dyn Schema, regexes: &RegexCache) -> bool {
    matches!(eval(expr, row, schema, regexes), Value::Boolean(true))
}

/// Compiled regexes of a condition, keyed by pattern.
#[derive(Default)]
pub(crate) struct RegexCache {
    compiled: Vec<(String, Regex)>,
}

impl RegexCache {
    /// Compiles every regex in `expr` (reporting the first invalid one).
    pub(crate) fn for_expr(expr: &Expr) -> QueryResult<RegexCache> {
        let mut cache = RegexCache::default();
        let mut error = None;
        expr.for_each(&mut |e| {
            if let Expr::Literal(l) = e
                && let LiteralValue::Regex(r) = &l.value
                && !cache.compiled.iter().any(|(p, _)| p == r)
            {
                match compile_regex(r) {
                    Ok(re) => cache.compiled.push((r.clone(), re)),
                    Err(e) => error = Some(e),
                }
            }
        });
        match error {
            Some(e) => Err(e),
            None => Ok(cache),
        }
    }

    fn get(&self, pattern: &str) -> Option<&Regex> {
        self.compiled
            .iter()
            .find(|(p, _)| p == pattern)
            .map(|(_, r)| r)
    }
}

fn eval(expr: &Expr, row: &dyn Row, schema: &dyn Schema, regexes: &RegexCache) -> Value {
    match expr {
        Expr::Paren(p) => eval(&p.inner, row, schema, regexes),
        Expr::Literal(l) => match &l.value {
            LiteralValue::Integer(v) => Value::Integer(*v),
            LiteralValue::Unsigned(v) => Value::Unsigned(*v),
            LiteralValue::Float(v) => Value::Float(*v),
            LiteralValue::String(s) => Value::String(s.clone()),
            LiteralValue::Bool(b) => Value::Boolean(*b),
            LiteralValue::Duration(d) => Value::Integer(*d),
            _ => Value::Null,
        },
        Expr::VarRef(v) => {
            let as_tag = match v.cast {
                Some(crate::ast::Cast::Tag) => true,
                Some(_) => false,
                None => !schema.is_field(&v.name),
            };
            if as_tag {
                Value::String(row.tag(&v.name).unwrap_or("").to_string())
            } else {
                row.field(&v.name).unwrap_or(Value::Null)
            }
        }
        Expr::Unary(u) => match eval(&u.operand, row, schema, regexes) {
            Value::Float(v) => Value::Float(-v),
            Value::Integer(v) => v.checked_neg().map_or(Value::Null, Value::Integer),
            _ => Value::Null,
        },
        Expr::Binary(b) => match b.op {
            BinaryOp::And => Value::Boolean(
                holds(&b.lhs, row, schema, regexes) && holds(&b.rhs, row, schema, regexes),
            ),
            BinaryOp::Or => Value::Boolean(
                holds(&b.lhs, row, schema, regexes) || holds(&b.rhs, row, schema, regexes),
            ),
            BinaryOp::RegexMatch | BinaryOp::RegexNotMatch => {
                let lhs = eval(&b.lhs, row, schema, regexes);
                let pattern = match b.rhs.unparenthesized() {
                    Expr::Literal(l) => match &l.value {
                        LiteralValue::Regex(r) => Some(r.as_str()),
                        _ => None,
                    },
                    _ => None,
                };
                match (lhs, pattern.and_then(|p| regexes.get(p))) {
                    (Value::String(s), Some(re)) => {
                        Value::Boolean(re.is_match(&s) == (b.op == BinaryOp::RegexMatch))
                    }
                    _ => Value::Boolean(false),
                }
            }
            op if op.is_comparison() => {
                let lhs = eval(&b.lhs, row, schema, regexes);
                let rhs = eval(&b.rhs, row, schema, regexes);
                let Some(ordering) = lhs.compare(&rhs) else {
                    return Value::Boolean(false);
                };
                use std::cmp::Ordering::*;
                Value::Boolean(match op {
                    BinaryOp::Eq => ordering == Equal,
                    BinaryOp::NotEq => ordering != Equal,
                    BinaryOp::Lt => ordering == Less,
                    BinaryOp::LtEq => ordering != Greater,
                    BinaryOp::Gt => ordering == Greater,
                    BinaryOp::GtEq => ordering != Less,
                    _ => false,
                })
            }
            op => arithmetic(
                op,
                &eval(&b.lhs, row, schema, regexes),
                &eval(&b.rhs, row, schema, regexes),
            ),
        },
        _ => Value::Null,
    }
}

/// `lhs op rhs` for numbers: integers stay integers (checked; overflow gives null), anything
/// with a float is a float; division of integers is float division, as in InfluxQL; division
/// by zero gives null.
pub(crate) fn arithmetic(op: BinaryOp, lhs: &Value, rhs: &Value) -> Value {
    match (lhs, rhs) {
        (Value::Integer(a), Value::Integer(b)) if op != BinaryOp::Div => {
            let r = match op {
                BinaryOp::Add => a.checked_add(*b),
                BinaryOp::Sub => a.checked_sub(*b),
                BinaryOp::Mul => a.checked_mul(*b),
                BinaryOp::Mod => a.checked_rem(*b),
                _ => None,
            };
            r.map_or(Value::Null, Value::Integer)
        }
        _ => {
            let (Some(a), Some(b)) = (lhs.as_f64(), rhs.as_f64()) else {
                return Value::Null;
            };
            let r = match op {
                BinaryOp::Add => a + b,
                BinaryOp::Sub => a - b,
                BinaryOp::Mul => a * b,
                BinaryOp::Div if b == 0.0 => return Value::Null,
                BinaryOp::Div => a / b,
                BinaryOp::Mod if b == 0.0 => return Value::Null,
                BinaryOp::Mod => a % b,
                _ => return Value::Null,
            };
            Value::Float(r)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_expression;

    struct Fields;
    impl Schema for Fields {
        fn is_field(&self, name: &str) -> bool {
            name == "value" || name == "latency_ms"
        }
    }

    fn analyzed(text: &str) -> Condition {
        analyze(
            Some(&parse_expression(text).unwrap()),
            1_000_000_000_000,
            &Fields,
        )
        .unwrap()
    }

    #[test]
    fn time_bounds_come_from_top_level_conjuncts_in_every_spelling() {
        let c = analyzed("time >= '1970-01-01T00:00:10Z' AND time < 20s");
        assert_eq!((c.min_time, c.max_time), (10_000_000_000, 19_999_999_999));
        let c = analyzed("time > now() - 6h AND host = 'a'");
        assert_eq!(c.min_time, 1_000_000_000_000 - 6 * 3_600_000_000_000 + 1);
        assert!(!c.has_max);
        assert!(matches!(c.tag_filter, TagFilter::Match(_)));
        let c = analyzed("1700000000000ms <= time and time <= 1700003600000ms");
        assert_eq!(
            (c.min_time, c.max_time),
            (1_700_000_000_000_000_000, 1_700_003_600_000_000_000)
        );
    }

    #[test]
    fn time_inside_or_is_rejected_with_advice() {
        let err = analyze(
            Some(&parse_expression("time > 5 OR host = 'a'").unwrap()),
            0,
            &Fields,
        )
        .unwrap_err();
        assert!(err.to_string().contains("AND"), "{err}");
    }

    #[test]
    fn tag_and_field_conjuncts_are_separated() {
        let c = analyzed("host =~ /gpu/ AND (model = 'a' OR model = 'b') AND value > 3");
        assert!(matches!(c.tag_filter, TagFilter::And(ref parts) if parts.len() == 2));
        assert_eq!(c.row_filter.unwrap().to_string(), "value > 3");
    }

    struct R;
    impl Row for R {
        fn field(&self, name: &str) -> Option<Value> {
            (name == "value").then_some(Value::Integer(5))
        }
        fn tag(&self, name: &str) -> Option<&str> {
            (name == "host").then_some("gpu-1")
        }
    }

    #[test]
    fn row_conditions_mix_fields_and_tags() {
        let check = |text: &str| {
            let e = parse_expression(text).unwrap();
            holds(&e, &R, &Fields, &RegexCache::for_expr(&e).unwrap())
        };
        assert!(check("value > 3 AND value < 5.5"));
        assert!(check("value = 4 OR host =~ /^gpu/"));
        assert!(!check("value = 4 OR host !~ /^gpu/"));
        assert!(check("value * 2 = 10"));
        assert!(!check("latency_ms > 0"));
        assert!(check("zone = ''"));
    }
}
