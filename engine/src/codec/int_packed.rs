//! IntPacked: i64 values (u64 bit-cast) as frame-of-reference or delta bit-packing.
//!
//! Byte 0 holds the mode in its top bit and the packed width (0..=64) in the low seven.
//!
//! - Mode 0, frame of reference: zigzag varint `min`, varint `scale`, then the `count`
//!   offsets `(v - min) / scale`.
//! - Mode 1, delta: zigzag varint `first`, zigzag varint `min_delta`, varint `scale`, then the
//!   `count - 1` offsets `((v[i] - v[i-1]) - min_delta) / scale`.
//!
//! `scale` (at least 1) is the greatest common divisor of the offsets: page-aligned memory
//! sizes, prices in whole cents and the like save its bits on every value.
//!
//! All differences are taken in wrapping 64-bit arithmetic and the offsets read as u64, so
//! every i64 sequence round-trips, `i64::MIN..=i64::MAX` and `u64::MAX` included. A frame of
//! reference over the deltas is never wider than zigzag deltas, so zigzag is not needed.

use super::CodecError;
use super::cursor::ByteCursor;
use super::packed::{self, BLOCK, Block, bit_width, block_start, packed_size, unpacker};
use super::{bits, varint};

const MODE_DELTA_BIT: u8 = 0x80;
const WIDTH_BITS: u8 = 0x7f;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    FrameOfReference { min: i64 },
    Delta { first: i64, min_delta: i64 },
}

/// The cheaper of the two modes for one run of values, decided before writing.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Plan {
    mode: Mode,
    width: u32,
    scale: u64,
    size: usize,
}

/// The greatest common divisor of `offsets` (1 when they are all 0), and the width of the
/// largest offset divided by it.
fn scale_and_width(offsets: impl Iterator<Item = u64>) -> (u64, u32) {
    let mut scale = 0u64;
    let mut largest = 0u64;
    for offset in offsets {
        largest = largest.max(offset);
        // The divisor settles after a few values; skip the division chain once it divides.
        if scale != 1 && (scale == 0 || offset % scale != 0) {
            scale = packed::gcd(scale, offset);
        }
    }
    let scale = scale.max(1);
    (scale, bit_width(largest / scale))
}

impl Plan {
    pub(crate) fn new(values: &[i64]) -> Plan {
        let Some((&first, rest)) = values.split_first() else {
            return Plan {
                mode: Mode::FrameOfReference { min: 0 },
                width: 0,
                scale: 1,
                size: 1 + varint::u64_size(0) + varint::u64_size(1),
            };
        };
        let (mut min, mut min_delta) = (first, i64::MAX);
        let mut previous = first;
        for &value in rest {
            min = min.min(value);
            min_delta = min_delta.min(value.wrapping_sub(previous));
            previous = value;
        }
        let (for_scale, for_width) =
            scale_and_width(values.iter().map(|&value| value.wrapping_sub(min) as u64));
        let for_size = 1
            + varint::u64_size(varint::zigzag(min))
            + varint::u64_size(for_scale)
            + packed_size(values.len(), for_width);
        let mut plan = Plan {
            mode: Mode::FrameOfReference { min },
            width: for_width,
            scale: for_scale,
            size: for_size,
        };
        if !rest.is_empty() {
            let (delta_scale, delta_width) = scale_and_width(
                values
                    .windows(2)
                    .map(|pair| pair[1].wrapping_sub(pair[0]).wrapping_sub(min_delta) as u64),
            );
            let delta_size = 1
                + varint::u64_size(varint::zigzag(first))
                + varint::u64_size(varint::zigzag(min_delta))
                + varint::u64_size(delta_scale)
                + packed_size(rest.len(), delta_width);
            // Ties stay with the frame of reference, which decodes without a running sum.
            if delta_size < for_size {
                plan = Plan {
                    mode: Mode::Delta { first, min_delta },
                    width: delta_width,
                    scale: delta_scale,
                    size: delta_size,
                };
            }
        }
        plan
    }

    pub(crate) fn encoded_size(&self) -> usize {
        self.size
    }

    /// Appends the stream for `values`, which must be the values the plan was made for.
    pub(crate) fn encode(&self, values: &[i64], out: &mut Vec<u8>) {
        let scale = self.scale;
        match self.mode {
            Mode::FrameOfReference { min } => {
                out.push(self.width as u8);
                varint::write_u64(out, varint::zigzag(min));
                varint::write_u64(out, scale);
                let offsets = values
                    .iter()
                    .map(|&value| value.wrapping_sub(min) as u64 / scale);
                packed::pack(offsets, self.width, out);
            }
            Mode::Delta { first, min_delta } => {
                out.push(MODE_DELTA_BIT | self.width as u8);
                varint::write_u64(out, varint::zigzag(first));
                varint::write_u64(out, varint::zigzag(min_delta));
                varint::write_u64(out, scale);
                let offsets = values.windows(2).map(|pair| {
                    pair[1].wrapping_sub(pair[0]).wrapping_sub(min_delta) as u64 / scale
                });
                packed::pack(offsets, self.width, out);
            }
        }
    }
}

