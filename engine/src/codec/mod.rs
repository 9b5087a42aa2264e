//! Codecs for the timestamp and value streams of a chunk.
//!
//! Every encoding is specified byte by byte in `docs/format/encodings.md` (version 1); the
//! one-byte names below are stored in chunk headers and never change meaning.
//!
//! Two families live here:
//!
//! - Batch encoders ([`encode_timestamps`], [`encode_values`]) that a sealed chunk goes
//!   through once: they try every encoding valid for the data and keep the smallest.
//! - Streaming appenders ([`TsAppender`], [`FloatAppender`], [`IntAppender`], [`BoolAppender`],
//!   [`StringAppender`]) that the in-memory head pushes one point at a time into; their bytes
//!   are at every moment a valid stream of the encoding they name.
//!
//! Invariants: decoders are total. Whatever bytes and count they are given, they return `Ok`
//! with exactly `count` values appended, or a [`CodecError`] with `out` left as it was; they
//! never panic, never read out of bounds and allocate O(`count` + input length).
#![allow(unreachable_pub)]

mod appender;
mod baseline;
mod bits;
mod boolean;
mod constant;
mod cursor;
mod decimal;
mod dod;
mod gorilla;
mod int_packed;
mod packed;
mod strings;
mod timestamps;
mod varint;

#[cfg(test)]
mod tests;

pub use appender::{BoolAppender, FloatAppender, IntAppender, StringAppender, TsAppender};
pub use baseline::zstd_compressed_len;

/// The most points a chunk holds; decoders refuse a larger `count` before allocating.
pub const MAX_CHUNK_POINTS: usize = 1 << 16;

/// Names a timestamp stream's encoding; stored as one byte in chunk headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TsEncoding {
    /// Byte 1: the Gorilla paper's bit-level delta-of-delta, with buckets sized for nanoseconds.
    DeltaOfDelta,
    /// Byte 2: deltas divided by their common scale, frame-of-reference bit-packed.
    PackedDelta,
}

impl TsEncoding {
    /// The byte that names this encoding in a chunk header.
    pub fn to_byte(self) -> u8 {
        match self {
            TsEncoding::DeltaOfDelta => 1,
            TsEncoding::PackedDelta => 2,
        }
    }

    /// The encoding a chunk header byte names, or `None` for a byte no version-1 writer uses.
    pub fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            1 => Some(TsEncoding::DeltaOfDelta),
            2 => Some(TsEncoding::PackedDelta),
            _ => None,
        }
    }

    /// A short lower-case name for tools and error messages.
    pub fn name(self) -> &'static str {
        match self {
            TsEncoding::DeltaOfDelta => "delta-of-delta",
            TsEncoding::PackedDelta => "packed-delta",
        }
    }
}

/// Names a value stream's encoding; one byte in chunk headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ValueEncoding {
    /// Byte 1: f64, the Gorilla paper's XOR encoding.
    GorillaXor,
    /// Byte 2: f64 that are decimals: an exponent `e` and the integers `v * 10^e`, IntPacked.
    Decimal,
    /// Byte 3: i64 (u64 bit-cast) bit-level delta-of-delta, written by the head appender.
    IntDeltaOfDelta,
    /// Byte 4: i64/u64 frame-of-reference or delta bit-packing.
    IntPacked,
    /// Byte 5: one bit per value.
    BoolBits,
    /// Byte 6: varint length and bytes per value.
    StringRaw,
    /// Byte 7: dictionary of distinct strings and bit-packed indexes, zstd-compressed.
    StringDict,
    /// Byte 8: every value has the same bits, stored once.
    Constant,
}

impl ValueEncoding {
    /// The byte that names this encoding in a chunk header.
    pub fn to_byte(self) -> u8 {
        match self {
            ValueEncoding::GorillaXor => 1,
            ValueEncoding::Decimal => 2,
            ValueEncoding::IntDeltaOfDelta => 3,
            ValueEncoding::IntPacked => 4,
            ValueEncoding::BoolBits => 5,
            ValueEncoding::StringRaw => 6,
            ValueEncoding::StringDict => 7,
            ValueEncoding::Constant => 8,
        }
    }

