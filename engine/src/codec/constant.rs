//! Constant: every value has the same bits, stored once.
//!
//! - f64: the bits with their bytes reversed, as a varint, so that values whose low mantissa
//!   bytes are zero (0.0, 1.5, 100.0) take one to three bytes.
//! - i64 and u64: the zigzag varint of the value (u64 bit-cast to i64).
//! - bool: one byte, 0 or 1.
//! - string: varint byte length, then the UTF-8 bytes.

use super::cursor::ByteCursor;
use super::{CodecError, VALUE_STREAM, varint};

pub(crate) fn float_size(value: f64) -> usize {
    varint::u64_size(value.to_bits().swap_bytes())
}

pub(crate) fn encode_float(value: f64, out: &mut Vec<u8>) {
    varint::write_u64(out, value.to_bits().swap_bytes());
}

pub(crate) fn integer_size(value: i64) -> usize {
    varint::u64_size(varint::zigzag(value))
}

pub(crate) fn encode_integer(value: i64, out: &mut Vec<u8>) {
    varint::write_u64(out, varint::zigzag(value));
}

pub(crate) fn encode_bool(value: bool, out: &mut Vec<u8>) {
    out.push(u8::from(value));
}

pub(crate) fn encode_string(value: &str, out: &mut Vec<u8>) {
    varint::write_u64(out, value.len() as u64);
    out.extend_from_slice(value.as_bytes());
}

pub(crate) fn string_size(value: &str) -> usize {
    varint::u64_size(value.len() as u64) + value.len()
}

pub(crate) fn decode_float(
    data: &[u8],
    count: usize,
    out: &mut Vec<f64>,
) -> Result<(), CodecError> {
    if count == 0 {
        return Ok(());
    }
    let bits = ByteCursor::new(data, 0, VALUE_STREAM).varint("constant float")?;
    out.resize(out.len() + count, f64::from_bits(bits.swap_bytes()));
    Ok(())
}

pub(crate) fn decode_integer<T: Copy>(
    data: &[u8],
    count: usize,
    out: &mut Vec<T>,
    map: impl Fn(i64) -> T,
) -> Result<(), CodecError> {
    if count == 0 {
        return Ok(());
    }
    let value = ByteCursor::new(data, 0, VALUE_STREAM).signed_varint("constant integer")?;
    out.resize(out.len() + count, map(value));
    Ok(())
}

pub(crate) fn decode_bool(
    data: &[u8],
    count: usize,
    out: &mut Vec<bool>,
) -> Result<(), CodecError> {
    if count == 0 {
        return Ok(());
    }
    let value = match ByteCursor::new(data, 0, VALUE_STREAM).u8("constant boolean")? {
        0 => false,
        1 => true,
        other => {
            return Err(CodecError::new(
                VALUE_STREAM,
                0,
                format!("constant boolean byte is {other}, 0 or 1 expected"),
            ));
        }
    };
    out.resize(out.len() + count, value);
    Ok(())
}

pub(crate) fn decode_string(
    data: &[u8],
    count: usize,
    out: &mut Vec<String>,
) -> Result<(), CodecError> {
    if count == 0 {
        return Ok(());
    }
    let mut cursor = ByteCursor::new(data, 0, VALUE_STREAM);
    let value = super::strings::read_string(&mut cursor, "constant string")?;
    out.reserve(count);
    out.extend(std::iter::repeat_n(value, count).map(str::to_owned));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_numbers_take_few_bytes() {
        assert_eq!(float_size(0.0), 1);
        assert_eq!(float_size(1.5), 3);
        assert_eq!(float_size(-0.0), 2);
    }

    #[test]
    fn every_type_repeats_its_value_count_times() {
        let mut bytes = Vec::new();
        encode_float(f64::from_bits(0x7ff8_dead_beef_0001), &mut bytes);
        let mut floats = Vec::new();
        decode_float(&bytes, 3, &mut floats).unwrap();
        assert!(
            floats
                .iter()
                .all(|value| value.to_bits() == 0x7ff8_dead_beef_0001)
        );
        assert_eq!(floats.len(), 3);

        bytes.clear();
        encode_integer(i64::MIN, &mut bytes);
        let mut unsigned = Vec::new();
        decode_integer(&bytes, 2, &mut unsigned, |value| value as u64).unwrap();
        assert_eq!(unsigned, [1u64 << 63; 2]);

        bytes.clear();
        encode_string("gpt-4o", &mut bytes);
        assert_eq!(bytes.len(), string_size("gpt-4o"));
        let mut strings = Vec::new();
        decode_string(&bytes, 2, &mut strings).unwrap();
        assert_eq!(strings, ["gpt-4o", "gpt-4o"]);
    }

    #[test]
    fn boolean_byte_other_than_zero_or_one_is_an_error() {
        let mut decoded = Vec::new();
        assert!(decode_bool(&[2], 1, &mut decoded).is_err());
        decode_bool(&[1], 2, &mut decoded).unwrap();
        assert_eq!(decoded, [true, true]);
    }
}
