//! A brute-force reference evaluator for the queries of [`super::query`], written from
//! `docs/query-language.md` (sections Functions and Execution) over the raw writes. It shares
//! no code with the executor: no chunks, no statistics, no accumulators; every bucket's values
//! are collected into a plain list and reduced the obvious way.
//!
//! Where the documentation leaves a choice open, this file states the choice it checks:
//!
//! - `first`/`last` with several series holding a point at the winning time may return any of
//!   those values ([`Cell::OneOf`]).
//! - `min`/`max` report the earliest point among equal values; `percentile` sorts by value, then
//!   time; `top`/`bottom` prefer the earlier point among equal values, and order rows with
//!   equal times by value (largest first for `top`, smallest first for `bottom`).
//! - Rows of a raw query with equal times keep the order of their series (sorted by tags);
//!   `ORDER BY time DESC` reverses the whole list.
//! - `count(distinct(f))` in an empty bucket is 0, which FILL does not replace (it is not null).
//! - Without a lower time bound, GROUP BY time starts at the bucket of the earliest point at or
//!   before the upper bound among the columns the query reads (its selected fields and the
//!   fields of its WHERE clause) in the series and groups it selects (after SLIMIT/SOFFSET).

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use tally_query::Value;

use super::query::{
    AggExpr, ArithOp, Call, CmpOp, Cond, Dataset, FIELDS, FieldKind, Fill, Func, GroupTags,
    Literal, MEASUREMENTS, MultiFunc, Offset, Query, RawColumn, Select, TagOp, Val,
    key_pattern_matches, pattern_matches,
};

type Tags = Vec<(&'static str, &'static str)>;

/// Relative tolerance for floats computed in an order-dependent way, applied to the larger of
/// the result and the magnitude of what produced it (see [`Cell::Approx`]).
pub const RELATIVE_TOLERANCE: f64 = 1e-9;
/// Absolute tolerance added to the relative one, for results at or near zero.
pub const ABSOLUTE_TOLERANCE: f64 = 1e-12;

/// What one cell of the result must hold.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Null,
    /// This exact value and type (floats compared bit for bit).
    Exact(Value),
    /// A float whose last bits depend on the order of additions: it must lie within
    /// `RELATIVE_TOLERANCE * max(|value|, scale) + ABSOLUTE_TOLERANCE` of `value`, where
    /// `scale` bounds the magnitude of the terms that produced it (for a sum, the sum of the
    /// absolute values of its terms), because cancellation can leave a small result carrying
    /// the rounding of large terms.
    Approx {
        value: f64,
        scale: f64,
    },
    /// Any of these values (a tie the documentation leaves open).
    OneOf(Vec<Value>),
    /// A quantile (median, percentile) that may come from rollup tiers' quantile sketches:
    /// within `SKETCH_RELATIVE_ACCURACY` of `value` relative to the larger of `|value|` and
    /// `scale` (for a median of two ranks, the mean of their magnitudes), of any numeric type.
    Sketch {
        value: f64,
        scale: f64,
    },
    /// Anything: the value depends on rounding in a way no tolerance can bound (a division
    /// by a sum that is zero up to rounding).
    Any,
}

/// The relative accuracy the engine's quantile sketches guarantee (`sketch::RELATIVE_ACCURACY`).
pub const SKETCH_RELATIVE_ACCURACY: f64 = 0.01;

impl Cell {
    pub fn matches(&self, got: &Value) -> bool {
        match self {
            Cell::Null => matches!(got, Value::Null),
            Cell::Exact(want) => same_value(want, got),
            Cell::Approx { value, scale } => match got {
                Value::Float(g) => {
                    let tolerance =
                        RELATIVE_TOLERANCE * value.abs().max(*scale) + ABSOLUTE_TOLERANCE;
                    (g - value).abs() <= tolerance
                }
                _ => false,
            },
            Cell::OneOf(values) => values.iter().any(|want| same_value(want, got)),
            Cell::Sketch { value, scale } => got.as_f64().is_some_and(|g| {
                (g - value).abs()
                    <= SKETCH_RELATIVE_ACCURACY * value.abs().max(*scale) + ABSOLUTE_TOLERANCE
            }),
            Cell::Any => true,
        }
    }
}

fn same_value(want: &Value, got: &Value) -> bool {
    match (want, got) {
        (Value::Float(a), Value::Float(b)) => {
            a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
        }
        _ => want == got,
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct ExpectedSeries {
    pub name: String,
    pub tags: Vec<(String, String)>,
    pub columns: Vec<String>,
    pub rows: Vec<(i64, Vec<Cell>)>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Series(Vec<ExpectedSeries>),
    /// The query would hit a known bug of the executor; none is known at present. A bug found
    /// later can be tolerated here until it is fixed and pinned in `regressions.rs`.
    Skip(&'static str),
}

/// The stored data after last-write-wins: per (measurement, series, field), time -> value.
pub struct Store {
    /// Whether the dataset was compacted, so that rollup tiers may answer queries.
    compacted: bool,
    columns: BTreeMap<(&'static str, Tags, &'static str), BTreeMap<i64, Val>>,
}

impl Store {
    /// Applies every write in order; a later write of the same column and time replaces the
    /// earlier one.
    pub fn new(dataset: &Dataset) -> Store {
        let mut columns: BTreeMap<(&'static str, Tags, &'static str), BTreeMap<i64, Val>> =
            BTreeMap::new();
        for batch in &dataset.batches {
            for point in &batch.points {
                let mut tags: Tags = dataset.tags_of(point).to_vec();
                tags.sort();
                for (field, value) in &point.values {
                    columns
                        .entry((
                            MEASUREMENTS[point.measurement],
                            tags.clone(),
                            FIELDS[*field].0,
                        ))
                        .or_default()
                        .insert(point.time, value.clone());
                }
            }
        }
        Store {
            compacted: dataset.compacted(),
            columns,
        }
    }

    fn field_kinds(&self, measurement: &str) -> BTreeMap<&'static str, FieldKind> {
        self.columns
            .keys()
            .filter(|(m, _, _)| *m == measurement)
            .filter_map(|(_, _, f)| {
                FIELDS
                    .iter()
                    .find(|(name, _)| name == f)
                    .map(|(name, kind)| (*name, *kind))
            })
            .collect()
    }

    fn tag_keys(&self, measurement: &str) -> BTreeSet<&'static str> {
        self.columns
            .keys()
            .filter(|(m, _, _)| *m == measurement)
            .flat_map(|(_, tags, _)| tags.iter().map(|(k, _)| *k))
            .collect()
    }

    fn series(&self, measurement: &str) -> BTreeSet<Tags> {
        self.columns
            .keys()
            .filter(|(m, _, _)| *m == measurement)
            .map(|(_, tags, _)| tags.clone())
            .collect()
    }

    fn column(
        &self,
        measurement: &'static str,
        tags: &Tags,
        field: &'static str,
    ) -> Option<&BTreeMap<i64, Val>> {
        self.columns.get(&(measurement, tags.clone(), field))
    }

    /// Every field value of a series at one time.
    fn row(
        &self,
        measurement: &'static str,
        tags: &Tags,
        time: i64,
    ) -> BTreeMap<&'static str, Val> {
        FIELDS
            .iter()
            .filter_map(|(field, _)| {
                self.column(measurement, tags, field)
                    .and_then(|c| c.get(&time))
                    .map(|v| (*field, v.clone()))
            })
            .collect()
    }
}

