//! Streaming encoders for the in-memory head: one push per point, O(1) amortised, never
//! re-encoding. After every push the byte vector is a complete stream of the named encoding
//! for the values pushed so far (its last byte may be partly used, its unused bits zero).
//!
//! The head holds one appender per open column, for up to millions of columns, so each
//! struct is kept to 48 bytes or less besides its byte vector, which starts empty.

use super::bits::{BitSink, BitWriter};
use super::dod::{self, DodState};
use super::gorilla::XorState;
use super::{TsEncoding, ValueEncoding, constant};

/// Counts values in a u32 to keep the appenders small; the head seals a chunk at
/// `MAX_CHUNK_POINTS`, so reaching this is a bug in the caller.
#[inline]
fn next_count(count: u32) -> u32 {
    assert!(
        count < u32::MAX,
        "BUG: an appender holds u32::MAX values; the head must seal chunks long before"
    );
    count + 1
}

/// Appends timestamps as [`TsEncoding::DeltaOfDelta`].
#[derive(Clone, Debug, Default)]
pub struct TsAppender {
    bytes: Vec<u8>,
    state: DodState,
    count: u32,
    /// Bits used in the last byte; 0 when the stream ends on a byte boundary.
    used_bits: u8,
}

impl TsAppender {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends one timestamp; any i64 sequence round-trips.
    pub fn push(&mut self, ts: i64) {
        let mut writer = BitWriter::resume(&mut self.bytes, self.used_bits);
        self.state.push(
            &mut writer,
            ts,
            self.count as usize,
            &dod::TIMESTAMP_BUCKETS,
        );
        self.used_bits = writer.finish();
        self.count = next_count(self.count);
    }

    pub fn len(&self) -> usize {
        self.count as usize
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The stream so far, a valid [`TsEncoding::DeltaOfDelta`] stream of `len()` values.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn encoding(&self) -> TsEncoding {
        TsEncoding::DeltaOfDelta
    }

    /// Heap memory held, in bytes.
    pub fn heap_bytes(&self) -> usize {
        self.bytes.capacity()
    }

    /// The last timestamp pushed.
    pub fn last(&self) -> Option<i64> {
        (self.count > 0).then_some(self.state.previous)
    }
}

/// Appends f64 values as [`ValueEncoding::GorillaXor`].
#[derive(Clone, Debug, Default)]
pub struct FloatAppender {
    bytes: Vec<u8>,
    state: XorState,
    count: u32,
    used_bits: u8,
}

impl FloatAppender {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends one value; every bit pattern round-trips.
    pub fn push(&mut self, value: f64) {
        let bits = value.to_bits();
        let mut writer = BitWriter::resume(&mut self.bytes, self.used_bits);
        if self.count == 0 {
            writer.write(bits, 64);
            self.state.previous = bits;
        } else {
            self.state.push_next(&mut writer, bits);
        }
        self.used_bits = writer.finish();
        self.count = next_count(self.count);
    }

    pub fn len(&self) -> usize {
        self.count as usize
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The stream so far, a valid [`ValueEncoding::GorillaXor`] stream of `len()` values.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn encoding(&self) -> ValueEncoding {
        ValueEncoding::GorillaXor
    }

    /// Heap memory held, in bytes.
    pub fn heap_bytes(&self) -> usize {
        self.bytes.capacity()
    }

    /// The last value pushed, with its exact bits.
    pub fn last(&self) -> Option<f64> {
        (self.count > 0).then_some(f64::from_bits(self.state.previous))
    }
}

/// Appends i64 values (u64 callers cast with `as i64`) as
/// [`ValueEncoding::IntDeltaOfDelta`].
#[derive(Clone, Debug, Default)]
pub struct IntAppender {
    bytes: Vec<u8>,
    state: DodState,
    count: u32,
    used_bits: u8,
}

impl IntAppender {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends one value; any i64 sequence round-trips.
    pub fn push(&mut self, value: i64) {
        let mut writer = BitWriter::resume(&mut self.bytes, self.used_bits);
        self.state.push(
            &mut writer,
            value,
            self.count as usize,
            &dod::INTEGER_BUCKETS,
        );
        self.used_bits = writer.finish();
        self.count = next_count(self.count);
    }

    pub fn len(&self) -> usize {
        self.count as usize
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The stream so far, a valid [`ValueEncoding::IntDeltaOfDelta`] stream of `len()`
    /// values.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn encoding(&self) -> ValueEncoding {
        ValueEncoding::IntDeltaOfDelta
    }

    /// Heap memory held, in bytes.
    pub fn heap_bytes(&self) -> usize {
        self.bytes.capacity()
    }

    /// The last value pushed.
    pub fn last(&self) -> Option<i64> {
        (self.count > 0).then_some(self.state.previous)
    }
}

/// Appends booleans as [`ValueEncoding::BoolBits`].
#[derive(Clone, Debug, Default)]
pub struct BoolAppender {
    bytes: Vec<u8>,
    count: u32,
}

impl BoolAppender {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, value: bool) {
        let bit = self.count % 8;
        if bit == 0 {
            self.bytes.push(0);
        }
        if let Some(last) = self.bytes.last_mut() {
            *last |= u8::from(value) << bit;
        }
        self.count = next_count(self.count);
    }

