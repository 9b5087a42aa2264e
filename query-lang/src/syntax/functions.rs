//! The table of known functions with their argument shapes, and [`validate`], which checks a
//! parsed statement against it and against what the grammar alone cannot check.
//!
//! The parser accepts any `name(args...)`; keeping the list here, in one table, lets the
//! executor, the docs and the completion helper agree on it.

use super::ast::{
    Call, Expr, LiteralValue, MeasurementName, MeasurementRef, RegexLiteral, SelectStatement,
    Source, Span, Statement,
};
use super::error::ParseError;
use super::time_literal::TimeLiteral;
use super::visit::{Visit, walk_statement};

/// What an argument must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ArgKind {
    /// A field: a name, `*` or a `/regex/` (and `distinct(field)` inside `count`).
    Field,
    /// Any expression that is not a bare literal: a field, a call, arithmetic.
    Expr,
    /// A tag key name.
    Tag,
    /// An integer literal.
    Integer,
    /// An integer or float literal.
    Number,
    /// A duration literal such as `1s`.
    Duration,
    /// A string literal equal (ignoring case) to one of these.
    OneOf(&'static [&'static str]),
}

/// How often a parameter may be given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    Required,
    Optional,
    /// Zero or more times.
    Repeated,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Param {
    pub name: &'static str,
    pub kind: ArgKind,
    pub presence: Presence,
}

/// A known function and the arguments it takes, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FunctionSignature {
    pub name: &'static str,
    pub params: &'static [Param],
}

impl FunctionSignature {
    /// The fewest and the most arguments (`None`: no upper bound).
    pub fn arity(&self) -> (usize, Option<usize>) {
        let required = self
            .params
            .iter()
            .filter(|p| p.presence == Presence::Required)
            .count();
        let unbounded = self.params.iter().any(|p| p.presence == Presence::Repeated);
        (
            required,
            if unbounded {
                None
            } else {
                Some(self.params.len())
            },
        )
    }

    /// The shape as people read it: `top(field[, tag ...], n)`.
    pub fn shape(&self) -> String {
        let mut shape = format!("{}(", self.name);
        let mut optional_depth = 0;
        for (index, param) in self.params.iter().enumerate() {
            let separator = if index == 0 { "" } else { ", " };
            match param.presence {
                Presence::Required => {
                    shape.push_str(&"]".repeat(optional_depth));
                    optional_depth = 0;
                    shape.push_str(separator);
                    shape.push_str(param.name);
                }
                Presence::Optional => {
                    shape.push('[');
                    shape.push_str(separator);
                    shape.push_str(param.name);
                    optional_depth += 1;
                }
                Presence::Repeated => {
                    shape.push('[');
                    shape.push_str(separator);
                    shape.push_str(param.name);
                    shape.push_str(" ...");
                    optional_depth += 1;
                }
            }
        }
        shape.push_str(&"]".repeat(optional_depth));
        shape.push(')');
        shape
    }
}

const fn required(name: &'static str, kind: ArgKind) -> Param {
    Param {
        name,
        kind,
        presence: Presence::Required,
    }
}

const fn optional(name: &'static str, kind: ArgKind) -> Param {
    Param {
        name,
        kind,
        presence: Presence::Optional,
    }
}

const FIELD: &[Param] = &[required("field", ArgKind::Field)];
const EXPR: &[Param] = &[required("expr", ArgKind::Expr)];
const EXPR_UNIT: &[Param] = &[
    required("expr", ArgKind::Expr),
    optional("unit", ArgKind::Duration),
];
const SELECTOR_N: &[Param] = &[
    required("field", ArgKind::Field),
    Param {
        name: "tag",
        kind: ArgKind::Tag,
        presence: Presence::Repeated,
    },
    required("n", ArgKind::Integer),
];

const fn signature(name: &'static str, params: &'static [Param]) -> FunctionSignature {
    FunctionSignature { name, params }
}

