//! Rollups: per column and per bucket of a tier's resolution, what aggregates need from the
//! raw points, so long-range queries read one row per bucket instead of every point.
//!
//! A row keeps count, sum, min, max, first and last (with their times), and a quantile sketch
//! (numeric columns); booleans and strings keep count, first and last. Rows are stored in
//! rollup chunks inside segment files of their tier; the layout is in
//! `docs/format/segment.md`, "Rollup chunks".

use crate::bytes::{DecodeError, Reader, put_bytes, put_uvarint};
use crate::chunk::{ChunkStats, ColumnValues, ValueStats};
use crate::codec::{self, TsEncoding, ValueEncoding, Values};
use crate::model::{FieldType, FieldValue};
use crate::sketch::Sketch;

/// Rows of one column at one resolution, in bucket order (columnar).
#[derive(Clone, Debug, PartialEq)]
pub struct RollupRows {
    pub field_type: FieldType,
    /// Bucket start times, strictly increasing.
    pub times: Vec<i64>,
    pub counts: Vec<u64>,
    /// Time of the first and last point of each bucket.
    pub first_times: Vec<i64>,
    pub last_times: Vec<i64>,
    pub first: ColumnValues,
    pub last: ColumnValues,
    /// Numeric columns only (empty otherwise), in the column's type. NaN is ignored by min and
    /// max as in chunk statistics.
    pub min: ColumnValues,
    pub max: ColumnValues,
    /// Floats: the IEEE sum in time order. Integers and unsigned: the exact sum, or, where
    /// `sum_overflow` is set, unusable.
    pub sum: ColumnValues,
    pub sum_overflow: Vec<bool>,
    /// Quantile sketches (numeric columns), one per row.
    pub sketches: StoredSketches,
}

/// Rows' quantile sketches kept in their packed stored form (`Sketch::encode_packed`): reading
/// rows then costs one buffer rather than a sketch per row, and a query merges a row's bins
/// straight into its running sketch (`RollupRows::merge_sketch_into`).
#[derive(Clone, Debug, Default)]
pub struct StoredSketches {
    bytes: Vec<u8>,
    /// End of each row's bytes.
    ends: Vec<usize>,
    /// The positive bins the rows' values span, when all are positive: the room a merged
    /// sketch will likely need (`Sketch::merge_packed`).
    likely_bins: Option<(i32, i32)>,
}

impl PartialEq for StoredSketches {
    /// The same sketches, whatever the hint.
    fn eq(&self, other: &StoredSketches) -> bool {
        (&self.bytes, &self.ends) == (&other.bytes, &other.ends)
    }
}

impl StoredSketches {
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    fn push(&mut self, sketch: &Sketch) {
        sketch.encode_packed(&mut self.bytes);
        self.ends.push(self.bytes.len());
    }

    fn get(&self, i: usize) -> Option<&[u8]> {
        let end = *self.ends.get(i)?;
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        self.bytes.get(start..end)
    }

    pub(crate) fn push_from(&mut self, other: &StoredSketches, i: usize) {
        if let Some(bytes) = other.get(i) {
            self.bytes.extend_from_slice(bytes);
            self.ends.push(self.bytes.len());
        }
    }
}

/// Which parts of rollup rows a read decodes. Times and counts always are; a part not asked
/// for comes back as placeholders (zeros, NaN, empty strings) of the right length, so a reader
/// asks for every part its aggregates use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RollupParts {
    /// First and last values with their times.
    pub edges: bool,
    /// Minimum and maximum.
    pub extremes: bool,
    /// Sums, and whether they overflowed.
    pub sums: bool,
    /// Quantile sketches (merging one takes the extremes too).
    pub sketches: bool,
}

impl RollupParts {
    pub const ALL: RollupParts = RollupParts {
        edges: true,
        extremes: true,
        sums: true,
        sketches: true,
    };
    /// Times and counts only.
    pub const COUNTS: RollupParts = RollupParts {
        edges: false,
        extremes: false,
        sums: false,
        sketches: false,
    };

    /// Every part either asks for.
    pub fn union(self, other: RollupParts) -> RollupParts {
        RollupParts {
            edges: self.edges || other.edges,
            extremes: self.extremes || other.extremes,
            sums: self.sums || other.sums,
            sketches: self.sketches || other.sketches,
        }
    }
}

/// Rollup rows' sketches gathered under keys (a query's buckets) and merged per key only when
/// asked, into a sketch the caller reuses: a query over many buckets then allocates per
/// gathering rather than per bucket.
#[derive(Debug, Default)]
pub struct PendingSketches {
    /// The rows' sketches in the packed form, one after another.
    bytes: Vec<u8>,
    rows: Vec<PendingRow>,
    /// Rows per key.
    per_key: Vec<usize>,
    /// Row indexes grouped by key in the order they came, and where each key's group starts
    /// (`per_key.len() + 1` entries); built when first needed after rows came.
    order: Vec<usize>,
    starts: Vec<usize>,
    /// The walks of a key's sketches from their highest bins, and the bin each is at (index
    /// and count), reused across keys.
    walks: Vec<SketchWalk>,
    heads: Vec<(i32, u64)>,
}

/// A walk down one pending row's sketch.
#[derive(Clone, Copy, Debug)]
struct SketchWalk {
    walk: crate::sketch::TopDown,
    /// The row's bytes in `PendingSketches::bytes`.
    start: usize,
    end: usize,
}

#[derive(Clone, Copy, Debug)]
struct PendingRow {
    key: usize,
    count: u64,
    start: usize,
    end: usize,
    min: f64,
    max: f64,
    likely_bins: Option<(i32, i32)>,
}