fn tag_value(tags: &Tags, key: &str) -> Option<&'static str> {
    tags.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
}

/// Whether a conjunct only compares tags with strings or regexes, given which names are
/// fields: a name that is not a field key of the measurement is a tag.
fn is_tag_filter(cond: &Cond, kinds: &BTreeMap<&str, FieldKind>) -> bool {
    match cond {
        Cond::Tag { .. } => true,
        Cond::Field { field, op, literal } => {
            !kinds.contains_key(field)
                && matches!(literal, Literal::Str(_))
                && matches!(op, CmpOp::Eq | CmpOp::NotEq)
        }
        Cond::And(lhs, rhs) | Cond::Or(lhs, rhs) => {
            is_tag_filter(lhs, kinds) && is_tag_filter(rhs, kinds)
        }
    }
}

fn compare_literal(value: &Val, literal: &Literal) -> Option<Ordering> {
    match (value, literal) {
        (Val::Int(a), Literal::Int(b)) => Some(a.cmp(b)),
        (Val::Int(a), Literal::Float(b)) => (*a as f64).partial_cmp(b),
        (Val::Uint(a), Literal::Int(b)) => Some(i128::from(*a).cmp(&i128::from(*b))),
        (Val::Uint(a), Literal::Float(b)) => (*a as f64).partial_cmp(b),
        (Val::Float(a), Literal::Int(b)) => a.partial_cmp(&(*b as f64)),
        (Val::Float(a), Literal::Float(b)) => a.partial_cmp(b),
        (Val::Bool(a), Literal::Bool(b)) => Some(a.cmp(b)),
        (Val::Str(a), Literal::Str(b)) => Some(a.cmp(b)),
        _ => None,
    }
}

fn compare_holds(ordering: Option<Ordering>, op: CmpOp) -> bool {
    let Some(ordering) = ordering else {
        return false;
    };
    match op {
        CmpOp::Eq => ordering == Ordering::Equal,
        CmpOp::NotEq => ordering != Ordering::Equal,
        CmpOp::Lt => ordering == Ordering::Less,
        CmpOp::LtEq => ordering != Ordering::Greater,
        CmpOp::Gt => ordering == Ordering::Greater,
        CmpOp::GtEq => ordering != Ordering::Less,
    }
}

/// Evaluates a condition on one row of a series; a missing tag reads as the empty string, a
/// missing field makes its comparison false.
fn holds(
    cond: &Cond,
    tags: &Tags,
    row: &BTreeMap<&str, Val>,
    kinds: &BTreeMap<&str, FieldKind>,
) -> bool {
    match cond {
        Cond::Tag { key, op, operand } => {
            let value = tag_value(tags, key).unwrap_or("");
            match op {
                TagOp::Eq => value == *operand,
                TagOp::NotEq => value != *operand,
                TagOp::Match => pattern_matches(operand, value),
                TagOp::NotMatch => !pattern_matches(operand, value),
            }
        }
        Cond::Field { field, op, literal } if !kinds.contains_key(field) => {
            // Not a field of this measurement, so a tag (usually missing: the empty string).
            let value = tag_value(tags, field).unwrap_or("");
            match literal {
                Literal::Str(s) => compare_holds(Some(value.cmp(s)), *op),
                _ => false,
            }
        }
        Cond::Field { field, op, literal } => compare_holds(
            row.get(field).and_then(|v| compare_literal(v, literal)),
            *op,
        ),
        Cond::And(lhs, rhs) => holds(lhs, tags, row, kinds) && holds(rhs, tags, row, kinds),
        Cond::Or(lhs, rhs) => holds(lhs, tags, row, kinds) || holds(rhs, tags, row, kinds),
    }
}

fn flatten_and<'a>(cond: &'a Cond, out: &mut Vec<&'a Cond>) {
    match cond {
        Cond::And(lhs, rhs) => {
            flatten_and(lhs, out);
            flatten_and(rhs, out);
        }
        other => out.push(other),
    }
}

fn to_value(v: &Val) -> Value {
    match v {
        Val::Int(i) => Value::Integer(*i),
        Val::Uint(u) => Value::Unsigned(*u),
        Val::Float(f) => Value::Float(*f),
        Val::Bool(b) => Value::Boolean(*b),
        Val::Str(s) => Value::String(s.to_string()),
    }
}

/// Orders values of one field (all of one kind).
fn order(a: &Val, b: &Val) -> Ordering {
    match (a, b) {
        (Val::Int(x), Val::Int(y)) => x.cmp(y),
        (Val::Uint(x), Val::Uint(y)) => x.cmp(y),
        (Val::Float(x), Val::Float(y)) => x.total_cmp(y),
        (Val::Bool(x), Val::Bool(y)) => x.cmp(y),
        (Val::Str(x), Val::Str(y)) => x.cmp(y),
        _ => panic!("values of one field differ in kind: {a:?} and {b:?}"),
    }
}