/// Every function the language knows, with its argument shape. `now()` is syntax, not listed.
pub const FUNCTIONS: &[FunctionSignature] = &[
    signature("count", FIELD),
    signature("sum", FIELD),
    signature("mean", FIELD),
    signature("median", FIELD),
    signature("min", FIELD),
    signature("max", FIELD),
    signature("first", FIELD),
    signature("last", FIELD),
    signature("spread", FIELD),
    signature("stddev", FIELD),
    signature("mode", FIELD),
    signature("distinct", FIELD),
    signature(
        "percentile",
        &[
            required("field", ArgKind::Field),
            required("percentile", ArgKind::Number),
        ],
    ),
    signature("p50", FIELD),
    signature("p90", FIELD),
    signature("p95", FIELD),
    signature("p99", FIELD),
    signature("top", SELECTOR_N),
    signature("bottom", SELECTOR_N),
    signature("derivative", EXPR_UNIT),
    signature("non_negative_derivative", EXPR_UNIT),
    signature("difference", EXPR),
    signature("non_negative_difference", EXPR),
    signature("rate", EXPR_UNIT),
    signature(
        "moving_average",
        &[
            required("expr", ArgKind::Expr),
            required("n", ArgKind::Integer),
        ],
    ),
    signature("cumulative_sum", EXPR),
    signature(
        "elapsed",
        &[
            required("field", ArgKind::Field),
            optional("unit", ArgKind::Duration),
        ],
    ),
    signature("trend", EXPR),
    signature(
        "forecast",
        &[
            required("expr", ArgKind::Expr),
            required("horizon", ArgKind::Duration),
            optional("method", ArgKind::OneOf(&["holt-winters", "linear"])),
            optional("season", ArgKind::Duration),
        ],
    ),
    signature(
        "anomaly",
        &[
            required("expr", ArgKind::Expr),
            optional("window", ArgKind::Integer),
            optional("threshold", ArgKind::Number),
        ],
    ),
];

/// The signature of the function called `name` (lower case).
pub fn function(name: &str) -> Option<&'static FunctionSignature> {
    FUNCTIONS.iter().find(|signature| signature.name == name)
}

/// Edit distance (insertions, deletions, substitutions) between two short names.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, a_char) in a.chars().enumerate() {
        current[0] = i + 1;
        for (j, b_char) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(a_char != *b_char);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

/// The known function closest to `name`, if it is close enough to be a likely typo.
fn suggestion(name: &str) -> Option<&'static str> {
    // Long names cannot be near any function; skip the quadratic comparison for them.
    if name.len() > 64 {
        return None;
    }
    FUNCTIONS
        .iter()
        .map(|signature| (edit_distance(name, signature.name), signature.name))
        .filter(|&(distance, _)| distance <= 2 && distance < name.chars().count())
        .min_by_key(|&(distance, _)| distance)
        .map(|(_, candidate)| candidate)
}

fn describe_kind(kind: ArgKind) -> String {
    match kind {
        ArgKind::Field => "a field name, '*' or /regex/".to_owned(),
        ArgKind::Expr => "a field or expression".to_owned(),
        ArgKind::Tag => "a tag key".to_owned(),
        ArgKind::Integer => "an integer".to_owned(),
        ArgKind::Number => "a number".to_owned(),
        ArgKind::Duration => "a duration such as 1s".to_owned(),
        ArgKind::OneOf(options) => {
            let quoted: Vec<String> = options.iter().map(|option| format!("'{option}'")).collect();
            match quoted.as_slice() {
                [init @ .., last] if !init.is_empty() => format!("{} or {last}", init.join(", ")),
                _ => quoted.join(""),
            }
        }
    }
}

fn describe_arg(arg: &Expr) -> String {
    match arg {
        Expr::Literal(literal) => {
            let kind = match literal.value {
                LiteralValue::Integer(_) | LiteralValue::Unsigned(_) => "integer",
                LiteralValue::Float(_) => "number",
                LiteralValue::String(_) => "string",
                LiteralValue::Bool(_) => "boolean",
                LiteralValue::Regex(_) => "regex",
                LiteralValue::Duration(_) => "duration",
            };
            format!("{kind} {literal}")
        }
        Expr::VarRef(var_ref) => format!("field {}", super::display::IdentText(&var_ref.name)),
        Expr::Call(call) => format!("{}()", call.name),
        Expr::Now { .. } => "now()".to_owned(),
        Expr::Wildcard(_) => "'*'".to_owned(),
        _ => "an expression".to_owned(),
    }
}

fn accepts(kind: ArgKind, arg: &Expr, allows_distinct: bool) -> bool {
    match (kind, arg) {
        (ArgKind::Field, Expr::VarRef(_) | Expr::Wildcard(_)) => true,
        (ArgKind::Field, Expr::Literal(literal)) => matches!(literal.value, LiteralValue::Regex(_)),
        (ArgKind::Field, Expr::Call(call)) => allows_distinct && call.name == "distinct",
        (ArgKind::Expr, expr) => !matches!(expr, Expr::Literal(_) | Expr::Now { .. }),
        (ArgKind::Tag, Expr::VarRef(var_ref)) => var_ref
            .cast
            .is_none_or(|cast| cast == super::ast::Cast::Tag),
        (ArgKind::Integer, Expr::Literal(literal)) => {
            matches!(literal.value, LiteralValue::Integer(_))
        }
        (ArgKind::Number, Expr::Literal(literal)) => matches!(
            literal.value,
            LiteralValue::Integer(_) | LiteralValue::Unsigned(_) | LiteralValue::Float(_)
        ),
        (ArgKind::Duration, Expr::Literal(literal)) => {
            matches!(literal.value, LiteralValue::Duration(_))
        }
        (ArgKind::OneOf(options), Expr::Literal(literal)) => match &literal.value {
            LiteralValue::String(value) => options
                .iter()
                .any(|option| option.eq_ignore_ascii_case(value)),
            _ => false,
        },
        _ => false,
    }
}