impl PendingSketches {
    /// Adds row `i`'s sketch under `key`; false when the rows came without sketches.
    pub fn push(&mut self, key: usize, rows: &RollupRows, i: usize) -> bool {
        let Some(bytes) = rows.sketches.get(i) else {
            return false;
        };
        let count = match Sketch::stored_count(bytes) {
            Ok(0) => return true,
            Ok(count) => count,
            // Damaged: kept, for the merge to report.
            Err(_) => 0,
        };
        let start = self.bytes.len();
        self.bytes.extend_from_slice(bytes);
        self.rows.push(PendingRow {
            key,
            count,
            start,
            end: self.bytes.len(),
            min: numeric_at(&rows.min, i),
            max: numeric_at(&rows.max, i),
            likely_bins: rows.sketches.likely_bins,
        });
        if self.per_key.len() <= key {
            self.per_key.resize(key + 1, 0);
        }
        self.per_key[key] += 1;
        self.starts.clear();
        true
    }

    /// Makes room for every sketch of `rows`, so that pushing them one by one grows nothing.
    pub fn reserve_for(&mut self, rows: &RollupRows) {
        self.bytes.reserve(rows.sketches.bytes.len());
        self.rows.reserve(rows.sketches.ends.len());
    }

    /// Whether a sketch with values came under `key`.
    pub fn has(&self, key: usize) -> bool {
        self.per_key.get(key).is_some_and(|n| *n > 0)
    }

    /// Takes `other`'s rows, after this one's under each key.
    pub fn append(&mut self, other: PendingSketches) {
        let shift = self.bytes.len();
        self.bytes.extend_from_slice(&other.bytes);
        self.rows
            .extend(other.rows.into_iter().map(|row| PendingRow {
                start: row.start + shift,
                end: row.end + shift,
                ..row
            }));
        if self.per_key.len() < other.per_key.len() {
            self.per_key.resize(other.per_key.len(), 0);
        }
        for (mine, theirs) in self.per_key.iter_mut().zip(other.per_key) {
            *mine += theirs;
        }
        self.starts.clear();
    }

    /// Empties `target` and merges every sketch under `key` into it; false when one of them
    /// is damaged (`target` is then unusable).
    pub fn merge_into(&mut self, key: usize, target: &mut Sketch) -> bool {
        target.clear();
        if !self.has(key) {
            return true;
        }
        self.group();
        for &r in &self.order[self.starts[key]..self.starts[key + 1]] {
            let row = self.rows[r];
            if target
                .merge_packed(
                    &self.bytes[row.start..row.end],
                    row.min,
                    row.max,
                    row.likely_bins,
                )
                .is_err()
            {
                return false;
            }
        }
        true
    }

    /// The number of values the sketches under `key` count.
    pub fn count(&self, key: usize) -> u64 {
        self.rows_of(key)
            .map_or(0, |rows| rows.map(|r| r.count).fold(0, u64::saturating_add))
    }

    /// The rows under `key`, once grouped.
    fn rows_of(&self, key: usize) -> Option<impl Iterator<Item = &PendingRow>> {
        let order = self
            .order
            .get(*self.starts.get(key)?..*self.starts.get(key + 1)?)?;
        Some(order.iter().filter_map(|r| self.rows.get(*r)))
    }

    /// Groups the rows by key when rows came since they last were.
    pub fn group(&mut self) {
        if self.starts.is_empty() {
            self.group_by_key();
        }
    }

    /// What the merged sketch of `key` answers for the 0-based rank `rank` (its
    /// `value_at_rank`), found by walking the sketches' highest bins together, without merging
    /// them, when the rank is among the highest half of positive values: a p99 reads about a
    /// hundredth of the bins. None when that cannot be done
    /// (a merge answers then); call [`PendingSketches::group`] first.
    pub fn value_at_rank_from_top(&mut self, key: usize, rank: u64) -> Option<f64> {
        let (mut n, mut min, mut max) = (0u64, f64::INFINITY, f64::NEG_INFINITY);
        for row in self.rows_of(key)? {
            if !(row.min.is_finite() && row.max.is_finite()) {
                return None;
            }
            n = n.checked_add(row.count)?;
            min = min.min(row.min);
            max = max.max(row.max);
        }
        if rank >= n || rank == 0 || rank == n - 1 {
            return None;
        }
        let above = n - 1 - rank;
        if above >= n / 2 {
            return None;
        }
        // The sketches' walks, each at its highest bin not yet counted (`heads`, a count of 0
        // once a walk has passed its lowest); the highest of those is counted next, until the
        // values counted pass `above`. Heads sit apart from the walks so that the search for
        // the highest reads a few bytes per sketch.
        let mut walks = std::mem::take(&mut self.walks);
        let mut heads = std::mem::take(&mut self.heads);
        walks.clear();
        heads.clear();
        let (mut lowest, mut highest) = (i32::MAX, i32::MIN);
        for row in self.rows_of(key)? {
            let bytes = self.bytes.get(row.start..row.end)?;
            let mut walk = crate::sketch::TopDown::new(bytes)?;
            // A row of zeros alone lies below every bin the walk counts.
            let Some((low, high)) = walk.span() else {
                continue;
            };
            lowest = lowest.min(low);
            highest = highest.max(high);
            heads.push(walk.next_bin(bytes).unwrap_or((i32::MIN, 0)));
            walks.push(SketchWalk {
                walk,
                start: row.start,
                end: row.end,
            });
        }
        // Merged sketches wider than a store may grow lose their lowest bins: leave those to
        // the merge, whose answer this must equal.
        let mut answer = None;
        if !walks.is_empty()
            && i64::from(highest) - i64::from(lowest) < crate::sketch::MAX_BINS as i64
        {
            let mut seen = 0u64;
            loop {
                let mut next = None;
                let mut best = i32::MIN;
                for (k, &(index, count)) in heads.iter().enumerate() {
                    if count > 0 && (next.is_none() || index > best) {
                        next = Some(k);
                        best = index;
                    }
                }
                let Some(k) = next else { break };
                seen = seen.saturating_add(heads[k].1);
                if seen > above {
                    answer = Some(crate::sketch::value_of(best).clamp(min, max));
                    break;
                }
                let w = &mut walks[k];
                heads[k] = w
                    .walk
                    .next_bin(&self.bytes[w.start..w.end])
                    .unwrap_or((i32::MIN, 0));
            }
        }
        self.heads = heads;
        self.walks = walks;
        answer
    }

