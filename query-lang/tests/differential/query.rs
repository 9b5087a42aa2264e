//! The data and queries the differential test generates: a small syntax tree that prints as
//! query text, and that the reference evaluator reads directly (so the reference never parses
//! anything and shares no code with the executor).

use std::fmt::Write as _;

use super::support::format_time;

pub const MEASUREMENTS: [&str; 2] = ["m0", "m1"];
pub const TAG_KEYS: [&str; 4] = ["t0", "t1", "t2", "t3"];
pub const TAG_VALUES: [&str; 3] = ["a", "b", "c"];
pub const STRING_VALUES: [&str; 4] = ["w", "x", "y", "z"];

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum FieldKind {
    Integer,
    Unsigned,
    Float,
    Boolean,
    String,
}

impl FieldKind {
    pub fn is_numeric(self) -> bool {
        matches!(
            self,
            FieldKind::Integer | FieldKind::Unsigned | FieldKind::Float
        )
    }
}

/// Every measurement may hold these fields; each point writes some of them.
pub const FIELDS: [(&str, FieldKind); 5] = [
    ("fi", FieldKind::Integer),
    ("fu", FieldKind::Unsigned),
    ("ff", FieldKind::Float),
    ("fb", FieldKind::Boolean),
    ("fs", FieldKind::String),
];

/// A stored value.
#[derive(Clone, Debug, PartialEq)]
pub enum Val {
    Int(i64),
    Uint(u64),
    Float(f64),
    Bool(bool),
    Str(&'static str),
}

impl Val {
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Val::Int(i) => Some(*i as f64),
            Val::Uint(u) => Some(*u as f64),
            Val::Float(f) => Some(*f),
            _ => None,
        }
    }
}

/// The aggregate functions with one value per bucket.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Func {
    Count,
    CountDistinct,
    Sum,
    Mean,
    Median,
    Min,
    Max,
    First,
    Last,
    Spread,
    Stddev,
    Mode,
    /// The percentile in tenths: 333 is `percentile(f, 33.3)`.
    Percentile(u32),
    P50,
    P90,
    P95,
    P99,
}

impl Func {
    pub const ALL: [Func; 17] = [
        Func::Count,
        Func::CountDistinct,
        Func::Sum,
        Func::Mean,
        Func::Median,
        Func::Min,
        Func::Max,
        Func::First,
        Func::Last,
        Func::Spread,
        Func::Stddev,
        Func::Mode,
        Func::Percentile(500),
        Func::P50,
        Func::P90,
        Func::P95,
        Func::P99,
    ];

    /// Whether the function takes a field of this kind (the table in docs/query-language.md).
    pub fn accepts(self, kind: FieldKind) -> bool {
        match self {
            Func::Count | Func::CountDistinct | Func::First | Func::Last | Func::Mode => true,
            _ => kind.is_numeric(),
        }
    }

    /// The column name an unaliased call gets.
    pub fn name(self) -> &'static str {
        match self {
            Func::Count | Func::CountDistinct => "count",
            Func::Sum => "sum",
            Func::Mean => "mean",
            Func::Median => "median",
            Func::Min => "min",
            Func::Max => "max",
            Func::First => "first",
            Func::Last => "last",
            Func::Spread => "spread",
            Func::Stddev => "stddev",
            Func::Mode => "mode",
            Func::Percentile(_) => "percentile",
            Func::P50 => "p50",
            Func::P90 => "p90",
            Func::P95 => "p95",
            Func::P99 => "p99",
        }
    }

    /// The percentile in tenths, for the percentile functions.
    pub fn percentile_tenths(self) -> Option<u32> {
        match self {
            Func::Percentile(p) => Some(p),
            Func::P50 => Some(500),
            Func::P90 => Some(900),
            Func::P95 => Some(950),
            Func::P99 => Some(990),
            _ => None,
        }
    }

    /// Selectors report the chosen point's time when they stand alone without GROUP BY time.
    pub fn is_selector(self) -> bool {
        matches!(self, Func::Min | Func::Max | Func::First | Func::Last)
            || self.percentile_tenths().is_some()
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    pub func: Func,
    pub field: &'static str,
}

