//! Bit-level delta-of-delta, the Gorilla paper's timestamp scheme widened to 64-bit values.
//!
//! The first value is written raw in 64 bits. Every later value is described by its
//! delta-of-delta `dod = (v[i] - v[i-1]) - (v[i-1] - v[i-2])`, where the delta before the first
//! one counts as 0, all in wrapping i64 arithmetic so that any sequence round-trips. `dod` goes
//! into the smallest bucket that holds it as a two's-complement number:
//!
//! | prefix | payload |
//! |---|---|
//! | `0` | none: dod = 0 |
//! | `10` | `widths[0]` bits |
//! | `110` | `widths[1]` bits |
//! | `1110` | `widths[2]` bits |
//! | `1111` | 64 bits |
//!
//! Timestamps (nanoseconds) and integer values get different bucket widths.

use super::bits::{BitCounter, BitReader, BitSink, BitWriter, low_mask};
use super::{CodecError, VALUE_STREAM};

/// The payload widths of the `10`, `110` and `1110` buckets; `1111` always carries 64 bits.
pub(crate) struct Buckets {
    pub(crate) widths: [u32; 3],
}

/// For nanosecond timestamps: jitter up to ±134 ms, then ±34 s, then ±39 h.
pub(crate) const TIMESTAMP_BUCKETS: Buckets = Buckets {
    widths: [28, 36, 48],
};

/// For integer values: small gauges, then 16-bit and 32-bit steps.
pub(crate) const INTEGER_BUCKETS: Buckets = Buckets {
    widths: [8, 16, 32],
};

/// Whether `value` fits in `width` bits as a two's-complement number (`width` 1..=63).
#[inline]
fn fits(value: i64, width: u32) -> bool {
    let half = 1i64 << (width - 1);
    (-half..half).contains(&value)
}

#[inline]
fn sign_extend(raw: u64, width: u32) -> i64 {
    let unused = 64 - width;
    ((raw << unused) as i64) >> unused
}

/// Writes one delta-of-delta.
#[inline]
pub(crate) fn write_dod(sink: &mut impl BitSink, dod: i64, buckets: &Buckets) {
    if dod == 0 {
        sink.write(0, 1);
        return;
    }
    for (index, &width) in buckets.widths.iter().enumerate() {
        if fits(dod, width) {
            let prefix_length = index as u32 + 2;
            // `10`, `110`, `1110`: prefix_length - 1 ones then a zero.
            let prefix = low_mask(prefix_length - 1) << 1;
            sink.write(
                (prefix << width) | (dod as u64 & low_mask(width)),
                prefix_length + width,
            );
            return;
        }
    }
    sink.write(0b1111, 4);
    sink.write(dod as u64, 64);
}

fn encode_into(values: &[i64], buckets: &Buckets, sink: &mut impl BitSink) {
    let Some((&first, rest)) = values.split_first() else {
        return;
    };
    sink.write(first as u64, 64);
    let mut previous = first;
    let mut previous_delta = 0i64;
    for &value in rest {
        let delta = value.wrapping_sub(previous);
        write_dod(sink, delta.wrapping_sub(previous_delta), buckets);
        previous = value;
        previous_delta = delta;
    }
}

/// Appends the delta-of-delta stream of `values` to `out`.
pub(crate) fn encode(values: &[i64], buckets: &Buckets, out: &mut Vec<u8>) {
    let mut writer = BitWriter::new(out);
    encode_into(values, buckets, &mut writer);
    writer.finish();
}

/// The bytes [`encode`] would append.
pub(crate) fn encoded_size(values: &[i64], buckets: &Buckets) -> usize {
    let mut counter = BitCounter::default();
    encode_into(values, buckets, &mut counter);
    counter.bits.div_ceil(8) as usize
}

/// Decodes `count` values, appending them to `out`.
pub(crate) fn decode(
    data: &[u8],
    count: usize,
    buckets: &Buckets,
    stream: &'static str,
    out: &mut Vec<i64>,
) -> Result<(), CodecError> {
    decode_with(data, count, buckets, stream, out, |value| value)
}

/// Decodes `count` integer values, mapping each before appending it.
pub(crate) fn decode_mapped<T: Clone>(
    data: &[u8],
    count: usize,
    buckets: &Buckets,
    out: &mut Vec<T>,
    map: impl Fn(i64) -> T,
) -> Result<(), CodecError> {
    decode_with(data, count, buckets, VALUE_STREAM, out, map)
}

fn decode_with<T: Clone>(
    data: &[u8],
    count: usize,
    buckets: &Buckets,
    stream: &'static str,
    out: &mut Vec<T>,
    map: impl Fn(i64) -> T,
) -> Result<(), CodecError> {
    if count == 0 {
        return Ok(());
    }
    let start = out.len();
    // Writing into initialised slots keeps the loop free of capacity checks.
    out.resize(start + count, map(0));
    let Some((first_slot, slots)) = out.get_mut(start..).and_then(|new| new.split_first_mut())
    else {
        return Ok(());
    };
    let mut reader = BitReader::new(data);
    let mut previous = reader.read_wide(64) as i64;
    *first_slot = map(previous);
    let mut delta = 0i64;
    let mut k = 0;
    while k < slots.len() {
        reader.refill();
        // A run of '0' bits is a run of unchanged deltas (regular timestamps, flat values):
        // take up to the 56 bits a refill guarantees at once.
        let zeros = reader.peek().leading_zeros().min(56) as usize;
        if zeros > 0 {
            let run = zeros.min(slots.len() - k);
            reader.consume(run as u32);
            for slot in &mut slots[k..k + run] {
                previous = previous.wrapping_add(delta);
                *slot = map(previous);
            }
            k += run;
            continue;
        }
        let leading_ones = (!reader.peek()).leading_zeros();
        let dod = match leading_ones {
            1..=3 => {
                reader.consume(leading_ones + 1);
                let width = buckets.widths[leading_ones as usize - 1];
                sign_extend(reader.read(width), width)
            }
            _ => {
                reader.consume(4);
                reader.read_wide(64) as i64
            }
        };
        delta = delta.wrapping_add(dod);
        previous = previous.wrapping_add(delta);
        slots[k] = map(previous);
        k += 1;
    }
    if reader.overran() {
        return Err(CodecError::new(
            stream,
            data.len(),
            format!(
                "delta-of-delta stream ends early: {count} values need {} bytes, found {}",
                reader.consumed_bits().div_ceil(8),
                data.len()
            ),
        ));
    }
    Ok(())
}

