//! The syntax tree the parser produces and the planner consumes.
//!
//! Every node carries a [`Span`] of byte offsets into the query text, so that later passes
//! (validation, planning) can point at the exact words a person wrote.
//! The tree keeps literals in the kind they were written in (a duration stays a duration even
//! where the planner will read it as an epoch); interpreting them is the planner's job.
//!
//! Invariants the parser guarantees, and that [`Display`](std::fmt::Display) relies on to print
//! text that parses back to an equal tree:
//! - function names are lower case ASCII-folded; `now()` is [`Expr::Now`], never a call;
//! - `DISTINCT x` is normalised to the call `distinct(x)`;
//! - a `-` written directly before a number or duration is folded into the literal;
//! - [`LiteralValue::Unsigned`] holds only values above `i64::MAX`;
//! - a binary operand that binds more loosely than its parent is wrapped in [`Expr::Paren`].

use std::ops::Range;

/// A byte range `start..end` in the query text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Span {
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub const fn new(start: u32, end: u32) -> Self {
        Self { start, end }
    }

    /// The smallest span covering both `self` and `other`.
    #[must_use]
    pub fn to(self, other: Span) -> Span {
        Span {
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }

    pub fn len(self) -> u32 {
        self.end.saturating_sub(self.start)
    }

    pub fn is_empty(self) -> bool {
        self.len() == 0
    }

    pub fn range(self) -> Range<usize> {
        self.start as usize..self.end as usize
    }
}

/// Nanoseconds per duration unit, largest first; the printer picks the largest that divides.
pub const DURATION_UNITS: [(&str, i64); 8] = [
    ("w", 7 * 24 * 3600 * 1_000_000_000),
    ("d", 24 * 3600 * 1_000_000_000),
    ("h", 3600 * 1_000_000_000),
    ("m", 60 * 1_000_000_000),
    ("s", 1_000_000_000),
    ("ms", 1_000_000),
    ("u", 1_000),
    ("ns", 1),
];

/// A whole query: statements separated by `;`.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub statements: Vec<Statement>,
    pub span: Span,
}

/// One statement of a query.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Statement {
    Select(Box<SelectStatement>),
    Explain(ExplainStatement),
    CreateDatabase(CreateDatabaseStatement),
    DropDatabase(DropDatabaseStatement),
    ShowDatabases { span: Span },
    ShowMeasurements(ShowMeasurementsStatement),
    ShowTagKeys(ShowTagKeysStatement),
    ShowTagValues(ShowTagValuesStatement),
    ShowFieldKeys(ShowFieldKeysStatement),
    ShowSeries(ShowSeriesStatement),
    ShowCardinality(ShowCardinalityStatement),
    ShowRetentionPolicies(ShowRetentionPoliciesStatement),
    ShowDiagnostics { span: Span },
    ShowStats { span: Span },
    ShowRules { span: Span },
    ShowAlerts { span: Span },
    ShowCompactions { span: Span },
    CreateRetentionPolicy(CreateRetentionPolicyStatement),
    AlterRetentionPolicy(AlterRetentionPolicyStatement),
    DropRetentionPolicy(DropRetentionPolicyStatement),
    DropMeasurement(DropMeasurementStatement),
    DropSeries(DropSeriesStatement),
    Delete(DeleteStatement),
}

impl Statement {
    pub fn span(&self) -> Span {
        match self {
            Statement::Select(select) => select.span,
            Statement::Explain(explain) => explain.span,
            Statement::CreateDatabase(statement) => statement.span,
            Statement::DropDatabase(statement) => statement.span,
            Statement::ShowMeasurements(statement) => statement.span,
            Statement::ShowTagKeys(statement) => statement.span,
            Statement::ShowTagValues(statement) => statement.span,
            Statement::ShowFieldKeys(statement) => statement.span,
            Statement::ShowSeries(statement) => statement.span,
            Statement::ShowCardinality(statement) => statement.span,
            Statement::ShowRetentionPolicies(statement) => statement.span,
            Statement::CreateRetentionPolicy(statement) => statement.span,
            Statement::AlterRetentionPolicy(statement) => statement.span,
            Statement::DropRetentionPolicy(statement) => statement.span,
            Statement::DropMeasurement(statement) => statement.span,
            Statement::DropSeries(statement) => statement.span,
            Statement::Delete(statement) => statement.span,
            Statement::ShowDatabases { span }
            | Statement::ShowDiagnostics { span }
            | Statement::ShowStats { span }
            | Statement::ShowRules { span }
            | Statement::ShowAlerts { span }
            | Statement::ShowCompactions { span } => *span,
        }
    }
}