    pub fn len(&self) -> usize {
        self.count as usize
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The stream so far, a valid [`ValueEncoding::BoolBits`] stream of `len()` values.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn encoding(&self) -> ValueEncoding {
        ValueEncoding::BoolBits
    }

    /// Heap memory held, in bytes.
    pub fn heap_bytes(&self) -> usize {
        self.bytes.capacity()
    }

    /// The last value pushed.
    pub fn last(&self) -> Option<bool> {
        let index = self.count.checked_sub(1)?;
        let byte = self.bytes.get(index as usize / 8)?;
        Some(byte & (1 << (index % 8)) != 0)
    }
}

/// Appends strings as [`ValueEncoding::StringRaw`].
#[derive(Clone, Debug, Default)]
pub struct StringAppender {
    bytes: Vec<u8>,
    /// Where the last value's length varint starts, for `last()`.
    last_start: usize,
    count: u32,
}

impl StringAppender {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, value: &str) {
        self.last_start = self.bytes.len();
        constant::encode_string(value, &mut self.bytes);
        self.count = next_count(self.count);
    }

    pub fn len(&self) -> usize {
        self.count as usize
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The stream so far, a valid [`ValueEncoding::StringRaw`] stream of `len()` values.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn encoding(&self) -> ValueEncoding {
        ValueEncoding::StringRaw
    }

    /// Heap memory held, in bytes.
    pub fn heap_bytes(&self) -> usize {
        self.bytes.capacity()
    }

    /// The last value pushed.
    pub fn last(&self) -> Option<&str> {
        if self.count == 0 {
            return None;
        }
        let mut cursor =
            super::cursor::ByteCursor::new(&self.bytes, self.last_start, super::VALUE_STREAM);
        super::strings::read_string(&mut cursor, "string").ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{decode_bool, decode_f64, decode_i64, decode_strings, decode_timestamps};

    #[test]
    fn appenders_fit_in_48_bytes() {
        assert!(size_of::<TsAppender>() <= 48, "{}", size_of::<TsAppender>());
        assert!(
            size_of::<FloatAppender>() <= 48,
            "{}",
            size_of::<FloatAppender>()
        );
        assert!(
            size_of::<IntAppender>() <= 48,
            "{}",
            size_of::<IntAppender>()
        );
        assert!(
            size_of::<BoolAppender>() <= 48,
            "{}",
            size_of::<BoolAppender>()
        );
        assert!(
            size_of::<StringAppender>() <= 48,
            "{}",
            size_of::<StringAppender>()
        );
    }

    #[test]
    fn new_appenders_hold_no_heap_memory() {
        assert_eq!(TsAppender::new().heap_bytes(), 0);
        assert_eq!(StringAppender::new().heap_bytes(), 0);
    }

    #[test]
    fn every_prefix_of_an_appender_stream_decodes() {
        let mut timestamps = TsAppender::new();
        let mut floats = FloatAppender::new();
        let mut integers = IntAppender::new();
        let mut booleans = BoolAppender::new();
        let mut strings = StringAppender::new();
        let ts_values = [
            5i64,
            5,
            -7,
            i64::MAX,
            i64::MIN,
            1_000_000_000,
            1_000_000_001,
        ];
        let float_values = [1.5, -0.0, f64::NAN, 1.5, 1e-310, f64::INFINITY, 2.25];
        for (index, (&ts, &float)) in ts_values.iter().zip(&float_values).enumerate() {
            timestamps.push(ts);
            floats.push(float);
            integers.push(ts.wrapping_mul(3));
            booleans.push(index % 3 == 1);
            strings.push(&"ab".repeat(index));
            let length = index + 1;

            let mut decoded_ts = Vec::new();
            decode_timestamps(
                timestamps.encoding(),
                timestamps.bytes(),
                length,
                &mut decoded_ts,
            )
            .unwrap();
            assert_eq!(decoded_ts, ts_values[..length]);
            assert_eq!(timestamps.last(), Some(ts));

            let mut decoded_floats = Vec::new();
            decode_f64(
                floats.encoding(),
                floats.bytes(),
                length,
                &mut decoded_floats,
            )
            .unwrap();
            let bits: Vec<u64> = decoded_floats.iter().map(|value| value.to_bits()).collect();
            let expected: Vec<u64> = float_values[..length]
                .iter()
                .map(|value| value.to_bits())
                .collect();
            assert_eq!(bits, expected);
            assert_eq!(floats.last().map(f64::to_bits), Some(float.to_bits()));

            let mut decoded_integers = Vec::new();
            decode_i64(
                integers.encoding(),
                integers.bytes(),
                length,
                &mut decoded_integers,
            )
            .unwrap();
            let expected: Vec<i64> = ts_values[..length]
                .iter()
                .map(|value| value.wrapping_mul(3))
                .collect();
            assert_eq!(decoded_integers, expected);

            let mut decoded_booleans = Vec::new();
            decode_bool(
                booleans.encoding(),
                booleans.bytes(),
                length,
                &mut decoded_booleans,
            )
            .unwrap();
            assert_eq!(decoded_booleans.len(), length);
            assert_eq!(booleans.last(), Some(index % 3 == 1));

            let mut decoded_strings = Vec::new();
            decode_strings(
                strings.encoding(),
                strings.bytes(),
                length,
                &mut decoded_strings,
            )
            .unwrap();
            assert_eq!(
                decoded_strings.last().map(String::as_str),
                Some(&*"ab".repeat(index))
            );
            assert_eq!(strings.last(), Some(&*"ab".repeat(index)));
            assert_eq!(strings.len(), length);
        }
    }
}
