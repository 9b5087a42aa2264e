//! A mergeable quantile sketch with a relative-error guarantee, after DDSketch (Masson, Rim,
//! Lee, VLDB 2019): values fall into logarithmic bins of ratio γ = (1 + α) / (1 − α), so every
//! bin's representative value is within a relative error α of any value in the bin. Merging adds
//! bin counts, so a sketch of a day is exactly the sum of its hours' sketches.
//!
//! Guarantee (α = 1 %): for every rank r, the estimate is within 1 % of the r-th smallest value,
//! as long as the sketch holds at most [`MAX_BINS`] bins per sign (else the lowest bins are
//! merged, which only affects the smallest values) and values are 0 or of magnitude at least
//! [`MIN_INDEXABLE`] (smaller ones count as 0). NaN and infinities are not counted.

use crate::bytes::{DecodeError, Reader, put_ivarint, put_uvarint};

/// The relative accuracy.
pub(crate) const RELATIVE_ACCURACY: f64 = 0.01;
/// The most bins per sign before the lowest are collapsed: 4096 bins of ratio γ span a ratio of
/// about 10^35 between the smallest and largest magnitude, more than every u64 from 1 up.
pub(crate) const MAX_BINS: usize = 4096;
/// Values of smaller magnitude are counted as zero.
pub(crate) const MIN_INDEXABLE: f64 = 1e-12;

/// Whether `low <= high`; false when either is NaN.
fn in_order(low: f64, high: f64) -> bool {
    low <= high
}

fn gamma() -> f64 {
    (1.0 + RELATIVE_ACCURACY) / (1.0 - RELATIVE_ACCURACY)
}

fn ln_gamma() -> f64 {
    gamma().ln()
}

/// Dense bins `offset .. offset + counts.len()`; empty bins may pad either end (room to grow).
#[derive(Clone, Debug, Default)]
struct Store {
    offset: i32,
    counts: Vec<u64>,
}

impl PartialEq for Store {
    /// Equal when the same bins hold the same counts, whatever the padding.
    fn eq(&self, other: &Store) -> bool {
        fn occupied(store: &Store) -> (i32, &[u64]) {
            let Some(first) = store.counts.iter().position(|n| *n > 0) else {
                return (0, &[]);
            };
            let last = store.counts.iter().rposition(|n| *n > 0).unwrap_or(first);
            (store.offset + first as i32, &store.counts[first..=last])
        }
        occupied(self) == occupied(other)
    }
}

impl Store {
    fn add(&mut self, index: i32, n: u64) {
        if self.counts.is_empty() {
            self.offset = index;
            self.counts.push(n);
            return;
        }
        if index < self.offset {
            let grow = (self.offset - index) as usize;
            if self.counts.len() + grow > MAX_BINS {
                // Collapse: the value goes into the lowest bin kept.
                self.counts[0] += n;
                return;
            }
            let mut counts = vec![0; grow];
            counts.extend_from_slice(&self.counts);
            self.counts = counts;
            self.offset = index;
        }
        let at = (index - self.offset) as usize;
        if at >= self.counts.len() {
            self.counts.resize(at + 1, 0);
        }
        self.counts[at] += n;
        if self.counts.len() > MAX_BINS {
            let excess = self.counts.len() - MAX_BINS;
            let folded: u64 = self.counts[..=excess].iter().sum();
            self.counts.drain(..excess);
            self.counts[0] = folded;
            self.offset += excess as i32;
        }
    }

    fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Grows the store to hold bins `lowest..=highest`; false (and unchanged) when that would
    /// take more than `MAX_BINS` bins.
    fn cover(&mut self, lowest: i32, highest: i32) -> bool {
        if self.counts.is_empty() {
            let width = (highest - lowest) as usize;
            if width >= MAX_BINS {
                return false;
            }
            // Later merges mostly reach a few bins past the first one's range: room on both
            // sides spares moving every count again.
            let pad = width.clamp(16, 256).min((MAX_BINS - 1 - width) / 2);
            self.offset = lowest - pad as i32;
            let len = width + 1 + pad;
            self.counts = Vec::with_capacity(len + pad);
            self.counts.resize(len, 0);
            return true;
        }
        let lo = self.offset.min(lowest);
        let hi = (self.offset + self.counts.len() as i32 - 1).max(highest);
        if (hi - lo) as usize >= MAX_BINS {
            return false;
        }
        if lo < self.offset {
            // Merged rows reach lower bins a few at a time: leave room below so the next ones
            // do not move every count again.
            let room = MAX_BINS - (hi - lo + 1) as usize;
            let lo = lo - (self.counts.len() / 2).clamp(8, 256).min(room) as i32;
            let grow = (self.offset - lo) as usize;
            let mut counts = Vec::with_capacity((hi - lo + 1) as usize);
            counts.resize(grow, 0);
            counts.extend_from_slice(&self.counts);
            self.counts = counts;
            self.offset = lo;
        }
        let len = (hi - self.offset + 1) as usize;
        if self.counts.len() < len {
            self.counts.resize(len, 0);
        }
        true
    }

    /// Adds every bin of `other`: the range is grown once, then counts are added in place.
    fn merge(&mut self, other: &Store) {
        if other.counts.is_empty() {
            return;
        }
        if self.counts.is_empty() {
            *self = other.clone();
            return;
        }
        let (lowest, highest) = (other.offset, other.offset + other.counts.len() as i32 - 1);
        if !self.cover(lowest, highest) {
            // Too wide: fall back to bin-by-bin adds, which collapse the lowest bins.
            for (i, n) in other.counts.iter().enumerate() {
                if *n > 0 {
                    self.add(other.offset + i as i32, *n);
                }
            }
            return;
        }
        let start = (other.offset - self.offset) as usize;
        for (slot, n) in self.counts[start..start + other.counts.len()]
            .iter_mut()
            .zip(&other.counts)
        {
            *slot += n;
        }
    }
}

/// A quantile sketch of a set of values.
#[derive(Clone, Debug, PartialEq)]
pub struct Sketch {
    positive: Store,
    negative: Store,
    zeros: u64,
    count: u64,
    min: f64,
    max: f64,
}

impl Default for Sketch {
    fn default() -> Self {
        Sketch {
            positive: Store::default(),
            negative: Store::default(),
            zeros: 0,
            count: 0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }
}

fn index_of(magnitude: f64) -> i32 {
    (magnitude.ln() / ln_gamma()).ceil() as i32
}

fn value_of(index: i32) -> f64 {
    // The point of bin (γ^(i−1), γ^i] with equal relative distance to both ends.
    2.0 * gamma().powi(index) / (gamma() + 1.0)
}

impl Sketch {
    pub fn new() -> Sketch {
        Sketch::default()
    }

    /// Number of values counted.
    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn add(&mut self, value: f64) {
        if !value.is_finite() {
            return;
        }
        self.count += 1;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
        if value.abs() < MIN_INDEXABLE {
            self.zeros += 1;
        } else if value > 0.0 {
            self.positive.add(index_of(value), 1);
        } else {
            self.negative.add(index_of(-value), 1);
        }
    }