/// A name: a measurement, tag key, database, retention policy or alias.
/// Quoting is not kept: `"cpu"` and `cpu` are the same name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

/// A regular expression literal `/pattern/`; `pattern` has `\/` already turned into `/`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RegexLiteral {
    pub pattern: String,
    pub span: Span,
}

/// `SELECT fields FROM sources [WHERE ...] [GROUP BY ...] [fill(...)] [ORDER BY time ...]
/// [LIMIT n] [OFFSET n] [SLIMIT n] [SOFFSET n] [tz('...')]`.
#[derive(Debug, Clone, PartialEq)]
pub struct SelectStatement {
    pub fields: Vec<Field>,
    pub sources: Vec<Source>,
    pub condition: Option<Expr>,
    pub group_by: Option<GroupBy>,
    pub fill: Option<Fill>,
    /// `ORDER BY time DESC`; ascending time order is the default and is not recorded.
    pub order_desc: bool,
    pub limit: Option<u64>,
    pub offset: Option<u64>,
    pub slimit: Option<u64>,
    pub soffset: Option<u64>,
    /// The time zone name from `tz('Europe/Paris')`, unchecked.
    pub tz: Option<String>,
    pub span: Span,
}

/// One item of the SELECT list.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub expr: Expr,
    pub alias: Option<Ident>,
    pub span: Span,
}

/// What a SELECT reads from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    Measurement(MeasurementRef),
    /// `FROM (SELECT ...)`.
    Subquery {
        select: Box<SelectStatement>,
        span: Span,
    },
}

impl Source {
    pub fn span(&self) -> Span {
        match self {
            Source::Measurement(measurement) => measurement.span,
            Source::Subquery { span, .. } => *span,
        }
    }
}

/// `[db.[rp].]measurement`, where a two-part name `a.b` means retention policy `a`, measurement
/// `b` as in InfluxQL (Grafana sends `"autogen"."cpu"`), and `db..m` names a database only.
#[derive(Debug, Clone, PartialEq)]
pub struct MeasurementRef {
    pub database: Option<Ident>,
    pub retention_policy: Option<Ident>,
    pub name: MeasurementName,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum MeasurementName {
    Name(Ident),
    Regex(RegexLiteral),
}

/// The GROUP BY clause; dimensions may be written in any order, and are kept by kind.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupBy {
    pub time: Option<TimeDimension>,
    pub tags: Vec<Ident>,
    pub regexes: Vec<RegexLiteral>,
    /// `GROUP BY *`: every tag.
    pub wildcard: bool,
    pub span: Span,
}

/// `time(interval[, offset])`.
#[derive(Debug, Clone, PartialEq)]
pub struct TimeDimension {
    /// Nanoseconds.
    pub interval: i64,
    pub interval_span: Span,
    pub offset: Option<TimeOffset>,
    pub span: Span,
}

/// The second argument of `GROUP BY time(...)`.
#[derive(Debug, Clone, PartialEq)]
pub enum TimeOffset {
    /// Nanoseconds; may be negative.
    Duration { nanos: i64, span: Span },
    /// `now()`: align buckets to the query's current time.
    Now { span: Span },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Fill {
    pub option: FillOption,
    pub span: Span,
}

/// How `fill(...)` treats empty GROUP BY time buckets.
#[derive(Debug, Clone, PartialEq)]
pub enum FillOption {
    /// Drop empty buckets.
    None,
    Null,
    Previous,
    Linear,
    Integer(i64),
    Float(f64),
}

/// Expressions of the SELECT list and of WHERE clauses.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Expr {
    /// A field or tag name, with an optional `::type` cast.
    VarRef(VarRef),
    /// `name(args...)`; the parser accepts any name, [`validate`](crate::validate) checks it.
    Call(Call),
    Binary(BinaryExpr),
    Unary(UnaryExpr),
    /// A parenthesised expression, kept so that spans and printing follow what was written.
    Paren(ParenExpr),
    Literal(Literal),
    /// `now()`.
    Now {
        span: Span,
    },
    /// `*`, `*::field` or `*::tag`.
    Wildcard(Wildcard),
}

