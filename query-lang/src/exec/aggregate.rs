//! Aggregate functions over buckets: accumulators that take whole decoded slices (one dynamic
//! dispatch per bucket run, tight loops inside), chunk statistics where they answer exactly,
//! and merge with each other so series can be scanned in parallel.

use std::cmp::Ordering;

use tally_engine::{
    ChunkStats, ColumnValues, FieldType, PendingSketches, RollupParts, RollupRows, Sketch,
    ValueStats,
};

use super::value::Value;

/// The aggregate functions.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum AggKind {
    Count,
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
    Distinct,
    CountDistinct,
    Percentile(f64),
    Top(usize),
    Bottom(usize),
}

impl AggKind {
    /// Whether the function selects one of its input points (its time can stand for the row).
    pub(crate) fn is_selector(self) -> bool {
        matches!(
            self,
            AggKind::Min | AggKind::Max | AggKind::First | AggKind::Last | AggKind::Percentile(_)
        )
    }

    /// The parts of rollup rows that [`Accumulator::add_rollup`] reads for the function.
    pub(crate) fn rollup_parts(self) -> RollupParts {
        let only = |part: fn(&mut RollupParts)| {
            let mut parts = RollupParts::COUNTS;
            part(&mut parts);
            parts
        };
        match self {
            AggKind::Count => RollupParts::COUNTS,
            AggKind::Sum | AggKind::Mean => only(|p| p.sums = true),
            AggKind::Min | AggKind::Max | AggKind::Spread => only(|p| p.extremes = true),
            AggKind::First | AggKind::Last => only(|p| p.edges = true),
            AggKind::Median | AggKind::Percentile(_) => only(|p| {
                p.extremes = true;
                p.sketches = true;
            }),
            // Not answered from rollups; should the planner change, every part is there.
            _ => RollupParts::ALL,
        }
    }

    /// Whether the function needs every value (or, over rollup rows, their quantile
    /// sketches) rather than a running summary.
    pub(crate) fn needs_samples(self) -> bool {
        !matches!(
            self,
            AggKind::Count
                | AggKind::Sum
                | AggKind::Mean
                | AggKind::Min
                | AggKind::Max
                | AggKind::First
                | AggKind::Last
                | AggKind::Spread
                | AggKind::Stddev
        )
    }

    /// Whether the function gives several rows per bucket.
    pub(crate) fn is_multi_row(self) -> bool {
        matches!(
            self,
            AggKind::Distinct | AggKind::Top(_) | AggKind::Bottom(_)
        )
    }

    /// Whether a chunk's statistics answer the function exactly for a chunk wholly inside a
    /// bucket: string chunks keep no values in their statistics, and an integer sum that
    /// overflowed inside the chunk was not kept (sum and mean then decode the chunk).
    pub(crate) fn answers_from_stats(self, stats: &ValueStats) -> bool {
        let numeric = matches!(
            stats,
            ValueStats::Float { .. } | ValueStats::Integer { .. } | ValueStats::Unsigned { .. }
        );
        match self {
            AggKind::Count => true,
            AggKind::Sum | AggKind::Mean => matches!(
                stats,
                ValueStats::Float { .. }
                    | ValueStats::Integer { sum: Some(_), .. }
                    | ValueStats::Unsigned { sum: Some(_), .. }
            ),
            AggKind::Min | AggKind::Max | AggKind::Spread => numeric,
            AggKind::First | AggKind::Last => {
                numeric || matches!(stats, ValueStats::Boolean { .. })
            }
            _ => false,
        }
    }

    /// Why the function cannot take a field of type `t`, if it cannot.
    pub(crate) fn check_type(self, name: &str, t: FieldType) -> Result<(), String> {
        let numeric = t.is_numeric();
        let ok = match self {
            AggKind::Count
            | AggKind::First
            | AggKind::Last
            | AggKind::Distinct
            | AggKind::CountDistinct
            | AggKind::Mode => true,
            _ => numeric,
        };
        if ok {
            Ok(())
        } else {
            Err(format!(
                "{name}() cannot take a {t} field; it needs a float, integer or unsigned field"
            ))
        }
    }
}

/// A number of any of the numeric types, compared exactly.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Num {
    F(f64),
    I(i64),
    U(u64),
}

impl Num {
    fn cmp(self, other: Num) -> Ordering {
        match (self, other) {
            (Num::I(a), Num::I(b)) => a.cmp(&b),
            (Num::U(a), Num::U(b)) => a.cmp(&b),
            (Num::F(a), Num::F(b)) => a.total_cmp(&b),
            (a, b) => a.f64().total_cmp(&b.f64()),
        }
    }

    fn f64(self) -> f64 {
        match self {
            Num::F(v) => v,
            Num::I(v) => v as f64,
            Num::U(v) => v as f64,
        }
    }

    fn value(self) -> Value {
        match self {
            Num::F(v) => Value::Float(v),
            Num::I(v) => Value::Integer(v),
            Num::U(v) => Value::Unsigned(v),
        }
    }

