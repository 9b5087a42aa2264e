//! Prints syntax trees as canonical query text.
//!
//! The text parses back to a tree equal to the printed one, spans aside (a property test checks
//! this): names are quoted only where a bare word would not read back as the same name,
//! keywords are upper case, function names lower case, durations use the largest exact unit.
//! Parentheses come from [`Expr::Paren`] nodes; for trees built by hand without them, the
//! printer adds the parentheses that precedence requires.

use std::fmt::{self, Display, Formatter, Write};

use super::ast::{
    AlterRetentionPolicyStatement, BinaryExpr, Call, Cast, CreateDatabaseStatement,
    CreateRetentionPolicyStatement, DURATION_UNITS, DeleteStatement, DropSeriesStatement, Expr,
    Field, Fill, FillOption, GroupBy, Ident, Literal, LiteralValue, MeasurementName,
    MeasurementRef, Query, RegexLiteral, RetentionDuration, SelectStatement,
    ShowCardinalityStatement, ShowMeasurementsStatement, ShowTagValuesStatement, Source, Statement,
    TagKeyMatch, TimeDimension, TimeOffset, UnaryOp,
};
use super::lexer::{is_ident_continue, is_ident_start};
use super::parser::is_reserved_word;

/// Whether `name` must be written in double quotes to read back as the same name.
pub(crate) fn needs_quotes(name: &str) -> bool {
    let mut chars = name.chars();
    let plain = chars.next().is_some_and(is_ident_start) && chars.all(is_ident_continue);
    !plain
        || is_reserved_word(name)
        || name.eq_ignore_ascii_case("true")
        || name.eq_ignore_ascii_case("false")
}

/// Writes a name, quoting it when needed.
pub(crate) struct IdentText<'a>(pub(crate) &'a str);

impl Display for IdentText<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        if !needs_quotes(self.0) {
            return f.write_str(self.0);
        }
        f.write_char('"')?;
        for c in self.0.chars() {
            match c {
                '"' => f.write_str("\\\"")?,
                '\\' => f.write_str("\\\\")?,
                '\n' => f.write_str("\\n")?,
                c => f.write_char(c)?,
            }
        }
        f.write_char('"')
    }
}

struct StringText<'a>(&'a str);

impl Display for StringText<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_char('\'')?;
        for c in self.0.chars() {
            match c {
                '\'' => f.write_str("\\'")?,
                '\\' => f.write_str("\\\\")?,
                '\n' => f.write_str("\\n")?,
                c => f.write_char(c)?,
            }
        }
        f.write_char('\'')
    }
}

struct RegexText<'a>(&'a str);

impl Display for RegexText<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_char('/')?;
        let mut chars = self.0.chars();
        while let Some(c) = chars.next() {
            match c {
                '/' => f.write_str("\\/")?,
                // An escape pair is copied whole, so `\\` followed by `/` is not read as `\/`.
                '\\' => {
                    f.write_char('\\')?;
                    if let Some(escaped) = chars.next() {
                        f.write_char(escaped)?;
                    }
                }
                c => f.write_char(c)?,
            }
        }
        f.write_char('/')
    }
}

/// Writes nanoseconds as a duration literal in the largest unit that divides them exactly.
pub(crate) struct DurationText(pub(crate) i64);

impl Display for DurationText {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        if self.0 < 0 {
            f.write_char('-')?;
        }
        let magnitude = self.0.unsigned_abs();
        if magnitude == 0 {
            return f.write_str("0s");
        }
        for (unit, unit_nanos) in DURATION_UNITS {
            let unit_nanos = unit_nanos.unsigned_abs();
            if magnitude.is_multiple_of(unit_nanos) {
                return write!(f, "{}{unit}", magnitude / unit_nanos);
            }
        }
        write!(f, "{magnitude}ns")
    }
}

/// Writes a float so that it reads back as the same float: shortest round-trip digits, and
/// always a decimal point so that it does not read back as an integer.
struct FloatText(f64);

impl Display for FloatText {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let text = format!("{}", self.0);
        f.write_str(&text)?;
        if self.0.is_finite() && !text.contains('.') {
            f.write_str(".0")?;
        }
        Ok(())
    }
}

impl Display for Query {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        for (index, statement) in self.statements.iter().enumerate() {
            if index > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{statement}")?;
        }
        Ok(())
    }
}

impl Display for Ident {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{}", IdentText(&self.name))
    }
}

impl Display for RegexLiteral {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{}", RegexText(&self.pattern))
    }
}

impl Display for Cast {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Display for RetentionDuration {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            RetentionDuration::Finite(nanos) => write!(f, "{}", DurationText(*nanos)),
            RetentionDuration::Infinite => f.write_str("INF"),
        }
    }
}

