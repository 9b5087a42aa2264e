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
pub const RELATIVE_ACCURACY: f64 = 0.01;
/// The most bins per sign before the lowest are collapsed.
pub const MAX_BINS: usize = 2048;
/// Values of smaller magnitude are counted as zero.
pub const MIN_INDEXABLE: f64 = 1e-12;

fn gamma() -> f64 {
    (1.0 + RELATIVE_ACCURACY) / (1.0 - RELATIVE_ACCURACY)
}

fn ln_gamma() -> f64 {
    gamma().ln()
}

/// Dense bins `offset .. offset + counts.len()`.
#[derive(Clone, Debug, Default, PartialEq)]
struct Store {
    offset: i32,
    counts: Vec<u64>,
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
        for (i, n) in other.positive.counts.iter().enumerate() {
            if *n > 0 {
                self.positive.add(other.positive.offset + i as i32, *n);
            }
        }
        for (i, n) in other.negative.counts.iter().enumerate() {
            if *n > 0 {
                self.negative.add(other.negative.offset + i as i32, *n);
            }
        }
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
        put_uvarint(out, self.zeros);
        out.extend_from_slice(&self.min.to_bits().to_le_bytes());
        out.extend_from_slice(&self.max.to_bits().to_le_bytes());
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

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Sketch, DecodeError> {
        let count = r.uvarint()?;
        let mut sketch = Sketch { count, ..Sketch::default() };
        if count == 0 {
            return Ok(sketch);
        }
        sketch.zeros = r.uvarint()?;
        sketch.min = f64::from_bits(r.u64()?);
        sketch.max = f64::from_bits(r.u64()?);
        let mut total = sketch.zeros;
        for negative in [false, true] {
            let nonzero = r.uvarint_max(MAX_BINS as u64, "sketch bin count")?;
            let mut store = Store::default();
            let mut index = 0i64;
            for k in 0..nonzero {
                let at = r.position();
                index = if k == 0 { r.ivarint()? } else { index.saturating_add(r.uvarint()? as i64) };
                let c = r.uvarint()?;
                if c == 0 || !(i64::from(i32::MIN / 2)..=i64::from(i32::MAX / 2)).contains(&index) {
                    return Err(DecodeError { offset: at, reason: "sketch bin out of range or empty".into() });
                }
                if !store.counts.is_empty() && index - i64::from(store.offset) >= MAX_BINS as i64 {
                    return Err(DecodeError { offset: at, reason: "sketch bins span too wide a range".into() });
                }
                total = total.checked_add(c).ok_or_else(|| r.error("sketch counts overflow"))?;
                store.add(index as i32, c);
            }
            if negative { sketch.negative = store } else { sketch.positive = store }
        }
        if total != count || !(sketch.min <= sketch.max) {
            return Err(r.error("sketch counts or extremes are inconsistent"));
        }
        debug_assert_eq!(sketch.positive.total() + sketch.negative.total() + sketch.zeros, count);
        Ok(sketch)
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
            a.merge(&b);
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
            prop_assert_eq!(back, a);
        }

        #[test]
        fn decoding_arbitrary_bytes_never_panics(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = Sketch::decode(&mut Reader::new(&data));
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
        assert!((top - 1e49).abs() <= 1e49 * RELATIVE_ACCURACY * 1.0001, "{top}");
    }
}