    fn is_nan(self) -> bool {
        matches!(self, Num::F(v) if v.is_nan())
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct SumState {
    float: f64,
    int: i128,
    n: u64,
}

#[derive(Clone, Copy, Debug, Default)]
struct Welford {
    n: u64,
    mean: f64,
    m2: f64,
}

impl Welford {
    fn add(&mut self, x: f64) {
        self.n += 1;
        let delta = x - self.mean;
        self.mean += delta / self.n as f64;
        self.m2 += delta * (x - self.mean);
    }

    fn merge(&mut self, o: &Welford) {
        if o.n == 0 {
            return;
        }
        if self.n == 0 {
            *self = *o;
            return;
        }
        let n = self.n + o.n;
        let delta = o.mean - self.mean;
        self.mean += delta * o.n as f64 / n as f64;
        self.m2 += o.m2 + delta * delta * (self.n as f64) * (o.n as f64) / n as f64;
        self.n = n;
    }
}

/// The 0-based rank of the `p`th percentile of `n` values by the nearest-rank method (as
/// InfluxDB picks it); None when it falls below the first value. It may pass the last.
fn nearest_rank(n: u64, p: f64) -> Option<u64> {
    u64::try_from(((n as f64) * p / 100.0 + 0.5).floor() as i64 - 1).ok()
}

/// Why a rollup row cannot feed an aggregate.
#[derive(Debug)]
pub(crate) enum RollupUnfit {
    /// The row's integer sum overflowed, so its exact sum is lost.
    SumOverflowed,
    /// The function cannot be answered from rollup rows (or these rows came without the
    /// sketches it needs).
    Unanswerable(AggKind),
}

impl std::fmt::Display for RollupUnfit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RollupUnfit::SumOverflowed => f.write_str(
                "an integer sum overflowed inside a rollup row of a block whose raw data has expired, so its exact sum is lost; narrow the time range to blocks that still have raw data",
            ),
            RollupUnfit::Unanswerable(kind) => write!(
                f,
                "BUG: {kind:?} was planned on rollup rows that cannot answer it"
            ),
        }
    }
}

/// Per-bucket state of one aggregate over one group.
pub(crate) struct Accumulator {
    kind: AggKind,
    field_type: FieldType,
    state: State,
    /// Percentiles and medians over rollup rows: the rows' quantile sketches by bucket, merged
    /// when the bucket's value is computed (with the bucket's raw samples added) into
    /// `merged`, which every bucket reuses.
    rollup_sketches: PendingSketches,
    merged: Sketch,
    /// What made a value impossible to compute (a damaged sketch), for the query to report.
    error: Option<String>,
    /// Whether min and max must know which point they chose (a selector whose time is the
    /// row's); with GROUP BY time the bucket's time stands instead, and finding the point is
    /// skipped.
    point_times: bool,
}

enum State {
    Count(Vec<u64>),
    Sum(Vec<SumState>),
    /// (value, time): min or max, ignoring NaN.
    Extreme(Vec<Option<(Num, i64)>>),
    /// (time, value): first or last.
    Edge(Vec<Option<(i64, Value)>>),
    Spread(Vec<Option<(Num, Num)>>),
    Stddev(Vec<Welford>),
    /// Every (time, value), for functions that need the whole distribution.
    Samples(Vec<Vec<(i64, Value)>>),
}

fn num_at(values: &ColumnValues, i: usize) -> Option<Num> {
    match values {
        ColumnValues::Float(v) => v.get(i).map(|x| Num::F(*x)),
        ColumnValues::Integer(v) => v.get(i).map(|x| Num::I(*x)),
        ColumnValues::Unsigned(v) => v.get(i).map(|x| Num::U(*x)),
        _ => None,
    }
}

/// The smallest (or largest) float of a run and its index, skipping NaN; the earliest wins ties: a branch-free pass finds the value (eight lanes, so
/// it vectorises; `f64::max` and `min` return the number when one side is NaN), a second
/// finds its first occurrence.
fn extreme_f64(run: &[f64], want_max: bool) -> Option<(f64, usize)> {
    let best = extreme_f64_value(run, want_max)?;
    // Blocks compared without branches, so the search for the value vectorises too.
    let block = run
        .chunks(8)
        .position(|block| block.iter().fold(false, |found, &x| found | (x == best)))?;
    let i = block * 8 + run[block * 8..].iter().position(|&x| x == best)?;
    Some((run[i], i))
}

/// The smallest (or largest) float of a run, skipping NaN; `None` when every value is NaN.
fn extreme_f64_value(run: &[f64], want_max: bool) -> Option<f64> {
    let pick = |a: f64, b: f64| if want_max { a.max(b) } else { a.min(b) };
    let start = if want_max {
        f64::NEG_INFINITY
    } else {
        f64::INFINITY
    };
    let mut lanes = [start; 8];
    let mut blocks = run.chunks_exact(8);
    for block in &mut blocks {
        for (lane, &x) in lanes.iter_mut().zip(block) {
            *lane = pick(*lane, x);
        }
    }
    let best = blocks
        .remainder()
        .iter()
        .chain(&lanes)
        .fold(start, |a, &x| pick(a, x));
    // The start value itself is an answer only when a value equals it; every value NaN
    // leaves it with none.
    if best == start && !run.contains(&start) {
        return None;
    }
    Some(best)
}

/// The smallest (or largest) integer of a run and its index, the earliest winning ties: the value in one vectorised pass, then its first occurrence.
fn extreme_int<T: Copy + Ord>(run: &[T], want_max: bool) -> Option<(T, usize)> {
    let best = if want_max {
        *run.iter().max()?
    } else {
        *run.iter().min()?
    };
    let i = run.iter().position(|&x| x == best)?;
    Some((best, i))
}

fn value_at(values: &ColumnValues, i: usize) -> Value {
    values.get(i).map_or(Value::Null, |v| Value::from_field(&v))
}