    /// Groups the rows by key, keeping their order within each (a counting sort).
    fn group_by_key(&mut self) {
        self.starts.clear();
        self.starts.push(0);
        let mut total = 0;
        for n in &self.per_key {
            total += n;
            self.starts.push(total);
        }
        let mut next = self.starts.clone();
        self.order.clear();
        self.order.resize(self.rows.len(), 0);
        for (r, row) in self.rows.iter().enumerate() {
            self.order[next[row.key]] = r;
            next[row.key] += 1;
        }
    }
}

impl RollupRows {
    /// Empties the rows, keeping their buffers.
    fn clear(&mut self) {
        self.times.clear();
        self.counts.clear();
        self.first_times.clear();
        self.last_times.clear();
        for values in [
            &mut self.first,
            &mut self.last,
            &mut self.min,
            &mut self.max,
            &mut self.sum,
        ] {
            let field_type = values.field_type();
            values.reset(field_type);
        }
        self.sum_overflow.clear();
        self.sketches.bytes.clear();
        self.sketches.ends.clear();
        self.sketches.likely_bins = None;
    }

    pub fn new(field_type: FieldType) -> RollupRows {
        let numeric = field_type.is_numeric();
        let typed = || ColumnValues::new(field_type);
        RollupRows {
            field_type,
            times: Vec::new(),
            counts: Vec::new(),
            first_times: Vec::new(),
            last_times: Vec::new(),
            first: typed(),
            last: typed(),
            min: if numeric {
                typed()
            } else {
                ColumnValues::new(FieldType::Float)
            },
            max: if numeric {
                typed()
            } else {
                ColumnValues::new(FieldType::Float)
            },
            sum: if numeric {
                typed()
            } else {
                ColumnValues::new(FieldType::Float)
            },
            sum_overflow: Vec::new(),
            sketches: StoredSketches::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.times.len()
    }

    pub fn is_empty(&self) -> bool {
        self.times.is_empty()
    }

    fn numeric(&self) -> bool {
        self.field_type.is_numeric()
    }

    /// Row `i`'s quantile sketch (numeric columns).
    pub fn sketch(&self, i: usize) -> Option<Sketch> {
        let bytes = self.sketches.get(i)?;
        let (min, max) = (numeric_at(&self.min, i), numeric_at(&self.max, i));
        Sketch::decode_packed(bytes, min, max).ok()
    }

    /// Adds row `i`'s quantile sketch to `target`; false when the row has none.
    pub fn merge_sketch_into(&self, i: usize, target: &mut Sketch) -> bool {
        let Some(bytes) = self.sketches.get(i) else {
            return false;
        };
        let (min, max) = (numeric_at(&self.min, i), numeric_at(&self.max, i));
        target
            .merge_packed(bytes, min, max, self.sketches.likely_bins)
            .is_ok()
    }

    /// Appends the rows of `points` (sorted, unique times) at `resolution` nanoseconds.
    pub(crate) fn add_points(&mut self, ts: &[i64], values: &ColumnValues, resolution: i64) {
        let mut i = 0;
        while i < ts.len() {
            let start = ts[i].div_euclid(resolution).saturating_mul(resolution);
            let end = start.saturating_add(resolution);
            let mut j = i + 1;
            while j < ts.len() && ts[j] < end {
                j += 1;
            }
            self.push_bucket(start, &ts[i..j], values, i..j);
            i = j;
        }
    }

    fn push_bucket(
        &mut self,
        start: i64,
        ts: &[i64],
        values: &ColumnValues,
        range: std::ops::Range<usize>,
    ) {
        let first_index = range.start;
        let last_index = range.end - 1;
        self.times.push(start);
        self.counts.push(ts.len() as u64);
        self.first_times.push(ts[0]);
        self.last_times.push(ts[ts.len() - 1]);
        self.first.push_from(values, first_index);
        self.last.push_from(values, last_index);
        if !self.numeric() {
            return;
        }
        let mut sketch = Sketch::new();
        match values {
            ColumnValues::Float(v) => {
                let run = &v[range];
                let mut lo = f64::NAN;
                let mut hi = f64::NAN;
                let mut sum = run[0];
                for (k, x) in run.iter().enumerate() {
                    if k > 0 {
                        sum += *x;
                    }
                    if !x.is_nan() {
                        if lo.is_nan() || *x < lo {
                            lo = *x;
                        }
                        if hi.is_nan() || *x > hi {
                            hi = *x;
                        }
                    }
                    sketch.add(*x);
                }
                self.min.push(&FieldValue::Float(lo));
                self.max.push(&FieldValue::Float(hi));
                self.sum.push(&FieldValue::Float(sum));
                self.sum_overflow.push(false);
            }
            ColumnValues::Integer(v) => {
                let run = &v[range];
                let sum: i128 = run.iter().map(|x| i128::from(*x)).sum();
                self.min
                    .push(&FieldValue::Integer(run.iter().copied().min().unwrap_or(0)));
                self.max
                    .push(&FieldValue::Integer(run.iter().copied().max().unwrap_or(0)));
                self.sum
                    .push(&FieldValue::Integer(i64::try_from(sum).unwrap_or(0)));
                self.sum_overflow.push(i64::try_from(sum).is_err());
                for x in run {
                    sketch.add(*x as f64);
                }
            }
            ColumnValues::Unsigned(v) => {
                let run = &v[range];
                let sum: u128 = run.iter().map(|x| u128::from(*x)).sum();
                self.min.push(&FieldValue::Unsigned(
                    run.iter().copied().min().unwrap_or(0),
                ));
                self.max.push(&FieldValue::Unsigned(
                    run.iter().copied().max().unwrap_or(0),
                ));
                self.sum
                    .push(&FieldValue::Unsigned(u64::try_from(sum).unwrap_or(0)));
                self.sum_overflow.push(u64::try_from(sum).is_err());
                for x in run {
                    sketch.add(*x as f64);
                }
            }
            _ => {}
        }
        self.sketches.push(&sketch);
    }

    /// Statistics over every row, for the chunk header.
    pub(crate) fn stats(&self) -> Option<ChunkStats> {
        let n = self.len();
        if n == 0 {
            return None;
        }
        let values = match (&self.first, &self.last, &self.min, &self.max, &self.sum) {
            (
                ColumnValues::Float(f),
                ColumnValues::Float(l),
                ColumnValues::Float(lo),
                ColumnValues::Float(hi),
                ColumnValues::Float(s),
            ) => {
                let min = lo
                    .iter()
                    .copied()
                    .filter(|x| !x.is_nan())
                    .fold(f64::NAN, |a, b| if a.is_nan() || b < a { b } else { a });
                let max = hi
                    .iter()
                    .copied()
                    .filter(|x| !x.is_nan())
                    .fold(f64::NAN, |a, b| if a.is_nan() || b > a { b } else { a });
                let mut sum = s[0];
                for x in &s[1..] {
                    sum += *x;
                }
                ValueStats::Float {
                    min,
                    max,
                    sum,
                    first: f[0],
                    last: l[n - 1],
                }
            }
            (
                ColumnValues::Integer(f),
                ColumnValues::Integer(l),
                ColumnValues::Integer(lo),
                ColumnValues::Integer(hi),
                ColumnValues::Integer(s),
            ) => {
                let total: i128 = s.iter().map(|x| i128::from(*x)).sum();
                let sum = if self.sum_overflow.iter().any(|o| *o) {
                    None
                } else {
                    i64::try_from(total).ok()
                };
                ValueStats::Integer {
                    min: lo.iter().copied().min().unwrap_or(0),
                    max: hi.iter().copied().max().unwrap_or(0),
                    sum,
                    first: f[0],
                    last: l[n - 1],
                }
            }
            (
                ColumnValues::Unsigned(f),
                ColumnValues::Unsigned(l),
                ColumnValues::Unsigned(lo),
                ColumnValues::Unsigned(hi),
                ColumnValues::Unsigned(s),
            ) => {
                let total: u128 = s.iter().map(|x| u128::from(*x)).sum();
                let sum = if self.sum_overflow.iter().any(|o| *o) {
                    None
                } else {
                    u64::try_from(total).ok()
                };
                ValueStats::Unsigned {
                    min: lo.iter().copied().min().unwrap_or(0),
                    max: hi.iter().copied().max().unwrap_or(0),
                    sum,
                    first: f[0],
                    last: l[n - 1],
                }
            }
            (ColumnValues::Boolean(f), ColumnValues::Boolean(l), ..) => ValueStats::Boolean {
                true_count: 0,
                first: f[0],
                last: l[n - 1],
            },
            _ => ValueStats::String,
        };
        Some(ChunkStats {
            count: n as u32,
            min_time: self.times[0],
            max_time: self.times[n - 1],
            values,
        })
    }

    /// Keeps rows `range` only.
    pub(crate) fn slice(&self, range: std::ops::Range<usize>) -> RollupRows {
        let mut out = RollupRows::new(self.field_type);
        out.times.extend_from_slice(&self.times[range.clone()]);
        out.counts.extend_from_slice(&self.counts[range.clone()]);
        out.first_times
            .extend_from_slice(&self.first_times[range.clone()]);
        out.last_times
            .extend_from_slice(&self.last_times[range.clone()]);
        for i in range.clone() {
            out.first.push_from(&self.first, i);
            out.last.push_from(&self.last, i);
            if self.numeric() {
                out.min.push_from(&self.min, i);
                out.max.push_from(&self.max, i);
                out.sum.push_from(&self.sum, i);
            }
        }
        if self.numeric() {
            out.sum_overflow
                .extend_from_slice(&self.sum_overflow[range.clone()]);
            for i in range {
                out.sketches.push_from(&self.sketches, i);
            }
        }
        out
    }

    /// Encodes the rows as a rollup chunk payload: streams, each a varint length then bytes.
    pub(crate) fn encode_payload(&self, out: &mut Vec<u8>) -> (TsEncoding, ValueEncoding) {
        let mut stream = Vec::new();
        let mut put = |out: &mut Vec<u8>, f: &mut dyn FnMut(&mut Vec<u8>)| {
            stream.clear();
            f(&mut stream);
            put_bytes(out, &stream);
        };
        let mut ts_encoding = TsEncoding::PackedDelta;
        let mut count_encoding = ValueEncoding::IntPacked;
        put(out, &mut |s| {
            ts_encoding = codec::encode_timestamps(&self.times, s)
        });
        let counts: Vec<i64> = self.counts.iter().map(|c| *c as i64).collect();
        put(out, &mut |s| {
            count_encoding = codec::encode_values(Values::Integer(&counts), s);
            s.insert(0, count_encoding.to_byte());
        });
        for times in [&self.first_times, &self.last_times] {
            put(out, &mut |s| {
                let e = codec::encode_timestamps(times, s);
                s.insert(0, e.to_byte());
            });
        }
        let mut columns: Vec<&ColumnValues> = vec![&self.first, &self.last];
        if self.numeric() {
            columns.extend([&self.min, &self.max, &self.sum]);
        }
        for values in columns {
            put(out, &mut |s| {
                let e = codec::encode_values(values.as_values(), s);
                s.insert(0, e.to_byte());
            });
        }
        if self.numeric() {
            put(out, &mut |s| {
                let e = codec::encode_values(Values::Boolean(&self.sum_overflow), s);
                s.insert(0, e.to_byte());
            });
        }
        (ts_encoding, count_encoding)
    }

    /// Appends the body of a packed sketch section (kind 2): each row's sketch length, then the
    /// rows' packed sketches (numeric columns; nothing otherwise). It is kept apart from
    /// streams 1-10 so that reads without percentiles never touch it; the lengths let a read
    /// find each row's sketch without walking the ones before it.
    pub(crate) fn encode_packed_sketches(&self, out: &mut Vec<u8>) {
        if self.numeric() {
            let mut start = 0;
            for &end in &self.sketches.ends {
                put_uvarint(out, (end - start) as u64);
                start = end;
            }
            // The row's min and max are the sketch's extremes, so they are not repeated.
            out.extend_from_slice(&self.sketches.bytes);
        }
    }

    /// Reads the body of a packed sketch section for these rows (decoded from streams 1-10
    /// without sketches), checking each sketch whole when `check` (else its count only: a
    /// query checks the rest when it merges the sketch).
    pub(crate) fn decode_packed_sketches(
        &mut self,
        section: &[u8],
        check: bool,
    ) -> Result<(), DecodeError> {
        self.sketches.bytes.clear();
        self.sketches.ends.clear();
        self.sketches.likely_bins = None;
        if !self.numeric() {
            return Ok(());
        }
        let mut r = Reader::new(section);
        let mut end = 0usize;
        for _ in 0..self.len() {
            end += r.uvarint_max(section.len() as u64, "sketch length")? as usize;
            self.sketches.ends.push(end);
        }
        let body_at = r.position();
        let body = &section[body_at..];
        if end != body.len() {
            return Err(DecodeError {
                offset: body_at,
                reason: format!(
                    "sketch lengths add up to {end} bytes but the section holds {}",
                    body.len()
                ),
            });
        }
        let mut start = 0;
        for (i, &end) in self.sketches.ends.iter().enumerate() {
            let bytes = &body[start..end];
            let count = if check {
                Sketch::check_packed(bytes)
            } else {
                Sketch::stored_count(bytes)
            }
            .map_err(|e| DecodeError {
                offset: body_at + start + e.offset,
                reason: e.reason,
            })?;
            if count > self.counts[i] {
                return Err(DecodeError {
                    offset: body_at + start,
                    reason: "a sketch counts more values than its row".into(),
                });
            }
            start = end;
        }
        self.sketches.bytes.extend_from_slice(body);
        let (mut low, mut high) = (f64::INFINITY, f64::NEG_INFINITY);
        for i in 0..self.len() {
            low = low.min(numeric_at(&self.min, i));
            high = high.max(numeric_at(&self.max, i));
        }
        self.sketches.likely_bins = crate::sketch::likely_bins(low, high);
        Ok(())
    }

    /// Stream 11 as written before sketch sections were packed, for tests of the conversion.
    #[cfg(test)]
    pub(crate) fn encode_legacy_sketch_stream(&self, out: &mut Vec<u8>) {
        if self.numeric() {
            let mut bytes = Vec::new();
            for i in 0..self.len() {
                if let Some(sketch) = self.sketch(i) {
                    sketch.encode_bins_only(&mut bytes);
                }
            }
            put_bytes(out, &bytes);
        }
    }

    /// Decodes a payload of `rows` rows of `field_type`: streams 1-10 from `payload`, and
    /// sketches in the stream 11 written before the packed form, from where `sketches` says
    /// (each checked whole as it is converted to the packed form).
    #[cfg(test)]
    pub(crate) fn decode_payload(
        field_type: FieldType,
        ts_encoding: TsEncoding,
        rows: usize,
        payload: &[u8],
        sketches: SketchSource<'_>,
    ) -> Result<RollupRows, DecodeError> {
        let mut out = RollupRows::new(field_type);
        out.decode_payload_into(ts_encoding, rows, payload, sketches, RollupParts::ALL)?;
        Ok(out)
    }

    /// [`RollupRows::decode_payload`] into these rows (of the same field type), reusing their
    /// buffers: a read of many chunks allocates once.
    pub(crate) fn decode_payload_into(
        &mut self,
        ts_encoding: TsEncoding,
        rows: usize,
        payload: &[u8],
        sketches: SketchSource<'_>,
        parts: RollupParts,
    ) -> Result<(), DecodeError> {
        let field_type = self.field_type;
        self.clear();
        let out = self;
        let mut r = Reader::new(payload);
        let codec_error = |at: usize, e: codec::CodecError| DecodeError {
            offset: at + e.offset,
            reason: e.reason,
        };
        fn stream<'p>(r: &mut Reader<'p>) -> Result<(usize, &'p [u8]), DecodeError> {
            let at = r.position();
            let bytes = r.len_bytes(64 << 20, "rollup stream")?;
            Ok((at, bytes))
        }
        /// A stream's encoding (its first byte, as `from_byte` reads it) and the bytes after it.
        fn encoded<'p, E>(
            at: usize,
            bytes: &'p [u8],
            from_byte: fn(u8) -> Option<E>,
            what: &str,
        ) -> Result<(E, &'p [u8]), DecodeError> {
            let (&first, rest) = bytes.split_first().ok_or_else(|| DecodeError {
                offset: at,
                reason: "empty rollup stream".into(),
            })?;
            let e = from_byte(first).ok_or_else(|| DecodeError {
                offset: at,
                reason: format!("unknown {what} encoding"),
            })?;
            Ok((e, rest))
        }
        let (at, bytes) = stream(&mut r)?;
        codec::decode_timestamps(ts_encoding, bytes, rows, &mut out.times)
            .map_err(|e| codec_error(at, e))?;
        let (at, bytes) = stream(&mut r)?;
        let (e, bytes) = encoded(at, bytes, ValueEncoding::from_byte, "count")?;
        let mut counts = std::mem::take(&mut out.first_times);
        codec::decode_i64(e, bytes, rows, &mut counts).map_err(|err| codec_error(at, err))?;
        out.counts.extend(counts.iter().map(|c| (*c).max(0) as u64));
        counts.clear();
        out.first_times = counts;
        for k in 0..2 {
            let (at, bytes) = stream(&mut r)?;
            let target = if k == 0 {
                &mut out.first_times
            } else {
                &mut out.last_times
            };
            if !parts.edges {
                target.resize(rows, 0);
                continue;
            }
            let (e, bytes) = encoded(at, bytes, TsEncoding::from_byte, "time")?;
            codec::decode_timestamps(e, bytes, rows, target).map_err(|err| codec_error(at, err))?;
        }
        let numeric = field_type.is_numeric();
        let n_value_streams = if numeric { 5 } else { 2 };
        for k in 0..n_value_streams {
            let (at, bytes) = stream(&mut r)?;
            let (target, wanted) = match k {
                0 => (&mut out.first, parts.edges),
                1 => (&mut out.last, parts.edges),
                2 => (&mut out.min, parts.extremes || parts.sketches),
                3 => (&mut out.max, parts.extremes || parts.sketches),
                _ => (&mut out.sum, parts.sums),
            };
            if !wanted {
                fill_placeholders(target, rows);
                continue;
            }
            let (e, bytes) = encoded(at, bytes, ValueEncoding::from_byte, "value")?;
            decode_typed(e, bytes, rows, target).map_err(|err| codec_error(at, err))?;
        }
        if numeric && !parts.sums {
            stream(&mut r)?;
            out.sum_overflow.resize(rows, false);
        } else if numeric {
            let (at, bytes) = stream(&mut r)?;
            let (e, bytes) = encoded(at, bytes, ValueEncoding::from_byte, "overflow")?;
            codec::decode_bool(e, bytes, rows, &mut out.sum_overflow)
                .map_err(|err| codec_error(at, err))?;
        }
        let mut apart;
        let sketch_reader = match sketches {
            SketchSource::Inline => Some(&mut r),
            SketchSource::Apart(section) => {
                apart = Reader::new(section);
                Some(&mut apart)
            }
            SketchSource::Skip => None,
        };
        if numeric && let Some(r) = sketch_reader {
            // Sketches written before the packed form: each is checked whole as it is
            // converted, so rows in memory hold one form only.
            let (at, bytes) = stream(r)?;
            let mut sr = Reader::new(bytes);
            for i in 0..rows {
                let (min, max) = (numeric_at(&out.min, i), numeric_at(&out.max, i));
                let sketch = Sketch::decode_without_extremes(&mut sr, min, max).map_err(|e| {
                    DecodeError {
                        offset: at + e.offset,
                        reason: e.reason,
                    }
                })?;
                if sketch.count() > out.counts[i] {
                    return Err(DecodeError {
                        offset: at + sr.position(),
                        reason: "a sketch counts more values than its row".into(),
                    });
                }
                out.sketches.push(&sketch);
            }
        }
        // Rows must agree with themselves, or answers from rollups would differ from raw ones.
        let ordered = out.times.windows(2).all(|w| w[0] < w[1])
            && out
                .first_times
                .iter()
                .zip(&out.last_times)
                .all(|(f, l)| f <= l)
            && out.counts.iter().all(|c| *c > 0)
            && (!numeric || matches!(sketches, SketchSource::Skip) || out.sketches.len() == rows);
        if !ordered {
            return Err(DecodeError {
                offset: 0,
                reason: "rollup rows are inconsistent".into(),
            });
        }
        Ok(())
    }
}