/// Appends the cheaper IntPacked stream of `values`.
pub(crate) fn encode(values: &[i64], out: &mut Vec<u8>) {
    Plan::new(values).encode(values, out);
}

/// Decodes `count` values from the IntPacked stream starting at `data[start]`, mapping each
/// before appending it to `out`.
pub(crate) fn decode_into<T>(
    data: &[u8],
    start: usize,
    count: usize,
    out: &mut Vec<T>,
    map: impl Fn(i64) -> T,
) -> Result<(), CodecError> {
    out.reserve(count);
    decode_blocks(data, start, count, |block| {
        out.extend(block.iter().map(|&value| map(value)));
    })
}

/// The one value of a width-0 frame-of-reference stream at `data[start]`, which a decoder
/// can repeat without unpacking anything.
pub(crate) fn constant_value(data: &[u8], start: usize) -> Option<i64> {
    let mut cursor = ByteCursor::new(data, start, super::VALUE_STREAM);
    if cursor.u8("IntPacked header byte").ok()? != 0 {
        return None;
    }
    let min = cursor.signed_varint("IntPacked minimum").ok()?;
    // The scale must still be well-formed for the stream to be valid.
    let scale = cursor.varint("IntPacked scale").ok()?;
    (scale != 0).then_some(min)
}

/// A parsed IntPacked header and the packed bytes it describes.
struct Header<'a> {
    mode: Mode,
    width: u32,
    scale: u64,
    packed: &'a [u8],
    packed_count: usize,
}

