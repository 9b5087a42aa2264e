//! The Gorilla paper's XOR encoding for f64, bit-exact for every bit pattern.
//!
//! The first value is written raw in 64 bits. Each later value is XORed with the one before:
//!
//! - `0`: the XOR is zero (the same bits again).
//! - `10` + the window's meaningful bits: the XOR's set bits lie inside the current window.
//! - `11` + 5 bits of leading zeros (capped at 31) + 6 bits of meaningful length (64 written
//!   as 0) + the meaningful bits: a new window.
//!
//! Before the first `11` the window is the whole word (0 leading zeros, 64 meaningful bits),
//! so every bit string decodes to something. The encoder reuses the window only when that
//! costs no more bits than opening a new one.

use super::bits::{BitCounter, BitReader, BitSink, BitWriter};
use super::{CodecError, VALUE_STREAM};

/// The window of meaningful bits the next `10` control refers to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct XorState {
    pub(crate) previous: u64,
    pub(crate) leading: u8,
    pub(crate) trailing: u8,
}

impl XorState {
    /// Writes the value that follows `self.previous`.
    #[inline]
    pub(crate) fn push_next(&mut self, sink: &mut impl BitSink, bits: u64) {
        let xor = bits ^ self.previous;
        self.previous = bits;
        if xor == 0 {
            sink.write(0, 1);
            return;
        }
        let leading = xor.leading_zeros().min(31);
        let trailing = xor.trailing_zeros();
        let window_leading = u32::from(self.leading);
        let window_trailing = u32::from(self.trailing);
        let new_meaningful = 64 - leading - trailing;
        let window_meaningful = 64 - window_leading - window_trailing;
        if leading >= window_leading
            && trailing >= window_trailing
            && window_meaningful <= new_meaningful + 11
        {
            sink.write(0b10, 2);
            sink.write(xor >> window_trailing, window_meaningful);
            return;
        }
        let header = (0b11 << 11) | (u64::from(leading) << 6) | u64::from(new_meaningful & 63);
        sink.write(header, 13);
        sink.write(xor >> trailing, new_meaningful);
        self.leading = leading as u8;
        self.trailing = trailing as u8;
    }
}

fn encode_into(values: &[f64], sink: &mut impl BitSink) {
    let Some((first, rest)) = values.split_first() else {
        return;
    };
    sink.write(first.to_bits(), 64);
    let mut state = XorState {
        previous: first.to_bits(),
        ..XorState::default()
    };
    for value in rest {
        state.push_next(sink, value.to_bits());
    }
}

/// Appends the XOR stream of `values` to `out`.
pub(crate) fn encode(values: &[f64], out: &mut Vec<u8>) {
    let mut writer = BitWriter::new(out);
    encode_into(values, &mut writer);
    writer.finish();
}

/// The bytes [`encode`] would append.
pub(crate) fn encoded_size(values: &[f64]) -> usize {
    let mut counter = BitCounter::default();
    encode_into(values, &mut counter);
    counter.bits.div_ceil(8) as usize
}