/// Offers `(x, t)` to a min or max slot. NaN is ignored unless every value is NaN: a NaN only
/// fills an empty slot and gives way to any number; equal values go to the earlier point.
fn offer_extreme(slot: &mut Option<(Num, i64)>, want_max: bool, x: Num, t: i64) {
    let better = match *slot {
        None => true,
        Some((cur, cur_t)) => match (cur.is_nan(), x.is_nan()) {
            (false, true) => false,
            (true, false) => true,
            (true, true) => t < cur_t,
            (false, false) => match x.cmp(cur) {
                Ordering::Equal => t < cur_t,
                Ordering::Greater => want_max,
                Ordering::Less => !want_max,
            },
        },
    };
    if better {
        *slot = Some((x, t));
    }
}

/// Widens a spread slot by `(lo, hi)`; a NaN `lo` stands for values that were all NaN, which
/// count only while no number has been seen (the spread is then NaN).
fn offer_spread(slot: &mut Option<(Num, Num)>, lo: Num, hi: Num) {
    *slot = Some(match *slot {
        None => (lo, hi),
        Some(current) if lo.is_nan() => current,
        Some((a, _)) if a.is_nan() => (lo, hi),
        Some((a, z)) => (
            if lo.cmp(a) == Ordering::Less { lo } else { a },
            if hi.cmp(z) == Ordering::Greater {
                hi
            } else {
                z
            },
        ),
    });
}

impl Accumulator {
    pub(crate) fn new(kind: AggKind, field_type: FieldType, buckets: usize) -> Accumulator {
        let state = match kind {
            AggKind::Count => State::Count(vec![0; buckets]),
            AggKind::Sum | AggKind::Mean => State::Sum(vec![SumState::default(); buckets]),
            AggKind::Min | AggKind::Max => State::Extreme(vec![None; buckets]),
            AggKind::First | AggKind::Last => State::Edge(vec![None; buckets]),
            AggKind::Spread => State::Spread(vec![None; buckets]),
            AggKind::Stddev => State::Stddev(vec![Welford::default(); buckets]),
            kind => {
                debug_assert!(kind.needs_samples());
                State::Samples(vec![Vec::new(); buckets])
            }
        };
        Accumulator {
            kind,
            field_type,
            state,
            rollup_sketches: PendingSketches::default(),
            merged: Sketch::default(),
            error: None,
            point_times: true,
        }
    }

    /// The accumulator, for results whose rows take their bucket's time (GROUP BY time): min
    /// and max then keep the value only, with the time of their run's first point.
    pub(crate) fn without_point_times(mut self) -> Accumulator {
        self.point_times = false;
        self
    }

    /// Whether rollup rows can stand for the points of a bucket for this function (exactly,
    /// or for percentiles within the sketch's relative error).
    pub(crate) fn rollup_capable(kind: AggKind) -> bool {
        matches!(
            kind,
            AggKind::Count
                | AggKind::Sum
                | AggKind::Mean
                | AggKind::Min
                | AggKind::Max
                | AggKind::First
                | AggKind::Last
                | AggKind::Spread
                | AggKind::Median
                | AggKind::Percentile(_)
        )
    }

    /// Makes room for the rows of `rows` that [`Accumulator::add_rollup`] will keep.
    pub(crate) fn reserve_rollup(&mut self, rows: &RollupRows) {
        if let State::Samples(_) = self.state {
            self.rollup_sketches.reserve_for(rows);
        }
    }

    /// Adds rollup row `i` to bucket `b`; an error when the row cannot answer exactly (an
    /// integer sum that overflowed within the row) or at all (which the planner rules out).
    pub(crate) fn add_rollup(
        &mut self,
        b: usize,
        rows: &RollupRows,
        i: usize,
    ) -> Result<(), RollupUnfit> {
        let kind = self.kind;
        let num = |v: &ColumnValues| num_at(v, i);
        match &mut self.state {
            State::Count(c) => c[b] += rows.counts[i],
            State::Sum(s) => {
                if rows.sum_overflow.get(i).copied().unwrap_or(false) {
                    return Err(RollupUnfit::SumOverflowed);
                }
                let s = &mut s[b];
                match &rows.sum {
                    ColumnValues::Float(v) => {
                        s.float = if s.n == 0 { v[i] } else { s.float + v[i] }
                    }
                    ColumnValues::Integer(v) => s.int += i128::from(v[i]),
                    ColumnValues::Unsigned(v) => s.int += i128::from(v[i]),
                    _ => return Err(RollupUnfit::Unanswerable(kind)),
                }
                s.n += rows.counts[i];
            }
            State::Extreme(e) => {
                let Some(x) = num(if kind == AggKind::Max {
                    &rows.max
                } else {
                    &rows.min
                }) else {
                    return Err(RollupUnfit::Unanswerable(kind));
                };
                offer_extreme(&mut e[b], kind == AggKind::Max, x, rows.times[i]);
            }
            State::Edge(e) => {
                let (t, v) = if kind == AggKind::First {
                    (rows.first_times[i], value_at(&rows.first, i))
                } else {
                    (rows.last_times[i], value_at(&rows.last, i))
                };
                let replace = match &e[b] {
                    None => true,
                    Some((cur, _)) => {
                        if kind == AggKind::First {
                            t < *cur
                        } else {
                            t > *cur
                        }
                    }
                };
                if replace {
                    e[b] = Some((t, v));
                }
            }
            State::Spread(s) => {
                let (Some(lo), Some(hi)) = (num(&rows.min), num(&rows.max)) else {
                    return Err(RollupUnfit::Unanswerable(kind));
                };
                offer_spread(&mut s[b], lo, hi);
            }
            State::Samples(_) => {
                if !self.rollup_sketches.push(b, rows, i) {
                    return Err(RollupUnfit::Unanswerable(kind));
                }
            }
            State::Stddev(_) => return Err(RollupUnfit::Unanswerable(kind)),
        }
        Ok(())
    }