/// The state a streaming delta-of-delta writer keeps between pushes.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct DodState {
    pub(crate) previous: i64,
    pub(crate) previous_delta: i64,
}

impl DodState {
    /// Writes `value` as the value after the `count_so_far` already written.
    #[inline]
    pub(crate) fn push(
        &mut self,
        sink: &mut impl BitSink,
        value: i64,
        count_so_far: usize,
        buckets: &Buckets,
    ) {
        if count_so_far == 0 {
            sink.write(value as u64, 64);
            self.previous = value;
            self.previous_delta = 0;
            return;
        }
        let delta = value.wrapping_sub(self.previous);
        write_dod(sink, delta.wrapping_sub(self.previous_delta), buckets);
        self.previous = value;
        self.previous_delta = delta;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::TIMESTAMP_STREAM;

    fn round_trip(values: &[i64], buckets: &Buckets) -> Vec<i64> {
        let mut bytes = Vec::new();
        encode(values, buckets, &mut bytes);
        assert_eq!(bytes.len(), encoded_size(values, buckets));
        let mut decoded = Vec::new();
        decode(
            &bytes,
            values.len(),
            buckets,
            TIMESTAMP_STREAM,
            &mut decoded,
        )
        .unwrap();
        decoded
    }

    #[test]
    fn every_bucket_boundary_round_trips() {
        let mut values = vec![0i64];
        let mut delta = 0i64;
        for width in [1u32, 8, 16, 28, 32, 36, 48, 63] {
            for dod in [
                (1i64 << (width - 1)) - 1,
                -(1i64 << (width - 1)),
                1i64 << (width - 1),
            ] {
                delta = delta.wrapping_add(dod);
                let last = *values.last().unwrap();
                values.push(last.wrapping_add(delta));
            }
        }
        values.extend([i64::MIN, i64::MAX, i64::MIN, 0, 0]);
        for buckets in [&TIMESTAMP_BUCKETS, &INTEGER_BUCKETS] {
            assert_eq!(round_trip(&values, buckets), values);
        }
    }

    #[test]
    fn evenly_spaced_values_cost_one_bit_each_after_the_first_delta() {
        let values: Vec<i64> = (0..1001)
            .map(|i| 1_700_000_000_000_000_000 + i * 5_000_000_000)
            .collect();
        let size = encoded_size(&values, &TIMESTAMP_BUCKETS);
        // 64 bits first, the first delta in the 36-bit bucket, then 999 one-bit zeros.
        assert_eq!(size, (64 + 3 + 36 + 999usize).div_ceil(8));
        assert_eq!(round_trip(&values, &TIMESTAMP_BUCKETS), values);
    }

    #[test]
    fn runs_of_unchanged_deltas_of_every_length_round_trip() {
        // Runs shorter than, equal to and longer than the 56 bits one refill takes at once,
        // each ended by a change of delta, and a run that ends the stream.
        let mut values = vec![-5i64];
        let mut delta = 3i64;
        for run in [1usize, 2, 55, 56, 57, 63, 64, 65, 200] {
            for _ in 0..run {
                values.push(values[values.len() - 1] + delta);
            }
            delta += 1 + run as i64;
        }
        for _ in 0..130 {
            values.push(values[values.len() - 1] + delta);
        }
        assert_eq!(round_trip(&values, &INTEGER_BUCKETS), values);
        assert_eq!(round_trip(&values, &TIMESTAMP_BUCKETS), values);
        // A stream cut inside a run is still an error, not zeros.
        let mut bytes = Vec::new();
        encode(&values, &INTEGER_BUCKETS, &mut bytes);
        let mut decoded = Vec::new();
        let cut = &bytes[..bytes.len() / 2];
        assert!(
            decode(
                cut,
                values.len(),
                &INTEGER_BUCKETS,
                VALUE_STREAM,
                &mut decoded
            )
            .is_err()
        );
    }

    #[test]
    fn truncated_stream_is_an_error_naming_the_stream_end() {
        let values: Vec<i64> = (0..100).map(|i| i * i * 7919).collect();
        let mut bytes = Vec::new();
        encode(&values, &INTEGER_BUCKETS, &mut bytes);
        let cut = &bytes[..bytes.len() - 3];
        let mut decoded = Vec::new();
        let error = decode(
            cut,
            values.len(),
            &INTEGER_BUCKETS,
            VALUE_STREAM,
            &mut decoded,
        )
        .unwrap_err();
        assert_eq!(error.offset, cut.len());
        assert_eq!(error.stream, VALUE_STREAM);
    }
}