fn write_list<T: Display>(f: &mut Formatter<'_>, items: &[T]) -> fmt::Result {
    for (index, item) in items.iter().enumerate() {
        if index > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{item}")?;
    }
    Ok(())
}

fn write_on(f: &mut Formatter<'_>, database: &Option<Ident>) -> fmt::Result {
    match database {
        Some(database) => write!(f, " ON {database}"),
        None => Ok(()),
    }
}

fn write_from(f: &mut Formatter<'_>, sources: &[MeasurementRef]) -> fmt::Result {
    if sources.is_empty() {
        return Ok(());
    }
    f.write_str(" FROM ")?;
    write_list(f, sources)
}

fn write_where(f: &mut Formatter<'_>, condition: &Option<Expr>) -> fmt::Result {
    match condition {
        Some(condition) => write!(f, " WHERE {condition}"),
        None => Ok(()),
    }
}

fn write_limit_offset(
    f: &mut Formatter<'_>,
    limit: Option<u64>,
    offset: Option<u64>,
) -> fmt::Result {
    if let Some(limit) = limit {
        write!(f, " LIMIT {limit}")?;
    }
    if let Some(offset) = offset {
        write!(f, " OFFSET {offset}")?;
    }
    Ok(())
}

impl Display for Statement {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Statement::Select(select) => write!(f, "{select}"),
            Statement::Explain(explain) => {
                f.write_str(if explain.analyze {
                    "EXPLAIN ANALYZE "
                } else {
                    "EXPLAIN "
                })?;
                write!(f, "{}", explain.select)
            }
            Statement::CreateDatabase(create) => write!(f, "{create}"),
            Statement::DropDatabase(drop) => write!(f, "DROP DATABASE {}", drop.name),
            Statement::ShowDatabases { .. } => f.write_str("SHOW DATABASES"),
            Statement::ShowMeasurements(show) => write!(f, "{show}"),
            Statement::ShowTagKeys(show) => {
                f.write_str("SHOW TAG KEYS")?;
                write_on(f, &show.database)?;
                write_from(f, &show.sources)?;
                write_where(f, &show.condition)?;
                write_limit_offset(f, show.limit, show.offset)
            }
            Statement::ShowTagValues(show) => write!(f, "{show}"),
            Statement::ShowFieldKeys(show) => {
                f.write_str("SHOW FIELD KEYS")?;
                write_on(f, &show.database)?;
                write_from(f, &show.sources)?;
                write_limit_offset(f, show.limit, show.offset)
            }
            Statement::ShowSeries(show) => {
                f.write_str("SHOW SERIES")?;
                write_on(f, &show.database)?;
                write_from(f, &show.sources)?;
                write_where(f, &show.condition)?;
                write_limit_offset(f, show.limit, show.offset)
            }
            Statement::ShowCardinality(show) => write!(f, "{show}"),
            Statement::ShowRetentionPolicies(show) => {
                f.write_str("SHOW RETENTION POLICIES")?;
                write_on(f, &show.database)
            }
            Statement::ShowDiagnostics { .. } => f.write_str("SHOW DIAGNOSTICS"),
            Statement::ShowStats { .. } => f.write_str("SHOW STATS"),
            Statement::ShowRules { .. } => f.write_str("SHOW RULES"),
            Statement::ShowAlerts { .. } => f.write_str("SHOW ALERTS"),
            Statement::ShowCompactions { .. } => f.write_str("SHOW COMPACTIONS"),
            Statement::CreateRetentionPolicy(create) => write!(f, "{create}"),
            Statement::AlterRetentionPolicy(alter) => write!(f, "{alter}"),
            Statement::DropRetentionPolicy(drop) => {
                write!(
                    f,
                    "DROP RETENTION POLICY {} ON {}",
                    drop.name, drop.database
                )
            }
            Statement::DropMeasurement(drop) => write!(f, "DROP MEASUREMENT {}", drop.name),
            Statement::DropSeries(drop) => write!(f, "{drop}"),
            Statement::Delete(delete) => write!(f, "{delete}"),
        }
    }
}

impl Display for SelectStatement {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str("SELECT ")?;
        write_list(f, &self.fields)?;
        f.write_str(" FROM ")?;
        write_list(f, &self.sources)?;
        write_where(f, &self.condition)?;
        if let Some(group_by) = &self.group_by {
            write!(f, " {group_by}")?;
        }
        if let Some(fill) = &self.fill {
            write!(f, " {fill}")?;
        }
        if self.order_desc {
            f.write_str(" ORDER BY time DESC")?;
        }
        write_limit_offset(f, self.limit, self.offset)?;
        if let Some(slimit) = self.slimit {
            write!(f, " SLIMIT {slimit}")?;
        }
        if let Some(soffset) = self.soffset {
            write!(f, " SOFFSET {soffset}")?;
        }
        if let Some(tz) = &self.tz {
            write!(f, " tz({})", StringText(tz))?;
        }
        Ok(())
    }
}