impl Expr {
    pub fn span(&self) -> Span {
        match self {
            Expr::VarRef(var_ref) => var_ref.span,
            Expr::Call(call) => call.span,
            Expr::Binary(binary) => binary.span,
            Expr::Unary(unary) => unary.span,
            Expr::Paren(paren) => paren.span,
            Expr::Literal(literal) => literal.span,
            Expr::Now { span } => *span,
            Expr::Wildcard(wildcard) => wildcard.span,
        }
    }

    /// Calls `visit` on this expression and every expression below it, parents first.
    pub fn for_each<'ast>(&'ast self, visit: &mut impl FnMut(&'ast Expr)) {
        visit(self);
        match self {
            Expr::Call(call) => call.args.iter().for_each(|arg| arg.for_each(visit)),
            Expr::Binary(binary) => {
                binary.lhs.for_each(visit);
                binary.rhs.for_each(visit);
            }
            Expr::Unary(unary) => unary.operand.for_each(visit),
            Expr::Paren(paren) => paren.inner.for_each(visit),
            Expr::VarRef(_) | Expr::Literal(_) | Expr::Now { .. } | Expr::Wildcard(_) => {}
        }
    }

    /// The expression with any number of enclosing parentheses removed.
    pub fn unparenthesized(&self) -> &Expr {
        let mut expr = self;
        while let Expr::Paren(paren) = expr {
            expr = &paren.inner;
        }
        expr
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct VarRef {
    pub name: String,
    pub cast: Option<Cast>,
    pub span: Span,
}

/// The `::type` suffix of a field reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cast {
    Float,
    Integer,
    Unsigned,
    String,
    Boolean,
    /// Read the name as a tag key only.
    Tag,
    /// Read the name as a field key only.
    Field,
}

impl Cast {
    pub const ALL: [Cast; 7] = [
        Cast::Float,
        Cast::Integer,
        Cast::Unsigned,
        Cast::String,
        Cast::Boolean,
        Cast::Tag,
        Cast::Field,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Cast::Float => "float",
            Cast::Integer => "integer",
            Cast::Unsigned => "unsigned",
            Cast::String => "string",
            Cast::Boolean => "boolean",
            Cast::Tag => "tag",
            Cast::Field => "field",
        }
    }