/// Makes column names unique as the executor documents: `mean`, `mean_1`, `mean_2`.
fn unique_names(names: Vec<String>) -> Vec<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    names
        .into_iter()
        .map(|name| {
            let n = seen.entry(name.clone()).or_insert(0);
            let out = if *n > 0 { format!("{name}_{n}") } else { name };
            *n += 1;
            out
        })
        .collect()
}

/// The column names and rows of one group.
type NamedRows = (Vec<String>, Vec<(i64, Vec<Cell>)>);

/// A point fed to an aggregate: its time and value.
type Sample = (i64, Val);

/// What the query's WHERE clause says, split as the planner splits it.
struct Where<'a> {
    min_time: i64,
    max_time: i64,
    has_max: bool,
    series_conds: Vec<&'a Cond>,
    row_conds: Vec<&'a Cond>,
}

/// Evaluates a query over the store.
pub fn evaluate(store: &Store, query: &Query) -> Outcome {
    let mut out = Vec::new();
    for measurement in query.source.measurements() {
        match evaluate_measurement(store, query, measurement) {
            Outcome::Series(series) => out.extend(series),
            skip @ Outcome::Skip(_) => return skip,
        }
    }
    Outcome::Series(out)
}

/// Evaluates a query over one measurement of its FROM clause.
fn evaluate_measurement(store: &Store, query: &Query, measurement: &'static str) -> Outcome {
    let kinds = store.field_kinds(measurement);
    let tag_keys = store.tag_keys(measurement);
    // `f(*)` is `f(a) AS f_a, f(b) AS f_b, ...` over the fields f accepts, sorted by name.
    let expanded;
    let query = match &query.select {
        Select::WildcardCall(func) => {
            let columns = kinds
                .iter()
                .filter(|(_, kind)| func.accepts(**kind))
                .map(|(field, _)| {
                    let call = AggExpr::Call(Call { func: *func, field });
                    (call, Some(format!("{}_{field}", func.name())))
                })
                .collect();
            expanded = Query {
                select: Select::Aggregates(columns),
                ..query.clone()
            };
            &expanded
        }
        _ => query,
    };
    let mut conjuncts = Vec::new();
    if let Some(cond) = &query.condition {
        flatten_and(cond, &mut conjuncts);
    }
    let (series_conds, row_conds): (Vec<&Cond>, Vec<&Cond>) = conjuncts
        .into_iter()
        .partition(|c| is_tag_filter(c, &kinds));
    let range = Where {
        min_time: query
            .lower
            .map_or(i64::MIN, |b| if b.inclusive { b.time } else { b.time + 1 }),
        max_time: query
            .upper
            .map_or(i64::MAX, |b| if b.inclusive { b.time } else { b.time - 1 }),
        has_max: query.upper.is_some(),
        series_conds,
        row_conds,
    };
    if range.min_time > range.max_time {
        return Outcome::Series(Vec::new());
    }
    let mut filter_fields: Vec<&'static str> = Vec::new();
    for cond in &range.row_conds {
        cond.fields(&mut filter_fields);
    }
    filter_fields.retain(|f| kinds.contains_key(f));

    // Output columns: raw columns (a name that is a field key is a field) or aggregates.
    let raw_columns: Vec<RawColumn> = match &query.select {
        Select::Raw(columns) => columns
            .iter()
            .map(|c| match c {
                RawColumn::Tag(t) if !tag_keys.contains(t) => RawColumn::Field(t),
                other => other.clone(),
            })
            .collect(),
        Select::Star => {
            let mut names: Vec<&'static str> = kinds
                .keys()
                .copied()
                .chain(tag_keys.iter().copied())
                .collect();
            names.sort();
            names
                .into_iter()
                .map(|n| {
                    if kinds.contains_key(n) {
                        RawColumn::Field(n)
                    } else {
                        RawColumn::Tag(n)
                    }
                })
                .collect()
        }
        _ => Vec::new(),
    };
    let mut selected: BTreeSet<&'static str> = BTreeSet::new();
    let mut calls: Vec<Call> = Vec::new();
    match &query.select {
        Select::Raw(_) | Select::Star => {
            for c in &raw_columns {
                if let RawColumn::Field(f) = c {
                    selected.insert(f);
                }
            }
        }
        Select::Aggregates(columns) => {
            for (expr, _) in columns {
                let mut found = Vec::new();
                expr.calls(&mut found);
                calls.extend(found.into_iter().cloned());
            }
            selected.extend(calls.iter().map(|c| c.field));
        }
        Select::Multi(MultiFunc::Distinct(f) | MultiFunc::Top(f, _) | MultiFunc::Bottom(f, _)) => {
            selected.insert(f);
        }
        Select::WildcardCall(_) => unreachable!("expanded above"),
    }
    selected.retain(|f| kinds.contains_key(f));
    let mut needed: BTreeSet<&'static str> = selected.clone();
    needed.extend(filter_fields.iter().copied());

    // Series that pass the tag conditions and hold a selected field, grouped and paged.
    let series: Vec<Tags> = store
        .series(measurement)
        .into_iter()
        .filter(|s| {
            range
                .series_conds
                .iter()
                .all(|c| holds(c, s, &BTreeMap::new(), &kinds))
        })
        .filter(|s| {
            selected
                .iter()
                .any(|f| store.column(measurement, s, f).is_some())
        })
        .collect();
    let group_keys: Vec<&'static str> = match &query.group_tags {
        GroupTags::None => Vec::new(),
        GroupTags::Keys(keys) => keys
            .iter()
            .copied()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect(),
        GroupTags::Regex(pattern) => tag_keys
            .iter()
            .copied()
            .filter(|k| key_pattern_matches(pattern, k))
            .collect(),
        GroupTags::Star => tag_keys.iter().copied().collect(),
    };
    let grouped_by_tags = match &query.group_tags {
        GroupTags::None => false,
        GroupTags::Keys(keys) => !keys.is_empty(),
        GroupTags::Regex(_) | GroupTags::Star => true,
    };
    let mut groups: BTreeMap<Tags, Vec<Tags>> = BTreeMap::new();
    for s in series {
        let key: Tags = group_keys
            .iter()
            .map(|k| (*k, tag_value(&s, k).unwrap_or("")))
            .collect();
        groups.entry(key).or_default().push(s);
    }
    let groups: Vec<(Tags, Vec<Tags>)> = groups
        .into_iter()
        .skip(query.soffset.unwrap_or(0) as usize)
        .take(query.slimit.map_or(usize::MAX, |n| n as usize))
        .collect();

    let context = Context {
        store,
        query,
        kinds: &kinds,
        range: &range,
        measurement,
        grouped_by_tags,
    };
    match &query.select {
        Select::Raw(_) | Select::Star => {
            Outcome::Series(context.raw(&groups, &raw_columns, &needed))
        }
        Select::Aggregates(_) | Select::Multi(_) | Select::WildcardCall(_) => {
            context.aggregate(&groups, &calls, &needed)
        }
    }
}