/// Where an expression sits, which decides what it may contain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// The whole expression of a SELECT field.
    Field,
    /// Inside a SELECT field expression.
    InsideField,
    /// A WHERE condition.
    Condition,
}

struct Validator<'q> {
    query: &'q str,
    error: Option<ParseError>,
}

impl Validator<'_> {
    fn fail(&mut self, span: Span, message: String) {
        if self.error.is_none() {
            self.error = Some(ParseError::new(self.query, span, message));
        }
    }

    fn check_regex(&mut self, pattern: &str, span: Span) {
        if let Err(error) = regex::Regex::new(pattern) {
            let reason = match &error {
                regex::Error::Syntax(text) => text
                    .lines()
                    .find_map(|line| line.strip_prefix("error: "))
                    .unwrap_or("syntax error")
                    .to_owned(),
                regex::Error::CompiledTooBig(limit) => {
                    format!("it compiles to more than {limit} bytes")
                }
                _ => error.to_string(),
            };
            self.fail(span, format!("invalid regex: {reason}"));
        }
    }

    fn check_regex_literal(&mut self, regex: &RegexLiteral) {
        self.check_regex(&regex.pattern, regex.span);
    }

    fn check_call(&mut self, call: &Call, place: Place) {
        if place == Place::Condition {
            self.fail(
                call.name_span(),
                format!(
                    "{}() cannot be used in WHERE: the only function allowed there is now()",
                    call.name
                ),
            );
            return;
        }
        let Some(signature) = function(&call.name) else {
            let message = match suggestion(&call.name) {
                Some(candidate) => {
                    format!(
                        "unknown function `{}`, did you mean `{candidate}`?",
                        call.name
                    )
                }
                None => format!("unknown function `{}`", call.name),
            };
            self.fail(call.name_span(), message);
            return;
        };
        if call.name == "distinct" && place != Place::Field {
            self.fail(
                call.name_span(),
                "distinct() can only be used alone or inside count()".to_owned(),
            );
            return;
        }
        self.check_arguments(call, signature);
        let allows_distinct = call.name == "count";
        for arg in &call.args {
            match arg {
                Expr::Call(inner) if allows_distinct && inner.name == "distinct" => {
                    if let Some(distinct) = function("distinct") {
                        self.check_arguments(inner, distinct);
                    }
                    for inner_arg in &inner.args {
                        self.check_expr(inner_arg, Place::InsideField);
                    }
                }
                _ => self.check_expr(arg, Place::InsideField),
            }
        }
    }

    fn check_arguments(&mut self, call: &Call, signature: &FunctionSignature) {
        let (min, max) = signature.arity();
        let count_message = || {
            let expectation = match max {
                Some(max) if max == min => {
                    format!("exactly {min} argument{}", if min == 1 { "" } else { "s" })
                }
                Some(max) if min == 0 => format!("at most {max} arguments"),
                Some(max) => format!("{min} to {max} arguments"),
                None => format!("at least {min} arguments"),
            };
            format!(
                "{}() takes {expectation} ({}), found {}",
                call.name,
                signature.shape(),
                call.args.len()
            )
        };
        let allows_distinct = call.name == "count";
        let params = signature.params;
        let mut param_index = 0;
        for (arg_index, arg) in call.args.iter().enumerate() {
            let mut probe = param_index;
            loop {
                match params.get(probe) {
                    Some(param) if accepts(param.kind, arg, allows_distinct) => {
                        // A repeated parameter stays open for the next argument.
                        param_index = if param.presence == Presence::Repeated {
                            probe
                        } else {
                            probe + 1
                        };
                        break;
                    }
                    Some(param) if param.presence != Presence::Required => probe += 1,
                    None if param_index == params.len() => {
                        self.fail(call.span, count_message());
                        return;
                    }
                    _ => {
                        let last = probe.min(params.len().saturating_sub(1));
                        let wanted: Vec<String> = params[param_index..=last]
                            .iter()
                            .map(|param| format!("{} ({})", describe_kind(param.kind), param.name))
                            .collect();
                        self.fail(
                            arg.span(),
                            format!(
                                "argument {} of {}() must be {}, found {}",
                                arg_index + 1,
                                call.name,
                                wanted.join(" or "),
                                describe_arg(arg)
                            ),
                        );
                        return;
                    }
                }
            }
        }
        let missing_required = params
            .iter()
            .skip(param_index)
            .any(|param| param.presence == Presence::Required);
        if missing_required {
            self.fail(call.span, count_message());
        }
    }

    fn check_expr(&mut self, expr: &Expr, place: Place) {
        match expr {
            Expr::Call(call) => self.check_call(call, place),
            Expr::Binary(binary) => {
                let inner = if place == Place::Field {
                    Place::InsideField
                } else {
                    place
                };
                if place == Place::Condition && binary.op.is_comparison() {
                    self.check_time_comparison(&binary.lhs, &binary.rhs);
                }
                self.check_expr(&binary.lhs, inner);
                self.check_expr(&binary.rhs, inner);
            }
            Expr::Unary(unary) => {
                let inner = if place == Place::Field {
                    Place::InsideField
                } else {
                    place
                };
                self.check_expr(&unary.operand, inner);
            }
            Expr::Paren(paren) => self.check_expr(&paren.inner, place),
            Expr::Literal(literal) => {
                if let LiteralValue::Regex(pattern) = &literal.value {
                    self.check_regex(pattern, literal.span);
                }
            }
            Expr::VarRef(_) | Expr::Now { .. } | Expr::Wildcard(_) => {}
        }
    }

    /// `time <op> 'string'` (either way round): the string must be a time.
    fn check_time_comparison(&mut self, lhs: &Expr, rhs: &Expr) {
        let is_time = |expr: &Expr| matches!(expr.unparenthesized(), Expr::VarRef(var_ref) if var_ref.name.eq_ignore_ascii_case("time"));
        let string = |expr: &Expr| match expr.unparenthesized() {
            Expr::Literal(literal) => match &literal.value {
                LiteralValue::String(text) => Some((text.clone(), literal.span)),
                _ => None,
            },
            _ => None,
        };
        let candidate = if is_time(lhs) {
            string(rhs)
        } else if is_time(rhs) {
            string(lhs)
        } else {
            None
        };
        let Some((text, span)) = candidate else {
            return;
        };
        match TimeLiteral::parse(&text) {
            Ok(literal) if literal.unix_nanos(0).is_none() => self.fail(
                span,
                format!("time '{text}' is outside the supported range (1677-09-21 to 2262-04-11)"),
            ),
            Ok(_) => {}
            Err(error) => self.fail(
                span,
                format!(
                    "invalid time '{text}': {error}; write times like '2026-11-30T00:00:00Z' or '2026-11-30 00:00:00'"
                ),
            ),
        }
    }

    fn check_measurement(&mut self, measurement: &MeasurementRef) {
        if let MeasurementName::Regex(regex) = &measurement.name {
            self.check_regex_literal(regex);
        }
    }

    fn check_select(&mut self, select: &SelectStatement) {
        for field in &select.fields {
            self.check_expr(&field.expr, Place::Field);
        }
        for source in &select.sources {
            match source {
                Source::Measurement(measurement) => self.check_measurement(measurement),
                Source::Subquery { select, .. } => self.check_select(select),
            }
        }
        if let Some(condition) = &select.condition {
            self.check_expr(condition, Place::Condition);
        }
        if let Some(group_by) = &select.group_by {
            if let Some(time) = group_by.time.as_ref().filter(|time| time.interval <= 0) {
                self.fail(
                    time.interval_span,
                    "GROUP BY time interval must be greater than zero".to_owned(),
                );
            }
            for regex in &group_by.regexes {
                self.check_regex_literal(regex);
            }
        }
    }
}

impl<'ast> Visit<'ast> for Validator<'_> {
    fn visit_select(&mut self, select: &'ast SelectStatement) {
        self.check_select(select);
    }

    fn visit_measurement(&mut self, measurement: &'ast MeasurementRef) {
        self.check_measurement(measurement);
    }

    fn visit_expr(&mut self, expr: &'ast Expr) {
        self.check_expr(expr, Place::Condition);
    }

    fn visit_regex(&mut self, regex: &'ast RegexLiteral) {
        self.check_regex_literal(regex);
    }
}

/// Checks what the grammar alone cannot: that every function is known and given arguments of
/// the right number and kind, that `distinct()` stands alone or inside `count()`, that WHERE
/// holds no functions but `now()`, that regexes compile, that strings compared with `time`
/// are valid times, and that GROUP BY time intervals are positive. `query` is the text the
/// statement was parsed from, for line and column numbers.
pub fn validate(statement: &Statement, query: &str) -> Result<(), ParseError> {
    let mut validator = Validator { query, error: None };
    walk_statement(&mut validator, statement);
    match validator.error {
        Some(error) => Err(error),
        None => Ok(()),
    }
}
