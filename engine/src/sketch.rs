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
            self.counts.reserve(len + pad);
            self.counts.resize(len, 0);
            return true;
        }
        let lo = self.offset.min(lowest);
        let hi = (self.offset + self.counts.len() as i32 - 1).max(highest);
        if (hi - lo) as usize >= MAX_BINS {
            return false;
        }
        if lo == self.offset && hi < self.offset + self.counts.len() as i32 {
            return true;
        }
        let lo = if lo < self.offset {
            // Merged rows reach lower bins a few at a time: leave room below so the next ones
            // do not move every count again.
            let room = MAX_BINS - (hi - lo + 1) as usize;
            lo - (self.counts.len() / 2).clamp(8, 256).min(room) as i32
        } else {
            lo
        };
        self.regrow(lo, hi);
        true
    }

    /// Makes the non-empty store span bins `low..=high`, which include its current span, in
    /// its own buffer where that has room.
    fn regrow(&mut self, low: i32, high: i32) {
        let old_len = self.counts.len();
        let shift = (self.offset - low) as usize;
        self.counts.resize((high - low + 1) as usize, 0);
        if shift > 0 {
            self.counts.copy_within(0..old_len, shift);
            self.counts[..shift].fill(0);
        }
        self.offset = low;
    }

    /// [`Store::cover`] for bins `lowest..=highest`, growing to `likely` at once when it must
    /// grow: the range that the other rows merged into it will probably reach.
    fn cover_likely(&mut self, lowest: i32, highest: i32, likely: Option<(i32, i32)>) -> bool {
        let Some((low, high)) = likely.filter(|(low, high)| {
            *low <= lowest && highest <= *high && ((*high - *low) as usize) < MAX_BINS
        }) else {
            return self.cover(lowest, highest);
        };
        let end = self.offset + self.counts.len() as i32;
        if !self.counts.is_empty() && self.offset <= lowest && highest < end {
            return true;
        }
        if self.counts.is_empty() {
            self.offset = low;
            self.counts.resize((high - low + 1) as usize, 0);
            return true;
        }
        let (low, high) = (low.min(self.offset), high.max(end - 1));
        if (high - low) as usize >= MAX_BINS {
            return self.cover(lowest, highest);
        }
        self.regrow(low, high);
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

/// The range of positive bins that values from `min` to `max` fall into, when both are
/// positive; a hint for [`Sketch::merge_packed`], so a bin off by one is harmless.
pub(crate) fn likely_bins(min: f64, max: f64) -> Option<(i32, i32)> {
    (min >= MIN_INDEXABLE && max >= min && max.is_finite())
        .then(|| (index_of(min) - 1, index_of(max) + 1))
}

/// The value a sketch reports for a bin (see [`Sketch::value_at_rank`]).
pub(crate) fn value_of(index: i32) -> f64 {
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

    /// Empties the sketch, keeping its buffers for the next values.
    pub fn clear(&mut self) {
        self.positive.counts.clear();
        self.negative.counts.clear();
        self.zeros = 0;
        self.count = 0;
        self.min = f64::INFINITY;
        self.max = f64::NEG_INFINITY;
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

    /// The sketch without its extremes as rollup rows stored it before the packed form (still
    /// read, see `decode_without_extremes`); written by tests of that reading only.
    #[cfg(test)]
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
        sketch.set_extremes(min, max);
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

    /// Appends the sketch without its extremes in the packed form of rollup sketch sections
    /// (kind 2, see `docs/format/segment.md`): count, zero count, then per sign (negative
    /// first, so the positive bins end the sketch and can be walked from the top) the range of
    /// non-empty bins (its width and lowest bin, so a merge grows its target once) and which
    /// bins in it hold how many values, as a bitmap or as sparse pairs, whichever is smaller.
    /// Merging a bitmap costs a bit scan and a one-byte varint per bin.
    pub(crate) fn encode_packed(&self, out: &mut Vec<u8>) {
        put_uvarint(out, self.count);
        if self.count == 0 {
            return;
        }
        put_uvarint(out, self.zeros);
        for store in [&self.negative, &self.positive] {
            let Some(first) = store.counts.iter().position(|n| *n > 0) else {
                put_uvarint(out, 0);
                continue;
            };
            let last = store.counts.iter().rposition(|n| *n > 0).unwrap_or(first);
            encode_packed_range(
                &store.counts[first..=last],
                store.offset + first as i32,
                out,
            );
        }
    }

    /// The count of a sketch in either stored form (both start with it).
    pub(crate) fn stored_count(bytes: &[u8]) -> Result<u64, DecodeError> {
        Reader::new(bytes).uvarint()
    }

    /// Adds a sketch in the packed form, whose extremes are `min` and `max` (as in
    /// `decode_without_extremes`), without building it first: each sign's range is grown
    /// once, then the counts are added in place. `likely` is the range of positive bins that
    /// other sketches merged into this one will probably reach (see [`likely_bins`]): a store
    /// that must grow grows to it. On an error `self` may hold part of the sketch, and is to
    /// be discarded.
    pub(crate) fn merge_packed(
        &mut self,
        bytes: &[u8],
        min: f64,
        max: f64,
        likely: Option<(i32, i32)>,
    ) -> Result<(), DecodeError> {
        if !(min.is_finite() && max.is_finite()) {
            let other = Sketch::decode_packed(bytes, min, max)?;
            self.merge(&other);
            return Ok(());
        }
        let mut r = Reader::new(bytes);
        let count = r.uvarint()?;
        if count == 0 {
            return empty_end(&r);
        }
        if !in_order(min, max) {
            return Err(r.error("sketch extremes are inconsistent"));
        }
        let zeros = r.uvarint()?;
        let mut total = zeros;
        for (store, likely) in [(&mut self.negative, None), (&mut self.positive, likely)] {
            let Some(range) = PackedRange::read(&mut r)? else {
                continue;
            };
            let sum = if store.cover_likely(range.lowest, range.highest(), likely) {
                let start = (range.lowest - store.offset) as usize;
                let slots = &mut store.counts[start..start + range.width];
                range.walk_counts(&mut r, |at, n| slots[at] = slots[at].saturating_add(n))?
            } else {
                // Wider than a store may grow: per-bin adds collapse the lowest bins.
                range.walk_counts(&mut r, |at, n| store.add(range.lowest + at as i32, n))?
            };
            total = total.saturating_add(sum);
        }
        if total != count || !r.is_empty() {
            return Err(r.error("sketch counts are inconsistent"));
        }
        self.zeros = self.zeros.saturating_add(zeros);
        self.count = self.count.saturating_add(count);
        self.min = self.min.min(min);
        self.max = self.max.max(max);
        Ok(())
    }

    /// Decodes a sketch in the packed form, its extremes taken as `decode_without_extremes`
    /// takes them.
    pub(crate) fn decode_packed(bytes: &[u8], min: f64, max: f64) -> Result<Sketch, DecodeError> {
        let mut r = Reader::new(bytes);
        let count = r.uvarint()?;
        if count == 0 {
            return empty_end(&r).map(|()| Sketch::default());
        }
        let mut sketch = Sketch {
            count,
            zeros: r.uvarint()?,
            ..Sketch::default()
        };
        let mut total = sketch.zeros;
        for store in [&mut sketch.negative, &mut sketch.positive] {
            let Some(range) = PackedRange::read(&mut r)? else {
                continue;
            };
            store.offset = range.lowest;
            store.counts = vec![0; range.width];
            let counts = &mut store.counts;
            let sum = range.walk_counts(&mut r, |at, n| counts[at] = n)?;
            total = total.saturating_add(sum);
        }
        if total != count || !r.is_empty() {
            return Err(r.error("sketch counts are inconsistent"));
        }
        sketch.set_extremes(min, max);
        if !in_order(sketch.min, sketch.max) {
            return Err(r.error("sketch extremes are inconsistent"));
        }
        Ok(sketch)
    }

    /// Checks a sketch in the packed form whole; returns its count.
    pub(crate) fn check_packed(bytes: &[u8]) -> Result<u64, DecodeError> {
        let mut r = Reader::new(bytes);
        let count = r.uvarint()?;
        if count == 0 {
            return empty_end(&r).map(|()| 0);
        }
        let mut total = r.uvarint()?;
        for _ in 0..2 {
            if let Some(range) = PackedRange::read(&mut r)? {
                total = total.saturating_add(range.walk_counts(&mut r, |_, _| {})?);
            }
        }
        if total != count || !r.is_empty() {
            return Err(r.error("sketch counts are inconsistent"));
        }
        Ok(count)
    }

    /// Takes the given extremes, or where one is not finite the value of the extreme bin.
    fn set_extremes(&mut self, min: f64, max: f64) {
        self.min = if min.is_finite() {
            min
        } else {
            self.lowest_bin_value()
        };
        self.max = if max.is_finite() {
            max
        } else {
            self.highest_bin_value()
        };
    }
}

/// Appends one sign's range of bins in the packed form (`occupied` holds its first and last
/// non-empty bin): the form tag and width, the lowest bin, where the non-empty bins are (a
/// bitmap, or the gaps between them when that is smaller), a bitmap of those holding more than
/// one value, and those bins' counts minus two.
fn encode_packed_range(occupied: &[u64], lowest: i32, out: &mut Vec<u8>) {
    let width = occupied.len();
    let nonzero = occupied.iter().filter(|n| **n > 0).count();
    let mut gap_bytes = 0;
    let mut previous = 0;
    for (k, _) in occupied.iter().enumerate().filter(|(_, n)| **n > 0).skip(1) {
        gap_bytes += if k - previous < 128 { 1 } else { 2 };
        previous = k;
    }
    let sparse = gap_bytes + 1 < width.div_ceil(8);
    if sparse {
        put_uvarint(out, ((nonzero as u64) << 1) | 1);
        put_uvarint(out, width as u64);
    } else {
        put_uvarint(out, (width as u64) << 1);
    }
    put_ivarint(out, i64::from(lowest));
    let bitmap = |out: &mut Vec<u8>, bits: &mut dyn Iterator<Item = bool>| {
        let mut byte = 0u8;
        let mut k = 0;
        for bit in bits {
            byte |= u8::from(bit) << (k % 8);
            k += 1;
            if k % 8 == 0 {
                out.push(byte);
                byte = 0;
            }
        }
        if k % 8 != 0 {
            out.push(byte);
        }
    };
    if !sparse {
        bitmap(out, &mut occupied.iter().map(|n| *n > 0));
    }
    bitmap(
        out,
        &mut occupied.iter().filter(|n| **n > 0).map(|n| *n > 1),
    );
    let mut previous = 0;
    for (k, n) in occupied.iter().enumerate().filter(|(_, n)| **n > 0) {
        if sparse && k > 0 {
            put_uvarint(out, (k - previous) as u64);
        }
        previous = k;
        if *n > 1 {
            put_uvarint(out, n - 2);
        }
    }
}

/// The positive bins of a sketch in the packed form, walked from the highest down, reading
/// only the bytes of the bins passed: a high percentile of merged sketches needs the top few
/// bins of each. The walk does not check the counts it skips (a merge does); the chunk's
/// checksum guards the bytes, and a walk that meets bytes out of shape stops. It holds
/// offsets, not the bytes, so walks of many sketches fit in one reused buffer: each step is
/// given the sketch's bytes again.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct TopDown {
    lowest: i32,
    width: usize,
    /// Where the occupancy bitmap starts (bitmap form) and the `more` bitmap.
    occupied: Option<usize>,
    more: usize,
    /// The unread end of the bytes after the bitmaps, read from the back.
    tail_start: usize,
    tail_end: usize,
    /// Non-empty bins not yet passed; the next one is `left - 1` in order.
    left: usize,
    /// The position of the next bin (sparse form), or the bound below which it lies (bitmap).
    at: usize,
}

impl TopDown {
    /// Starts a walk of a sketch without negative values; None for one with them, or out of
    /// shape. A sketch of zeros alone gives a walk without bins.
    #[inline]
    pub(crate) fn new(bytes: &[u8]) -> Option<TopDown> {
        let mut r = Reader::new(bytes);
        if r.uvarint().ok()? == 0 {
            return None;
        }
        r.uvarint().ok()?;
        if r.uvarint().ok()? != 0 {
            return None;
        }
        let Some(range) = PackedRange::read(&mut r).ok()? else {
            return Some(TopDown::default());
        };
        let tail_start = r.position();
        let more = tail_start - range.more.len();
        Some(TopDown {
            lowest: range.lowest,
            width: range.width,
            occupied: range.occupied.map(|o| more - o.len()),
            more,
            tail_start,
            tail_end: bytes.len(),
            left: range.nonzero,
            at: if range.occupied.is_some() {
                range.width
            } else {
                range.width - 1
            },
        })
    }

    /// The span of the positive bins, lowest and highest; None without them.
    pub(crate) fn span(&self) -> Option<(i32, i32)> {
        (self.width > 0).then(|| (self.lowest, self.lowest + (self.width as i32 - 1)))
    }

    /// The varint that ends where the unread tail ends.
    fn varint_back(&mut self, bytes: &[u8]) -> Option<u64> {
        let tail = bytes.get(self.tail_start..self.tail_end)?;
        if *tail.last()? >= 0x80 {
            return None;
        }
        let end = tail.len();
        let mut start = end - 1;
        while start > 0 && tail[start - 1] >= 0x80 && end - start < 10 {
            start -= 1;
        }
        let value = Reader::new(&tail[start..]).uvarint().ok()?;
        self.tail_end = self.tail_start + start;
        Some(value)
    }

    /// The next bin down of the sketch `bytes` (those `new` was given), as its index and
    /// count; None after the lowest.
    pub(crate) fn next_bin(&mut self, bytes: &[u8]) -> Option<(i32, u64)> {
        if self.left == 0 {
            return None;
        }
        let k = self.left - 1;
        let position = match self.occupied {
            Some(bitmap) => {
                // The highest set bit below `at`.
                let mut p = self.at;
                loop {
                    if p == 0 {
                        return None;
                    }
                    let byte = bytes.get(bitmap + (p - 1) / 8)? & (0xffu8 >> (7 - (p - 1) % 8));
                    if byte != 0 {
                        break (p - 1) / 8 * 8 + (7 - byte.leading_zeros() as usize);
                    }
                    p = (p - 1) / 8 * 8;
                }
            }
            None => self.at,
        };
        let n = if bytes.get(self.more + k / 8)? >> (k % 8) & 1 == 0 {
            1
        } else {
            self.varint_back(bytes)?.saturating_add(2)
        };
        self.left = k;
        if self.occupied.is_some() {
            self.at = position;
        } else if k > 0 {
            let gap = usize::try_from(self.varint_back(bytes)?).ok()?;
            self.at = position.checked_sub(gap)?;
        }
        Some((self.lowest + position as i32, n))
    }
}

/// An empty sketch in the packed form is its count alone.
fn empty_end(r: &Reader<'_>) -> Result<(), DecodeError> {
    if r.is_empty() {
        Ok(())
    } else {
        Err(r.error("bytes after an empty sketch"))
    }
}

/// One sign's range of bins in the packed form: `width` bins from `lowest`, the first and
/// last of them non-empty, `nonzero` of them non-empty.
struct PackedRange<'a> {
    lowest: i32,
    width: usize,
    nonzero: usize,
    /// A bitmap of the range's non-empty bins; None when the gaps between them are stored
    /// instead, one before each count but the first.
    occupied: Option<&'a [u8]>,
    /// Which non-empty bins (by order) hold more than one value.
    more: &'a [u8],
}