struct Context<'a> {
    store: &'a Store,
    query: &'a Query,
    kinds: &'a BTreeMap<&'static str, FieldKind>,
    range: &'a Where<'a>,
    measurement: &'static str,
    grouped_by_tags: bool,
}

/// The buckets of an aggregate query.
struct Buckets {
    grouped: bool,
    first: i64,
    interval: i64,
    offset: i64,
    count: usize,
}

impl Buckets {
    fn start_of(&self, t: i64) -> i64 {
        (t - self.offset).div_euclid(self.interval) * self.interval + self.offset
    }

    fn index(&self, t: i64) -> usize {
        if self.grouped {
            ((self.start_of(t) - self.first) / self.interval) as usize
        } else {
            0
        }
    }

    fn time(&self, b: usize) -> i64 {
        if self.grouped {
            self.first + b as i64 * self.interval
        } else {
            self.first
        }
    }
}

impl Context<'_> {
    fn row_passes(&self, tags: &Tags, time: i64) -> bool {
        if self.range.row_conds.is_empty() {
            return true;
        }
        let row = self.store.row(self.measurement, tags, time);
        self.range
            .row_conds
            .iter()
            .all(|c| holds(c, tags, &row, self.kinds))
    }

    fn page<T>(&self, mut rows: Vec<T>) -> Vec<T> {
        if self.query.descending {
            rows.reverse();
        }
        rows.into_iter()
            .skip(self.query.offset.unwrap_or(0) as usize)
            .take(self.query.limit.map_or(usize::MAX, |n| n as usize))
            .collect()
    }

    fn series_tags(&self, group: &Tags) -> Vec<(String, String)> {
        if self.grouped_by_tags {
            group
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        } else {
            Vec::new()
        }
    }

    /// Raw queries: one row per point of each series (a point being a time at which some read
    /// field has a value), merged by time within each group.
    fn raw(
        &self,
        groups: &[(Tags, Vec<Tags>)],
        columns: &[RawColumn],
        read: &BTreeSet<&'static str>,
    ) -> Vec<ExpectedSeries> {
        let names = unique_names(
            columns
                .iter()
                .map(|c| match c {
                    RawColumn::Field(f) | RawColumn::Tag(f) => f.to_string(),
                })
                .collect(),
        );
        let mut out = Vec::new();
        for (group, members) in groups {
            let mut rows: Vec<(i64, Vec<Cell>)> = Vec::new();
            for tags in members {
                let mut times: BTreeSet<i64> = BTreeSet::new();
                for field in read {
                    if let Some(column) = self.store.column(self.measurement, tags, field) {
                        times.extend(
                            column
                                .range(self.range.min_time..=self.range.max_time)
                                .map(|(t, _)| *t),
                        );
                    }
                }
                for t in times {
                    if !self.row_passes(tags, t) {
                        continue;
                    }
                    let row = self.store.row(self.measurement, tags, t);
                    let cells: Vec<Cell> = columns
                        .iter()
                        .map(|c| match c {
                            RawColumn::Field(f) => {
                                row.get(f).map_or(Cell::Null, |v| Cell::Exact(to_value(v)))
                            }
                            RawColumn::Tag(k) => tag_value(tags, k)
                                .map_or(Cell::Null, |v| Cell::Exact(Value::String(v.to_string()))),
                        })
                        .collect();
                    let has_field = columns
                        .iter()
                        .zip(&cells)
                        .any(|(c, cell)| matches!(c, RawColumn::Field(_)) && *cell != Cell::Null);
                    if has_field {
                        rows.push((t, cells));
                    }
                }
            }
            // Stable: rows of equal times keep their series' order.
            rows.sort_by_key(|(t, _)| *t);
            let rows = self.page(rows);
            if !rows.is_empty() {
                let mut all_columns = vec!["time".to_string()];
                all_columns.extend(names.iter().cloned());
                out.push(ExpectedSeries {
                    name: self.measurement.to_string(),
                    tags: self.series_tags(group),
                    columns: all_columns,
                    rows,
                });
            }
        }
        out
    }

    fn aggregate(
        &self,
        groups: &[(Tags, Vec<Tags>)],
        calls: &[Call],
        needed: &BTreeSet<&'static str>,
    ) -> Outcome {
        let query = self.query;
        let range = self.range;
        let (buckets, scan_max) = match &query.group_time {
            Some(group_time) => {
                let offset = match group_time.offset {
                    None => 0,
                    Some(Offset::Duration(d)) => d.rem_euclid(group_time.interval),
                    Some(Offset::Now) => query.now.rem_euclid(group_time.interval),
                };
                let lo = if query.lower.is_some() {
                    range.min_time
                } else {
                    let mut earliest: Option<i64> = None;
                    for (_, members) in groups {
                        for tags in members {
                            for field in needed {
                                if let Some(column) =
                                    self.store.column(self.measurement, tags, field)
                                    && let Some((t, _)) = column.range(..=range.max_time).next()
                                {
                                    earliest = Some(earliest.map_or(*t, |e| e.min(*t)));
                                }
                            }
                        }
                    }
                    match earliest {
                        Some(t) => t,
                        None => return Outcome::Series(Vec::new()),
                    }
                };
                let ends_at_now = group_time.offset == Some(Offset::Now) && !range.has_max;
                // now() as the offset ends the last bucket at now(), so now() itself is out.
                let hi = if range.has_max {
                    range.max_time
                } else if ends_at_now {
                    query.now - 1
                } else {
                    query.now
                };
                if hi < lo {
                    return Outcome::Series(Vec::new());
                }
                let mut buckets = Buckets {
                    grouped: true,
                    first: 0,
                    interval: group_time.interval,
                    offset,
                    count: 0,
                };
                buckets.first = buckets.start_of(lo);
                buckets.count =
                    ((buckets.start_of(hi) - buckets.first) / group_time.interval + 1) as usize;
                (buckets, hi)
            }
            None => (
                Buckets {
                    grouped: false,
                    first: if query.lower.is_some() {
                        range.min_time
                    } else {
                        0
                    },
                    interval: 1,
                    offset: 0,
                    count: 1,
                },
                range.max_time,
            ),
        };

        let multi = match &query.select {
            Select::Multi(m) => Some(m.clone()),
            _ => None,
        };
        let read_fields: BTreeSet<&'static str> = match &multi {
            Some(MultiFunc::Distinct(f) | MultiFunc::Top(f, _) | MultiFunc::Bottom(f, _)) => {
                BTreeSet::from([*f])
            }
            None => calls.iter().map(|c| c.field).collect(),
        };
        let mut out = Vec::new();
        for (group, members) in groups {
            // samples[field][bucket]: every point the group feeds to aggregates of that field.
            let mut samples: BTreeMap<&'static str, Vec<Vec<Sample>>> = BTreeMap::new();
            for field in &read_fields {
                let per_bucket = samples
                    .entry(field)
                    .or_insert_with(|| vec![Vec::new(); buckets.count]);
                for tags in members {
                    let Some(column) = self.store.column(self.measurement, tags, field) else {
                        continue;
                    };
                    for (t, v) in column.range(range.min_time..=scan_max) {
                        if buckets.grouped && *t < buckets.first {
                            continue;
                        }
                        if self.row_passes(tags, *t) {
                            per_bucket[buckets.index(*t)].push((*t, v.clone()));
                        }
                    }
                }
            }
            let outcome = match &multi {
                Some(m) => self.multi_rows(m, &samples, &buckets),
                None => self.bucket_rows(calls, &samples, &buckets),
            };
            let rows = match outcome {
                Ok(rows) => rows,
                Err(reason) => return Outcome::Skip(reason),
            };
            let Some((names, rows)) = rows else { continue };
            let rows = self.page(rows);
            if rows.is_empty() {
                continue;
            }
            let mut columns = vec!["time".to_string()];
            columns.extend(names);
            out.push(ExpectedSeries {
                name: self.measurement.to_string(),
                tags: self.series_tags(group),
                columns,
                rows,
            });
        }
        Outcome::Series(out)
    }

    /// Rows of distinct, top or bottom: several per bucket.
    fn multi_rows(
        &self,
        multi: &MultiFunc,
        samples: &BTreeMap<&'static str, Vec<Vec<Sample>>>,
        buckets: &Buckets,
    ) -> Result<Option<NamedRows>, &'static str> {
        let (field, name) = match multi {
            MultiFunc::Distinct(f) => (*f, "distinct"),
            MultiFunc::Top(f, _) => (*f, "top"),
            MultiFunc::Bottom(f, _) => (*f, "bottom"),
        };
        let mut rows = Vec::new();
        for (b, points) in samples[field].iter().enumerate() {
            match multi {
                MultiFunc::Distinct(_) => {
                    let mut values: Vec<&Val> = points.iter().map(|(_, v)| v).collect();
                    values.sort_by(|a, b| order(a, b));
                    values.dedup_by(|a, b| order(a, b) == Ordering::Equal);
                    rows.extend(
                        values
                            .into_iter()
                            .map(|v| (buckets.time(b), vec![Cell::Exact(to_value(v))])),
                    );
                }
                MultiFunc::Top(_, n) | MultiFunc::Bottom(_, n) => {
                    let top = matches!(multi, MultiFunc::Top(..));
                    let mut ranked: Vec<&Sample> = points.iter().collect();
                    ranked.sort_by(|a, b| {
                        let by_value = if top {
                            order(&b.1, &a.1)
                        } else {
                            order(&a.1, &b.1)
                        };
                        by_value.then(a.0.cmp(&b.0))
                    });
                    ranked.truncate(*n);
                    ranked.sort_by(|a, b| {
                        a.0.cmp(&b.0).then(if top {
                            order(&b.1, &a.1)
                        } else {
                            order(&a.1, &b.1)
                        })
                    });
                    rows.extend(
                        ranked
                            .into_iter()
                            .map(|(t, v)| (*t, vec![Cell::Exact(to_value(v))])),
                    );
                }
            }
        }
        if rows.is_empty() {
            return Ok(None);
        }
        Ok(Some((vec![name.to_string()], rows)))
    }

    /// Once blocks are compacted, the planner may answer from rollup tiers instead of raw
    /// points (DESIGN.md: when the bucket is a multiple of a tier's resolution, 1 minute at the
    /// finest here; a query without GROUP BY time has one bucket) unless a field condition
    /// needs every point. Rollups keep exact counts, sums, minima, maxima, firsts and lasts,
    /// but medians and percentiles come from quantile sketches: those cells become
    /// [`Cell::Sketch`]. This errs on the side of allowing rollups: a sketch cell also accepts
    /// the exact value.
    fn allow_rollups(
        &self,
        calls: &[Call],
        columns: &[(AggExpr, Option<String>)],
        samples: &BTreeMap<&'static str, Vec<Vec<Sample>>>,
        buckets: &Buckets,
        values: &mut [Vec<(Cell, Option<i64>)>],
    ) -> Result<(), &'static str> {
        const FINEST_TIER: i64 = 60_000_000_000;
        let rollups_possible = self.store.compacted
            && self.range.row_conds.is_empty()
            && (!buckets.grouped || buckets.interval % FINEST_TIER == 0);
        if !rollups_possible {
            return Ok(());
        }
        let lone_percentile = !buckets.grouped
            && columns.len() == 1
            && matches!(&columns[0].0, AggExpr::Call(c) if c.func.percentile_tenths().is_some());
        // A lone percentile must report its point's time, which rollups do not know: the
        // executor reads raw data for it, so the answer is exact.
        if lone_percentile {
            return Ok(());
        }
        for (call, per_bucket) in calls.iter().zip(values.iter_mut()) {
            if call.func != Func::Median && call.func.percentile_tenths().is_none() {
                continue;
            }
            for (b, (cell, _)) in per_bucket.iter_mut().enumerate() {
                let Cell::Exact(value) = cell else { continue };
                let Some(value) = value.as_f64() else {
                    continue;
                };
                let mut numbers: Vec<f64> = samples[call.field][b]
                    .iter()
                    .filter_map(|(_, v)| v.as_f64())
                    .collect();
                numbers.sort_by(f64::total_cmp);
                let n = numbers.len();
                // A median of two ranks is off by at most the accuracy times their magnitudes.
                let scale = if call.func == Func::Median && n.is_multiple_of(2) && n > 0 {
                    (numbers[n / 2 - 1].abs() + numbers[n / 2].abs()) / 2.0
                } else {
                    value.abs()
                };
                *cell = Cell::Sketch { value, scale };
            }
        }
        Ok(())
    }

    /// Rows of single-value aggregates: one per bucket, FILL applied.
    fn bucket_rows(
        &self,
        calls: &[Call],
        samples: &BTreeMap<&'static str, Vec<Vec<Sample>>>,
        buckets: &Buckets,
    ) -> Result<Option<NamedRows>, &'static str> {
        let query = self.query;
        let Select::Aggregates(columns) = &query.select else {
            return Ok(None);
        };
        let fill = query.fill.unwrap_or(Fill::Null);
        let empty: Vec<bool> = (0..buckets.count)
            .map(|b| calls.iter().all(|c| samples[c.field][b].is_empty()))
            .collect();
        if empty.iter().all(|e| *e) {
            return Ok(None);
        }
        // Each call's value (and chosen point's time, for selectors) per bucket.
        let mut values: Vec<Vec<(Cell, Option<i64>)>> = Vec::with_capacity(calls.len());
        for call in calls {
            let kind = self
                .kinds
                .get(call.field)
                .copied()
                .unwrap_or(FieldKind::Float);
            let mut per_bucket = Vec::with_capacity(buckets.count);
            for b in 0..buckets.count {
                let points = &samples[call.field][b];
                if empty[b] {
                    if call.func == Func::CountDistinct && fill != Fill::None {
                        per_bucket.push((Cell::Exact(Value::Integer(0)), None));
                    } else {
                        per_bucket.push((Cell::Null, None));
                    }
                    continue;
                }
                per_bucket.push(reduce(call.func, kind, points));
            }
            values.push(per_bucket);
        }
        self.allow_rollups(calls, columns, samples, buckets, &mut values)?;
        let single_selector = !buckets.grouped
            && columns.len() == 1
            && matches!(&columns[0].0, AggExpr::Call(c) if c.func.is_selector());
        let names = unique_names(
            columns
                .iter()
                .map(|(expr, alias)| alias.clone().unwrap_or_else(|| expr.default_name()))
                .collect(),
        );
        let times: Vec<i64> = (0..buckets.count).map(|b| buckets.time(b)).collect();
        let mut table: Vec<Vec<Cell>> = Vec::with_capacity(columns.len());
        let mut first_call = 0;
        for (expr, _) in columns {
            let mut column: Vec<Cell> = (0..buckets.count)
                .map(|b| {
                    let mut next_call = first_call;
                    evaluate_expr(expr, &values, b, &mut next_call)
                })
                .collect();
            let mut own_calls = Vec::new();
            expr.calls(&mut own_calls);
            first_call += own_calls.len();
            apply_fill(&mut column, &empty, &times, fill)?;
            table.push(column);
        }
        let mut rows = Vec::new();
        for b in 0..buckets.count {
            if fill == Fill::None && empty[b] {
                continue;
            }
            let time = if single_selector {
                values[0][b].1.unwrap_or(times[b])
            } else {
                times[b]
            };
            rows.push((time, table.iter().map(|column| column[b].clone()).collect()));
        }
        Ok(Some((names, rows)))
    }
}

