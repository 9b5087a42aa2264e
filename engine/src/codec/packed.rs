//! Frame-of-reference bit-packing: `n` unsigned values of `width` bits each, value `i` in bits
//! `i * width .. (i + 1) * width` of a little-endian bit string (bit 0 is the lowest bit of
//! byte 0). The packed form takes `ceil(n * width / 8)` bytes; width 0 takes none.
//!
//! Unpacking runs in blocks of [`BLOCK`] values through one function per width, chosen once
//! per stream, so that the shifts and masks are constants and eight values (exactly `width`
//! bytes) come out of one straight-line group.

use super::bits::low_mask;

/// Values per unpacked block; a multiple of eight so each block starts on a byte.
pub(crate) const BLOCK: usize = 128;
const GROUPS: usize = BLOCK / 8;

/// One block of unpacked values, in groups of eight.
pub(crate) type Block = [[u64; 8]; GROUPS];

/// The bits needed to hold `value` (0 for 0).
#[inline]
pub(crate) fn bit_width(value: u64) -> u32 {
    64 - value.leading_zeros()
}

/// The greatest common divisor (`gcd(0, b) = b`).
pub(crate) fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// The bytes `count` values of `width` bits take.
#[inline]
pub(crate) fn packed_size(count: usize, width: u32) -> usize {
    (count as u128 * u128::from(width)).div_ceil(8) as usize
}

/// The byte where block `block_index` starts.
#[inline]
pub(crate) fn block_start(block_index: usize, width: u32) -> usize {
    block_index * BLOCK / 8 * width as usize
}

/// Appends the low `width` bits of every value.
pub(crate) fn pack(values: impl IntoIterator<Item = u64>, width: u32, out: &mut Vec<u8>) {
    if width == 0 {
        return;
    }
    let mask = low_mask(width);
    let mut pending = 0u128;
    let mut pending_bits = 0u32;
    for value in values {
        pending |= u128::from(value & mask) << pending_bits;
        pending_bits += width;
        if pending_bits >= 64 {
            out.extend_from_slice(&(pending as u64).to_le_bytes());
            pending >>= 64;
            pending_bits -= 64;
        }
    }
    let tail_bytes = pending_bits.div_ceil(8) as usize;
    out.extend_from_slice(&(pending as u64).to_le_bytes()[..tail_bytes]);
}

/// Unpacks one block of [`BLOCK`] values from `source`, which starts at the block's first
/// byte. Bytes missing at the end of `source` read as zero.
pub(crate) type Unpacker = fn(&[u8], &mut Block);

/// The unpacker for `width` bits, 0..=64.
pub(crate) fn unpacker(width: u32) -> Unpacker {
    UNPACKERS[(width as usize).min(64)]
}

macro_rules! unpackers {
    ($($width:literal)*) => { [$(unpack_block::<$width> as Unpacker),*] };
}

static UNPACKERS: [Unpacker; 65] = unpackers!(
    0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32
    33 34 35 36 37 38 39 40 41 42 43 44 45 46 47 48 49 50 51 52 53 54 55 56 57 58 59 60 61 62
    63 64
);

/// Slack beyond a group's `W` bytes that its loads may touch.
const WINDOW_SLACK: usize = 16;

fn unpack_block<const W: usize>(source: &[u8], block: &mut Block) {
    if W == 0 {
        *block = [[0; 8]; GROUPS];
        return;
    }
    let mask = u64::MAX >> ((64 - W) & 63);
    for (group_index, group) in block.iter_mut().enumerate() {
        let start = group_index * W;
        match source.get(start..start + W + WINDOW_SLACK) {
            Some(window) => unpack_group::<W>(window, group, mask),
            None => {
                let mut padded = [0u8; 64 + WINDOW_SLACK];
                if let Some(rest) = source.get(start..) {
                    let length = rest.len().min(padded.len());
                    padded[..length].copy_from_slice(&rest[..length]);
                }
                unpack_group::<W>(&padded, group, mask);
            }
        }
    }
}

#[inline(always)]
fn unpack_group<const W: usize>(window: &[u8], group: &mut [u64; 8], mask: u64) {
    for (index, slot) in group.iter_mut().enumerate() {
        let bit = index * W;
        let byte = bit / 8;
        let shift = bit % 8;
        *slot = if W <= 56 {
            (load_u64(window, byte) >> shift) & mask
        } else {
            ((load_u128(window, byte) >> shift) as u64) & mask
        };
    }
}

#[inline(always)]
fn load_u64(bytes: &[u8], at: usize) -> u64 {
    bytes
        .get(at..)
        .and_then(|rest| rest.first_chunk::<8>())
        .map_or(0, |chunk| u64::from_le_bytes(*chunk))
}

#[inline(always)]
fn load_u128(bytes: &[u8], at: usize) -> u128 {
    bytes
        .get(at..)
        .and_then(|rest| rest.first_chunk::<16>())
        .map_or(0, |chunk| u128::from_le_bytes(*chunk))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_width_unpacks_what_pack_wrote() {
        for width in 0..=64u32 {
            let count = 3 * BLOCK + 5;
            let values: Vec<u64> = (0..count as u64)
                .map(|i| {
                    i.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(i as u32) & low_mask(width)
                })
                .collect();
            let mut bytes = Vec::new();
            pack(values.iter().copied(), width, &mut bytes);
            assert_eq!(bytes.len(), packed_size(count, width), "width {width}");
            let unpack = unpacker(width);
            let mut decoded = Vec::new();
            let mut block = [[0u64; 8]; GROUPS];
            for block_index in 0..count.div_ceil(BLOCK) {
                let start = block_start(block_index, width);
                unpack(bytes.get(start..).unwrap_or(&[]), &mut block);
                decoded.extend_from_slice(block.as_flattened());
            }
            decoded.truncate(count);
            assert_eq!(decoded, values, "width {width}");
        }
    }

    #[test]
    fn unpacking_past_the_end_reads_zeros_without_panicking() {
        for width in 1..=64usize {
            let mut block = [[1u64; 8]; GROUPS];
            unpacker(width as u32)(&[0xff, 0xff], &mut block);
            for (index, &value) in block.as_flattened().iter().enumerate() {
                if index * width >= 16 {
                    assert_eq!(value, 0, "width {width} value {index}");
                } else if (index + 1) * width <= 16 {
                    assert_eq!(value, low_mask(width as u32), "width {width} value {index}");
                }
            }
        }
    }
}