    /// Adds the points `range` of a decoded run, all in bucket `b`.
    pub(crate) fn add_slice(
        &mut self,
        b: usize,
        ts: &[i64],
        values: &ColumnValues,
        range: std::ops::Range<usize>,
    ) {
        if range.is_empty() {
            return;
        }
        let kind = self.kind;
        match &mut self.state {
            State::Count(c) => c[b] += range.len() as u64,
            State::Sum(s) => {
                let s = &mut s[b];
                s.n += range.len() as u64;
                match values {
                    ColumnValues::Float(v) => {
                        // Sum the run on its own, in time order, then add it: for a run that is a
                        // whole chunk this is exactly the chunk's statistics sum, so the decoding
                        // and statistics paths give identical results.
                        let run = &v[range];
                        let mut part = run[0];
                        for x in &run[1..] {
                            part += *x;
                        }
                        s.float = if s.n == run.len() as u64 {
                            part
                        } else {
                            s.float + part
                        };
                    }
                    ColumnValues::Integer(v) => {
                        s.int += v[range].iter().map(|x| i128::from(*x)).sum::<i128>()
                    }
                    ColumnValues::Unsigned(v) => {
                        s.int += v[range].iter().map(|x| i128::from(*x)).sum::<i128>()
                    }
                    _ => {}
                }
            }
            State::Extreme(e) => {
                let want_max = kind == AggKind::Max;
                // Typed loops with native comparisons: the hot path of min() and max().
                let found = match values {
                    // A zero's sign is the chosen point's: only then is the point looked for.
                    ColumnValues::Float(v) if !self.point_times => {
                        match extreme_f64_value(&v[range.clone()], want_max) {
                            Some(0.0) => extreme_f64(&v[range.clone()], want_max)
                                .map(|(x, i)| (Num::F(x), i)),
                            found => found.map(|x| (Num::F(x), 0)),
                        }
                    }
                    ColumnValues::Float(v) => {
                        extreme_f64(&v[range.clone()], want_max).map(|(x, i)| (Num::F(x), i))
                    }
                    ColumnValues::Integer(v) => {
                        extreme_int(&v[range.clone()], want_max).map(|(x, i)| (Num::I(x), i))
                    }
                    ColumnValues::Unsigned(v) => {
                        extreme_int(&v[range.clone()], want_max).map(|(x, i)| (Num::U(x), i))
                    }
                    _ => None,
                };
                match found {
                    Some((x, i)) => offer_extreme(&mut e[b], want_max, x, ts[range.start + i]),
                    // Every value of the run is NaN.
                    None if matches!(values, ColumnValues::Float(_)) => {
                        offer_extreme(&mut e[b], want_max, Num::F(f64::NAN), ts[range.start])
                    }
                    None => {}
                }
            }
            State::Edge(e) => {
                let (i, t) = if kind == AggKind::First {
                    (range.start, ts[range.start])
                } else {
                    (range.end - 1, ts[range.end - 1])
                };
                let replace = match &e[b] {
                    None => true,
                    Some((cur, _)) => {
                        if kind == AggKind::First {
                            t < *cur
                        } else {
                            t > *cur
                        }
                    }
                };
                if replace {
                    e[b] = Some((t, value_at(values, i)));
                }
            }
            State::Spread(s) => {
                let found = match values {
                    ColumnValues::Float(v) => {
                        let run = &v[range.clone()];
                        extreme_f64(run, false)
                            .zip(extreme_f64(run, true))
                            .map(|((lo, _), (hi, _))| (Num::F(lo), Num::F(hi)))
                    }
                    ColumnValues::Integer(v) => {
                        let run = &v[range.clone()];
                        extreme_int(run, false)
                            .zip(extreme_int(run, true))
                            .map(|((lo, _), (hi, _))| (Num::I(lo), Num::I(hi)))
                    }
                    ColumnValues::Unsigned(v) => {
                        let run = &v[range.clone()];
                        extreme_int(run, false)
                            .zip(extreme_int(run, true))
                            .map(|((lo, _), (hi, _))| (Num::U(lo), Num::U(hi)))
                    }
                    _ => None,
                };
                match found {
                    Some((lo, hi)) => offer_spread(&mut s[b], lo, hi),
                    // Every value of the run is NaN.
                    None if matches!(values, ColumnValues::Float(_)) => {
                        offer_spread(&mut s[b], Num::F(f64::NAN), Num::F(f64::NAN))
                    }
                    None => {}
                }
            }
            State::Stddev(w) => {
                for i in range {
                    if let Some(x) = num_at(values, i) {
                        w[b].add(x.f64());
                    }
                }
            }
            State::Samples(s) => {
                for i in range {
                    s[b].push((ts[i], value_at(values, i)));
                }
            }
        }
    }