/// Evaluates an output expression for one bucket; `next_call` walks the calls in the order
/// [`AggExpr::calls`] lists them.
fn evaluate_expr(
    expr: &AggExpr,
    values: &[Vec<(Cell, Option<i64>)>],
    b: usize,
    next_call: &mut usize,
) -> Cell {
    match expr {
        AggExpr::Call(_) => {
            let cell = values[*next_call][b].0.clone();
            *next_call += 1;
            cell
        }
        AggExpr::Int(i) => Cell::Exact(Value::Integer(*i)),
        AggExpr::Float(f) => Cell::Exact(Value::Float(*f)),
        AggExpr::Binary(op, lhs, rhs) => {
            let lhs = evaluate_expr(lhs, values, b, next_call);
            let rhs = evaluate_expr(rhs, values, b, next_call);
            arithmetic(*op, &lhs, &rhs)
        }
    }
}

/// A cell as a number with the magnitude its error is relative to; `None` when not numeric.
fn numeric(cell: &Cell) -> Option<(f64, f64, bool)> {
    match cell {
        Cell::Exact(Value::Integer(i)) => Some((*i as f64, 0.0, true)),
        Cell::Exact(Value::Unsigned(u)) => Some((*u as f64, 0.0, true)),
        Cell::Exact(Value::Float(f)) => Some((*f, 0.0, true)),
        Cell::Approx { value, scale } => Some((*value, *scale, false)),
        _ => None,
    }
}