    /// The encoding a chunk header byte names, or `None` for a byte no version-1 writer uses.
    pub fn from_byte(byte: u8) -> Option<Self> {
        Some(match byte {
            1 => ValueEncoding::GorillaXor,
            2 => ValueEncoding::Decimal,
            3 => ValueEncoding::IntDeltaOfDelta,
            4 => ValueEncoding::IntPacked,
            5 => ValueEncoding::BoolBits,
            6 => ValueEncoding::StringRaw,
            7 => ValueEncoding::StringDict,
            8 => ValueEncoding::Constant,
            _ => return None,
        })
    }

    /// A short lower-case name for tools and error messages.
    pub fn name(self) -> &'static str {
        match self {
            ValueEncoding::GorillaXor => "gorilla-xor",
            ValueEncoding::Decimal => "decimal",
            ValueEncoding::IntDeltaOfDelta => "int-delta-of-delta",
            ValueEncoding::IntPacked => "int-packed",
            ValueEncoding::BoolBits => "bool-bits",
            ValueEncoding::StringRaw => "string-raw",
            ValueEncoding::StringDict => "string-dict",
            ValueEncoding::Constant => "constant",
        }
    }
}

/// A decoder met bytes it cannot decode.
///
/// `offset` is a byte offset within the stream given to the decoder; the caller adds the
/// stream's own offset in its file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason} at byte {offset} of the {stream} stream")]
pub struct CodecError {
    /// Byte offset within the stream handed to the decoder.
    pub offset: usize,
    /// Which stream: `"timestamp"` or `"value"`.
    pub stream: &'static str,
    /// What was wrong, with the expected and found values where there are any.
    pub reason: String,
}

impl CodecError {
    pub(crate) fn new(stream: &'static str, offset: usize, reason: impl Into<String>) -> Self {
        CodecError {
            offset,
            stream,
            reason: reason.into(),
        }
    }
}

/// The stream names used in [`CodecError::stream`].
pub(crate) const TIMESTAMP_STREAM: &str = "timestamp";
pub(crate) const VALUE_STREAM: &str = "value";