    pub fn from_name(name: &str) -> Option<Cast> {
        Cast::ALL
            .into_iter()
            .find(|cast| cast.as_str().eq_ignore_ascii_case(name))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// Lower case (ASCII-folded), as function names are case-insensitive.
    pub name: String,
    pub args: Vec<Expr>,
    pub span: Span,
}

impl Call {
    /// The span of the function name alone.
    pub fn name_span(&self) -> Span {
        let name_len = u32::try_from(self.name.len()).unwrap_or(u32::MAX);
        Span::new(
            self.span.start,
            self.span.start.saturating_add(name_len).min(self.span.end),
        )
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct BinaryExpr {
    pub op: BinaryOp,
    pub lhs: Box<Expr>,
    pub rhs: Box<Expr>,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Eq,
    /// `!=` or `<>`.
    NotEq,
    Lt,
    LtEq,
    Gt,
    GtEq,
    /// `=~`
    RegexMatch,
    /// `!~`
    RegexNotMatch,
    And,
    Or,
}

impl BinaryOp {
    /// Binding strength: higher binds tighter. All binary operators associate to the left.
    pub fn precedence(self) -> u8 {
        match self {
            BinaryOp::Or => 1,
            BinaryOp::And => 2,
            BinaryOp::Eq
            | BinaryOp::NotEq
            | BinaryOp::Lt
            | BinaryOp::LtEq
            | BinaryOp::Gt
            | BinaryOp::GtEq
            | BinaryOp::RegexMatch
            | BinaryOp::RegexNotMatch => 3,
            BinaryOp::Add | BinaryOp::Sub => 4,
            BinaryOp::Mul | BinaryOp::Div | BinaryOp::Mod => 5,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Mod => "%",
            BinaryOp::Eq => "=",
            BinaryOp::NotEq => "!=",
            BinaryOp::Lt => "<",
            BinaryOp::LtEq => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::GtEq => ">=",
            BinaryOp::RegexMatch => "=~",
            BinaryOp::RegexNotMatch => "!~",
            BinaryOp::And => "AND",
            BinaryOp::Or => "OR",
        }
    }

    pub fn is_comparison(self) -> bool {
        self.precedence() == 3
    }

    pub fn is_arithmetic(self) -> bool {
        self.precedence() >= 4
    }

    pub fn is_logical(self) -> bool {
        matches!(self, BinaryOp::And | BinaryOp::Or)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct UnaryExpr {
    pub op: UnaryOp,
    pub operand: Box<Expr>,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum UnaryOp {
    Neg,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ParenExpr {
    pub inner: Box<Expr>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Literal {
    pub value: LiteralValue,
    pub span: Span,
}

/// A literal in the kind it was written in.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum LiteralValue {
    /// A whole number that fits i64; in a comparison with `time` it is an epoch in nanoseconds.
    Integer(i64),
    /// A whole number above `i64::MAX`.
    Unsigned(u64),
    Float(f64),
    /// A single-quoted string, unescaped. Compared with `time`, the planner reads it as a time
    /// (see [`TimeLiteral`](crate::TimeLiteral)).
    String(String),
    Bool(bool),
    /// `/pattern/`, with `\/` turned into `/`.
    Regex(String),
    /// Nanoseconds: `5m`, `1h30m`, `-10s`. Compared with `time`, it is an epoch (`1700000000s`).
    Duration(i64),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Wildcard {
    /// Only [`Cast::Field`] or [`Cast::Tag`].
    pub cast: Option<Cast>,
    pub span: Span,
}

/// `EXPLAIN [ANALYZE] SELECT ...`.
#[derive(Debug, Clone, PartialEq)]
pub struct ExplainStatement {
    pub analyze: bool,
    pub select: Box<SelectStatement>,
    pub span: Span,
}

/// `CREATE DATABASE name [WITH [DURATION d] [REPLICATION n] [SHARD DURATION d] [NAME rp]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateDatabaseStatement {
    pub name: Ident,
    pub retention: Option<DatabaseRetention>,
    pub span: Span,
}

/// The `WITH ...` part of `CREATE DATABASE`; at least one option is present.
#[derive(Debug, Clone, PartialEq)]
pub struct DatabaseRetention {
    pub duration: Option<RetentionDuration>,
    pub replication: Option<u64>,
    /// Nanoseconds.
    pub shard_duration: Option<i64>,
    pub policy_name: Option<Ident>,
    pub span: Span,
}

/// A retention period: a duration, or `INF` for data that never expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetentionDuration {
    /// Nanoseconds.
    Finite(i64),
    Infinite,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DropDatabaseStatement {
    pub name: Ident,
    pub span: Span,
}

/// `SHOW MEASUREMENTS [ON db] [WITH MEASUREMENT =~ /re/ | = name] [WHERE] [LIMIT] [OFFSET]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ShowMeasurementsStatement {
    pub database: Option<Ident>,
    pub measurement: Option<MeasurementName>,
    pub condition: Option<Expr>,
    pub limit: Option<u64>,
    pub offset: Option<u64>,
    pub span: Span,
}

/// `SHOW TAG KEYS [ON db] [FROM ...] [WHERE] [LIMIT] [OFFSET]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ShowTagKeysStatement {
    pub database: Option<Ident>,
    pub sources: Vec<MeasurementRef>,
    pub condition: Option<Expr>,
    pub limit: Option<u64>,
    pub offset: Option<u64>,
    pub span: Span,
}

/// `SHOW TAG VALUES [ON db] [FROM ...] WITH KEY ... [WHERE] [LIMIT] [OFFSET]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ShowTagValuesStatement {
    pub database: Option<Ident>,
    pub sources: Vec<MeasurementRef>,
    pub key: TagKeyMatch,
    pub condition: Option<Expr>,
    pub limit: Option<u64>,
    pub offset: Option<u64>,
    pub span: Span,
}

/// The `WITH KEY ...` part of `SHOW TAG VALUES`.
#[derive(Debug, Clone, PartialEq)]
pub enum TagKeyMatch {
    Equal(Ident),
    NotEqual(Ident),
    Regex(RegexLiteral),
    NotRegex(RegexLiteral),
    In(Vec<Ident>),
}

/// `SHOW FIELD KEYS [ON db] [FROM ...] [LIMIT] [OFFSET]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ShowFieldKeysStatement {
    pub database: Option<Ident>,
    pub sources: Vec<MeasurementRef>,
    pub limit: Option<u64>,
    pub offset: Option<u64>,
    pub span: Span,
}

/// `SHOW SERIES [ON db] [FROM ...] [WHERE] [LIMIT] [OFFSET]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ShowSeriesStatement {
    pub database: Option<Ident>,
    pub sources: Vec<MeasurementRef>,
    pub condition: Option<Expr>,
    pub limit: Option<u64>,
    pub offset: Option<u64>,
    pub span: Span,
}

/// What a `SHOW ... CARDINALITY` statement counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CardinalityKind {
    Series,
    Measurement,
    TagKey,
    TagValues,
    FieldKey,
}

impl CardinalityKind {
    /// The words between SHOW and `[EXACT] CARDINALITY`.
    pub fn keywords(self) -> &'static str {
        match self {
            CardinalityKind::Series => "SERIES",
            CardinalityKind::Measurement => "MEASUREMENT",
            CardinalityKind::TagKey => "TAG KEY",
            CardinalityKind::TagValues => "TAG VALUES",
            CardinalityKind::FieldKey => "FIELD KEY",
        }
    }
}