impl Display for Field {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.expr)?;
        if let Some(alias) = &self.alias {
            write!(f, " AS {alias}")?;
        }
        Ok(())
    }
}

impl Display for Source {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Source::Measurement(measurement) => write!(f, "{measurement}"),
            Source::Subquery { select, .. } => write!(f, "({select})"),
        }
    }
}

impl Display for MeasurementRef {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match (&self.database, &self.retention_policy) {
            (Some(database), Some(policy)) => write!(f, "{database}.{policy}.")?,
            (Some(database), None) => write!(f, "{database}..")?,
            (None, Some(policy)) => write!(f, "{policy}.")?,
            (None, None) => {}
        }
        write!(f, "{}", self.name)
    }
}

impl Display for MeasurementName {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            MeasurementName::Name(name) => write!(f, "{name}"),
            MeasurementName::Regex(regex) => write!(f, "{regex}"),
        }
    }
}

impl Display for GroupBy {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str("GROUP BY ")?;
        let mut first = true;
        let mut separate = |f: &mut Formatter<'_>| {
            if std::mem::take(&mut first) {
                Ok(())
            } else {
                f.write_str(", ")
            }
        };
        if let Some(time) = &self.time {
            separate(f)?;
            write!(f, "{time}")?;
        }
        for tag in &self.tags {
            separate(f)?;
            write!(f, "{tag}")?;
        }
        for regex in &self.regexes {
            separate(f)?;
            write!(f, "{regex}")?;
        }
        if self.wildcard {
            separate(f)?;
            f.write_char('*')?;
        }
        Ok(())
    }
}

impl Display for TimeDimension {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "time({}", DurationText(self.interval))?;
        match &self.offset {
            Some(TimeOffset::Duration { nanos, .. }) => write!(f, ", {}", DurationText(*nanos))?,
            Some(TimeOffset::Now { .. }) => f.write_str(", now()")?,
            None => {}
        }
        f.write_char(')')
    }
}

impl Display for Fill {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match &self.option {
            FillOption::None => f.write_str("fill(none)"),
            FillOption::Null => f.write_str("fill(null)"),
            FillOption::Previous => f.write_str("fill(previous)"),
            FillOption::Linear => f.write_str("fill(linear)"),
            FillOption::Integer(value) => write!(f, "fill({value})"),
            FillOption::Float(value) => write!(f, "fill({})", FloatText(*value)),
        }
    }
}

impl Display for TagKeyMatch {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            TagKeyMatch::Equal(key) => write!(f, "WITH KEY = {key}"),
            TagKeyMatch::NotEqual(key) => write!(f, "WITH KEY != {key}"),
            TagKeyMatch::Regex(regex) => write!(f, "WITH KEY =~ {regex}"),
            TagKeyMatch::NotRegex(regex) => write!(f, "WITH KEY !~ {regex}"),
            TagKeyMatch::In(keys) => {
                f.write_str("WITH KEY IN (")?;
                write_list(f, keys)?;
                f.write_char(')')
            }
        }
    }
}

impl Display for ShowMeasurementsStatement {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str("SHOW MEASUREMENTS")?;
        write_on(f, &self.database)?;
        match &self.measurement {
            Some(MeasurementName::Name(name)) => write!(f, " WITH MEASUREMENT = {name}")?,
            Some(MeasurementName::Regex(regex)) => write!(f, " WITH MEASUREMENT =~ {regex}")?,
            None => {}
        }
        write_where(f, &self.condition)?;
        write_limit_offset(f, self.limit, self.offset)
    }
}

impl Display for ShowTagValuesStatement {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str("SHOW TAG VALUES")?;
        write_on(f, &self.database)?;
        write_from(f, &self.sources)?;
        write!(f, " {}", self.key)?;
        write_where(f, &self.condition)?;
        write_limit_offset(f, self.limit, self.offset)
    }
}

impl Display for ShowCardinalityStatement {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "SHOW {}", self.kind.keywords())?;
        if self.exact {
            f.write_str(" EXACT")?;
        }
        f.write_str(" CARDINALITY")?;
        write_on(f, &self.database)?;
        write_from(f, &self.sources)?;
        write_where(f, &self.condition)?;
        if let Some(key) = &self.key {
            write!(f, " {key}")?;
        }
        Ok(())
    }
}