/// Where a rollup payload's stream 11 (sketches written before the packed form) is; packed
/// sketch sections are read apart, by [`RollupRows::decode_packed_sketches`].
#[derive(Clone, Copy, Debug)]
pub(crate) enum SketchSource<'a> {
    /// Right after stream 10 (rollup chunks written before the sketches were kept apart).
    Inline,
    /// At the start of this section (sketch sections of kinds 0 and 1).
    Apart(&'a [u8]),
    /// Not read here: the rows come back without sketches (every other aggregate is exact
    /// without them), and a percentile over them reports that it cannot be answered.
    Skip,
}

/// Fills `values` (empty) with `n` placeholders of its type, for a part a read skipped.
fn fill_placeholders(values: &mut ColumnValues, n: usize) {
    match values {
        ColumnValues::Float(v) => v.resize(n, f64::NAN),
        ColumnValues::Integer(v) => v.resize(n, 0),
        ColumnValues::Unsigned(v) => v.resize(n, 0),
        ColumnValues::Boolean(v) => v.resize(n, false),
        ColumnValues::String(v) => v.resize(n, String::new()),
    }
}

/// A numeric column's value at `i` as a float; NaN when the row has none.
fn numeric_at(values: &ColumnValues, i: usize) -> f64 {
    match values {
        ColumnValues::Float(v) => v.get(i).copied().unwrap_or(f64::NAN),
        ColumnValues::Integer(v) => v.get(i).map_or(f64::NAN, |x| *x as f64),
        ColumnValues::Unsigned(v) => v.get(i).map_or(f64::NAN, |x| *x as f64),
        _ => f64::NAN,
    }
}

