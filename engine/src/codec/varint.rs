//! LEB128 varints and zigzag mapping, used in stream headers.

/// The most bytes a u64 LEB128 varint takes.
pub(crate) const MAX_VARINT_BYTES: usize = 10;

/// Appends `value` as an unsigned LEB128 varint: seven bits per byte, low bits first, the top
/// bit of each byte set when another byte follows.
pub(crate) fn write_u64(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// How many bytes [`write_u64`] writes for `value`.
pub(crate) fn u64_size(value: u64) -> usize {
    let significant_bits = 64 - (value | 1).leading_zeros() as usize;
    significant_bits.div_ceil(7)
}

/// Maps signed to unsigned so that small magnitudes of either sign get small codes.
pub(crate) fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

pub(crate) fn unzigzag(value: u64) -> i64 {
    ((value >> 1) as i64) ^ -((value & 1) as i64)
}

/// Why a varint could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VarintError {
    /// The bytes ended inside the varint.
    Truncated,
    /// More than ten bytes, or a tenth byte with bits above the 64th.
    Overlong,
}

/// Reads a varint starting at `bytes[0]`; returns the value and the bytes it took.
pub(crate) fn read_u64(bytes: &[u8]) -> Result<(u64, usize), VarintError> {
    let mut value = 0u64;
    for (index, &byte) in bytes.iter().enumerate().take(MAX_VARINT_BYTES) {
        let payload = u64::from(byte & 0x7f);
        if index == MAX_VARINT_BYTES - 1 && payload > 1 {
            return Err(VarintError::Overlong);
        }
        value |= payload << (7 * index);
        if byte & 0x80 == 0 {
            return Ok((value, index + 1));
        }
    }
    if bytes.len() >= MAX_VARINT_BYTES {
        Err(VarintError::Overlong)
    } else {
        Err(VarintError::Truncated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_round_trips_boundary_values_with_predicted_size() {
        for value in [0, 1, 127, 128, 16_383, 16_384, u64::MAX >> 1, u64::MAX] {
            let mut bytes = Vec::new();
            write_u64(&mut bytes, value);
            assert_eq!(bytes.len(), u64_size(value), "size of {value}");
            assert_eq!(read_u64(&bytes), Ok((value, bytes.len())));
        }
    }

    #[test]
    fn varint_reports_truncation_and_overlong_encodings() {
        assert_eq!(read_u64(&[]), Err(VarintError::Truncated));
        assert_eq!(read_u64(&[0x80, 0x80]), Err(VarintError::Truncated));
        assert_eq!(read_u64(&[0xff; 11]), Err(VarintError::Overlong));
        let mut eleven_bits_too_many = vec![0xff; 9];
        eleven_bits_too_many.push(0x02);
        assert_eq!(read_u64(&eleven_bits_too_many), Err(VarintError::Overlong));
    }

    #[test]
    fn zigzag_round_trips_extremes_and_keeps_small_magnitudes_small() {
        for value in [0, -1, 1, i64::MIN, i64::MAX, -64, 63] {
            assert_eq!(unzigzag(zigzag(value)), value);
        }
        assert_eq!(zigzag(-1), 1);
        assert_eq!(zigzag(1), 2);
    }
}