impl<'a> PackedRange<'a> {
    /// Reads a range's form, width, lowest bin and bitmaps; None for a sign without bins.
    fn read(r: &mut Reader<'a>) -> Result<Option<PackedRange<'a>>, DecodeError> {
        let tag = r.uvarint_max(2 * MAX_BINS as u64 + 1, "sketch bin range")?;
        if tag == 0 {
            return Ok(None);
        }
        let sparse = tag & 1 == 1;
        let n = (tag >> 1) as usize;
        let width = if sparse {
            r.uvarint_max(MAX_BINS as u64, "sketch bin range")? as usize
        } else {
            n
        };
        if width == 0 || n == 0 || n > width {
            return Err(r.error("sketch bin range is empty or narrower than its bins"));
        }
        let at = r.position();
        let lowest = r.ivarint()?;
        if !(i64::from(i32::MIN / 2)..=i64::from(i32::MAX / 2)).contains(&lowest) {
            return Err(DecodeError {
                offset: at,
                reason: "sketch bin out of range".into(),
            });
        }
        let (occupied, nonzero) = if sparse {
            (None, n)
        } else {
            let bitmap = r.bytes(width.div_ceil(8))?;
            let last = width - 1;
            // The range's ends are non-empty bins and no bit lies past it, so every walk
            // stays inside the `width` slots a merge made room for.
            if bitmap[0] & 1 == 0 || bitmap[last / 8] >> (last % 8) != 1 {
                return Err(r.error("sketch bin bitmap does not match its range"));
            }
            let nonzero = bitmap_words(bitmap).map(|w| w.count_ones() as usize).sum();
            (Some(bitmap), nonzero)
        };
        let more = r.bytes(nonzero.div_ceil(8))?;
        if nonzero % 8 != 0 && more[nonzero / 8] >> (nonzero % 8) != 0 {
            return Err(r.error("sketch count bitmap runs past its bins"));
        }
        Ok(Some(PackedRange {
            lowest: lowest as i32,
            width,
            nonzero,
            occupied,
            more,
        }))
    }

    fn highest(&self) -> i32 {
        self.lowest + (self.width as i32 - 1)
    }

    /// Reads the range's counts, calling `visit(position from the lowest bin, count)` for each
    /// non-empty bin (positions below `width`, the last at `width - 1`); returns their total.
    #[inline]
    fn walk_counts(
        &self,
        r: &mut Reader<'_>,
        mut visit: impl FnMut(usize, u64),
    ) -> Result<u64, DecodeError> {
        let mut total = 0u64;
        let more = self.more;
        let mut count = |r: &mut Reader<'_>, k: usize| -> Result<u64, DecodeError> {
            let n = if more[k / 8] >> (k % 8) & 1 == 0 {
                1
            } else {
                r.uvarint()?.saturating_add(2)
            };
            total = total.saturating_add(n);
            Ok(n)
        };
        match self.occupied {
            Some(bitmap) => {
                let mut k = 0;
                for (w, mut word) in bitmap_words(bitmap).enumerate() {
                    while word != 0 {
                        let bit = word.trailing_zeros() as usize;
                        word &= word - 1;
                        visit(w * 64 + bit, count(r, k)?);
                        k += 1;
                    }
                }
            }
            None => {
                let mut at = 0usize;
                for k in 0..self.nonzero {
                    if k > 0 {
                        let gap = r.uvarint()?;
                        if gap == 0 || gap >= (self.width - at) as u64 {
                            return Err(r.error("sketch bin gap leaves its range"));
                        }
                        at += gap as usize;
                    }
                    visit(at, count(r, k)?);
                }
                if at != self.width - 1 {
                    return Err(r.error("sketch bins end before their range"));
                }
            }
        }
        Ok(total)
    }
}