    /// Adds a whole chunk from its statistics; false when they cannot answer exactly (the
    /// caller decodes instead).
    pub(crate) fn add_stats(&mut self, b: usize, stats: &ChunkStats) -> bool {
        let kind = self.kind;
        match (&mut self.state, &stats.values) {
            (State::Count(c), _) => c[b] += u64::from(stats.count),
            (State::Sum(s), ValueStats::Float { sum, .. }) => {
                s[b].float = if s[b].n == 0 { *sum } else { s[b].float + *sum };
                s[b].n += u64::from(stats.count);
            }
            (State::Sum(s), ValueStats::Integer { sum: Some(sum), .. }) => {
                s[b].int += i128::from(*sum);
                s[b].n += u64::from(stats.count);
            }
            (State::Sum(s), ValueStats::Unsigned { sum: Some(sum), .. }) => {
                s[b].int += i128::from(*sum);
                s[b].n += u64::from(stats.count);
            }
            (State::Edge(e), values) => {
                let (t, v) = match (kind, values) {
                    (AggKind::First, ValueStats::Float { first, .. }) => {
                        (stats.min_time, Value::Float(*first))
                    }
                    (AggKind::First, ValueStats::Integer { first, .. }) => {
                        (stats.min_time, Value::Integer(*first))
                    }
                    (AggKind::First, ValueStats::Unsigned { first, .. }) => {
                        (stats.min_time, Value::Unsigned(*first))
                    }
                    (AggKind::First, ValueStats::Boolean { first, .. }) => {
                        (stats.min_time, Value::Boolean(*first))
                    }
                    (AggKind::Last, ValueStats::Float { last, .. }) => {
                        (stats.max_time, Value::Float(*last))
                    }
                    (AggKind::Last, ValueStats::Integer { last, .. }) => {
                        (stats.max_time, Value::Integer(*last))
                    }
                    (AggKind::Last, ValueStats::Unsigned { last, .. }) => {
                        (stats.max_time, Value::Unsigned(*last))
                    }
                    (AggKind::Last, ValueStats::Boolean { last, .. }) => {
                        (stats.max_time, Value::Boolean(*last))
                    }
                    _ => return false,
                };
                let replace = match &e[b] {
                    None => true,
                    Some((cur, _)) => {
                        if kind == AggKind::First {
                            t < *cur
                        } else {
                            t > *cur
                        }
                    }
                };
                if replace {
                    e[b] = Some((t, v));
                }
            }
            // Statistics carry no time for min and max, so a selector that must report the
            // point's time decodes; in GROUP BY time the bucket's time is used instead.
            (State::Extreme(e), values) => {
                let (lo, hi) = match values {
                    ValueStats::Float { min, max, .. } => (Num::F(*min), Num::F(*max)),
                    ValueStats::Integer { min, max, .. } => (Num::I(*min), Num::I(*max)),
                    ValueStats::Unsigned { min, max, .. } => (Num::U(*min), Num::U(*max)),
                    _ => return false,
                };
                // Statistics ignore NaN: a NaN minimum means every value is NaN.
                let x = if kind == AggKind::Max { hi } else { lo };
                offer_extreme(&mut e[b], kind == AggKind::Max, x, stats.min_time);
            }
            (State::Spread(s), values) => {
                let (lo, hi) = match values {
                    ValueStats::Float { min, max, .. } => (Num::F(*min), Num::F(*max)),
                    ValueStats::Integer { min, max, .. } => (Num::I(*min), Num::I(*max)),
                    ValueStats::Unsigned { min, max, .. } => (Num::U(*min), Num::U(*max)),
                    _ => return false,
                };
                offer_spread(&mut s[b], lo, hi);
            }
            _ => return false,
        }
        true
    }

    /// Folds another accumulator of the same function and bucket count into this one; `other`
    /// holds later series (ties go to this one).
    pub(crate) fn merge(&mut self, other: Accumulator) {
        let kind = self.kind;
        self.rollup_sketches.append(other.rollup_sketches);
        match (&mut self.state, other.state) {
            (State::Count(a), State::Count(b)) => a.iter_mut().zip(b).for_each(|(x, y)| *x += y),
            (State::Sum(a), State::Sum(b)) => a.iter_mut().zip(b).for_each(|(x, y)| {
                x.float = if x.n == 0 {
                    y.float
                } else if y.n == 0 {
                    x.float
                } else {
                    x.float + y.float
                };
                x.int += y.int;
                x.n += y.n;
            }),
            (State::Extreme(a), State::Extreme(b)) => a.iter_mut().zip(b).for_each(|(x, y)| {
                if let Some((v, t)) = y {
                    offer_extreme(x, kind == AggKind::Max, v, t);
                }
            }),
            (State::Edge(a), State::Edge(b)) => a.iter_mut().zip(b).for_each(|(x, y)| {
                if let Some((t, v)) = y {
                    let replace = match x {
                        None => true,
                        Some((cur, _)) => {
                            if kind == AggKind::First {
                                t < *cur
                            } else {
                                t > *cur
                            }
                        }
                    };
                    if replace {
                        *x = Some((t, v));
                    }
                }
            }),
            (State::Spread(a), State::Spread(b)) => a.iter_mut().zip(b).for_each(|(x, y)| {
                if let Some((lo, hi)) = y {
                    offer_spread(x, lo, hi);
                }
            }),
            (State::Stddev(a), State::Stddev(b)) => {
                a.iter_mut().zip(b).for_each(|(x, y)| x.merge(&y))
            }
            (State::Samples(a), State::Samples(b)) => {
                a.iter_mut().zip(b).for_each(|(x, y)| x.extend(y))
            }
            _ => {}
        }
    }