    pub fn merge(&mut self, other: &Sketch) {
        if other.count == 0 {
            return;
        }
        self.positive.merge(&other.positive);
        self.negative.merge(&other.negative);
        self.zeros += other.zeros;
        self.count += other.count;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// The estimate of the value of 0-based rank `rank` (the `rank + 1`-th smallest value).
    pub fn value_at_rank(&self, rank: u64) -> Option<f64> {
        if rank >= self.count {
            return None;
        }
        // The extremes are kept exactly.
        if rank == 0 {
            return Some(self.min);
        }
        if rank == self.count - 1 {
            return Some(self.max);
        }
        // High ranks (p90, p99) are found faster from the top; a rank that is not among the
        // positive values falls through to the walk from the bottom.
        let above = self.count - 1 - rank;
        if above < self.count / 2 {
            let mut seen = 0u64;
            for (i, n) in self.positive.counts.iter().enumerate().rev() {
                seen += n;
                if seen > above {
                    let v = value_of(self.positive.offset + i as i32);
                    return Some(v.clamp(self.min, self.max));
                }
            }
        }
        let mut seen = 0u64;
        // Negative values, most negative first: highest magnitude index first.
        for (i, n) in self.negative.counts.iter().enumerate().rev() {
            seen += n;
            if seen > rank {
                let v = -value_of(self.negative.offset + i as i32);
                return Some(v.clamp(self.min, self.max));
            }
        }
        seen += self.zeros;
        if seen > rank {
            return Some(0.0);
        }
        for (i, n) in self.positive.counts.iter().enumerate() {
            seen += n;
            if seen > rank {
                let v = value_of(self.positive.offset + i as i32);
                return Some(v.clamp(self.min, self.max));
            }
        }
        Some(self.max)
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        put_uvarint(out, self.count);
        if self.count == 0 {
            return;
        }
        out.extend_from_slice(&self.min.to_bits().to_le_bytes());
        out.extend_from_slice(&self.max.to_bits().to_le_bytes());
        self.encode_bins(out);
    }

    /// The sketch without its extremes, for rollup rows, which store the bucket's minimum and
    /// maximum beside it (see `decode_bins`).
    pub(crate) fn encode_bins_only(&self, out: &mut Vec<u8>) {
        put_uvarint(out, self.count);
        if self.count > 0 {
            self.encode_bins(out);
        }
    }

    fn encode_bins(&self, out: &mut Vec<u8>) {
        put_uvarint(out, self.zeros);
        // Sparse: the non-empty bins as (gap from the previous bin, count) pairs, since a
        // bucket of a few dozen values touches few of the bins between its extremes.
        for store in [&self.positive, &self.negative] {
            let nonzero = store.counts.iter().filter(|n| **n > 0).count();
            put_uvarint(out, nonzero as u64);
            let mut previous = i64::from(store.offset);
            let mut first = true;
            for (i, n) in store.counts.iter().enumerate() {
                if *n == 0 {
                    continue;
                }
                let index = i64::from(store.offset) + i as i64;
                if first {
                    put_ivarint(out, index);
                    first = false;
                } else {
                    put_uvarint(out, (index - previous) as u64);
                }
                previous = index;
                put_uvarint(out, *n);
            }
        }
    }

    #[cfg(test)]
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Sketch, DecodeError> {
        let count = r.uvarint()?;
        if count == 0 {
            return Ok(Sketch::default());
        }
        let min = f64::from_bits(r.u64()?);
        let max = f64::from_bits(r.u64()?);
        Self::decode_bins(r, count, min, max)
    }

    /// Decodes a sketch written by `encode_bins_only`, taking its extremes from the caller
    /// (the rollup row's minimum and maximum; when those are not finite, the extreme bins'
    /// values stand in).
    pub(crate) fn decode_without_extremes(
        r: &mut Reader<'_>,
        min: f64,
        max: f64,
    ) -> Result<Sketch, DecodeError> {
        let count = r.uvarint()?;
        if count == 0 {
            return Ok(Sketch::default());
        }
        let mut sketch = Self::decode_bins(r, count, f64::NEG_INFINITY, f64::INFINITY)?;
        sketch.min = if min.is_finite() {
            min
        } else {
            sketch.lowest_bin_value()
        };
        sketch.max = if max.is_finite() {
            max
        } else {
            sketch.highest_bin_value()
        };
        if !in_order(sketch.min, sketch.max) {
            return Err(r.error("sketch extremes are inconsistent"));
        }
        Ok(sketch)
    }

    fn lowest_bin_value(&self) -> f64 {
        if let Some(i) = self.negative.counts.iter().rposition(|n| *n > 0) {
            return -value_of(self.negative.offset + i as i32);
        }
        if self.zeros > 0 {
            return 0.0;
        }
        self.positive
            .counts
            .iter()
            .position(|n| *n > 0)
            .map_or(0.0, |i| value_of(self.positive.offset + i as i32))
    }

    fn highest_bin_value(&self) -> f64 {
        if let Some(i) = self.positive.counts.iter().rposition(|n| *n > 0) {
            return value_of(self.positive.offset + i as i32);
        }
        if self.zeros > 0 {
            return 0.0;
        }
        self.negative
            .counts
            .iter()
            .position(|n| *n > 0)
            .map_or(0.0, |i| -value_of(self.negative.offset + i as i32))
    }

    fn decode_bins(
        r: &mut Reader<'_>,
        count: u64,
        min: f64,
        max: f64,
    ) -> Result<Sketch, DecodeError> {
        let mut sketch = Sketch {
            count,
            min,
            max,
            ..Sketch::default()
        };
        sketch.zeros = r.uvarint()?;
        let positive = StoredBins::scan(r)?;
        let negative = StoredBins::scan(r)?;
        let total = [positive.total, negative.total]
            .into_iter()
            .try_fold(sketch.zeros, u64::checked_add)
            .ok_or_else(|| r.error("sketch counts overflow"))?;
        if total != count || !in_order(sketch.min, sketch.max) {
            return Err(r.error("sketch counts or extremes are inconsistent"));
        }
        sketch.positive = positive.to_store()?;
        sketch.negative = negative.to_store()?;
        debug_assert_eq!(
            sketch.positive.total() + sketch.negative.total() + sketch.zeros,
            count
        );
        Ok(sketch)
    }

    /// Checks one sketch written by `encode_bins_only` and moves past it; returns its count.
    pub(crate) fn skip_stored(r: &mut Reader<'_>) -> Result<u64, DecodeError> {
        let count = r.uvarint()?;
        if count == 0 {
            return Ok(0);
        }
        let zeros = r.uvarint()?;
        let positive = StoredBins::scan(r)?;
        let negative = StoredBins::scan(r)?;
        let total = [positive.total, negative.total]
            .into_iter()
            .try_fold(zeros, u64::checked_add);
        if total != Some(count) {
            return Err(r.error("sketch counts are inconsistent"));
        }
        Ok(count)
    }

    /// Moves past a sketch written by `encode_bins_only` and returns its count, checking only
    /// that its parts are there: reads that merge it check the rest then (`merge_stored`).
    pub(crate) fn skip_stored_unchecked(r: &mut Reader<'_>) -> Result<u64, DecodeError> {
        let count = r.uvarint()?;
        if count == 0 {
            return Ok(0);
        }
        r.uvarint()?;
        for _ in 0..2 {
            let nonzero = r.uvarint_max(MAX_BINS as u64, "sketch bin count")?;
            r.skip_varints(2 * nonzero)?;
        }
        Ok(count)
    }

    /// Adds a sketch written by `encode_bins_only` (with its extremes given, as in
    /// `decode_without_extremes`) without building it first: each sign's range is grown once,
    /// then the stored counts are added in place.
    pub(crate) fn merge_stored(
        &mut self,
        bytes: &[u8],
        min: f64,
        max: f64,
    ) -> Result<(), DecodeError> {
        let mut r = Reader::new(bytes);
        if !(min.is_finite() && max.is_finite()) {
            let other = Sketch::decode_without_extremes(&mut r, min, max)?;
            self.merge(&other);
            return Ok(());
        }
        let count = r.uvarint()?;
        if count == 0 {
            return Ok(());
        }
        let zeros = r.uvarint()?;
        // One pass over the stored pairs, into a buffer kept per thread: checked, then added
        // with each store grown once.
        BIN_SCRATCH.with(|cell| {
            let (positive, negative) = &mut *cell.borrow_mut();
            let positive_total = read_bins(&mut r, positive)?;
            let negative_total = read_bins(&mut r, negative)?;
            let total = [positive_total, negative_total]
                .into_iter()
                .try_fold(zeros, u64::checked_add);
            if total != Some(count) || !in_order(min, max) {
                return Err(r.error("sketch counts or extremes are inconsistent"));
            }
            add_bins(positive, &mut self.positive);
            add_bins(negative, &mut self.negative);
            self.zeros += zeros;
            self.count += count;
            self.min = self.min.min(min);
            self.max = self.max.max(max);
            Ok(())
        })
    }
}

/// (bin index, count) pairs of one sign.
type BinPairs = Vec<(i32, u64)>;

thread_local! {
    /// Positive and negative pairs of the sketch being merged.
    static BIN_SCRATCH: std::cell::RefCell<(BinPairs, BinPairs)> =
        const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}

/// Reads one sign's stored bins into `out` (cleared first) as (index, count) pairs, with the
/// checks of [`StoredBins::scan`]; returns their total count.
fn read_bins(r: &mut Reader<'_>, out: &mut Vec<(i32, u64)>) -> Result<u64, DecodeError> {
    out.clear();
    let nonzero = r.uvarint_max(MAX_BINS as u64, "sketch bin count")?;
    let (_, _, total) = walk_bins(r, nonzero, |index, count| out.push((index, count)))?;
    Ok(total)
}

/// Walks `nonzero` stored (index or gap, count) pairs, checking each, and calls `visit` with
/// each bin's index and count; returns the lowest and highest index and the total count.
fn walk_bins(
    r: &mut Reader<'_>,
    nonzero: u64,
    mut visit: impl FnMut(i32, u64),
) -> Result<(i64, i64, u64), DecodeError> {
    let (mut lowest, mut index, mut total) = (0i64, 0i64, 0u64);
    for k in 0..nonzero {
        let at = r.position();
        index = if k == 0 {
            r.ivarint()?
        } else {
            index.saturating_add(r.uvarint()? as i64)
        };
        let c = r.uvarint()?;
        if k == 0 {
            lowest = index;
        }
        if c == 0 || !(i64::from(i32::MIN / 2)..=i64::from(i32::MAX / 2)).contains(&index) {
            return Err(DecodeError {
                offset: at,
                reason: "sketch bin out of range or empty".into(),
            });
        }
        if index - lowest >= MAX_BINS as i64 {
            return Err(DecodeError {
                offset: at,
                reason: "sketch bins span too wide a range".into(),
            });
        }
        total = total
            .checked_add(c)
            .ok_or_else(|| r.error("sketch counts overflow"))?;
        visit(index as i32, c);
    }
    Ok((lowest, index, total))
}

/// Adds checked (index, count) pairs, in increasing index order, to a store.
fn add_bins(pairs: &[(i32, u64)], store: &mut Store) {
    let (Some(&(lowest, _)), Some(&(highest, _))) = (pairs.first(), pairs.last()) else {
        return;
    };
    if store.cover(lowest, highest) {
        let offset = store.offset;
        for &(index, n) in pairs {
            store.counts[(index - offset) as usize] += n;
        }
    } else {
        // Wider than a store may grow: per-bin adds collapse the lowest bins.
        for &(index, n) in pairs {
            store.add(index, n);
        }
    }
}

/// One sign's bins as stored (a count of non-empty bins, then (index or gap, count) pairs),
/// checked by a first pass that also finds their range.
struct StoredBins<'a> {
    pairs: Reader<'a>,
    nonzero: u64,
    lowest: i64,
    highest: i64,
    total: u64,
}

impl<'a> StoredBins<'a> {
    fn scan(r: &mut Reader<'a>) -> Result<StoredBins<'a>, DecodeError> {
        let nonzero = r.uvarint_max(MAX_BINS as u64, "sketch bin count")?;
        let pairs = r.clone();
        let (lowest, index, total) = walk_bins(r, nonzero, |_, _| {})?;
        Ok(StoredBins {
            pairs,
            nonzero,
            lowest,
            highest: index,
            total,
        })
    }

    /// Calls `f(position from the lowest bin, count)` for each bin (the pairs were checked by
    /// `scan`, so positions stay below the range's width).
    fn for_each(&self, mut f: impl FnMut(usize, u64)) -> Result<(), DecodeError> {
        let mut r = self.pairs.clone();
        let mut at = 0usize;
        for k in 0..self.nonzero {
            if k == 0 {
                r.ivarint()?;
            } else {
                at += r.uvarint()? as usize;
            }
            f(at, r.uvarint()?);
        }
        Ok(())
    }

    fn to_store(&self) -> Result<Store, DecodeError> {
        if self.nonzero == 0 {
            return Ok(Store::default());
        }
        let mut counts = vec![0u64; (self.highest - self.lowest + 1) as usize];
        self.for_each(|at, n| counts[at] += n)?;
        Ok(Store {
            offset: self.lowest as i32,
            counts,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn the_unchecked_skip_moves_as_far_as_the_checked_one(
            values in proptest::collection::vec(prop_oneof![-1e9f64..1e9, 1e-3f64..10.0, Just(0.0)], 0..300),
        ) {
            let mut sketch = Sketch::new();
            for v in &values { sketch.add(*v); }
            let mut bytes = Vec::new();
            sketch.encode_bins_only(&mut bytes);
            sketch.encode_bins_only(&mut bytes);
            let mut checked = Reader::new(&bytes);
            let mut unchecked = Reader::new(&bytes);
            for _ in 0..2 {
                prop_assert_eq!(
                    Sketch::skip_stored(&mut checked).unwrap(),
                    Sketch::skip_stored_unchecked(&mut unchecked).unwrap()
                );
                prop_assert_eq!(checked.position(), unchecked.position());
            }
            prop_assert_eq!(unchecked.position(), bytes.len());
            // Cut short, both refuse.
            if bytes.len() > 2 {
                let cut = &bytes[..bytes.len() / 2 - 1];
                let mut r = Reader::new(cut);
                let _ = Sketch::skip_stored_unchecked(&mut r);
                let _ = Sketch::skip_stored_unchecked(&mut r);
                prop_assert!(Sketch::skip_stored_unchecked(&mut r).is_err() || r.position() <= cut.len());
            }
        }
    }

    fn nearest_rank(sorted: &[f64], p: f64) -> Option<(u64, f64)> {
        let i = ((sorted.len() as f64) * p / 100.0 + 0.5).floor() as i64 - 1;
        (i >= 0 && (i as usize) < sorted.len()).then(|| (i as u64, sorted[i as usize]))
    }

    proptest! {
        #[test]
        fn every_rank_is_within_the_relative_error(values in proptest::collection::vec(prop_oneof![-1e6f64..1e6, 1e-3f64..10.0, Just(0.0)], 1..400), split in 0usize..400) {
            let split = split.min(values.len());
            let mut a = Sketch::new();
            let mut b = Sketch::new();
            for v in &values[..split] { a.add(*v); }
            for v in &values[split..] { b.add(*v); }
            let mut stored = a.clone();
            let mut b_bins = Vec::new();
            b.encode_bins_only(&mut b_bins);
            stored.merge_stored(&b_bins, b.min, b.max).unwrap();
            a.merge(&b);
            if b.count() > 0 {
                prop_assert_eq!(&stored, &a);
            }
            let mut whole = Sketch::new();
            for v in &values { whole.add(*v); }
            prop_assert_eq!(&a, &whole);
            let mut sorted = values.clone();
            sorted.sort_by(f64::total_cmp);
            for p in [1.0, 25.0, 50.0, 90.0, 99.0, 100.0] {
                if let Some((rank, exact)) = nearest_rank(&sorted, p) {
                    let estimate = a.value_at_rank(rank).unwrap();
                    let tolerance = exact.abs() * RELATIVE_ACCURACY * 1.0001 + MIN_INDEXABLE;
                    prop_assert!((estimate - exact).abs() <= tolerance, "p{p}: {estimate} vs {exact}");
                }
            }
            let mut encoded = Vec::new();
            a.encode(&mut encoded);
            let back = Sketch::decode(&mut Reader::new(&encoded)).unwrap();
            prop_assert_eq!(&back, &a);
            let mut bins = Vec::new();
            a.encode_bins_only(&mut bins);
            let back = Sketch::decode_without_extremes(&mut Reader::new(&bins), a.min, a.max).unwrap();
            prop_assert_eq!(&back, &a);
        }

        #[test]
        fn decoding_arbitrary_bytes_never_panics(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = Sketch::decode(&mut Reader::new(&data));
            let _ = Sketch::decode_without_extremes(&mut Reader::new(&data), f64::NAN, f64::NAN);
            let _ = Sketch::skip_stored(&mut Reader::new(&data));
            let mut target = Sketch::new();
            target.add(1.0);
            let _ = target.merge_stored(&data, 0.5, 2.0);
        }
    }

    #[test]
    fn huge_ranges_collapse_only_the_smallest_values() {
        let mut s = Sketch::new();
        for e in -200..200 {
            s.add(10f64.powi(e / 4));
        }
        assert!(s.positive.counts.len() <= MAX_BINS);
        let top = s.value_at_rank(s.count() - 2).unwrap();
        assert!(
            (top - 1e49).abs() <= 1e49 * RELATIVE_ACCURACY * 1.0001,
            "{top}"
        );
    }
}