/// Arithmetic as documented: integers stay integers for + - * % (overflow gives null), `/`
/// divides as floats, a float makes a float, division or modulo by zero and null operands
/// give null.
fn arithmetic(op: ArithOp, lhs: &Cell, rhs: &Cell) -> Cell {
    let single = |cell: &Cell| match cell {
        Cell::OneOf(values) if values.iter().all(|v| same_value(v, &values[0])) => {
            Cell::Exact(values[0].clone())
        }
        other => other.clone(),
    };
    let (lhs, rhs) = (single(lhs), single(rhs));
    if lhs == Cell::Null || rhs == Cell::Null {
        return Cell::Null;
    }
    if matches!(lhs, Cell::Any | Cell::OneOf(_) | Cell::Sketch { .. })
        || matches!(rhs, Cell::Any | Cell::OneOf(_) | Cell::Sketch { .. })
    {
        return Cell::Any;
    }
    if let (Cell::Exact(Value::Integer(a)), Cell::Exact(Value::Integer(b))) = (&lhs, &rhs)
        && op != ArithOp::Div
    {
        let result = match op {
            ArithOp::Add => a.checked_add(*b),
            ArithOp::Sub => a.checked_sub(*b),
            ArithOp::Mul => a.checked_mul(*b),
            ArithOp::Mod => a.checked_rem(*b),
            ArithOp::Div => None,
        };
        return result.map_or(Cell::Null, |v| Cell::Exact(Value::Integer(v)));
    }
    let (Some((a, scale_a, exact_a)), Some((b, scale_b, exact_b))) = (numeric(&lhs), numeric(&rhs))
    else {
        return Cell::Null;
    };
    if exact_a && exact_b {
        let result = match op {
            ArithOp::Add => a + b,
            ArithOp::Sub => a - b,
            ArithOp::Mul => a * b,
            ArithOp::Div if b == 0.0 => return Cell::Null,
            ArithOp::Div => a / b,
            ArithOp::Mod if b == 0.0 => return Cell::Null,
            ArithOp::Mod => a % b,
        };
        return Cell::Exact(Value::Float(result));
    }
    // One operand carries rounding: bound how far it can move the result.
    let scale_a = scale_a.max(a.abs());
    let scale_b = scale_b.max(b.abs());
    match op {
        ArithOp::Add => Cell::Approx {
            value: a + b,
            scale: scale_a + scale_b,
        },
        ArithOp::Sub => Cell::Approx {
            value: a - b,
            scale: scale_a + scale_b,
        },
        ArithOp::Mul => Cell::Approx {
            value: a * b,
            scale: scale_a * scale_b,
        },
        ArithOp::Div | ArithOp::Mod if b.abs() <= 1e-6 * scale_b => Cell::Any,
        ArithOp::Div => Cell::Approx {
            value: a / b,
            scale: (scale_a + (a / b).abs() * scale_b) / b.abs(),
        },
        // A remainder jumps where the dividend crosses a multiple of the divisor.
        ArithOp::Mod => Cell::Any,
    }
}