    /// Why a value could not be computed, once: the query fails with it.
    pub(crate) fn take_error(&mut self) -> Option<String> {
        self.error.take()
    }

    /// Whether bucket `b` saw any point.
    pub(crate) fn has_data(&self, b: usize) -> bool {
        match &self.state {
            State::Count(c) => c[b] > 0,
            State::Sum(s) => s[b].n > 0,
            State::Extreme(e) => e[b].is_some(),
            State::Edge(e) => e[b].is_some(),
            State::Spread(s) => s[b].is_some(),
            State::Stddev(w) => w[b].n > 0,
            State::Samples(s) => !s[b].is_empty() || self.rollup_sketches.has(b),
        }
    }

    /// The single-row result of bucket `b` and, for selectors, the time of the chosen point.
    pub(crate) fn value(&mut self, b: usize) -> (Value, Option<i64>) {
        let field_type = self.field_type;
        let kind = self.kind;
        match &mut self.state {
            State::Count(c) => (Value::Integer(c[b] as i64), None),
            State::Sum(s) => {
                let s = s[b];
                if s.n == 0 {
                    return (Value::Null, None);
                }
                let sum = match field_type {
                    FieldType::Float => Value::Float(s.float),
                    FieldType::Integer => {
                        i64::try_from(s.int).map_or(Value::Float(s.int as f64), Value::Integer)
                    }
                    _ => u64::try_from(s.int).map_or(Value::Float(s.int as f64), Value::Unsigned),
                };
                if kind == AggKind::Mean {
                    let total = if field_type == FieldType::Float {
                        s.float
                    } else {
                        s.int as f64
                    };
                    (Value::Float(total / s.n as f64), None)
                } else {
                    (sum, None)
                }
            }
            State::Extreme(e) => match e[b] {
                Some((v, t)) => (v.value(), Some(t)),
                None => (Value::Null, None),
            },
            State::Edge(e) => match &e[b] {
                Some((t, v)) => (v.clone(), Some(*t)),
                None => (Value::Null, None),
            },
            State::Spread(s) => match s[b] {
                Some((Num::I(lo), Num::I(hi))) => (
                    i64::try_from(i128::from(hi) - i128::from(lo))
                        .map_or(Value::Float(hi as f64 - lo as f64), Value::Integer),
                    None,
                ),
                Some((Num::U(lo), Num::U(hi))) => (Value::Unsigned(hi - lo), None),
                Some((lo, hi)) => (Value::Float(hi.f64() - lo.f64()), None),
                None => (Value::Null, None),
            },
            State::Stddev(w) => {
                let w = w[b];
                if w.n < 2 {
                    (Value::Null, None)
                } else {
                    (Value::Float((w.m2 / (w.n - 1) as f64).sqrt()), None)
                }
            }
            State::Samples(s) if self.rollup_sketches.has(b) => {
                // A percentile keeps the field's type (it selects a value); the estimate of an
                // integer is rounded.
                let typed = |v: f64| match (kind, field_type) {
                    (AggKind::Percentile(_), FieldType::Integer) => {
                        Value::Integer(v.round() as i64)
                    }
                    (AggKind::Percentile(_), FieldType::Unsigned) => {
                        Value::Unsigned(v.round().max(0.0) as u64)
                    }
                    _ => Value::Float(v),
                };
                // Rollup rows alone: a high percentile is found among the sketches' top bins
                // without merging them.
                if let AggKind::Percentile(p) = kind
                    && s[b].is_empty()
                {
                    self.rollup_sketches.group();
                    if let Some(rank) = nearest_rank(self.rollup_sketches.count(b), p)
                        && let Some(v) = self.rollup_sketches.value_at_rank_from_top(b, rank)
                    {
                        return (typed(v), None);
                    }
                }
                // Otherwise from the merged sketches, with this bucket's raw samples added.
                let sketch = &mut self.merged;
                if !self.rollup_sketches.merge_into(b, sketch) {
                    self.error = Some(format!(
                        "a quantile sketch in a rollup row of bucket {b} is damaged; `tally-dump verify` names the file and offset"
                    ));
                    return (Value::Null, None);
                }
                for (_, v) in &s[b] {
                    if let Some(x) = v.as_f64() {
                        sketch.add(x);
                    }
                }
                let sketch = &*sketch;
                let n = sketch.count();
                let value = match kind {
                    AggKind::Percentile(p) => {
                        nearest_rank(n, p).and_then(|rank| sketch.value_at_rank(rank))
                    }
                    AggKind::Median if n > 0 => {
                        if n % 2 == 1 {
                            sketch.value_at_rank(n / 2)
                        } else {
                            sketch
                                .value_at_rank(n / 2 - 1)
                                .zip(sketch.value_at_rank(n / 2))
                                .map(|(a, z)| (a + z) / 2.0)
                        }
                    }
                    _ => None,
                };
                (value.map_or(Value::Null, typed), None)
            }
            State::Samples(s) => {
                let samples = &mut s[b];
                if samples.is_empty() {
                    return (
                        if kind == AggKind::CountDistinct {
                            Value::Integer(0)
                        } else {
                            Value::Null
                        },
                        None,
                    );
                }
                match kind {
                    AggKind::Median => {
                        let mut nums: Vec<f64> =
                            samples.iter().filter_map(|(_, v)| v.as_f64()).collect();
                        nums.sort_by(f64::total_cmp);
                        let n = nums.len();
                        if n == 0 {
                            return (Value::Null, None);
                        }
                        let m = if n % 2 == 1 {
                            nums[n / 2]
                        } else {
                            (nums[n / 2 - 1] + nums[n / 2]) / 2.0
                        };
                        (Value::Float(m), None)
                    }
                    AggKind::Percentile(p) => {
                        samples.sort_by(|a, b| compare_values(&a.1, &b.1).then(a.0.cmp(&b.0)));
                        let rank = nearest_rank(samples.len() as u64, p);
                        let Some((t, v)) = rank.and_then(|i| samples.get(usize::try_from(i).ok()?))
                        else {
                            return (Value::Null, None);
                        };
                        (v.clone(), Some(*t))
                    }
                    AggKind::Mode => {
                        samples.sort_by(|a, b| compare_values(&a.1, &b.1).then(a.0.cmp(&b.0)));
                        let mut best: Option<(&Value, usize)> = None;
                        let mut i = 0;
                        while i < samples.len() {
                            let mut j = i + 1;
                            while j < samples.len() && samples[j].1 == samples[i].1 {
                                j += 1;
                            }
                            if best.is_none_or(|(_, n)| j - i > n) {
                                best = Some((&samples[i].1, j - i));
                            }
                            i = j;
                        }
                        (best.map_or(Value::Null, |(v, _)| v.clone()), None)
                    }
                    AggKind::CountDistinct => {
                        let mut values: Vec<&Value> = samples.iter().map(|(_, v)| v).collect();
                        values.sort_by(|a, b| compare_values(a, b));
                        values.dedup();
                        (Value::Integer(values.len() as i64), None)
                    }
                    _ => (Value::Null, None),
                }
            }
        }
    }