/// Borrowed values of one type, for encoding.
#[derive(Clone, Copy, Debug)]
pub enum Values<'a> {
    Float(&'a [f64]),
    Integer(&'a [i64]),
    Unsigned(&'a [u64]),
    Boolean(&'a [bool]),
    String(&'a [String]),
}

impl Values<'_> {
    /// How many values there are.
    pub fn len(&self) -> usize {
        match self {
            Values::Float(values) => values.len(),
            Values::Integer(values) => values.len(),
            Values::Unsigned(values) => values.len(),
            Values::Boolean(values) => values.len(),
            Values::String(values) => values.len(),
        }
    }

    /// Whether there are no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Appends the smallest encoding of `ts` to `out` and names it.
///
/// `ts` is strictly increasing (the chunk invariant) with 1..=[`MAX_CHUNK_POINTS`] values; any
/// i64 is allowed, negative and with huge gaps. Other sequences still round-trip, only the
/// choice of encoding assumes the invariant.
pub fn encode_timestamps(ts: &[i64], out: &mut Vec<u8>) -> TsEncoding {
    debug_assert!(
        ts.windows(2).all(|pair| pair[0] < pair[1]),
        "BUG: chunk timestamps must be strictly increasing"
    );
    let packed_size = timestamps::packed_delta_size(ts);
    let dod_size = dod::encoded_size(ts, &dod::TIMESTAMP_BUCKETS);
    // Ties go to PackedDelta: it decodes several times faster than the bit-serial stream.
    if packed_size <= dod_size {
        timestamps::encode_packed_delta(ts, out);
        TsEncoding::PackedDelta
    } else {
        dod::encode(ts, &dod::TIMESTAMP_BUCKETS, out);
        TsEncoding::DeltaOfDelta
    }
}

/// Appends exactly `count` timestamps decoded from `data` to `out`, or returns an error and
/// leaves `out` as it was. Bytes after the last timestamp are ignored.
pub fn decode_timestamps(
    enc: TsEncoding,
    data: &[u8],
    count: usize,
    out: &mut Vec<i64>,
) -> Result<(), CodecError> {
    check_count(TIMESTAMP_STREAM, count)?;
    let original_len = out.len();
    let result = match enc {
        TsEncoding::DeltaOfDelta => {
            dod::decode(data, count, &dod::TIMESTAMP_BUCKETS, TIMESTAMP_STREAM, out)
        }
        TsEncoding::PackedDelta => timestamps::decode_packed_delta(data, count, out),
    };
    if result.is_err() {
        out.truncate(original_len);
    }
    result
}

/// Appends the smallest encoding valid for the values' type to `out` and names it.
///
/// Ties go to the encoding that decodes faster.
pub fn encode_values(values: Values<'_>, out: &mut Vec<u8>) -> ValueEncoding {
    match values {
        Values::Float(values) => encode_floats(values, out),
        Values::Integer(values) => encode_integers(values, out),
        Values::Unsigned(values) => {
            let as_signed: Vec<i64> = values.iter().map(|&value| value as i64).collect();
            encode_integers(&as_signed, out)
        }
        Values::Boolean(values) => {
            // One byte holds any constant; BoolBits needs one per eight values.
            if let Some(&first) = values.first()
                && values.iter().all(|&value| value == first)
            {
                constant::encode_bool(first, out);
                return ValueEncoding::Constant;
            }
            boolean::encode(values, out);
            ValueEncoding::BoolBits
        }
        Values::String(values) => strings::encode_best(values, out),
    }
}

fn encode_floats(values: &[f64], out: &mut Vec<u8>) -> ValueEncoding {
    let Some(first) = values.first() else {
        return ValueEncoding::GorillaXor;
    };
    let first_bits = first.to_bits();
    let constant_size = values
        .iter()
        .all(|value| value.to_bits() == first_bits)
        .then(|| constant::float_size(*first));
    let decimal = decimal::DecimalPlan::new(values);
    let decimal_size = decimal.as_ref().map(decimal::DecimalPlan::encoded_size);
    let gorilla_size = gorilla::encoded_size(values);
    // Candidates in order of decoding speed, so that the first of equal sizes wins.
    let sizes = [constant_size, decimal_size, Some(gorilla_size)];
    match smallest(&sizes) {
        0 => {
            constant::encode_float(*first, out);
            ValueEncoding::Constant
        }
        1 => match decimal {
            Some(plan) => {
                plan.encode(out);
                ValueEncoding::Decimal
            }
            None => {
                gorilla::encode(values, out);
                ValueEncoding::GorillaXor
            }
        },
        _ => {
            gorilla::encode(values, out);
            ValueEncoding::GorillaXor
        }
    }
}

fn encode_integers(values: &[i64], out: &mut Vec<u8>) -> ValueEncoding {
    let Some(&first) = values.first() else {
        int_packed::encode(values, out);
        return ValueEncoding::IntPacked;
    };
    let constant_size = values
        .iter()
        .all(|&value| value == first)
        .then(|| constant::integer_size(first));
    let packed_plan = int_packed::Plan::new(values);
    let dod_size = dod::encoded_size(values, &dod::INTEGER_BUCKETS);
    let sizes = [
        constant_size,
        Some(packed_plan.encoded_size()),
        Some(dod_size),
    ];
    match smallest(&sizes) {
        0 => {
            constant::encode_integer(first, out);
            ValueEncoding::Constant
        }
        1 => {
            packed_plan.encode(values, out);
            ValueEncoding::IntPacked
        }
        _ => {
            dod::encode(values, &dod::INTEGER_BUCKETS, out);
            ValueEncoding::IntDeltaOfDelta
        }
    }
}

/// The index of the smallest available size; the first one wins a tie.
fn smallest(sizes: &[Option<usize>]) -> usize {
    let mut best = (usize::MAX, usize::MAX);
    for (index, size) in sizes.iter().enumerate() {
        if let Some(size) = *size
            && size < best.0
        {
            best = (size, index);
        }
    }
    best.1
}

/// Appends exactly `count` f64 values decoded from `data` to `out`.
pub fn decode_f64(
    enc: ValueEncoding,
    data: &[u8],
    count: usize,
    out: &mut Vec<f64>,
) -> Result<(), CodecError> {
    check_count(VALUE_STREAM, count)?;
    let original_len = out.len();
    let result = match enc {
        ValueEncoding::GorillaXor => gorilla::decode(data, count, out),
        ValueEncoding::Decimal => decimal::decode(data, count, out),
        ValueEncoding::Constant => constant::decode_float(data, count, out),
        other => Err(wrong_type(other, "f64")),
    };
    if result.is_err() {
        out.truncate(original_len);
    }
    result
}

/// Appends exactly `count` i64 values decoded from `data` to `out`.
pub fn decode_i64(
    enc: ValueEncoding,
    data: &[u8],
    count: usize,
    out: &mut Vec<i64>,
) -> Result<(), CodecError> {
    check_count(VALUE_STREAM, count)?;
    let original_len = out.len();
    let result = match enc {
        ValueEncoding::IntPacked => int_packed::decode_into(data, 0, count, out, |value| value),
        ValueEncoding::IntDeltaOfDelta => {
            dod::decode(data, count, &dod::INTEGER_BUCKETS, VALUE_STREAM, out)
        }
        ValueEncoding::Constant => constant::decode_integer(data, count, out, |value| value),
        other => Err(wrong_type(other, "i64")),
    };
    if result.is_err() {
        out.truncate(original_len);
    }
    result
}

/// Appends exactly `count` u64 values decoded from `data` to `out`; the streams are those of
/// i64 with every value bit-cast.
pub fn decode_u64(
    enc: ValueEncoding,
    data: &[u8],
    count: usize,
    out: &mut Vec<u64>,
) -> Result<(), CodecError> {
    check_count(VALUE_STREAM, count)?;
    let original_len = out.len();
    let result = match enc {
        ValueEncoding::IntPacked => {
            int_packed::decode_into(data, 0, count, out, |value| value as u64)
        }
        ValueEncoding::IntDeltaOfDelta => {
            dod::decode_mapped(data, count, &dod::INTEGER_BUCKETS, out, |value| {
                value as u64
            })
        }
        ValueEncoding::Constant => constant::decode_integer(data, count, out, |value| value as u64),
        other => Err(wrong_type(other, "u64")),
    };
    if result.is_err() {
        out.truncate(original_len);
    }
    result
}

/// Appends exactly `count` booleans decoded from `data` to `out`.
pub fn decode_bool(
    enc: ValueEncoding,
    data: &[u8],
    count: usize,
    out: &mut Vec<bool>,
) -> Result<(), CodecError> {
    check_count(VALUE_STREAM, count)?;
    let original_len = out.len();
    let result = match enc {
        ValueEncoding::BoolBits => boolean::decode(data, count, out),
        ValueEncoding::Constant => constant::decode_bool(data, count, out),
        other => Err(wrong_type(other, "boolean")),
    };
    if result.is_err() {
        out.truncate(original_len);
    }
    result
}

/// Appends exactly `count` strings decoded from `data` to `out`.
pub fn decode_strings(
    enc: ValueEncoding,
    data: &[u8],
    count: usize,
    out: &mut Vec<String>,
) -> Result<(), CodecError> {
    check_count(VALUE_STREAM, count)?;
    let original_len = out.len();
    let result = match enc {
        ValueEncoding::StringRaw => strings::decode_raw(data, count, out),
        ValueEncoding::StringDict => strings::decode_dict(data, count, out),
        ValueEncoding::Constant => constant::decode_string(data, count, out),
        other => Err(wrong_type(other, "string")),
    };
    if result.is_err() {
        out.truncate(original_len);
    }
    result
}

fn check_count(stream: &'static str, count: usize) -> Result<(), CodecError> {
    if count > MAX_CHUNK_POINTS {
        return Err(CodecError::new(
            stream,
            0,
            format!("count {count} exceeds the chunk limit of {MAX_CHUNK_POINTS} points"),
        ));
    }
    Ok(())
}

fn wrong_type(enc: ValueEncoding, wanted: &str) -> CodecError {
    CodecError::new(
        VALUE_STREAM,
        0,
        format!(
            "encoding {} (byte {}) does not hold {wanted} values",
            enc.name(),
            enc.to_byte()
        ),
    )
}