/// Decodes `count` values, appending them to `out`.
pub(crate) fn decode(data: &[u8], count: usize, out: &mut Vec<f64>) -> Result<(), CodecError> {
    if count == 0 {
        return Ok(());
    }
    let start = out.len();
    out.resize(start + count, 0.0);
    let Some((first_slot, slots)) = out.get_mut(start..).and_then(|new| new.split_first_mut())
    else {
        return Ok(());
    };
    let mut reader = BitReader::new(data);
    let mut previous = reader.read_wide(64);
    *first_slot = f64::from_bits(previous);
    let mut trailing = 0u32;
    let mut meaningful = 64u32;
    // Bad windows are remembered rather than returned on the spot, which keeps the loop free
    // of a branch that real data never takes; the stream is refused after the loop.
    let mut first_bad_window: Option<(usize, usize)> = None;
    for (index, slot) in slots.iter_mut().enumerate() {
        reader.refill();
        let control = reader.peek();
        if control >> 63 != 0 {
            let is_new_window = control & (1 << 62) != 0;
            let new_leading = ((control >> 57) & 31) as u32;
            let new_length = ((control >> 51) & 63) as u32;
            let new_meaningful = if new_length == 0 { 64 } else { new_length };
            if is_new_window {
                if new_leading + new_meaningful > 64 && first_bad_window.is_none() {
                    first_bad_window = Some((index + 1, reader.consumed_bits() / 8));
                }
                meaningful = new_meaningful;
                trailing = 64u32.wrapping_sub(new_leading + new_meaningful) & 63;
            }
            reader.consume(if is_new_window { 13 } else { 2 });
            reader.refill();
            let xor = if meaningful <= 56 {
                let value = reader.peek() >> (64 - meaningful);
                reader.consume(meaningful);
                value
            } else {
                reader.read_wide(meaningful)
            };
            previous ^= xor << trailing;
        } else {
            reader.consume(1);
        }
        *slot = f64::from_bits(previous);
    }
    if let Some((value_index, offset)) = first_bad_window {
        return Err(CodecError::new(
            VALUE_STREAM,
            offset,
            format!(
                "XOR window of value {value_index} has more than 64 bits (leading zeros plus \
                 meaningful bits)"
            ),
        ));
    }
    if reader.overran() {
        return Err(CodecError::new(
            VALUE_STREAM,
            data.len(),
            format!(
                "XOR stream ends early: {count} values need {} bytes, found {}",
                reader.consumed_bits().div_ceil(8),
                data.len()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip_bits(values: &[f64]) {
        let mut bytes = Vec::new();
        encode(values, &mut bytes);
        assert_eq!(bytes.len(), encoded_size(values));
        let mut decoded = Vec::new();
        decode(&bytes, values.len(), &mut decoded).unwrap();
        let expected: Vec<u64> = values.iter().map(|value| value.to_bits()).collect();
        let found: Vec<u64> = decoded.iter().map(|value| value.to_bits()).collect();
        assert_eq!(found, expected);
    }

    #[test]
    fn special_floats_round_trip_bit_exactly() {
        round_trip_bits(&[
            1.0,
            -0.0,
            0.0,
            f64::NAN,
            f64::from_bits(0x7ff0_0000_dead_beef),
            f64::from_bits(0xfff8_0000_0000_0001),
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MIN_POSITIVE,
            f64::from_bits(1),
            f64::MAX,
            f64::MIN,
            f64::from_bits(u64::MAX),
            f64::from_bits(1 << 63 | 1),
        ]);
    }

    #[test]
    fn repeated_values_cost_one_bit_each() {
        let values = vec![42.5; 801];
        assert_eq!(encoded_size(&values), (64 + 800usize).div_ceil(8));
        round_trip_bits(&values);
    }

    #[test]
    fn window_reuse_and_full_width_windows_round_trip() {
        let values: Vec<f64> = (0..500)
            .map(|i| match i % 4 {
                0 => f64::from_bits(0x4000_0000_0000_0000 ^ (i as u64)),
                1 => f64::from_bits(0x4000_0000_0000_0000 ^ ((i as u64) << 20)),
                2 => f64::from_bits(!(i as u64)),
                _ => 20.0 + f64::from(i),
            })
            .collect();
        round_trip_bits(&values);
    }

    #[test]
    fn window_wider_than_64_bits_is_an_error() {
        // First value, then `11`, 31 leading zeros, 40 meaningful bits.
        let mut bytes = Vec::new();
        let mut writer = BitWriter::new(&mut bytes);
        writer.write(0, 64);
        writer.write((0b11 << 11) | (31 << 6) | 40, 13);
        writer.write(0, 64);
        writer.finish();
        let mut decoded = Vec::new();
        let error = decode(&bytes, 2, &mut decoded).unwrap_err();
        assert_eq!(error.offset, 8);
        assert!(error.reason.contains("more than 64"), "{}", error.reason);
    }
}