    /// The rows of a multi-row function (distinct, top, bottom) for bucket `b`, time-ordered.
    pub(crate) fn rows(&mut self, b: usize) -> Vec<(i64, Value)> {
        let kind = self.kind;
        let State::Samples(s) = &mut self.state else {
            return Vec::new();
        };
        let samples = &mut s[b];
        match kind {
            AggKind::Distinct => {
                let mut seen: Vec<(i64, Value)> = Vec::new();
                let mut sorted = samples.clone();
                sorted.sort_by(|a, b| compare_values(&a.1, &b.1).then(a.0.cmp(&b.0)));
                for (t, v) in sorted {
                    if seen.last().is_none_or(|(_, last)| *last != v) {
                        seen.push((t, v));
                    }
                }
                seen
            }
            AggKind::Top(n) | AggKind::Bottom(n) => {
                let top = matches!(kind, AggKind::Top(_));
                samples.sort_by(|a, b| {
                    let o = compare_values(&a.1, &b.1);
                    (if top { o.reverse() } else { o }).then(a.0.cmp(&b.0))
                });
                let mut chosen: Vec<(i64, Value)> = samples.iter().take(n).cloned().collect();
                chosen.sort_by_key(|(t, _)| *t);
                chosen
            }
            _ => Vec::new(),
        }
    }
}