/// FILL for one column: only empty buckets (no selected field has a point there) change.
fn apply_fill(
    column: &mut [Cell],
    empty: &[bool],
    times: &[i64],
    fill: Fill,
) -> Result<(), &'static str> {
    match fill {
        Fill::None | Fill::Null => {}
        Fill::Int(n) => {
            for (cell, e) in column.iter_mut().zip(empty) {
                if *e && *cell == Cell::Null {
                    *cell = Cell::Exact(Value::Integer(n));
                }
            }
        }
        Fill::Float(f) => {
            for (cell, e) in column.iter_mut().zip(empty) {
                if *e && *cell == Cell::Null {
                    *cell = Cell::Exact(Value::Float(f));
                }
            }
        }
        Fill::Previous => {
            let mut previous = Cell::Null;
            for (cell, e) in column.iter_mut().zip(empty) {
                if *e && *cell == Cell::Null {
                    *cell = previous.clone();
                } else {
                    previous = cell.clone();
                }
            }
        }
        Fill::Linear => {
            let known: Vec<usize> = (0..column.len())
                .filter(|&b| column[b] != Cell::Null)
                .collect();
            for b in 0..column.len() {
                if !empty[b] || column[b] != Cell::Null {
                    continue;
                }
                let before = known.iter().rev().find(|&&k| k < b);
                let after = known.iter().find(|&&k| k > b);
                let (Some(&a), Some(&z)) = (before, after) else {
                    continue;
                };
                column[b] = interpolate(&column[a], &column[z], times[a], times[z], times[b])?;
            }
        }
    }
    Ok(())
}

/// The value at `t` on the line through the two known buckets; integers truncate toward
/// zero, computed exactly.
fn interpolate(
    from: &Cell,
    to: &Cell,
    t_from: i64,
    t_to: i64,
    t: i64,
) -> Result<Cell, &'static str> {
    // Beyond 2^53 the executor's interpolation (in floats) cannot be exact; any value will do.
    const EXACT_IN_FLOATS: f64 = 9_007_199_254_740_992.0;
    let exact_line = |a: i128, z: i128| -> i128 {
        let span = i128::from(t_to - t_from);
        (a * span + (z - a) * i128::from(t - t_from)) / span
    };
    match (from, to) {
        (Cell::Exact(Value::Integer(a)), Cell::Exact(Value::Integer(z))) => {
            if (*a as f64).abs() > EXACT_IN_FLOATS || (*z as f64).abs() > EXACT_IN_FLOATS {
                return Ok(Cell::Any);
            }
            return Ok(Cell::Exact(Value::Integer(
                exact_line(i128::from(*a), i128::from(*z)) as i64,
            )));
        }
        (Cell::Exact(Value::Unsigned(a)), Cell::Exact(Value::Unsigned(z))) => {
            if *a as f64 > EXACT_IN_FLOATS || *z as f64 > EXACT_IN_FLOATS {
                return Ok(Cell::Any);
            }
            return Ok(Cell::Exact(Value::Unsigned(
                exact_line(i128::from(*a), i128::from(*z)) as u64,
            )));
        }
        _ => {}
    }
    if matches!(from, Cell::Any | Cell::OneOf(_) | Cell::Sketch { .. })
        || matches!(to, Cell::Any | Cell::OneOf(_) | Cell::Sketch { .. })
    {
        return Ok(Cell::Any);
    }
    Ok(match (numeric(from), numeric(to)) {
        (Some((a, scale_a, _)), Some((z, scale_z, _))) => {
            let fraction = (t - t_from) as f64 / (t_to - t_from) as f64;
            Cell::Approx {
                value: a + (z - a) * fraction,
                scale: scale_a.max(a.abs()) + scale_z.max(z.abs()),
            }
        }
        // Strings and booleans do not interpolate.
        _ => Cell::Null,
    })
}

/// The exact sum of integer or unsigned points; `None` for floats.
fn exact_sum(points: &[Sample]) -> Option<i128> {
    points
        .iter()
        .map(|(_, v)| match v {
            Val::Int(i) => Some(i128::from(*i)),
            Val::Uint(u) => Some(i128::from(*u)),
            _ => None,
        })
        .sum()
}

