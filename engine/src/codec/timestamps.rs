//! PackedDelta: strictly increasing timestamps as scaled deltas, frame-of-reference packed.
//!
//! Layout: the first timestamp as 8 bytes little-endian; then, when there are at least two,
//! the varint `min_delta`, the varint `scale` (at least 1), one byte with the packed width
//! (0..=64; the top bit is reserved and must be 0), and the `count - 1` offsets
//! `(delta - min_delta) / scale` bit-packed. Deltas are taken as u64 in wrapping arithmetic,
//! which is exact for strictly increasing i64 and still round-trips anything else as long as
//! `scale` divides every offset (the encoder then simply finds scale 1).
//!
//! `scale` is the greatest common divisor of the offsets: timestamps written in whole
//! milliseconds or seconds have deltas that are multiples of 10^6 or 10^9 ns, which would
//! otherwise cost 20 or 30 bits each. Evenly spaced timestamps have width 0 and take a
//! constant dozen bytes.

use super::cursor::ByteCursor;
use super::packed::{self, BLOCK, bit_width, block_start, packed_size, unpacker};
use super::{CodecError, TIMESTAMP_STREAM, varint};

const WIDTH_BITS: u8 = 0x7f;

struct Plan {
    min_delta: u64,
    scale: u64,
    width: u32,
}

fn plan(ts: &[i64]) -> Plan {
    let deltas = ts
        .windows(2)
        .map(|pair| pair[1].wrapping_sub(pair[0]) as u64);
    let (mut min_delta, mut max_delta) = (u64::MAX, 0u64);
    for delta in deltas.clone() {
        min_delta = min_delta.min(delta);
        max_delta = max_delta.max(delta);
    }
    if ts.len() < 2 || min_delta == max_delta {
        return Plan {
            min_delta: if ts.len() < 2 { 0 } else { min_delta },
            scale: 1,
            width: 0,
        };
    }
    let mut scale = 0u64;
    for delta in deltas {
        let offset = delta - min_delta;
        // The divisor settles after a few values; skip the division chain once it divides.
        if scale == 0 || offset % scale != 0 {
            scale = packed::gcd(scale, offset);
        }
        if scale == 1 {
            break;
        }
    }
    Plan {
        min_delta,
        scale,
        width: bit_width((max_delta - min_delta) / scale),
    }
}

/// The bytes [`encode_packed_delta`] would append.
pub(crate) fn packed_delta_size(ts: &[i64]) -> usize {
    if ts.len() < 2 {
        return 8;
    }
    let plan = plan(ts);
    8 + varint::u64_size(plan.min_delta)
        + varint::u64_size(plan.scale)
        + 1
        + packed_size(ts.len() - 1, plan.width)
}

/// Appends the PackedDelta stream of `ts`.
pub(crate) fn encode_packed_delta(ts: &[i64], out: &mut Vec<u8>) {
    let Some(&first) = ts.first() else {
        return;
    };
    out.extend_from_slice(&first.to_le_bytes());
    if ts.len() < 2 {
        return;
    }
    let plan = plan(ts);
    varint::write_u64(out, plan.min_delta);
    varint::write_u64(out, plan.scale);
    out.push(plan.width as u8);
    let offsets = ts.windows(2).map(|pair| {
        (pair[1].wrapping_sub(pair[0]) as u64).wrapping_sub(plan.min_delta) / plan.scale
    });
    packed::pack(offsets, plan.width, out);
}

/// Decodes `count` timestamps, appending them to `out`.
pub(crate) fn decode_packed_delta(
    data: &[u8],
    count: usize,
    out: &mut Vec<i64>,
) -> Result<(), CodecError> {
    if count == 0 {
        return Ok(());
    }
    let mut cursor = ByteCursor::new(data, 0, TIMESTAMP_STREAM);
    let first = cursor.i64_le("first timestamp")?;
    out.reserve(count);
    out.push(first);
    if count == 1 {
        return Ok(());
    }
    let min_delta = cursor.varint("minimum delta")?;
    let scale_offset = cursor.position();
    let scale = cursor.varint("delta scale")?;
    if scale == 0 {
        return Err(cursor.error_at(scale_offset, "delta scale is 0, at least 1 expected"));
    }
    let width_byte = cursor.u8("packed width")?;
    let width = u32::from(width_byte & WIDTH_BITS);
    if width_byte & !WIDTH_BITS != 0 || width > 64 {
        return Err(cursor.error_at(
            cursor.position() - 1,
            format!("packed width byte is {width_byte:#04x}, a width of 0..=64 expected"),
        ));
    }
    let packed_count = count - 1;
    let packed = cursor.bytes(packed_size(packed_count, width), "packed deltas")?;
    let mut previous = first;
    if width == 0 {
        let step = min_delta as i64;
        out.extend(
            (1..=packed_count as i64).map(|index| first.wrapping_add(index.wrapping_mul(step))),
        );
        return Ok(());
    }
    let unpack = unpacker(width);
    let mut block = [[0u64; 8]; BLOCK / 8];
    let mut values = [0i64; BLOCK];
    for block_index in 0..packed_count.div_ceil(BLOCK) {
        let taken = (packed_count - block_index * BLOCK).min(BLOCK);
        unpack(
            packed.get(block_start(block_index, width)..).unwrap_or(&[]),
            &mut block,
        );
        for (value, &offset) in values.iter_mut().zip(block.as_flattened()) {
            previous =
                previous.wrapping_add(offset.wrapping_mul(scale).wrapping_add(min_delta) as i64);
            *value = previous;
        }
        out.extend_from_slice(&values[..taken]);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(ts: &[i64]) -> usize {
        let mut bytes = Vec::new();
        encode_packed_delta(ts, &mut bytes);
        assert_eq!(bytes.len(), packed_delta_size(ts));
        let mut decoded = Vec::new();
        decode_packed_delta(&bytes, ts.len(), &mut decoded).unwrap();
        assert_eq!(decoded, ts);
        bytes.len()
    }

    #[test]
    fn evenly_spaced_timestamps_take_a_constant_few_bytes() {
        let ts: Vec<i64> = (0..720)
            .map(|i| 1_796_000_000_000_000_000 + i * 5_000_000_000)
            .collect();
        assert_eq!(round_trip(&ts), 8 + 5 + 1 + 1);
    }

    #[test]
    fn millisecond_jitter_is_packed_in_milliseconds() {
        let ts: Vec<i64> = (0..720)
            .map(|i| 1_796_000_000_000_000_000 + i * 10_000_000_000 + (i * 7919 % 50) * 1_000_000)
            .collect();
        let size = round_trip(&ts);
        // Offsets span 98 ms, so 7 bits each.
        assert!(
            size <= 8 + 10 + 10 + 1 + (719 * 7usize).div_ceil(8),
            "{size}"
        );
    }

    #[test]
    fn extreme_gaps_and_negative_timestamps_round_trip() {
        round_trip(&[i64::MIN, -1, 0, i64::MAX]);
        round_trip(&[i64::MIN, i64::MAX]);
        round_trip(&[-86_400_000_000_000, -3, 17]);
        round_trip(&[42]);
    }

    #[test]
    fn zero_scale_is_an_error_at_its_offset() {
        let mut bytes = 5i64.to_le_bytes().to_vec();
        bytes.extend_from_slice(&[1, 0, 3, 0xff]);
        let mut decoded = Vec::new();
        let error = decode_packed_delta(&bytes, 3, &mut decoded).unwrap_err();
        assert_eq!(error.offset, 9);
        assert_eq!(error.stream, TIMESTAMP_STREAM);
    }
}