fn compare_values(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Float(x), Value::Float(y)) => x.total_cmp(y),
        _ => a.compare(b).unwrap_or(Ordering::Equal),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plain loop the vectorised extremes must agree with.
    /// (Reference.) The smallest (or largest) value of a run and its index, skipping values `skip` rejects
    /// (NaN); the earliest wins ties.
    fn extreme<T: Copy + PartialOrd>(
        run: &[T],
        want_max: bool,
        skip: impl Fn(T) -> bool,
    ) -> Option<(T, usize)> {
        let mut best: Option<(T, usize)> = None;
        for (i, &x) in run.iter().enumerate() {
            if skip(x) {
                continue;
            }
            best = match best {
                None => Some((x, i)),
                Some((cur, j)) => {
                    if (want_max && x > cur) || (!want_max && x < cur) {
                        Some((x, i))
                    } else {
                        Some((cur, j))
                    }
                }
            };
        }
        best
    }

    fn special_float() -> impl proptest::strategy::Strategy<Value = f64> {
        use proptest::prelude::*;
        prop_oneof![
            -5.0f64..5.0,
            Just(f64::NAN),
            Just(0.0),
            Just(-0.0),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(1.0),
        ]
    }

    proptest::proptest! {
        #[test]
        fn vectorised_extremes_equal_the_plain_loop(
            floats in proptest::collection::vec(special_float(), 0..40),
            ints in proptest::collection::vec(-3i64..3, 0..40),
            want_max in proptest::prelude::any::<bool>(),
        ) {
            let fast = extreme_f64(&floats, want_max).map(|(x, i)| (x.to_bits(), i));
            let plain = extreme(&floats, want_max, |x| x.is_nan()).map(|(x, i)| (x.to_bits(), i));
            proptest::prop_assert_eq!(fast, plain);
            let value = extreme_f64_value(&floats, want_max);
            proptest::prop_assert_eq!(value.is_some(), plain.is_some());
            if let (Some(v), Some((bits, _))) = (value, plain) {
                proptest::prop_assert!(v == f64::from_bits(bits));
            }
            proptest::prop_assert_eq!(extreme_int(&ints, want_max), extreme(&ints, want_max, |_| false));
        }
    }

    fn run(kind: AggKind, values: ColumnValues) -> (Value, Option<i64>) {
        let ts: Vec<i64> = (0..values.len() as i64).map(|i| i * 10).collect();
        let mut acc = Accumulator::new(kind, values.field_type(), 1);
        // Split in two runs and merge, to exercise merging too.
        let half = ts.len() / 2;
        let mut other = Accumulator::new(kind, values.field_type(), 1);
        acc.add_slice(0, &ts, &values, 0..half);
        other.add_slice(0, &ts, &values, half..ts.len());
        acc.merge(other);
        acc.value(0)
    }

    #[test]
    fn numeric_aggregates_follow_influxql() {
        let v = || ColumnValues::Float(vec![3.0, 1.0, 4.0, 1.0, 5.0, 9.0]);
        assert_eq!(run(AggKind::Count, v()).0, Value::Integer(6));
        assert_eq!(run(AggKind::Sum, v()).0, Value::Float(23.0));
        assert_eq!(run(AggKind::Mean, v()).0, Value::Float(23.0 / 6.0));
        assert_eq!(run(AggKind::Median, v()).0, Value::Float(3.5));
        assert_eq!(run(AggKind::Min, v()), (Value::Float(1.0), Some(10)));
        assert_eq!(run(AggKind::Max, v()), (Value::Float(9.0), Some(50)));
        assert_eq!(run(AggKind::First, v()), (Value::Float(3.0), Some(0)));
        assert_eq!(run(AggKind::Last, v()), (Value::Float(9.0), Some(50)));
        assert_eq!(run(AggKind::Spread, v()).0, Value::Float(8.0));
        assert_eq!(run(AggKind::Mode, v()).0, Value::Float(1.0));
        assert_eq!(run(AggKind::CountDistinct, v()).0, Value::Integer(5));
        assert_eq!(run(AggKind::Percentile(50.0), v()).0, Value::Float(3.0));
        assert_eq!(run(AggKind::Percentile(100.0), v()).0, Value::Float(9.0));
        assert_eq!(run(AggKind::Percentile(0.0), v()).0, Value::Null);
        let Value::Float(sd) = run(AggKind::Stddev, v()).0 else {
            panic!()
        };
        // Sample standard deviation (n - 1): the squared deviations sum to 44.8333.
        assert!(
            (sd - (44.833_333_333_333_33f64 / 5.0).sqrt()).abs() < 1e-12,
            "{sd}"
        );
    }

    #[test]
    fn integer_sums_are_exact_and_overflow_to_float() {
        let v = ColumnValues::Integer(vec![i64::MAX, i64::MAX]);
        assert_eq!(run(AggKind::Sum, v).0, Value::Float(2.0 * i64::MAX as f64));
        let v = ColumnValues::Integer(vec![i64::MAX, -5]);
        assert_eq!(run(AggKind::Sum, v).0, Value::Integer(i64::MAX - 5));
        let v = ColumnValues::Integer(vec![i64::MIN, i64::MAX]);
        assert_eq!(run(AggKind::Spread, v).0, Value::Float(u64::MAX as f64));
    }

    #[test]
    fn nan_counts_for_min_max_and_spread_only_when_every_value_is_nan() {
        let is_nan = |v: Value| matches!(v, Value::Float(x) if x.is_nan());
        let all_nan = || ColumnValues::Float(vec![f64::NAN, f64::NAN, f64::NAN]);
        assert!(is_nan(run(AggKind::Min, all_nan()).0));
        assert!(is_nan(run(AggKind::Max, all_nan()).0));
        assert!(is_nan(run(AggKind::Spread, all_nan()).0));
        // A number in either half of the split (see `run`) wins over the NaN of the other half.
        for values in [
            vec![f64::NAN, 2.0, 5.0, f64::NAN],
            vec![2.0, 5.0, f64::NAN, f64::NAN],
        ] {
            let v = || ColumnValues::Float(values.clone());
            assert_eq!(run(AggKind::Min, v()).0, Value::Float(2.0));
            assert_eq!(run(AggKind::Max, v()).0, Value::Float(5.0));
            assert_eq!(run(AggKind::Spread, v()).0, Value::Float(3.0));
        }
    }

    #[test]
    fn statistics_answer_only_what_they_keep() {
        let strings = ValueStats::String;
        assert!(AggKind::Count.answers_from_stats(&strings));
        assert!(!AggKind::First.answers_from_stats(&strings));
        assert!(!AggKind::Last.answers_from_stats(&strings));
        let overflowed = ValueStats::Integer {
            min: 1,
            max: i64::MAX,
            sum: None,
            first: 1,
            last: i64::MAX,
        };
        assert!(!AggKind::Sum.answers_from_stats(&overflowed));
        assert!(!AggKind::Mean.answers_from_stats(&overflowed));
        assert!(AggKind::Max.answers_from_stats(&overflowed));
    }

    #[test]
    fn top_and_distinct_give_several_rows_in_time_order() {
        let ts = [0, 10, 20, 30];
        let values = ColumnValues::Integer(vec![5, 9, 5, 7]);
        let mut acc = Accumulator::new(AggKind::Top(2), FieldType::Integer, 1);
        acc.add_slice(0, &ts, &values, 0..4);
        assert_eq!(
            acc.rows(0),
            vec![(10, Value::Integer(9)), (30, Value::Integer(7))]
        );
        let mut acc = Accumulator::new(AggKind::Distinct, FieldType::Integer, 1);
        acc.add_slice(0, &ts, &values, 0..4);
        assert_eq!(acc.rows(0).len(), 3);
    }
}