/// A bitmap's bytes as little-endian 64-bit words, the last one padded with zeros.
fn bitmap_words(bitmap: &[u8]) -> impl Iterator<Item = u64> + '_ {
    bitmap.chunks(8).map(|bytes| {
        let mut word = [0u8; 8];
        word[..bytes.len()].copy_from_slice(bytes);
        u64::from_le_bytes(word)
    })
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
            let mut b_packed = Vec::new();
            b.encode_packed(&mut b_packed);
            prop_assert_eq!(Sketch::check_packed(&b_packed).unwrap(), b.count());
            prop_assert_eq!(Sketch::stored_count(&b_packed).unwrap(), b.count());
            stored.merge_packed(&b_packed, b.min, b.max, likely_bins(b.min, b.max)).unwrap();
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
            let mut packed = Vec::new();
            a.encode_packed(&mut packed);
            prop_assert_eq!(&Sketch::decode_packed(&packed, a.min, a.max).unwrap(), &a);
            // Without finite extremes, the extreme bins stand in, as for the older form.
            let legacy = Sketch::decode_without_extremes(&mut Reader::new(&bins), f64::NAN, f64::INFINITY).unwrap();
            prop_assert_eq!(&Sketch::decode_packed(&packed, f64::NAN, f64::INFINITY).unwrap(), &legacy);
            let mut into_empty = Sketch::new();
            into_empty.merge_packed(&packed, f64::NAN, f64::INFINITY, None).unwrap();
            prop_assert_eq!(&into_empty, &legacy);
        }

        #[test]
        fn decoding_arbitrary_bytes_never_panics(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = Sketch::decode(&mut Reader::new(&data));
            let _ = Sketch::decode_without_extremes(&mut Reader::new(&data), f64::NAN, f64::NAN);
            let _ = Sketch::decode_packed(&data, 0.5, 2.0);
            let _ = Sketch::decode_packed(&data, f64::NAN, f64::NAN);
            let checked = Sketch::check_packed(&data);
            let mut target = Sketch::new();
            target.add(1.0);
            let merged = target.merge_packed(&data, 0.5, 2.0, likely_bins(0.5, 2.0));
            // Whatever the whole check accepts, a merge accepts, and the other way round.
            prop_assert_eq!(checked.is_ok(), merged.is_ok());
        }

        #[test]
        fn a_changed_byte_is_refused_or_read_consistently(
            values in proptest::collection::vec(prop_oneof![-1e6f64..1e6, 1e-3f64..10.0, Just(0.0)], 1..200),
            at in any::<prop::sample::Index>(),
            byte in any::<u8>(),
        ) {
            let mut s = Sketch::new();
            for v in &values { s.add(*v); }
            let mut packed = Vec::new();
            s.encode_packed(&mut packed);
            let at = at.index(packed.len());
            packed[at] = byte;
            if let Ok(count) = Sketch::check_packed(&packed) {
                let back = Sketch::decode_packed(&packed, f64::NAN, f64::NAN).unwrap();
                prop_assert_eq!(back.count(), count);
                prop_assert_eq!(back.positive.total() + back.negative.total() + back.zeros, count);
            }
        }
    }

    #[test]
    fn merging_a_packed_sketch_too_wide_for_one_store_collapses_the_lowest_bins() {
        let mut low = Sketch::new();
        low.add(1e-11);
        low.add(2e-11);
        let mut high = Sketch::new();
        for v in [1e30, 2e30, 3e30] {
            high.add(v);
        }
        let mut packed = Vec::new();
        high.encode_packed(&mut packed);
        let mut merged = low.clone();
        merged
            .merge_packed(&packed, high.min, high.max, likely_bins(1e-11, 3e30))
            .unwrap();
        let mut added = low.clone();
        added.merge(&high);
        assert_eq!(merged, added);
        assert_eq!(merged.count(), 5);
        assert!(merged.positive.counts.len() <= MAX_BINS);
        let top = merged.value_at_rank(3).unwrap();
        assert!(
            (top - 2e30).abs() <= 2e30 * RELATIVE_ACCURACY * 1.0001,
            "{top}"
        );
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