fn decode_typed(
    e: ValueEncoding,
    bytes: &[u8],
    rows: usize,
    target: &mut ColumnValues,
) -> Result<(), codec::CodecError> {
    match target {
        ColumnValues::Float(v) => codec::decode_f64(e, bytes, rows, v),
        ColumnValues::Integer(v) => codec::decode_i64(e, bytes, rows, v),
        ColumnValues::Unsigned(v) => codec::decode_u64(e, bytes, rows, v),
        ColumnValues::Boolean(v) => codec::decode_bool(e, bytes, rows, v),
        ColumnValues::String(v) => codec::decode_strings(e, bytes, rows, v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Float rows at a one-minute resolution, one per list of values.
    fn one_row_per_bucket(buckets: &[Vec<f64>]) -> RollupRows {
        let minute = 60_000_000_000i64;
        let (mut ts, mut values) = (Vec::new(), Vec::new());
        for (b, bucket) in buckets.iter().enumerate() {
            for (j, v) in bucket.iter().enumerate() {
                ts.push(b as i64 * minute + j as i64);
                values.push(*v);
            }
        }
        let mut rows = RollupRows::new(FieldType::Float);
        rows.add_points(&ts, &ColumnValues::Float(values), minute);
        rows
    }

    proptest! {
        #[test]
        fn high_ranks_found_from_the_top_equal_the_merged_sketchs(
            buckets in proptest::collection::vec(
                (
                    proptest::collection::vec(
                        prop_oneof![
                            8 => 1e-3f64..1e6,
                            4 => 100.0f64..130.0,
                            1 => Just(0.0),
                        ],
                        1..200,
                    ),
                    proptest::option::weighted(0.2, -5.0f64..-1.0),
                ),
                1..8,
            ),
            keys in proptest::collection::vec(0usize..2, 8),
        ) {
            let buckets: Vec<Vec<f64>> = buckets
                .into_iter()
                .map(|(mut values, negative)| {
                    values.extend(negative);
                    values
                })
                .collect();
            let rows = one_row_per_bucket(&buckets);
            prop_assert_eq!(rows.len(), buckets.len());
            let mut pending = PendingSketches::default();
            for (i, key) in keys.iter().enumerate().take(rows.len()) {
                prop_assert!(pending.push(*key, &rows, i));
            }
            pending.group();
            for key in 0..2 {
                let mut merged = Sketch::new();
                prop_assert!(pending.merge_into(key, &mut merged));
                let n = merged.count();
                prop_assert_eq!(pending.count(key), n);
                let positive_only = (0..rows.len())
                    .filter(|i| keys[*i] == key)
                    .all(|i| buckets[i].iter().all(|v| *v >= 0.0));
                for rank in 0..n {
                    let walked = pending.value_at_rank_from_top(key, rank);
                    if let Some(v) = walked {
                        prop_assert_eq!(Some(v), merged.value_at_rank(rank), "rank {} of {}", rank, n);
                    } else if positive_only && rank > 0 && rank + 1 < n && n - 1 - rank < n / 2
                        && merged.value_at_rank(rank).is_some_and(|v| v > 1e-12)
                    {
                        prop_assert!(false, "rank {} of {} not walked", rank, n);
                    }
                }
            }
        }
    }

    /// Every row's sketch pending under key 0, and their merge.
    fn all_under_one_key(rows: &RollupRows) -> (PendingSketches, Sketch) {
        let mut pending = PendingSketches::default();
        for i in 0..rows.len() {
            assert!(pending.push(0, rows, i));
        }
        pending.group();
        let mut merged = Sketch::new();
        assert!(pending.merge_into(0, &mut merged));
        (pending, merged)
    }

    #[test]
    fn a_p99_of_dense_and_sparse_sketches_is_found_from_the_top() {
        // Bucket 0: many close values (a bitmap of bins); bucket 1: few values far apart
        // (sparse gaps); bucket 2: values with counts above one.
        let rows = one_row_per_bucket(&[
            (0..500).map(|i| 50.0 + f64::from(i) * 0.5).collect(),
            vec![1.0, 1e3, 1e6, 2e6],
            (0..300).map(|i| f64::from(i % 7) + 10.0).collect(),
        ]);
        let (mut pending, merged) = all_under_one_key(&rows);
        let n = merged.count();
        for rank in [n * 99 / 100, n - 2, n / 2 + 1] {
            let walked = pending.value_at_rank_from_top(0, rank);
            assert!(walked.is_some(), "rank {rank} of {n}");
            assert_eq!(walked, merged.value_at_rank(rank));
        }
        // Low ranks are left to the merge.
        assert_eq!(pending.value_at_rank_from_top(0, 1), None);
    }

    #[test]
    fn rows_of_zeros_alone_do_not_stop_the_walk_from_the_top() {
        // Found by the property above: a row whose sketch has no positive bins.
        let rows = one_row_per_bucket(&[vec![0.0], vec![0.001], vec![0.001, 0.001, 0.001]]);
        let (mut pending, merged) = all_under_one_key(&rows);
        assert_eq!(merged.count(), 5);
        // Rank 3 of 5 is the highest a walk answers (the top rank is the maximum's).
        let walked = pending.value_at_rank_from_top(0, 3);
        assert!(walked.is_some());
        assert_eq!(walked, merged.value_at_rank(3));
        // Zeros alone under a key: nothing to walk, the merge answers.
        let zeros = one_row_per_bucket(&[vec![0.0, 0.0, 0.0, 0.0]]);
        let mut pending = PendingSketches::default();
        assert!(pending.push(0, &zeros, 0));
        pending.group();
        assert_eq!(pending.value_at_rank_from_top(0, 2), None);
    }

    #[test]
    fn a_read_of_some_parts_decodes_those_and_fills_the_rest() {
        let rows = one_row_per_bucket(&[vec![1.0, 5.0, 2.0], vec![7.0], vec![3.0, 4.0]]);
        let mut payload = Vec::new();
        let (ts_encoding, _) = rows.encode_payload(&mut payload);
        let parts_of = |edges, extremes, sums| RollupParts {
            edges,
            extremes,
            sums,
            sketches: false,
        };
        for (edges, extremes, sums) in [
            (false, false, false),
            (true, false, false),
            (false, true, false),
            (false, false, true),
        ] {
            let mut read = RollupRows::new(FieldType::Float);
            read.decode_payload_into(
                ts_encoding,
                rows.len(),
                &payload,
                SketchSource::Skip,
                parts_of(edges, extremes, sums),
            )
            .unwrap();
            assert_eq!((&read.times, &read.counts), (&rows.times, &rows.counts));
            assert_eq!(read.first_times == rows.first_times, edges);
            assert_eq!(read.first == rows.first && read.last == rows.last, edges);
            assert_eq!(read.min == rows.min && read.max == rows.max, extremes);
            assert_eq!(read.sum == rows.sum, sums);
            // Skipped parts are placeholders of the right length.
            assert_eq!(read.first_times.len(), rows.len());
            assert_eq!((read.min.len(), read.sum.len()), (rows.len(), rows.len()));
        }
    }

    #[test]
    fn rollup_rows_round_trip_for_every_type() {
        let ts: Vec<i64> = (0..500)
            .map(|i| i * 7_000_000_000 - 1_000_000_000_000)
            .collect();
        for values in [
            ColumnValues::Float((0..500).map(|i| (i % 17) as f64 * 1.5 - 3.0).collect()),
            ColumnValues::Integer((0..500).map(|i| i64::MAX - i).collect()),
            ColumnValues::Unsigned((0..500).map(|i| i as u64 * 3).collect()),
            ColumnValues::Boolean((0..500).map(|i| i % 3 == 0).collect()),
            ColumnValues::String((0..500).map(|i| format!("s{}", i % 4)).collect()),
        ] {
            let mut rows = RollupRows::new(values.field_type());
            rows.add_points(&ts, &values, 60_000_000_000);
            assert!(rows.len() > 50);
            assert_eq!(rows.counts.iter().sum::<u64>(), 500);
            let mut payload = Vec::new();
            let (ts_encoding, _) = rows.encode_payload(&mut payload);
            let mut packed = Vec::new();
            rows.encode_packed_sketches(&mut packed);
            let without = RollupRows::decode_payload(
                values.field_type(),
                ts_encoding,
                rows.len(),
                &payload,
                SketchSource::Skip,
            )
            .unwrap();
            assert!(without.sketches.is_empty());
            assert_eq!(without.max, rows.max);
            assert_eq!(without.sum, rows.sum);
            let mut back = without.clone();
            for check in [true, false] {
                back.decode_packed_sketches(&packed, check).unwrap();
                assert_eq!(back, rows);
            }
            // Stream 11 as written before the packed form, apart or inline: converted.
            let mut sketches = Vec::new();
            rows.encode_legacy_sketch_stream(&mut sketches);
            let back = RollupRows::decode_payload(
                values.field_type(),
                ts_encoding,
                rows.len(),
                &payload,
                SketchSource::Apart(&sketches),
            )
            .unwrap();
            assert_eq!(back, rows);
            // Stream 11 right after stream 10, as chunks written before it was kept apart.
            let mut inline = payload.clone();
            inline.extend_from_slice(&sketches);
            let back = RollupRows::decode_payload(
                values.field_type(),
                ts_encoding,
                rows.len(),
                &inline,
                SketchSource::Inline,
            )
            .unwrap();
            assert_eq!(back, rows);
            if values.field_type().is_numeric() {
                // A section whose lengths do not add up, or a row counting more than its row.
                let mut short = packed.clone();
                short.pop();
                assert!(back.clone().decode_packed_sketches(&short, false).is_err());
                let mut fewer = rows.clone();
                fewer.counts[0] = 0;
                assert!(fewer.decode_packed_sketches(&packed, false).is_err());
            }
            if values.field_type() == FieldType::Integer {
                assert!(
                    rows.sum_overflow.iter().any(|o| *o),
                    "sums of i64::MAX-sized values overflow"
                );
            }
        }
    }
}