impl<'a> Header<'a> {
    fn parse(data: &'a [u8], start: usize, count: usize) -> Result<Header<'a>, CodecError> {
        let mut cursor = ByteCursor::new(data, start, super::VALUE_STREAM);
        let header = cursor.u8("IntPacked header byte")?;
        let width = u32::from(header & WIDTH_BITS);
        if width > 64 {
            return Err(cursor.error_at(
                cursor.position() - 1,
                format!("IntPacked width is {width} bits, at most 64 expected"),
            ));
        }
        let mode = if header & MODE_DELTA_BIT == 0 {
            Mode::FrameOfReference {
                min: cursor.signed_varint("IntPacked minimum")?,
            }
        } else {
            Mode::Delta {
                first: cursor.signed_varint("IntPacked first value")?,
                min_delta: cursor.signed_varint("IntPacked minimum delta")?,
            }
        };
        let scale_offset = cursor.position();
        let scale = cursor.varint("IntPacked scale")?;
        if scale == 0 {
            return Err(cursor.error_at(scale_offset, "IntPacked scale is 0, at least 1 expected"));
        }
        let packed_count = match mode {
            Mode::FrameOfReference { .. } => count,
            Mode::Delta { .. } => count.saturating_sub(1),
        };
        let packed = cursor.bytes(
            packed_size(packed_count, width),
            "IntPacked bit-packed values",
        )?;
        Ok(Header {
            mode,
            width,
            scale,
            packed,
            packed_count,
        })
    }

    /// A bound on the magnitude of every decoded value, were the arithmetic not wrapping.
    fn magnitude_bound(&self) -> u128 {
        let largest_offset = u128::from(bits::low_mask(self.width)) * u128::from(self.scale);
        let span = |low: i64| {
            let low = i128::from(low);
            let high = i128::try_from(largest_offset).map_or(i128::MAX, |offset| low + offset);
            low.unsigned_abs().max(high.unsigned_abs())
        };
        match self.mode {
            Mode::FrameOfReference { min } => span(min),
            Mode::Delta { first, min_delta } => i128::from(first)
                .unsigned_abs()
                .saturating_add(span(min_delta).saturating_mul(self.packed_count as u128)),
        }
    }
}

/// Whether every value of the IntPacked stream at `data[start]` is below `limit` in
/// magnitude, judged from its header alone (false when the header does not parse).
pub(crate) fn all_below(data: &[u8], start: usize, count: usize, limit: u128) -> bool {
    Header::parse(data, start, count).is_ok_and(|header| header.magnitude_bound() < limit)
}

/// Decodes `count` values from the IntPacked stream starting at `data[start]`, handing them
/// to `sink` in order, at most [`BLOCK`] at a time.
pub(crate) fn decode_blocks(
    data: &[u8],
    start: usize,
    count: usize,
    mut sink: impl FnMut(&[i64]),
) -> Result<(), CodecError> {
    if count == 0 {
        return Ok(());
    }
    let Header {
        mode,
        width,
        scale,
        packed,
        packed_count,
    } = Header::parse(data, start, count)?;
    let unpack = unpacker(width);
    let mut block = [[0u64; 8]; BLOCK / 8];
    let mut values = [0i64; BLOCK];
    let unpack_block = |block_index: usize, block: &mut Block| {
        unpack(
            packed.get(block_start(block_index, width)..).unwrap_or(&[]),
            block,
        );
    };
    match mode {
        Mode::FrameOfReference { min } => {
            if width == 0 {
                values = [min; BLOCK];
            }
            for block_index in 0..count.div_ceil(BLOCK) {
                let taken = (count - block_index * BLOCK).min(BLOCK);
                if width != 0 {
                    unpack_block(block_index, &mut block);
                    let offsets = block.as_flattened();
                    // Unscaled streams are the common case; keep their loop free of multiplies.
                    if scale == 1 {
                        for (value, &offset) in values.iter_mut().zip(offsets) {
                            *value = min.wrapping_add(offset as i64);
                        }
                    } else {
                        for (value, &offset) in values.iter_mut().zip(offsets) {
                            *value = min.wrapping_add(offset.wrapping_mul(scale) as i64);
                        }
                    }
                }
                sink(&values[..taken]);
            }
        }
        Mode::Delta { first, min_delta } => {
            sink(&[first]);
            let mut running = first;
            for block_index in 0..packed_count.div_ceil(BLOCK) {
                let taken = (packed_count - block_index * BLOCK).min(BLOCK);
                if width == 0 {
                    for value in &mut values {
                        running = running.wrapping_add(min_delta);
                        *value = running;
                    }
                } else {
                    unpack_block(block_index, &mut block);
                    for (value, &offset) in values.iter_mut().zip(block.as_flattened()) {
                        let delta = min_delta.wrapping_add(offset.wrapping_mul(scale) as i64);
                        running = running.wrapping_add(delta);
                        *value = running;
                    }
                }
                sink(&values[..taken]);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic pseudo-random non-negative number, without arithmetic patterns that
    /// the delta mode's divisor would pick up.
    fn scrambled(index: i64) -> i64 {
        let mut mixed = (index as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        mixed ^= mixed >> 29;
        mixed = mixed.wrapping_mul(0xbf58_476d_1ce4_e5b9);
        mixed ^= mixed >> 32;
        (mixed >> 2) as i64
    }

    fn round_trip(values: &[i64]) -> usize {
        let mut bytes = Vec::new();
        let plan = Plan::new(values);
        plan.encode(values, &mut bytes);
        assert_eq!(bytes.len(), plan.encoded_size());
        let mut decoded = Vec::new();
        decode_into(&bytes, 0, values.len(), &mut decoded, |value| value).unwrap();
        assert_eq!(decoded, values);
        bytes.len()
    }

    #[test]
    fn extremes_round_trip_in_both_modes() {
        round_trip(&[i64::MIN, i64::MAX, 0, -1, i64::MIN, i64::MAX]);
        round_trip(&[u64::MAX as i64, 0, 1]);
        round_trip(&[i64::MAX]);
        let counter: Vec<i64> = (0..1000).map(|i| i64::MAX - 5000 + i * 3).collect();
        round_trip(&counter);
    }

    #[test]
    fn steady_counter_takes_delta_mode_with_width_zero() {
        let counter: Vec<i64> = (0..720).map(|i| 1_000_000 + i * 4096).collect();
        let size = round_trip(&counter);
        let header = 1 + varint::u64_size(varint::zigzag(1_000_000)) + 1;
        assert_eq!(size, header + varint::u64_size(varint::zigzag(4096)));
    }

    #[test]
    fn gauge_takes_frame_of_reference() {
        let gauge: Vec<i64> = (0..720).map(|i| 40 + scrambled(i) % 61).collect();
        let plan = Plan::new(&gauge);
        assert!(matches!(plan.mode, Mode::FrameOfReference { min: 40 }));
        assert_eq!(plan.width, 6);
        round_trip(&gauge);
    }

    #[test]
    fn page_aligned_values_are_packed_in_pages() {
        let memory: Vec<i64> = (0..720)
            .map(|i| 1 << 40 | (scrambled(i) % 1000) << 12)
            .collect();
        let plan = Plan::new(&memory);
        assert_eq!(plan.scale, 4096);
        assert_eq!(plan.width, 10);
        round_trip(&memory);
    }

    #[test]
    fn zero_scale_is_an_error() {
        let mut decoded = Vec::new();
        let error = decode_into(&[0x01, 0, 0, 0xff], 0, 3, &mut decoded, |value| value);
        assert_eq!(error.unwrap_err().offset, 2);
    }

    #[test]
    fn width_above_64_is_an_error_at_the_header_byte() {
        let mut decoded = Vec::new();
        let error = decode_into(&[9, 65, 0], 1, 3, &mut decoded, |value| value).unwrap_err();
        assert_eq!(error.offset, 1);
        assert!(error.reason.contains("65"));
    }

    #[test]
    fn truncated_packed_values_are_an_error() {
        let values: Vec<i64> = (0..100).map(|i| i * i).collect();
        let mut bytes = Vec::new();
        encode(&values, &mut bytes);
        bytes.pop();
        let mut decoded = Vec::new();
        let error = decode_into(&bytes, 0, values.len(), &mut decoded, |value| value);
        assert!(error.is_err());
    }
}