impl Display for CreateDatabaseStatement {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "CREATE DATABASE {}", self.name)?;
        if let Some(retention) = &self.retention {
            f.write_str(" WITH")?;
            if let Some(duration) = &retention.duration {
                write!(f, " DURATION {duration}")?;
            }
            if let Some(replication) = retention.replication {
                write!(f, " REPLICATION {replication}")?;
            }
            if let Some(shard_duration) = retention.shard_duration {
                write!(f, " SHARD DURATION {}", DurationText(shard_duration))?;
            }
            if let Some(policy_name) = &retention.policy_name {
                write!(f, " NAME {policy_name}")?;
            }
        }
        Ok(())
    }
}

impl Display for CreateRetentionPolicyStatement {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "CREATE RETENTION POLICY {} ON {} DURATION {} REPLICATION {}",
            self.name, self.database, self.duration, self.replication
        )?;
        if let Some(shard_duration) = self.shard_duration {
            write!(f, " SHARD DURATION {}", DurationText(shard_duration))?;
        }
        if self.default {
            f.write_str(" DEFAULT")?;
        }
        Ok(())
    }
}

impl Display for AlterRetentionPolicyStatement {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ALTER RETENTION POLICY {} ON {}",
            self.name, self.database
        )?;
        if let Some(duration) = &self.duration {
            write!(f, " DURATION {duration}")?;
        }
        if let Some(replication) = self.replication {
            write!(f, " REPLICATION {replication}")?;
        }
        if let Some(shard_duration) = self.shard_duration {
            write!(f, " SHARD DURATION {}", DurationText(shard_duration))?;
        }
        if self.default {
            f.write_str(" DEFAULT")?;
        }
        Ok(())
    }
}

impl Display for DropSeriesStatement {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str("DROP SERIES")?;
        write_from(f, &self.sources)?;
        write_where(f, &self.condition)
    }
}

impl Display for DeleteStatement {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str("DELETE")?;
        if let Some(source) = &self.source {
            write!(f, " FROM {source}")?;
        }
        write_where(f, &self.condition)
    }
}

/// The precedence an expression shows to a parent binary operator; operands that are not
/// binary expressions never need parentheses.
fn binding(expr: &Expr) -> u8 {
    match expr {
        Expr::Binary(binary) => binary.op.precedence(),
        _ => u8::MAX,
    }
}

fn write_operand(f: &mut Formatter<'_>, expr: &Expr, parenthesize: bool) -> fmt::Result {
    if parenthesize {
        write!(f, "({expr})")
    } else {
        write!(f, "{expr}")
    }
}

/// Whether the printed expression starts with `-`, which must not follow another `-` directly
/// (`--` opens a comment).
fn starts_with_minus(expr: &Expr) -> bool {
    match expr {
        Expr::Unary(_) => true,
        Expr::Literal(literal) => match literal.value {
            LiteralValue::Integer(value) | LiteralValue::Duration(value) => value < 0,
            LiteralValue::Float(value) => value.is_sign_negative(),
            _ => false,
        },
        Expr::Binary(binary) => starts_with_minus(&binary.lhs),
        _ => false,
    }
}

impl Display for Expr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Expr::VarRef(var_ref) => {
                write!(f, "{}", IdentText(&var_ref.name))?;
                if let Some(cast) = var_ref.cast {
                    write!(f, "::{cast}")?;
                }
                Ok(())
            }
            Expr::Call(call) => write!(f, "{call}"),
            Expr::Binary(BinaryExpr { op, lhs, rhs, .. }) => {
                let precedence = op.precedence();
                write_operand(f, lhs, binding(lhs) < precedence)?;
                write!(f, " {} ", op.as_str())?;
                write_operand(f, rhs, binding(rhs) <= precedence)
            }
            Expr::Unary(unary) => {
                match unary.op {
                    UnaryOp::Neg => f.write_char('-')?,
                }
                let operand = &*unary.operand;
                if matches!(operand, Expr::Binary(_)) {
                    write!(f, "({operand})")
                } else if starts_with_minus(operand) {
                    write!(f, " {operand}")
                } else {
                    write!(f, "{operand}")
                }
            }
            Expr::Paren(paren) => write!(f, "({})", paren.inner),
            Expr::Literal(literal) => write!(f, "{literal}"),
            Expr::Now { .. } => f.write_str("now()"),
            Expr::Wildcard(wildcard) => {
                f.write_char('*')?;
                if let Some(cast) = wildcard.cast {
                    write!(f, "::{cast}")?;
                }
                Ok(())
            }
        }
    }
}