/// Reduces the points of one bucket with one function. Returns the cell and, for selectors,
/// the chosen point's time. `points` is not empty unless the bucket holds other fields' points.
fn reduce(func: Func, kind: FieldKind, points: &[Sample]) -> (Cell, Option<i64>) {
    let n = points.len();
    let numbers: Vec<f64> = points.iter().filter_map(|(_, v)| v.as_f64()).collect();
    match func {
        Func::Count => return (Cell::Exact(Value::Integer(n as i64)), None),
        Func::CountDistinct => {
            let mut values: Vec<&Val> = points.iter().map(|(_, v)| v).collect();
            values.sort_by(|a, b| order(a, b));
            values.dedup_by(|a, b| order(a, b) == Ordering::Equal);
            return (Cell::Exact(Value::Integer(values.len() as i64)), None);
        }
        _ => {}
    }
    if n == 0 {
        return (Cell::Null, None);
    }
    match func {
        Func::Count | Func::CountDistinct => unreachable!("handled above"),
        Func::Sum => match exact_sum(points) {
            Some(total) => {
                let fits = match kind {
                    FieldKind::Unsigned => u64::try_from(total).ok().map(Value::Unsigned),
                    _ => i64::try_from(total).ok().map(Value::Integer),
                };
                match fits {
                    Some(value) => (Cell::Exact(value), None),
                    None => (
                        Cell::Approx {
                            value: total as f64,
                            scale: 0.0,
                        },
                        None,
                    ),
                }
            }
            None => (
                Cell::Approx {
                    value: numbers.iter().sum(),
                    scale: numbers.iter().map(|x| x.abs()).sum(),
                },
                None,
            ),
        },
        Func::Mean => {
            // Integers are summed exactly first.
            let (total, scale) = match exact_sum(points) {
                Some(total) => (total as f64, 0.0),
                None => (
                    numbers.iter().sum::<f64>(),
                    numbers.iter().map(|x| x.abs()).sum::<f64>(),
                ),
            };
            (
                Cell::Approx {
                    value: total / n as f64,
                    scale: scale / n as f64,
                },
                None,
            )
        }
        Func::Median => {
            let mut sorted = numbers.clone();
            sorted.sort_by(f64::total_cmp);
            let middle = if n % 2 == 1 {
                sorted[n / 2]
            } else {
                (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
            };
            (Cell::Exact(Value::Float(middle)), None)
        }
        Func::Min | Func::Max => {
            let best = points
                .iter()
                .min_by(|a, b| {
                    let by_value = if func == Func::Min {
                        order(&a.1, &b.1)
                    } else {
                        order(&b.1, &a.1)
                    };
                    by_value.then(a.0.cmp(&b.0))
                })
                .expect("points is not empty");
            (Cell::Exact(to_value(&best.1)), Some(best.0))
        }
        Func::First | Func::Last => {
            let time = if func == Func::First {
                points.iter().map(|(t, _)| *t).min()
            } else {
                points.iter().map(|(t, _)| *t).max()
            }
            .expect("points is not empty");
            let candidates: Vec<Value> = points
                .iter()
                .filter(|(t, _)| *t == time)
                .map(|(_, v)| to_value(v))
                .collect();
            let cell = if candidates.iter().all(|v| same_value(v, &candidates[0])) {
                Cell::Exact(candidates[0].clone())
            } else {
                Cell::OneOf(candidates)
            };
            (cell, Some(time))
        }
        Func::Spread => {
            let lowest = points
                .iter()
                .map(|(_, v)| v)
                .min_by(|a, b| order(a, b))
                .expect("not empty");
            let highest = points
                .iter()
                .map(|(_, v)| v)
                .max_by(|a, b| order(a, b))
                .expect("not empty");
            let cell = match (lowest, highest) {
                (Val::Int(lo), Val::Int(hi)) => {
                    let difference = i128::from(*hi) - i128::from(*lo);
                    match i64::try_from(difference) {
                        Ok(d) => Cell::Exact(Value::Integer(d)),
                        // Too large for an integer: a float, rounded.
                        Err(_) => Cell::Approx {
                            value: difference as f64,
                            scale: (*hi as f64).abs() + (*lo as f64).abs(),
                        },
                    }
                }
                (Val::Uint(lo), Val::Uint(hi)) => Cell::Exact(Value::Unsigned(hi - lo)),
                (Val::Float(lo), Val::Float(hi)) => Cell::Exact(Value::Float(hi - lo)),
                _ => Cell::Null,
            };
            (cell, None)
        }
        Func::Stddev => {
            if n < 2 {
                return (Cell::Null, None);
            }
            let mean = numbers.iter().sum::<f64>() / n as f64;
            let squares: f64 = numbers.iter().map(|x| (x - mean) * (x - mean)).sum();
            let largest = numbers.iter().fold(0.0f64, |m, x| m.max(x.abs()));
            (
                Cell::Approx {
                    value: (squares / (n - 1) as f64).sqrt(),
                    scale: largest,
                },
                None,
            )
        }
        Func::Mode => {
            let mut sorted: Vec<&Val> = points.iter().map(|(_, v)| v).collect();
            sorted.sort_by(|a, b| order(a, b));
            let mut best: Option<(&Val, usize)> = None;
            let mut i = 0;
            while i < sorted.len() {
                let mut j = i;
                while j < sorted.len() && order(sorted[j], sorted[i]) == Ordering::Equal {
                    j += 1;
                }
                // Strictly more: among equally frequent values the smallest, seen first, stays.
                if best.is_none_or(|(_, count)| j - i > count) {
                    best = Some((sorted[i], j - i));
                }
                i = j;
            }
            (
                best.map_or(Cell::Null, |(v, _)| Cell::Exact(to_value(v))),
                None,
            )
        }
        Func::Percentile(_) | Func::P50 | Func::P90 | Func::P95 | Func::P99 => {
            let tenths = i128::from(func.percentile_tenths().expect("a percentile function"));
            let mut sorted: Vec<&Sample> = points.iter().collect();
            sorted.sort_by(|a, b| order(&a.1, &b.1).then(a.0.cmp(&b.0)));
            // Nearest rank floor(n * p / 100 + 0.5) with p = tenths / 10, in integers.
            let rank = (2 * n as i128 * tenths + 1000).div_euclid(2000);
            if rank < 1 || rank > n as i128 {
                return (Cell::Null, None);
            }
            let (t, v) = sorted[(rank - 1) as usize];
            (Cell::Exact(to_value(v)), Some(*t))
        }
    }
}