impl Call {
    fn render(&self, out: &mut String) {
        match self.func {
            Func::CountDistinct => {
                let _ = write!(out, "count(distinct({}))", self.field);
            }
            Func::Percentile(tenths) if tenths % 10 == 0 => {
                let _ = write!(out, "percentile({}, {})", self.field, tenths / 10);
            }
            Func::Percentile(tenths) => {
                let _ = write!(
                    out,
                    "percentile({}, {}.{})",
                    self.field,
                    tenths / 10,
                    tenths % 10
                );
            }
            func => {
                let _ = write!(out, "{}({})", func.name(), self.field);
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArithOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
}

impl ArithOp {
    fn symbol(self) -> &'static str {
        match self {
            ArithOp::Add => "+",
            ArithOp::Sub => "-",
            ArithOp::Mul => "*",
            ArithOp::Div => "/",
            ArithOp::Mod => "%",
        }
    }
}

/// An output column of an aggregate query.
#[derive(Clone, Debug, PartialEq)]
pub enum AggExpr {
    Call(Call),
    /// Non-negative, so that printing never writes `--` (a comment).
    Int(i64),
    Float(f64),
    Binary(ArithOp, Box<AggExpr>, Box<AggExpr>),
}

impl AggExpr {
    fn render(&self, out: &mut String) {
        match self {
            AggExpr::Call(call) => call.render(out),
            AggExpr::Int(i) => {
                let _ = write!(out, "{i}");
            }
            AggExpr::Float(f) => {
                let _ = write!(out, "{f:?}");
            }
            AggExpr::Binary(op, lhs, rhs) => {
                out.push('(');
                lhs.render(out);
                let _ = write!(out, " {} ", op.symbol());
                rhs.render(out);
                out.push(')');
            }
        }
    }

    pub fn calls<'a>(&'a self, out: &mut Vec<&'a Call>) {
        match self {
            AggExpr::Call(call) => out.push(call),
            AggExpr::Binary(_, lhs, rhs) => {
                lhs.calls(out);
                rhs.calls(out);
            }
            AggExpr::Int(_) | AggExpr::Float(_) => {}
        }
    }

    /// The name of an unaliased column: its functions joined by `_`.
    pub fn default_name(&self) -> String {
        match self {
            AggExpr::Call(call) => call.func.name().to_string(),
            AggExpr::Int(_) | AggExpr::Float(_) => String::new(),
            AggExpr::Binary(_, lhs, rhs) => {
                let (l, r) = (lhs.default_name(), rhs.default_name());
                match (l.is_empty(), r.is_empty()) {
                    (true, _) => r,
                    (_, true) => l,
                    _ => format!("{l}_{r}"),
                }
            }
        }
    }
}

/// Functions that give several rows per bucket and must stand alone.
#[derive(Clone, Debug, PartialEq)]
pub enum MultiFunc {
    Distinct(&'static str),
    Top(&'static str, usize),
    Bottom(&'static str, usize),
}

#[derive(Clone, Debug, PartialEq)]
pub enum RawColumn {
    Field(&'static str),
    Tag(&'static str),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Select {
    Raw(Vec<RawColumn>),
    /// `SELECT *`: every field and tag.
    Star,
    /// `f(*)`: the function over every field it accepts, columns named `f_field`.
    WildcardCall(Func),
    Aggregates(Vec<(AggExpr, Option<String>)>),
    Multi(MultiFunc),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TagOp {
    Eq,
    NotEq,
    Match,
    NotMatch,
}

/// Regexes of tag conditions, each with an obviously equivalent matcher.
pub const PATTERNS: [&str; 6] = ["^a$", "a|b", "^$", "c", "^[ab]", ".*"];

pub fn pattern_matches(pattern: &str, value: &str) -> bool {
    match pattern {
        "^a$" => value == "a",
        "a|b" => value.contains('a') || value.contains('b'),
        "^$" => value.is_empty(),
        "c" => value.contains('c'),
        "^[ab]" => value.starts_with('a') || value.starts_with('b'),
        ".*" => true,
        other => panic!("no matcher for pattern {other}"),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    NotEq,
    Lt,
    LtEq,
    Gt,
    GtEq,
}

impl CmpOp {
    fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::NotEq => "!=",
            CmpOp::Lt => "<",
            CmpOp::LtEq => "<=",
            CmpOp::Gt => ">",
            CmpOp::GtEq => ">=",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Literal {
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(&'static str),
}

/// A WHERE condition other than time bounds.
#[derive(Clone, Debug, PartialEq)]
pub enum Cond {
    /// `key = 'value'`, `key != 'value'` (value may be empty), or a regex from [`PATTERNS`].
    Tag {
        key: &'static str,
        op: TagOp,
        operand: &'static str,
    },
    Field {
        field: &'static str,
        op: CmpOp,
        literal: Literal,
    },
    And(Box<Cond>, Box<Cond>),
    Or(Box<Cond>, Box<Cond>),
}

impl Cond {
    fn render(&self, out: &mut String) {
        match self {
            Cond::Tag { key, op, operand } => {
                let _ = match op {
                    TagOp::Eq => write!(out, "{key} = '{operand}'"),
                    TagOp::NotEq => write!(out, "{key} != '{operand}'"),
                    TagOp::Match => write!(out, "{key} =~ /{operand}/"),
                    TagOp::NotMatch => write!(out, "{key} !~ /{operand}/"),
                };
            }
            Cond::Field { field, op, literal } => {
                let _ = write!(out, "{field} {} ", op.symbol());
                let _ = match literal {
                    Literal::Int(i) => write!(out, "{i}"),
                    Literal::Float(f) => write!(out, "{f:?}"),
                    Literal::Bool(b) => write!(out, "{b}"),
                    Literal::Str(s) => write!(out, "'{s}'"),
                };
            }
            Cond::And(lhs, rhs) | Cond::Or(lhs, rhs) => {
                out.push('(');
                lhs.render(out);
                out.push_str(if matches!(self, Cond::And(..)) {
                    " AND "
                } else {
                    " OR "
                });
                rhs.render(out);
                out.push(')');
            }
        }
    }

    pub fn fields(&self, out: &mut Vec<&'static str>) {
        match self {
            Cond::Tag { .. } => {}
            Cond::Field { field, .. } => out.push(field),
            Cond::And(lhs, rhs) | Cond::Or(lhs, rhs) => {
                lhs.fields(out);
                rhs.fields(out);
            }
        }
    }
}

/// How a time bound is spelled: the same instant in three notations the language accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeSpelling {
    Nanoseconds,
    Duration,
    Rfc3339,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeBound {
    pub time: i64,
    pub inclusive: bool,
    pub spelling: TimeSpelling,
    /// Written `X < time` instead of `time > X`.
    pub flipped: bool,
}

fn render_time(time: i64, spelling: TimeSpelling) -> String {
    match spelling {
        TimeSpelling::Nanoseconds => time.to_string(),
        TimeSpelling::Duration => render_duration(time),
        TimeSpelling::Rfc3339 => format!("'{}'", format_time(time)),
    }
}

/// A duration literal in the largest unit that divides it (the integer alone when none does).
pub fn render_duration(nanos: i64) -> String {
    for (unit, length) in [
        ("h", 3_600_000_000_000),
        ("m", 60_000_000_000),
        ("s", 1_000_000_000),
        ("ms", 1_000_000),
        ("u", 1_000),
    ] {
        if nanos != 0 && nanos % length == 0 {
            return format!("{}{unit}", nanos / length);
        }
    }
    if nanos == 0 {
        "0s".to_string()
    } else {
        format!("{nanos}ns")
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum GroupTags {
    None,
    Keys(Vec<&'static str>),
    /// Every tag key matching one of [`KEY_PATTERNS`].
    Regex(&'static str),
    Star,
}

/// Regexes of GROUP BY dimensions, each with an obviously equivalent matcher.
pub const KEY_PATTERNS: [&str; 3] = ["^t[01]$", "t", "3"];

pub fn key_pattern_matches(pattern: &str, key: &str) -> bool {
    match pattern {
        "^t[01]$" => key == "t0" || key == "t1",
        "t" => key.contains('t'),
        "3" => key.contains('3'),
        other => panic!("no matcher for pattern {other}"),
    }
}

/// Which measurements a query reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    One(&'static str),
    /// `FROM m0, m1`.
    Both,
    /// `FROM /^m/`, which matches both.
    Regex,
}

impl Source {
    /// The measurements, in the order their results come (sorted by name).
    pub fn measurements(self) -> Vec<&'static str> {
        match self {
            Source::One(m) => vec![m],
            Source::Both | Source::Regex => MEASUREMENTS.to_vec(),
        }
    }
}

/// The offset of GROUP BY time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Offset {
    Duration(i64),
    /// `now()`: buckets end at the query's now.
    Now,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Fill {
    None,
    Null,
    Previous,
    Linear,
    Int(i64),
    Float(f64),
}

#[derive(Clone, Debug, PartialEq)]
pub struct GroupTime {
    pub interval: i64,
    pub offset: Option<Offset>,
    /// Written after the tag dimensions instead of before them.
    pub last: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Query {
    pub source: Source,
    pub select: Select,
    pub condition: Option<Cond>,
    pub lower: Option<TimeBound>,
    pub upper: Option<TimeBound>,
    pub group_time: Option<GroupTime>,
    pub group_tags: GroupTags,
    pub fill: Option<Fill>,
    pub descending: bool,
    pub limit: Option<u64>,
    pub offset: Option<u64>,
    pub slimit: Option<u64>,
    pub soffset: Option<u64>,
    /// The query's now(), in nanoseconds.
    pub now: i64,
}

impl Query {
    /// The query text.
    pub fn render(&self) -> String {
        let mut out = String::from("SELECT ");
        match &self.select {
            Select::Raw(columns) => {
                let names: Vec<&str> = columns
                    .iter()
                    .map(|c| match c {
                        RawColumn::Field(f) | RawColumn::Tag(f) => *f,
                    })
                    .collect();
                out.push_str(&names.join(", "));
            }
            Select::Star => out.push('*'),
            Select::WildcardCall(func) => match func.percentile_tenths() {
                Some(tenths) if matches!(func, Func::Percentile(_)) => {
                    let _ = write!(out, "percentile(*, {}.{})", tenths / 10, tenths % 10);
                }
                _ => {
                    let _ = write!(out, "{}(*)", func.name());
                }
            },
            Select::Aggregates(columns) => {
                for (i, (expr, alias)) in columns.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    expr.render(&mut out);
                    if let Some(alias) = alias {
                        let _ = write!(out, " AS {alias}");
                    }
                }
            }
            Select::Multi(MultiFunc::Distinct(f)) => {
                let _ = write!(out, "distinct({f})");
            }
            Select::Multi(MultiFunc::Top(f, n)) => {
                let _ = write!(out, "top({f}, {n})");
            }
            Select::Multi(MultiFunc::Bottom(f, n)) => {
                let _ = write!(out, "bottom({f}, {n})");
            }
        }
        let _ = match self.source {
            Source::One(m) => write!(out, " FROM {m}"),
            Source::Both => write!(out, " FROM {}", MEASUREMENTS.join(", ")),
            Source::Regex => write!(out, " FROM /^m/"),
        };
        let mut conjuncts = Vec::new();
        for (bound, lower) in [(self.lower, true), (self.upper, false)] {
            let Some(bound) = bound else { continue };
            let op = match (lower, bound.inclusive) {
                (true, true) => ">=",
                (true, false) => ">",
                (false, true) => "<=",
                (false, false) => "<",
            };
            let time = render_time(bound.time, bound.spelling);
            if bound.flipped {
                let flipped = match op {
                    ">=" => "<=",
                    ">" => "<",
                    "<=" => ">=",
                    _ => ">",
                };
                conjuncts.push(format!("{time} {flipped} time"));
            } else {
                conjuncts.push(format!("time {op} {time}"));
            }
        }
        if let Some(condition) = &self.condition {
            let mut text = String::new();
            condition.render(&mut text);
            conjuncts.push(text);
        }
        if !conjuncts.is_empty() {
            let _ = write!(out, " WHERE {}", conjuncts.join(" AND "));
        }
        let mut dimensions: Vec<String> = match &self.group_tags {
            GroupTags::None => Vec::new(),
            GroupTags::Keys(keys) => keys.iter().map(|k| k.to_string()).collect(),
            GroupTags::Regex(pattern) => vec![format!("/{pattern}/")],
            GroupTags::Star => vec!["*".to_string()],
        };
        if let Some(group_time) = &self.group_time {
            let mut text = format!("time({}", render_duration(group_time.interval));
            match group_time.offset {
                None => {}
                Some(Offset::Now) => text.push_str(", now()"),
                Some(Offset::Duration(offset)) if offset < 0 => {
                    let _ = write!(text, ", -{}", render_duration(-offset));
                }
                Some(Offset::Duration(offset)) => {
                    let _ = write!(text, ", {}", render_duration(offset));
                }
            }
            text.push(')');
            if group_time.last {
                dimensions.push(text);
            } else {
                dimensions.insert(0, text);
            }
        }
        if !dimensions.is_empty() {
            let _ = write!(out, " GROUP BY {}", dimensions.join(", "));
        }
        if let Some(fill) = self.fill {
            let _ = match fill {
                Fill::None => write!(out, " fill(none)"),
                Fill::Null => write!(out, " fill(null)"),
                Fill::Previous => write!(out, " fill(previous)"),
                Fill::Linear => write!(out, " fill(linear)"),
                Fill::Int(i) => write!(out, " fill({i})"),
                Fill::Float(f) => write!(out, " fill({f:?})"),
            };
        }
        if self.descending {
            out.push_str(" ORDER BY time DESC");
        }
        for (keyword, value) in [
            ("LIMIT", self.limit),
            ("OFFSET", self.offset),
            ("SLIMIT", self.slimit),
            ("SOFFSET", self.soffset),
        ] {
            if let Some(value) = value {
                let _ = write!(out, " {keyword} {value}");
            }
        }
        out
    }
}

/// One write of a generated dataset.
#[derive(Clone, Debug, PartialEq)]
pub struct PointSpec {
    pub measurement: usize,
    /// Index into the measurement's series (taken modulo their number).
    pub series: usize,
    pub time: i64,
    /// Field index into [`FIELDS`] and value; each field at most once.
    pub values: Vec<(usize, Val)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flush {
    None,
    Sealed,
    Everything,
    /// Flush everything, then compact every block: segments merged, rollup tiers built.
    Compact,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    pub points: Vec<PointSpec>,
    pub flush: Flush,
}

/// The series of one measurement: tag sets over some of [`TAG_KEYS`] (a series may lack a key).
#[derive(Clone, Debug, PartialEq)]
pub struct MeasurementSpec {
    pub series: Vec<Vec<(&'static str, &'static str)>>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    pub measurements: Vec<MeasurementSpec>,
    pub batches: Vec<Batch>,
}

impl Dataset {
    /// Whether some block was compacted, so that queries may read rollup tiers.
    pub fn compacted(&self) -> bool {
        self.batches.iter().any(|b| b.flush == Flush::Compact)
    }

    /// The tags of a point's series.
    pub fn tags_of(&self, point: &PointSpec) -> &[(&'static str, &'static str)] {
        let series = &self.measurements[point.measurement].series;
        &series[point.series % series.len()]
    }

    /// The dataset as line protocol, one batch after another, for failure reports.
    pub fn line_protocol(&self) -> String {
        let mut out = String::new();
        for (i, batch) in self.batches.iter().enumerate() {
            let _ = writeln!(out, "# batch {i}, then flush {:?}", batch.flush);
            for point in &batch.points {
                out.push_str(MEASUREMENTS[point.measurement]);
                for (k, v) in self.tags_of(point) {
                    let _ = write!(out, ",{k}={v}");
                }
                out.push(' ');
                for (j, (field, value)) in point.values.iter().enumerate() {
                    if j > 0 {
                        out.push(',');
                    }
                    let _ = match value {
                        Val::Int(i) => write!(out, "{}={i}i", FIELDS[*field].0),
                        Val::Uint(u) => write!(out, "{}={u}u", FIELDS[*field].0),
                        Val::Float(f) => write!(out, "{}={f:?}", FIELDS[*field].0),
                        Val::Bool(b) => write!(out, "{}={b}", FIELDS[*field].0),
                        Val::Str(s) => write!(out, "{}=\"{s}\"", FIELDS[*field].0),
                    };
                }
                let _ = writeln!(out, " {}", point.time);
            }
        }
        out
    }
}