impl Display for Call {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{}(", self.name)?;
        write_list(f, &self.args)?;
        f.write_char(')')
    }
}

impl Display for Literal {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.value)
    }
}

impl Display for LiteralValue {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            LiteralValue::Integer(value) => write!(f, "{value}"),
            LiteralValue::Unsigned(value) => write!(f, "{value}"),
            LiteralValue::Float(value) => write!(f, "{}", FloatText(*value)),
            LiteralValue::String(value) => write!(f, "{}", StringText(value)),
            LiteralValue::Bool(value) => f.write_str(if *value { "true" } else { "false" }),
            LiteralValue::Regex(pattern) => write!(f, "{}", RegexText(pattern)),
            LiteralValue::Duration(nanos) => write!(f, "{}", DurationText(*nanos)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syntax::ast::{BinaryOp, Span, UnaryExpr, VarRef};

    fn var(name: &str) -> Expr {
        Expr::VarRef(VarRef {
            name: name.to_owned(),
            cast: None,
            span: Span::default(),
        })
    }

    fn binary(op: BinaryOp, lhs: Expr, rhs: Expr) -> Expr {
        Expr::Binary(BinaryExpr {
            op,
            lhs: Box::new(lhs),
            rhs: Box::new(rhs),
            span: Span::default(),
        })
    }

    #[test]
    fn names_are_quoted_only_when_a_bare_word_would_not_read_back() {
        assert_eq!(IdentText("cpu").to_string(), "cpu");
        assert_eq!(IdentText("_x9").to_string(), "_x9");
        assert_eq!(IdentText("température").to_string(), "température");
        assert_eq!(IdentText("gpu-util").to_string(), "\"gpu-util\"");
        assert_eq!(IdentText("9lives").to_string(), "\"9lives\"");
        assert_eq!(IdentText("from").to_string(), "\"from\"");
        assert_eq!(IdentText("TRUE").to_string(), "\"TRUE\"");
        assert_eq!(IdentText("").to_string(), "\"\"");
        assert_eq!(IdentText("a\"b\\c\nd").to_string(), r#""a\"b\\c\nd""#);
    }

    #[test]
    fn durations_print_in_the_largest_exact_unit() {
        assert_eq!(DurationText(0).to_string(), "0s");
        assert_eq!(DurationText(90 * 60_000_000_000).to_string(), "90m");
        assert_eq!(DurationText(2 * 604_800_000_000_000).to_string(), "2w");
        assert_eq!(
            DurationText(1_700_000_000_000_000_000).to_string(),
            "1700000000s"
        );
        assert_eq!(DurationText(-1500).to_string(), "-1500ns");
        assert_eq!(DurationText(i64::MIN).to_string(), "-9223372036854775808ns");
    }

    #[test]
    fn floats_always_print_a_decimal_point() {
        assert_eq!(FloatText(1.0).to_string(), "1.0");
        assert_eq!(FloatText(-0.0).to_string(), "-0.0");
        assert_eq!(FloatText(0.1).to_string(), "0.1");
        assert_eq!(FloatText(1e21).to_string(), "1000000000000000000000.0");
    }

    #[test]
    fn regexes_escape_slashes_but_keep_other_escapes() {
        assert_eq!(RegexText("a/b").to_string(), r"/a\/b/");
        assert_eq!(RegexText(r"\d+\.").to_string(), r"/\d+\./");
        assert_eq!(RegexText(r"\\/").to_string(), r"/\\\//");
    }

    #[test]
    fn hand_built_trees_get_the_parentheses_precedence_needs() {
        let sum = binary(BinaryOp::Add, var("a"), var("b"));
        assert_eq!(
            binary(BinaryOp::Mul, sum.clone(), var("c")).to_string(),
            "(a + b) * c"
        );
        assert_eq!(
            binary(BinaryOp::Sub, var("c"), sum.clone()).to_string(),
            "c - (a + b)"
        );
        assert_eq!(
            binary(BinaryOp::Add, sum.clone(), var("c")).to_string(),
            "a + b + c"
        );
        let negated = Expr::Unary(UnaryExpr {
            op: UnaryOp::Neg,
            operand: Box::new(sum),
            span: Span::default(),
        });
        assert_eq!(negated.to_string(), "-(a + b)");
        let double_negation = Expr::Unary(UnaryExpr {
            op: UnaryOp::Neg,
            operand: Box::new(Expr::Unary(UnaryExpr {
                op: UnaryOp::Neg,
                operand: Box::new(var("x")),
                span: Span::default(),
            })),
            span: Span::default(),
        });
        assert_eq!(double_negation.to_string(), "- -x");
    }
}