/// `SHOW <kind> [EXACT] CARDINALITY [ON db] [FROM ...] [WHERE ...] [WITH KEY ...]`;
/// `key` is present exactly for [`CardinalityKind::TagValues`].
#[derive(Debug, Clone, PartialEq)]
pub struct ShowCardinalityStatement {
    pub kind: CardinalityKind,
    pub exact: bool,
    pub database: Option<Ident>,
    pub sources: Vec<MeasurementRef>,
    pub condition: Option<Expr>,
    pub key: Option<TagKeyMatch>,
    pub span: Span,
}

/// `SHOW RETENTION POLICIES [ON db]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ShowRetentionPoliciesStatement {
    pub database: Option<Ident>,
    pub span: Span,
}

/// `CREATE RETENTION POLICY name ON db DURATION d REPLICATION n [SHARD DURATION d] [DEFAULT]`.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateRetentionPolicyStatement {
    pub name: Ident,
    pub database: Ident,
    pub duration: RetentionDuration,
    pub replication: u64,
    /// Nanoseconds.
    pub shard_duration: Option<i64>,
    pub default: bool,
    pub span: Span,
}

/// `ALTER RETENTION POLICY name ON db` followed by at least one of `DURATION d`,
/// `REPLICATION n`, `SHARD DURATION d`, `DEFAULT`, in any order.
#[derive(Debug, Clone, PartialEq)]
pub struct AlterRetentionPolicyStatement {
    pub name: Ident,
    pub database: Ident,
    pub duration: Option<RetentionDuration>,
    pub replication: Option<u64>,
    /// Nanoseconds.
    pub shard_duration: Option<i64>,
    pub default: bool,
    pub span: Span,
}

/// `DROP RETENTION POLICY name ON db`.
#[derive(Debug, Clone, PartialEq)]
pub struct DropRetentionPolicyStatement {
    pub name: Ident,
    pub database: Ident,
    pub span: Span,
}

/// `DROP MEASUREMENT name`.
#[derive(Debug, Clone, PartialEq)]
pub struct DropMeasurementStatement {
    pub name: Ident,
    pub span: Span,
}

/// `DROP SERIES [FROM ...] [WHERE ...]`, with at least one of the two.
#[derive(Debug, Clone, PartialEq)]
pub struct DropSeriesStatement {
    pub sources: Vec<MeasurementRef>,
    pub condition: Option<Expr>,
    pub span: Span,
}

/// `DELETE [FROM m] [WHERE ...]`, with at least one of the two.
#[derive(Debug, Clone, PartialEq)]
pub struct DeleteStatement {
    pub source: Option<MeasurementRef>,
    pub condition: Option<Expr>,
    pub span: Span,
}
